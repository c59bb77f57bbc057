"""Packing: several Cases through one export, for exporters whose cost is per export rather
than per node (the dynamo exporter takes ~0.5 s for one node or for twenty-five).

A pack is the members' disjoint union: one model whose inputs and outputs are the members'
in order. Each member keeps its own module (its own seed, weights and inputs), and its
outputs are judged against its own torch reference, so a member that passes in a pack passed
with its own values. A member the pack cannot clear is judged alone: when the packed model
fails as a whole (an export error, an invalid model, a runtime error) the pack is split in
halves until the failing members stand alone; a member whose outputs mismatch is re-judged
by itself. Every failure's verdict is therefore exactly the one its Case gets on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from fuzzer.case import Case, Input, Node, split_ref
from fuzzer.compare import Reference, compare
from fuzzer.model import infer
from fuzzer.oracle import run_chain
from fuzzer.prefix import Prefixes
from fuzzer.targets import Artifact, StageFailure, Target, parse
from fuzzer.verdict import Outcome, Verdict


def _renamed(ref: str, prefix: str) -> str:
    base, idx = split_ref(ref)
    return f"{prefix}{base}" + ("" if idx is None else f":{idx}")


def union(cases: Sequence[Case]) -> Case:
    """The members side by side under prefixes m0_, m1_, ...: what the exporters name the
    packed model's inputs and outputs by. Not materialized (the members' modules are)."""
    inputs, nodes, outputs, consts = [], [], [], []
    for k, c in enumerate(cases):
        p = f"m{k}_"
        inputs += [Input(p + x.name, list(x.shape), x.dtype, x.values) for x in c.inputs]
        consts += [replace(x, name=p + x.name) for x in c.consts]
        nodes += [Node(p + n.id, n.op, [_renamed(a, p) for a in n.args], n.attrs)
                  for n in c.nodes]
        outputs += [_renamed(o, p) for o in c.outputs]
    return Case(seed=0, inputs=inputs, nodes=nodes, outputs=outputs, consts=consts,
                origin={"sampler": "pack", "members": [c.hash for c in cases]})


class PackModule(torch.nn.Module):
    """The members' modules side by side: forward takes every member's inputs in order and
    returns every member's outputs in order."""

    def __init__(self, modules: Sequence[torch.nn.Module], arity: Sequence[int]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(modules)
        self.arity = list(arity)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs: list[torch.Tensor] = []
        at = 0
        for m, n in zip(self.members, self.arity, strict=True):
            outs += m(*inputs[at:at + n])
            at += n
        return tuple(outs)


def packable(case: Case) -> bool:
    """Dynamic dims are judged at other sizes too, which a pack does not do."""
    return not any(x.dynamic for x in case.inputs)


Feature = tuple[str, str]  # (operator, dtype of its first operand)


def features(case: Case) -> set[Feature]:
    try:
        metas = infer(case)  # memoized: the worker inferred these when it generated the Case
    except Exception:
        return set()
    out = set()
    for n in case.nodes:
        base, idx = split_ref(n.args[0]) if n.args else ("", None)
        out.add((n.op, metas[base][idx or 0].dtype if base in metas else ""))
    return out


class Risk:
    """Which Cases are likely to fail a target, learned from the verdicts seen so far: a Case
    holding an (operator, dtype) feature that failed in more than a quarter of the Cases
    carrying it is judged alone. A pack pays only while its members pass (one failing member
    costs extra exports to find), and converter failures cluster on such features (an op
    unsupported at a dtype, a kernel missing in ONNX Runtime)."""

    RATE = 0.25

    def __init__(self) -> None:
        self.seen: dict[tuple[str, Feature], int] = {}
        self.failed: dict[tuple[str, Feature], int] = {}

    def risky(self, target: str, case: Case) -> bool:
        return any(self.failed.get((target, f), 0) > self.RATE * self.seen.get((target, f), 0)
                   for f in features(case))

    def learn(self, target: str, case: Case, v: Verdict) -> None:
        bad = v.outcome in (Outcome.BUG, Outcome.UNSUPPORTED)
        for f in features(case):
            key = (target, f)
            self.seen[key] = self.seen.get(key, 0) + 1
            if bad:
                self.failed[key] = self.failed.get(key, 0) + 1


PREFIX = ("exporter", "pass", "validation")  # a chain's timings that an export costs


class Sizer:
    """How many Cases a packed export takes, per root component (an exporter or converter),
    from what packs cost so far: an export of n Cases takes a + b·n seconds (least squares
    over the exports seen, recent ones weighing more), a member fails in a pack at rate p
    (it is then judged alone, a + b more), and a pack fails as a whole when one of its n
    members breaks it (rate q a member: 1-(1-q)^n), which costs up to two exports a
    culprit and halving level to find. The size kept is the one with the fewest expected
    seconds a member, up to the job's cap: a cheap converter or a failing stream packs
    small (1: not at all), a slow, reliable exporter packs large. Its state is plain data
    (it crosses the pipe)."""

    DECAY = 0.97  # per observation: ~30 exports of memory
    CAP = 32  # the most Cases a job takes for an adaptive pack
    W, SN, ST, SNN, SNT, MEMBERS, FAILED, WHOLE, SEEN, PACKS = range(10)

    def __init__(self, state: dict[str, list[float]] | None = None) -> None:
        self.stats: dict[str, list[float]] = {k: list(v) for k, v in (state or {}).items()}

    def _of(self, root: str) -> list[float]:
        s = self.stats.setdefault(root, [0.0] * 10)
        s += [0.0] * (10 - len(s))  # a state from an older worker
        return s

    def observe(self, root: str, n: int, seconds: float) -> None:
        """An export of n Cases took `seconds` (its prefix steps: export, passes, check)."""
        s = self._of(root)
        for i in (self.W, self.SN, self.ST, self.SNN, self.SNT):
            s[i] *= self.DECAY
        s[self.W] += 1
        s[self.SN] += n
        s[self.ST] += seconds
        s[self.SNN] += n * n
        s[self.SNT] += n * seconds
        s[self.SEEN] += 1

    def outcome(self, root: str, members: int, failed: int, whole: bool) -> None:
        """A pack of `members` Cases: how many of them had to be judged alone, and whether
        the packed model failed as a whole."""
        s = self._of(root)
        for i in (self.MEMBERS, self.FAILED, self.WHOLE, self.PACKS):
            s[i] *= self.DECAY
        s[self.PACKS] += 1
        s[self.MEMBERS] += members
        s[self.FAILED] += failed
        s[self.WHOLE] += whole

    def model(self, root: str) -> tuple[float, float, float, float] | None:
        """(a, b, p, q), or None until exports of two sizes have been seen."""
        s = self.stats.get(root)
        if s is None or s[self.W] < 2:
            return None
        w = s[self.W]
        mn, mt = s[self.SN] / w, s[self.ST] / w
        var = s[self.SNN] / w - mn * mn
        if var < 0.25:  # one size only: the cost of a member is unknown
            return None
        b = max(1e-4, (s[self.SNT] / w - mn * mt) / var)
        a = max(0.0, mt - b * mn)
        # Weak priors (1 member in 20 fails, 1 pack in 8 breaks) until packs are seen.
        p = (s[self.FAILED] + 1) / (s[self.MEMBERS] + 20)
        broke = (s[self.WHOLE] + 0.25) / (s[self.PACKS] + 2)
        mean = (s[self.MEMBERS] + 8) / (s[self.PACKS] + 1)
        q = 1 - (1 - broke) ** (1 / mean)  # a pack of `mean` breaks at rate `broke`
        return a, b, min(p, 1.0), q

    @staticmethod
    def expected(a: float, b: float, p: float, q: float, n: int) -> float:
        """Expected seconds a member at pack size n."""
        if n == 1:
            return a + b
        whole = 1 - (1 - q) ** n
        # Halving a broken pack with c culprits exports at most 2c of the 2^l sub-packs of
        # each level l.
        c = max(1.0, q * n)
        halving = sum(min(2 ** lv, 2 * c) * (a + b * n / 2 ** lv)
                      for lv in range(1, math.ceil(math.log2(n)) + 1))
        return (a + b * n + whole * halving) / n + p * (a + b)

    def size(self, root: str, cap: int, default: int) -> int:
        """The cheapest size up to `cap`; until the costs are known, `default` and another
        size in turn (exports of one size alone cannot tell a from b)."""
        m = self.model(root)
        if m is None:
            seen = int(self._of(root)[self.SEEN])
            other = 2 * default if default <= 2 else default // 2
            return max(1, min(cap, default if seen % 2 == 0 else other))
        return min(range(1, cap + 1), key=lambda n: self.expected(*m, n))

    def plain(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.stats.items()}


def chunks(ks: Sequence[int], size: int) -> list[list[int]]:
    """`ks` in near-equal runs of at most `size` (20 at size 8: 7, 7, 6, not 8, 8, 4)."""
    n = max(1, math.ceil(len(ks) / max(1, size)))
    step, extra = divmod(len(ks), n)
    out, at = [], 0
    for i in range(n):
        m = step + (i < extra)
        out.append(list(ks[at:at + m]))
        at += m
    return [c for c in out if c]


Verdicts = dict[str, Verdict]  # target -> verdict, for one member


def _prefix_seconds(vs: Verdicts) -> float:
    return sum(v.evidence.get("timings", {}).get(k, 0.0) for v in vs.values() for k in PREFIX)


def judge_pack(cases: Sequence[Case], targets: Sequence[str],
               refs: Sequence[Reference | None],
               judge_one: Callable[[int, Sequence[str]], Verdicts], alive: Callable[[], None],
               on_stage: Callable[[str], None] | None = None, risk: Risk | None = None,
               alone: Sequence[int] = (), sizer: Sizer | None = None,
               share: bool = True) -> dict[int, Verdicts]:
    """A verdict for every member on each of `targets` (one tree: they share their exporter),
    by member index. `judge_one(k, ts)` judges member k alone on targets ts; `alive()` is
    called before each packed export (a sandbox resets its timeout on it). Members in
    `alone` (e.g. failed an earlier target) or that `risk` expects to fail are judged alone
    from the start; `risk` learns from every verdict, `sizer` from every export's cost.
    With `share`, the targets' common prefixes run once per packed model (fuzzer/prefix.py)."""
    chains = {t: parse(t) for t in targets}
    root = chains[targets[0]].exporter.name
    out: dict[int, Verdicts] = {}

    def one(k: int, ts: Sequence[str]) -> None:
        vs = judge_one(k, ts)
        out.setdefault(k, {}).update(vs)
        if sizer is not None and all(v.outcome == Outcome.PASS for v in vs.values()):
            sizer.observe(root, 1, _prefix_seconds(vs))  # a whole export, judged alone

    for k, c in enumerate(cases):
        if k in alone or refs[k] is None or not packable(c) or (
                risk is not None and any(risk.risky(t, c) for t in targets)):
            one(k, targets)

    def solve(ks: list[int], ts: Sequence[str]) -> bool:
        """Judge members ks on ts through packed exports; True if the packed model failed
        as a whole on some target."""
        if len(ks) == 1:
            one(ks[0], ts)
            return False
        alive()
        members = [cases[k] for k in ks]
        packed = union(members)
        module = PackModule([refs[k].module for k in ks],  # type: ignore[union-attr]
                            [len(c.inputs) for c in members])
        inputs = [t for k in ks for t in refs[k].inputs]  # type: ignore[union-attr]
        prefixes = Prefixes(ts) if share and len(ts) > 1 else None
        broke: list[str] = []
        again: dict[int, list[str]] = {}
        spent = 0.0
        for t in ts:
            art = Artifact(packed, module, inputs)
            timings: dict[str, float] = {}
            try:
                run_chain(chains[t], art, timings, on_stage, prefixes)
            except StageFailure:
                broke.append(t)
                continue
            finally:
                spent += sum(timings.get(k, 0.0) for k in PREFIX)
            at = 0
            share_of = {kind: s / len(ks) for kind, s in timings.items()}
            for k, c in zip(ks, members, strict=True):
                got = (art.outputs or [])[at:at + len(c.outputs)]
                at += len(c.outputs)
                if compare(c, refs[k], got) is None:  # type: ignore[arg-type]
                    out.setdefault(k, {})[t] = Verdict(
                        t, Outcome.PASS, evidence={"timings": dict(share_of), "pack": len(ks)})
                else:
                    again.setdefault(k, []).append(t)  # its own export decides the failure
        if sizer is not None:
            sizer.observe(root, len(ks), spent)
        for k, ts_k in again.items():
            one(k, ts_k)
        if broke:
            half = len(ks) // 2
            solve(ks[:half], broke)
            solve(ks[half:], broke)
        return bool(broke)

    rest = [k for k in range(len(cases)) if k not in out]
    if rest:
        whole = solve(rest, targets)
        if sizer is not None and len(rest) > 1:
            cleared = sum(all(k in out and t in out[k] and "pack" in out[k][t].evidence
                              for t in targets) for k in rest)
            sizer.outcome(root, len(rest), len(rest) - cleared, whole)
    if risk is not None:
        for k, vs in out.items():
            for t, v in vs.items():
                risk.learn(t, cases[k], v)
    return out


def _rewritten(target: Target) -> bool:
    """A chain with a rewriter pass is not packed: what fired is recorded per Case
    (optimization coverage), and a pack's fusions belong to no one member. (ONNX Runtime's
    own fusions on a packed chain go unrecorded for the same reason: `--pack 1` records
    them.)"""
    return any(c.settings.get("rewriter") for c in target.components)


def pack_cap(target_name: str) -> int:
    """The most Cases a packed export of the target takes when sizes adapt: Sizer.CAP for a
    packable converter's chain, else 1."""
    target = parse(target_name)
    return Sizer.CAP if target.exporter.packable and not _rewritten(target) else 1


def pack_size(target_name: str) -> int:
    """How many Cases a packed export of the target takes when sizes are fixed (1: none)."""
    target = parse(target_name)
    return 1 if _rewritten(target) else int(target.exporter.pack)

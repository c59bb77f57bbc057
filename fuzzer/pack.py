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

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from fuzzer.case import Case, Input, Node, split_ref
from fuzzer.compare import Reference, compare
from fuzzer.model import infer
from fuzzer.oracle import run_chain
from fuzzer.targets import Artifact, StageFailure, parse
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


def judge_pack(cases: Sequence[Case], target_name: str, refs: Sequence[Reference | None],
               judge_one: Callable[[int], Verdict], alive: Callable[[], None],
               on_stage: Callable[[str], None] | None = None, risk: Risk | None = None,
               alone: Sequence[int] = ()) -> dict[int, Verdict]:
    """A verdict for every member, by member index. `judge_one(k)` judges member k alone;
    `alive()` is called before each packed export (a sandbox resets its timeout on it).
    Members in `alone` (e.g. failed an earlier target) or that `risk` expects to fail are
    judged alone from the start; `risk` learns from every verdict."""
    target = parse(target_name)
    out: dict[int, Verdict] = {}
    for k, c in enumerate(cases):
        if k in alone or refs[k] is None or not packable(c) or (
                risk is not None and risk.risky(target.name, c)):
            out[k] = judge_one(k)

    def solve(ks: list[int]) -> None:
        if len(ks) == 1:
            out[ks[0]] = judge_one(ks[0])
            return
        alive()
        members = [cases[k] for k in ks]
        art = Artifact(union(members), PackModule([refs[k].module for k in ks],  # type: ignore[union-attr]
                                                  [len(c.inputs) for c in members]),
                       [t for k in ks for t in refs[k].inputs])  # type: ignore[union-attr]
        timings: dict[str, float] = {}
        try:
            run_chain(target, art, timings, on_stage)
        except StageFailure:
            half = len(ks) // 2
            solve(ks[:half])
            solve(ks[half:])
            return
        at = 0
        share = {kind: s / len(ks) for kind, s in timings.items()}
        for k, c in zip(ks, members, strict=True):
            got = (art.outputs or [])[at:at + len(c.outputs)]
            at += len(c.outputs)
            if compare(c, refs[k], got) is None:  # type: ignore[arg-type]
                out[k] = Verdict(target.name, Outcome.PASS,
                                 evidence={"timings": dict(share), "pack": len(ks)})
            else:
                out[k] = judge_one(k)  # its own export decides what the failure is

    rest = [k for k in range(len(cases)) if k not in out]
    if rest:
        solve(rest)
    if risk is not None:
        for k, v in out.items():
            risk.learn(target.name, cases[k], v)
    return out


def pack_size(target_name: str) -> int:
    """How many Cases the target's exporter is worth packing (1: not at all). A chain with a
    rewriter pass is not packed: what fired is recorded per Case (optimization coverage), and
    a pack's fusions belong to no one member. (ONNX Runtime's own fusions on a packed chain
    go unrecorded for the same reason: `--pack 1` records them.)"""
    target = parse(target_name)
    if any(c.settings.get("rewriter") for c in target.components):
        return 1
    return int(target.exporter.pack)

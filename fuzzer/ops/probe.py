"""Single-operator Cases for catalogue sweeps: one operator, a chosen input dtype and chosen
attributes, with operands drawn the way the generator draws them.

`python -m fuzzer.ops.probe --out docs` runs the exhaustive sweep (every operator x dtype,
plus every non-default and edge value of every argument) through both exporters and writes
docs/ops-sweep.md and the failing Cases under docs/sweep-cases/.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import ops
from fuzzer.case import Case, Input, Node
from fuzzer.ops.spec import Meta, OpSpec, same_value
from fuzzer.rng import np_rng
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.verdict import Outcome, Verdict, normalize_error

FLOATS = ("float32", "float64", "float16", "bfloat16")
# Shapes tried per rank, most typical first; sizes 3..6 satisfy most accepts() rules
# (kernels, even dims for glu, 3-vectors for cross...).
SHAPES: dict[int, tuple[tuple[int, ...], ...]] = {
    0: ((),),
    1: ((6,), (3,), (8,)),
    2: ((4, 6), (3, 3), (6, 4), (4, 8)),
    3: ((2, 4, 6), (2, 4, 3), (2, 3, 8), (1, 4, 8)),
    4: ((2, 4, 6, 6), (1, 4, 5, 7), (2, 4, 4, 3), (1, 8, 6, 6)),
    5: ((1, 4, 4, 6, 6), (1, 2, 6, 6, 6), (1, 2, 5, 4, 6)),
}
DEFAULT_TARGETS = ("torchscript-17/ort-all", "dynamo/ort-all")
TS, DYNAMO = DEFAULT_TARGETS
# The dynamo exporter costs ~1.5 s a Case against ~0.3 s for TorchScript: the exhaustive sweep
# gives it every operator at these dtypes (defaults) and every edge value, TorchScript all.
DYNAMO_DTYPES = ("float32", "float16", "int64")


class ProbeError(ValueError):
    """No input of the requested dtype fits the operator with these attributes."""


def _input_values(spec: OpSpec, dtype: str) -> dict[str, Any]:
    if dtype == "bool":
        return {"dist": "bool", "p": 0.5}
    vals = spec.values
    if dtype in FLOATS:
        return dict(vals) if vals else {"dist": "normal", "scale": 1.0}
    if vals and vals.get("dist") in ("int", "bool"):
        return dict(vals)
    return {"dist": "int", "low": 0 if dtype == "uint8" else -8, "high": 8}


def _ranks(spec: OpSpec, seed: int) -> list[int]:
    lo, hi = spec.ranks
    rs = list(range(lo, min(hi, 5) + 1))
    # Prefer a mid rank (most ops' typical use), rotating with the seed for variety.
    rs.sort(key=lambda r: (abs(r - 3), r))
    k = seed % len(rs) if rs else 0
    return rs[k:] + rs[:k]


def single_op_case(name: str, dtype: str = "float32", attrs: dict[str, Any] | None = None,
                   seed: int = 0, shape: tuple[int, ...] | None = None) -> Case:
    """A Case of one `name` node on a fresh input of `dtype`; every output is a Case output.
    Attributes not given take their defaults; the shape is the first that fits."""
    spec = ops.get(name)
    if dtype not in spec.dtypes:
        raise ProbeError(f"{name} does not take {dtype} (takes {', '.join(spec.dtypes)})")
    given = dict(attrs or {})
    full = {**spec.defaults(), **given}
    shapes = [shape] if shape is not None else [s for r in _ranks(spec, seed)
                                                for s in SHAPES[r]]
    last = "no shape of an accepted rank"
    for shp in shapes:
        meta = Meta(tuple(shp), dtype)
        if not spec.accepts_meta(meta):
            continue
        rng = np_rng(seed, "probe", name, dtype)
        extra = spec.operands(rng, meta, full) if spec.operands else []
        metas = [meta] + [o.meta for o in extra]
        try:
            outs = spec.infer(metas, full)
        except Exception as e:  # the shape rule is torch: this shape does not fit
            last = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
            continue
        if any(0 in m.shape for m in outs):
            last = "empty output"
            continue
        inputs = [Input("x0", list(meta.shape), dtype, _input_values(spec, dtype))]
        for i, o in enumerate(extra, 1):
            vals = o.values if o.meta.dtype in FLOATS or o.values.get("dist") in (
                "int", "bool") else _input_values(spec, o.meta.dtype)
            inputs.append(Input(f"x{i}", list(o.meta.shape), o.meta.dtype, dict(vals)))
        node = Node("n0", name, [x.name for x in inputs], given)
        outputs = ["n0"] if len(outs) == 1 else [f"n0:{k}" for k in range(len(outs))]
        return Case(seed=seed, inputs=inputs, nodes=[node], outputs=outputs,
                    origin={"sampler": "probe", "ngram": [name], "parent": None})
    raise ProbeError(f"{name} [{dtype}] {given}: {last}")


# -- what a sweep runs -------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    op: str
    dtype: str
    attrs: dict[str, Any] = field(default_factory=dict)
    targets: tuple[str, ...] = DEFAULT_TARGETS

    @property
    def label(self) -> str:
        a = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"{self.op} [{self.dtype}]" + (f" {a}" if a else "")


def _arg_metas(spec: OpSpec, dtype: str) -> list[Meta]:
    for r in _ranks(spec, 0):
        for s in SHAPES[r]:
            m = Meta(s, dtype)
            if spec.accepts_meta(m):
                return [m]
    return [Meta(SHAPES[spec.ranks[0]][0], dtype)]


def exhaustive(names: list[str] | None = None, cap: int = 40) -> Iterator[Probe]:
    """Every operator x dtype at default attributes, then every non-default and edge value of
    every argument (one at a time, at the operator's first float dtype)."""
    for name in names or sorted(ops.REGISTRY):
        spec = ops.get(name)
        n = 0
        for dt in spec.dtypes:
            yield Probe(name, dt, targets=DEFAULT_TARGETS if dt in DYNAMO_DTYPES else (TS,))
            n += 1
        dt = "float32" if "float32" in spec.dtypes else spec.dtypes[0]
        metas = _arg_metas(spec, dt)
        for a in spec.args:
            for v in a.candidates(metas):
                if same_value(v, a.default) or n >= cap:
                    continue
                edge = any(repr(v) == repr(e) for e in a.edges)
                yield Probe(name, dt, {a.name: v}, DEFAULT_TARGETS if edge else (TS,))
                n += 1


def sample(names: list[str] | None = None, seed: int = 0,
           nondefault: float = 0.5) -> Iterator[Probe]:
    """One probe per operator: a dtype rotating through its dtypes and attributes drawn with
    a high non-default share (the default test's budget); draws that fit no input are
    redrawn a few times before falling back to the defaults."""
    for i, name in enumerate(names or sorted(ops.REGISTRY)):
        spec = ops.get(name)
        rng = np_rng(seed, "sample", name)
        dt = spec.dtypes[(i + seed) % len(spec.dtypes)]
        metas = _arg_metas(spec, dt)
        chosen = Probe(name, dt)
        for _ in range(8):
            drawn = spec.sample_attrs(rng, metas, nondefault)
            p = Probe(name, dt, {k: v for k, v in drawn.items()
                                 if not same_value(v, spec.defaults()[k])})
            if build(p, partners=0) is not None:
                chosen = p
                break
        yield chosen


def build(p: Probe, seed: int = 0, partners: int = 12) -> Case | None:
    """The probe's Case, or None when no input fits. A value that only fits together with
    other non-defaults (output_padding needs a stride > 1) gets partners drawn for the other
    arguments, so every edge value is reachable."""
    for s in range(seed, seed + 3):
        try:
            return single_op_case(p.op, p.dtype, p.attrs, seed=s)
        except ProbeError:
            continue
    spec = ops.get(p.op)
    metas = _arg_metas(spec, p.dtype)
    for k in range(partners):
        rng = np_rng(seed, "partners", p.label, str(k))
        drawn = spec.sample_attrs(rng, metas, 0.5)
        attrs = {n: v for n, v in drawn.items()
                 if not same_value(v, spec.defaults()[n])} | p.attrs
        try:
            return single_op_case(p.op, p.dtype, attrs, seed=seed + k)
        except ProbeError:
            continue
    return None


# -- the recorded sweep ------------------------------------------------------------------------
def run_sweep(probes: list[Probe], targets: tuple[str, ...] | None = None,
              on_result: Callable[[Probe, Case | None, list[Any]], None] | None = None,
              timeout: float = 60.0,
              done: dict[str, list[Any]] | None = None) -> list[tuple[Probe, Case | None,
                                                                   list[Any]]]:
    """Run each probe's Case on its targets in one sandbox. `done` maps probe labels to the
    verdicts of an earlier, interrupted run (resuming skips them)."""
    results = []
    with Sandbox(Limits(timeout=timeout, memory_mb=2048)) as sb:
        for p in probes:
            case = build(p)
            if done is not None and p.label in done:
                results.append((p, case, done[p.label]))
                continue
            verdicts = [] if case is None else [sb.run(case, t) for t in (targets or p.targets)]
            results.append((p, case, verdicts))
            if on_result:
                on_result(p, case, verdicts)
    return results


def write_report(results: list[tuple[Probe, Case | None, list[Any]]], out: Path,
                 seconds: float, command: str) -> None:
    """docs/ops-sweep.md: counts per target, then the real failures grouped by operator,
    target and normalized error, each with one saved Case and the command reproducing it."""
    cases_dir = out / "sweep-cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    for old in cases_dir.glob("*.json"):
        old.unlink()
    per_target: dict[str, Counter[str]] = {}
    unbuilt = [p for p, c, _ in results if c is None]
    unsupported: dict[str, Counter[str]] = {}
    groups: dict[tuple[str, str, str, str], list[tuple[Probe, Case, Any]]] = {}
    for p, case, vs in results:
        for v in vs:
            per_target.setdefault(v.target, Counter())[
                v.outcome.value if v.outcome in (Outcome.PASS, Outcome.INVALID)
                else f"{v.outcome.value} {v.key}"] += 1
            if v.outcome == Outcome.BUG and case is not None:
                key = (p.op, v.target, v.key, normalize_error(v.shown_detail))
                groups.setdefault(key, []).append((p, case, v))
            elif v.outcome == Outcome.UNSUPPORTED:
                unsupported.setdefault(v.target, Counter())[p.op] += 1
    n_fail = sum(len(g) for g in groups.values())
    lines = ["# Operator sweep", "",
             "Every catalogue operator as a single-operator Case: each dtype at default "
             "arguments, then each non-default and edge argument value (one at a time; a "
             "value that only fits with others gets partner values drawn). TorchScript "
             f"(`{TS}`) runs every probe; the dynamo exporter (`{DYNAMO}`, ~5x slower) runs "
             f"the default-argument probes at {', '.join(DYNAMO_DTYPES)} and every edge "
             "value.", "",
             f"- probes: {len(results)} ({len(unbuilt)} could not be built: no input fits)",
             f"- operators: {len({p.op for p, _, _ in results})}",
             f"- verdicts: {sum(len(vs) for _, _, vs in results)}; failures (outcome `bug`): "
             f"{n_fail} in {len(groups)} groups (operator x target x stage/symptom x "
             "normalized error)",
             f"- wall time: {seconds / 60:.0f} min on 2 shared cores, one sandbox worker",
             f"- command: `{command}`", "", "## Verdicts per target", ""]
    for t, cnt in per_target.items():
        lines += [f"### {t}", "", "| verdict | count |", "| --- | ---: |"]
        lines += [f"| {k} | {n} |" for k, n in cnt.most_common()]
        lines.append("")
    lines += ["## Unsupported (an honest 'not implemented': counted, not a bug), by operator",
              ""]
    for t, cnt in unsupported.items():
        lines += [f"- `{t}`: " + ", ".join(f"{o} ({n})" for o, n in sorted(cnt.items())), ""]
    lines += ["## Failures (outcome `bug`)", "",
              "One line per group: the dtypes/arguments that hit it, the verdict (stage/symptom, "
              "attribution), the first error line, and the command reproducing it on the saved "
              "Case (`docs/sweep-cases/`).", ""]
    current = ""
    for (name, target, key, _), fs in sorted(groups.items()):
        if name != current:
            lines += ["", f"### {name}", ""]
            current = name
        p, case, v = fs[0]
        fname = f"{name.split('::')[1]}-{case.hash}.json"
        (cases_dir / fname).write_text(case.to_json() + "\n")
        hits = sorted({f"{q.dtype}" + (f" {json.dumps(q.attrs)}" if q.attrs else "")
                       for q, _, _ in fs})
        shown = "; ".join(hits[:6]) + (f"; +{len(hits) - 6} more" if len(hits) > 6 else "")
        lines.append(f"- `{target}` {key} ({v.attribution.value}) — {shown}: "
                     f"{v.shown_detail[:180]}")
        lines.append(f"  `convfuzz run docs/sweep-cases/{fname} -t {target}`")
    if unbuilt:
        lines += ["", "## Probes that could not be built", ""]
        lines += [f"- {p.label}" for p in unbuilt]
    (out / "ops-sweep.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzzer.ops.probe",
                                 description="Exhaustive single-operator sweep.")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--op", action="append", help="restrict to these operators")
    ap.add_argument("--cap", type=int, default=40, help="probes per operator at most")
    ap.add_argument("--log", type=Path, default=None,
                    help="JSON-lines log of every verdict; an existing log is resumed")
    a = ap.parse_args(argv)
    probes = list(exhaustive(a.op, cap=a.cap))
    t0 = time.time()
    done: dict[str, list[Any]] = {}
    if a.log and a.log.is_file():
        for line in a.log.read_text().splitlines():
            rec = json.loads(line)
            done[rec["probe"]] = [Verdict.from_dict(v) for v in rec["verdicts"]]
            t0 -= rec.get("seconds", 0.0)
    log = a.log.open("a") if a.log else None

    def progress(p: Probe, case: Case | None, vs: list[Any]) -> None:
        keep = ("target", "outcome", "stage", "symptom", "attribution", "detail", "seconds")
        rec = {"probe": p.label, "case": case.hash if case else None,
               "seconds": sum(v.seconds for v in vs),
               "verdicts": [{k: v.to_dict()[k] for k in keep} for v in vs]}
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    results = run_sweep(probes, on_result=progress, done=done)
    cmd = "python -m fuzzer.ops.probe --out docs" + (f" --cap {a.cap}" if a.cap != 40 else "")
    write_report(results, a.out, time.time() - t0, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

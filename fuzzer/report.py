"""Tracker-ready reports: `report.md` in the template of the tracker the attribution points
to (PyTorch for the exporters, ONNX Runtime for the runtime), plus the standalone `repro.py`.

Every report states expected vs actual values with the fp64 baseline as the justification,
the attribution evidence (what the reference evaluator said), where the chain occurs in
mined real architectures, a control (the same model with the triggering argument at its
default, when that passes), and that the bug was found by fuzzing with convfuzz.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import defect, ops
from fuzzer.case import Case
from fuzzer.edit import set_attr
from fuzzer.repro import repro_script
from fuzzer.seeds import load_seeds
from fuzzer.targets.registry import FAMILIES
from fuzzer.verdict import Attribution, Outcome, Stage, Verdict

Runner = Callable[[Case, str], Verdict]
CRASHES = {"crash", "process_death", "hang", "out_of_memory", "invalid_model"}


@dataclass
class Context:
    """What a report knows beyond the finding: checks run now, and the mined seeds."""

    control: str = ""  # "with `approximate='none'` the same model passes", or ""
    other_exporter: str = ""  # TorchScript findings: is the dynamo exporter affected too?
    archs: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    analysis: str = ""  # the curator's note on a corpus finding: the root cause, the spec
    exposure: str = ""  # fuzzer.exposure's line (by trigger); replaces the n-gram count


def controls(case: Case, target: str, run: Runner) -> str:
    """Reset each non-default argument in turn; the first reset that makes the failure go
    away is the control a maintainer can diff against."""
    for n in case.nodes:
        spec = ops.get(n.op)
        for a in spec.args:
            if a.name in n.attrs and not ops.same_value(n.attrs[a.name], a.default):
                trial = set_attr(case, n.id, a.name, a.default)
                try:
                    v = run(trial, target)
                except Exception:  # a control we cannot run is no control
                    continue
                if v.outcome == Outcome.PASS:
                    return (f"with `{a.name}={a.default!r}` (its default) instead of "
                            f"`{a.name}={n.attrs[a.name]!r}` in `{n.op}`, the same model passes")
    return ""


def mined_chain(case: Case, seeds_dir: Path | None) -> tuple[list[str], list[str]]:
    """The longest run of the Case's operators (≤ 4) found in mined architectures."""
    if seeds_dir is None or not (seeds_dir / "ngrams.json").is_file():
        return [], []
    seeds = load_seeds(seeds_dir)
    chain = case.ops
    for n in range(min(4, len(chain)), 0, -1):
        best: tuple[list[str], list[str]] = ([], [])
        for i in range(len(chain) - n + 1):
            sub = chain[i:i + n]
            archs = seeds.archs_containing(sub)
            if len(archs) > len(best[1]):
                best = (sub, archs)
        if best[1]:
            return best
    return [], []


def build_context(case: Case, v: Verdict, run: Runner | None, seeds_dir: Path | None,
                  versions: dict[str, str]) -> Context:
    ctx = Context(versions=versions)
    ctx.chain, ctx.archs = mined_chain(case, seeds_dir)
    if run is not None:
        ctx.control = controls(case, v.target, run)
        if v.target.startswith("torchscript") and v.attribution == Attribution.CONVERTER:
            other = "dynamo/" + v.target.split("/", 1)[1]
            o = run(case, other)
            said = f" ({o.key}: {o.shown_detail[:160]})" if o.outcome != Outcome.PASS else ""
            ctx.other_exporter = ("The dynamo exporter (`dynamo=True`) on the same model: "
                                  f"**{o.outcome.value}**{said}.")
    return ctx


def _collect_env(versions: dict[str, str]) -> str:
    libs = "\n".join(f"[pip3] {k}=={versions[k]}" for k in
                     ("numpy", "onnx", "onnxruntime", "onnxscript", "torch") if k in versions)
    return (f"PyTorch version: {versions.get('torch', '?')}\nIs debug build: False\n"
            f"OS: {platform.platform()}\nPython version: {platform.python_version()} "
            f"({platform.python_implementation()})\nPython platform: {platform.platform()}\n"
            f"Is CUDA available: False\nCPU architecture: {platform.machine()}\n\n"
            f"Versions of relevant libraries:\n{libs}")


def _values(case: Case, v: Verdict) -> str:
    ev, ref = v.evidence, defect.lang(case).name
    if v.symptom is None or v.symptom.value in CRASHES:
        return ""
    lines = []
    if "expected" in ev and "actual" in ev:
        at = f" at index {ev.get('index')}" if "index" in ev else ""
        lines.append(f"- expected ({ref} eager, fp32){at}: "
                     f"`{ev['expected']}`")
        if "fp64" in ev:
            lines.append(f"- fp64 baseline (same model in double precision): `{ev['fp64']}`")
        lines.append(f"- actual (the converted model): `{ev['actual']}`")
    if "count" in ev and "size" in ev:
        lines.append(f"- {ev['count']} of {ev['size']} values are off")
    if "rtol" in ev:
        lines.append(
            f"- The eager result is the right one: {ref}'s fp32 output is within "
            f"{ev.get('torch_err', 0):.3g} of the fp64 baseline, while the converted output is "
            f"{ev.get('max_abs_err', 0):.3g} away — beyond the tolerance (rtol={ev['rtol']}, "
            f"atol={ev['atol']}) added to {ref}'s own error.")
    return "\n".join(lines) or f"- {v.shown_detail}"


def _common(case: Case, v: Verdict, ctx: Context, fid: str) -> str:
    ev = v.evidence
    blame = ev.get("blame")
    lines = [f"- **Target chain:** `{v.target}`", f"- **Stage / symptom:** {v.key}",
             f"- **Minimized operator chain:** `{' → '.join(case.ops)}` "
             f"({len(case.nodes)} node{'s' * (len(case.nodes) != 1)})",
             f"- **Attribution:** {v.attribution.value}"]
    if ev.get("reference_evaluator"):
        lines.append(f"  - the ONNX reference evaluator (`onnx.reference`) "
                     f"{ev['reference_evaluator']}")
    if ev.get("referees"):
        lines.append(f"  - the same ONNX model elsewhere: {ev['referees']}")
    if ev.get("shape_inference"):
        lines.append(f"  - at those input sizes ONNX's strict shape inference rejects the model: "
                     f"`{ev['shape_inference']}`")
    if blame:
        lines.append(f"  - blamed step: `{blame['component']}:{blame['step']}` "
                     f"(project {blame['project']}; {blame.get('after', '')})")
    if ctx.exposure:
        lines.append(f"- **Real-world exposure:** {ctx.exposure}")
    elif ctx.archs:
        eg = ", ".join(ctx.archs[:5])
        lines.append(f"- **Real-world exposure:** the chain `{' → '.join(ctx.chain)}` appears in "
                     f"{len(ctx.archs)} mined architecture{'s' * (len(ctx.archs) != 1)} "
                     f"(e.g. {eg}).")
    if ctx.analysis:
        lines.append(f"- **Analysis:** {ctx.analysis}")
    if ctx.control:
        lines.append(f"- **Control:** {ctx.control}.")
    if ctx.other_exporter:
        lines.append(f"- {ctx.other_exporter}")
    lines.append(f"\n_Found by fuzzing with convfuzz (finding `{fid}`); the repro is "
                 "standalone and self-checking (exit 1 when the bug reproduces)._")
    return "\n".join(lines)


def _runtime_name(v: Verdict) -> str:
    # on use: fuzzer.targets imports every component module (torch, onnxruntime...)
    from fuzzer.targets import TargetError, parse

    try:
        family = FAMILIES.get(parse(v.target).runtime.family)
    except TargetError:  # a finding of a target whose package is not installed here
        return "the runtime"
    return family.runs_as if family else "the runtime"


def _summary(case: Case, v: Verdict) -> str:
    chain = " → ".join(o.split("::")[-1] for o in case.ops)
    eager = f"{defect.lang(case).name} eager"
    what = {"wrong_values": f"computes different values than {eager}",
            "wrong_shape": f"produces an output of a different shape than {eager}",
            "wrong_dtype": f"produces an output of a different dtype than {eager}",
            "nan_inf_mismatch": f"produces NaN/Inf where {eager} does not (or vice versa)",
            "crash": "fails with an error", "invalid_model": "produces an invalid ONNX model",
            "process_death": "kills the process", "hang": "hangs",
            "out_of_memory": "exhausts memory"}.get(v.symptom.value if v.symptom else "", "fails")
    where = {Stage.NODE_CONVERSION: "during export", Stage.TRACE: "while tracing",
             Stage.GRAPH_OPTIMIZATION: "in graph optimization",
             Stage.VALIDATION: "(rejected by onnx.checker)",
             Stage.RUNTIME_LOAD: f"when {_runtime_name(v)} loads it",
             Stage.RUNTIME_RUN: f"when {_runtime_name(v)} runs it",
             Stage.COMPARISON: "when run"}.get(v.stage, "") if v.stage else ""
    return f"A model made of `{chain}` {what} {where} on `{v.target}`."


def pytorch_report(case: Case, v: Verdict, ctx: Context, fid: str, repro: str) -> str:
    dynamo = v.target.startswith("dynamo")
    export_note = (
        "\nMaintainers' diagnostics for the dynamo exporter:\n\n```python\n"
        "onnx_program = torch.onnx.export(model, make_inputs(), dynamo=True, report=True, "
        "verify=True)\n```\n" if dynamo else
        "\nNote: this is the TorchScript-based exporter (`dynamo=False`), deprecated upstream; "
        "fixes go to the dynamo exporter, see the line on it below.\n")
    crash = _crash(v, "\n**Error:**\n")
    values = _values(case, v)  # nothing to set side by side for a crash or a rejected model
    expected = f"**Expected vs actual:**\n\n{values}\n" if values else ""
    return f"""### 🐛 Describe the bug

{_summary(case, v)} Minimized by convfuzz to {len(case.nodes)} operator(s); the script below
builds the model in plain PyTorch, exports it with the exact settings, runs ONNX Runtime and
compares with eager (fp32) and an fp64 baseline.

```python
{repro.strip()}
```

{expected}{crash}{export_note}
{_common(case, v, ctx, fid)}

### Versions

```
{_collect_env(ctx.versions)}
```
"""


def _crash(v: Verdict, label: str = "") -> str:
    """The error text of a crash (or a rejected model), fenced; nothing for a wrong value."""
    if not (v.symptom and v.symptom.value in CRASHES):
        return ""
    return f"{label}\n```\n{v.shown_error.strip()[:6000]}\n```\n"


def _described(case: Case, v: Verdict, ctx: Context, fid: str, repro: str, *, heading: str,
               why: str, repro_heading: str) -> str:
    """The part the ONNX Runtime and converter templates share: what fails and why it is the
    project's (`why`), the values or the error, the evidence, then the standalone script."""
    return f"""### {heading}

{_summary(case, v)} {why}

{_values(case, v)}
{_crash(v)}
{_common(case, v, ctx, fid)}

### {repro_heading}

```python
{repro.strip()}
```
"""


def ort_report(case: Case, v: Verdict, ctx: Context, fid: str, repro: str) -> str:
    body = _described(case, v, ctx, fid, repro, heading="Describe the issue", why=(
        "The ONNX reference evaluator computes the expected result on the same\n"
        "ONNX model, so the model is right and ONNX Runtime is not."),
        repro_heading="To reproduce")
    return f"""{body}
### Urgency

Found by fuzzing; no production deadline attached.

### Platform

{platform.system()}

### OS Version

{platform.platform()}

### ONNX Runtime Installation

Released Package

### ONNX Runtime Version or Commit ID

{ctx.versions.get('onnxruntime', '?')}

### ONNX Runtime API

Python

### Architecture

{platform.machine()}

### Execution Provider

Default CPU
"""


def converter_report(case: Case, v: Verdict, ctx: Context, fid: str, repro: str,
                     family: str = "openvino") -> str:
    """OpenVINO's bug form (its fields), ExecuTorch's and litert-torch's (describe, versions)
    share one body: what fails, the values, the standalone script, the versions."""
    # the project's name in its template and the versions it asks for (fuzzer.targets.registry)
    project, libs = FAMILIES[family].form or (FAMILIES[family].display, ())
    tracker = f"https://github.com/{FAMILIES[family].tracker}/issues"
    vers = "\n".join(f"- {k}: {ctx.versions[k]}" for k in libs if k in ctx.versions)
    body = _described(case, v, ctx, fid, repro, heading="Describe the bug",
                      why=f"({project}, CPU, fp32 precision, one thread.)",
                      repro_heading="Step-by-step reproduction")
    return f"""<!-- for {tracker} -->
{body}
### Versions and platform

{vers}
- OS: {platform.platform()} ({platform.machine()}), Python {platform.python_version()}
- Device used for inference: CPU
"""


def _template(v: Verdict) -> Callable[..., str]:
    """The blamed project's tracker: torch.export's own failures go to PyTorch; a runtime's
    failure to the runtime's project; anything else to the exporter's (a converter is both)."""
    # on use: fuzzer.targets imports every component module (torch, onnxruntime...)
    from functools import partial

    from fuzzer.targets import parse

    target = parse(v.target)
    if v.stage == Stage.TRACE:
        return pytorch_report
    family = (target.runtime if v.attribution == Attribution.RUNTIME else target.exporter).family
    if family in FAMILIES and FAMILIES[family].form is not None:
        return partial(converter_report, family=family)
    return TEMPLATES.get(family, pytorch_report)


TEMPLATES: dict[str, Callable[..., str]] = {"onnxruntime": ort_report}


def write(case: Case, v: Verdict, fid: str, out: Path, ctx: Context) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    repro = repro_script(case, v, fid)
    (out / "repro.py").write_text(repro)
    render = _template(v)
    (out / "report.md").write_text(render(case, v, ctx, fid, repro))
    return out / "report.md", out / "repro.py"


def index(rows: list[dict[str, Any]]) -> str:
    lines = ["# convfuzz reports", "", "| finding | target | stage/symptom | attribution | "
             "operators | report |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['id']}` | `{r['target']}` | {r['key']} | {r['attribution']} | "
                     f"{' → '.join(o.split('::')[-1] for o in r['ops'])} | "
                     f"[report]({r['id']}/report.md) |")
    return "\n".join(lines) + "\n"

"""One report per root cause, in the template of the tracker its function belongs to.

A report has a title, what ONNX Runtime does (refuses to load, fails to run, or returns a
wrong shape, dtype or values, with torch's answer beside it), the function at fault and its
source, the instances when the cause has several, a control that passes (the same op with the
trigger removed), linked upstream issues, versions, and the short repro (fuzzer/defect.py).
No fuzzer ids, campaign counts or harness: what a maintainer needs and nothing else.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import defect, ops
from fuzzer.case import Case
from fuzzer.causes import DOCUMENTED, Cause
from fuzzer.corpus import Entry
from fuzzer.exposure import Exposure
from fuzzer.provenance import DTYPE_NOT_ENFORCED
from fuzzer.verdict import Outcome, Verdict

Runner = Callable[[Case, str], Verdict]


@dataclass
class Filed:
    cause: Cause
    case: Case  # the representative instance's Case
    entry: Entry
    verdict: Verdict
    observed: defect.Observed
    repro: str
    control: str
    versions: dict[str, str]
    exposure: list[Exposure] = field(default_factory=list)  # of the cause's instances


def _variants(case: Case) -> list[tuple[str, Case]]:
    """The same op with one trigger removed: a non-default argument back at its default, a
    floating dtype for the inputs, or 0-d inputs grown to rank 1."""
    out: list[tuple[str, Case]] = []
    # an input whose last dim is 1 broadcast against a parameter's: the parameter's size
    sizes = {k.shape[-1] for k in case.consts if k.shape and k.shape[-1] > 1}
    if len(sizes) == 1 and any(x.shape and x.shape[-1] == 1 for x in case.inputs):
        (size,) = sizes
        d = case.to_dict()
        for x in d["inputs"]:
            x["shape"] = [*x["shape"][:-1], size] if x["shape"][-1:] == [1] else x["shape"]
        out.append((f"inputs whose last dim is {size} (the parameter's) instead of 1",
                    Case.from_dict(d)))
    for i, n in enumerate(case.nodes):
        for a in ops.get(n.op).args:
            if a.name in n.attrs and not ops.same_value(n.attrs[a.name], a.default):
                d = case.to_dict()
                d["nodes"][i]["attrs"][a.name] = a.default
                out.append((f"`{a.name}={a.default!r}` (its default) instead of "
                            f"`{a.name}={n.attrs[a.name]!r}`", Case.from_dict(d)))
    if any(x.dtype != "float32" for x in case.inputs):
        d = case.to_dict()
        for x in d["inputs"]:
            x["dtype"], x["values"] = "float32", {"dist": "normal", "scale": 1.0}
        out.append(("float32 inputs instead of " + ", ".join(sorted({
            x.dtype for x in case.inputs})), Case.from_dict(d)))
    if any(not x.shape for x in case.inputs):
        d = case.to_dict()
        for x in d["inputs"]:
            x["shape"] = x["shape"] or [4]
        out.append(("inputs of shape [4] instead of 0-d", Case.from_dict(d)))
    return out


def control(case: Case, target: str, run: Runner) -> str:
    for what, trial in _variants(case):
        try:
            if run(trial, target).outcome == Outcome.PASS:
                return (f"With {what}, the same model exports and matches "
                        f"{defect.lang(case).name}.")
        except Exception:  # a control that cannot run is no control
            continue
    return ""


def prepare(cause: Cause, run: Runner, versions: dict[str, str],
            exposure: dict[str, Exposure] | None = None) -> Filed:
    """Pick the instance with the least degenerate inputs, grow it where the finding allows,
    observe what ONNX Runtime does with it, and write its repro. `exposure`: the corpus's
    exposure by trigger (corpus/exposure.json), by finding id."""
    grown = [(defect.representative(e.case, e.verdict, run), e) for e in cause.instances]
    case, e = min(grown, key=lambda ce: (sum(not x.shape for x in ce[0].inputs),
                                         len(ce[0].inputs), ce[1].id))
    obs = defect.observe_finding(case, e.verdict)
    dtype_kind = cause.blame.get("kind") == DTYPE_NOT_ENFORCED
    src = defect.repro(case, e.verdict, obs, cause.title, dtype_kind)
    if not dtype_kind:  # a dtype defect's inputs are its point: printed exactly
        src = defect.short(case, e.verdict, obs, cause.title, src)
    expo = [exposure[i.id] for i in cause.instances if exposure and i.id in exposure]
    return Filed(cause, case, e, e.verdict, obs, src, control(case, e.target, run), versions,
                 expo)


def _what_runtime_does(f: Filed) -> str:
    o, v, ref = f.observed, f.verdict, defect.lang(f.case).name
    if o.error_class:
        return f"{o.behaviour}:\n\n```\n{o.message.strip()[:1500]}\n```\n"
    ev = v.evidence
    if v.symptom and v.symptom.value in ("wrong_shape", "wrong_dtype", "invalid_model"):
        got = ", ".join(f"{d} {s}" for d, s in zip(o.dtypes or [], o.shapes or [],
                                                    strict=False))
        want = ", ".join(f"{d} {s}" for d, s in zip(o.expected_dtypes or [],
                                                     o.expected_shapes or [], strict=False))
        return f"{o.behaviour}, but returns {got} where {ref} returns {want}.\n"
    return (f"{o.behaviour}, but the values differ: {ref} (fp32) gives "
            f"`{ev.get('expected')}`, the same model in float64 `{ev.get('fp64', '-')}`, "
            f"{o.runtime} `{ev.get('actual')}`.\n")


def _instances(c: Cause) -> str:
    if len(c.instances) < 2:
        return ""
    rows = ["| operator | inputs | function that emitted the node |", "|---|---|---|"]
    for e in c.instances:
        ins = ", ".join(f"{x.dtype}{x.shape}" for x in e.case.inputs)
        fn = (e.meta.get("blame") or {}).get("torchlib") or (e.meta.get("blame") or {}).get(
            "function", "")
        rows.append(f"| `{' → '.join(o.split('::')[-1] for o in e.case.ops)}` | {ins} | "
                    f"`{fn}` |")
    return "**Instances of this cause:**\n\n" + "\n".join(rows) + "\n\n"


def _fault(c: Cause, e: Entry) -> str:
    b = e.meta.get("blame") or c.blame  # the repro's instance
    lines = [f"- **Function at fault:** `{b.get('function')}` ({b.get('component')}), "
             f"`{b.get('source')}`"]
    if b.get("torchlib") and b.get("torchlib", "").split(": ")[-1] != b.get("function"):
        lines.append(f"- **Emitted by:** `{b['torchlib']}`")
    if b.get("evidence"):
        lines.append(f"- **Evidence:** {b['evidence']}")
    why = c.curated.get("why") or e.meta.get("note")  # the cause's, else the curator's note
    if why:
        lines.append(f"- **Analysis:** {why}")
    if c.label == DOCUMENTED:
        lines.append("- **Documented limitation** in the software under test.")
    if c.upstream:
        lines.append("- **Related upstream issues:** " + ", ".join(c.upstream))
    return "\n".join(lines) + "\n"


def _exposure(f: Filed) -> str:
    """Which real architectures the cause reaches: its trigger, not its operators."""
    if not f.exposure:
        return ""
    lines = [f"- {x.line()}" if len(f.exposure) == 1 else
             f"- `{' → '.join(o.split('::')[-1] for o in x.ops)}` ({x.target}): {x.line()}"
             for x in f.exposure]
    return ("## Real-world exposure\n\nAmong the architectures convfuzz mines from "
            "transformers configs (`convfuzz exposure`):\n\n" + "\n".join(lines) + "\n\n")


def exposure_cell(xs: list[Exposure]) -> str:
    """The index's column: architectures with the trigger, of those with the operators."""
    if not xs:
        return "-"
    occurs = sorted({a for x in xs for a in x.occurs})
    ops = max(x.operator_archs for x in xs)
    breaks = sorted({a for x in xs for a in x.breaks})
    cell = f"{len(occurs)} of {ops}"
    if any(x.models for x in xs):
        cell += f", breaks {len(breaks)}"
    return cell


def _versions(vs: dict[str, str], packages: tuple[str, ...]) -> str:
    libs = "\n".join(f"{k}=={vs[k]}" for k in packages if k in vs)
    return f"{libs}\nPython {platform.python_version()}, {platform.platform()}"


# Packages a call needs without the repro importing them (torch.onnx's dynamo exporter).
IMPLIED = {"torch.onnx.export(": ("onnx", "onnxscript")}


def _imports(repro: str) -> str:
    """The packages the repro imports or its calls need, as its Standalone line names them."""
    names = {line.split()[1].split(".")[0] for line in repro.splitlines()
             if line.strip().startswith("import ")}
    names.update(p for call, pkgs in IMPLIED.items() if call in repro for p in pkgs)
    return ", ".join(sorted(names - {"sys", "os"}))


def render(f: Filed) -> str:
    c, ref = f.cause, defect.lang(f.case)
    ctrl = f"**Control:** {f.control}\n\n" if f.control else ""
    return f"""# {c.title}

**Tracker:** {c.blame.get('tracker', '?')}

## What happens

{_what_runtime_does(f)}
{_fault(c, f.entry)}
{_instances(c)}{ctrl}{_exposure(f)}## Repro

Standalone: {_imports(f.repro)} only. Exit 1 while the defect is
there, 0 once it is fixed, 3 when something else happens.

```python
{f.repro.strip()}
```

## Versions

```
{_versions(f.versions, ref.packages)}
```

Found with convfuzz, a fuzzer for {ref.conversion} conversion.
"""


def write(f: Filed, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "repro.py").write_text(f.repro)
    (out / "report.md").write_text(render(f))
    (out / "cause.json").write_text(json.dumps(f.cause.row(), indent=2) + "\n")
    return out / "report.md"


def index(rows: list[dict[str, Any]]) -> str:
    lines = ["# Root causes", "", "One report per root cause (`convfuzz report --all`); "
             "`convfuzz corpus causes` lists every cause with its triage. *Exposure*: mined "
             "architectures whose own block fails the same way (the trigger), of those that "
             "contain the operators (`convfuzz exposure`, corpus/exposure.json).", "",
             "| cause | function | tracker | label | file? | instances | exposure |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        link = f"[{r['cause']}]({r['cause']}/report.md)" if r.get("written") else r["cause"]
        lines.append(f"| {link} | `{r['function']}` | {r['tracker']} | {r['label']} | "
                     f"{'yes' if r['file'] else 'no'}: {r['why'][:120]} | "
                     f"{len(r['instances'])} | {r.get('exposure', '-')} |")
    return "\n".join(lines) + "\n"

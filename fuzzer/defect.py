"""The repro a maintainer files: the module, the export call, the runtime call and one check
of this defect, in a few dozen lines.

The export, pass and runtime lines are the target components' own snippets. What ONNX
Runtime does with the exported model (refuses to load it, fails to run it, or returns
outputs) is observed first by running those same lines in a child process; the repro then
asserts exactly that: the error class and a fragment of its message, or the wrong shape,
dtype or values (judged with the oracle's own rules, `compare.nonfinite_differs` and
`compare.values_off`, whose source it carries verbatim). Exit 1: reproduced; 0: fixed (the
model runs and this defect is gone; for a dtype the exporter does not enforce, also an
exporter error refusing it); 3: changed (any other error or difference).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzer import compare, frontends, targets
from fuzzer.case import Case
from fuzzer.codegen import drawn_inputs, inputs_source, model_source
from fuzzer.targets.registry import FAMILIES
from fuzzer.verdict import Stage, Verdict, failure_key

REPRODUCED, FIXED, CHANGED = 1, 0, 3
SAVES = 200  # characters drawn inputs must save over printed ones to replace them
VALUES = {"wrong_values", "nan_inf_mismatch"}


@dataclass
class Observed:
    """What the exported model does on the runtime, seen from a clean child process."""

    error_class: str = ""  # InvalidGraph, Fail, ... ("" when it ran)
    message: str = ""
    where: str = ""  # export | pass | check | load | run | ""
    shapes: list[list[int]] | None = None
    dtypes: list[str] | None = None
    expected_shapes: list[list[int]] | None = None  # torch's
    expected_dtypes: list[str] | None = None
    runtime: str = "ONNX Runtime"  # the project that runs the model, as reports name it

    @property
    def behaviour(self) -> str:
        if self.where == "check":
            return "onnx's checker (full check) rejects the converted model"
        if self.where == "load":
            return f"{self.runtime} refuses to load the exported model ({self.error_class})"
        if self.where == "run":
            return f"{self.runtime} loads the model but fails to run it ({self.error_class})"
        if self.where == "pass":
            return f"the graph rewriter fails on the exported model ({self.error_class})"
        if self.where == "export":
            return f"the export fails ({self.error_class})"
        return f"{self.runtime} loads and runs the model"


# Between the conversion and the runtime, for an invalid-model finding the runtime accepts:
# the defect is then what onnx's own checker says.
CHECK = "onnx.checker.check_model(onnx.load_from_string(model_bytes), full_check=True)\n"


@dataclass(frozen=True)
class Lang:
    """The framework the repro holds the converter to (the Case's frontend's `defect` entry)."""

    name: str  # how the report names its answer: "torch", "TensorFlow"
    header: Any  # (case, rest) -> imports, the model, `args` and `expected` (a list of arrays)
    baseline: str  # `base`: the same model and inputs in float64
    array: str  # an expected/baseline output as numpy, "{}" standing for it
    packages: tuple[str, ...]  # the versions a report lists
    conversion: str  # what convfuzz fuzzed, as the report's last line says
    drawn_header: Any = None  # header's variant with float inputs drawn (None: not offered)


def lang(case: Case) -> Lang:
    return frontends.of_case(case).load("defect")  # type: ignore[no-any-return]


def _lines(case: Case, target: targets.Target, check: bool = False) -> str:
    """The export, pass and runtime calls, from the components' snippets (and the checker
    before the runtime, with `check`)."""
    parts = []
    for c in target.components:
        if c.snippet is None:
            raise ValueError(f"no repro source for {c.kind} {c.name!r}")
        if check and c is target.components[-1]:
            parts.append(CHECK)
        parts.append(c.snippet(case))
    return "".join(parts)


def _one_line_buffers(src: str) -> str:
    """Each register_buffer call on one line (a [32] weight prints on six): the repro stays
    short, as the inputs do."""
    out: list[str] = []
    depth = 0
    for line in src.splitlines():
        if depth > 0:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
        if depth > 0 or "self.register_buffer(" in line:
            depth += line.count("(") + line.count("[") - line.count(")") - line.count("]")
    return "\n".join(out) + "\n"


def _inline_consts(case: Case, src: str) -> str:
    """The forward's `c0 = 1e-06` and `w0 = self.const_w0` lines folded into their uses."""
    for c in case.consts:
        m = re.search(rf"^        {c.name} = (.+)\n", src, flags=re.M)
        if m is not None:
            head, tail = src[:m.start()], src[m.end():]
            src = head + re.sub(rf"\b{c.name}\b", lambda _, e=m.group(1): e, tail)
    return src


def torch_header(case: Case, rest: str, drawn: bool = False) -> str:
    """Imports (those the script uses), the model, its inputs and torch's answer; with
    `drawn`, float inputs as seeded `torch.randn` (codegen.drawn_inputs)."""
    model = _inline_consts(case, _one_line_buffers(model_source(case))).replace(
        "\n\n", "\n").replace(
        "    def __init__(self) -> None:\n        super().__init__()\n        pass\n", "")
    if drawn:
        make = "(" + ", ".join(drawn_inputs(case)) + ",)"
        model += "torch.manual_seed(0)\n"
    else:
        make = " ".join(inputs_source(case).split("return", 1)[1].split())
    code = (f"{model}model, args = Model().eval(), {make}\n"
            "expected = model(*args)\n")
    used = code + rest
    wanted = [("io." in used, "import io"), (True, "import sys"), (True, "import numpy as np"),
              ("onnx." in used.replace("torch.onnx.", ""), "import onnx"),
              ("ort." in used, "import onnxruntime as ort"), (True, "import torch"),
              ("F." in used, "import torch.nn.functional as F")]
    return "\n".join(x for ok, x in wanted if ok) + "\n\n" + code


TORCH = Lang("torch", torch_header,
             "base = Model().double()(*(x.double() if x.is_floating_point() else x for x in "
             "args))  # fp64\n", "{}.detach()", ("torch", "onnx", "onnxruntime", "onnxscript",
                                                 "numpy"), "PyTorch → ONNX",
             drawn_header=lambda case, rest: torch_header(case, rest, drawn=True))

PROBE = '''
import json, traceback
try:
{body}    out = {{"shapes": [list(np.asarray(a).shape) for a in actual],
           "dtypes": [str(np.asarray(a).dtype) for a in actual]}}
except Exception as e:
    lines = [f.line or "" for f in traceback.extract_tb(e.__traceback__)]
    at = ("check" if any("check_model(" in x for x in lines)
          else "load" if any("InferenceSession(" in x or "ReferenceEvaluator(" in x for x in lines)
          else "run" if any(".run(" in x for x in lines)
          else "pass" if any(x.strip() in {passes} for x in lines) else "export")
    out = {{"error_class": type(e).__name__, "message": str(e)[:2000], "where": at}}
out["expected_shapes"] = [list(t.shape) for t in expected]
out["expected_dtypes"] = [str(t.dtype).removeprefix("torch.") for t in expected]
print("OBSERVED " + json.dumps(out))
'''


def _run_script(src: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a script in a clean child process (what a maintainer's `python repro.py` does)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "script.py"
        p.write_text(src)
        return subprocess.run([sys.executable, str(p)], capture_output=True, text=True,
                              timeout=timeout)


def observe(case: Case, target: str, timeout: float = 300.0, check: bool = False) -> Observed:
    """Run the repro's own lines in a child process and report what happened."""
    t = targets.parse(target)
    passes = {x.strip() for c in t.components if c.kind == "pass" and c.snippet is not None
              for x in c.snippet(case).splitlines() if x.strip()}
    probe = PROBE.format(body=textwrap.indent(_lines(case, t, check), "    "),
                         passes=repr(sorted(passes)))
    r = _run_script(lang(case).header(case, probe) + probe, timeout)
    line = next((x for x in r.stdout.splitlines() if x.startswith("OBSERVED ")), None)
    if line is None:
        return Observed("ProcessDied", f"exit {r.returncode}: {r.stderr[-500:]}", "export",
                        runtime=_runtime(t))
    return Observed(**json.loads(line[len("OBSERVED "):]), runtime=_runtime(t))


def observe_finding(case: Case, v: Verdict, timeout: float = 300.0) -> Observed:
    """What the runtime does; for an invalid-model finding it runs at the converter's own
    shapes and dtypes, what onnx's checker says instead (that is the defect)."""
    obs = observe(case, v.target, timeout)
    if (v.stage == Stage.VALIDATION and not obs.error_class and obs.shapes == obs.expected_shapes
            and obs.dtypes == obs.expected_dtypes):
        return observe(case, v.target, timeout, check=True)
    return obs


def _runtime(t: targets.Target) -> str:
    """The project that runs the model: the last component's (a converter is its own)."""
    return FAMILIES[t.components[-1].family].display


def fragment(message: str) -> str:
    """A stable piece of an error message: its most specific line, without the runtime's
    status prefix, cut before node-specific parenthesised names where it can be."""
    msg = re.sub(r"^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : ", "", message.strip())
    line = max((x.strip() for x in msg.splitlines() if x.strip()), key=len, default="")
    line = re.sub(r"^Node \([^)]*\) ", "", line)
    line = line.split("[ShapeInferenceError] ")[-1]  # onnx's: the innermost message
    line = line.split(" of input parameter")[0].split(" in node (")[0]
    return line[:100].rstrip(" .:(")


def rules_source(names: tuple[str, ...] = ("nonfinite_differs", "values_off")) -> str:
    """The oracle's comparison rules, verbatim minus their docstrings."""
    out = []
    for fn in (getattr(compare, n) for n in names):
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            del body[0]
        out.append(ast.unparse(tree))
    return "\n\n".join(out) + "\n"


def _check_values(v: Verdict, case: Case, runtime: str, ref: Lang) -> str:
    i = max(0, int(v.evidence.get("output", 0) or 0))
    dtype = str(case.inputs[0].dtype) if case.inputs else "float32"
    rtol, atol = compare.TOLERANCE.get(dtype, compare.TOLERANCE["float32"])
    nan = v.symptom is not None and v.symptom.value == "nan_inf_mismatch"
    rule = "nonfinite_differs(a, e, r)" if nan else f"values_off(a, e, r, {rtol}, {atol})[0]"
    return (rules_source(("nonfinite_differs",) if nan else ("values_off",)) + "\n"
            + ref.baseline +
            f"a, e, r = (np.asarray(t, dtype=np.float64) for t in (actual[{i}], "
            f"{ref.array.format(f'expected[{i}]')}, {ref.array.format(f'base[{i}]')}))\n"
            f"if (bad := {rule}).any():\n"
            "    j = tuple(int(k) for k in np.argwhere(bad)[0])\n"
            f"    sys.exit(print(f'REPRODUCED: at {{list(j)}} {ref.name} gives {{e[j]:.7g}} (fp64 "
            f"{{r[j]:.7g}}), {runtime} {{a[j]:.7g}}') or 1)\n")


def repro(case: Case, v: Verdict, obs: Observed, title: str, dtype_kind: bool = False,
          drawn: bool = False) -> str:
    """The short, self-checking repro of this defect; `drawn`: float inputs drawn, not
    printed (see `short`)."""
    t = targets.parse(v.target)
    runtime, ref = _runtime(t), lang(case)
    body = textwrap.indent("".join(x for x in _lines(case, t, obs.where == "check")
                                   .splitlines(keepends=True) if x.strip()), "    ")
    rule = (" The check is convfuzz's oracle rule (fuzzer/compare.py), verbatim."
            if not obs.error_class and v.symptom and v.symptom.value in VALUES else "")
    head = (f'"""{title}\n\nExit 1: reproduced; 0: fixed; 3: changed (another error or '
            f'result).{rule}"""\n')
    exporter_error = ("    if isinstance(e, torch.onnx.errors.OnnxExporterError):\n"
                      "        sys.exit(print('FIXED: the exporter refuses the input types:', e)"
                      " or 0)\n") if dtype_kind else ""
    if obs.error_class:
        frag = fragment(obs.message)
        catch = (f"    if type(e).__name__ == {obs.error_class!r} and {frag!r} in str(e):\n"
                 "        sys.exit(print('REPRODUCED:', e) or 1)\n")
    else:
        catch = ""
    src = ("try:\n" + body + "except Exception as e:\n" + catch + exporter_error
           + "    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)\n")
    for i, (shape, dtype) in enumerate(zip(obs.shapes or [], obs.dtypes or [], strict=False)):
        if v.symptom and v.symptom.value not in VALUES:
            src += (f"if (list(actual[{i}].shape), str(actual[{i}].dtype)) == ({shape!r}, "
                    f"{dtype!r}) != (list(expected[{i}].shape), str(expected[{i}].dtype)"
                    ".removeprefix('torch.')):\n"
                    f"    sys.exit(print('REPRODUCED: output {i} is', actual[{i}].dtype, "
                    f"list(actual[{i}].shape), '{ref.name}:', expected[{i}].dtype, "
                    f"list(expected[{i}].shape)) or 1)\n")
    src += ("if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):\n"
            "    sys.exit(print('CHANGED: other output shapes') or 3)\n")
    if not obs.error_class and v.symptom and v.symptom.value in VALUES:
        src += _check_values(v, case, runtime, ref)
    src += f"print('FIXED: {runtime} runs the model and this defect is gone')\n"
    header = ref.drawn_header if drawn and ref.drawn_header else ref.header
    return head + header(case, src) + src


def short(case: Case, v: Verdict, obs: Observed, title: str, literal: str,
          timeout: float = 300.0) -> str:
    """The repro with drawn inputs where the defect does not depend on the values, drawing
    saves a long literal (it costs a seed line) and the drawn script still exits REPRODUCED
    (run in a child process); else `literal`."""
    if (v.symptom and v.symptom.value in VALUES) or lang(case).drawn_header is None:
        return literal
    src = repro(case, v, obs, title, drawn=True)
    if len(src) > len(literal) - SAVES:
        return literal
    try:
        return src if _run_script(src, timeout).returncode == REPRODUCED else literal
    except subprocess.TimeoutExpired:
        return literal


def representative(case: Case, v: Verdict, run: Any) -> Case:
    """Grow degenerate inputs (0-d, sizes of 1) to typical ones when the finding still fails
    the same way; the minimized Case otherwise."""
    d = case.to_dict()
    for grow in (lambda s: [4] if not s else [4 if n == 1 else n for n in s],
                 lambda s: s or [4]):
        trial = json.loads(json.dumps(d))
        for x in trial["inputs"]:
            x["shape"] = grow(x["shape"])
        if trial["inputs"] == d["inputs"]:
            continue
        try:
            c = Case.from_dict(trial)
            now = run(c, v.target)
        except Exception:  # an invalid growth (ops that need a size) is no candidate
            continue
        if failure_key(now) == failure_key(v):
            return c
    return case

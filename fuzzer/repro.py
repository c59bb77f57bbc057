"""Standalone repro scripts: a finding's minimized Case as plain PyTorch code, exported with the
finding's exact settings, run on its runtime, compared with torch (fp32 and the fp64
baseline). The script imports torch, onnx, onnxruntime and numpy only (plus the ONNX pass
project when the finding needs one; a finding on OpenVINO, ExecuTorch or LiteRT imports that
converter, from its component's snippet, instead of ONNX Runtime), and exits 1 when the bug
reproduces, 0 when it does not.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from fuzzer import compare, targets
from fuzzer.case import Case, split_ref
from fuzzer.codegen import inputs_source, model_source
from fuzzer.compare import TOLERANCE, judged_dtype, producer
from fuzzer.edit import with_outputs
from fuzzer.model import infer
from fuzzer.ops.spec import GatherTies
from fuzzer.verdict import Symptom, Verdict

ISOLATE = {Symptom.PROCESS_DEATH, Symptom.HANG, Symptom.OUT_OF_MEMORY}


def _function(name: str, params: str, comp: targets.Component, case: Case, ret: str) -> str:
    """The component's own snippet wrapped as a function."""
    if comp.snippet is None:
        raise ValueError(f"no repro source for {comp.kind} {comp.name!r}")
    body = textwrap.indent(comp.snippet(case), "    ")
    return f"def {name}({params}):\n{body}    return {ret}\n"


def export_source(case: Case, exporter: targets.Component) -> str:
    return _function("export", "model, args", exporter, case, "model_bytes")


def passes_source(passes: list[targets.Component], case: Case) -> str:
    """Source applying the chain's ONNX passes in order, each from its own snippet."""
    if not passes:
        return "def apply_passes(model_bytes):\n    return model_bytes\n"
    return "\n\n".join(_function(f"pass{i}", "model_bytes", p, case, "model_bytes")
                         for i, p in enumerate(passes)) + (
        "\n\ndef apply_passes(model_bytes):\n" + "".join(
            f"    model_bytes = pass{i}(model_bytes)\n" for i in range(len(passes)))
        + "    return model_bytes\n")


def runtime_source(runtime: targets.Component, case: Case) -> str:
    return _function("run_onnx", "model_bytes, args", runtime, case, "actual")


def rules_source() -> str:
    """The oracle's own comparison rules (fuzzer/compare.py), verbatim: never a second copy."""
    return "\n\n".join(inspect.getsource(f) for f in (compare.nonfinite_differs,
                                                      compare.values_off))


def _judged(case: Case) -> dict[int, str]:
    """Outputs the oracle holds to another dtype's tolerance than their own."""
    try:
        metas = infer(case)
    except Exception:
        return {}
    out: dict[int, str] = {}
    for i, ref in enumerate(case.outputs):
        base, idx = split_ref(ref)
        own = metas[base][idx or 0].dtype
        judged = judged_dtype(case, i, lambda n: [m.dtype for m in metas.get(n, ())])
        if own in TOLERANCE and judged != own:
            out[i] = judged
    return out


def _rules(case: Case) -> tuple[dict[int, tuple[int, Any, bool]], dict[int, int], Case | None]:
    """The comparison rules the oracle applied that a plain comparison would miss: index
    outputs of operators with ties (output -> (tie input, dim, keepdim)), outputs whose order
    is unspecified (output -> dim), and a Case computing the tie operators' inputs."""
    ties: dict[int, tuple[int, Any, bool]] = {}
    unordered: dict[int, int] = {}
    tie_inputs: list[str] = []
    for i in range(len(case.outputs)):
        found = producer(case, i)
        if found is None:
            continue
        node, spec, attrs, idx = found
        rule = spec.ties.get(idx)
        if isinstance(rule, GatherTies) and node.args:
            if node.args[0] not in tie_inputs:
                tie_inputs.append(node.args[0])
            keep = True if rule.keepdim_key is None else bool(attrs.get(rule.keepdim_key))
            ties[i] = (tie_inputs.index(node.args[0]), attrs.get(rule.dim_key), keep)
        elif rule is not None:
            raise ValueError(f"no repro source for the tie rule of {spec.name}")
        if spec.unordered is not None and spec.unordered(attrs) is not None:
            unordered[i] = int(spec.unordered(attrs))
    if not tie_inputs:
        return ties, unordered, None
    return ties, unordered, with_outputs(case, tie_inputs)


TIE_INPUTS = '''def tie_inputs(args):
    return ()
'''

COMPARE = '''TOLERANCE = {tolerance!r}  # (rtol, atol) by dtype, as convfuzz judged it
# Outputs held to a less precise dtype's tolerance: the least precise floating dtype on
# their data flow (a float32 stage's rounding stays in a float64 output).
JUDGED_AS = {judged!r}
# Index outputs of operators with ties (argmax, topk, sort...) are judged, as convfuzz judges
# them, by the input values they select: output -> (which tie input, dim, keepdim).
TIES = {ties!r}
# Outputs whose element order is unspecified (topk with sorted=False): output -> dim, compared
# sorted along it.
UNORDERED = {unordered!r}


def select(x, dim, keepdim, idx):
    """The values of x that the indices pick along dim (all of x flattened when dim is None)."""
    if dim is None:
        return x.reshape(-1)[idx.reshape(-1).long()]
    idx = idx.long()
    if not keepdim and x.dim() > 0:
        idx = idx.unsqueeze(dim)
    return x if x.dim() == 0 else torch.gather(x, dim, idx)


def compare_ties(i, x, e, a):
    dim, keepdim = TIES[i][1:]
    try:
        want, have = select(x, dim, keepdim, e), select(x, dim, keepdim, torch.from_numpy(
            a.astype(np.int64)))
    except (RuntimeError, IndexError) as err:
        return f"output {{i}}: index out of range ({{err}})"
    if i in UNORDERED:
        want, have = (torch.sort(t, dim=UNORDERED[i]).values for t in (want, have))
    if torch.equal(want, have) or (want.is_floating_point() and torch.allclose(
            want, have, equal_nan=True)):
        return None
    return (f"output {{i}}: the indices select different values: torch {{want.flatten()[:8]}}, "
            f"ONNX {{have.flatten()[:8]}} (ties allowed)")


def compare(expected, baseline, actual, ties_x=()):
    """None when ONNX matches torch; else a description of the first bad output. A value is
    wrong only where ONNX is farther from the fp64 baseline than torch's own result by more
    than the dtype's tolerance."""
    if len(actual) != len(expected):
        return f"expected {{len(expected)}} outputs, got {{len(actual)}}"
    for i, (e, b, a) in enumerate(zip(expected, baseline, actual)):
        a = np.asarray(a)
        if tuple(a.shape) != tuple(e.shape):
            return f"output {{i}}: expected shape {{list(e.shape)}}, got {{list(a.shape)}}"
        want = str(e.dtype).removeprefix("torch.")
        if str(a.dtype) != want:
            return f"output {{i}}: expected dtype {{want}}, got {{a.dtype}}"
        if i in TIES:
            problem = compare_ties(i, ties_x[TIES[i][0]], e, a)
            if problem:
                return problem
            continue
        if i in UNORDERED:
            d = UNORDERED[i]
            e, b = torch.sort(e, dim=d).values, torch.sort(b, dim=d).values
            a = torch.sort(torch.from_numpy(a), dim=d).values.numpy()
        if not e.is_floating_point():
            e = e.numpy()
            bad = a != e
            if bad.any():
                j = tuple(int(k) for k in np.argwhere(bad)[0])
                return f"output {{i}} at {{list(j)}}: expected {{e[j]!r}}, got {{a[j]!r}}"
            continue
        e64, b64 = e.double().numpy(), b.double().numpy()
        a64 = a.astype(np.float64)
        nan_bad = nonfinite_differs(a64, e64, b64)
        if nan_bad.any():
            j = tuple(int(k) for k in np.argwhere(nan_bad)[0])
            return (f"output {{i}} at {{list(j)}}: expected {{e64[j]!r}}, got {{a64[j]!r}} "
                    f"(NaN/Inf differ)")
        rtol, atol = TOLERANCE.get(JUDGED_AS.get(i, str(e.dtype).removeprefix("torch.")),
                                   TOLERANCE["float32"])
        bad, err, _ = values_off(a64, e64, b64, rtol, atol)
        if bad.any():
            j = tuple(int(k) for k in np.unravel_index(int(np.argmax(np.where(bad, err, -1))),
                                                      a64.shape))
            return (f"output {{i}}: {{int(bad.sum())}}/{{a64.size}} values off; at {{list(j)}} "
                    f"torch gives {{e64[j]:.7g}} (fp64 baseline {{b64[j]:.7g}}), ONNX gives "
                    f"{{a64[j]:.7g}}")
    return None
'''

MAIN = '''def main():
    model = Model().eval()
    args = make_inputs()
    with torch.no_grad():
        expected = model(*args)
        # The fp64 baseline: the same model and inputs in double precision.
        baseline = Model().double().eval()(
            *(a.double() if a.is_floating_point() else a for a in args))
        ties_x = tie_inputs(args)
    try:
        model_bytes = apply_passes(export(model, args))
        onnx.checker.check_model(onnx.load_from_string(model_bytes), full_check=True)
        actual = run_onnx(model_bytes, args)
    except Exception as e:  # the finding may be exactly this error
        print(f"REPRODUCED: {{type(e).__name__}}: {{e}}")
        return 1
    problem = compare(expected, baseline, actual, ties_x)
    if problem is None:
        print("NOT REPRODUCED: the ONNX model matches torch.")
        return 0
    print(f"REPRODUCED: {{problem}}")
    return 1
'''

# A converter that runs the torch module itself (OpenVINO's PyTorch frontend, ExecuTorch,
# LiteRT): no ONNX in between.
CONVERTER_MAIN = MAIN.replace(
    """        model_bytes = apply_passes(export(model, args))
        onnx.checker.check_model(onnx.load_from_string(model_bytes), full_check=True)
        actual = run_onnx(model_bytes, args)""",
    """        actual = convert_and_run(model, args)""").replace(
    "the ONNX model matches torch", "the converted model matches torch")

ISOLATED_MAIN = '''def isolated(timeout={timeout}):
    """This finding kills or hangs the process: run main() in a child and judge from outside."""
    try:
        r = subprocess.run([sys.executable, __file__, "--child"], timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"REPRODUCED: no answer within {{timeout}} s (hang)")
        return 1
    if r.returncode < 0:
        print(f"REPRODUCED: the process died with signal {{-r.returncode}}")
        return 1
    return r.returncode
'''


def repro_script(case: Case, v: Verdict, finding_id: str = "") -> str:
    """The finding's standalone script, written by its Case's frontend (fuzzer.frontends)."""
    from fuzzer import frontends  # on use: frontends names this module's function below

    return frontends.of_case(case).load("repro")(case, v, finding_id)


def torch_repro_script(case: Case, v: Verdict, finding_id: str = "") -> str:
    """A PyTorch Case's repro: torch, onnx, onnxruntime and numpy."""
    target = targets.parse(v.target)
    converter = target.exporter.kind == "converter"
    passes = list(target.components[1:-1])
    isolate = v.symptom in ISOLATE
    # Only what the chain runs: a converter's package (its snippet imports it) instead of
    # onnx, and ONNX Runtime only when it is the runtime.
    ort = target.runtime.family == "onnxruntime"
    uses = ", ".join(["torch", *([] if converter else ["onnx"]),
                      "onnxruntime" if ort else target.runtime.family, "numpy"])
    head = (f'"""convfuzz finding {finding_id}: {v.key} on {v.target}.\n\n'
            f"Operator chain: {' -> '.join(case.ops)}\n"
            f"Recorded: {v.shown_detail[:200]}\n\n"
            f"Standalone ({uses}). Exit 1: the bug reproduces; exit 0:\n"
            'it does not. Found by fuzzing with convfuzz.\n"""\n')
    imports = ["import io", *(["import subprocess"] if isolate else []), "import sys", "",
               "import numpy as np", *([] if converter else ["import onnx"]),
               *(["import onnxruntime as ort"] if ort else []), "import torch",
               "import torch.nn.functional as F"]
    chain = ([_function("convert_and_run", "model, args", target.exporter, case, "actual")]
             if converter else [export_source(case, target.exporter),
                                passes_source(passes, case),
                                runtime_source(target.runtime, case)])
    ties, unordered, sub = _rules(case)
    tie_code = TIE_INPUTS if sub is None else (
        model_source(sub, "TieInputs") + "\n\ndef tie_inputs(args):\n    \"\"\"The inputs of "
        "the tie operators, as torch computes them.\"\"\"\n    return TieInputs().eval()(*args)\n")
    parts: list[Any] = [
        head, "\n".join(imports), "", f"INPUT_NAMES = {[x.name for x in case.inputs]!r}", "",
        model_source(case), tie_code, inputs_source(case),
        *chain,
        rules_source(),
        COMPARE.format(tolerance=TOLERANCE, judged=_judged(case), ties=ties,
                       unordered=unordered), "",
        (CONVERTER_MAIN if converter else MAIN).format()]
    if isolate:
        parts += ["", ISOLATED_MAIN.format(timeout=60),
                  'if __name__ == "__main__":\n    sys.exit(main() if "--child" in sys.argv '
                  "else isolated())\n"]
    else:
        parts += ['if __name__ == "__main__":\n    sys.exit(main())\n']
    return "\n".join(p.rstrip("\n") + "\n" if isinstance(p, str) else p for p in parts)

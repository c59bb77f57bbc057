"""Standalone repro scripts for TensorFlow findings: the minimized Case as a tf.Module (its
weights as tf.Variables, its graph a tf.function with the Case's TensorSpec signature, each
operator the catalogue's own template), converted with the finding's tf2onnx opset, run on
its runtime, compared with TF eager (fp32, and the fp64 baseline) by the oracle's own rules.
It imports tensorflow, tf2onnx, onnxruntime and numpy only (keras when an operator is a Keras
op; onnx when the chain needs it), and exits 1 when the bug reproduces, 0 when it does not.
Written in the driver: nothing here imports TensorFlow.
"""

from __future__ import annotations

import re

import numpy as np

from fuzzer import defect, targets
from fuzzer.case import Case, split_ref
from fuzzer.compare import TOLERANCE
from fuzzer.model import infer, make_inputs
from fuzzer.ops import get
from fuzzer.ops.spec import literal_src
from fuzzer.repro import _function, passes_source, rules_source, runtime_source
from fuzzer.tf.env import ENV
from fuzzer.tf.model import const_array, param_arrays
from fuzzer.verdict import Stage, Verdict


def array_literal(a: np.ndarray) -> str:
    body = np.array2string(a, separator=", ", threshold=a.size + 1, max_line_width=96,
                           floatmode="unique" if a.dtype.kind == "f" else "maxprec")
    body = body.replace("nan", "np.nan").replace("inf", "np.inf")
    return f"np.array({body}, dtype=np.{a.dtype})"


def _ref(name: str) -> str:
    base, idx = split_ref(name)
    return base if idx is None else f"{base}[{idx}]"


def model_source(case: Case) -> str:
    params = param_arrays(case, infer(case))
    lines = ["class Model(tf.Module):",
             "    def __init__(self, wide=False):",
             "        super().__init__()",
             "        # wide: the fp64 baseline, every floating tensor in double precision",
             "        w = (lambda a: a.astype(np.float64) if wide and a.dtype.kind == \"f\" "
             "else a)"]
    for n, arrays in zip(case.nodes, params, strict=True):
        for p, a in arrays.items():
            lines.append(f"        self.{n.id}_{p} = tf.Variable(w({_indent(array_literal(a))}),"
                         f" trainable=False)")
    for c in case.consts:
        v = const_array(case, c.name)
        lines.append(f"        self.{c.name} = " + (literal_src(v) if c.scalar else
                                                    f"tf.constant(w({array_literal(v)}))"))
    specs = ", ".join(f"tf.TensorSpec({x.shape!r}, w(np.zeros(0, np.{x.dtype})).dtype, "
                      f"name={x.name!r})" for x in case.inputs)
    lines += [f"        self.signature = [{specs}]",
              "        self.function = tf.function(self.forward, "
              "input_signature=self.signature, autograph=False)", "",
              f"    def forward(self, {', '.join(x.name for x in case.inputs)}):"]
    for c in case.consts:
        lines.append(f"        {c.name} = self.{c.name}")
    for n in case.nodes:
        spec = get(n.op)
        pnames = {p: f"self.{n.id}_{p}" for p in params[case.nodes.index(n)]}
        lines.append(f"        {n.id} = {spec.render([_ref(a) for a in n.args], n.attrs, pnames)}")
    outs = [_ref(o) for o in case.outputs]
    lines.append(f"        return ({', '.join(outs)},)")
    return "\n".join(lines) + "\n"


def inputs_source(case: Case) -> str:
    arrays = [t.numpy() for t in make_inputs(case)]
    body = ",\n    ".join(_indent(array_literal(a), 4) for a in arrays)
    return (f"INPUTS = [\n    {body},\n]\n\n\ndef make_inputs(wide=False):\n"
            "    return [tf.constant(a.astype(np.float64) if wide and a.dtype.kind == \"f\" "
            "else a) for a in INPUTS]\n")


def _indent(text: str, n: int = 12) -> str:
    return text.replace("\n", "\n" + " " * n)


COMPARE = '''TOLERANCE = {tolerance!r}  # (rtol, atol) by dtype, as convfuzz judged it


def compare(expected, baseline, actual):
    """None when ONNX matches TF; else the first bad output. A value is wrong only where ONNX
    is farther from the fp64 baseline than TF's own result by more than the tolerance."""
    if len(actual) != len(expected):
        return f"expected {{len(expected)}} outputs, got {{len(actual)}}"
    for i, (e, b, a) in enumerate(zip(expected, baseline, actual)):
        a = np.asarray(a)
        if a.shape != e.shape:
            return f"output {{i}}: expected shape {{list(e.shape)}}, got {{list(a.shape)}}"
        if a.dtype != e.dtype:
            return f"output {{i}}: expected dtype {{e.dtype}}, got {{a.dtype}}"
        if e.dtype.kind != "f":
            bad = a != e
            if bad.any():
                j = tuple(int(k) for k in np.argwhere(bad)[0])
                return f"output {{i}} at {{list(j)}}: expected {{e[j]!r}}, got {{a[j]!r}}"
            continue
        e64, b64, a64 = e.astype(np.float64), b.astype(np.float64), a.astype(np.float64)
        nan_bad = nonfinite_differs(a64, e64, b64)
        if nan_bad.any():
            j = tuple(int(k) for k in np.argwhere(nan_bad)[0])
            return (f"output {{i}} at {{list(j)}}: TF gives {{e64[j]!r}}, ONNX gives "
                    f"{{a64[j]!r}} (NaN/Inf differ)")
        rtol, atol = TOLERANCE.get(str(e.dtype), TOLERANCE["float32"])
        bad, err, _ = values_off(a64, e64, b64, rtol, atol)
        if bad.any():
            j = tuple(int(k) for k in np.unravel_index(int(np.argmax(np.where(bad, err, -1))),
                                                      a64.shape))
            return (f"output {{i}}: {{int(bad.sum())}}/{{a64.size}} values off; at {{list(j)}} "
                    f"TF gives {{e64[j]:.7g}} (fp64 baseline {{b64[j]:.7g}}), ONNX gives "
                    f"{{a64[j]:.7g}}")
    return None
'''

# The checker call of the short repro (fuzzer.defect), as a line of main()'s try block.
CHECK = "\n        " + defect.CHECK.rstrip("\n")

MAIN = '''def main():
    model = Model()
    args = make_inputs()
    expected = [o.numpy() for o in model.forward(*args)]  # TF eager
    try:  # the fp64 baseline: the same model and inputs in double precision
        baseline = [o.numpy() for o in Model(wide=True).forward(*make_inputs(wide=True))]
    except Exception:  # an op without a float64 kernel: judge against fp32 alone
        baseline = expected
    try:
        model_bytes = apply_passes(export(model, args)){check}
        actual = run_onnx(model_bytes, args)
    except Exception as e:  # the finding may be exactly this error
        print(f"REPRODUCED: {type(e).__name__}: {e}")
        return 1
    problem = compare(expected, baseline, actual)
    if problem is None:
        print("NOT REPRODUCED: the ONNX model matches TensorFlow.")
        return 0
    print(f"REPRODUCED: {problem}")
    return 1
'''


def repro_script(case: Case, v: Verdict, finding_id: str = "") -> str:
    target = targets.parse(v.target)
    passes = list(target.components[1:-1])
    runtime = target.runtime.family
    chain = [_function("export", "model, args", target.exporter, case, "model_bytes"),
             passes_source(passes, case), runtime_source(target.runtime, case)]
    # An invalid-model finding is the checker's: tf2onnx returns the model, ONNX Runtime may
    # run it anyway (with a shape warning), so only onnx's full check asserts this defect.
    check = CHECK if v.stage == Stage.VALIDATION else ""
    body = "\n".join(chain) + check
    uses = ["tensorflow", "tf2onnx", *(["onnx"] if check else []),
            "onnxruntime" if runtime == "onnxruntime" else runtime, "numpy"]
    head = (f'"""convfuzz finding {finding_id}: {v.key} on {v.target}.\n\n'
            f"Operator chain: {' -> '.join(case.ops)}\n"
            f"Recorded: {v.detail[:200]}\n\n"
            f"Standalone ({', '.join(uses)}). Exit 1: the bug reproduces; exit 0:\n"
            'it does not. Found by fuzzing with convfuzz."""\n')
    templates = " ".join(get(n.op).template for n in case.nodes)
    imports = ["import os", "import sys", "",
               f"os.environ.update({ENV!r})  # before TF loads: deterministic, quiet", "",
               "import numpy as np",
               *(["import onnx"] if re.search(r"(?<![\w])onnx\.", body) else []),
               *(["import onnxruntime as ort"] if re.search(r"\bort\.", body) else []),
               "import tensorflow as tf",
               *(["import keras"] if "keras." in templates else []), "",
               "tf.config.threading.set_intra_op_parallelism_threads(1)",
               "tf.config.threading.set_inter_op_parallelism_threads(1)"]
    parts = [head, "\n".join(imports), "", model_source(case), inputs_source(case), *chain,
             rules_source(), COMPARE.format(tolerance=TOLERANCE), "",
             MAIN.replace("{check}", check),
             'if __name__ == "__main__":\n    sys.exit(main())\n']
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)

"""The short repro's TensorFlow side (fuzzer.defect.Lang): the tf.Module, its inputs and TF
eager's answer, for the filed report of a TensorFlow finding. Written in the driver: nothing
here imports TensorFlow."""

from __future__ import annotations

import re

from fuzzer.case import Case
from fuzzer.defect import Lang
from fuzzer.model import make_inputs
from fuzzer.ops import get
from fuzzer.tf.env import ENV
from fuzzer.tf.repro import array_literal, model_source


def tf_header(case: Case, rest: str) -> str:
    """Imports (those the script uses), the model, its inputs and TF eager's answer."""
    inputs = "INPUTS = [" + ", ".join(" ".join(array_literal(t.numpy()).split())
                                      for t in make_inputs(case)) + "]"
    model = "\n".join(x for x in model_source(case).splitlines()
                      if x.strip() and not x.strip().startswith("#"))  # the repro's: short
    code = (f"{model}\n{inputs}\n"
            "model, args = Model(), [tf.constant(a) for a in INPUTS]\n"
            "expected = [o.numpy() for o in model.forward(*args)]  # TF eager\n")
    used = code + rest
    templates = " ".join(get(n.op).template for n in case.nodes)
    onnx = re.search(r"(?<![\w])onnx\.", used) is not None  # not tf2onnx.
    wanted = [(True, "import os"), (True, "import sys"),
              (True, f"os.environ.update({ENV!r})  # before TF loads: deterministic, quiet"),
              (True, "import numpy as np"), (onnx, "import onnx"),
              ("ort." in used, "import onnxruntime as ort"), (True, "import tensorflow as tf"),
              ("keras." in templates, "import keras")]
    return "\n".join(x for ok, x in wanted if ok) + "\n\n" + code


TF = Lang("TensorFlow", tf_header,
          "base = Model(wide=True).forward(*(tf.constant(a.astype(np.float64) if a.dtype.kind "
          "== 'f' else a) for a in INPUTS))  # fp64\n", "np.asarray({})",
          ("tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "numpy"), "TensorFlow → ONNX")

"""TensorFlow, imported once per worker process and set up for determinism: oneDNN's
rewrites off (they change float results from run to run of the same graph), one thread,
quiet C++ logging. Never called by a campaign's driver (fuzzer.frontends says why)."""

from __future__ import annotations

import os
from types import ModuleType

from fuzzer.extras import require

# Set before TensorFlow loads; a repro script sets the same ones (fuzzer/tf/repro.py).
ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}

_TF: list[ModuleType] = []


def tf() -> ModuleType:
    if _TF:
        return _TF[0]
    require("tensorflow", "a TensorFlow Case")
    require("tf2onnx", "a TensorFlow Case")
    for k, v in ENV.items():
        os.environ.setdefault(k, v)
    import tensorflow  # on use: worker processes only, after ENV is set

    try:  # only before TensorFlow's runtime starts; a second call in-process is refused
        tensorflow.config.threading.set_intra_op_parallelism_threads(1)
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    _TF.append(tensorflow)
    return tensorflow


def keras() -> ModuleType:
    tf()
    import keras as k  # on use: worker processes only, after TensorFlow

    return k

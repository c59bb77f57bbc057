"""tf2onnx as an exporter: a TensorFlow Case's tf.function (fuzzer.tf.model) converted by
`tf2onnx.convert.from_function(..., opset=N)`, then any ONNX pass and runtime of the chain
(`tf2onnx-17/ort-all`). Its Cases are the TensorFlow frontend's.

tf2onnx does not raise on an operator it has no handler for: it logs "Unsupported ops" and
returns a model that still holds the TensorFlow node. That log is its honest refusal
(`unsupported`) when the model it returned is invalid; a model the checker accepts despite
the log goes on to the runtime and the comparison like any other (never silently passed).
Needs the `tf` extra.
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections.abc import Iterator
from typing import Any

import onnx

from fuzzer.extras import require
from fuzzer.targets.quiet import quiet
from fuzzer.targets.registry import Artifact, Component, Opsets, StageFailure, component
from fuzzer.verdict import Stage, Symptom

OPSETS = (13, 14, 15, 16, 17, 18)  # tf2onnx 1.17 converts to opsets up to 18
UNSUPPORTED_LOG = re.compile(r"Unsupported ops|is not supported|not supported for opset", re.I)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _log() -> Iterator[_Records]:
    """tf2onnx's error records (its only word about operators it cannot convert)."""
    h = _Records()
    logger = logging.getLogger("tf2onnx")
    logger.addHandler(h)
    try:
        yield h
    finally:
        logger.removeHandler(h)


def _stage(e: BaseException) -> Stage:
    """Tracing the tf.function is TensorFlow's (TRACE); tf2onnx's optimizer is graph
    optimization; the rest of tf2onnx is node conversion."""
    files = [f.f_code.co_filename for f, _ in traceback.walk_tb(e.__traceback__)]
    mine = [f for f in files if "/tf2onnx/" in f]
    if not mine:
        return Stage.TRACE
    return Stage.GRAPH_OPTIMIZATION if "/tf2onnx/optimizer/" in mine[-1] else \
        Stage.NODE_CONVERSION


def snippet(level: int) -> Any:
    def source(case: Any) -> str:
        return ("import tf2onnx\n\nproto, _ = tf2onnx.convert.from_function(\n"
                f"    model.function, input_signature=model.signature, opset={level})\n"
                "model_bytes = proto.SerializeToString()\n")
    return source


def tf2onnx(opset: str) -> Component:
    level = int(opset)
    if level not in OPSETS:
        raise ValueError(f"tf2onnx opset must be one of {', '.join(map(str, OPSETS))}, "
                         f"got {level}")
    require("tensorflow", f"target component 'tf2onnx-{level}'")
    require("tf2onnx", f"target component 'tf2onnx-{level}'")
    name = f"tf2onnx-{level}"

    def run(art: Artifact) -> None:
        from fuzzer.tf.env import tf  # worker processes only: TensorFlow loads here

        tf()
        import tf2onnx as t2o  # the converter's optional package, imported on use

        try:
            with quiet(), _log() as log:
                proto, _ = t2o.convert.from_function(
                    art.module.function, input_signature=art.module.signature, opset=level)
        except Exception as e:
            raise StageFailure(_stage(e), f"{type(e).__name__}: {e}") from e
        model = proto.SerializeToString()
        art.set_model(name, "export", model)
        refused = [line for line in log.lines if UNSUPPORTED_LOG.search(line)]
        if not refused:
            return
        art.notes["tf2onnx_log"] = refused
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:
            raise StageFailure(
                Stage.NODE_CONVERSION,
                f"tf2onnx: {refused[-1]} (the model it returned anyway is invalid: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})",
                Symptom.UNSUPPORTED) from e
        # A model the checker accepts despite the log runs on: the comparison judges it.

    return Component("exporter", name, run, "tf2onnx", {"opset": level},
                     snippet=snippet(level), frontend="tensorflow")


component("exporter", r"tf2onnx-(?P<opset>\d+)", ("tf2onnx-17", "tf2onnx-13"),
          "tf2onnx.convert.from_function on a TensorFlow Case's tf.function, at an opset "
          "13-18 (TensorFlow frontend). Needs the tf extra",
          opsets=Opsets("tf2onnx", OPSETS, lambda o: f"tf2onnx-{o}"))(tf2onnx)

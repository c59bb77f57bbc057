"""Runtimes: ONNX Runtime (CPU) at a graph optimization level, and the ONNX reference
evaluator (used as a target and, by the oracle, as the referee for attribution)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fuzzer.targets.registry import Artifact, Component, StageFailure, component
from fuzzer.verdict import Stage, Symptom


def feeds(art: Artifact, graph_inputs: list[str]) -> dict[str, np.ndarray]:
    """Map the ONNX graph's inputs to the Case's: by name, else by position (an exporter may
    rename or drop inputs it found unused)."""
    by_name = {x.name: t for x, t in zip(art.case.inputs, art.inputs, strict=True)}
    ordered = [t for x, t in zip(art.case.inputs, art.inputs, strict=True)]
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(graph_inputs):
        t = by_name.get(name, ordered[i] if i < len(ordered) else None)
        if t is None:
            raise StageFailure(Stage.RUNTIME_LOAD, f"graph input {name!r} has no Case input")
        out[name] = t.detach().numpy()
    return out


def _bfloat16_output(sess: Any, e: Exception) -> StageFailure | None:
    """ONNX Runtime's Python API cannot return a bfloat16 output ("No corresponding Numpy
    type"). The model boundary never carries one (a bfloat16 result leaves the model as
    float32), so such an output is the model's wrong dtype, not a runtime crash."""
    if "No corresponding Numpy type" not in str(e):
        return None
    for i, o in enumerate(sess.get_outputs()):
        if o.type == "tensor(bfloat16)":
            return StageFailure(Stage.COMPARISON, f"output {i}: expected dtype float32, got "
                                "bfloat16 (the model declares it; ONNX Runtime cannot hand "
                                "it to numpy)", Symptom.WRONG_DTYPE)
    return None


_LEVELS = ("disabled", "basic", "extended", "all")


def ort(level: str) -> Component:
    # on use: a component imports its heavy dependency when it runs
    import onnxruntime as rt

    opt = {"disabled": rt.GraphOptimizationLevel.ORT_DISABLE_ALL,
           "basic": rt.GraphOptimizationLevel.ORT_ENABLE_BASIC,
           "extended": rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
           "all": rt.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]

    def run(art: Artifact) -> None:
        so = rt.SessionOptions()
        so.graph_optimization_level = opt
        so.intra_op_num_threads = 1  # deterministic and fair when workers run side by side
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            sess = rt.InferenceSession(art.model, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise StageFailure(Stage.RUNTIME_LOAD, e) from e
        try:
            f = feeds(art, [i.name for i in sess.get_inputs()])
            art.outputs = [np.asarray(o) for o in sess.run(None, f)]
        except StageFailure:
            raise
        except Exception as e:
            raise _bfloat16_output(sess, e) or StageFailure(Stage.RUNTIME_RUN, e) from e

    return Component("runtime", f"ort-{level}", run, "onnxruntime",
                     {"graph_optimization_level": level, "provider": "CPUExecutionProvider"})


component("runtime", r"ort-(?P<level>disabled|basic|extended|all)", ("ort-all", "ort-disabled"),
          "ONNX Runtime CPU at a graph optimization level: disabled, basic, extended, all")(ort)


def reference() -> Component:
    def run(art: Artifact) -> None:
        art.outputs = run_reference(art)

    return Component("runtime", "ref", run, "onnx", {})


def run_reference(art: Artifact) -> list[np.ndarray]:
    # on use: a component imports its heavy dependency when it runs
    import onnx
    from onnx.reference import ReferenceEvaluator

    try:
        proto = onnx.load_from_string(art.model)
        ev = ReferenceEvaluator(proto)
    except Exception as e:
        raise StageFailure(Stage.RUNTIME_LOAD, e) from e
    try:
        f: dict[str, Any] = feeds(art, list(ev.input_names))
        return [np.asarray(o) for o in ev.run(None, f)]
    except StageFailure:
        raise
    except Exception as e:
        raise StageFailure(Stage.RUNTIME_RUN, e) from e


component("runtime", r"ref", ("ref",), "the ONNX reference evaluator (onnx.reference), slow "
          "but written from the spec: the referee for attribution")(reference)

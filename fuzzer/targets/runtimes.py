"""Runtimes: ONNX Runtime (CPU) at a graph optimization level, and the ONNX reference
evaluator (used as a target and, by the oracle, as the referee for attribution)."""

from __future__ import annotations

import collections
import os
import tempfile
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

# The op types ONNX Runtime's CPU graph transformers fuse into (com.microsoft contrib ops,
# and ONNX ops a fusion makes, e.g. MatMulAddFusion's Gemm), with the transformer that makes
# each: optimization coverage names the fusion, blame the transformer to switch off.
ORT_FUSED: dict[str, str] = {
    "SimplifiedLayerNormalization": "SimplifiedLayerNormFusion",
    "LayerNormalization": "LayerNormFusion",
    "SkipLayerNormalization": "SkipLayerNormFusion",
    "SkipSimplifiedLayerNormalization": "SkipLayerNormFusion",
    "Gelu": "GeluFusion",
    "FastGelu": "FastGeluFusion",
    "BiasGelu": "BiasGeluFusion",
    "QuickGelu": "QuickGeluFusion",
    "FusedMatMul": "MatMulScaleFusion",
    "FusedConv": "ConvActivationFusion",
    "FusedGemm": "GemmActivationFusion",
    "Gemm": "MatMulAddFusion",
    "Attention": "AttentionFusion",
    "MultiHeadAttention": "AttentionFusion",
    "EmbedLayerNormalization": "EmbedLayerNormFusion",
    "BiasSoftmax": "BiasSoftmaxFusion",
    "BiasDropout": "BiasDropoutFusion",
    "DynamicQuantizeMatMul": "DynamicQuantizeMatMulFusion",
    "MatMulIntegerToFloat": "MatMulIntegerToFloatFusion",
    "Split": "GatherSliceToSplitFusion",
    "NhwcMaxPool": "NhwcTransformer",
    "ReorderInput": "NchwcTransformer",
    "ReorderOutput": "NchwcTransformer",
    "GroupQueryAttention": "GroupQueryAttentionFusion",
    "RotaryEmbedding": "RotaryEmbeddingFusion",
}
# Transformer and rewrite-rule names ONNX Runtime accepts in `disabled_optimizers`, in the
# order blame halves them (the fusions first). Unknown names are ignored by ONNX Runtime.
ORT_TRANSFORMERS: tuple[str, ...] = (
    "SimplifiedLayerNormFusion", "LayerNormFusion", "SkipLayerNormFusion", "GeluFusion",
    "FastGeluFusion", "BiasGeluFusion", "QuickGeluFusion", "GeluApproximation",
    "MatMulScaleFusion", "MatMulAddFusion", "MatMulActivationFusion", "MatmulTransposeFusion",
    "MatMulBnFusion", "MatMulIntegerToFloatFusion", "DynamicQuantizeMatMulFusion",
    "ConvActivationFusion", "ConvAddActivationFusion", "GemmActivationFusion",
    "GemmTransposeFusion", "GemmSumFusion", "AttentionFusion", "EmbedLayerNormFusion",
    "BiasSoftmaxFusion", "BiasDropoutFusion", "GatherSliceToSplitFusion",
    "GatherToSliceFusion", "GatherToSplitFusion", "ReshapeFusion", "ConcatSliceElimination",
    "TransposeOptimizer", "NchwcTransformer", "NhwcTransformer", "ConstantFolding",
    "ConstantSharing", "CommonSubexpressionElimination", "CastElimination",
    "CastChainElimination", "EliminateIdentity", "EliminateSlice", "EliminateDropout",
    "ExpandElimination", "NoopElimination", "UnsqueezeElimination", "DivMulFusion",
    "FuseReluClip", "NotWhereFusion", "ConvAddFusion", "ConvMulFusion", "ConvBNFusion",
    "PadFusion", "LabelEncoderFusion", "QDQPropagationTransformer", "QDQS8ToU8Transformer",
    "QDQSelectorActionTransformer", "QDQFinalCleanupTransformer", "DoubleQDQPairsRemover",
    "ClipQuantFusion", "ReluQuantFusion", "WhereDummyDq", "RemoveDuplicateCastTransformer",
    "Level1_RuleBasedTransformer", "Level2_RuleBasedTransformer")


# Op types at least one of ORT_FUSED's fusions starts from. A model that holds none of them
# (in its bytes: names may match too, which only costs a parse) cannot fire one, and ONNX
# Runtime is not asked to write its optimized model (~0.6 ms a session).
_TRIGGERS = (b"MatMul", b"Gemm", b"Conv", b"Pool", b"ReduceMean", b"Erf", b"Tanh", b"Sigmoid",
             b"Softmax", b"LayerNormalization", b"Gather", b"Slice", b"Dropout", b"Gelu",
             b"Quantize")


def may_fuse(model: bytes) -> bool:
    return any(t in model for t in _TRIGGERS)


def _optimized_path() -> str:
    """Where ONNX Runtime writes the model it optimized: one file per process, in memory."""
    root = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(root, f"convfuzz-ort-{os.getpid()}.onnx")


def _fused_type(node: Any) -> str | None:
    """The ORT_FUSED type a node of the optimized model is, if any. At level `all` the NCHWc
    layout (level 3) turns FusedConv into a com.microsoft.nchwc Conv that keeps the fused
    activation as an attribute: still ConvActivationFusion's work (level 2 runs first)."""
    if node.op_type in ORT_FUSED:
        return str(node.op_type)
    if node.domain == "com.microsoft.nchwc" and node.op_type == "Conv" and any(
            a.name == "activation" for a in node.attribute):
        return "FusedConv"
    return None


def fused_ops(before: bytes, path: str) -> tuple[dict[str, int], list[str]]:
    """The fused op types in the optimized model that the input model did not have as often
    (what fired), and every fused op type it holds (what a missed fusion is judged by)."""
    # on use: a component imports its heavy dependency when it runs
    import onnx

    try:
        after = onnx.load(path)
    except Exception:
        return {}, []
    finally:
        if os.path.exists(path):
            os.remove(path)
    now = collections.Counter(t for t in map(_fused_type, after.graph.node) if t)
    # The input is parsed only when an op type it may hold fused is in its bytes (most
    # models hold none: a third of this function's time saved).
    had = (collections.Counter(n.op_type for n in onnx.load_from_string(before).graph.node)
           if any(t.encode() in before for t in now) else collections.Counter())
    return ({t: n - had.get(t, 0) for t, n in now.items() if n > had.get(t, 0)},
            sorted(now))


def ort(level: str, off: str | None = None) -> Component:
    # on use: a component imports its heavy dependency when it runs
    import onnxruntime as rt

    opt = {"disabled": rt.GraphOptimizationLevel.ORT_DISABLE_ALL,
           "basic": rt.GraphOptimizationLevel.ORT_ENABLE_BASIC,
           "extended": rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
           "all": rt.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    disabled = sorted(set(off.split(","))) if off else []
    name = f"ort-{level}" + (f"-without-{','.join(disabled)}" if disabled else "")

    def run(art: Artifact) -> None:
        so = rt.SessionOptions()
        so.graph_optimization_level = opt
        so.intra_op_num_threads = 1  # deterministic and fair when workers run side by side
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Optimization coverage: which fusions fired, read from the model ONNX Runtime
        # writes after optimizing (only when it optimizes at all).
        path = _optimized_path() if level != "disabled" and may_fuse(art.model) else None
        if path:
            so.optimized_model_filepath = path
        try:
            sess = rt.InferenceSession(art.model, so, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=disabled or None)
        except Exception as e:
            raise StageFailure(Stage.RUNTIME_LOAD, e) from e
        fused, present = fused_ops(art.model, path) if path else ({}, [])
        if path:
            art.notes["fused_present"] = present
        if fused:
            fired = art.notes.setdefault("fired", {}).setdefault(name, {})
            for t, n in fused.items():
                fired[t] = fired.get(t, 0) + n
        try:
            f = feeds(art, [i.name for i in sess.get_inputs()])
            art.outputs = [np.asarray(o) for o in sess.run(None, f)]
        except StageFailure:
            raise
        except Exception as e:
            raise _bfloat16_output(sess, e) or StageFailure(Stage.RUNTIME_RUN, e) from e

    def snippet(case: Any) -> str:
        names = [x.name for x in case.inputs]
        # ORT_ENABLE_ALL is ONNX Runtime's default: no SessionOptions needed for it.
        so = "" if level == "all" else (
            "so = ort.SessionOptions()\nso.graph_optimization_level = "
            f"ort.GraphOptimizationLevel.{opt.name}\n")
        return (so + "sess = ort.InferenceSession(model_bytes, " + ("so, " if so else "")
                + "providers=[\"CPUExecutionProvider\"]"
                + (f", disabled_optimizers={disabled!r}" if disabled else "") + ")\n"
                f"feeds = dict(zip({names!r}, (a.numpy() for a in args)))\n"
                "actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})\n")

    return Component("runtime", name, run, "onnxruntime",
                     {"graph_optimization_level": level, "provider": "CPUExecutionProvider",
                      "disabled_optimizers": disabled}, snippet=snippet)


component("runtime", r"ort-(?P<level>disabled|basic|extended|all)"
          r"(?:-without-(?P<off>[A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)*))?",
          ("ort-all", "ort-disabled", "ort-all-without-SimplifiedLayerNormFusion"),
          "ONNX Runtime CPU at a graph optimization level: disabled, basic, extended, all; "
          "`-without-A,B` turns the named graph transformers off")(ort)


def reference() -> Component:
    def run(art: Artifact) -> None:
        art.outputs = run_reference(art)

    def snippet(case: Any) -> str:
        return ("from onnx.reference import ReferenceEvaluator\n\n"
                "ev = ReferenceEvaluator(onnx.load_from_string(model_bytes))\n"
                f"feeds = dict(zip({[x.name for x in case.inputs]!r}, (a.numpy() for a in args)))\n"
                "actual = ev.run(None, {n: feeds[n] for n in ev.input_names})\n")

    return Component("runtime", "ref", run, "onnx", {}, snippet=snippet)


def run_reference(art: Artifact) -> list[np.ndarray]:
    # on use: a component imports its heavy dependency when it runs
    import onnx
    from onnx.reference import ReferenceEvaluator

    try:
        proto = onnx.load_from_string(art.model)
        ev = ReferenceEvaluator(proto)
    except Exception as e:
        # A rewriter's ONNX Runtime contrib op (SimplifiedLayerNormalization, com.microsoft
        # FastGelu...): the reference evaluator implements ONNX only.
        symptom = Symptom.UNSUPPORTED if "No registered schema" in str(e) else None
        raise StageFailure(Stage.RUNTIME_LOAD, e, symptom) from e
    try:
        f: dict[str, Any] = feeds(art, list(ev.input_names))
        return [np.asarray(o) for o in ev.run(None, f)]
    except StageFailure:
        raise
    except Exception as e:
        raise StageFailure(Stage.RUNTIME_RUN, e) from e


component("runtime", r"ref", ("ref",), "the ONNX reference evaluator (onnx.reference), slow "
          "but written from the spec: the referee for attribution")(reference)

"""Rewriters as passes: the graph rewriters and fusions that match operator sequences.

Each records which of its named rules/fusions fired (`Artifact.notes["fired"]`, optimization
coverage) and can run again with some of them switched off (`Component.without`), so blame
names the one a failure needs:

- `onnxscript-rewrite`: onnxscript's default rewrite rules (the ones the dynamo exporter's
  optimizer applies), one pass as `onnxscript.rewriter.rewrite` runs them.
- `onnxscript-ort-fusions`: onnxscript's `ort_fusions` (rms_normalization, gelu, sdpa, mha,
  ...) in the order `fuse_xformers` applies them; each fusion that fires is a step of its own.
- `ort-transformers-<model_type>[-O<level>]`: `onnxruntime.transformers.optimizer
  .optimize_model`, Python fusions only at level 0 (default), ONNX Runtime first above it.
"""

from __future__ import annotations

import collections
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import onnx

from fuzzer.targets.quiet import quiet
from fuzzer.targets.registry import Artifact, Component, StageFailure, component
from fuzzer.targets.rules import CRASHED, Counted, default_rules, rule_names
from fuzzer.verdict import Stage, first_line


def record_fired(art: Artifact, comp: str, counts: dict[str, int]) -> None:
    """Adds the rules/fusions of `comp` that fired (count > 0) to the artifact's notes."""
    fired = art.notes.setdefault("fired", {}).setdefault(comp, {})
    for name, n in counts.items():
        if n and name != CRASHED:  # a rule that raised and was caught is no fusion
            fired[name] = fired.get(name, 0) + int(n)


def op_types(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)


def new_op_types(before: onnx.ModelProto, after: onnx.ModelProto,
                 wanted: Sequence[str] | None = None) -> dict[str, int]:
    """Op types that occur more often after a rewrite than before: what it fused into."""
    a, b = op_types(before), op_types(after)
    return {t: n - a.get(t, 0) for t, n in b.items()
            if n > a.get(t, 0) and (wanted is None or t in wanted)}


# Where the rewriters' own code lives (site-packages/...): the frames a crash is blamed on.
_REWRITER_CODE = ("onnxruntime/transformers/", "onnxscript/")


def raised_in(e: BaseException) -> dict[str, str] | None:
    """The innermost frame of `e`'s traceback inside a rewriter's code: its function (a
    qualified name) and source file:line from the package root, with the exception's type."""
    found = None
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename.replace("\\", "/")
        for pkg in _REWRITER_CODE:
            at = path.rfind("/" + pkg)
            if at >= 0:
                found = {"function": code.co_qualname, "source": f"{path[at + 1:]}:{tb.tb_lineno}",
                         "raises": type(e).__name__}
        tb = tb.tb_next
    return found


def _failure(name: str, step: str, e: BaseException) -> StageFailure:
    """The pass's failure, its root cause first: onnx_ir wraps every rule's exception in
    "PassError: An error occurred at step 0", which would give every crash one error class."""
    root: BaseException = e
    while (root.__cause__ or root.__context__) is not None and root is not (
            root.__cause__ or root.__context__):
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = f"{type(root).__name__}: {root}"
    if root is not e:
        text += f" (in {type(e).__name__}: {first_line(str(e))})"
    return StageFailure(Stage.GRAPH_OPTIMIZATION, f"{name}:{step}: {text}",
                        raised_in=raised_in(root))


# -- onnxscript's default rewrite rules ------------------------------------------------------
def rule_pass(name: str, family: str, rules_of: Callable[[], Sequence[Any]],
              project: str = "onnxscript.rewriter") -> Component:
    """One pass applying a rule list as `onnxscript.rewriter.rewrite` does; each rule's
    matches are counted, and `without` drops rules by name."""

    def apply(model: bytes, off: frozenset[str], counts: dict[str, Any]) -> bytes:
        # on use: the rewriter package loads only when this pass runs
        from onnxscript import rewriter

        rules = list(rules_of())
        kept = [Counted(r, n, counts) for r, n in zip(rules, rule_names(rules), strict=True)
                if n not in off]
        proto = onnx.load_from_string(model)
        if kept:
            with quiet():
                proto = rewriter.rewrite(proto, pattern_rewrite_rules=kept)
        return proto.SerializeToString()

    def run(art: Artifact) -> None:
        counts: dict[str, Any] = {}
        try:
            out = apply(art.model, frozenset(), counts)
        except Exception as e:
            rule = counts.get(CRASHED)
            raise _failure(name, f"rewrite: rule {rule}" if rule else "rewrite", e) from e
        record_fired(art, name, counts)
        art.set_model(name, "rewrite", out)

    return Component("pass", name, run, family, {"rewriter": project},
                     without=lambda model, off: apply(model, off, {}))


component("pass", r"onnxscript-rewrite", ("onnxscript-rewrite",),
          "onnxscript's default rewrite rules (onnxscript.rewriter.rewrite), each rule "
          "counted and blamed by name")(
    lambda: rule_pass("onnxscript-rewrite", "onnxscript", default_rules))


# -- onnxscript's ort_fusions ----------------------------------------------------------------
def _ort_fusion_steps() -> list[tuple[str, Callable[[Any], int]]]:
    """`fuse_xformers`' fusions in its order (onnxscript 0.7), each returning its count."""
    # on use: the rewriter package loads only when this pass runs
    from onnxscript.rewriter.ort_fusions import _core as c

    def fuse(fn: Callable[..., int], **kw: Any) -> Callable[[Any], int]:
        return lambda model: fn(model, **kw)

    steps: list[tuple[str, Callable[[Any], int]]] = [
        ("erf_gelu", fuse(c.fuse_erfgelu)),
        ("rms_normalization", fuse(c.fuse_rms_normalization)),
        ("skip_layer_normalization", fuse(c.fuse_skip_layer_normalization)),
        ("skip_rms_normalization", fuse(c.fuse_skip_rms_normalization)),
        ("rotary_embedding", fuse(c.fuse_rotary_embedding)),
        ("cos_sin_cache", fuse(c.fuse_cos_sin_cache)),
        ("partial_rotary_embedding", fuse(c.fuse_partial_rotary_embedding)),
        ("sdpa", fuse(c.fuse_sdpa, apply_shape_inference=True)),
        ("gqa", fuse(c.fuse_gqa)),
        ("packed_qkv_for_gqa", fuse(c.fuse_qkv_gqa)),
        ("mha1", fuse(c.fuse_mha1)),
        ("mha2", fuse(c.fuse_mha2)),
        ("mha_scale", fuse(c.fuse_mha_scale)),
        ("mha_bias", fuse(c.fuse_mha_bias)),
        ("attention", fuse(c.fuse_attention)),
        ("gelu", fuse(c.fuse_gelu)),
        ("bias_gelu", fuse(c.fuse_bias_gelu)),
        ("sdpa_via_mha", fuse(c.replace_sdpa_by_mha)),
    ]
    return steps


# The domain of the placeholder ops (SDPA, ...) that one ort_fusions step leaves for a later
# one to turn into contrib ops: no runtime runs a model between those steps.
PLACEHOLDER_DOMAIN = "ai.onnxruntime._fusion"


def runnable(model: bytes) -> bool:
    """False for a model holding placeholder ops (its opset imports may name the domain
    after the last one is gone: the nodes decide)."""
    if PLACEHOLDER_DOMAIN.encode() not in model:
        return True
    return not any(n.domain == PLACEHOLDER_DOMAIN
                   for n in onnx.load_from_string(model).graph.node)


ORT_FUSIONS = ("gemm_to_matmul_add", "erf_gelu", "rms_normalization",
               "skip_layer_normalization", "skip_rms_normalization", "rotary_embedding",
               "cos_sin_cache", "partial_rotary_embedding", "sdpa", "gqa", "packed_qkv_for_gqa",
               "mha1", "mha2", "mha_scale", "mha_bias", "attention", "gelu", "bias_gelu",
               "sdpa_via_mha", "ort_pattern_rules")


@component("pass", r"onnxscript-ort-fusions", ("onnxscript-ort-fusions",),
           "onnxscript.rewriter.ort_fusions (optimize_for_ort): each fusion that fires is a "
           "step of its own, blamed by name")
def ort_fusions() -> Component:
    name = "onnxscript-ort-fusions"

    def fuse_all(art: Artifact | None, model: bytes, off: frozenset[str]) -> bytes:
        # on use: the rewriter package loads only when this pass runs
        import onnx_ir as ir
        from onnxscript import rewriter
        from onnxscript.rewriter.ort_fusions import _core as c
        from onnxscript.rewriter.rules.common import _gemm_to_matmul_add

        proto = onnx.load_from_string(model)
        ir_model = ir.serde.deserialize_model(proto)

        def step(label: str, fn: Callable[[], int | None], fusion: bool = True) -> None:
            if label in off:
                return
            try:
                with quiet():
                    n = fn()
            except Exception as e:
                raise _failure(name, label, e) from e
            if art is not None and (n or not fusion):  # a fusion that did not fire: no change
                if fusion:
                    record_fired(art, name, {label: int(n or 0)})
                art.set_model(name, label, ir.serde.serialize_model(ir_model)
                              .SerializeToString())

        step("gemm_to_matmul_add", lambda: rewriter.RewriteRuleSet(
            [_gemm_to_matmul_add.gemm_to_matmul_add_rule]).apply_to_model(ir_model))
        step("pre_optimize", lambda: (c._pre_optimize(ir_model), 0)[1], fusion=False)
        for label, fn in _ort_fusion_steps():
            step(label, lambda fn=fn: fn(ir_model))
        step("optimize", lambda: (c.optimize(ir_model), 0)[1], fusion=False)
        step("ort_pattern_rules", lambda: rewriter.RewriteRuleSet(
            c.ORT_PATTERN_REWRITE_RULES).apply_to_model(ir_model))
        return ir.serde.serialize_model(ir_model).SerializeToString()

    def run(art: Artifact) -> None:
        fuse_all(art, art.model, frozenset())

    return Component("pass", name, run, "onnxscript", {"rewriter": "onnxscript.ort_fusions"},
                     without=lambda model, off: fuse_all(None, model, off),
                     snippet=lambda case: ORT_FUSIONS_SNIPPET)


# The pass as a user runs it (a repro's lines): optimize_for_ort applies the same fusions.
ORT_FUSIONS_SNIPPET = (
    "import onnxscript.rewriter.ort_fusions\n"
    "model_bytes = onnxscript.ir.to_proto(onnxscript.rewriter.ort_fusions.optimize_for_ort("
    "onnxscript.ir.from_proto(onnx.load_from_string(model_bytes)))[0]).SerializeToString()\n")


# -- onnxruntime.transformers' optimizer -----------------------------------------------------
# FusionOptions switches, and the fused op types each one makes.
TRANSFORMER_SWITCHES: dict[str, tuple[str, ...]] = {
    "enable_gelu": ("Gelu", "FastGelu", "QuickGelu"),  # fuse_gelu runs FusionQuickGelu too
    "enable_bias_gelu": ("BiasGelu", "FastGelu"),
    "enable_layer_norm": ("LayerNormalization", "SimplifiedLayerNormalization"),
    "enable_skip_layer_norm": ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"),
    "enable_bias_skip_layer_norm": ("SkipLayerNormalization",
                                    "SkipSimplifiedLayerNormalization"),
    "enable_attention": ("Attention", "MultiHeadAttention", "GroupQueryAttention"),
    "enable_embed_layer_norm": ("EmbedLayerNormalization",),
    "enable_rotary_embeddings": ("RotaryEmbedding",),
    "enable_gemm_fast_gelu": ("GemmFastGelu",),
    "enable_qordered_matmul": ("QOrderedMatMul",),
    # The stable-diffusion switches (on for unet, vae and clip; the attributes exist for
    # every model type once set): onnx_model_unet.py's fusions.
    "enable_group_norm": ("GroupNorm",),
    "enable_skip_group_norm": ("SkipGroupNorm",),
    "enable_bias_splitgelu": ("BiasSplitGelu",),
    "enable_bias_add": ("BiasAdd",),
    "enable_nhwc_conv": ("NhwcConv",),
}
TRANSFORMER_OPS = tuple(sorted({t for ts in TRANSFORMER_SWITCHES.values() for t in ts}))
TRANSFORMER_MODEL_TYPES = ("bert", "gpt2", "t5", "bart", "clip", "vit", "swin", "phi",
                           "qwen3", "gpt_neox", "conformer", "unet", "vae", "mmdit", "tnlr",
                           "sam2")


@component("pass", r"ort-transformers-(?P<model_type>[a-z0-9_]+?)(?:-O(?P<level>[0-2]))?",
           ("ort-transformers-bert", "ort-transformers-gpt2-O1"),
           "onnxruntime.transformers optimize_model for a model type (bert, gpt2, t5, ...); "
           "-O0 (default) runs its Python fusions only, -O1/-O2 ONNX Runtime first")
def ort_transformers(model_type: str, level: str | None = None) -> Component:
    if model_type not in TRANSFORMER_MODEL_TYPES:
        raise ValueError(f"onnxruntime.transformers has no model type {model_type!r} "
                         f"(known: {', '.join(TRANSFORMER_MODEL_TYPES)})")
    opt_level = int(level or 0)
    name = f"ort-transformers-{model_type}" + (f"-O{opt_level}" if level else "")

    def optimize(model: bytes, off: frozenset[str]) -> onnx.ModelProto:
        # on use: the rewriter package loads only when this pass runs
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions(model_type)
        for switch in off:
            setattr(options, switch, False)
        with quiet():
            out = optimize_model(onnx.load_from_string(model), model_type=model_type,
                                 num_heads=0, hidden_size=0, optimization_options=options,
                                 opt_level=opt_level)
        proto = out.model
        # As OnnxModel.save does: fused com.microsoft nodes need that opset imported.
        if (any(n.domain == "com.microsoft" for n in proto.graph.node)
                and not any(o.domain == "com.microsoft" for o in proto.opset_import)):
            proto.opset_import.add(domain="com.microsoft", version=1)
        return proto

    def run(art: Artifact) -> None:
        try:
            out = optimize(art.model, frozenset())
        except Exception as e:
            raise _failure(name, "optimize_model", e) from e
        fused = new_op_types(onnx.load_from_string(art.model), out, TRANSFORMER_OPS)
        record_fired(art, name, fused)
        # Blame switches the fusions off by option: name the options that made these ops.
        art.notes.setdefault("switches", {})[name] = sorted(
            s for s, ts in TRANSFORMER_SWITCHES.items() if set(ts) & set(fused))
        art.set_model(name, "optimize_model", out.SerializeToString())

    def snippet(case: Any) -> str:
        return ("from onnxruntime.transformers.optimizer import optimize_model\n"
                "model_bytes = optimize_model(onnx.load_from_string(model_bytes), model_type="
                f"{model_type!r}, num_heads=0, hidden_size=0, opt_level={opt_level})"
                ".model.SerializeToString()\n")

    return Component("pass", name, run, "onnxruntime",
                     {"rewriter": "onnxruntime.transformers", "model_type": model_type,
                      "opt_level": opt_level},
                     without=lambda model, off: optimize(model, off).SerializeToString(),
                     snippet=snippet)


# -- the function at fault ----------------------------------------------------------------
# Per project and the name blame reports (a fusion step, a rule, an optimize_model switch),
# the function that decides the rewrite fires: where a precondition it does not check is the
# defect (corpus blame, fuzzer/causes.py). A name not listed is reported by itself.
FAULTS: dict[tuple[str, str], str] = {
    ("onnxscript.ort_fusions", "skip_layer_normalization"):
        "onnxscript.rewriter.ort_fusions.skip_normalization:SkipLayerNormFusion.check",
    ("onnxscript.ort_fusions", "skip_rms_normalization"):
        "onnxscript.rewriter.ort_fusions.skip_normalization:SkipRmsNormFusion.check",
    ("onnxscript.ort_fusions", "rms_normalization"):
        "onnxscript.rewriter.ort_fusions.rms_normalization:RmsNormFusion.check",
    # one rule class, with and without past key/values: its check never reads the final
    # Reshape's target shape ("TODO: verify Reshapes")
    ("onnxscript.ort_fusions", "mha1"):
        "onnxscript.rewriter.ort_fusions.mha:MultiHeadAttention.check",
    ("onnxscript.ort_fusions", "mha2"):
        "onnxscript.rewriter.ort_fusions.mha:MultiHeadAttention.check",
    ("onnxruntime.transformers", "enable_bias_skip_layer_norm"):
        "onnxruntime.transformers.fusion_skiplayernorm:FusionBiasSkipLayerNormalization.fuse",
    ("onnxruntime.transformers", "enable_skip_layer_norm"):
        "onnxruntime.transformers.fusion_skiplayernorm:FusionSkipLayerNormalization.fuse",
    # a switch that makes several fused ops, told apart by the one that fired (switch/op)
    ("onnxruntime.transformers", "enable_layer_norm/SimplifiedLayerNormalization"):
        "onnxruntime.transformers.fusion_simplified_layernorm:"
        "FusionSimplifiedLayerNormalization.fuse",
    ("onnxruntime.transformers", "enable_layer_norm/LayerNormalization"):
        "onnxruntime.transformers.fusion_layernorm:FusionLayerNormalization.fuse",
}
# ONNX Runtime's C++ graph transformers, blamed by name on an ort-* runtime: no Python object
# to ask for its source, so the function and its file in microsoft/onnxruntime are written
# here (no line: it moves between releases).
NATIVE_FAULTS: dict[tuple[str, str], tuple[str, str]] = {
    ("onnxruntime", "SimplifiedLayerNormFusion"):
        ("SimplifiedLayerNormFusion::ApplyImpl", "onnxruntime/core/optimizer/layer_norm_fusion.cc"),
}


def fault_function(project: str, name: str, fired: Sequence[str] = ()) -> tuple[Any, str]:
    """(the function object or None, its qualified name) for a blamed rewrite. `fired`: the
    fused ops or rules of this project that fired; when exactly one of them refines the
    blamed name (an optimize_model switch that makes several ops), its function is named."""
    refined = [f"{name}/{op}" for op in fired if (project, f"{name}/{op}") in FAULTS]
    path = FAULTS.get((project, refined[0] if len(refined) == 1 else name))
    if path is None:
        native = NATIVE_FAULTS.get((project, name))
        return None, native[0] if native else f"{project}: {name}"
    module, qual = path.split(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj, qual


# -- a planted wrong rule (a test double) ----------------------------------------------------
def _planted_rules() -> Sequence[Any]:
    """Two right rules around a wrong one: `Neg(Neg(x)) -> x` and `Mul(x, 1) -> x`
    (onnxscript's own) and `planted_relu_to_abs`, which rewrites Relu(x) into Abs(x)."""
    # on use: the rewriter package loads only when this pass runs
    from onnxscript.rewriter import pattern
    from onnxscript.rewriter.rules.common import _no_op

    def relu(op: Any, x: Any) -> Any:
        return op.Relu(x)

    def absolute(op: Any, x: Any) -> Any:
        return op.Abs(x)

    planted = pattern.RewriteRule(relu, absolute, name="planted_relu_to_abs")
    return [*list(_no_op.rules)[:2], planted]


component("pass", r"fault-rule", ("fault-rule",),
          "a test rewriter: onnxscript rules with one planted wrong rule (Relu -> Abs)",
          fault=True)(lambda: rule_pass("fault-rule", "test", _planted_rules, "test.rewriter"))

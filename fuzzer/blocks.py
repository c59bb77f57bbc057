"""Named blocks: which mined motifs are the blocks real models are built of (RMSNorm, GELU
written out with tanh or erf, rotary embedding, SwiGLU/GeGLU, attention written out, residual
add + norm, and the convolution blocks the conv fusions match). A registry of predicates on a
motif's Case-shaped instance (plain JSON); a motif may carry several names, and every motif
that matches is named (with or without a cast or the entry node around it)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

Namer = Callable[[dict[str, Any]], bool]
NAMED: dict[str, Namer] = {}


def named(name: str) -> Callable[[Namer], Namer]:
    def deco(fn: Namer) -> Namer:
        NAMED[name] = fn
        return fn
    return deco


def _ops(frag: dict[str, Any]) -> Counter[str]:
    return Counter(n["op"].removeprefix("aten::") for n in frag["nodes"])


def _scalars(frag: dict[str, Any]) -> list[float]:
    return [c["value"] for c in frag["consts"] if c.get("scalar")]


def _near(vals: list[float], want: float, tol: float = 1e-3) -> bool:
    return any(abs(v - want) <= tol * abs(want) for v in vals)


@named("rms_norm")
def _rms(frag: dict[str, Any]) -> bool:
    o = _ops(frag)
    pows = [n for n in frag["nodes"] if n["op"] == "aten::pow" and n["attrs"].get("exponent") == 2]
    means = [n for n in frag["nodes"] if n["op"] == "aten::mean"]
    return bool(pows and means) and o["rsqrt"] + o["sqrt"] >= 1 and o["add"] >= 1 and \
        o["mul"] + o["div"] >= 1 and o["sub"] == 0 and set(o) <= {
            "to", "pow", "mean", "add", "rsqrt", "sqrt", "mul", "div", "type_as"}


@named("layer_norm_manual")
def _ln(frag: dict[str, Any]) -> bool:
    o = _ops(frag)
    return o["mean"] >= 2 and o["sub"] >= 1 and (o["rsqrt"] + o["sqrt"]) >= 1


@named("gelu_tanh")
def _gelu_tanh(frag: dict[str, Any]) -> bool:
    o, vals = _ops(frag), _scalars(frag)
    return o["tanh"] == 1 and _near(vals, 0.044715) and _near(vals, math.sqrt(2 / math.pi)) \
        and _near(vals, 0.5)


@named("gelu_erf")
def _gelu_erf(frag: dict[str, Any]) -> bool:
    o, vals = _ops(frag), _scalars(frag)
    return o["erf"] == 1 and (_near(vals, math.sqrt(2)) or _near(vals, 1 / math.sqrt(2))) \
        and _near(vals, 0.5)


@named("quick_gelu")
def _quick_gelu(frag: dict[str, Any]) -> bool:
    # CLIP's QuickGELU, x * sigmoid(1.702 x): ORT's and the transformers optimizer's QuickGelu
    o = _ops(frag)
    return o["sigmoid"] == 1 and o["mul"] >= 2 and _near(_scalars(frag), 1.702)


@named("rotary")
def _rotary(frag: dict[str, Any]) -> bool:
    o = _ops(frag)
    return o["slice"] >= 2 and o["neg"] >= 1 and o["cat"] >= 1 and o["mul"] >= 2 and \
        o["add"] >= 1


@named("swiglu")
def _swiglu(frag: dict[str, Any]) -> bool:
    silu = {n["id"] for n in frag["nodes"] if n["op"] == "aten::silu"}
    return any(n["op"] == "aten::mul" and len(n["args"]) == 2 and
               len({a for a in n["args"] if a in silu}) == 1 for n in frag["nodes"])


@named("geglu")
def _geglu(frag: dict[str, Any]) -> bool:
    gelu = {n["id"] for n in frag["nodes"] if n["op"] == "aten::gelu"}
    return any(n["op"] == "aten::mul" and len(n["args"]) == 2 and
               len({a for a in n["args"] if a in gelu}) == 1 for n in frag["nodes"])


@named("sdpa_manual")
def _sdpa_manual(frag: dict[str, Any]) -> bool:
    o = _ops(frag)
    return o["matmul"] >= 2 and o["softmax"] >= 1


@named("attention_block")
def _attention_block(frag: dict[str, Any]) -> bool:
    # q, k and v projected from the block's input into one attention: what onnxscript's
    # MultiHeadAttention (and with one shared input, packed Attention) fusions match
    o = _ops(frag)
    return o["scaled_dot_product_attention"] >= 1 and o["linear"] >= 3


def _feeds(frag: dict[str, Any], first: set[str], then: set[str]) -> list[dict[str, Any]]:
    """The nodes whose op is in `then` and whose first argument a node in `first` computes."""
    nodes = {n["id"]: n for n in frag["nodes"]}
    return [n for n in frag["nodes"] if n["op"] in then and n["args"] and
            nodes.get(n["args"][0], {}).get("op") in first]


@named("residual_norm")
def _residual_norm(frag: dict[str, Any]) -> bool:
    return bool(_feeds(frag, {"aten::add"}, {"aten::layer_norm", "aten::rms_norm"}))


_CONV = {"aten::conv1d", "aten::conv2d"}
# Activations ONNX Runtime's ConvActivationFusion folds into FusedConv on CPU (Relu, Clip,
# Sigmoid, Tanh, LeakyRelu, HardSigmoid) and the ones next to convolutions in real models.
_CONV_ACTS = {"aten::relu", "aten::relu6", "aten::hardtanh", "aten::sigmoid", "aten::tanh",
              "aten::leaky_relu", "aten::hardsigmoid", "aten::silu", "aten::gelu",
              "aten::hardswish"}


@named("conv_bn")
def _conv_bn(frag: dict[str, Any]) -> bool:
    # Conv -> BatchNorm: onnxscript's FuseBatchNormIntoConv, ONNX Runtime's ConvBNFusion
    return bool(_feeds(frag, _CONV, {"aten::batch_norm"}))


@named("conv_act")
def _conv_act(frag: dict[str, Any]) -> bool:
    # Conv -> activation, directly or through the BatchNorm the exporters fold into the Conv
    # first: ONNX Runtime's FusedConv
    bn = {n["id"] for n in _feeds(frag, _CONV, {"aten::batch_norm"})}
    return bool(_feeds(frag, _CONV, _CONV_ACTS)) or any(
        n["op"] in _CONV_ACTS and n["args"] and n["args"][0] in bn for n in frag["nodes"])


@named("pad_conv")
def _pad_conv(frag: dict[str, Any]) -> bool:
    # explicit Pad before a Conv (TF-style "same" padding): onnxscript's FuseConvPad
    return bool(_feeds(frag, {"aten::pad", "aten::constant_pad_nd"}, _CONV))


@named("pooler")
def _pooler(frag: dict[str, Any]) -> bool:
    # BERT's pooler and classification heads, tanh(linear(x[:, 0])): on a 2D input the
    # exporters write Gemm, and ONNX Runtime's GemmActivationFusion makes a FusedGemm
    return bool(_feeds(frag, {"aten::linear"}, {"aten::tanh"}))


def names_of(frag: dict[str, Any]) -> list[str]:
    return [k for k, f in NAMED.items() if f(frag)]

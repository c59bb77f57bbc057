"""Known limitations as data: an `unsupported` verdict that matches an entry is already known
(counted, not re-reported). Each entry names the operator, an optional input-dtype and
argument condition, the target component it concerns (a glob over the components of a target
chain: `ort-*`, `torchscript-*`, `dynamo*`), a regex the error must match, and the reason.

Entries come from the catalogue sweep (docs/ops-sweep.md); the oracle decides when to ask.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fuzzer import ops
from fuzzer.case import Case
from fuzzer.model import _pick, infer
from fuzzer.verdict import Outcome, Symptom, Verdict

ALL_OPS = "*"


@dataclass(frozen=True)
class Limitation:
    op: str  # catalogue name, or "*" for any operator the error names
    component: str  # glob over target components: "ort-*", "torchscript-*", "dynamo*"
    error: str  # regex searched in the verdict's error (and detail)
    reason: str
    dtypes: tuple[str, ...] = ()  # input-0 dtypes it concerns (empty: any)
    when: Callable[[dict[str, Any]], bool] | None = None  # condition on the node's attrs

    def matches_target(self, target: str) -> bool:
        return _concerns(self.component, target)


@functools.lru_cache(maxsize=4096)  # a few globs x a few targets, asked for every entry
def _concerns(glob: str, target: str) -> bool:
    return any(fnmatch.fnmatchcase(c, glob) for c in target.split("/"))


def _ts(op: str, reason: str = "", **kw: Any) -> Limitation:
    """The TorchScript exporter has no symbolic function for `op` at the requested opset."""
    name = re.escape(op.split("::")[1])
    return Limitation(op, "torchscript-*",
                      rf"Exporting the operator '?aten::{name}'? to ONNX opset version \d+ is "
                      r"not supported|UnsupportedOperatorError",
                      reason or "TorchScript exporter: no symbolic for this operator", **kw)


def _ort(op: str, node: str, dtypes: tuple[str, ...], reason: str = "",
         component: str = "ort-*") -> Limitation:
    """ONNX Runtime has no CPU kernel for the ONNX `node` at these types."""
    return Limitation(op, component, rf"NOT_IMPLEMENTED.*{re.escape(node)}",
                      reason or f"ONNX Runtime (CPU) has no {node} kernel for "
                                f"{'/'.join(dtypes)}", dtypes)


# -- data from the catalogue sweep (docs/ops-sweep.md) ----------------------------------------
# TorchScript exporter (opset 17): no symbolic function for the operator.
TS_NO_SYMBOLIC: tuple[str, ...] = (
    "aten::smooth_l1_loss",
    "aten::_upsample_nearest_exact1d", "aten::_upsample_nearest_exact2d",
    "aten::_upsample_nearest_exact3d", "aten::acosh", "aten::addcdiv", "aten::addmv",
    "aten::asinh", "aten::atanh", "aten::bilinear", "aten::binary_cross_entropy",
    "aten::bitwise_and", "aten::bitwise_xor", "aten::channel_shuffle", "aten::copysign",
    "aten::cosh", "aten::cosine_embedding_loss", "aten::count_nonzero", "aten::cummax",
    "aten::cummin", "aten::cumprod", "aten::digamma", "aten::erfc", "aten::erfinv",
    "aten::exp2", "aten::expm1", "aten::fmax", "aten::fmin", "aten::frac",
    "aten::hinge_embedding_loss", "aten::huber_loss", "aten::hypot", "aten::isclose",
    "aten::kthvalue", "aten::l1_loss", "aten::lgamma", "aten::logaddexp", "aten::logcumsumexp",
    "aten::margin_ranking_loss", "aten::median", "aten::multi_margin_loss",
    "aten::poisson_nll_loss", "aten::rms_norm", "aten::signbit", "aten::sinh",
    "aten::soft_margin_loss", "aten::take_along_dim", "aten::triplet_margin_loss",
    "aten::trunc", "aten::xlogy",
)
# ... or none for the ATen op an argument value dispatches to.
TS_NO_SYMBOLIC_VARIANT: dict[str, tuple[str, ...]] = {
    "aten::smooth_l1_loss": ("aten::l1_loss",),
    "aten::upsample_bicubic2d": ("aten::_upsample_bicubic2d_aa",),
    "aten::upsample_bilinear2d": ("aten::_upsample_bilinear2d_aa",),
}
# ONNX Runtime (CPU) has no kernel for the ONNX node at these input dtypes.
ORT_NO_KERNEL: dict[str, tuple[str, ...]] = {
    "Abs": ("bfloat16",),
    "Acos": ("float64",),
    "Add": ("bfloat16",),
    "ArgMax": ("bfloat16", "int16",),
    "ArgMin": ("bfloat16", "int16",),
    "Asin": ("float64",),
    "Atan": ("float64",),
    "AveragePool": ("float64",),
    "BatchNormalization": ("bfloat16",),
    "Ceil": ("bfloat16",),
    "Conv": ("float64",),
    "ConvTranspose": ("float64",),
    "CumSum": ("bfloat16",),
    "DepthToSpace": ("bfloat16", "int16", "int32", "int64", "bool",),
    "Div": ("bfloat16",),
    "Einsum": ("int8", "uint8", "int16",),
    "Elu": ("float64",),
    "Equal": ("bfloat16",),
    "Erf": ("bfloat16", "float64",),
    "Exp": ("bfloat16",),
    "Expand": ("bfloat16",),
    "Floor": ("bfloat16",),
    "Gemm": ("bfloat16", "int32", "int64",),
    "GlobalAveragePool": ("float64",),
    "Greater": ("bfloat16",),
    "HardSigmoid": ("float64",),
    "InstanceNormalization": ("float64",),
    "IsNaN": ("bfloat16",),
    "Less": ("bfloat16",),
    "Log": ("bfloat16",),
    "MatMul": ("bfloat16",),
    "Max": ("bfloat16", "int16",),
    "Min": ("bfloat16", "int16",),
    "Mod": ("bfloat16",),
    "Mul": ("bfloat16",),
    "Neg": ("bfloat16",),
    "Pad": ("bfloat16", "int16",),
    "Pow": ("bfloat16",),
    "Reciprocal": ("bfloat16",),
    "ReduceL2": ("bfloat16",),
    "ReduceLogSumExp": ("bfloat16",),
    "ReduceMax": ("bfloat16",),
    "ReduceMean": ("bfloat16",),
    "ReduceMin": ("bfloat16",),
    "ReduceProd": ("bfloat16",),
    "ReduceSum": ("bfloat16",),
    "Relu": ("bfloat16", "int16", "int64",),
    "Resize": ("bfloat16", "float64",),
    "Selu": ("float64",),
    "Sigmoid": ("bfloat16",),
    "Softplus": ("float64",),
    "Sqrt": ("bfloat16",),
    "Sub": ("bfloat16",),
    "Tan": ("float64",),
    "Tanh": ("bfloat16",),
    "Tile": ("bfloat16",),
    "Trilu": ("bfloat16", "int8", "uint8", "int16",),
    "Where": ("bfloat16", "int16", "bool",),
}
# The dynamo exporter (torch 2.13) has no ONNX function or decomposition for the operator.
DYNAMO_NO_FUNCTION: tuple[str, ...] = (
    "aten::adaptive_avg_pool3d", "aten::argsort", "aten::cdist", "aten::copysign",
    "aten::cummax", "aten::cummin", "aten::cumprod", "aten::digamma", "aten::erfinv",
    "aten::fmax", "aten::fmin", "aten::hypot", "aten::kthvalue", "aten::lgamma",
    "aten::linalg_matrix_norm", "aten::median", "aten::rrelu", "aten::sort",
)


def _dynamo(op: str) -> Limitation:
    name = re.escape(op.split("::")[1])
    return Limitation(op, "dynamo*", rf"No ONNX function found for .*aten\.{name}\b|"
                      r"Failed to convert the exported program",
                      "dynamo exporter: no ONNX function or decomposition for this operator")


def _attr_is(key: str, pred: Callable[[Any], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda a: pred(a.get(key))


LIMITATIONS: list[Limitation] = [
    *(_ts(o) for o in TS_NO_SYMBOLIC),
    *(Limitation(o, "torchscript-*", "|".join(rf"'?{re.escape(v)}'? to ONNX opset" for v in vs),
                 f"TorchScript exporter: no symbolic for {', '.join(vs)} (which some argument "
                 "values dispatch to)") for o, vs in TS_NO_SYMBOLIC_VARIANT.items()),
    *(_ort(ALL_OPS, node, dts) for node, dts in ORT_NO_KERNEL.items()),
    *(_dynamo(o) for o in DYNAMO_NO_FUNCTION),
    # Argument-dependent refusals the TorchScript exporter states honestly.
    *(Limitation(f"aten::adaptive_{k}_pool{nd}d", "torchscript-*",
                 "output size that are not factor of input size",
                 "TorchScript exporter: adaptive pooling only where the output size divides "
                 "the input size") for k in ("avg", "max") for nd in (1, 2, 3)),
    Limitation("aten::cross_entropy_loss", "torchscript-*", "does not support label_smoothing",
               "TorchScript exporter: label_smoothing unsupported",
               when=_attr_is("label_smoothing", lambda v: v not in (None, 0.0))),
    Limitation("aten::index_add", "torchscript-*", r"index_add, alpha != 1",
               "TorchScript exporter: index_add only with alpha=1",
               when=_attr_is("alpha", lambda v: v != 1)),
    Limitation("aten::linalg_matrix_norm", "torchscript-*", r"matrix_norm, ord==",
               "TorchScript exporter: matrix_norm with ord 2/-2/'nuc' (SVD) unsupported",
               when=_attr_is("ord", lambda v: v in (2, -2, "nuc"))),
    Limitation("aten::layer_norm", "torchscript-*", "because it is not constant",
               "TorchScript exporter: normalized_shape must be a constant; a size read off a "
               "traced tensor (dynamic, or not folded) is refused (pytorch#32282)"),
    Limitation("aten::pixel_unshuffle", "torchscript-*", "only support 4d input",
               "TorchScript exporter: pixel_(un)shuffle only for 4-D inputs"),
    Limitation("aten::pixel_shuffle", "torchscript-*", "only support 4d input",
               "TorchScript exporter: pixel_(un)shuffle only for 4-D inputs"),
    Limitation("aten::scaled_dot_product_attention", "torchscript-*",
               "not implemented if enable_gqa is True",
               "TorchScript exporter: no grouped-query attention",
               when=_attr_is("enable_gqa", bool)),
    Limitation("aten::scaled_dot_product_attention", "torchscript-*",
               "Unsupported type for attn_mask",
               "TorchScript exporter: a float attention mask only as float32/16 or bfloat16 "
               "(torch also takes float64)"),
    Limitation("aten::scaled_dot_product_attention", "dynamo*",
               "only 4D query, key, and value are supported",
               "dynamo exporter: attention only for 4-D query/key/value (torch accepts 3-D; "
               "deliberate, onnxscript#2558)"),
    *(Limitation(o, "torchscript-*", "Sort, Out parameter is not supported",
                 "TorchScript exporter: sort.stable (the overload torch.sort/argsort call with "
                 "`stable=`) unsupported") for o in ("aten::sort", "aten::argsort")),
    *(Limitation(o, "torchscript-*", r"operator threshold, non-zero (threshold|value)",
                 "TorchScript exporter: threshold only with threshold=0 and value=0")
      for o in ("aten::threshold",)),
    *(Limitation(o, "ort-*", r"Scatter(Elements|ND)", "ONNX Runtime (CPU): scatter with a "
                 "reduction has no kernel for these types", ("float16", "bfloat16"))
      for o in ("aten::scatter_add", "aten::scatter_reduce", "aten::index_add")),
]


def _input_dtype(case: Case, node_id: str) -> str | None:
    node = case.node(node_id)
    if not node.args:
        return None
    base = node.args[0].split(":")[0]
    for x in case.inputs:
        if x.name == base:
            return x.dtype
    try:  # a chained input: its dtype comes from the shape rules
        return _pick(infer(case), node.args[0]).dtype
    except Exception:
        return None


def _attrs(case: Case, node_id: str) -> dict[str, Any]:
    node = case.node(node_id)
    return {**ops.get(node.op).defaults(), **node.attrs}


def known(case: Case, verdict: Verdict,
          table: list[Limitation] | None = None) -> str | None:
    """The reason, when `verdict` is an `unsupported` verdict already known for this Case."""
    if verdict.outcome != Outcome.UNSUPPORTED and verdict.symptom != Symptom.UNSUPPORTED:
        return None
    text = f"{verdict.shown_error}\n{verdict.shown_detail}"
    present = {n.op for n in case.nodes}
    for lim in LIMITATIONS if table is None else table:
        # Cheapest test first: most entries name an operator this Case does not have.
        if lim.op != ALL_OPS and lim.op not in present:
            continue
        if not lim.matches_target(verdict.target) or not re.search(lim.error, text, re.S):
            continue
        nodes = [n for n in case.nodes if lim.op in (ALL_OPS, n.op)]
        for n in nodes:
            if lim.dtypes and _input_dtype(case, n.id) not in lim.dtypes:
                continue
            if lim.when is not None and not lim.when(_attrs(case, n.id)):
                continue
            return lim.reason
    return None

"""Losses with their options. Targets are extra operands drawn in each loss's domain (class
indices within range, probabilities in [0, 1], signs in {-1, 1})."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, FLOAT32, Arg, Meta, Operand, flag, op

PF = "torch.nn.functional."
RED = Arg("reduction", "mean", ("none", "sum"))
PROB = {"dist": "uniform", "low": 0.02, "high": 0.98}
SIGN = {"dist": "int", "low": -1, "high": 1, "nonzero": True}
ParamShapes = dict[str, tuple[tuple[int, ...], str]]
OperandRule = Callable[[np.random.Generator, Meta, dict[str, Any]], list[Operand]]


def _like(values: dict[str, Any] | None = None) -> OperandRule:
    return lambda r, m, a: [Operand(m, values or {"dist": "normal", "scale": 1.0})]


def _pointwise(name: str, extra: tuple[Arg, ...] = (), target: dict[str, Any] | None = None,
               values: dict[str, Any] | None = None, aten: str | None = None) -> None:
    fn = getattr(F, name)
    kws = ", ".join(f"{a.name}={{{a.name}}}" for a in (*extra, RED))

    def lower(x: torch.Tensor, y: torch.Tensor, **a: Any) -> torch.Tensor:
        return fn(x, y, **a)
    lower.__doc__ = f"F.{name}"
    op(f"aten::{aten or name}", "loss", f"F.{name}({{x0}}, {{x1}}, {kws})", dtypes=FLOAT,
       ranks=(0, 4), operands=_like(target), args=(*extra, RED), python=PF + name,
       values=values)(lower)


_pointwise("mse_loss")
_pointwise("l1_loss")
_pointwise("smooth_l1_loss", (Arg("beta", 1.0, (0.5, 2.0), edges=(0.0,)),))
_pointwise("huber_loss", (Arg("delta", 1.0, (0.5, 2.0), edges=(1e-3,)),))
_pointwise("soft_margin_loss", target=SIGN)
_pointwise("kl_div", (Arg("log_target", False, (True,)),), target=PROB,
           values={"dist": "uniform", "low": -4.0, "high": -0.1})
_pointwise("poisson_nll_loss", (Arg("log_input", True, (False,)), flag("full"),
                                Arg("eps", 1e-8, (1e-3,))),
           target={"dist": "positive", "low": 0.0, "high": 5.0},
           values={"dist": "positive", "low": 0.1, "high": 3.0})
_pointwise("hinge_embedding_loss", (Arg("margin", 1.0, (0.5, 0.0), edges=(-1.0,)),),
           target=SIGN)
_pointwise("multilabel_soft_margin_loss", target={"dist": "int", "low": 0, "high": 1},
           aten="multilabel_soft_margin_loss")


def _weight(key: str, n: Callable[[list[Meta]], int]) -> Callable[..., ParamShapes]:
    def rule(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
        return {"weight": ((n(m),), m[0].dtype)} if a[key] else {}
    return rule


def _bce_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    shape = m[0].shape[-1:] if m[0].rank else ()
    ps: ParamShapes = {}
    if a["with_weight"]:
        ps["weight"] = (shape, m[0].dtype)
    if a.get("with_pos_weight"):
        ps["pos_weight"] = (shape, m[0].dtype)
    return ps


@op("aten::binary_cross_entropy", "loss", "F.binary_cross_entropy({x0}, {x1}, {weight}, "
    "reduction={reduction})", dtypes=FLOAT, ranks=(0, 4), operands=_like(PROB),
    args=(flag("with_weight"), RED), params=_bce_params, values=PROB,
    python=PF + "binary_cross_entropy")
def binary_cross_entropy(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
                         *, with_weight: bool, reduction: str) -> torch.Tensor:
    return F.binary_cross_entropy(x, y, weight, reduction=reduction)


@op("aten::binary_cross_entropy_with_logits", "loss", "F.binary_cross_entropy_with_logits("
    "{x0}, {x1}, {weight}, reduction={reduction}, pos_weight={pos_weight})", dtypes=FLOAT,
    ranks=(0, 4), operands=_like(PROB), params=_bce_params,
    args=(flag("with_weight"), flag("with_pos_weight"), RED),
    values={"dist": "corners", "scale": 3.0, "large": 50.0},
    python=PF + "binary_cross_entropy_with_logits")
def bce_logits(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
               pos_weight: torch.Tensor | None = None, *, with_weight: bool,
               with_pos_weight: bool, reduction: str) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(x, y, weight, reduction=reduction,
                                              pos_weight=pos_weight)


def _class_target(probs_ok: bool) -> OperandRule:
    """Input (N, C, d...) or (C,): class indices in [0, C) (or probabilities)."""
    def rule(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
        c = m.shape[1] if m.rank >= 2 else m.shape[0]
        if probs_ok and a.get("target_kind") == "probs":
            return [Operand(m, PROB)]
        shape = (m.shape[0], *m.shape[2:]) if m.rank >= 2 else ()
        lo = -1 if a.get("ignore_index", -100) == -1 else 0  # some targets hit ignore_index
        return [Operand(Meta(shape, "int64"), {"dist": "int", "low": lo, "high": c - 1})]
    return rule


def _c(m: list[Meta]) -> int:
    return m[0].shape[1] if m[0].rank >= 2 else m[0].shape[0]


IGNORE = Arg("ignore_index", -100, (0, -1))


@op("aten::cross_entropy_loss", "loss", "F.cross_entropy({x0}, {x1}, {weight}, "
    "ignore_index={ignore_index}, reduction={reduction}, label_smoothing={label_smoothing})",
    dtypes=FLOAT, ranks=(1, 4), operands=_class_target(True),
    args=(Arg("target_kind", "indices", ("probs",), doc="class indices or probabilities"),
          flag("with_weight"), IGNORE, RED,
          Arg("label_smoothing", 0.0, (0.1, 0.5), edges=(1.0,))),
    params=_weight("with_weight", _c), python=PF + "cross_entropy",
    constraint=lambda a, m: a["target_kind"] == "indices" or a["ignore_index"] == -100)
def cross_entropy(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None, *,
                  target_kind: str, with_weight: bool, ignore_index: int, reduction: str,
                  label_smoothing: float) -> torch.Tensor:
    return F.cross_entropy(x, y, weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


@op("aten::nll_loss", "loss", "F.nll_loss({x0}, {x1}, {weight}, ignore_index={ignore_index}, "
    "reduction={reduction})", dtypes=FLOAT, ranks=(1, 4), operands=_class_target(False),
    args=(flag("with_weight"), IGNORE, RED), params=_weight("with_weight", _c),
    python=PF + "nll_loss", values={"dist": "uniform", "low": -4.0, "high": 0.0})
def nll_loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None, *,
             with_weight: bool, ignore_index: int, reduction: str) -> torch.Tensor:
    return F.nll_loss(x, y, weight, ignore_index=ignore_index, reduction=reduction)


@op("aten::multi_margin_loss", "loss", "F.multi_margin_loss({x0}, {x1}, p={p}, "
    "margin={margin}, weight={weight}, reduction={reduction})", dtypes=FLOAT32, ranks=(1, 2),
    operands=_class_target(False), params=_weight("with_weight", _c),
    args=(Arg("p", 1, (2,)), Arg("margin", 1.0, (0.5, 2.0), edges=(0.0,)),
          flag("with_weight"), RED), python=PF + "multi_margin_loss")
def multi_margin_loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
                      *, p: int, margin: float, with_weight: bool,
                      reduction: str) -> torch.Tensor:
    return F.multi_margin_loss(x, y, p=p, margin=margin, weight=weight, reduction=reduction)


@op("aten::margin_ranking_loss", "loss", "F.margin_ranking_loss({x0}, {x1}, {x2}, "
    "margin={margin}, reduction={reduction})", dtypes=FLOAT, ranks=(0, 3),
    operands=lambda r, m, a: [Operand(m), Operand(m, SIGN)],
    args=(Arg("margin", 0.0, (0.5, 1.0), edges=(-0.5,)), RED),
    python=PF + "margin_ranking_loss")
def margin_ranking_loss(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, margin: float,
                        reduction: str) -> torch.Tensor:
    return F.margin_ranking_loss(x, y, t, margin=margin, reduction=reduction)


@op("aten::cosine_embedding_loss", "loss", "F.cosine_embedding_loss({x0}, {x1}, {x2}, "
    "margin={margin}, reduction={reduction})", dtypes=FLOAT, ranks=(1, 2),
    operands=lambda r, m, a: [Operand(m), Operand(Meta(m.shape[:-1], m.dtype), SIGN)],
    args=(Arg("margin", 0.0, (0.5, -0.5)), RED), python=PF + "cosine_embedding_loss")
def cosine_embedding_loss(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, margin: float,
                          reduction: str) -> torch.Tensor:
    return F.cosine_embedding_loss(x, y, t, margin=margin, reduction=reduction)


@op("aten::triplet_margin_loss", "loss", "F.triplet_margin_loss({x0}, {x1}, {x2}, "
    "margin={margin}, p={p}, eps={eps}, swap={swap}, reduction={reduction})", dtypes=FLOAT,
    ranks=(1, 2), operands=lambda r, m, a: [Operand(m), Operand(m)],
    args=(Arg("margin", 1.0, (0.5, 2.0), edges=(1e-3,)), Arg("p", 2.0, (1.0, 3.0)),
          Arg("eps", 1e-6, (1e-3,)), flag("swap"), RED), python=PF + "triplet_margin_loss")
def triplet_margin_loss(x: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float,
                        p: float, eps: float, swap: bool, reduction: str) -> torch.Tensor:
    return F.triplet_margin_loss(x, pos, neg, margin=margin, p=p, eps=eps, swap=swap,
                                 reduction=reduction)

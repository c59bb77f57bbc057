"""Attention: scaled_dot_product_attention with bool and float masks, is_causal, scale and
grouped-query attention."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, Meta, Operand, flag, op


def _kv(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    *batch, length, e = m.shape
    if a["enable_gqa"]:  # fewer key/value heads than query heads
        batch = [*batch[:-1], batch[-1] // 2]
    s = length if a["is_causal"] or rng.random() < 0.5 else int(rng.integers(1, 7))
    ev = e if rng.random() < 0.5 else int(rng.integers(1, 7))
    ops = [Operand(Meta((*batch, s, e), m.dtype)), Operand(Meta((*batch, s, ev), m.dtype))]
    mask = a["attn_mask"]
    if mask is not None:
        shape = (length, s) if a["mask_rank"] == 2 else (*m.shape[:-2], length, s)
        ops.append(Operand(Meta(shape, "bool"), {"dist": "bool", "p": 0.8}) if mask == "bool"
                   else Operand(Meta(shape, m.dtype), {"dist": "normal", "scale": 2.0}))
    return ops


@op("aten::scaled_dot_product_attention", "attention",
    "F.scaled_dot_product_attention({x0}, {x1}, {x2}, attn_mask={x3}, dropout_p={dropout_p}, "
    "is_causal={is_causal}, scale={scale}, enable_gqa={enable_gqa})",
    ranks=(3, 4), dtypes=FLOAT, operands=_kv, python="torch.nn.functional."
    "scaled_dot_product_attention",
    args=(Arg("attn_mask", None, ("bool", "float"),
              doc="kind of the mask operand: None, a bool mask or an additive float mask"),
          Arg("mask_rank", 2, (4,), doc="2: (L, S) broadcast; 4: one mask per batch/head"),
          Arg("dropout_p", 0.0, doc="must stay 0: dropout draws random numbers"),
          flag("is_causal"), Arg("scale", None, (0.5, 1.0), edges=(0.0, -1.0)),
          flag("enable_gqa")),
    constraint=lambda a, m: not (a["is_causal"] and a["attn_mask"] is not None) and not (
        a["enable_gqa"] and (m[0].rank != 4 or m[0].shape[1] % 2)),
    values={"dist": "normal", "scale": 2.0})
def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
         *, attn_mask: str | None, mask_rank: int, dropout_p: float, is_causal: bool,
         scale: float | None, enable_gqa: bool) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          is_causal=is_causal, scale=scale,
                                          enable_gqa=enable_gqa)

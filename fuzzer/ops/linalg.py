"""Matrix products and linear layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, Meta, Operand, flag, op


def _linear_params(a: dict[str, Any], m: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
    ps = {"weight": ((a["out_features"], m[0].shape[-1]), m[0].dtype)}
    if a["with_bias"]:
        ps["bias"] = ((a["out_features"],), m[0].dtype)
    return ps


@op("aten::linear", "linalg", "F.linear({x0}, {weight}, {bias})", ranks=(1, 5), dtypes=FLOAT,
    args=(Arg("out_features", 8, (4, 16, 1)), flag("with_bias", True)), params=_linear_params)
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           out_features: int, with_bias: bool) -> torch.Tensor:
    return F.linear(x, weight, bias)


def _matmul_operand(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    n = int(rng.integers(1, 6))
    if m.rank == 1:
        return [Operand(Meta((m.shape[0], n), m.dtype))]
    return [Operand(Meta((*m.shape[:-2], m.shape[-1], n), m.dtype))]


@op("aten::matmul", "linalg", "torch.matmul({x0}, {x1})", ranks=(1, 4), dtypes=FLOAT,
    operands=_matmul_operand)
def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.matmul(x, y)


@op("aten::bmm", "linalg", "torch.bmm({x0}, {x1})", ranks=(3, 3), dtypes=FLOAT,
    operands=_matmul_operand)
def bmm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.bmm(x, y)


@op("aten::scaled_dot_product_attention", "attention",
    "F.scaled_dot_product_attention({x0}, {x0}, {x0}, is_causal={is_causal}, scale={scale})",
    ranks=(3, 4), dtypes=FLOAT,
    args=(flag("is_causal"), Arg("scale", None, (0.5, 1.0))))
def sdpa(x: torch.Tensor, is_causal: bool, scale: float | None) -> torch.Tensor:
    return F.scaled_dot_product_attention(x, x, x, is_causal=is_causal, scale=scale)

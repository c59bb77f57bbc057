"""Elementwise math: unary and binary, float, integer and bool."""

from __future__ import annotations

import torch

from fuzzer.ops.spec import ALL, FLOAT, NUM, SIGNED, Arg, Operand, op, same

POS = {"dist": "positive", "low": 0.05, "high": 8.0}


@op("aten::add", "elementwise", "torch.add({x0}, {x1}, alpha={alpha})", dtypes=NUM,
    operands=same, args=(Arg("alpha", 1, (2, -1)),))
def add(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.add(x, y, alpha=alpha)


@op("aten::sub", "elementwise", "torch.sub({x0}, {x1}, alpha={alpha})", dtypes=NUM,
    operands=same, args=(Arg("alpha", 1, (2, -1)),))
def sub(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.sub(x, y, alpha=alpha)


@op("aten::mul", "elementwise", "torch.mul({x0}, {x1})", dtypes=ALL, operands=same)
def mul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mul(x, y)


@op("aten::div", "elementwise", "torch.div({x0}, {x1}, rounding_mode={rounding_mode})",
    dtypes=FLOAT, operands=lambda r, m, a: [Operand(m, POS)],
    args=(Arg("rounding_mode", None, ("trunc", "floor")),))
def div(x: torch.Tensor, y: torch.Tensor, rounding_mode: str | None) -> torch.Tensor:
    return torch.div(x, y, rounding_mode=rounding_mode)


@op("aten::maximum", "elementwise", "torch.maximum({x0}, {x1})", dtypes=NUM, operands=same)
def maximum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.maximum(x, y)


@op("aten::minimum", "elementwise", "torch.minimum({x0}, {x1})", dtypes=NUM, operands=same)
def minimum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.minimum(x, y)


@op("aten::pow", "elementwise", "torch.pow({x0}, {exponent})", dtypes=FLOAT,
    args=(Arg("exponent", 2.0, (0.5, 3.0, -1.0), edges=(0.0, 1.0)),), values=POS)
def pow_(x: torch.Tensor, exponent: float) -> torch.Tensor:
    return torch.pow(x, exponent)


@op("aten::neg", "elementwise", "torch.neg({x0})", dtypes=FLOAT + SIGNED)
def neg(x: torch.Tensor) -> torch.Tensor:
    return torch.neg(x)


@op("aten::abs", "elementwise", "torch.abs({x0})", dtypes=FLOAT + SIGNED)
def abs_(x: torch.Tensor) -> torch.Tensor:
    return torch.abs(x)


@op("aten::exp", "elementwise", "torch.exp({x0})")
def exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x)


@op("aten::log", "elementwise", "torch.log({x0})", values=POS)
def log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x)


@op("aten::sqrt", "elementwise", "torch.sqrt({x0})", values=POS)
def sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x)


@op("aten::rsqrt", "elementwise", "torch.rsqrt({x0})", values=POS)
def rsqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.rsqrt(x)


@op("aten::reciprocal", "elementwise", "torch.reciprocal({x0})", values=POS)
def reciprocal(x: torch.Tensor) -> torch.Tensor:
    return torch.reciprocal(x)


@op("aten::sin", "elementwise", "torch.sin({x0})")
def sin(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


@op("aten::cos", "elementwise", "torch.cos({x0})")
def cos(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x)


@op("aten::erf", "elementwise", "torch.erf({x0})")
def erf(x: torch.Tensor) -> torch.Tensor:
    return torch.erf(x)


@op("aten::floor", "elementwise", "torch.floor({x0})", values={"dist": "normal", "scale": 4.0})
def floor(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x)


@op("aten::round", "elementwise", "torch.round({x0}, decimals={decimals})",
    args=(Arg("decimals", 0, (1, 2), edges=(-1,)),), values={"dist": "normal", "scale": 4.0})
def round_(x: torch.Tensor, decimals: int) -> torch.Tensor:
    return torch.round(x, decimals=decimals)


@op("aten::clamp", "elementwise", "torch.clamp({x0}, min={min}, max={max})", dtypes=NUM,
    args=(Arg("min", -1.0, (0.0, None, -0.5)), Arg("max", 1.0, (None, 6.0, 0.5))))
def clamp(x: torch.Tensor, min: float | None, max: float | None) -> torch.Tensor:  # noqa: A002
    if min is None and max is None:
        min = 0.0  # torch rejects clamp() with neither bound: keep the Case valid
    if not x.dtype.is_floating_point:
        min = None if min is None else int(min)
        max = None if max is None else int(max)
    return torch.clamp(x, min=min, max=max)


@op("aten::where", "masking", "torch.where({x0} > {threshold}, {x0}, {x1})", dtypes=NUM,
    operands=same, args=(Arg("threshold", 0.0, (0.5, -1.0)),))
def where(x: torch.Tensor, y: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.where(x > threshold, x, y)


@op("aten::gt", "comparison", "torch.gt({x0}, {x1})", dtypes=NUM, operands=same)
def gt(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.gt(x, y)


@op("aten::eq", "comparison", "torch.eq({x0}, {x1})", dtypes=ALL, operands=same)
def eq(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.eq(x, y)


@op("aten::logical_and", "logical", "torch.logical_and({x0}, {x1})", dtypes=ALL,
    operands=same)
def logical_and(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.logical_and(x, y)


@op("aten::to", "cast", "{x0}.to(getattr(torch, {dtype}))", dtypes=ALL,
    args=(Arg("dtype", "float32", ("float16", "float64", "int32", "int64", "bool", "int8",
                                   "uint8", "bfloat16")),))
def to(x: torch.Tensor, dtype: str) -> torch.Tensor:
    from fuzzer.values import TORCH_DTYPES

    return x.to(TORCH_DTYPES[dtype])

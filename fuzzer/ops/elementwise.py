"""Elementwise math: unary and binary, float, integer and bool; rounding, division and
remainder in all their modes; type promotion through a second operand of another dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fuzzer.ops.spec import ALL, FLOAT, INT, NUM, Arg, Meta, Operand, op, tdtype

POS = {"dist": "positive", "low": 0.05, "high": 8.0}
UNIT = {"dist": "uniform", "low": -0.95, "high": 0.95}  # asin/atanh domain
WIDE = {"dist": "normal", "scale": 4.0}  # rounding sees many integers and halves
SPECIAL = {"dist": "special", "scale": 2.0, "share": 0.3}
FLOATS = ("float32", "float64", "float16", "bfloat16")


def _promote(name: str = "other_dtype") -> Arg:
    """Dtype of the second operand (None: same as the first): exercises type promotion."""
    return Arg(name, None, ("float32", "int64", "float64", "int32", "float16", "bool"),
               kind="dtype", doc="dtype of the second operand (type promotion)")


def _values_for(dtype: str, floats: dict[str, Any] | None = None,
                ints: dict[str, Any] | None = None) -> dict[str, Any]:
    if dtype == "bool":
        return {"dist": "bool", "p": 0.5}
    if dtype in FLOATS:
        return floats or {"dist": "normal", "scale": 1.0}
    low = 0 if dtype == "uint8" else -8
    return {**{"dist": "int", "low": low, "high": 8}, **(ints or {})}


def other(floats: dict[str, Any] | None = None, ints: dict[str, Any] | None = None,
          key: str = "other_dtype") -> Callable[[np.random.Generator, Meta, dict[str, Any]],
                                                list[Operand]]:
    """A second operand of the same shape, of the dtype named by attrs[key] (or the same)."""
    def rule(rng: np.random.Generator, m: Meta, attrs: dict[str, Any]) -> list[Operand]:
        dt = attrs.get(key) or m.dtype
        return [Operand(Meta(m.shape, dt), _values_for(dt, floats, ints))]
    return rule


def _unary(name: str, dtypes: tuple[str, ...] = FLOAT, values: dict[str, Any] | None = None,
           fn: str | None = None) -> None:
    f = getattr(torch, fn or name)

    def lower(x: torch.Tensor) -> torch.Tensor:
        return f(x)
    lower.__doc__ = f"torch.{fn or name}"
    op(f"aten::{name}", "elementwise", f"torch.{fn or name}({{x0}})", dtypes=dtypes,
       values=values)(lower)


# Integer and bool inputs of float functions promote to float in torch: the exporter must
# insert the cast ONNX needs, so every dtype torch accepts is in the domain.
for _n in ("exp", "exp2", "expm1", "sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "erf",
           "erfc", "square"):
    _unary(_n, dtypes=ALL)
_unary("frac", values=WIDE)
for _n in ("trunc", "ceil", "floor"):
    _unary(_n, dtypes=FLOAT + INT, values=WIDE)
for _n in ("log", "log2", "log10", "sqrt", "rsqrt", "reciprocal", "lgamma", "digamma"):
    _unary(_n, dtypes=ALL, values=POS)
_unary("log1p", dtypes=ALL, values={"dist": "positive", "low": -0.9, "high": 8.0})
_unary("acosh", dtypes=ALL, values={"dist": "positive", "low": 1.01, "high": 8.0})
for _n in ("asin", "acos", "atanh", "erfinv"):
    _unary(_n, dtypes=ALL, values=UNIT)
_unary("sign", dtypes=ALL, values=WIDE)
_unary("neg", dtypes=NUM)  # uint8 wraps around
_unary("abs", dtypes=NUM)
_unary("bitwise_not", dtypes=(*INT, "bool"))
_unary("logical_not", dtypes=ALL)
_unary("isnan", dtypes=ALL, values=SPECIAL)
_unary("isinf", dtypes=ALL, values=SPECIAL)
_unary("isfinite", dtypes=ALL, values=SPECIAL)
_unary("signbit", dtypes=ALL, values=SPECIAL)


@op("aten::round", "elementwise", "torch.round({x0}, decimals={decimals})",
    args=(Arg("decimals", 0, (1, 2), edges=(-1, 3)),), values=WIDE, overload="decimals")
def round_(x: torch.Tensor, decimals: int) -> torch.Tensor:
    return torch.round(x, decimals=decimals)


@op("aten::logit", "elementwise", "torch.logit({x0}, eps={eps})",
    args=(Arg("eps", None, (1e-6, 0.1), edges=(0.0, 0.5)),), dtypes=ALL,
    values={"dist": "uniform", "low": -0.1, "high": 1.1})
def logit(x: torch.Tensor, eps: float | None) -> torch.Tensor:
    return torch.logit(x, eps=eps)


@op("aten::nan_to_num", "elementwise",
    "torch.nan_to_num({x0}, nan={nan}, posinf={posinf}, neginf={neginf})",
    args=(Arg("nan", 0.0, (1.0, -2.5)), Arg("posinf", None, (100.0, 0.0)),
          Arg("neginf", None, (-100.0, 0.0))), values=SPECIAL, dtypes=ALL)
def nan_to_num(x: torch.Tensor, nan: float, posinf: float | None,
               neginf: float | None) -> torch.Tensor:
    return torch.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


@op("aten::pow", "elementwise", "torch.pow({x0}, {exponent})", dtypes=ALL,
    args=(Arg("exponent", 2.0, (0.5, 3.0, -1.0), edges=(0.0, 1.0, -0.5, 2)),), values=POS,
    overload="Tensor_Scalar")
def pow_(x: torch.Tensor, exponent: float) -> torch.Tensor:
    return torch.pow(x, exponent)


@op("aten::clamp", "elementwise", "torch.clamp({x0}, min={min}, max={max})", dtypes=ALL,
    args=(Arg("min", -1.0, (0.0, None, -0.5)), Arg("max", 1.0, (None, 6.0, 0.5),
                                                    edges=(-2.0,))),
    canon=lambda a: {**a, "min": 0.0} if a["min"] is None and a["max"] is None else a,
    values=WIDE)
def clamp(x: torch.Tensor, min: float | None, max: float | None) -> torch.Tensor:
    if min is None and max is None:
        min = 0.0  # torch rejects clamp() with neither bound: keep the Case valid
    return torch.clamp(x, min=min, max=max)


# -- binary arithmetic -------------------------------------------------------------------------
@op("aten::add", "elementwise", "torch.add({x0}, {x1}, alpha={alpha})", dtypes=ALL,
    operands=other(), args=(Arg("alpha", 1, (2, -1), edges=(0,)), _promote()),
    overload="Tensor")
def add(x: torch.Tensor, y: torch.Tensor, alpha: float, other_dtype: str | None) -> torch.Tensor:
    return torch.add(x, y, alpha=alpha)


@op("aten::sub", "elementwise", "torch.sub({x0}, {x1}, alpha={alpha})", dtypes=NUM,
    operands=other(), args=(Arg("alpha", 1, (2, -1)), _promote()), overload="Tensor",
    constraint=lambda a, m: "bool" not in (m[0].dtype, m[1].dtype))
def sub(x: torch.Tensor, y: torch.Tensor, alpha: float, other_dtype: str | None) -> torch.Tensor:
    return torch.sub(x, y, alpha=alpha)


@op("aten::rsub", "elementwise", "torch.rsub({x0}, {other}, alpha={alpha})",
    dtypes=NUM, args=(Arg("other", 1.0, (0.5, -2.0, 3)), Arg("alpha", 1, (2, -1))),
    overload="Scalar")
def rsub(x: torch.Tensor, other: float, alpha: float) -> torch.Tensor:
    return torch.rsub(x, other, alpha=alpha)


@op("aten::mul", "elementwise", "torch.mul({x0}, {x1})", dtypes=ALL, operands=other(),
    args=(_promote(),), overload="Tensor")
def mul(x: torch.Tensor, y: torch.Tensor, other_dtype: str | None) -> torch.Tensor:
    return torch.mul(x, y)


# Constant operands: the preconditions of fusions (an eps, GELU's 0.5/0.044715/sqrt(2/pi), a
# learned scale) are constants, so a chain that writes out RMSNorm or tanh-GELU needs them
# as scalars or initializers, not as graph inputs.
@op("aten::add.Scalar", "elementwise", "torch.add({x0}, {other})", dtypes=FLOAT,
    args=(Arg("other", 1.0, (1e-6, 1e-5, 0.5, -1.0), edges=(0.0,)),), overload="Scalar")
def add_scalar(x: torch.Tensor, other: float) -> torch.Tensor:
    return torch.add(x, other)


@op("aten::mul.Scalar", "elementwise", "torch.mul({x0}, {other})", dtypes=FLOAT,
    args=(Arg("other", 0.5, (0.044715, 0.7978845608028654, 1.702, 2.0, -1.0),
              edges=(0.0,)),), overload="Scalar")
def mul_scalar(x: torch.Tensor, other: float) -> torch.Tensor:
    return torch.mul(x, other)


@op("aten::mul.weight", "elementwise", "torch.mul({x0}, {weight})", dtypes=FLOAT,
    ranks=(1, 5), params=lambda a, m: {"weight": ((m[0].shape[-1],), m[0].dtype)},
    overload="Tensor")
def mul_weight(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x times a learned scale over the last dim (a parameter: an initializer once
    exported), as RMSNorm and LayerNorm end."""
    return torch.mul(x, weight)


_DIVISOR_F = {"dist": "nonzero", "low": 0.25, "high": 4.0}
_DIVISOR_I = {"nonzero": True}


@op("aten::div", "division", "torch.div({x0}, {x1}, rounding_mode={rounding_mode})",
    dtypes=NUM, operands=other(_DIVISOR_F, _DIVISOR_I),
    args=(Arg("rounding_mode", None, ("trunc", "floor")), _promote()), values=WIDE,
    overload="Tensor_mode",
    constraint=lambda a, m: m[1].dtype != "bool")
def div(x: torch.Tensor, y: torch.Tensor, rounding_mode: str | None,
        other_dtype: str | None) -> torch.Tensor:
    return torch.div(x, y, rounding_mode=rounding_mode)


@op("aten::floor_divide", "division", "torch.floor_divide({x0}, {x1})", dtypes=NUM,
    operands=other(_DIVISOR_F, _DIVISOR_I), args=(_promote(),), values=WIDE,
    constraint=lambda a, m: m[1].dtype != "bool")
def floor_divide(x: torch.Tensor, y: torch.Tensor, other_dtype: str | None) -> torch.Tensor:
    return torch.floor_divide(x, y)


@op("aten::remainder", "division", "torch.remainder({x0}, {x1})", dtypes=NUM,
    operands=other(_DIVISOR_F, _DIVISOR_I), args=(_promote(),), values=WIDE,
    overload="Tensor", constraint=lambda a, m: m[1].dtype != "bool")
def remainder(x: torch.Tensor, y: torch.Tensor, other_dtype: str | None) -> torch.Tensor:
    return torch.remainder(x, y)


@op("aten::fmod", "division", "torch.fmod({x0}, {x1})", dtypes=NUM,
    operands=other(_DIVISOR_F, _DIVISOR_I), args=(_promote(),), values=WIDE,
    overload="Tensor", constraint=lambda a, m: m[1].dtype != "bool")
def fmod(x: torch.Tensor, y: torch.Tensor, other_dtype: str | None) -> torch.Tensor:
    return torch.fmod(x, y)


def _binary(name: str, dtypes: tuple[str, ...], family: str = "elementwise",
            overload: str = "default", floats: dict[str, Any] | None = None) -> None:
    f = getattr(torch, name)

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return f(x, y)
    lower.__doc__ = f"torch.{name}"
    op(f"aten::{name}", family, f"torch.{name}({{x0}}, {{x1}})", dtypes=dtypes,
       operands=other(floats), overload=overload)(lower)


for _n in ("maximum", "minimum"):
    _binary(_n, (*NUM, "bool"))
for _n in ("fmax", "fmin"):
    _binary(_n, ALL)
for _n in ("hypot", "logaddexp"):
    _binary(_n, FLOAT)
_binary("atan2", ALL)
_binary("copysign", ALL, overload="Tensor")
_binary("xlogy", ALL, overload="Tensor", floats=POS)
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    _binary(_n, ALL, "comparison", "Tensor")
for _n in ("logical_and", "logical_or", "logical_xor"):
    _binary(_n, ALL, "logical")
for _n in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    _binary(_n, (*INT, "bool"), "bitwise", "Tensor")


def _shift_operand(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    bits = torch.iinfo(tdtype(m.dtype)).bits  # type: ignore[arg-type]
    return [Operand(m, {"dist": "int", "low": 0, "high": min(bits - 1, a["max_shift"])})]


@op("aten::bitwise_left_shift", "bitwise", "torch.bitwise_left_shift({x0}, {x1})",
    dtypes=INT, operands=_shift_operand, overload="Tensor",
    args=(Arg("max_shift", 3, (7,), doc="largest shift amount drawn for the second operand"),))
def bitwise_left_shift(x: torch.Tensor, y: torch.Tensor, max_shift: int) -> torch.Tensor:
    return torch.bitwise_left_shift(x, y)


@op("aten::bitwise_right_shift", "bitwise", "torch.bitwise_right_shift({x0}, {x1})",
    dtypes=INT, operands=_shift_operand, overload="Tensor",
    args=(Arg("max_shift", 3, (7,), doc="largest shift amount drawn for the second operand"),))
def bitwise_right_shift(x: torch.Tensor, y: torch.Tensor, max_shift: int) -> torch.Tensor:
    return torch.bitwise_right_shift(x, y)


@op("aten::isclose", "comparison",
    "torch.isclose({x0}, {x1}, rtol={rtol}, atol={atol}, equal_nan={equal_nan})",
    dtypes=ALL, operands=other(SPECIAL),
    args=(Arg("rtol", 1e-5, (0.1, 0.0)), Arg("atol", 1e-8, (0.5, 0.0)),
          Arg("equal_nan", False, (True,))), values=SPECIAL)
def isclose(x: torch.Tensor, y: torch.Tensor, rtol: float, atol: float,
            equal_nan: bool) -> torch.Tensor:
    return torch.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)


@op("aten::lerp", "elementwise", "torch.lerp({x0}, {x1}, {weight})", dtypes=FLOAT,
    operands=other(), args=(Arg("weight", 0.5, (0.0, 1.0, 0.25), edges=(-1.0, 2.0)),),
    overload="Scalar")
def lerp(x: torch.Tensor, y: torch.Tensor, weight: float) -> torch.Tensor:
    return torch.lerp(x, y, weight)


def _two_same(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    return [Operand(m), Operand(m, {"dist": "nonzero", "low": 0.5, "high": 2.0})]


@op("aten::addcmul", "elementwise", "torch.addcmul({x0}, {x1}, {x2}, value={value})",
    dtypes=NUM, operands=_two_same, args=(Arg("value", 1.0, (0.5, -2.0), edges=(0.0,)),),
    constraint=lambda a, m: m[0].dtype in FLOATS or float(a["value"]).is_integer())
def addcmul(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: float) -> torch.Tensor:
    return torch.addcmul(x, a, b, value=value)


@op("aten::addcdiv", "elementwise", "torch.addcdiv({x0}, {x1}, {x2}, value={value})",
    dtypes=FLOAT, operands=_two_same, args=(Arg("value", 1.0, (0.5, -2.0), edges=(0.0,)),))
def addcdiv(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: float) -> torch.Tensor:
    return torch.addcdiv(x, a, b, value=value)


# -- masking ---------------------------------------------------------------------------------
@op("aten::where", "masking", "torch.where({x0} > {threshold}, {x0}, {x1})", dtypes=ALL,
    operands=other(), args=(Arg("threshold", 0.0, (0.5, -1.0)), _promote()), overload="self")
def where(x: torch.Tensor, y: torch.Tensor, threshold: float,
          other_dtype: str | None) -> torch.Tensor:
    return torch.where(x > threshold, x, y)


def _mask_operand(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    shape = m.shape[-a["mask_rank"]:] if a["mask_rank"] else ()
    return [Operand(Meta(tuple(shape), "bool"), {"dist": "bool", "p": 0.4})]


@op("aten::masked_fill", "masking", "torch.masked_fill({x0}, {x1}, {value})", dtypes=ALL,
    operands=_mask_operand, overload="Scalar",
    args=(Arg("value", 0.0, (-1e4, 1.0, float("-inf")), edges=(float("nan"),)),
          Arg("mask_rank", 1, pick=lambda m: list(range(m[0].rank + 1)),
              doc="rank of the (broadcast) mask")),
    constraint=lambda a, m: m[0].dtype in FLOATS or float(a["value"]) in (0.0, 1.0))
def masked_fill(x: torch.Tensor, mask: torch.Tensor, value: float,
                mask_rank: int) -> torch.Tensor:
    return torch.masked_fill(x, mask, value)

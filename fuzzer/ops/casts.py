"""Casts and type promotion (promotion through binary ops lives in elementwise: `other_dtype`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fuzzer.ops.spec import ALL, Arg, Meta, Operand, op, tdtype

CAST_TO = ("float16", "float64", "int32", "int64", "bool", "int8", "uint8", "bfloat16",
           "int16")
# Large magnitudes and a share of integer extremes: casts must saturate, wrap or truncate
# exactly as torch does.
WIDE = {"dist": "corners", "scale": 50.0, "large": 1e3}


@op("aten::to", "cast", "{x0}.to({dtype})", dtypes=ALL, values=WIDE, overload="dtype",
    args=(Arg("dtype", "float32", CAST_TO, kind="dtype"),))
def to(x: torch.Tensor, dtype: str) -> torch.Tensor:
    return x.to(tdtype(dtype))


def _typed(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    dt = a["other_dtype"]
    vals = ({"dist": "bool"} if dt == "bool" else {"dist": "int", "low": 0, "high": 3}
            if dt in ("int8", "uint8", "int16", "int32", "int64") else {"dist": "normal"})
    return [Operand(Meta((1,), dt), vals)]


@op("aten::type_as", "cast", "{x0}.type_as({x1})", dtypes=ALL, values=WIDE, operands=_typed,
    args=(Arg("other_dtype", "float32", CAST_TO, kind="dtype",
              doc="dtype of the tensor whose type is taken"),))
def type_as(x: torch.Tensor, y: torch.Tensor, other_dtype: str) -> torch.Tensor:
    return x.type_as(y)

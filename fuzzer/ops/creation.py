"""Copies, views of a whole tensor, and tensors created from another's shape: the plumbing
real architectures are full of (clone, contiguous, arange over a sequence length, ones_like
masks...). Exporters constant-fold or drop much of it, which is exactly where they slip."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fuzzer.ops.spec import ALL, NUM, Arg, Meta, Operand, dim_arg, op, tdtype

FILL_DTYPES = (None, "float32", "int64", "bool", "float16")


@op("aten::clone", "copy", "{x0}.clone()", dtypes=ALL)
def clone(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@op("aten::contiguous", "copy", "{x0}.transpose(0, -1).contiguous()", dtypes=ALL, ranks=(1, 5))
def contiguous(x: torch.Tensor) -> torch.Tensor:
    # On an already-contiguous tensor this is a no-op; a transposed view makes it a copy.
    return x.transpose(0, -1).contiguous()


@op("aten::detach", "copy", "{x0}.detach()", dtypes=ALL)
def detach(x: torch.Tensor) -> torch.Tensor:
    return x.detach()


@op("aten::alias", "copy", "torch.ops.aten.alias({x0})", dtypes=ALL)
def alias(x: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.alias(x)


def _src(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    """copy's source: the destination's trailing shape, a dtype of its own (copy casts)."""
    shape = m.shape[1:] if a["broadcast"] and m.rank > 1 else m.shape
    return [Operand(Meta(tuple(shape), a["src_dtype"]))]


@op("aten::copy", "copy", "torch.ops.aten.copy({x0}, {x1})", dtypes=NUM, operands=_src,
    args=(Arg("broadcast", False, (True,), doc="src broadcast from the trailing dims"),
          Arg("src_dtype", "float32", ("float64", "int64", "float16"), kind="dtype",
              doc="dtype of the source, cast to the destination's")))
def copy(x: torch.Tensor, src: torch.Tensor, broadcast: bool, src_dtype: str) -> torch.Tensor:
    return torch.ops.aten.copy(x, src)


@op("aten::arange", "creation",
    "torch.arange({start}, {start} + {x0}.shape[{dim}] * {step}, {step}, dtype={dtype}) "
    "+ {x0}.sum() * 0", dtypes=NUM, ranks=(1, 5), overload="start_step",
    args=(dim_arg(default=-1), Arg("start", 0, (1, -3)), Arg("step", 1, (2,)),
          Arg("dtype", None, ("float32", "int64", "float64"), kind="dtype")))
def arange(x: torch.Tensor, dim: int, start: int, step: int, dtype: str | None) -> torch.Tensor:
    # Its length comes from the input's shape, as `torch.arange(seq_len)` does in real
    # models; adding `x.sum() * 0` keeps the data dependency so it is not a bare constant.
    r = torch.arange(start, start + x.shape[dim] * step, step, dtype=tdtype(dtype),
                     device=x.device)  # meta tensors during shape inference
    return r + x.sum() * 0


@op("aten::zeros_like", "creation", "torch.zeros_like({x0}, dtype={dtype})", dtypes=ALL,
    args=(Arg("dtype", None, FILL_DTYPES[1:], kind="dtype"),))
def zeros_like(x: torch.Tensor, dtype: str | None) -> torch.Tensor:
    return torch.zeros_like(x, dtype=tdtype(dtype))


@op("aten::ones_like", "creation", "torch.ones_like({x0}, dtype={dtype})", dtypes=ALL,
    args=(Arg("dtype", None, FILL_DTYPES[1:], kind="dtype"),))
def ones_like(x: torch.Tensor, dtype: str | None) -> torch.Tensor:
    return torch.ones_like(x, dtype=tdtype(dtype))


@op("aten::full_like", "creation", "torch.full_like({x0}, {fill_value}, dtype={dtype})",
    dtypes=NUM, args=(Arg("fill_value", 1.5, (-2.0, 0.0), edges=(float("inf"), 1e30)),
                      Arg("dtype", None, ("float32", "float64", "float16"), kind="dtype")))
def full_like(x: torch.Tensor, fill_value: float, dtype: str | None) -> torch.Tensor:
    if not x.is_floating_point() and dtype is None:
        fill_value = int(fill_value) if abs(fill_value) < 2**31 else 1
    return torch.full_like(x, fill_value, dtype=tdtype(dtype))


@op("aten::new_ones", "creation", "{x0}.new_ones({size}, dtype={dtype})", dtypes=ALL,
    args=(Arg("size", [2, 3], ([1], [4, 1, 2])),
          Arg("dtype", None, FILL_DTYPES[1:], kind="dtype")))
def new_ones(x: torch.Tensor, size: list[int], dtype: str | None) -> torch.Tensor:
    return x.new_ones(size, dtype=tdtype(dtype))


@op("aten::fill", "creation", "torch.ops.aten.fill({x0}, {value})", dtypes=NUM,
    overload="Scalar", args=(Arg("value", 0.5, (-3.0, 2.0), edges=(0.0,)),))
def fill(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.ops.aten.fill(x, value if x.is_floating_point() else int(value))


@op("aten::clamp_min", "elementwise", "torch.clamp_min({x0}, {min})", dtypes=NUM,
    args=(Arg("min", 0.0, (-0.5, 1e-6), edges=(1e-12,)),))
def clamp_min(x: torch.Tensor, min: float) -> torch.Tensor:
    return torch.clamp_min(x, min if x.is_floating_point() else int(min))


@op("aten::t", "shape", "{x0}.t()", dtypes=ALL, ranks=(1, 2))
def t(x: torch.Tensor) -> torch.Tensor:
    return x.t()


@op("aten::unfold", "shape", "{x0}.unfold({dimension}, {size}, {step})", dtypes=ALL,
    ranks=(1, 4), accepts=lambda m: min(m.shape) >= 3,
    args=(dim_arg("dimension", -1), Arg("size", 2, (3, 1)), Arg("step", 1, (2, 3))))
def unfold(x: torch.Tensor, dimension: int, size: int, step: int) -> torch.Tensor:
    return x.unfold(dimension, size, step)


@op("aten::tile", "shape", "torch.tile({x0}, {dims})", dtypes=ALL, ranks=(1, 4),
    args=(Arg("dims", [2], ([1, 2], [2, 1, 1], [3])),))
def tile(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    return torch.tile(x, dims)


@op("aten::diff", "elementwise", "torch.diff({x0}, n={n}, dim={dim})", dtypes=(*NUM, "bool"),
    ranks=(1, 4), accepts=lambda m: min(m.shape) >= 3,
    args=(Arg("n", 1, (2,)), dim_arg(default=-1)), python="torch.diff")
def diff(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    return torch.diff(x, n=n, dim=dim)


@op("aten::reshape_as", "shape", "{x0}.reshape_as({x1})", dtypes=ALL, ranks=(1, 4),
    operands=lambda r, m, a: [Operand(Meta((int(np.prod(m.shape)),), "float32"))])
def reshape_as(x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    return x.reshape_as(other)


@op("aten::histc", "reduction", "torch.histc({x0}, bins={bins}, min={min}, max={max})",
    dtypes=("float32", "float64"), ranks=(1, 4),
    args=(Arg("bins", 100, (4, 10), edges=(1,)), Arg("min", 0, (-2,)), Arg("max", 0, (2,))))
def histc(x: torch.Tensor, bins: int, min: float, max: float) -> torch.Tensor:
    return torch.histc(x, bins=bins, min=min, max=max)




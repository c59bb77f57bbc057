"""Shape and view operators."""

from __future__ import annotations

import math

import torch

from fuzzer.ops.spec import ALL, Arg, Meta, dim_arg, op, same


def _perms(metas: list[Meta]) -> list[list[int]]:
    r = metas[0].rank
    return [list(reversed(range(r))), [*range(1, r), 0], [r - 1, *range(r - 1)]]


def _shapes(metas: list[Meta]) -> list[list[int]]:
    n = math.prod(metas[0].shape)
    return [[-1], [1, -1], [n, 1], [-1, 1, 1]]


@op("aten::reshape", "shape", "torch.reshape({x0}, {shape})", dtypes=ALL,
    args=(Arg("shape", [-1], pick=_shapes),))
def reshape(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    return torch.reshape(x, shape)


@op("aten::flatten", "shape",
    "torch.flatten({x0}, start_dim={start_dim}, end_dim={end_dim})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg("start_dim", 0), dim_arg("end_dim", -1)))
def flatten(x: torch.Tensor, start_dim: int, end_dim: int) -> torch.Tensor:
    return torch.flatten(x, start_dim=start_dim, end_dim=end_dim)


@op("aten::permute", "shape", "{x0}.permute({dims})", dtypes=ALL, ranks=(2, 5),
    args=(Arg("dims", None, pick=_perms),))
def permute(x: torch.Tensor, dims: list[int] | None) -> torch.Tensor:
    return x.permute(dims if dims is not None else list(reversed(range(x.dim()))))


@op("aten::transpose", "shape", "torch.transpose({x0}, {dim0}, {dim1})", dtypes=ALL,
    ranks=(2, 5), args=(dim_arg("dim0", 0), dim_arg("dim1", 1)))
def transpose(x: torch.Tensor, dim0: int, dim1: int) -> torch.Tensor:
    return torch.transpose(x, dim0, dim1)


@op("aten::unsqueeze", "shape", "torch.unsqueeze({x0}, {dim})", dtypes=ALL, ranks=(0, 4),
    args=(Arg("dim", 0, pick=lambda m: list(range(-m[0].rank - 1, m[0].rank + 1))),))
def unsqueeze(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.unsqueeze(x, dim)


@op("aten::squeeze", "shape", "torch.squeeze({x0}, dim={dim})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=None, allow_none=True),))
def squeeze(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    return torch.squeeze(x) if dim is None else torch.squeeze(x, dim=dim)


@op("aten::cat", "shape", "torch.cat([{x0}, {x1}], dim={dim})", dtypes=ALL, ranks=(1, 5),
    operands=same,
    args=(dim_arg(default=0),))
def cat(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.cat([x, y], dim=dim)


@op("aten::slice", "shape", "{x0}.narrow({dim}, {start}, {length})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=0), Arg("start", 0, (1,)), Arg("length", 1, (2,))),
    accepts=lambda m: min(m.shape) >= 3)
def slice_(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    return x.narrow(dim, start, length)


@op("aten::expand", "shape", "{x0}.expand({sizes})", dtypes=ALL, ranks=(1, 4),
    args=(Arg("sizes", None, pick=lambda m: [[2, *[s if s != 1 else 3 for s in m[0].shape]],
                                             [3, *m[0].shape]]),))
def expand(x: torch.Tensor, sizes: list[int] | None) -> torch.Tensor:
    return x if sizes is None else x.expand(sizes)

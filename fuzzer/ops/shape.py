"""Shape and view operators."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import ALL, Arg, Meta, Operand, dim_arg, dims_arg, op, same


def _perms(metas: list[Meta]) -> list[list[int]]:
    r = metas[0].rank
    # The last one in negative dims, as real models write it (zamba2's x.permute(0, -2, -1, 1)).
    return [list(reversed(range(r))), [*range(1, r), 0], [r - 1, *range(r - 1)],
            [0, *range(2 - r, 0), 1]]


def _shapes(metas: list[Meta]) -> list[list[int]]:
    n = math.prod(metas[0].shape)
    return [[-1], [1, -1], [n, 1], [-1, 1, 1], [1, 1, 1, 1, n]]


@op("aten::reshape", "shape", "torch.reshape({x0}, {shape})", dtypes=ALL,
    args=(Arg("shape", [-1], pick=_shapes),))
def reshape(x: torch.Tensor, shape: list[int]) -> torch.Tensor:
    return torch.reshape(x, shape)


@op("aten::view", "shape", "{x0}.view({size})", dtypes=ALL,
    args=(Arg("size", [-1], pick=_shapes),))
def view(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    return x.view(size)


@op("aten::flatten", "shape",
    "torch.flatten({x0}, start_dim={start_dim}, end_dim={end_dim})", dtypes=ALL, ranks=(0, 5),
    args=(dim_arg("start_dim", 0), dim_arg("end_dim", -1)), overload="using_ints")
def flatten(x: torch.Tensor, start_dim: int, end_dim: int) -> torch.Tensor:
    return torch.flatten(x, start_dim=start_dim, end_dim=end_dim)


@op("aten::unflatten", "shape", "torch.unflatten({x0}, {dim}, {sizes})", dtypes=ALL,
    ranks=(1, 4), overload="int",
    args=(dim_arg(default=0), Arg("sizes", [1, -1], ([-1, 1], [2, -1], [-1, 2], [3, -1]))))
def unflatten(x: torch.Tensor, dim: int, sizes: list[int]) -> torch.Tensor:
    return torch.unflatten(x, dim, sizes)


@op("aten::permute", "shape",
    "{x0}.permute({dims} or list(reversed(range({x0}.dim()))))", dtypes=ALL, ranks=(2, 5),
    args=(Arg("dims", None, pick=_perms, doc="None: all dims reversed"),))
def permute(x: torch.Tensor, dims: list[int] | None) -> torch.Tensor:
    return x.permute(dims if dims is not None else list(reversed(range(x.dim()))))


@op("aten::transpose", "shape", "torch.transpose({x0}, {dim0}, {dim1})", dtypes=ALL,
    ranks=(2, 5), args=(dim_arg("dim0", 0), dim_arg("dim1", 1)), overload="int")
def transpose(x: torch.Tensor, dim0: int, dim1: int) -> torch.Tensor:
    return torch.transpose(x, dim0, dim1)


@op("aten::movedim", "shape", "torch.movedim({x0}, {source}, {destination})", dtypes=ALL,
    ranks=(2, 5), args=(dim_arg("source", 0), dim_arg("destination", -1)), overload="int")
def movedim(x: torch.Tensor, source: int, destination: int) -> torch.Tensor:
    return torch.movedim(x, source, destination)


@op("aten::unsqueeze", "shape", "torch.unsqueeze({x0}, {dim})", dtypes=ALL, ranks=(0, 4),
    args=(Arg("dim", 0, pick=lambda m: list(range(-m[0].rank - 1, m[0].rank + 1))),))
def unsqueeze(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.unsqueeze(x, dim)


@op("aten::squeeze", "shape", "torch.squeeze({x0}{dim:kw})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=None, allow_none=True),), overload="dim")
def squeeze(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    return torch.squeeze(x) if dim is None else torch.squeeze(x, dim=dim)


@op("aten::cat", "shape", "torch.cat([{x0}, {x1}], dim={dim})", dtypes=ALL, ranks=(1, 5),
    operands=same, args=(dim_arg(default=0),))
def cat(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.cat([x, y], dim=dim)


@op("aten::stack", "shape", "torch.stack([{x0}, {x1}], dim={dim})", dtypes=ALL, ranks=(0, 4),
    operands=same,
    args=(Arg("dim", 0, pick=lambda m: list(range(-m[0].rank - 1, m[0].rank + 1))),))
def stack(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.stack([x, y], dim=dim)


@op("aten::slice", "shape", "torch.ops.aten.slice({x0}, {dim}, {start}, {end}, {step})",
    dtypes=ALL, ranks=(1, 5), overload="Tensor",
    args=(dim_arg(default=0), Arg("start", None, (1, -2, 0), edges=(-100, 100)),
          Arg("end", None, (2, -1), edges=(1 << 62, -100)), Arg("step", 1, (2, 3))),
    accepts=lambda m: min(m.shape) >= 3)
def slice_(x: torch.Tensor, dim: int, start: int | None, end: int | None,
           step: int) -> torch.Tensor:
    return torch.ops.aten.slice(x, dim, start, end, step)


@op("aten::narrow", "shape", "torch.narrow({x0}, {dim}, {start}, {length})", dtypes=ALL,
    ranks=(1, 5), args=(dim_arg(default=0), Arg("start", 0, (1, -2)), Arg("length", 1, (2,))),
    accepts=lambda m: min(m.shape) >= 3)
def narrow(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    return torch.narrow(x, dim, start, length)


@op("aten::select", "shape", "torch.select({x0}, {dim}, {index})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=0), Arg("index", 0, (1, -1))), overload="int",
    accepts=lambda m: min(m.shape) >= 2)
def select(x: torch.Tensor, dim: int, index: int) -> torch.Tensor:
    return torch.select(x, dim, index)


@op("aten::split", "shape", "torch.split({x0}, {split_size}, dim={dim})[0]", dtypes=ALL,
    ranks=(1, 5), overload="Tensor",
    args=(Arg("split_size", 1, (2,), edges=(100,)), dim_arg(default=0)))
def split(x: torch.Tensor, split_size: int, dim: int) -> torch.Tensor:
    # The first piece only: a fixed output count keeps chains shape-checkable.
    return torch.split(x, split_size, dim=dim)[0]


@op("aten::split_with_sizes", "shape",
    "torch.split({x0}, [1, {x0}.shape[{dim}] - 1], dim={dim})", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=0),), n_outputs=2, accepts=lambda m: min(m.shape) >= 2)
def split_with_sizes(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, ...]:
    return tuple(torch.split(x, [1, x.shape[dim] - 1], dim=dim))


@op("aten::chunk", "shape", "torch.chunk({x0}, {chunks}, dim={dim})[-1]", dtypes=ALL,
    ranks=(1, 5), args=(Arg("chunks", 2, (3, 1)), dim_arg(default=0)))
def chunk(x: torch.Tensor, chunks: int, dim: int) -> torch.Tensor:
    # The last chunk: the one whose size differs when the dim does not divide evenly.
    return torch.chunk(x, chunks, dim=dim)[-1]


@op("aten::unbind", "shape", "torch.unbind({x0}, dim={dim})[-1]", dtypes=ALL, ranks=(1, 5),
    args=(dim_arg(default=0),), overload="int")
def unbind(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.unbind(x, dim=dim)[-1]


@op("aten::expand", "shape", "{x0}.expand({size} or {x0}.shape)", dtypes=ALL, ranks=(1, 4),
    args=(Arg("size", None, pick=lambda m: [[2, *[s if s != 1 else 3 for s in m[0].shape]],
                                            [3, *m[0].shape], [-1] * m[0].rank]),))
def expand(x: torch.Tensor, size: list[int] | None) -> torch.Tensor:
    return x if size is None else x.expand(size)


@op("aten::repeat", "shape", "{x0}.repeat({repeats} or [1] * {x0}.dim())", dtypes=ALL,
    ranks=(0, 4),
    args=(Arg("repeats", None, pick=lambda m: [[2] * m[0].rank, [1] * m[0].rank,
                                               [2, *([1] * m[0].rank)],
                                               [1] * max(0, m[0].rank - 1) + [3]]),))
def repeat(x: torch.Tensor, repeats: list[int] | None) -> torch.Tensor:
    return x.repeat(repeats if repeats is not None else [1] * x.dim())


@op("aten::repeat_interleave", "shape",
    "torch.repeat_interleave({x0}, {repeats}, dim={dim}, output_size={output_size})",
    dtypes=ALL, ranks=(0, 4), overload="self_int",
    args=(Arg("repeats", 2, (1, 3)), dim_arg(default=None, allow_none=True),
          Arg("output_size", None, doc="left None: torch infers it")))
def repeat_interleave(x: torch.Tensor, repeats: int, dim: int | None,
                      output_size: int | None) -> torch.Tensor:
    return torch.repeat_interleave(x, repeats, dim=dim, output_size=output_size)


@op("aten::flip", "shape", "torch.flip({x0}, {dims})", dtypes=ALL, ranks=(1, 5),
    args=(dims_arg("dims", [0]),))
def flip(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    return torch.flip(x, dims)


@op("aten::roll", "shape", "torch.roll({x0}, {shifts}, {dims})", dtypes=ALL, ranks=(1, 5),
    args=(Arg("shifts", [1], ([-1], [3], [2, -1]), edges=([100],)),
          Arg("dims", [0], ([-1], [0, -1], []))),
    constraint=lambda a, m: len(a["shifts"]) == len(a["dims"]) or (
        len(a["shifts"]) == 1 and a["dims"] == []))
def roll(x: torch.Tensor, shifts: list[int], dims: list[int]) -> torch.Tensor:
    return torch.roll(x, shifts, dims)


@op("aten::tril", "shape", "torch.tril({x0}, diagonal={diagonal})", dtypes=ALL, ranks=(2, 4),
    args=(Arg("diagonal", 0, (1, -1), edges=(-100, 100)),))
def tril(x: torch.Tensor, diagonal: int) -> torch.Tensor:
    return torch.tril(x, diagonal=diagonal)


@op("aten::triu", "shape", "torch.triu({x0}, diagonal={diagonal})", dtypes=ALL, ranks=(2, 4),
    args=(Arg("diagonal", 0, (1, -1), edges=(-100, 100)),))
def triu(x: torch.Tensor, diagonal: int) -> torch.Tensor:
    return torch.triu(x, diagonal=diagonal)


@op("aten::diagonal", "shape",
    "torch.diagonal({x0}, offset={offset}, dim1={dim1}, dim2={dim2})", dtypes=ALL, ranks=(2, 4),
    args=(Arg("offset", 0, (1, -1)), dim_arg("dim1", 0), dim_arg("dim2", 1)))
def diagonal(x: torch.Tensor, offset: int, dim1: int, dim2: int) -> torch.Tensor:
    return torch.diagonal(x, offset=offset, dim1=dim1, dim2=dim2)


def _factors(m: list[Meta]) -> list[int]:
    return [f for f in (2, 3) if m[0].shape[-1] % f == 0 and m[0].shape[-2] % f == 0]


@op("aten::pixel_shuffle", "shape", "F.pixel_shuffle({x0}, {upscale_factor})", dtypes=ALL,
    ranks=(3, 5), args=(Arg("upscale_factor", 1, (2,)),),
    accepts=lambda m: m.shape[-3] % 4 == 0)
def pixel_shuffle(x: torch.Tensor, upscale_factor: int) -> torch.Tensor:
    return F.pixel_shuffle(x, upscale_factor)


@op("aten::pixel_unshuffle", "shape", "F.pixel_unshuffle({x0}, {downscale_factor})",
    dtypes=ALL, ranks=(3, 5), args=(Arg("downscale_factor", 1, pick=_factors),))
def pixel_unshuffle(x: torch.Tensor, downscale_factor: int) -> torch.Tensor:
    return F.pixel_unshuffle(x, downscale_factor)


@op("aten::channel_shuffle", "shape", "F.channel_shuffle({x0}, {groups})", dtypes=ALL,
    ranks=(3, 5), args=(Arg("groups", 2, pick=lambda m: [g for g in (2, 3, 4)
                                                         if m[0].shape[1] % g == 0]),),
    accepts=lambda m: m.shape[1] % 2 == 0)
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    return F.channel_shuffle(x, groups)


def _bcast(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    return [Operand(Meta((2, *m.shape), m.dtype))]


@op("aten::expand_as", "shape", "{x0}.expand_as({x1})", dtypes=ALL, ranks=(0, 4),
    operands=_bcast)
def expand_as(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x.expand_as(y)

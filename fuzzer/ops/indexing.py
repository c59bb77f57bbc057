"""Indexing, gather/scatter, the index_* family, embedding and one_hot.

Index operands are drawn within range (eager rejects out-of-range indices, which would make
the Case invalid, not a finding); where torch leaves the result of repeated indices
unspecified (scatter, index_copy, index_put without accumulate) they are drawn unique.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import ALL, FLOAT, Arg, Meta, Operand, dim_arg, flag, op

PF = "torch.nn.functional."
IDX_DTYPE = Arg("index_dtype", "int64", ("int32",), kind="dtype",
                doc="dtype of the index operand (int32 where torch accepts it)")


def _d(m: Meta, dim: int) -> int:
    return dim % max(m.rank, 1)


def _index(shape: tuple[int, ...], n: int, dtype: str = "int64", unique: int | None = None,
           negative: bool = False) -> Operand:
    vals: dict[str, Any] = {"dist": "int", "low": -n if negative else 0, "high": n - 1}
    if unique is not None:
        vals = {"dist": "int", "low": 0, "high": n - 1, "unique_axis": unique}
    return Operand(Meta(shape, dtype), vals)


def _k(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(1, n + 1))


# -- gather / take ---------------------------------------------------------------------------
def _gather_idx(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    d = _d(m, a["dim"])
    shape = tuple(_k(rng, s + 1) if i == d else _k(rng, s) for i, s in enumerate(m.shape))
    return [_index(shape, m.shape[d])]


@op("aten::gather", "indexing", "torch.gather({x0}, {dim}, {x1})", dtypes=ALL, ranks=(1, 4),
    operands=_gather_idx, args=(dim_arg(default=0), flag("sparse_grad")),
    accepts=lambda m: min(m.shape) >= 1)
def gather(x: torch.Tensor, index: torch.Tensor, dim: int, sparse_grad: bool) -> torch.Tensor:
    return torch.gather(x, dim, index)


def _along_idx(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    if a["dim"] is None:
        return [_index((_k(rng, 6),), int(np.prod(m.shape)))]
    d = _d(m, a["dim"])
    shape = tuple(_k(rng, 4) if i == d else (1 if rng.random() < 0.3 else s)
                  for i, s in enumerate(m.shape))
    return [_index(shape, m.shape[d])]


@op("aten::take_along_dim", "indexing", "torch.take_along_dim({x0}, {x1}, dim={dim})",
    dtypes=ALL, ranks=(1, 4), operands=_along_idx,
    args=(dim_arg(default=0, allow_none=True),), accepts=lambda m: min(m.shape) >= 1)
def take_along_dim(x: torch.Tensor, indices: torch.Tensor, dim: int | None) -> torch.Tensor:
    return torch.take_along_dim(x, indices, dim=dim)


@op("aten::take", "indexing", "torch.take({x0}, {x1})", dtypes=ALL, ranks=(0, 4),
    operands=lambda r, m, a: [_index((_k(r, 3), _k(r, 4)), int(np.prod(m.shape)))],
    accepts=lambda m: min(m.shape, default=1) >= 1)
def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.take(x, index)


def _select_idx(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    n = m.shape[_d(m, a["dim"])] if m.rank else 1
    return [_index((_k(rng, n + 2),), n, a["index_dtype"])]


@op("aten::index_select", "indexing", "torch.index_select({x0}, {dim}, {x1})", dtypes=ALL,
    ranks=(0, 4), operands=_select_idx, args=(dim_arg(default=0), IDX_DTYPE),
    accepts=lambda m: min(m.shape, default=1) >= 1)
def index_select(x: torch.Tensor, index: torch.Tensor, dim: int,
                 index_dtype: str) -> torch.Tensor:
    return torch.index_select(x, dim, index)


def _adv_idx(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    n = m.shape[a["position"]]
    shape = (_k(rng, 4),) if a["index_rank"] == 1 else (_k(rng, 3), _k(rng, 3))
    return [_index(shape, n, a["index_dtype"], negative=True)]


@op("aten::index", "indexing", "{x0}[(slice(None),) * {position} + ({x1},)]", dtypes=ALL,
    ranks=(1, 4), operands=_adv_idx, overload="Tensor",
    args=(Arg("position", 0, pick=lambda m: list(range(m[0].rank)),
              doc="which dim the (negative-capable) index tensor indexes"),
          Arg("index_rank", 1, (2,)), IDX_DTYPE),
    accepts=lambda m: min(m.shape) >= 1)
def index(x: torch.Tensor, idx: torch.Tensor, position: int, index_rank: int,
          index_dtype: str) -> torch.Tensor:
    return x[(slice(None),) * position + (idx,)]


# -- scatter ---------------------------------------------------------------------------------
def _scatter_ops(unique: bool) -> Any:
    def rule(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
        d = _d(m, a["dim"])
        shape = tuple(_k(rng, s) for s in m.shape)
        idx = _index(shape, m.shape[d], unique=d if unique else None)
        return [idx, Operand(Meta(shape, m.dtype))]
    return rule


@op("aten::scatter", "indexing", "torch.scatter({x0}, {dim}, {x1}, {x2}{reduce:kw})",
    dtypes=ALL, ranks=(1, 4), operands=_scatter_ops(unique=True), overload="reduce",
    args=(dim_arg(default=0), Arg("reduce", None, ("add", "multiply"))),
    accepts=lambda m: min(m.shape) >= 1,
    constraint=lambda a, m: a["reduce"] is None or m[0].dtype != "bool")
def scatter(x: torch.Tensor, index: torch.Tensor, src: torch.Tensor, dim: int,
            reduce: str | None) -> torch.Tensor:
    if reduce is None:
        return torch.scatter(x, dim, index, src)
    return torch.scatter(x, dim, index, src, reduce=reduce)


@op("aten::scatter_add", "indexing", "torch.scatter_add({x0}, {dim}, {x1}, {x2})",
    dtypes=ALL, ranks=(1, 4), operands=_scatter_ops(unique=False),
    args=(dim_arg(default=0),), accepts=lambda m: min(m.shape) >= 1)
def scatter_add(x: torch.Tensor, index: torch.Tensor, src: torch.Tensor,
                dim: int) -> torch.Tensor:
    return torch.scatter_add(x, dim, index, src)


@op("aten::scatter_reduce", "indexing", "torch.scatter_reduce({x0}, {dim}, {x1}, {x2}, "
    "reduce={reduce}, include_self={include_self})", dtypes=ALL, ranks=(1, 4),
    operands=_scatter_ops(unique=False), overload="two",
    args=(dim_arg(default=0), Arg("reduce", "sum", ("prod", "mean", "amax", "amin")),
          flag("include_self", True)),
    accepts=lambda m: min(m.shape) >= 1,
    constraint=lambda a, m: m[0].dtype != "bool" or a["reduce"] in ("amax", "amin"))
def scatter_reduce(x: torch.Tensor, index: torch.Tensor, src: torch.Tensor, dim: int,
                   reduce: str, include_self: bool) -> torch.Tensor:
    return torch.scatter_reduce(x, dim, index, src, reduce=reduce, include_self=include_self)


# -- the index_* family ----------------------------------------------------------------------
def _index_src(unique: bool) -> Any:
    def rule(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
        d = _d(m, a["dim"])
        k = _k(rng, m.shape[d])
        idx = _index((k,), m.shape[d], a["index_dtype"], unique=0 if unique else None)
        src = tuple(k if i == d else s for i, s in enumerate(m.shape))
        return [idx, Operand(Meta(src, m.dtype))]
    return rule


@op("aten::index_add", "indexing", "torch.index_add({x0}, {dim}, {x1}, {x2}, alpha={alpha})",
    dtypes=ALL, ranks=(1, 4), operands=_index_src(unique=False),
    args=(dim_arg(default=0), Arg("alpha", 1, (2, -1)), IDX_DTYPE),
    accepts=lambda m: min(m.shape) >= 1,
    constraint=lambda a, m: m[0].dtype != "bool" or a["alpha"] == 1)
def index_add(x: torch.Tensor, index: torch.Tensor, source: torch.Tensor, dim: int,
              alpha: int, index_dtype: str) -> torch.Tensor:
    return torch.index_add(x, dim, index, source, alpha=alpha)


@op("aten::index_copy", "indexing", "torch.index_copy({x0}, {dim}, {x1}, {x2})", dtypes=ALL,
    ranks=(1, 4), operands=_index_src(unique=True),
    args=(dim_arg(default=0), Arg("index_dtype", "int64", doc="int64 only (int32 rejected)")),
    accepts=lambda m: min(m.shape) >= 1)
def index_copy(x: torch.Tensor, index: torch.Tensor, source: torch.Tensor, dim: int,
               index_dtype: str) -> torch.Tensor:
    return torch.index_copy(x, dim, index, source)


@op("aten::index_fill", "indexing", "torch.index_fill({x0}, {dim}, {x1}, {value})",
    dtypes=ALL, ranks=(1, 4), overload="int_Scalar",
    operands=lambda r, m, a: _index_src(False)(r, m, a)[:1],
    args=(dim_arg(default=0), Arg("value", 2.0, (0.0, -1.0, 2.5), edges=(float("-inf"),)),
          Arg("index_dtype", "int64", doc="int64 only (int32 rejected)")),
    accepts=lambda m: min(m.shape) >= 1,
    constraint=lambda a, m: m[0].dtype in FLOAT or (
        abs(a["value"]) < 100 and (a["value"] >= 0 or m[0].dtype != "uint8")))
def index_fill(x: torch.Tensor, index: torch.Tensor, dim: int, value: float,
               index_dtype: str) -> torch.Tensor:
    return torch.index_fill(x, dim, index, value)


def _put_ops(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    k = _k(rng, m.shape[0])
    idx = _index((k,), m.shape[0], unique=None if a["accumulate"] else 0)
    return [idx, Operand(Meta((k, *m.shape[1:]), m.dtype))]


@op("aten::index_put", "indexing", "torch.index_put({x0}, ({x1},), {x2}, "
    "accumulate={accumulate})", dtypes=ALL, ranks=(1, 4), operands=_put_ops,
    args=(flag("accumulate"),), accepts=lambda m: min(m.shape) >= 1)
def index_put(x: torch.Tensor, index: torch.Tensor, values: torch.Tensor,
              accumulate: bool) -> torch.Tensor:
    return torch.index_put(x, (index,), values, accumulate=accumulate)


# -- embedding / one_hot: input 0 holds indices ----------------------------------------------
def _emb_params(a: dict[str, Any], m: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {"weight": ((a["num_embeddings"], a["embedding_dim"]), a["weight_dtype"])}


@op("aten::embedding", "indexing", "F.embedding({x0}, {weight:clone}, padding_idx={padding_idx}, "
    "max_norm={max_norm}, norm_type={norm_type}, scale_grad_by_freq={scale_grad_by_freq}, "
    "sparse={sparse})", dtypes=("int64", "int32"), ranks=(0, 3), python=PF + "embedding",
    args=(Arg("num_embeddings", 10, (16,), doc="rows of the weight; indices are drawn below"),
          Arg("embedding_dim", 8, (3, 1)), Arg("padding_idx", None, (0, 2, -1)),
          Arg("max_norm", None, (1.0, 0.5)), Arg("norm_type", 2.0, (1.0, 3.0)),
          flag("scale_grad_by_freq"), flag("sparse"),
          Arg("weight_dtype", "float32", ("float64", "float16", "bfloat16"), kind="dtype")),
    params=_emb_params, values={"dist": "int", "low": 0, "high": 9})
def embedding(x: torch.Tensor, weight: torch.Tensor, *, num_embeddings: int,
              embedding_dim: int, padding_idx: int | None, max_norm: float | None,
              norm_type: float, scale_grad_by_freq: bool, sparse: bool,
              weight_dtype: str) -> torch.Tensor:
    # max_norm renormalizes the weight in place; a clone keeps the Case's weight fixed so
    # every run (fp32, fp64, export) sees the same parameters. Always, as the repro's
    # template does: a repro must trace the graph the campaign traced.
    return F.embedding(x, weight.clone(), padding_idx=padding_idx, max_norm=max_norm,
                       norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


@op("aten::one_hot", "indexing", "F.one_hot({x0}, num_classes={num_classes})",
    dtypes=("int64",), ranks=(0, 4), values={"dist": "int", "low": 0, "high": 2},
    args=(Arg("num_classes", 3, (5, 8), doc="3 and up: the values drawn are 0..2"),))
def one_hot(x: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(x, num_classes=num_classes)

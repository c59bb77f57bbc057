"""Reductions, statistics and selection (index-returning ops declare tie rules)."""

from __future__ import annotations

import torch

from fuzzer.ops.spec import FLOAT, NUM, Arg, dim_arg, dims_arg, flag, gather_ties, op

TIES = {"dist": "ties", "levels": 3}  # equal values make index outputs ambiguous on purpose


@op("aten::sum", "reduction", "torch.sum({x0}, dim={dim}, keepdim={keepdim})", dtypes=NUM,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")))
def sum_(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.sum(x, dim=dim, keepdim=keepdim)


@op("aten::mean", "reduction", "torch.mean({x0}, dim={dim}, keepdim={keepdim})", ranks=(1, 5),
    args=(dims_arg(default=[-1]), flag("keepdim")))
def mean(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.mean(x, dim=dim, keepdim=keepdim)


@op("aten::amax", "reduction", "torch.amax({x0}, dim={dim}, keepdim={keepdim})", dtypes=NUM,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")))
def amax(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.amax(x, dim=dim, keepdim=keepdim)


@op("aten::var", "reduction",
    "torch.var({x0}, dim={dim}, correction={correction}, keepdim={keepdim})", ranks=(1, 5),
    args=(dims_arg(default=[-1]), Arg("correction", 1, (0,), edges=(2,)), flag("keepdim")),
    accepts=lambda m: min(m.shape) > 2)
def var(x: torch.Tensor, dim: list[int], correction: int, keepdim: bool) -> torch.Tensor:
    return torch.var(x, dim=dim, correction=correction, keepdim=keepdim)


@op("aten::argmax", "selection", "torch.argmax({x0}, dim={dim}, keepdim={keepdim})",
    dtypes=FLOAT, ranks=(1, 5), args=(dim_arg(), flag("keepdim")), values=TIES,
    ties={0: gather_ties()}, accepts=lambda m: min(m.shape) > 0)
def argmax(x: torch.Tensor, dim: int, keepdim: bool) -> torch.Tensor:
    return torch.argmax(x, dim=dim, keepdim=keepdim)


@op("aten::topk", "selection",
    "torch.topk({x0}, k={k}, dim={dim}, largest={largest}, sorted={sorted})",
    dtypes=FLOAT, ranks=(1, 5), n_outputs=2, values=TIES,
    args=(Arg("k", 1, (2,)), dim_arg(), Arg("largest", True, (False,)),
          Arg("sorted", True, (False,))),
    ties={1: gather_ties(keepdim_key=None)}, accepts=lambda m: min(m.shape) >= 2,
    unordered=lambda a: None if a.get("sorted", True) else a.get("dim", -1))
def topk(x: torch.Tensor, k: int, dim: int, largest: bool,
         sorted: bool) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: A002
    return torch.topk(x, k=k, dim=dim, largest=largest, sorted=sorted)


@op("aten::cumsum", "cumulative", "torch.cumsum({x0}, dim={dim})", dtypes=NUM, ranks=(1, 5),
    args=(dim_arg(default=0),))
def cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.cumsum(x, dim=dim)

"""Reductions and statistics, cumulative operators, sorting and selection (index-returning
ops declare tie rules)."""

from __future__ import annotations

import torch

from fuzzer.ops.spec import (
    ALL,
    FLOAT,
    NUM,
    Arg,
    Meta,
    dim_arg,
    dims_arg,
    dtype_arg,
    flag,
    gather_ties,
    op,
    tdtype,
)

TIES = {"dist": "ties", "levels": 3}  # equal values make index outputs ambiguous on purpose
REAL = NUM  # selection kernels take every integer type too
ACC = dtype_arg(values=("float64", "float32", "int64"))


def _ok_acc(a: dict, m: list[Meta]) -> bool:
    """An integer accumulator dtype for a float input is rejected by some kernels."""
    return not (a.get("dtype") == "int64" and m[0].dtype in FLOAT)


@op("aten::sum", "reduction", "torch.sum({x0}, dim={dim}, keepdim={keepdim}, dtype={dtype})",
    dtypes=ALL, ranks=(0, 5), args=(dims_arg(default=[-1]), flag("keepdim"), ACC),
    overload="dim_IntList", accepts=lambda m: m.rank > 0)
def sum_(x: torch.Tensor, dim: list[int] | None, keepdim: bool,
         dtype: str | None) -> torch.Tensor:
    return torch.sum(x, dim=dim, keepdim=keepdim, dtype=tdtype(dtype))


@op("aten::mean", "reduction",
    "torch.mean({x0}, dim={dim}, keepdim={keepdim}, dtype={dtype})", ranks=(1, 5),
    args=(dims_arg(default=[-1]), flag("keepdim"), dtype_arg(values=("float64", "float32"))),
    overload="dim")
def mean(x: torch.Tensor, dim: list[int] | None, keepdim: bool,
         dtype: str | None) -> torch.Tensor:
    return torch.mean(x, dim=dim, keepdim=keepdim, dtype=tdtype(dtype))


@op("aten::prod", "reduction", "torch.prod({x0}, dim={dim}, keepdim={keepdim}, dtype={dtype})",
    dtypes=ALL, ranks=(1, 5), args=(dim_arg(), flag("keepdim"), ACC), overload="dim_int",
    values={"dist": "uniform", "low": 0.5, "high": 1.5}, constraint=_ok_acc)
def prod(x: torch.Tensor, dim: int, keepdim: bool, dtype: str | None) -> torch.Tensor:
    return torch.prod(x, dim=dim, keepdim=keepdim, dtype=tdtype(dtype))


@op("aten::amax", "reduction", "torch.amax({x0}, dim={dim}, keepdim={keepdim})", dtypes=ALL,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")))
def amax(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.amax(x, dim=dim, keepdim=keepdim)


@op("aten::amin", "reduction", "torch.amin({x0}, dim={dim}, keepdim={keepdim})", dtypes=ALL,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")))
def amin(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.amin(x, dim=dim, keepdim=keepdim)


@op("aten::logsumexp", "reduction", "torch.logsumexp({x0}, dim={dim}, keepdim={keepdim})",
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")), dtypes=ALL,
    values={"dist": "corners", "scale": 3.0, "large": 80.0})
def logsumexp(x: torch.Tensor, dim: list[int], keepdim: bool) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim, keepdim=keepdim)


def _stat_args() -> tuple[Arg, ...]:
    return (dims_arg(default=[-1]), Arg("correction", 1, (0,), edges=(2, 0.5)),
            flag("keepdim"))


for _name in ("var", "std"):
    def _mk(fname: str) -> None:
        f = getattr(torch, fname)

        def lower(x: torch.Tensor, dim: list[int] | None, correction: float,
                  keepdim: bool) -> torch.Tensor:
            return f(x, dim=dim, correction=correction, keepdim=keepdim)
        op(f"aten::{fname}", "reduction", f"torch.{fname}({{x0}}, dim={{dim}}, "
           "correction={correction}, keepdim={keepdim})", ranks=(1, 5), args=_stat_args(),
           overload="correction", accepts=lambda m: min(m.shape) > 2)(lower)
    _mk(_name)


for _name in ("var_mean", "std_mean"):
    def _mk2(fname: str) -> None:
        f = getattr(torch, fname)

        def lower(x: torch.Tensor, dim: list[int] | None, correction: float,
                  keepdim: bool) -> tuple[torch.Tensor, torch.Tensor]:
            return f(x, dim=dim, correction=correction, keepdim=keepdim)
        op(f"aten::{fname}", "reduction", f"torch.{fname}({{x0}}, dim={{dim}}, "
           "correction={correction}, keepdim={keepdim})", ranks=(1, 5), args=_stat_args(),
           overload="correction", n_outputs=2, accepts=lambda m: min(m.shape) > 2)(lower)
    _mk2(_name)


@op("aten::all", "reduction", "torch.all({x0}, dim={dim}, keepdim={keepdim})", dtypes=ALL,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")), overload="dims",
    values={"dist": "bool", "p": 0.8})
def all_(x: torch.Tensor, dim: list[int] | None, keepdim: bool) -> torch.Tensor:
    return torch.all(x, dim=dim, keepdim=keepdim)


@op("aten::any", "reduction", "torch.any({x0}, dim={dim}, keepdim={keepdim})", dtypes=ALL,
    ranks=(1, 5), args=(dims_arg(default=[-1]), flag("keepdim")), overload="dims",
    values={"dist": "bool", "p": 0.2})
def any_(x: torch.Tensor, dim: list[int] | None, keepdim: bool) -> torch.Tensor:
    return torch.any(x, dim=dim, keepdim=keepdim)


@op("aten::count_nonzero", "reduction", "torch.count_nonzero({x0}, dim={dim})", dtypes=ALL,
    ranks=(1, 5), args=(dims_arg(default=[-1]),), overload="dim_IntList",
    values={"dist": "ties", "levels": 2})
def count_nonzero(x: torch.Tensor, dim: list[int] | None) -> torch.Tensor:
    return torch.count_nonzero(x, dim=dim)


# -- selection: index outputs are judged by the values they select ------------------------------
@op("aten::argmax", "selection", "torch.argmax({x0}, dim={dim}, keepdim={keepdim})",
    dtypes=REAL, ranks=(1, 5), args=(dim_arg(allow_none=True), flag("keepdim")), values=TIES,
    ties={0: gather_ties()}, accepts=lambda m: min(m.shape) > 0)
def argmax(x: torch.Tensor, dim: int | None, keepdim: bool) -> torch.Tensor:
    return torch.argmax(x, dim=dim, keepdim=keepdim)


@op("aten::argmin", "selection", "torch.argmin({x0}, dim={dim}, keepdim={keepdim})",
    dtypes=REAL, ranks=(1, 5), args=(dim_arg(allow_none=True), flag("keepdim")), values=TIES,
    ties={0: gather_ties()}, accepts=lambda m: min(m.shape) > 0)
def argmin(x: torch.Tensor, dim: int | None, keepdim: bool) -> torch.Tensor:
    return torch.argmin(x, dim=dim, keepdim=keepdim)


@op("aten::max", "selection", "torch.max({x0}, dim={dim}, keepdim={keepdim})", dtypes=REAL,
    ranks=(1, 5), args=(dim_arg(), flag("keepdim")), values=TIES, n_outputs=2,
    ties={1: gather_ties()}, overload="dim", accepts=lambda m: min(m.shape) > 0)
def max_(x: torch.Tensor, dim: int, keepdim: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.max(x, dim=dim, keepdim=keepdim)


@op("aten::min", "selection", "torch.min({x0}, dim={dim}, keepdim={keepdim})", dtypes=REAL,
    ranks=(1, 5), args=(dim_arg(), flag("keepdim")), values=TIES, n_outputs=2,
    ties={1: gather_ties()}, overload="dim", accepts=lambda m: min(m.shape) > 0)
def min_(x: torch.Tensor, dim: int, keepdim: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.min(x, dim=dim, keepdim=keepdim)


@op("aten::median", "selection", "torch.median({x0}, dim={dim}, keepdim={keepdim})",
    dtypes=REAL, ranks=(1, 5), args=(dim_arg(), flag("keepdim")), values=TIES, n_outputs=2,
    ties={1: gather_ties()}, overload="dim", accepts=lambda m: min(m.shape) > 0)
def median(x: torch.Tensor, dim: int, keepdim: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.median(x, dim=dim, keepdim=keepdim)


@op("aten::kthvalue", "selection",
    "torch.kthvalue({x0}, {k}, dim={dim}, keepdim={keepdim})", dtypes=REAL, ranks=(1, 5),
    args=(Arg("k", 1, (2,), edges=(3,)), dim_arg(), flag("keepdim")), values=TIES,
    n_outputs=2, ties={1: gather_ties()}, accepts=lambda m: min(m.shape) >= 3)
def kthvalue(x: torch.Tensor, k: int, dim: int, keepdim: bool) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    return torch.kthvalue(x, k, dim=dim, keepdim=keepdim)


@op("aten::topk", "selection",
    "torch.topk({x0}, k={k}, dim={dim}, largest={largest}, sorted={sorted})",
    dtypes=REAL, ranks=(1, 5), n_outputs=2, values=TIES,
    args=(Arg("k", 1, (2,), edges=(3,)), dim_arg(), Arg("largest", True, (False,)),
          Arg("sorted", True, (False,))),
    ties={1: gather_ties(keepdim_key=None)}, accepts=lambda m: min(m.shape) >= 3,
    unordered=lambda a: None if a.get("sorted", True) else a.get("dim", -1))
def topk(x: torch.Tensor, k: int, dim: int, largest: bool,
         sorted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.topk(x, k=k, dim=dim, largest=largest, sorted=sorted)


@op("aten::sort", "selection",
    "torch.sort({x0}, dim={dim}, descending={descending}, stable={stable})", dtypes=REAL,
    ranks=(1, 5), n_outputs=2, values=TIES, overload="stable",
    args=(dim_arg(), flag("descending"), Arg("stable", False, (True,))),
    ties={1: gather_ties(keepdim_key=None)})
def sort(x: torch.Tensor, dim: int, descending: bool,
         stable: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.sort(x, dim=dim, descending=descending, stable=stable)


@op("aten::argsort", "selection",
    "torch.argsort({x0}, dim={dim}, descending={descending}, stable={stable})", dtypes=REAL,
    ranks=(1, 5), values=TIES, overload="stable",
    args=(dim_arg(), flag("descending"), Arg("stable", False, (True,))),
    ties={0: gather_ties(keepdim_key=None)})
def argsort(x: torch.Tensor, dim: int, descending: bool, stable: bool) -> torch.Tensor:
    return torch.argsort(x, dim=dim, descending=descending, stable=stable)


# -- cumulative ------------------------------------------------------------------------------
@op("aten::cumsum", "cumulative", "torch.cumsum({x0}, dim={dim}, dtype={dtype})", dtypes=ALL,
    ranks=(1, 5), args=(dim_arg(default=0), ACC), constraint=_ok_acc)
def cumsum(x: torch.Tensor, dim: int, dtype: str | None) -> torch.Tensor:
    return torch.cumsum(x, dim=dim, dtype=tdtype(dtype))


@op("aten::cumprod", "cumulative", "torch.cumprod({x0}, dim={dim}, dtype={dtype})",
    dtypes=ALL, ranks=(1, 5), args=(dim_arg(default=0), ACC), constraint=_ok_acc,
    values={"dist": "uniform", "low": 0.5, "high": 1.5})
def cumprod(x: torch.Tensor, dim: int, dtype: str | None) -> torch.Tensor:
    return torch.cumprod(x, dim=dim, dtype=tdtype(dtype))


@op("aten::logcumsumexp", "cumulative", "torch.logcumsumexp({x0}, dim={dim})", ranks=(1, 5),
    args=(dim_arg(default=0),), values={"dist": "corners", "scale": 3.0, "large": 80.0})
def logcumsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logcumsumexp(x, dim=dim)


@op("aten::cummax", "cumulative", "torch.cummax({x0}, dim={dim})", dtypes=REAL, ranks=(1, 5),
    args=(dim_arg(default=0),), values=TIES, n_outputs=2,
    ties={1: gather_ties(keepdim_key=None)})
def cummax(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cummax(x, dim=dim)


@op("aten::cummin", "cumulative", "torch.cummin({x0}, dim={dim})", dtypes=REAL, ranks=(1, 5),
    args=(dim_arg(default=0),), values=TIES, n_outputs=2,
    ties={1: gather_ties(keepdim_key=None)})
def cummin(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cummin(x, dim=dim)

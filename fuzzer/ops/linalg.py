"""Matrix products, linear layers, einsum, distances and norms."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fuzzer.ops.spec import (
    ALL,
    FLOAT,
    NUM,
    Arg,
    Meta,
    Operand,
    dim_arg,
    dims_arg,
    dtype_arg,
    flag,
    op,
)
from fuzzer.ops.spec import tdtype as _tdtype

PF = "torch.nn.functional."
ParamShapes = dict[str, tuple[tuple[int, ...], str]]


def _linear_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    ps = {"weight": ((a["out_features"], m[0].shape[-1] if m[0].rank else 1), m[0].dtype)}
    if a["with_bias"]:
        ps["bias"] = ((a["out_features"],), m[0].dtype)
    return ps


@op("aten::linear", "linalg", "F.linear({x0}, {weight}, {bias})", ranks=(1, 5), dtypes=NUM,
    args=(Arg("out_features", 8, (4, 16, 1)), flag("with_bias", True)), params=_linear_params,
    python=PF + "linear")
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           out_features: int, with_bias: bool) -> torch.Tensor:
    return F.linear(x, weight, bias)


def _bilinear_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    ps = {"weight": ((a["out_features"], m[0].shape[-1], m[1].shape[-1]), m[0].dtype)}
    if a["with_bias"]:
        ps["bias"] = ((a["out_features"],), m[0].dtype)
    return ps


@op("aten::bilinear", "linalg", "F.bilinear({x0}, {x1}, {weight}, {bias})", ranks=(1, 4),
    dtypes=NUM, python=PF + "bilinear",
    args=(Arg("out_features", 4, (1, 6)), flag("with_bias", True)), params=_bilinear_params,
    operands=lambda r, m, a: [Operand(Meta((*m.shape[:-1], int(r.integers(1, 6))), m.dtype))])
def bilinear(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor,
             bias: torch.Tensor | None = None, *, out_features: int,
             with_bias: bool) -> torch.Tensor:
    return F.bilinear(x, y, weight, bias)


def _matmul_operand(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    n = int(rng.integers(1, 6))
    rhs = a.get("rhs", "same")
    if m.rank == 1 or rhs == "vector":
        return [Operand(Meta((m.shape[-1],), m.dtype))]
    if rhs == "batched":  # broadcasting: the right operand brings batch dims of its own
        return [Operand(Meta((2, *[1] * (m.rank - 2), m.shape[-1], n), m.dtype))]
    if rhs == "matrix":
        return [Operand(Meta((m.shape[-1], n), m.dtype))]
    return [Operand(Meta((*m.shape[:-2], m.shape[-1], n), m.dtype))]


@op("aten::matmul", "linalg", "torch.matmul({x0}, {x1})", ranks=(1, 4), dtypes=NUM,
    operands=_matmul_operand,
    args=(Arg("rhs", "same", ("matrix", "vector", "batched"),
              doc="shape of the right operand: same batch dims, a matrix, a vector, or "
                  "extra batch dims to broadcast"),))
def matmul(x: torch.Tensor, y: torch.Tensor, rhs: str) -> torch.Tensor:
    return torch.matmul(x, y)


@op("aten::bmm", "linalg", "torch.bmm({x0}, {x1})", ranks=(3, 3), dtypes=NUM,
    operands=_matmul_operand)
def bmm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.bmm(x, y)


@op("aten::mm", "linalg", "torch.mm({x0}, {x1})", ranks=(2, 2), dtypes=NUM,
    operands=_matmul_operand)
def mm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mm(x, y)


@op("aten::mv", "linalg", "torch.mv({x0}, {x1})", ranks=(2, 2), dtypes=NUM,
    operands=lambda r, m, a: [Operand(Meta((m.shape[-1],), m.dtype))])
def mv(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mv(x, y)


@op("aten::dot", "linalg", "torch.dot({x0}, {x1})", ranks=(1, 1), dtypes=NUM,
    operands=lambda r, m, a: [Operand(m)])
def dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.dot(x, y)


@op("aten::outer", "linalg", "torch.outer({x0}, {x1})", ranks=(1, 1), dtypes=ALL,
    operands=lambda r, m, a: [Operand(Meta((int(r.integers(1, 6)),), m.dtype))])
def outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.outer(x, y)


SCALE = (Arg("beta", 1, (0.5, 0), edges=(-1.0,)), Arg("alpha", 1, (2.0, -0.5), edges=(0,)))


def _bias_shape(rng: np.random.Generator, out: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return out[len(out) - rank:] if rank else ()


def _addmm_ops(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    n = int(rng.integers(1, 6))
    out = (*m.shape[:-1], n)
    return [Operand(Meta(_bias_shape(rng, out, a["bias_rank"]), m.dtype)),
            Operand(Meta((*m.shape[:-2], m.shape[-1], n), m.dtype))]


def _bias_ranks(hi: int) -> Arg:
    return Arg("bias_rank", hi, tuple(range(hi)), doc="rank of the added (broadcast) input")


@op("aten::addmm", "linalg", "torch.addmm({x1}, {x0}, {x2}, beta={beta}, alpha={alpha})",
    ranks=(2, 2), dtypes=NUM, operands=_addmm_ops, args=(*SCALE, _bias_ranks(2)))
def addmm(x: torch.Tensor, bias: torch.Tensor, m2: torch.Tensor, beta: float, alpha: float,
          bias_rank: int) -> torch.Tensor:
    return torch.addmm(bias, x, m2, beta=beta, alpha=alpha)


@op("aten::baddbmm", "linalg", "torch.baddbmm({x1}, {x0}, {x2}, beta={beta}, alpha={alpha})",
    ranks=(3, 3), dtypes=NUM, operands=_addmm_ops, args=(*SCALE, _bias_ranks(3)))
def baddbmm(x: torch.Tensor, bias: torch.Tensor, b2: torch.Tensor, beta: float, alpha: float,
            bias_rank: int) -> torch.Tensor:
    return torch.baddbmm(bias, x, b2, beta=beta, alpha=alpha)


@op("aten::addmv", "linalg", "torch.addmv({x1}, {x0}, {x2}, beta={beta}, alpha={alpha})",
    ranks=(2, 2), dtypes=NUM, args=(*SCALE, _bias_ranks(1)),
    operands=lambda r, m, a: [Operand(Meta((m.shape[0],)[:a["bias_rank"]], m.dtype)),
                              Operand(Meta((m.shape[1],), m.dtype))])
def addmv(x: torch.Tensor, bias: torch.Tensor, vec: torch.Tensor, beta: float, alpha: float,
          bias_rank: int) -> torch.Tensor:
    return torch.addmv(bias, x, vec, beta=beta, alpha=alpha)


# -- einsum: equations by the rank of the chained operand ------------------------------------
EQUATIONS: dict[int, tuple[str, ...]] = {
    1: ("i->i", "i,i->", "i,j->ij", "i->"),
    2: ("ij->ji", "ij,jk->ik", "ij,ij->i", "ij->", "ij,kj->ik", "...j,j->..."),
    3: ("bij,bjk->bik", "bij->bji", "bij,bkj->bik", "bij->j", "...ij,...jk->...ik"),
    4: ("bhqd,bhkd->bhqk", "bhqd->bqhd", "bhqk,bhkd->bhqd", "...d,...d->..."),
}


def _einsum_operands(rng: np.random.Generator, m: Meta, a: dict[str, Any]) -> list[Operand]:
    lhs = a["equation"].split("->")[0].split(",")
    sizes: dict[str, int] = {}
    first = lhs[0]
    ell = m.shape[:m.rank - len(first.replace("...", ""))] if "..." in first else ()
    for lab, s in zip(first.replace("...", ""), m.shape[len(ell):], strict=False):
        sizes[lab] = s
    out = []
    for term in lhs[1:]:
        shape = [*ell] if "..." in term else []
        shape += [sizes.setdefault(c, int(rng.integers(2, 5))) for c in term.replace("...", "")]
        out.append(Operand(Meta(tuple(shape), m.dtype)))
    return out


@op("aten::einsum", "linalg", "torch.einsum({equation}, {xs})", ranks=(1, 4),
    dtypes=NUM, operands=_einsum_operands,
    args=(Arg("equation", "...->...", pick=lambda m: EQUATIONS[max(1, m[0].rank)]),
          Arg("path", None, doc="contraction order: only a speed hint")),
    constraint=lambda a, m: _einsum_fits(a["equation"], m))
def einsum(x: torch.Tensor, *others: torch.Tensor, equation: str,
           path: list[int] | None) -> torch.Tensor:
    return torch.einsum(equation, x, *others)


def _einsum_fits(eq: str, m: list[Meta]) -> bool:
    terms = eq.split("->")[0].split(",")
    if len(terms) != len(m):
        return False
    t = terms[0]
    return m[0].rank >= len(t.replace("...", "")) if "..." in t else m[0].rank == len(t)


# -- distances and norms ---------------------------------------------------------------------
@op("aten::cdist", "linalg", "torch.cdist({x0}, {x1}, p={p}, compute_mode={compute_mode})",
    ranks=(2, 3), dtypes=("float32", "float64"),
    operands=lambda r, m, a: [Operand(Meta((*m.shape[:-2], int(r.integers(1, 6)),
                                           m.shape[-1]), m.dtype))],
    args=(Arg("p", 2.0, (1.0, 0.0, 3.0), edges=(float("inf"), 0.5)),
          Arg("compute_mode", "use_mm_for_euclid_dist_if_necessary",
              ("use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"))))
def cdist(x: torch.Tensor, y: torch.Tensor, p: float, compute_mode: str) -> torch.Tensor:
    return torch.cdist(x, y, p=p, compute_mode=compute_mode)


@op("aten::cosine_similarity", "linalg", "F.cosine_similarity({x0}, {x1}, dim={dim}, "
    "eps={eps})", ranks=(1, 4), dtypes=FLOAT, operands=lambda r, m, a: [Operand(m)],
    args=(dim_arg(default=1), Arg("eps", 1e-8, (1e-3,), edges=(0.0,))),
    python=PF + "cosine_similarity")
def cosine_similarity(x: torch.Tensor, y: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    return F.cosine_similarity(x, y, dim=dim, eps=eps)


@op("aten::pairwise_distance", "linalg", "F.pairwise_distance({x0}, {x1}, p={p}, eps={eps}, "
    "keepdim={keepdim})", ranks=(1, 2), dtypes=FLOAT, operands=lambda r, m, a: [Operand(m)],
    args=(Arg("p", 2.0, (1.0, 3.0), edges=(float("inf"), 0.0)),
          Arg("eps", 1e-6, (1e-3,), edges=(0.0,)), flag("keepdim")),
    python=PF + "pairwise_distance")
def pairwise_distance(x: torch.Tensor, y: torch.Tensor, p: float, eps: float,
                      keepdim: bool) -> torch.Tensor:
    return F.pairwise_distance(x, y, p=p, eps=eps, keepdim=keepdim)


@op("aten::linalg_vector_norm", "linalg", "torch.linalg.vector_norm({x0}, ord={ord}, "
    "dim={dim}, keepdim={keepdim}, dtype={dtype})", ranks=(1, 5), dtypes=FLOAT,
    args=(Arg("ord", 2, (1, 3, 0), edges=(float("inf"), float("-inf"), 0.5, -1)),
          dims_arg(default=None), flag("keepdim"), dtype_arg(values=("float64",))),
    constraint=lambda a, m: _tdtype(a["dtype"]) is None or m[0].dtype in ("float32",
                                                                         "float64"))
def linalg_vector_norm(x: torch.Tensor, ord: float, dim: list[int] | None,
                       keepdim: bool, dtype: str | None) -> torch.Tensor:
    return torch.linalg.vector_norm(x, ord=ord, dim=dim, keepdim=keepdim, dtype=_tdtype(dtype))


@op("aten::linalg_matrix_norm", "linalg", "torch.linalg.matrix_norm({x0}, ord={ord}, "
    "dim={dim}, keepdim={keepdim}, dtype={dtype})", ranks=(2, 4), dtypes=FLOAT,
    overload="str_ord",
    args=(Arg("ord", "fro", (1, -1, float("inf"), float("-inf")), edges=("nuc", 2, -2)),
          Arg("dim", [-2, -1], ([0, 1], [-1, -2])), flag("keepdim"),
          dtype_arg(values=("float64",))))
def linalg_matrix_norm(x: torch.Tensor, ord: Any, dim: list[int],
                       keepdim: bool, dtype: str | None) -> torch.Tensor:
    return torch.linalg.matrix_norm(x, ord=ord, dim=dim, keepdim=keepdim, dtype=_tdtype(dtype))


@op("aten::linalg_cross", "linalg", "torch.linalg.cross({x0}, {x1}, dim={dim})", ranks=(1, 4),
    dtypes=NUM, operands=lambda r, m, a: [Operand(m)],
    args=(Arg("dim", -1, pick=lambda m: [d - m[0].rank for d in range(m[0].rank)
                                         if m[0].shape[d] == 3]),),
    accepts=lambda m: m.shape[-1] == 3)
def linalg_cross(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.linalg.cross(x, y, dim=dim)


@op("aten::tensordot", "linalg", "torch.tensordot({x0}, {x1}, dims={dims})", ranks=(1, 4),
    dtypes=NUM, args=(Arg("dims", 1, (0, 2)),), python="torch.tensordot",
    constraint=lambda a, m: a["dims"] <= m[0].rank,
    operands=lambda r, m, a: [Operand(Meta((*m.shape[m.rank - a["dims"]:],
                                           int(r.integers(1, 5))), m.dtype))])
def tensordot(x: torch.Tensor, y: torch.Tensor, dims: int) -> torch.Tensor:
    return torch.tensordot(x, y, dims=dims)

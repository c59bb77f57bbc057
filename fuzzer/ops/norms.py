"""Normalizations. Affine parameters and running statistics are parameters of the Case."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, Meta, flag, op


def _ln_shape(m: list[Meta]) -> list[int]:
    return [m[0].rank - k for k in (1, 2) if m[0].rank >= k]


def _ln_params(a: dict[str, Any], m: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
    shape = tuple(m[0].shape[-a["normalized_dims"]:])
    if not a["elementwise_affine"]:
        return {}
    ps = {"weight": (shape, m[0].dtype)}
    if a["with_bias"]:
        ps["bias"] = (shape, m[0].dtype)
    return ps


@op("aten::layer_norm", "norm", "F.layer_norm({x0}, {x0}.shape[-{normalized_dims}:], "
    "{weight}, {bias}, eps={eps})", ranks=(1, 5), dtypes=FLOAT,
    args=(Arg("normalized_dims", 1, pick=_ln_shape), Arg("eps", 1e-5, (1e-12, 1e-6, 0.1)),
          flag("elementwise_affine", True), flag("with_bias", True)),
    params=_ln_params)
def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, *, normalized_dims: int, eps: float,
               elementwise_affine: bool, with_bias: bool) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-normalized_dims:], weight, bias, eps=eps)


def _bn_params(a: dict[str, Any], m: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
    c = (m[0].shape[1],)
    ps = {"running_mean": (c, m[0].dtype), "running_var": (c, m[0].dtype)}
    if a["affine"]:
        ps |= {"weight": (c, m[0].dtype), "bias": (c, m[0].dtype)}
    return ps


@op("aten::batch_norm", "norm", "F.batch_norm({x0}, {running_mean}, {running_var}, "
    "{weight}, {bias}, training=False, eps={eps})", ranks=(2, 5), dtypes=FLOAT,
    args=(Arg("eps", 1e-5, (1e-3, 0.1)), flag("affine", True)), params=_bn_params)
def batch_norm(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor,
               weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, *,
               eps: float, affine: bool) -> torch.Tensor:
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)


def _gn_groups(m: list[Meta]) -> list[int]:
    c = m[0].shape[1]
    return [g for g in (1, 2, 4, c) if c % g == 0]


@op("aten::group_norm", "norm", "F.group_norm({x0}, {num_groups}, {weight}, {bias}, "
    "eps={eps})", ranks=(3, 5), dtypes=FLOAT,
    args=(Arg("num_groups", 1, pick=_gn_groups), Arg("eps", 1e-5, (1e-3, 1e-6)),
          flag("affine", True)),
    params=lambda a, m: ({"weight": ((m[0].shape[1],), m[0].dtype),
                          "bias": ((m[0].shape[1],), m[0].dtype)} if a["affine"] else {}))
def group_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, *, num_groups: int, eps: float,
               affine: bool) -> torch.Tensor:
    return F.group_norm(x, num_groups, weight, bias, eps=eps)


@op("aten::instance_norm", "norm", "F.instance_norm({x0}, eps={eps})", ranks=(3, 5),
    dtypes=FLOAT, args=(Arg("eps", 1e-5, (1e-3,)),), accepts=lambda m: min(m.shape[2:]) >= 2)
def instance_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.instance_norm(x, eps=eps)


@op("aten::rms_norm", "norm", "F.rms_norm({x0}, {x0}.shape[-1:], {weight}, eps={eps})",
    ranks=(1, 5), dtypes=FLOAT, args=(Arg("eps", None, (1e-6, 1e-3)),),
    params=lambda a, m: {"weight": ((m[0].shape[-1],), m[0].dtype)})
def rms_norm(x: torch.Tensor, weight: torch.Tensor, *, eps: float | None) -> torch.Tensor:
    return F.rms_norm(x, x.shape[-1:], weight, eps=eps)

"""Normalizations and dropout (in eval). Affine parameters and running statistics are
parameters of the Case."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, Meta, flag, op

PF = "torch.nn.functional."
ParamShapes = dict[str, tuple[tuple[int, ...], str]]


def _ln_shape(m: list[Meta]) -> list[int]:
    return [k for k in (1, 2, 3) if m[0].rank >= k]


def _ln_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    shape = tuple(m[0].shape[-a["normalized_dims"]:])
    if not a["elementwise_affine"]:
        return {}
    ps = {"weight": (shape, m[0].dtype)}
    if a["with_bias"]:
        ps["bias"] = (shape, m[0].dtype)
    return ps


@op("aten::layer_norm", "norm", "F.layer_norm({x0}, {x0}.shape[-{normalized_dims}:], "
    "{weight}, {bias}, eps={eps})", ranks=(1, 5), dtypes=FLOAT,
    args=(Arg("normalized_dims", 1, pick=_ln_shape, doc="normalized_shape = trailing dims"),
          Arg("eps", 1e-5, (1e-12, 1e-6, 0.1), edges=(0.0,)),
          flag("elementwise_affine", True), flag("with_bias", True)),
    params=_ln_params, python=PF + "layer_norm")
def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, *, normalized_dims: int, eps: float,
               elementwise_affine: bool, with_bias: bool) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-normalized_dims:], weight, bias, eps=eps)


def _bn_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    c = (m[0].shape[1],)
    ps = {"running_mean": (c, m[0].dtype), "running_var": (c, m[0].dtype)}
    if a["affine"]:
        ps |= {"weight": (c, m[0].dtype), "bias": (c, m[0].dtype)}
    return ps


@op("aten::batch_norm", "norm", "F.batch_norm({x0}, {running_mean}, {running_var}, "
    "{weight}, {bias}, training=False, momentum={momentum}, eps={eps})", ranks=(2, 5),
    dtypes=FLOAT, params=_bn_params, python=PF + "batch_norm",
    args=(Arg("eps", 1e-5, (1e-3, 0.1), edges=(0.0,)), flag("affine", True),
          Arg("momentum", 0.1, (0.0, 1.0), doc="unused in eval; kept for mined seeds")))
def batch_norm(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor,
               weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, *,
               eps: float, affine: bool, momentum: float) -> torch.Tensor:
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False,
                        momentum=momentum, eps=eps)


def _gn_groups(m: list[Meta]) -> list[int]:
    c = m[0].shape[1]
    return [g for g in (1, 2, 4, c) if c % g == 0]


@op("aten::group_norm", "norm", "F.group_norm({x0}, {num_groups}, {weight}, {bias}, "
    "eps={eps})", ranks=(2, 5), dtypes=FLOAT, python=PF + "group_norm",
    args=(Arg("num_groups", 1, pick=_gn_groups), Arg("eps", 1e-5, (1e-3, 1e-6)),
          flag("affine", True)),
    params=lambda a, m: ({"weight": ((m[0].shape[1],), m[0].dtype),
                          "bias": ((m[0].shape[1],), m[0].dtype)} if a["affine"] else {}))
def group_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, *, num_groups: int, eps: float,
               affine: bool) -> torch.Tensor:
    return F.group_norm(x, num_groups, weight, bias, eps=eps)


def _in_params(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
    c = (m[0].shape[1],)
    ps: ParamShapes = {}
    if a["affine"]:
        ps |= {"weight": (c, m[0].dtype), "bias": (c, m[0].dtype)}
    if a["track_running_stats"]:
        ps |= {"running_mean": (c, m[0].dtype), "running_var": (c, m[0].dtype)}
    return ps


@op("aten::instance_norm", "norm", "F.instance_norm({x0}, {running_mean:clone}, "
    "{running_var:clone}, {weight}, {bias}, use_input_stats={use_input_stats}, "
    "momentum={momentum}, eps={eps})",
    ranks=(3, 5), dtypes=FLOAT, params=_in_params, python=PF + "instance_norm",
    args=(Arg("eps", 1e-5, (1e-3,), edges=(0.0,)), flag("affine"),
          flag("track_running_stats"), flag("use_input_stats", True),
          Arg("momentum", 0.1, (0.0,), doc="only moves running stats, which a clone isolates")),
    constraint=lambda a, m: a["use_input_stats"] or a["track_running_stats"],
    accepts=lambda m: min(m.shape[2:]) >= 2)
def instance_norm(x: torch.Tensor, running_mean: torch.Tensor | None = None,
                  running_var: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None, *, eps: float, affine: bool,
                  track_running_stats: bool, use_input_stats: bool,
                  momentum: float) -> torch.Tensor:
    # With input stats and running stats, torch updates the running stats in place: clones
    # keep the Case's parameters fixed across runs.
    rm = running_mean.clone() if running_mean is not None else None
    rv = running_var.clone() if running_var is not None else None
    return F.instance_norm(x, rm, rv, weight, bias, use_input_stats=use_input_stats,
                           momentum=momentum, eps=eps)


@op("aten::rms_norm", "norm", "F.rms_norm({x0}, {x0}.shape[-{normalized_dims}:], {weight}, "
    "eps={eps})", ranks=(1, 5), dtypes=FLOAT, python=PF + "rms_norm",
    args=(Arg("normalized_dims", 1, pick=_ln_shape, doc="normalized_shape = trailing dims"),
          Arg("eps", None, (1e-6, 1e-3), edges=(0.0,)), flag("elementwise_affine", True)),
    params=lambda a, m: ({"weight": (tuple(m[0].shape[-a["normalized_dims"]:]), m[0].dtype)}
                         if a["elementwise_affine"] else {}))
def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, *, normalized_dims: int,
             eps: float | None, elementwise_affine: bool) -> torch.Tensor:
    return F.rms_norm(x, x.shape[-normalized_dims:], weight, eps=eps)


# No ATen op of its own (torch decomposes it into avg_pool/pow/div); named after the functional.
@op("aten::local_response_norm", "norm", "F.local_response_norm({x0}, {size}, alpha={alpha}, "
    "beta={beta}, k={k})", ranks=(3, 5), dtypes=FLOAT, python=PF + "local_response_norm",
    args=(Arg("size", 2, (3, 5), edges=(1,)), Arg("alpha", 1e-4, (1e-2, 1.0)),
          Arg("beta", 0.75, (0.5, 1.0)), Arg("k", 1.0, (2.0, 0.5))))
def local_response_norm(x: torch.Tensor, size: int, alpha: float, beta: float,
                        k: float) -> torch.Tensor:
    return F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)


@op("aten::dropout", "norm", "F.dropout({x0}, p={p}, training=False)", dtypes=FLOAT,
    args=(Arg("p", 0.5, (0.1, 0.0), edges=(1.0,)),), python=PF + "dropout")
def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    return F.dropout(x, p=p, training=False)

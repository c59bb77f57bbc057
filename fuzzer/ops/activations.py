"""Activations (torch.nn.functional), with their parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, dim_arg, flag, op

SAT = {"dist": "corners", "scale": 3.0, "large": 50.0}  # reaches saturation regions


@op("aten::relu", "activation", "F.relu({x0})", values=SAT)
def relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x)


@op("aten::gelu", "activation", "F.gelu({x0}, approximate={approximate})",
    args=(Arg("approximate", "none", ("tanh",)),), values=SAT)
def gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    return F.gelu(x, approximate=approximate)


@op("aten::silu", "activation", "F.silu({x0})", values=SAT)
def silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x)


@op("aten::sigmoid", "activation", "torch.sigmoid({x0})", values=SAT)
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


@op("aten::tanh", "activation", "torch.tanh({x0})", values=SAT)
def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


@op("aten::leaky_relu", "activation", "F.leaky_relu({x0}, negative_slope={negative_slope})",
    args=(Arg("negative_slope", 0.01, (0.2, 1.0), edges=(0.0, -0.5, 5.0)),), values=SAT)
def leaky_relu(x: torch.Tensor, negative_slope: float) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=negative_slope)


@op("aten::elu", "activation", "F.elu({x0}, alpha={alpha})",
    args=(Arg("alpha", 1.0, (0.5, 2.0), edges=(0.0,)),), values=SAT)
def elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return F.elu(x, alpha=alpha)


@op("aten::hardtanh", "activation", "F.hardtanh({x0}, min_val={min_val}, max_val={max_val})",
    args=(Arg("min_val", -1.0, (-2.0, 0.0)), Arg("max_val", 1.0, (6.0, 0.5))), values=SAT)
def hardtanh(x: torch.Tensor, min_val: float, max_val: float) -> torch.Tensor:
    return F.hardtanh(x, min_val=min_val, max_val=max_val)


@op("aten::hardswish", "activation", "F.hardswish({x0})", values=SAT)
def hardswish(x: torch.Tensor) -> torch.Tensor:
    return F.hardswish(x)


@op("aten::hardsigmoid", "activation", "F.hardsigmoid({x0})", values=SAT)
def hardsigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.hardsigmoid(x)


@op("aten::softplus", "activation", "F.softplus({x0}, beta={beta}, threshold={threshold})",
    args=(Arg("beta", 1.0, (2.0, 0.5), edges=(-1.0,)),
          Arg("threshold", 20.0, (1.0, 5.0), edges=(0.0,))), values=SAT)
def softplus(x: torch.Tensor, beta: float, threshold: float) -> torch.Tensor:
    return F.softplus(x, beta=beta, threshold=threshold)


@op("aten::mish", "activation", "F.mish({x0})", values=SAT)
def mish(x: torch.Tensor) -> torch.Tensor:
    return F.mish(x)


@op("aten::softmax", "activation", "torch.softmax({x0}, dim={dim})", ranks=(1, 5),
    args=(dim_arg(),), values=SAT)
def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(x, dim=dim)


@op("aten::log_softmax", "activation", "torch.log_softmax({x0}, dim={dim})", ranks=(1, 5),
    args=(dim_arg(),), values=SAT)
def log_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.log_softmax(x, dim=dim)


@op("aten::prelu", "activation", "F.prelu({x0}, {weight})", ranks=(1, 5),
    args=(flag("per_channel"),),
    params=lambda a, m: {"weight": ((m[0].shape[1] if a["per_channel"] and m[0].rank > 1
                                     else 1,), m[0].dtype)}, values=SAT, dtypes=FLOAT)
def prelu(x: torch.Tensor, weight: torch.Tensor, per_channel: bool) -> torch.Tensor:
    return F.prelu(x, weight)

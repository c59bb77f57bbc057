"""Activations (torch.nn.functional), with their parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import (
    ALL,
    FLOAT,
    INT,
    NUM,
    SIGNED,
    Arg,
    Meta,
    dim_arg,
    dtype_arg,
    flag,
    op,
    tdtype,
)

SAT = {"dist": "corners", "scale": 3.0, "large": 50.0}  # reaches saturation regions
PF = "torch.nn.functional."


@op("aten::relu", "activation", "F.relu({x0})", values=SAT, python=PF + "relu",
    dtypes=FLOAT + INT)
def relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x)


@op("aten::relu6", "activation", "F.relu6({x0})", values=SAT, python=PF + "relu6",
    dtypes=FLOAT + INT)
def relu6(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x)


@op("aten::gelu", "activation", "F.gelu({x0}, approximate={approximate})",
    args=(Arg("approximate", "none", ("tanh",)),), values=SAT)
def gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    return F.gelu(x, approximate=approximate)


@op("aten::silu", "activation", "F.silu({x0})", values=SAT, python=PF + "silu")
def silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x)


@op("aten::sigmoid", "activation", "torch.sigmoid({x0})", values=SAT, dtypes=ALL)
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


@op("aten::tanh", "activation", "torch.tanh({x0})", values=SAT, dtypes=ALL)
def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


@op("aten::leaky_relu", "activation", "F.leaky_relu({x0}, negative_slope={negative_slope})",
    args=(Arg("negative_slope", 0.01, (0.2, 1.0), edges=(0.0, -0.5, 5.0)),), values=SAT,
    python=PF + "leaky_relu")
def leaky_relu(x: torch.Tensor, negative_slope: float) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=negative_slope)


@op("aten::elu", "activation", "F.elu({x0}, alpha={alpha})",
    args=(Arg("alpha", 1.0, (0.5, 2.0), edges=(0.0, -1.0)),), values=SAT, python=PF + "elu")
def elu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return F.elu(x, alpha=alpha)


@op("aten::celu", "activation", "F.celu({x0}, alpha={alpha})",
    args=(Arg("alpha", 1.0, (0.5, 2.0), edges=(1e-3,)),), values=SAT, python=PF + "celu")
def celu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return F.celu(x, alpha=alpha)


@op("aten::selu", "activation", "F.selu({x0})", values=SAT, python=PF + "selu")
def selu(x: torch.Tensor) -> torch.Tensor:
    return F.selu(x)


@op("aten::hardtanh", "activation", "F.hardtanh({x0}, min_val={min_val}, max_val={max_val})",
    args=(Arg("min_val", -1.0, (-2.0, 0.0)), Arg("max_val", 1.0, (6.0, 0.5))), values=SAT,
    constraint=lambda a, m: a["min_val"] <= a["max_val"], python=PF + "hardtanh",
    dtypes=FLOAT + SIGNED)
def hardtanh(x: torch.Tensor, min_val: float, max_val: float) -> torch.Tensor:
    return F.hardtanh(x, min_val=min_val, max_val=max_val)


@op("aten::hardswish", "activation", "F.hardswish({x0})", values=SAT, python=PF + "hardswish")
def hardswish(x: torch.Tensor) -> torch.Tensor:
    return F.hardswish(x)


@op("aten::hardsigmoid", "activation", "F.hardsigmoid({x0})", values=SAT,
    python=PF + "hardsigmoid")
def hardsigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.hardsigmoid(x)


@op("aten::hardshrink", "activation", "F.hardshrink({x0}, lambd={lambd})",
    args=(Arg("lambd", 0.5, (1.0, 0.1), edges=(0.0,)),), values=SAT)
def hardshrink(x: torch.Tensor, lambd: float) -> torch.Tensor:
    return F.hardshrink(x, lambd=lambd)


@op("aten::softshrink", "activation", "F.softshrink({x0}, lambd={lambd})",
    args=(Arg("lambd", 0.5, (1.0, 0.1), edges=(0.0,)),), values=SAT, dtypes=FLOAT)
def softshrink(x: torch.Tensor, lambd: float) -> torch.Tensor:
    return F.softshrink(x, lambd=lambd)


@op("aten::tanhshrink", "activation", "F.tanhshrink({x0})", values=SAT,
    python=PF + "tanhshrink")
def tanhshrink(x: torch.Tensor) -> torch.Tensor:
    return F.tanhshrink(x)


@op("aten::softsign", "activation", "F.softsign({x0})", values=SAT, python=PF + "softsign",
    dtypes=FLOAT + INT)
def softsign(x: torch.Tensor) -> torch.Tensor:
    return F.softsign(x)


@op("aten::log_sigmoid", "activation", "F.logsigmoid({x0})", values=SAT)
def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.logsigmoid(x)


@op("aten::threshold", "activation",
    "F.threshold({x0}, threshold={threshold}, value={value})",
    args=(Arg("threshold", 0.0, (0.5, -1.0)), Arg("value", 0.0, (-1.0, 2.0), edges=(-1e4,))),
    values=SAT, python=PF + "threshold", dtypes=NUM)
def threshold(x: torch.Tensor, threshold: float, value: float) -> torch.Tensor:
    return F.threshold(x, threshold, value)


@op("aten::rrelu", "activation", "F.rrelu({x0}, lower={lower}, upper={upper}, training=False)",
    args=(Arg("lower", 0.125, (0.0, 0.25)), Arg("upper", 1 / 3, (0.5, 1.0))), values=SAT,
    constraint=lambda a, m: a["lower"] <= a["upper"], python=PF + "rrelu")
def rrelu(x: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    return F.rrelu(x, lower=lower, upper=upper, training=False)


@op("aten::softplus", "activation", "F.softplus({x0}, beta={beta}, threshold={threshold})",
    args=(Arg("beta", 1.0, (2.0, 0.5), edges=(-1.0,)),
          Arg("threshold", 20.0, (1.0, 5.0), edges=(0.0,))), values=SAT)
def softplus(x: torch.Tensor, beta: float, threshold: float) -> torch.Tensor:
    return F.softplus(x, beta=beta, threshold=threshold)


@op("aten::mish", "activation", "F.mish({x0})", values=SAT, python=PF + "mish")
def mish(x: torch.Tensor) -> torch.Tensor:
    return F.mish(x)


def _even_dims(m: list[Meta]) -> list[int]:
    return [d - m[0].rank for d in range(m[0].rank) if m[0].shape[d] % 2 == 0]


@op("aten::glu", "activation", "F.glu({x0}, dim={dim})", ranks=(1, 5),
    args=(Arg("dim", -1, pick=_even_dims),), values=SAT,
    accepts=lambda m: m.shape[-1] % 2 == 0, python=PF + "glu")
def glu(x: torch.Tensor, dim: int) -> torch.Tensor:
    return F.glu(x, dim=dim)


@op("aten::softmax", "activation", "torch.softmax({x0}, dim={dim}, dtype={dtype})",
    ranks=(1, 5), args=(dim_arg(), dtype_arg()), values=SAT, overload="int")
def softmax(x: torch.Tensor, dim: int, dtype: str | None) -> torch.Tensor:
    return torch.softmax(x, dim=dim, dtype=tdtype(dtype))


@op("aten::log_softmax", "activation", "torch.log_softmax({x0}, dim={dim}, dtype={dtype})",
    ranks=(1, 5), args=(dim_arg(), dtype_arg()), values=SAT, overload="int")
def log_softmax(x: torch.Tensor, dim: int, dtype: str | None) -> torch.Tensor:
    return torch.log_softmax(x, dim=dim, dtype=tdtype(dtype))


# No ATen op of its own (torch decomposes it to softmax(-x)); named after the functional.
@op("aten::softmin", "activation", "F.softmin({x0}, dim={dim}, dtype={dtype})", ranks=(1, 5),
    args=(dim_arg(), dtype_arg()), values=SAT, python=PF + "softmin")
def softmin(x: torch.Tensor, dim: int, dtype: str | None) -> torch.Tensor:
    return F.softmin(x, dim=dim, dtype=tdtype(dtype))


@op("aten::prelu", "activation", "F.prelu({x0}, {weight})", ranks=(1, 5),
    args=(flag("per_channel"),),
    params=lambda a, m: {"weight": ((m[0].shape[1] if a["per_channel"] and m[0].rank > 1
                                     else 1,), m[0].dtype)}, values=SAT, dtypes=FLOAT)
def prelu(x: torch.Tensor, weight: torch.Tensor, per_channel: bool) -> torch.Tensor:
    return F.prelu(x, weight)

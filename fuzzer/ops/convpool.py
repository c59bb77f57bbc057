"""Convolutions and transposed convolutions (1d/2d/3d). Weights are parameters drawn from the
Case seed and node id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, INT, Arg, Meta, flag, op

ParamShapes = dict[str, tuple[tuple[int, ...], str]]


def _ks(a: dict[str, Any], nd: int) -> tuple[int, ...]:
    k = a["kernel_size"]
    return tuple(k) if isinstance(k, list) else (k,) * nd


def _conv_params(nd: int, transposed: bool = False) -> Callable[[dict[str, Any], list[Meta]],
                                                                 ParamShapes]:
    def rule(a: dict[str, Any], m: list[Meta]) -> ParamShapes:
        cin, g, cout = m[0].shape[1], a["groups"], a["out_channels"]
        w = (cin, cout // g) if transposed else (cout, cin // g)
        ps = {"weight": ((*w, *_ks(a, nd)), m[0].dtype)}
        if a["with_bias"]:
            ps["bias"] = ((cout,), m[0].dtype)
        return ps
    return rule


def _groups(m: list[Meta]) -> list[int]:
    c = m[0].shape[1]
    return [g for g in (2, 3, 4, c) if g > 1 and c % g == 0]


def _conv_args(nd: int, transposed: bool = False) -> tuple[Arg, ...]:
    pads: tuple[Any, ...] = ([1] * nd,) if transposed else ([1] * nd, "same", "valid")
    out = [
        Arg("out_channels", 4, (2, 6, 8), doc="weight rows (the weight is a parameter)"),
        Arg("kernel_size", [3] * nd, ([1] * nd, [2] * nd), edges=([1] * (nd - 1) + [3],),
            doc="weight's spatial size"),
        Arg("stride", [1] * nd, ([2] * nd,), edges=([3] * nd, [1] * (nd - 1) + [2])),
        Arg("padding", [0] * nd, pads, edges=([2] * nd,)),
        Arg("dilation", [1] * nd, ([2] * nd,)),
        Arg("groups", 1, pick=_groups),
        flag("with_bias", True),
    ]
    if transposed:
        out.insert(4, Arg("output_padding", [0] * nd, ([1] * nd,)))
    return tuple(out)


def _conv_ok(a: dict[str, Any], m: list[Meta]) -> bool:
    if m[0].shape[1] % a["groups"] or a["out_channels"] % a["groups"]:
        return False
    if a["padding"] == "same" and any(s != 1 for s in a["stride"]):
        return False  # torch rejects padding='same' with strides
    if "output_padding" in a:  # must be smaller than stride or dilation
        return all(o < max(s, d) for o, s, d in zip(a["output_padding"], a["stride"],
                                                   a["dilation"], strict=True))
    return True


def _conv(nd: int, transposed: bool = False) -> None:
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    fn = getattr(F, name)
    extra = "output_padding={output_padding}, " if transposed else ""
    tmpl = (f"F.{name}({{x0}}, {{weight}}, {{bias}}, stride={{stride}}, padding={{padding}}, "
            f"{extra}dilation={{dilation}}, groups={{groups}})")

    def lower(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
              **a: Any) -> torch.Tensor:
        kw = {k: a[k] for k in ("stride", "padding", "dilation", "groups", "output_padding")
              if k in a}
        return fn(x, weight, bias, **kw)
    lower.__doc__ = f"F.{name}"
    overload = "input" if transposed and nd > 1 else "default"
    # torch's CPU kernels take integer convolutions too (transposed: int64 only).
    dtypes = FLOAT + (("int64",) if transposed else INT)
    op(f"aten::{name}", "conv", tmpl, ranks=(nd + 2, nd + 2), dtypes=dtypes,
       args=_conv_args(nd, transposed), params=_conv_params(nd, transposed),
       constraint=_conv_ok, overload=overload, python=f"torch.nn.functional.{name}",
       accepts=lambda m: min(m.shape[2:]) >= 3 and m.shape[1] >= 1)(lower)


for _nd in (1, 2, 3):
    _conv(_nd)
    _conv(_nd, transposed=True)

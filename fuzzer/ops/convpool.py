"""Convolutions and pooling. Weights are parameters drawn from the Case seed and node id."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import FLOAT, Arg, Meta, flag, op


def _conv_params(nd: int):  # noqa: ANN202 - returns a ParamRule
    def rule(a: dict[str, Any], m: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
        cin, k = m[0].shape[1], a["kernel_size"]
        ks = tuple(k) if isinstance(k, list) else (k,) * nd
        g = a["groups"]
        ps = {"weight": ((a["out_channels"], cin // g, *ks), m[0].dtype)}
        if a["with_bias"]:
            ps["bias"] = ((a["out_channels"],), m[0].dtype)
        return ps
    return rule


def _groups(m: list[Meta]) -> list[int]:
    c = m[0].shape[1]
    return [g for g in (2, 3, 4, c) if g > 1 and c % g == 0]


def _conv_args(nd: int) -> tuple[Arg, ...]:
    return (
        Arg("out_channels", 4, (2, 6, 8)),
        Arg("kernel_size", [3] * nd, ([1] * nd, [2] * nd), edges=([1] * (nd - 1) + [3],)),
        Arg("stride", [1] * nd, ([2] * nd,), edges=([3] * nd,)),
        Arg("padding", [0] * nd, ([1] * nd, "same", "valid"), edges=([2] * nd,)),
        Arg("dilation", [1] * nd, ([2] * nd,)),
        Arg("groups", 1, pick=_groups),
        flag("with_bias", True),
    )


def _conv_ok(a: dict[str, Any], m: list[Meta]) -> bool:
    return m[0].shape[1] % a["groups"] == 0 and a["out_channels"] % a["groups"] == 0


@op("aten::conv2d", "conv", "F.conv2d({x0}, {weight}, {bias}, stride={stride}, "
    "padding={padding}, dilation={dilation}, groups={groups})",
    ranks=(4, 4), args=_conv_args(2), params=_conv_params(2), dtypes=FLOAT, constraint=_conv_ok,
    accepts=lambda m: m.shape[1] >= 1 and min(m.shape[2:]) >= 3)
def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
           groups: int, with_bias: bool) -> torch.Tensor:
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


@op("aten::conv1d", "conv", "F.conv1d({x0}, {weight}, {bias}, stride={stride}, "
    "padding={padding}, dilation={dilation}, groups={groups})",
    ranks=(3, 3), args=_conv_args(1), params=_conv_params(1), dtypes=FLOAT, constraint=_conv_ok,
    accepts=lambda m: min(m.shape[2:]) >= 3)
def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
           groups: int, with_bias: bool) -> torch.Tensor:
    return F.conv1d(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


def _pool_args(nd: int) -> tuple[Arg, ...]:
    return (Arg("kernel_size", [2] * nd, ([3] * nd,), edges=([1] * nd,)),
            Arg("stride", None, ([1] * nd, [2] * nd)),
            Arg("padding", [0] * nd, ([1] * nd,)),
            flag("ceil_mode"))


@op("aten::max_pool2d", "pool", "F.max_pool2d({x0}, kernel_size={kernel_size}, "
    "stride={stride}, padding={padding}, dilation={dilation}, ceil_mode={ceil_mode})",
    ranks=(4, 4), args=(*_pool_args(2), Arg("dilation", [1, 1], ([2, 2],))),
    accepts=lambda m: min(m.shape[2:]) >= 4)
def max_pool2d(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               ceil_mode: bool) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size, stride=stride, padding=padding, dilation=dilation,
                        ceil_mode=ceil_mode)


@op("aten::avg_pool2d", "pool", "F.avg_pool2d({x0}, kernel_size={kernel_size}, "
    "stride={stride}, padding={padding}, ceil_mode={ceil_mode}, "
    "count_include_pad={count_include_pad}, divisor_override={divisor_override})",
    ranks=(4, 4), args=(*_pool_args(2), flag("count_include_pad", True),
                        Arg("divisor_override", None, (3,))),
    accepts=lambda m: min(m.shape[2:]) >= 4)
def avg_pool2d(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
               count_include_pad: bool, divisor_override: int | None) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad, divisor_override=divisor_override)


@op("aten::adaptive_avg_pool2d", "pool", "F.adaptive_avg_pool2d({x0}, {output_size})",
    ranks=(3, 4), args=(Arg("output_size", [1, 1], ([2, 2], [3, 3], [2, 1])),))
def adaptive_avg_pool2d(x: torch.Tensor, output_size: Any) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, output_size)


@op("aten::upsample_nearest2d", "resize",
    "F.interpolate({x0}, scale_factor={scale_factor}, mode='nearest')", ranks=(4, 4),
    args=(Arg("scale_factor", 2.0, (3.0, 1.5), edges=(0.5,)),))
def upsample_nearest2d(x: torch.Tensor, scale_factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale_factor, mode="nearest")


@op("aten::upsample_bilinear2d", "resize", "F.interpolate({x0}, scale_factor={scale_factor}, "
    "mode='bilinear', align_corners={align_corners})", ranks=(4, 4),
    args=(Arg("scale_factor", 2.0, (1.5, 3.0), edges=(0.5,)), flag("align_corners")))
def upsample_bilinear2d(x: torch.Tensor, scale_factor: float,
                        align_corners: bool) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale_factor, mode="bilinear",
                         align_corners=align_corners)


@op("aten::pad", "shape", "F.pad({x0}, {pad}, mode={mode}, value={value})", ranks=(3, 4),
    args=(Arg("pad", [1, 1], ([0, 2], [1, 1, 1, 1], [2, 0, 0, 1])),
          Arg("mode", "constant", ("reflect", "replicate", "circular")),
          Arg("value", 0.0, (1.5, -2.0))),
    accepts=lambda m: min(m.shape[1:]) >= 3)
def pad(x: torch.Tensor, pad: list[int], mode: str, value: float) -> torch.Tensor:
    return F.pad(x, pad, mode=mode, value=value if mode == "constant" else None)

"""Pooling: max, avg, lp and adaptive, 1d/2d/3d, with ceil_mode, count_include_pad,
divisor_override, dilation and return_indices."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import ALL, FLOAT, FLOAT32, INT, Arg, Meta, flag, op

PF = "torch.nn.functional."


def _pad_ok(a: dict[str, Any], m: list[Meta]) -> bool:
    """torch: padding at most half the (effective) kernel."""
    k, p = a["kernel_size"], a["padding"]
    return all(pi <= ki // 2 for pi, ki in zip(p, k, strict=True))


def _window(nd: int) -> tuple[Arg, ...]:
    return (Arg("kernel_size", [2] * nd, ([3] * nd,), edges=([1] * nd, [1] * (nd - 1) + [3])),
            Arg("stride", None, ([1] * nd, [2] * nd), edges=([3] * nd,),
                doc="None: the kernel size"),
            Arg("padding", [0] * nd, ([1] * nd,)),
            flag("ceil_mode"))


def _max_pool(nd: int) -> None:
    name = f"max_pool{nd}d"
    fn = getattr(F, name)

    def lower(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
              dilation: Any, return_indices: bool) -> Any:
        return fn(x, kernel_size, stride=stride, padding=padding, dilation=dilation,
                  ceil_mode=ceil_mode, return_indices=return_indices)
    lower.__doc__ = f"F.{name}"
    op(f"aten::{name}", "pool", f"F.{name}({{x0}}, kernel_size={{kernel_size}}, "
       "stride={stride}, padding={padding}, dilation={dilation}, ceil_mode={ceil_mode}, "
       "return_indices={return_indices})", ranks=(nd + 1, nd + 2),
       dtypes=FLOAT + (INT if nd > 1 else ()),
       args=(*_window(nd), Arg("dilation", [1] * nd, ([2] * nd,)), flag("return_indices")),
       constraint=_pad_ok, python=PF + name,
       accepts=lambda m: min(m.shape[-nd:]) >= 4)(lower)


def _avg_pool(nd: int) -> None:
    name = f"avg_pool{nd}d"
    fn = getattr(F, name)
    div = nd > 1  # avg_pool1d has no divisor_override

    def lower(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
              count_include_pad: bool, divisor_override: int | None = None) -> torch.Tensor:
        kw = {"divisor_override": divisor_override} if div else {}
        return fn(x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, **kw)
    lower.__doc__ = f"F.{name}"
    args = (*_window(nd), flag("count_include_pad", True))
    if div:
        args = (*args, Arg("divisor_override", None, (3,), edges=(1,)))
    op(f"aten::{name}", "pool", f"F.{name}({{x0}}, kernel_size={{kernel_size}}, "
       "stride={stride}, padding={padding}, ceil_mode={ceil_mode}, "
       "count_include_pad={count_include_pad}" + (", divisor_override={divisor_override})"
                                                  if div else ")"),
       ranks=(nd + 1, nd + 2), dtypes=(FLOAT if nd < 3 else FLOAT32) + ("int64",), args=args,
       constraint=_pad_ok,
       python=PF + name, accepts=lambda m: min(m.shape[-nd:]) >= 4)(lower)


def _lp_pool(nd: int) -> None:
    name = f"lp_pool{nd}d"
    fn = getattr(F, name)

    def lower(x: torch.Tensor, norm_type: float, kernel_size: Any, stride: Any,
              ceil_mode: bool) -> torch.Tensor:
        return fn(x, norm_type, kernel_size, stride=stride, ceil_mode=ceil_mode)
    lower.__doc__ = f"F.{name} (no ATen op of its own: avg_pool of x**p, then the p-th root)"
    k = (Arg("kernel_size", [2] * nd, ([3] * nd,), edges=([1] * nd,)) if nd > 1
         else Arg("kernel_size", 2, (3,), edges=(1,)))
    op(f"aten::{name}", "pool", f"F.{name}({{x0}}, {{norm_type}}, {{kernel_size}}, "
       "stride={stride}, ceil_mode={ceil_mode})", ranks=(nd + 1, nd + 2),
       dtypes=(FLOAT if nd < 3 else FLOAT32) + tuple(d for d in ALL if d not in FLOAT),
       args=(Arg("norm_type", 2.0, (1.0, 3.0), edges=(float("inf"), 0.5)), k,
             Arg("stride", None, ([1] * nd if nd > 1 else 1, [2] * nd if nd > 1 else 2)),
             flag("ceil_mode")),
       python=PF + name, values={"dist": "positive", "low": 0.1, "high": 3.0},
       accepts=lambda m: min(m.shape[-nd:]) >= 4)(lower)


def _adaptive(nd: int, kind: str) -> None:
    name = f"adaptive_{kind}_pool{nd}d"
    fn = getattr(F, name)
    sizes = {1: ([1], [2], [3], [5]), 2: ([1, 1], [2, 2], [3, 3], [2, 1], [5, 7]),
             3: ([1, 1, 1], [2, 2, 2], [2, 1, 3])}[nd]
    args: tuple[Arg, ...] = (Arg("output_size", sizes[0], sizes[1:],
                                 edges=([None] * nd,) if nd > 1 else ()),)
    if kind == "max":
        args = (*args, flag("return_indices"))

        def lower(x: torch.Tensor, output_size: Any, return_indices: bool = False) -> Any:
            return fn(x, output_size, return_indices=return_indices)
        tmpl = f"F.{name}({{x0}}, {{output_size}}, return_indices={{return_indices}})"
    else:
        def lower(x: torch.Tensor, output_size: Any, return_indices: bool = False) -> Any:
            return fn(x, output_size)
        tmpl = f"F.{name}({{x0}}, {{output_size}})"
    lower.__doc__ = f"F.{name}"
    op(f"aten::{name}", "pool", tmpl, ranks=(nd + 1, nd + 2), dtypes=FLOAT, args=args,
       python=PF + name, accepts=lambda m: min(m.shape[-nd:]) >= 1)(lower)


for _nd in (1, 2, 3):
    _max_pool(_nd)
    _avg_pool(_nd)
    _lp_pool(_nd)
    _adaptive(_nd, "avg")
    _adaptive(_nd, "max")

"""`interpolate` in every mode (size vs scale_factor, align_corners, antialias,
recompute_scale_factor) and `pad` in every mode. Each mode is its own ATen op."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fuzzer.ops.spec import ALL, FLOAT, Arg, Meta, flag, op

INTERP = "torch.nn.functional.interpolate"
# mode -> (ATen name, spatial dims, takes align_corners, takes antialias)
MODES: dict[str, tuple[str, int, bool, bool]] = {
    "nearest1d": ("upsample_nearest1d", 1, False, False),
    "nearest2d": ("upsample_nearest2d", 2, False, False),
    "nearest3d": ("upsample_nearest3d", 3, False, False),
    "nearest-exact1d": ("_upsample_nearest_exact1d", 1, False, False),
    "nearest-exact2d": ("_upsample_nearest_exact2d", 2, False, False),
    "nearest-exact3d": ("_upsample_nearest_exact3d", 3, False, False),
    "linear": ("upsample_linear1d", 1, True, False),
    "bilinear": ("upsample_bilinear2d", 2, True, True),
    "bicubic": ("upsample_bicubic2d", 2, True, True),
    "trilinear": ("upsample_trilinear3d", 3, True, False),
}


def _interp_canon(a: dict[str, Any]) -> dict[str, Any]:
    # interpolate takes size or scale_factor, not both: a drawn size wins.
    return {**a, "scale_factor": None} if a.get("size") is not None else a


def _interp(key: str) -> None:
    aten, nd, corners, aa = MODES[key]
    mode = key[:-2] if key[-1] == "d" and key[-2].isdigit() else key
    args: list[Arg] = [
        Arg("size", None, ([5] * nd, [3] * nd, [1] * nd), edges=([16] * nd,),
            doc="output size; when set, scale_factor is ignored"),
        Arg("scale_factor", 2.0, (1.5, 3.0, [2.0] * nd), edges=(0.5, 0.3, 1.0)),
        Arg("recompute_scale_factor", None, (True, False)),
    ]
    tail = ", recompute_scale_factor={recompute_scale_factor}"
    if corners:
        args.append(flag("align_corners"))
        tail += ", align_corners={align_corners}"
    if aa:
        args.append(flag("antialias"))
        tail += ", antialias={antialias}"

    def lower(x: torch.Tensor, **a: Any) -> torch.Tensor:
        a = _interp_canon(a)
        return F.interpolate(x, a["size"], a["scale_factor"], mode=mode,
                             align_corners=a.get("align_corners"),
                             recompute_scale_factor=a["recompute_scale_factor"],
                             antialias=a.get("antialias", False))
    lower.__doc__ = f"F.interpolate(mode={mode!r})"
    dtypes = (*FLOAT, "uint8") if key not in ("trilinear", "linear") else FLOAT
    op(f"aten::{aten}", "resize", f"F.interpolate({{x0}}, size={{size}}, "
       f"scale_factor={{scale_factor}}, mode={mode!r}" + tail + ")", ranks=(nd + 2, nd + 2),
       dtypes=dtypes, args=tuple(args), python=INTERP, overload="vec", canon=_interp_canon,
       constraint=lambda a, m: not (a.get("antialias") and a["size"] is None
                                    and a["scale_factor"] in (0.3,)),
       accepts=lambda m: min(m.shape[2:]) >= 2)(lower)


for _key in MODES:
    _interp(_key)


def _pads(m: list[Meta]) -> list[list[int]]:
    r = m[0].rank
    out = [[0, 2], [1, 1, 1, 1], [2, 0, 0, 1], [1, 2, 0, 1, 2, 0]]
    return [p for p in out if len(p) // 2 <= r - 1 or len(p) == 2]


@op("aten::pad", "resize", "F.pad({x0}, {pad}, mode={mode}, value={value})", ranks=(2, 5),
    dtypes=ALL, args=(Arg("pad", [1, 1], pick=_pads, edges=([-1, 1], [0, 0])),
                      Arg("mode", "constant", ("reflect", "replicate", "circular")),
                      Arg("value", None, (1.5, -2.0, 0.0))),
    canon=lambda a: a if a["mode"] == "constant" else {**a, "value": None},
    constraint=lambda a, m: a["mode"] == "constant" or (
        m[0].dtype in FLOAT and min(a["pad"]) >= 0 and len(a["pad"]) // 2 <= m[0].rank - 1
        and len(a["pad"]) // 2 <= 3),
    accepts=lambda m: min(m.shape[1:]) >= 3, python="torch.nn.functional.pad")
def pad(x: torch.Tensor, pad: list[int], mode: str, value: float | None) -> torch.Tensor:
    return F.pad(x, pad, mode=mode, value=value if mode == "constant" else None)

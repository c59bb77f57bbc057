"""Input value distributions, as a registry. Each draws from the generator it is given (seeded
by the Case seed and the input name), so the same Case always yields the same inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Dist = Callable[[np.random.Generator, tuple[int, ...], dict[str, Any]], np.ndarray]
DISTRIBUTIONS: dict[str, Dist] = {}

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int8": torch.int8, "uint8": torch.uint8,
    "int16": torch.int16, "int32": torch.int32, "int64": torch.int64, "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}


def dist(name: str) -> Callable[[Dist], Dist]:
    def deco(fn: Dist) -> Dist:
        DISTRIBUTIONS[name] = fn
        return fn
    return deco


@dist("normal")
def _normal(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    return rng.normal(float(p.get("mean", 0.0)), float(p.get("scale", 1.0)), size=shape)


@dist("uniform")
def _uniform(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    return rng.uniform(float(p.get("low", -1.0)), float(p.get("high", 1.0)), size=shape)


@dist("positive")
def _positive(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # Strictly positive: keeps log/sqrt/pow inputs in their domain.
    return rng.uniform(float(p.get("low", 0.1)), float(p.get("high", 4.0)), size=shape)


@dist("int")
def _int(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # Optional keys (all off by default): `unique_axis` draws a permutation of low.. along
    # that axis (scatter/index_copy indices must not repeat, or the result is unspecified);
    # `nonzero` maps 0 to 1 (divisors); `extreme` is the share of values pushed to +-2**62,
    # which `draw` clamps to the dtype's min/max.
    low, high = int(p.get("low", -8)), int(p.get("high", 8))
    if "unique_axis" in p and len(shape) > 0:
        ax = int(p["unique_axis"]) % len(shape)
        n = shape[ax]
        moved = (*shape[:ax], *shape[ax + 1:], n)
        keys = rng.random(size=(*moved[:-1], max(n, high - low + 1)))
        perm = np.argsort(keys, axis=-1)[..., :n] + low
        return np.moveaxis(perm, -1, ax)
    out = rng.integers(low, high, size=shape, endpoint=True)
    if p.get("nonzero"):
        out = np.where(out == 0, 1, out)
    share = float(p.get("extreme", 0.0))
    if share > 0:
        big = np.where(rng.random(size=shape) < 0.5, -(2.0**62), 2.0**62)
        out = np.where(rng.random(size=shape) < share, big, out)
    return out


@dist("bool")
def _bool(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    return rng.random(size=shape) < float(p.get("p", 0.5))


@dist("const")
def _const(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    return np.full(shape, float(p.get("value", 0.0)))


@dist("ties")
def _ties(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # Few distinct values: exercises tie-breaking of argmax/topk/sort and equality ops.
    return rng.integers(0, int(p.get("levels", 3)), size=shape).astype(np.float64)


@dist("corners")
def _corners(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # A mixture reaching the corners: zeros, negatives, large magnitudes, saturating values.
    scale = float(p.get("scale", 1.0))
    base = rng.normal(0.0, scale, size=shape)
    pick = rng.integers(0, 6, size=shape)
    large = float(p.get("large", 1e4))
    out = np.where(pick == 0, 0.0, base)
    out = np.where(pick == 1, -np.abs(base) * 10, out)
    out = np.where(pick == 2, large * np.sign(base + 1e-9), out)
    out = np.where(pick == 3, rng.uniform(-1e-3, 1e-3, size=shape), out)
    return out


@dist("nonzero")
def _nonzero(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # Magnitudes in [low, high] with random signs: divisors of either sign, never near 0.
    mag = rng.uniform(float(p.get("low", 0.5)), float(p.get("high", 4.0)), size=shape)
    return np.where(rng.random(size=shape) < 0.5, -mag, mag)


@dist("special")
def _special(rng: np.random.Generator, shape: tuple[int, ...], p: dict[str, Any]) -> np.ndarray:
    # Normal values with a share of NaN, +Inf and -Inf (nan_to_num, isnan, isinf...).
    out = rng.normal(0.0, float(p.get("scale", 1.0)), size=shape)
    pick = rng.random(size=shape)
    share = float(p.get("share", 0.3))
    out = np.where(pick < share / 3, np.nan, out)
    out = np.where((pick >= share / 3) & (pick < 2 * share / 3), np.inf, out)
    return np.where((pick >= 2 * share / 3) & (pick < share), -np.inf, out)


def draw(rng: np.random.Generator, shape: list[int], dtype: str,
         spec: dict[str, Any]) -> torch.Tensor:
    params = {k: v for k, v in spec.items() if k != "dist"}
    arr = DISTRIBUTIONS[spec["dist"]](rng, tuple(shape), params)
    tdt = TORCH_DTYPES[dtype]
    if tdt == torch.bool:
        return torch.from_numpy(np.asarray(arr).astype(bool))
    if not tdt.is_floating_point:
        info = torch.iinfo(tdt)
        # Round, then clamp to the dtype's range: integer extremes are reachable, never UB.
        arr = np.clip(np.rint(np.asarray(arr, dtype=np.float64)), info.min, info.max)
        # np.asarray: numpy hands back a scalar, not an array, for 0-d (rank-0) inputs.
        return torch.from_numpy(np.asarray(arr.astype(np.int64))).to(tdt)
    return torch.from_numpy(np.asarray(arr, dtype=np.float64)).to(tdt)

"""Seeded random streams. There is no global RNG: every draw comes from a generator derived
from a Case seed plus string keys, so deleting one node never changes another node's weights."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive(seed: int, *keys: str) -> int:
    """A stable 63-bit integer from a seed and keys (independent of PYTHONHASHSEED)."""
    h = hashlib.sha256(str(int(seed)).encode())
    for k in keys:
        h.update(b"\0" + k.encode())
    return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)


def np_rng(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng(derive(seed, *keys))


def torch_rng(seed: int, *keys: str) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(derive(seed, *keys))
    return g

"""Mined seeds as the fuzzer reads them: n-gram counts with the architectures they occur in,
observed argument values and tensor shapes per operator (written by fuzzer.mine)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_N = 4  # the longest mined n-gram
FORMAT = 1  # of every seeds JSON file


@dataclass
class Seeds:
    """Mined seeds: `ngrams[n][chain] = (count, archs)`, plus the ops/archs/meta JSON."""

    ngrams: dict[int, dict[tuple[str, ...], tuple[int, list[str]]]]
    ops: dict[str, dict[str, Any]]
    archs: list[dict[str, Any]]
    meta: dict[str, Any]
    _tables: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    def archs_containing(self, chain: Sequence[str]) -> list[str]:
        """Architectures in which `chain` (1..4 operators) occurs along a data-flow path."""
        key = tuple(chain)
        if not 1 <= len(key) <= MAX_N:
            raise ValueError(f"chains of 1..{MAX_N} operators are mined, got {len(key)}")
        return list(self.ngrams.get(len(key), {}).get(key, (0, []))[1])

    def arg_values(self, op: str, arg: str) -> list[tuple[Any, int]]:
        """Observed values of a non-tensor argument, decoded, most frequent first."""
        vals = self.ops.get(op, {}).get("args", {}).get(arg, {})
        return sorted(((json.loads(k), c) for k, c in vals.items()), key=lambda kv: -kv[1])

    def arg_table(self, op: str, arg: str) -> tuple[tuple[str, ...], np.ndarray] | None:
        """`arg_values` as the generator draws from it: the values still JSON-encoded (each
        draw decodes a fresh object) and their cumulative probabilities, normalized as
        numpy's `Generator.choice(n, p=...)` does, so `cdf.searchsorted(rng.random(),
        "right")` is that choice, draw for draw, without its ~5 us of checks; None when
        none was observed. Built once an argument: decoding every observed value at every
        draw was ~40% of drawing a real-arm Case."""
        key = (op, arg)
        if key not in self._tables:
            vals = self.ops.get(op, {}).get("args", {}).get(arg, {})
            rows = sorted(vals.items(), key=lambda kv: -kv[1])
            self._tables[key] = None
            if rows:
                w = np.asarray([c for _, c in rows], dtype=np.float64)
                cdf = (w / w.sum()).cumsum()
                cdf /= cdf[-1]
                self._tables[key] = (tuple(k for k, _ in rows), cdf)
        return self._tables[key]


def load_seeds(path: Path) -> Seeds:
    path = Path(path)
    raw = json.loads((path / "ngrams.json").read_text())
    names = raw["archs"]
    ngrams = {int(n): {tuple(r["ops"]): (r["count"], [names[i] for i in r["archs"]])
                       for r in rows} for n, rows in raw["ngrams"].items()}
    meta_p = path / "meta.json"
    return Seeds(ngrams, json.loads((path / "ops.json").read_text())["ops"],
                 json.loads((path / "archs.json").read_text())["archs"],
                 json.loads(meta_p.read_text()) if meta_p.exists() else {})

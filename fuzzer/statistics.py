"""The statistics the analysis uses: binomial intervals, exact and chi-square tests, the
Benjamini–Hochberg adjustment and a length-stratified Mantel–Haenszel test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (nan when n is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, min(p, c - h)), min(1.0, max(p, c + h)))  # exact at k = 0, n


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval (built from the two Wilson intervals)."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    d = p1 - p2
    return (d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))


def fisher(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Two-sided Fisher's exact test of [[a, b], [c, d]]: (sample odds ratio, p)."""
    res = stats.fisher_exact([[a, b], [c, d]])
    return float(res[0]), float(res[1])


def bh(pvalues: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values)."""
    if not pvalues:
        return []
    return [float(q) for q in stats.false_discovery_control(np.asarray(pvalues), method="bh")]


def chi2_if_fits(table: list[list[int]]) -> dict[str, Any] | None:
    """Pearson chi-square on a contingency table, when Cochran's rule allows it (no expected
    count below 1, at most 20% below 5); None otherwise — use the per-class Fisher tests."""
    t = np.asarray(table, dtype=float)
    t = t[:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2 or (t.sum(axis=1) == 0).any():
        return None
    chi2, p, dof, expected = stats.chi2_contingency(t, correction=False)
    if expected.min() < 1 or (expected < 5).mean() > 0.2:
        return None
    return {"chi2": float(chi2), "dof": int(dof), "p": float(p)}


def mantel_haenszel(tables: Iterable[tuple[int, int, int, int]]) -> dict[str, Any] | None:
    """Cochran–Mantel–Haenszel test over 2x2 strata (a, b, c, d): the arm difference with
    chain length held fixed, since the arms need not draw lengths alike."""
    num = den = s = e = v = 0.0
    used = 0
    for a, b, c, d in tables:
        n = a + b + c + d
        if n < 2 or a + b == 0 or c + d == 0:
            continue
        used += 1
        num += a * d / n
        den += b * c / n
        s += a
        e += (a + b) * (a + c) / n
        v += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    if used == 0 or v == 0:
        return None
    stat = (abs(s - e) - 0.5) ** 2 / v if abs(s - e) > 0.5 else 0.0
    return {"odds_ratio": num / den if den else math.inf, "chi2": stat,
            "p": float(stats.chi2.sf(stat, 1)), "strata": used}

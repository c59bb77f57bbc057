"""Coverage against the mined seeds: which mined n-grams a campaign exercised (architectural
coverage), and which mined operators the catalogue can generate at all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fuzzer import ops


def canonical_chain(chain: Iterable[str]) -> tuple[str, ...]:
    return tuple(ops.canonical(o) for o in chain)


def architectural(exercised: Iterable[tuple[str, ...]],
                  mined: Mapping[int, Mapping[tuple[str, ...], Any]]) -> dict[int, dict[str, Any]]:
    """Per n, how many of the mined n-grams (under catalogue names) the campaign exercised."""
    seen = set(exercised)
    out = {}
    for n, table in sorted(mined.items()):
        chains = {canonical_chain(c) for c in table}
        hit = len(chains & seen)
        out[n] = {"exercised": hit, "mined": len(chains),
                  "share": hit / len(chains) if chains else 0.0}
    return out


def catalogue(mined_ops: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The share of mined operator occurrences the catalogue covers, and what it lacks."""
    total = sum(int(v.get("count", 0)) for v in mined_ops.values())
    missing = sorted(((int(v.get("count", 0)), k) for k, v in mined_ops.items()
                      if ops.canonical(k) not in ops.REGISTRY), reverse=True)
    covered = total - sum(c for c, _ in missing)
    return {"occurrences": total, "covered": covered,
            "share": covered / total if total else 0.0,
            "operators": len(mined_ops), "missing": [{"op": k, "count": c} for c, k in missing]}

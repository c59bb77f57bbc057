"""Coverage against the mined seeds: which mined n-grams a campaign exercised (architectural
coverage), and which mined operators the catalogue can generate at all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fuzzer import ops
from fuzzer.generate import default_seeds
from fuzzer.seeds import load_seeds


def canonical_chain(chain: Iterable[str]) -> tuple[str, ...]:
    return tuple(ops.canonical(o) for o in chain)


class Architectural:
    """Architectural coverage kept up to date Case by Case: the mined n-grams (under catalogue
    names) a campaign has exercised, per n. Adding is O(n-grams of the Case): a campaign adds
    every Case, hundreds a second."""

    def __init__(self, mined: Mapping[int, Mapping[tuple[str, ...], Any]]) -> None:
        self.chains = {n: {canonical_chain(c) for c in table} for n, table in sorted(mined.items())}
        self.hit: dict[int, set[tuple[str, ...]]] = {n: set() for n in self.chains}
        self.seen: set[tuple[str, ...]] = set()

    @classmethod
    def load(cls, seeds: str) -> Architectural | None:
        """From a seeds directory ("" = the repo's); None when it holds no mined n-grams."""
        path = Path(seeds) if seeds else default_seeds()
        if not (path / "ngrams.json").is_file():
            return None
        return cls(load_seeds(path).ngrams)

    def add(self, exercised: Iterable[tuple[str, ...]]) -> None:
        for g in exercised:
            if g not in self.seen:
                self.seen.add(g)
                if g in self.chains.get(len(g), ()):
                    self.hit[len(g)].add(g)

    def report(self) -> dict[int, dict[str, Any]]:
        return {n: {"exercised": len(self.hit[n]), "mined": len(chains),
                    "share": len(self.hit[n]) / len(chains) if chains else 0.0}
                for n, chains in self.chains.items()}


def architectural(exercised: Iterable[tuple[str, ...]],
                  mined: Mapping[int, Mapping[tuple[str, ...], Any]]) -> dict[int, dict[str, Any]]:
    """Per n, how many of the mined n-grams (under catalogue names) the campaign exercised."""
    cov = Architectural(mined)
    cov.add(exercised)
    return cov.report()


def catalogue(mined_ops: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The share of mined operator occurrences the catalogue covers, and what it lacks."""
    total = sum(int(v.get("count", 0)) for v in mined_ops.values())
    missing = sorted(((int(v.get("count", 0)), k) for k, v in mined_ops.items()
                      if ops.canonical(k) not in ops.REGISTRY), reverse=True)
    covered = total - sum(c for c, _ in missing)
    return {"occurrences": total, "covered": covered,
            "share": covered / total if total else 0.0,
            "operators": len(mined_ops), "missing": [{"op": k, "count": c} for c, k in missing]}

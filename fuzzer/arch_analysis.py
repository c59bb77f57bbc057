"""The architecture-level analysis of `convfuzz analyze`: whole mined architectures converted
by `convfuzz models` (the stores' `arch_verdicts`), beside the synthetic Cases.

Two things: per target, how many architectures converted correctly, computed wrong values,
gave an invalid model, crashed or were refused (with a Wilson CI on the failing share, the
figure the paper's ~8% is about); and the sequence hypothesis at architecture level, as the
paper tested it: do failing architectures share operator sequences that passing ones lack?
An architecture's sequences are its mined n-grams (`seeds/ngrams.json`, 1..3 operators along
data flow); an architecture *fails* when it fails on some target and *passes* when every
target converted it correctly (refused or unbuilt ones are neither). Fisher's exact test per
n-gram with Benjamini–Hochberg, the same `enrichment` as the Case-level analysis.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import arch_rows
from fuzzer.statistics import wilson
from fuzzer.store import Store

MAX_N = 3  # as the Case-level enrichment
# The summary classes (fuzzer.models.CLASSES) and the failing ones; repeated here so that
# reading a store never imports torch.
CLASSES = ("correct", "wrong_values", "invalid_model", "crash", "unsupported", "build_failed",
           "harness_error")
FAILING = ("wrong_values", "invalid_model", "crash")


@dataclass
class ArchTarget:
    target: str
    counts: dict[str, int]
    built: int
    failing: int
    lo: float  # Wilson 95% CI of failing / built
    hi: float

    @property
    def share(self) -> float:
        return self.failing / self.built if self.built else float("nan")


@dataclass
class ArchAnalysis:
    targets: list[ArchTarget]
    failing: list[str]  # architectures failing on some target
    passing: list[str]  # converted correctly by every target
    enrich: list[Any] = field(default_factory=list)  # analyze.Enriched, failing vs passing
    failures: list[dict[str, str]] = field(default_factory=list)  # arch, target, class, detail


def rows(stores: list[Path]) -> list[arch_rows.ArchRow]:
    """Every architecture verdict of the stores (a store without the table has none); the
    last store wins for an (architecture, target) recorded twice."""
    out: dict[tuple[str, str], arch_rows.ArchRow] = {}
    for p in stores:
        st = Store(p, readonly=True)
        try:
            for r in arch_rows.rows(st):
                out[r.arch, r.target] = r
        except sqlite3.OperationalError:  # a store from before `convfuzz models`
            pass
        finally:
            st.close()
    return [out[k] for k in sorted(out)]


def arch_ngrams(seeds: Any, max_n: int = MAX_N) -> dict[str, set[tuple[str, ...]]]:
    """Each mined architecture's n-grams (1..max_n), inverted from the seeds."""
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for n in range(1, max_n + 1):
        for chain, (_, archs) in seeds.ngrams.get(n, {}).items():
            for a in archs:
                out[a].add(chain)
    return out


def compute(stores: list[Path]) -> ArchAnalysis | None:
    """The per-target table and which architectures fail or pass; None when no store holds
    architecture verdicts (`analyze` adds the enrichment: `sequence_sets`)."""
    rs = rows(stores)
    if not rs:
        return None
    by_t: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CLASSES, 0))
    per_arch: dict[str, set[str]] = defaultdict(set)
    failures = []
    for r in rs:
        by_t[r.target][r.cls] = by_t[r.target].get(r.cls, 0) + 1
        per_arch[r.arch].add(r.cls)
        if r.cls in FAILING:
            failures.append({"arch": r.arch, "target": r.target, "class": r.cls,
                             "key": r.verdict.key, "detail": r.verdict.detail[:160]})
    targets = []
    for t, c in sorted(by_t.items()):
        built = sum(n for k, n in c.items() if k not in ("build_failed", "harness_error"))
        failing = sum(c.get(k, 0) for k in FAILING)
        targets.append(ArchTarget(t, c, built, failing, *wilson(failing, built)))
    failing_a = sorted(a for a, cs in per_arch.items() if cs & set(FAILING))
    passing_a = sorted(a for a, cs in per_arch.items() if cs == {"correct"})
    return ArchAnalysis(targets, failing_a, passing_a, failures=failures)


def sequence_sets(a: ArchAnalysis, seeds: Any) -> tuple[list[set[tuple[str, ...]]],
                                                         list[set[tuple[str, ...]]]]:
    """The n-gram sets of the failing and of the passing architectures."""
    grams = arch_ngrams(seeds)
    return ([grams.get(x, set()) for x in a.failing], [grams.get(x, set()) for x in a.passing])

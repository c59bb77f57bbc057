"""Opset sweeps: the same Case through an exporter at every opset, one verdict per opset,
and a summary naming which opsets share each failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fuzzer.case import Case
from fuzzer.targets import PATTERNS, Opsets
from fuzzer.verdict import Outcome, Verdict, normalize_error


def sweepable() -> dict[str, Opsets]:
    """The exporters that carry an opset sweep, by the name `--exporter` takes."""
    return {p.opsets.exporter: p.opsets for p in PATTERNS if p.opsets is not None}


def sweep_targets(exporters: Iterable[str], runtime: str,
                  opsets: Iterable[int] | None = None) -> list[str]:
    """Each exporter at each of its opsets (or the chosen ones), ending in `runtime`."""
    names: list[str] = []
    chosen = list(opsets) if opsets is not None else None
    known = sweepable()
    for ex in exporters:
        if ex not in known:
            raise ValueError(f"unknown exporter {ex!r} ({' or '.join(known)})")
        levels = chosen if chosen else known[ex].levels
        names += [f"{known[ex].name(o)}/{runtime}" for o in levels]
    return names


def opset_of(target: str) -> str:
    head = target.split("/")[0]
    tail = head.rsplit("-", 1)[-1]
    return tail if tail.isdigit() else "native"


@dataclass
class Group:
    exporter: str
    key: str  # outcome or stage/symptom
    error: str  # normalized
    opsets: list[str]
    example: Verdict


def sweep(case: Case, names: list[str], run: Callable[[Case, str], Verdict]) -> list[Verdict]:
    return [run(case, t) for t in names]


def summarize(verdicts: list[Verdict]) -> list[Group]:
    """Group verdicts by exporter, outcome/stage/symptom and normalized error."""
    groups: dict[tuple[str, str, str], Group] = {}
    for v in verdicts:
        exporter = v.target.split("/")[0].split("-")[0]
        err = normalize_error(v.shown_error) if v.outcome != Outcome.PASS else ""
        k = (exporter, v.key, err)
        g = groups.setdefault(k, Group(exporter, v.key, err, [], v))
        g.opsets.append(opset_of(v.target))
    return list(groups.values())

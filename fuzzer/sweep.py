"""Opset sweeps: the same Case through an exporter at every opset, one verdict per opset,
and a summary naming which opsets share each failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fuzzer.case import Case
from fuzzer.verdict import Outcome, Verdict, normalize_error

TORCHSCRIPT_OPSETS = tuple(range(11, 21))
DYNAMO_OPSETS = (None, 17, 16, 15, 14, 13)  # None: its native opset (18); lower are converted


def sweep_targets(exporters: Iterable[str], runtime: str,
                  opsets: Iterable[int] | None = None) -> list[str]:
    names: list[str] = []
    chosen = list(opsets) if opsets is not None else None
    for ex in exporters:
        if ex == "torchscript":
            names += [f"torchscript-{o}/{runtime}" for o in (chosen or TORCHSCRIPT_OPSETS)]
        elif ex == "dynamo":
            levels = chosen if chosen is not None else DYNAMO_OPSETS
            names += [f"dynamo{'' if o in (None, 18) else f'-{o}'}/{runtime}" for o in levels]
        else:
            raise ValueError(f"unknown exporter {ex!r} (torchscript or dynamo)")
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
        err = normalize_error(v.error) if v.outcome != Outcome.PASS else ""
        k = (exporter, v.key, err)
        g = groups.setdefault(k, Group(exporter, v.key, err, [], v))
        g.opsets.append(opset_of(v.target))
    return list(groups.values())

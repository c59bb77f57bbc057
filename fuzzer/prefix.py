"""Prefix sharing: a Case's targets form a tree by their chain prefixes — `dynamo/ort-all`,
`dynamo/ort-disabled` and `dynamo/onnxsim/ort-disabled` all start with the `dynamo` export,
the last one with `dynamo` then `onnxsim`. Each prefix step (an export, a pass, the model
check after the last of them) runs once for the Case or pack, and every chain below it starts
from the artifact it left; a step that fails fails every chain below it with the same
StageFailure, without running again. Each chain still gets its own verdict from the oracle,
so attribution, blame (over the artifact's history) and the shrinker (one chain at a time)
work per chain as before.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fuzzer.targets import Artifact, StageFailure, Target, parse

Key = tuple[tuple[str, ...], str]  # the component names of a prefix, and "" or "validation"


def _keys(target: Target) -> list[Key]:
    names = tuple(c.name for c in target.components)
    out: list[Key] = [(names[:i + 1], "") for i in range(len(names) - 1)]
    if len(names) > 1 and target.components[-2].kind in ("exporter", "pass"):
        out.append((names[:-1], "validation"))
    return out


@dataclass
class _Done:
    """What a prefix step left: the artifact's graph state, or the failure it raised."""

    model: bytes | None
    history: list[tuple[str, str, bytes]]
    notes: dict[str, Any]
    failure: StageFailure | None
    seconds: float
    users: int  # chains of the tree below this step: each is charged its share of the time


class Prefixes:
    """The prefix steps of one Case (or one pack) over a tree of targets. The oracle's
    run_chain asks it to run each step that is not the chain's runtime; `ran` counts the
    steps that really ran (the rest were reused)."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.users: Counter[Key] = Counter(k for t in targets for k in _keys(parse(t)))
        self.done: dict[Key, _Done] = {}
        self.ran: Counter[Key] = Counter()

    def step(self, target: Target, i: int, what: str, art: Artifact,
             timings: dict[str, float], kind: str, fn: Callable[[Artifact], None]) -> None:
        key = (tuple(c.name for c in target.components[:i + 1]), what)
        d = self.done.get(key)
        if d is None:
            t0 = time.perf_counter()
            failure = None
            try:
                fn(art)
            except StageFailure as f:
                failure = f
            # A copy: the first chain goes on appending to its history and notes.
            d = self.done[key] = _Done(art.model, list(art.history), copy.deepcopy(art.notes),
                                       failure, time.perf_counter() - t0,
                                       max(1, self.users[key]))
            self.ran[key] += 1
        else:
            art.model, art.history = d.model, list(d.history)
            art.notes = copy.deepcopy(d.notes)
        # Each chain below pays its share: the verdicts' timings still add up to the time
        # the worker spent.
        timings[kind] = timings.get(kind, 0.0) + d.seconds / d.users
        if d.failure is not None:
            raise d.failure

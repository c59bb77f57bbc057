"""The shrinker: a failing Case -> the smallest Case that still fails the same way.

Hypothesis-style: small named passes in one list (`PASSES`), run until none makes progress,
under one total order of "simpler" (`complexity`). Every evaluation goes through one `Runner`
memoized by Case hash; a `Budget` (seconds, calls) stops the search and keeps the best Case so
far. Node ids are never renamed: weights are drawn per (Case seed, node id, param name), so an
edit elsewhere leaves the surviving nodes' weights unchanged.

`ddmin` is picire's delta debugging, format-agnostic: it reduces a list under an injected
predicate. `delete_nodes` hands it node ids and a predicate that rebuilds the Case without the
others, rewiring their consumers to an input of the same shape and dtype.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fuzzer import ops
from fuzzer.case import Case, CaseError, Const, Input, validate
from fuzzer.edit import (
    canonical,
    default_values,
    drop_attr,
    edit_inputs,
    keep_nodes,
    map_inputs,
    prune,
    rename_reads,
    with_origin,
    with_outputs,
)
from fuzzer.edit import (
    input_with as replace_input,
)
from fuzzer.model import infer as model_infer
from fuzzer.ops.spec import Meta
from fuzzer.verdict import (
    Outcome,
    Verdict,
    failure_key,
)

T = TypeVar("T")


# -- ddmin (picire): a list, an injected predicate, an injected stop ----------------------
def _split(items: list[T], n: int) -> list[list[T]]:
    k, r = divmod(len(items), n)
    out, i = [], 0
    for j in range(n):
        size = k + (1 if j < r else 0)
        out.append(items[i:i + size])
        i += size
    return [c for c in out if c]


def ddmin(items: Sequence[T], test: Callable[[list[T]], bool],
          stop: Callable[[], bool] = lambda: False) -> list[T]:
    """A 1-minimal sublist for which `test` holds (it must hold for `items`). Subsets first,
    then complements (skipped at n=2, where they are the subsets); never tests the empty
    list. `stop()` ends the search early with the smallest list found so far."""
    current = list(items)
    n = 2
    while len(current) >= 2 and not stop():
        chunks = _split(current, n)
        reduced = False
        for c in chunks:
            if stop():
                return current
            if test(c):
                current, n, reduced = c, 2, True
                break
        if not reduced and len(chunks) > 2:
            for i in range(len(chunks)):
                if stop():
                    return current
                comp = [x for j, ch in enumerate(chunks) if j != i for x in ch]
                if test(comp):
                    current, n, reduced = comp, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(2 * n, len(current))
    return current


# -- "simpler": one total order ---------------------------------------------------------------
DTYPE_ORDER = ("float32", "int64", "bool", "float64", "int32", "float16", "int8", "uint8",
               "int16", "bfloat16")
SIMPLE_DISTS = ("normal", "int", "bool")


def _values_cost(x: Input) -> int:
    if x.values == default_values(x.dtype):
        return 0
    return 1 if x.values.get("dist") in SIMPLE_DISTS else 2


def nondefault_attrs(case: Case) -> int:
    n = 0
    for node in case.nodes:
        defaults = ops.get(node.op).defaults()
        n += sum(1 for k, v in node.attrs.items()
                 if k not in defaults or not ops.same_value(defaults[k], v))
    return n


def complexity(case: Case) -> tuple[Any, ...]:
    """Smaller is simpler: nodes, then inputs (count, rank, size), then arguments away from
    their defaults, then dtypes, value distributions, dynamic dims, outputs; the canonical
    JSON (shorter, then lexicographic) breaks ties so the order is total."""
    numel = 0
    for x in case.inputs:
        k = 1
        for s in x.shape:
            k *= s
        numel += k
    return (len(case.nodes), len(case.inputs) + len(case.consts),
            sum(len(x.shape) for x in case.inputs), numel,
            nondefault_attrs(case), sum(DTYPE_ORDER.index(x.dtype) for x in case.inputs),
            sum(_values_cost(x) for x in case.inputs), sum(len(x.dynamic) for x in case.inputs),
            len(case.outputs), len(case.to_json(indent=None)), case.to_json(indent=None))


# -- "the same failure" -----------------------------------------------------------------------
def same_failure(v: Verdict, want: Verdict) -> bool:
    return v.outcome == Outcome.BUG and failure_key(v) == failure_key(want)


# -- runner and budget --------------------------------------------------------------------
@dataclass
class Budget:
    seconds: float = 60.0
    calls: int = 300


class Runner:
    """The one place a Case is evaluated: memoized by Case hash, counted, budgeted."""

    def __init__(self, run: Callable[[Case], Verdict], budget: Budget | None = None) -> None:
        self._run = run
        self.budget = budget or Budget()
        self.cache: dict[str, Verdict] = {}
        self.calls = 0
        self.hits = 0
        self.started = time.perf_counter()

    def exhausted(self) -> bool:
        return (self.calls >= self.budget.calls
                or time.perf_counter() - self.started >= self.budget.seconds)

    def __call__(self, case: Case) -> Verdict:
        h = case.hash
        if h in self.cache:
            self.hits += 1
            return self.cache[h]
        self.calls += 1
        v = self._run(case)
        self.cache[h] = v
        return v


# -- Case surgery -------------------------------------------------------------------------
def infer(case: Case) -> dict[str, list[Meta]] | None:
    """Metas of every value, or None when the Case's shapes do not fit together."""
    try:
        return model_infer(case)
    except Exception:
        return None


# -- the shrinker -------------------------------------------------------------------------
@dataclass
class ShrinkResult:
    original: Case
    case: Case
    verdict: Verdict
    calls: int
    hits: int
    seconds: float
    exhausted: bool
    progress: dict[str, int] = field(default_factory=dict)  # accepted edits per pass

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "cache_hits": self.hits, "seconds": round(self.seconds, 2),
                "budget_exhausted": self.exhausted, "progress": self.progress,
                "nodes": [len(self.original.nodes), len(self.case.nodes)]}


class Shrinker:
    def __init__(self, case: Case, verdict: Verdict, runner: Runner) -> None:
        self.want = verdict
        self.runner = runner
        self.best = case
        self.best_key = complexity(case)
        self.best_verdict = verdict
        self.progress: dict[str, int] = {}
        self.current_pass = ""

    def consider(self, cand: Case | None) -> bool:
        """Does `cand` fail the same way? If so and it is simpler, it becomes the best."""
        if cand is None or self.runner.exhausted():
            return False
        try:
            validate(cand)
        except CaseError:
            return False
        if infer(cand) is None:
            return False  # shapes do not fit: no need to ask the target
        key = complexity(cand)
        if key >= self.best_key and cand.hash != self.best.hash:
            return False  # the order is total: never loop, never grow
        v = self.runner(cand)
        if not same_failure(v, self.want):
            return False
        if key < self.best_key:
            self.best, self.best_key, self.best_verdict = cand, key, v
            self.progress[self.current_pass] = self.progress.get(self.current_pass, 0) + 1
        return True

    def run(self, passes: Sequence[Callable[[Shrinker], None]]) -> None:
        canon = canonical(self.best)
        if complexity(canon) < self.best_key:  # same behaviour by construction: no run
            self.runner.cache[canon.hash] = self.best_verdict
            self.best, self.best_key = canon, complexity(canon)
        while not self.runner.exhausted():
            before = self.best_key
            for p in passes:
                if self.runner.exhausted():
                    break
                self.current_pass = p.__name__
                p(self)
            if self.best_key == before:
                break


def delete_nodes(s: Shrinker) -> None:
    base = s.best
    metas = infer(base)
    if metas is None or len(base.nodes) < 2:
        return
    ids = [n.id for n in base.nodes]
    ddmin(ids, lambda keep: s.consider(keep_nodes(base, set(keep), metas)),
          s.runner.exhausted)


def drop_outputs(s: Shrinker) -> None:
    for o in list(s.best.outputs):
        if len(s.best.outputs) < 2:
            return
        s.consider(prune(with_outputs(s.best, [x for x in s.best.outputs if x != o])))


def reset_attrs(s: Shrinker) -> None:
    """One keyword argument back to its default at a time."""
    for node_id, key in [(n.id, k) for n in s.best.nodes for k in n.attrs]:
        try:
            node = s.best.node(node_id)
        except KeyError:
            continue
        if key in node.attrs:
            s.consider(drop_attr(s.best, node_id, key))


def _shape_edits(shape: list[int]) -> Iterator[tuple[list[int], int | None]]:
    """(new shape, the dim dropped or None)."""
    for d in range(len(shape)):  # lower rank first: it comes first in the order
        yield shape[:d] + shape[d + 1:], d
    for d, size in enumerate(shape):
        for smaller in dict.fromkeys((1, size // 2, size - 1)):
            if 0 < smaller < size:
                yield [*shape[:d], smaller, *shape[d + 1:]], None


def shrink_shapes(s: Shrinker) -> None:
    """Per input, drop a dim or make one smaller; inputs of the same shape move together
    first (binary operators need their operands to agree)."""
    for name in [x.name for x in s.best.inputs]:
        for _ in range(16):  # each success restarts this input's edits on the new shape
            try:
                shape = next(x.shape for x in s.best.inputs if x.name == name)
            except StopIteration:
                break
            if not any(_try_shape(s, name, shape, new, dropped)
                       for new, dropped in _shape_edits(shape)):
                break


def _try_shape(s: Shrinker, name: str, old: list[int], new: list[int],
               dropped: int | None) -> bool:
    def moved(x: Input, together: bool) -> Input:
        if not (x.name == name or (together and x.shape == old)):
            return x
        dynamic = x.dynamic if dropped is None else \
            [d - (d > dropped) for d in x.dynamic if d != dropped]
        return replace_input(x, shape=list(new), dynamic=dynamic)

    def param(k: Const) -> Const:  # parameters shaped like the input's last dims follow it
        r = len(k.shape)
        if k.values is None or dropped is not None or not 0 < r <= len(old) or \
                k.shape != old[-r:]:
            return k
        return dataclasses.replace(k, shape=list(new[-r:]))

    for together in (True, False):
        c = map_inputs(s.best, lambda x, t=together: moved(x, t))
        if together and c.consts:
            c = dataclasses.replace(c, consts=[param(k) for k in c.consts])
        if s.consider(c):
            return True
    return False


def simplify_dtypes(s: Shrinker) -> None:
    for name in [x.name for x in s.best.inputs]:
        x0 = next((x for x in s.best.inputs if x.name == name), None)
        if x0 is None:
            continue
        for dt in DTYPE_ORDER[:DTYPE_ORDER.index(x0.dtype)]:
            if s.consider(edit_inputs(s.best, [name], dtype=dt, values=default_values(dt))):
                break


def simplify_values(s: Shrinker) -> None:
    for name in [x.name for x in s.best.inputs]:
        x0 = next((x for x in s.best.inputs if x.name == name), None)
        if x0 is None or x0.values == default_values(x0.dtype):
            continue
        s.consider(edit_inputs(s.best, [name], values=default_values(x0.dtype)))


def merge_inputs(s: Shrinker) -> None:
    """Read one input where two of the same shape and dtype were read (fewer inputs)."""
    for i, a in enumerate(list(s.best.inputs)):
        for b in list(s.best.inputs)[i + 1:]:
            if (a.shape, a.dtype) != (b.shape, b.dtype):
                continue
            s.consider(prune(rename_reads(s.best, b.name, a.name)))


def static_shapes(s: Shrinker) -> None:
    if not any(x.dynamic for x in s.best.inputs):
        return
    s.consider(edit_inputs(s.best, [x.name for x in s.best.inputs], dynamic=[]))


PASSES: list[Callable[[Shrinker], None]] = [
    delete_nodes, drop_outputs, merge_inputs, reset_attrs, shrink_shapes, simplify_dtypes,
    simplify_values, static_shapes,
]


def shrink(case: Case, verdict: Verdict, run: Callable[[Case], Verdict],
           budget: Budget | None = None,
           passes: Sequence[Callable[[Shrinker], None]] = PASSES) -> ShrinkResult:
    """Shrink `case`, which failed with `verdict`, using `run` (Case -> Verdict on the same
    target). The result fails the same way: target family, stage, symptom, error class."""
    if verdict.outcome != Outcome.BUG:
        raise ValueError(f"only failing Cases shrink, this one is {verdict.outcome.value}")
    runner = Runner(run, budget)
    runner.cache[case.hash] = verdict
    s = Shrinker(case, verdict, runner)
    s.run(passes)
    out = with_origin(s.best, {**case.origin, "sampler": "shrink", "parent": case.hash,
                               "ngram": case.origin.get("ngram")})
    return ShrinkResult(case, out, s.best_verdict, runner.calls, runner.hits,
                        time.perf_counter() - runner.started, runner.exhausted(), s.progress)

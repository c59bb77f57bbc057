"""Blame: name the single graph-optimization step that changes a failing chain's behaviour.

A chain's graph-producing steps (export, the exporter's optimizer, each ONNX pass) leave their
models in order in `Artifact.history`. When the final model fails and the raw export does
not, bisection over that list finds the first step whose model fails; a rewriter that applies
many named rules in one step is then asked to run again with halves of the rules that fired
switched off, until one rule is named. When ONNX Runtime's own graph optimizations are on and
the model passes with them off, the lowest failing level is named, then the graph transformer
whose removal (`disabled_optimizers`) makes it pass. Like picire's ddmin, this knows nothing
about ONNX: a predicate is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

ORT_LEVELS = ("disabled", "basic", "extended", "all")

# Which project owns a step, for the report's tracker.
PROJECTS: dict[tuple[str, str], str] = {("dynamo", "optimize"): "onnxscript (torch.onnx "
                                                                "optimizer)"}
Without = Callable[[bytes, frozenset[str]], bytes]


def bisect(n: int, fails: Callable[[int], bool]) -> int:
    """Smallest i in 1..n-1 with fails(i), given that 0 passes and n-1 fails: O(log n) calls.
    Assumes a step that breaks the model is not undone by a later one; where that is false
    the answer is still a step whose output fails right after one whose output passes."""
    lo, hi = 0, n - 1  # invariant: lo passes, hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails(mid):
            hi = mid
        else:
            lo = mid
    return hi


def culprit(names: Sequence[str], passes_without: Callable[[frozenset[str]], bool],
            ) -> list[str] | None:
    """The names whose removal makes a failure pass, by halving: one name when one suffices,
    the smallest half found when the failure needs several off at once (an interaction), None
    when even all of them off still fails. O(log n) calls."""
    cands = list(dict.fromkeys(names))
    if not cands or not passes_without(frozenset(cands)):
        return None
    while len(cands) > 1:
        half = len(cands) // 2
        a, b = cands[:half], cands[half:]
        if passes_without(frozenset(a)):
            cands = a
        elif passes_without(frozenset(b)):
            cands = b
        else:
            break
    return cands


def project_of(component: str, step: str, family: str) -> str:
    base = component.split("-")[0]
    return PROJECTS.get((base, step), family)


def _level(runtime: str) -> str:
    """`ort-all-without-X` -> `all`."""
    return runtime.split("-")[1] if runtime.count("-") else ""


def blame(history: list[tuple[str, str, bytes]], runtime: str,
          fails: Callable[[bytes, str], bool], families: dict[str, str],
          withouts: dict[str, Without] | None = None,
          switches: dict[str, list[str]] | None = None,
          transformers: Sequence[str] = (),
          judgeable: Callable[[bytes], bool] | None = None) -> dict[str, Any] | None:
    """`fails(model, runtime)` says whether that model misbehaves on that runtime.
    `withouts[c]` re-runs component c with names off; `switches[c]` are the names that
    fired in c; `transformers` the ONNX Runtime transformer names to halve, likeliest first.
    `judgeable(model)` False: no runtime can run that intermediate model (a rewriter's
    placeholder ops); bisection skips it, as `git bisect skip` does, and says so."""
    if len(history) >= 2 and not fails(history[0][2], runtime):
        last = len(history) - 1
        idx = [k for k in range(len(history))
               if k in (0, last) or judgeable is None or judgeable(history[k][2])]
        j = bisect(len(idx), lambda m: fails(history[idx[m]][2], runtime))
        i, before = idx[j], idx[j - 1]
        comp, step, _ = history[i]
        out = {"component": comp, "step": step, "after": f"{history[before][0]}:"
               f"{history[before][1]}", "project": project_of(comp, step, families[comp]),
               "calls": "bisection over " + str(len(idx)) + " models"}
        if i - before > 1:  # the culprit may be a skipped step as well
            out["unjudged"] = [f"{c}:{s}" for c, s, _ in history[before + 1:i]]
        names = (switches or {}).get(comp, [])
        without = (withouts or {}).get(comp)
        if without is not None and names and step not in names:
            before = history[i - 1][2]  # the step's own input: a one-step rewriter's
            rule = culprit(names, lambda off: not fails(without(before, off), runtime))
            if rule:
                out["rule"] = ",".join(rule)
                out["step"] = f"{step}: {out['rule']}"
                out["calls"] += f", then halving over {len(names)} rules that fired"
        return out
    if runtime.startswith("ort-") and _level(runtime) in ORT_LEVELS[1:] and history:
        final = history[-1][2]
        if fails(final, "ort-disabled"):
            return None
        current = ORT_LEVELS.index(_level(runtime))
        for level in ORT_LEVELS[1:current + 1]:
            if level == ORT_LEVELS[current] or fails(final, f"ort-{level}"):
                out = {"component": runtime, "step": f"graph optimization level {level}",
                       "after": "ort-disabled passes", "project": "onnxruntime"}
                named = culprit(transformers, lambda off, lv=level: not fails(
                    final, f"ort-{lv}-without-{','.join(sorted(off))}"))
                if named:
                    out["rule"] = ",".join(named)
                    out["step"] = f"graph transformer {out['rule']} (level {level})"
                return out
    return None

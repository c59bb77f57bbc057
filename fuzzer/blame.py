"""Blame: name the single graph-optimization step that changes a failing chain's behaviour.

A chain's graph-producing steps (export, the exporter's optimizer, each ONNX pass) leave their
models in order in `Artifact.history`. When the final model fails and the raw export does
not, bisection over that list finds the first step whose model fails; when ONNX Runtime's own
graph optimizations are on and the model passes with them off, the lowest failing level is
named instead. Like picire's ddmin, this knows nothing about ONNX: a predicate is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ORT_LEVELS = ("disabled", "basic", "extended", "all")

# Which project owns a step, for the report's tracker.
PROJECTS: dict[tuple[str, str], str] = {("dynamo", "optimize"): "onnxscript (torch.onnx "
                                                                "optimizer)"}


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


def project_of(component: str, step: str, family: str) -> str:
    base = component.split("-")[0]
    return PROJECTS.get((base, step), family)


def blame(history: list[tuple[str, str, bytes]], runtime: str,
          fails: Callable[[bytes, str], bool],
          families: dict[str, str]) -> dict[str, Any] | None:
    """`fails(model, runtime)` says whether that model misbehaves on that runtime."""
    if len(history) >= 2 and not fails(history[0][2], runtime):
        i = bisect(len(history), lambda k: fails(history[k][2], runtime))
        comp, step, _ = history[i]
        return {"component": comp, "step": step, "after": f"{history[i - 1][0]}:"
                f"{history[i - 1][1]}", "project": project_of(comp, step, families[comp]),
                "calls": "bisection over " + str(len(history)) + " models"}
    if runtime.startswith("ort-") and runtime != "ort-disabled" and history:
        final = history[-1][2]
        if fails(final, "ort-disabled"):
            return None
        current = ORT_LEVELS.index(runtime.removeprefix("ort-"))
        for level in ORT_LEVELS[1:current + 1]:
            if level == ORT_LEVELS[current] or fails(final, f"ort-{level}"):
                return {"component": runtime, "step": f"graph optimization level {level}",
                        "after": "ort-disabled passes", "project": "onnxruntime"}
    return None

"""Blame: a planted wrong pass is named by the bisection over the passes' steps."""

from __future__ import annotations

import pytest

from fuzzer.blame import bisect, blame
from fuzzer.sandbox import Sandbox
from fuzzer.verdict import Attribution, Outcome, Stage
from tests.conftest import make_case


@pytest.mark.integration
def test_planted_pass_is_blamed_by_name(sandbox: Sandbox) -> None:
    case = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::mul", "args": ["n0", "y"]}],
                     inputs=[{"name": "x", "shape": [3, 4]}, {"name": "y", "shape": [3, 4]}])
    v = sandbox.run(case, "torchscript-17/onnxoptimizer/fault-rewrite-Relu-Abs/ort-all")
    assert v.outcome == Outcome.BUG
    assert (v.stage, v.attribution) == (Stage.GRAPH_OPTIMIZATION, Attribution.OPTIMIZER)
    assert v.evidence["blame"]["component"] == "fault-rewrite-Relu-Abs"
    assert v.evidence["blame"]["step"] == "rewrite-Relu-Abs"
    clean = sandbox.run(case, "torchscript-17/onnxoptimizer/ort-all")
    assert clean.outcome == Outcome.PASS, clean.detail


@pytest.mark.parametrize("first_bad", [1, 2, 7, 19])
def test_bisect_finds_the_first_failing_step(first_bad: int) -> None:
    calls: list[int] = []

    def fails(i: int) -> bool:
        calls.append(i)
        return i >= first_bad

    assert bisect(20, fails) == first_bad
    assert len(calls) <= 5


def test_bisection_skips_models_no_runtime_can_run() -> None:
    """A step that leaves placeholder ops (onnxscript's sdpa before mha2) is not judged: the
    first runnable failing step is named and the skipped one listed, never the placeholder's
    step for failing to load."""
    steps = ["export", "pre", "sdpa", "mha2", "optimize"]
    models = {"export": b"ok", "pre": b"ok", "sdpa": b"placeholder", "mha2": b"bad",
              "optimize": b"bad"}
    history = [("p", s, models[s]) for s in steps]
    judged: list[bytes] = []

    def fails(model: bytes, runtime: str) -> bool:
        judged.append(model)
        return model != b"ok"  # the placeholder model would fail to load

    out = blame(history, "ort-disabled", fails, {"p": "proj"},
                judgeable=lambda m: m != b"placeholder")
    assert out is not None and out["step"] == "mha2" and out["after"] == "p:pre"
    assert out["unjudged"] == ["p:sdpa"] and b"placeholder" not in judged
    # Without the predicate the placeholder's step takes the blame.
    assert blame(history, "ort-disabled", fails, {"p": "proj"})["step"] == "sdpa"

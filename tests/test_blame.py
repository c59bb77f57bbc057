"""Blame: a planted wrong pass is named by the bisection over the passes' steps."""

from __future__ import annotations

import pytest

from fuzzer.blame import bisect
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

"""Dynamic shapes: a model exported with a dynamic batch dim must also be right at other
sizes of it, and torch eager at those sizes is announced as eager (not the runtime)."""

from __future__ import annotations

import pytest

from fuzzer.sandbox import Sandbox
from fuzzer.verdict import Outcome, Symptom
from tests.conftest import make_case

pytestmark = pytest.mark.integration

DYNAMIC = make_case(
    [{"id": "n0", "op": "aten::conv2d", "args": ["x"], "attrs": {"out_channels": 4}},
     {"id": "n1", "op": "aten::gelu", "args": ["n0"]},
     {"id": "n2", "op": "aten::flatten", "args": ["n1"], "attrs": {"start_dim": 1}}],
    inputs=[{"name": "x", "shape": [2, 3, 8, 8], "dynamic": [0]}])


@pytest.mark.parametrize("target", ["torchscript-17/ort-all", "dynamo/ort-all"])
def test_dynamic_batch_runs_at_more_shapes(sandbox: Sandbox, target: str) -> None:
    v = sandbox.run(DYNAMIC, target)
    assert v.outcome == Outcome.PASS, v.detail
    assert v.evidence["shapes_checked"] == 2  # traced batch 2, then 3 and 5


def test_torch_eager_at_other_shapes_is_announced_as_eager() -> None:
    """A worker lost while eager runs a dynamic Case at another size must make the Case
    invalid (the sandbox reads the announced stage), not blame the runtime."""
    from fuzzer import oracle

    stages: list[str] = []
    v = oracle.judge(DYNAMIC, "torchscript-17/ort-all", on_stage=stages.append)
    assert v.outcome == Outcome.PASS, v.detail
    assert stages == ["node_conversion", "validation", "runtime_run",
                      "eager", "runtime_run", "eager", "runtime_run"]
    assert v.evidence["timings"]["runtime"] > 0


def test_model_right_only_at_trace_shape_is_caught(sandbox: Sandbox) -> None:
    v = sandbox.run(DYNAMIC, "fault-constant/ort-all")
    assert v.outcome == Outcome.BUG
    assert v.symptom == Symptom.WRONG_SHAPE
    assert v.shapes == ((3, 3, 8, 8),)
    assert v.shown_detail == f"at input shape(s) [[3, 3, 8, 8]]: {v.detail}"
    static = make_case(DYNAMIC.to_dict()["nodes"], inputs=[{"name": "x", "shape": [2, 3, 8, 8]}])
    assert sandbox.run(static, "fault-constant/ort-all").outcome == Outcome.PASS

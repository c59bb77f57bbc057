"""The widened converter surface: dynamic shapes, opset sweeps, graph passes with blame."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.blame import bisect
from fuzzer.sandbox import Sandbox
from fuzzer.sweep import opset_of, summarize, sweep, sweep_targets
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom
from tests.conftest import make_case

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
    assert "at input shape(s) [[3, 3, 8, 8]]" in v.detail
    static = make_case(DYNAMIC.to_dict()["nodes"], inputs=[{"name": "x", "shape": [2, 3, 8, 8]}])
    assert sandbox.run(static, "fault-constant/ort-all").outcome == Outcome.PASS


def test_opset_sweep_gives_one_verdict_per_opset(sandbox: Sandbox) -> None:
    case = make_case([{"id": "n0", "op": "aten::hardswish", "args": ["x"]}],
                     inputs=[{"name": "x", "shape": [2, 5]}])
    names = sweep_targets(["torchscript"], "ort-all") + sweep_targets(["dynamo"], "ort-all",
                                                                       [18, 15])
    verdicts = sweep(case, names, sandbox.run)
    assert [opset_of(v.target) for v in verdicts] == [*map(str, range(11, 21)), "native", "15"]
    assert all(v.outcome in Outcome for v in verdicts)
    # HardSwish entered ONNX at opset 14: the TorchScript exporter decomposes it below that.
    groups = summarize(verdicts)
    assert sum(len(g.opsets) for g in groups) == len(verdicts)


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


def test_target_weights_choose_a_share_of_cases(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "store"
    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "fuzz", "--cases", "24", "--source",
                        "random", "--no-shrink", "-t", "torchscript-17/ort-all@0.3", "-t",
                        "torchscript-17/ort-disabled", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "targets", "--store", str(out),
                        "--json"], capture_output=True, text=True, timeout=120)
    ran = {row["target"]: row["ran"] for row in json.loads(r.stdout)}
    assert ran["torchscript-17/ort-disabled"] == 24
    assert 1 <= ran["torchscript-17/ort-all"] <= 16  # ~30% of 24
    bad = subprocess.run([sys.executable, "-m", "fuzzer.cli", "fuzz", "--cases", "1", "-t",
                          "torchscript-17/ort-all@2"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "must be in (0, 1]" in bad.stderr

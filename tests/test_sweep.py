"""Opset sweeps: the same Case through an exporter at every opset, one verdict per opset."""

from __future__ import annotations

import pytest

from fuzzer.sandbox import Sandbox
from fuzzer.sweep import opset_of, summarize, sweep, sweep_targets
from fuzzer.verdict import Outcome
from tests.conftest import make_case


@pytest.mark.integration
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

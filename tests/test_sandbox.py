"""Isolation: fault-injection exporters that abort, hang or allocate without bound become
verdicts, and the sandbox carries on with a fresh worker."""

from __future__ import annotations

import pytest

from fuzzer.sandbox import Limits, Sandbox
from fuzzer.verdict import Outcome, Stage, Symptom
from tests.conftest import make_case

CASE = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]}],
                 inputs=[{"name": "x", "shape": [2, 8]}])


@pytest.fixture(scope="module")
def tight() -> Sandbox:
    with Sandbox(Limits(timeout=4, memory_mb=512)) as sb:
        yield sb


@pytest.mark.parametrize(("target", "symptom"), [
    ("fault-abort", Symptom.PROCESS_DEATH),
    ("fault-hang", Symptom.HANG),
    ("fault-oom", Symptom.OUT_OF_MEMORY),
])
def test_fault_becomes_a_verdict_and_the_sandbox_carries_on(tight: Sandbox, target: str,
                                                            symptom: Symptom) -> None:
    v = tight.run(CASE, target)
    assert v.outcome == Outcome.BUG
    assert v.symptom == symptom
    assert v.stage == Stage.NODE_CONVERSION  # the worker announced the exporter stage
    after = tight.run(CASE, "torchscript-17/ort-all")
    assert after.outcome == Outcome.PASS, after.detail


def test_abort_reports_the_signal(tight: Sandbox) -> None:
    v = tight.run(CASE, "fault-abort")
    assert "SIGABRT" in v.detail


def test_hang_is_cut_at_the_timeout(tight: Sandbox) -> None:
    v = tight.run(CASE, "fault-hang")
    assert 3.5 <= v.seconds < 15


def test_worker_is_recycled_after_its_quota() -> None:
    with Sandbox(Limits(timeout=60, recycle=2)) as sb:
        pids = []
        for _ in range(3):
            assert sb.run(CASE, "torchscript-17/ort-all").outcome == Outcome.PASS
            pids.append(sb._proc.pid)
        assert pids[0] == pids[1] != pids[2]

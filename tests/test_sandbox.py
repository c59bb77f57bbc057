"""Isolation: fault-injection exporters that abort, hang or allocate without bound become
verdicts, and the sandbox carries on with a fresh worker."""

from __future__ import annotations

from typing import Any

import pytest

from fuzzer.protocol import CasesMade, Done, VerdictOf
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


def _job(targets: list[str], index: int = 3) -> dict:
    from fuzzer.campaign import case_seed
    from fuzzer.generate import GenConfig
    from fuzzer.job import job

    return job([(index, case_seed(5, index), targets)], "random", None, GenConfig(),
               Limits()).plain()


def test_job_generates_in_the_worker_and_a_death_costs_one_target(tight: Sandbox) -> None:
    from fuzzer.job import case_for

    j = _job(["fault-abort/ort-all", "torchscript-17/ort-all"])
    [(case_json, verdicts, _)] = tight.run_job(j)
    assert case_json == case_for(j).to_json(indent=None)  # the worker made the same Case
    assert [v.target for v in verdicts] == ["fault-abort/ort-all", "torchscript-17/ort-all"]
    assert verdicts[0].symptom == Symptom.PROCESS_DEATH
    assert verdicts[1].outcome != Outcome.HARNESS and verdicts[1].symptom != \
        Symptom.PROCESS_DEATH  # judged on a fresh worker


def test_worker_is_replaced_once_its_memory_grew_past_the_cap() -> None:
    # A negative cap: any worker counts as grown after its first answer.
    with Sandbox(Limits(timeout=60, recycle_mb=-100)) as sb:
        pids = []
        for _ in range(2):
            assert sb.run(CASE, "torchscript-17/ort-all").outcome == Outcome.PASS
            pids.append(sb._proc.pid)
        assert pids[0] != pids[1]


def test_a_member_the_generator_fails_on_is_skipped_not_fatal(tight: Sandbox) -> None:
    j = _job(["torchscript-17/ort-all"])
    j["sampler"] = "no-such-sampler"  # every member fails to generate, in the worker
    [(case_json, verdicts, error)] = tight.run_job(j)
    assert (case_json, verdicts) == ("", []) and "no-such-sampler" in error
    [(case_json, verdicts, error)] = tight.run_job(_job(["torchscript-17/ort-all"]))
    assert case_json and error == "" and verdicts[0].outcome != Outcome.HARNESS


def _job_in_process(seed: int, n: int, watch: Any = None) -> list[tuple]:
    """Run one job of n random-arm members on TorchScript through a Worker in this process
    (real exporter and ONNX Runtime); returns what it sent. `watch(worker, msg)` sees each
    message as it is sent."""
    import multiprocessing as mp
    import os
    import tempfile

    from fuzzer.campaign import case_seed
    from fuzzer.generate import GenConfig
    from fuzzer.job import job
    from fuzzer.worker import Worker

    sent: list[tuple] = []

    class Conn:
        def send(self, msg: tuple) -> None:
            sent.append(msg)
            if watch:
                watch(w, msg)

    fd, path = tempfile.mkstemp(prefix="convfuzz-test-worker-")
    try:
        w = Worker(Conn(), fd, mp.RawArray("i", [-1, -1]))  # type: ignore[arg-type]
        members = [(i, case_seed(seed, i), ("torchscript-17/ort-all",)) for i in range(n)]
        w.job(job(members, "random", None, GenConfig(), Limits()).plain())
    finally:
        os.close(fd)
        os.unlink(path)
    return sent


def test_a_job_builds_every_members_reference_before_its_first_export() -> None:
    """Eager references are built in one phase, not between exports (caches stay warm:
    a reference cost ~2.5x more built between two exports)."""
    refs_at_first_verdict: list[int] = []

    def watch(w: Any, msg: tuple) -> None:
        if isinstance(msg, VerdictOf) and not refs_at_first_verdict:
            refs_at_first_verdict.append(len(w.refs))

    sent = _job_in_process(5, 4, watch)
    made = [c for c in sent[0].jsons if c]
    assert len(made) >= 3 and refs_at_first_verdict == [len(made)]
    assert [type(m) for m in sent].count(VerdictOf) == len(made)
    assert isinstance(sent[-1], Done)


# 400 products of 1024x1024 matrices: tens of seconds of torch eager on one thread (the
# worker's shape inference runs them too, on zeros: also torch eager).
SLOW_EAGER = make_case(
    [{"id": "n0", "op": "aten::mm", "args": ["x", "w"]}]
    + [{"id": f"n{k}", "op": "aten::mm", "args": [f"n{k - 1}", "w"]} for k in range(1, 400)],
    inputs=[{"name": "x", "shape": [1024, 1024]}, {"name": "w", "shape": [1024, 1024]}])


def test_a_case_that_hangs_torch_eager_is_invalid_not_a_finding() -> None:
    with Sandbox(Limits(timeout=1.5)) as sb:
        v = sb.run(SLOW_EAGER, "torchscript-17/ort-all")
        assert (v.outcome, v.stage, v.symptom) == (Outcome.INVALID, Stage.EAGER, Symptom.HANG)
        assert v.detail.startswith("torch eager: ") and sb.deaths == 1
        assert sb.run(CASE, "torchscript-17/ort-all").outcome == Outcome.PASS  # carries on


def test_a_job_member_lost_in_torch_eager_is_invalid_on_all_its_targets() -> None:
    """Its other targets are not run again: each would die or hang the same way."""
    import time

    from fuzzer.sandbox import _Loss

    with Sandbox(Limits(timeout=5)) as sb:
        sb._start()
        got: dict = {}
        steps = [(("torchscript-17/ort-all", "torchscript-17/ref"), (0, 1), 1)]
        sb._blame(_Loss(Symptom.PROCESS_DEATH, "", time.perf_counter(), Stage.EAGER, 1),
                  steps, got)
        assert sorted(got) == [(1, "torchscript-17/ort-all"), (1, "torchscript-17/ref")]
        assert {(v.target, v.outcome, v.stage) for v in got.values()} == {
            ("torchscript-17/ort-all", Outcome.INVALID, Stage.EAGER),
            ("torchscript-17/ref", Outcome.INVALID, Stage.EAGER)}
        assert sb.deaths == 1 and sb._proc is None  # one loss, the worker replaced


def test_a_job_judges_each_member_as_judging_it_alone_does() -> None:
    """The worker's phases (generation, then every reference, then the exports) change
    nothing a verdict says."""
    from fuzzer import oracle
    from fuzzer.case import Case

    sent = _job_in_process(9, 8)
    jsons = sent[0].jsons
    kinds = [type(m) for m in sent]
    assert kinds == [CasesMade] + [VerdictOf] * len([c for c in jsons if c]) + [Done]
    verdicts = [m for m in sent if isinstance(m, VerdictOf)]
    for k, target, v in verdicts:
        alone = oracle.judge(Case.from_json(jsons[k]), target)
        assert (v["outcome"], v["stage"], v["symptom"]) == (
            alone.outcome.value, alone.stage.value if alone.stage else None,
            alone.symptom.value if alone.symptom else None), k
    assert {v["outcome"] for *_, v in verdicts} >= {"pass"}


def test_a_worker_that_cannot_start_leaves_a_sandbox_that_closes(tmp_path: Any) -> None:
    """A script without a __main__ guard cannot start a forkserver child: the user sees that
    error alone, not an AttributeError from closing the half-started sandbox after it."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import json\nfrom fuzzer.case import Case\nfrom fuzzer.sandbox import Sandbox\n"
        "case = Case.from_dict({'schema': 1, 'seed': 1, 'inputs': [{'name': 'x', 'shape': [2]}],"
        " 'nodes': [{'id': 'n0', 'op': 'aten::relu', 'args': ['x']}], 'outputs': ['n0']})\n"
        "with Sandbox() as sb:\n"
        "    print('verdict', sb.run(case, 'torchscript-17/ort-all').outcome)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert "bootstrapping phase" in r.stderr  # multiprocessing's own advice is what shows
    assert "AttributeError" not in r.stderr, r.stderr[-2000:]


def test_a_killed_worker_leaves_no_named_semaphore_behind() -> None:
    # A dynamo export makes tqdm build its lock; on the old code that was a named
    # semaphore in /dev/shm which a SIGKILLed worker never released.
    import glob
    import os
    import signal

    before = set(glob.glob("/dev/shm/sem.mp-*"))
    with Sandbox(Limits(timeout=120)) as sb:
        assert sb.run(CASE, "dynamo/ort-all").outcome == Outcome.PASS
        os.kill(sb._proc.pid, signal.SIGKILL)
        sb._proc.join()
    assert set(glob.glob("/dev/shm/sem.mp-*")) - before == set()

"""Long-running campaigns: resume after SIGKILL loses nothing recorded, a real local Dask
cluster runs a campaign, and fault targets that abort or hang do not stop one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

EXE = [sys.executable, "-m", "fuzzer.cli"]
SOFTPLUS = ["--op", "aten::softplus", "--nondefault", "1.0"]  # fails often (threshold ignored)


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def wait_for(db: Path, counts: dict[str, int], what: str) -> None:
    """Poll a running campaign's store until every query counts at least its minimum (one
    deadline of 4 minutes for all of them)."""
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            if db.exists() and all(rows(db, sql)[0][0] >= n for sql, n in counts.items()):
                return
        except sqlite3.OperationalError:  # the campaign has not made its tables yet
            continue
    pytest.fail(f"the campaign recorded no {what} in time")


# Failures recorded that no finding links (the store's own query is Store.unfiled).
UNFILED = ("SELECT COUNT(*) FROM verdicts v WHERE outcome = 'bug' AND NOT EXISTS "
           "(SELECT 1 FROM finding_cases f WHERE f.case_hash = v.case_hash AND "
           "f.target = v.target)")


def test_sigkill_then_resume_loses_no_recorded_finding(tmp_path: Path) -> None:
    out = tmp_path / "store"
    p = subprocess.Popen([*EXE, "fuzz", "--time", "300", "--seed", "4", "--source", "random",
                          "-t", "torchscript-17/ort-all", *SOFTPLUS, "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    db = out / "store.sqlite"
    try:
        wait_for(db, {"SELECT COUNT(*) FROM findings": 1, "SELECT COUNT(*) FROM cases": 8},
                 "finding")
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the driver and its workers, no goodbye
        p.wait()
    before_f = {r[0] for r in rows(db, "SELECT id FROM findings")}
    before_c = rows(db, "SELECT COUNT(*), MAX(seq) FROM cases")[0]
    r = subprocess.run([*EXE, "fuzz", "--resume", str(out), "--cases", "5", "--time", "120"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    after_f = {r[0] for r in rows(db, "SELECT id FROM findings")}
    n, top = rows(db, "SELECT COUNT(*), MAX(seq) FROM cases")[0]
    assert before_f <= after_f
    assert n == before_c[0] + 5 and top == before_c[1] + 5  # the stream went on, not over
    counts = rows(db, "SELECT seq, COUNT(*) FROM cases GROUP BY seq HAVING COUNT(*) > 1")
    assert counts == []
    # Every failure recorded before the kill is filed under a finding by the resume, also
    # those whose shrink the kill interrupted.
    assert rows(db, UNFILED) == [(0,)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_cluster(cwd: Path, nthreads: tuple[int, ...]) -> Iterator[str]:
    """A real Dask scheduler on 127.0.0.1 and one worker per entry of `nthreads` (its
    thread count), killed with their process groups at the end."""
    bindir = Path(sys.executable).parent
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        time.sleep(3)
        for n in nthreads:  # --no-nanny: the worker may start our sandbox processes
            procs.append(subprocess.Popen([str(bindir / "dask"), "worker", addr, "--no-nanny",
                                           "--nthreads", str(n), "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True, cwd=cwd))
        from distributed import Client

        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(len(nthreads), timeout=60)
        yield addr
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    with local_cluster(tmp_path, (1, 1)) as addr:
        yield addr


def test_campaign_on_a_local_dask_cluster_files_findings(dask_cluster: str,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "store"
    r = subprocess.run([*EXE, "fuzz", "--scheduler", dask_cluster, "--cases", "8", "--time",
                        "240", "--seed", "2", "--source", "random", "-t",
                        "torchscript-17/ort-all", *SOFTPLUS, "--out", str(out)],
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr
    db = out / "store.sqlite"
    assert rows(db, "SELECT COUNT(*) FROM cases")[0][0] == 8
    findings = rows(db, "SELECT shrink FROM findings")
    assert findings
    # Shrinks run on the cluster as well: each filed finding names the worker that shrank it.
    workers = {json.loads(s)["worker"] for (s,) in findings}
    assert all(w.startswith("tcp://127.0.0.1:") and w != dask_cluster for w in workers)


def test_a_dask_worker_with_several_threads_runs_jobs_side_by_side(tmp_path: Path) -> None:
    # Two jobs at once in one Dask worker process: each thread needs a sandbox of its own
    # (sharing one crashed the campaign: "RuntimeError: concurrent poll() invocation").
    out = tmp_path / "store"
    with local_cluster(tmp_path, (2,)) as addr:
        r = subprocess.run([*EXE, "fuzz", "--scheduler", addr, "--cases", "48", "--time",
                            "240", "--seed", "3", "--source", "random", "-t",
                            "torchscript-17/ort-all", "--no-shrink", "--out", str(out)],
                           capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    db = out / "store.sqlite"
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM cases")[0] == (48, 48)
    assert rows(db, "SELECT COUNT(*) FROM verdicts")[0][0] == 48
    assert rows(db, "SELECT COUNT(*) FROM verdicts WHERE outcome = 'harness'")[0][0] == 0


def test_a_dask_worker_killed_mid_campaign_costs_no_case(dask_cluster: str,
                                                          tmp_path: Path) -> None:
    # SIGKILL of one of the two workers (its sandboxes with it): the scheduler gives its jobs
    # to the other, and the campaign still records every Case of its budget, once.
    from distributed import Client

    out = tmp_path / "store"
    p = subprocess.Popen([*EXE, "fuzz", "--scheduler", dask_cluster, "--cases", "160",
                          "--time", "300", "--seed", "5", "--source", "random", "-t",
                          "torchscript-17/ort-all", "--no-shrink", "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = out / "store.sqlite"
    try:
        wait_for(db, {"SELECT COUNT(*) FROM cases": 16}, "Case")
        with Client(dask_cluster, timeout="30s") as c:
            pid = next(iter(c.run(os.getpid).values()))
        os.killpg(pid, signal.SIGKILL)  # each worker leads its own process group
        _, err = p.communicate(timeout=400)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT seq), MAX(seq) FROM cases")[0] == (
        160, 160, 159)
    with Client(dask_cluster, timeout="30s") as c:
        assert len(c.scheduler_info()["workers"]) == 1  # the other one is gone for good


def test_unreachable_scheduler_is_a_one_line_error() -> None:
    r = subprocess.run([*EXE, "fuzz", "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                        "--source", "random", "--cases", "1"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "cannot reach the Dask scheduler" in r.stderr
    assert "Traceback" not in r.stderr


def test_aborting_and_hanging_targets_do_not_stop_a_campaign(tmp_path: Path) -> None:
    out = tmp_path / "store"
    r = subprocess.run([*EXE, "fuzz", "--cases", "3", "--time", "200", "--source", "random",
                        "-t", "fault-abort", "-t", "fault-hang", "-t", "torchscript-17/ort-all",
                        "--timeout", "3", "--no-shrink", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    db = out / "store.sqlite"
    got = dict(rows(db, "SELECT target, GROUP_CONCAT(DISTINCT symptom) FROM verdicts "
                        "GROUP BY target"))
    assert got["fault-abort/ort-all"] == "process_death"
    assert got["fault-hang/ort-all"] == "hang"
    assert rows(db, "SELECT COUNT(*) FROM verdicts WHERE target='torchscript-17/ort-all'"
                )[0][0] == 3


def test_failures_left_at_the_end_of_the_budget_are_shrunk_several_at_once(
        tmp_path: Path) -> None:
    """While Cases are generated one failure is shrunk at a time; once the budget is spent the
    campaign's workers are closed and the queue is shrunk workers + 1 at a time (a 120 s
    default campaign had spent 130 s more on one serial queue), the display kept alive."""
    from fuzzer.campaign import CampaignConfig, Progress, ShrinkConfig, run_campaign
    from fuzzer.store import Store

    ticks: list[tuple[int, int, int]] = []

    def listen(prog: Progress, case: object, verdicts: list) -> None:
        if case is None:  # a refresh in the shrink tail
            assert prog.generated is not None
            ticks.append((prog.shrinks_left, prog.shrinks_running, prog.shrinks_parallel))

    store = Store(tmp_path / "store")
    try:
        # The random arm: 64 Cases in ~2 s hold about 8 distinct failures.
        prog = run_campaign(CampaignConfig(
            seed=5, seconds=None, cases=64, targets=["torchscript-17/ort-all"], workers=1,
            coverage=False, shrink=ShrinkConfig(seconds=30, calls=40)), store, listen)
        assert prog.cases == 64 and prog.generated is not None
        assert ticks, "no refresh while the last failures were shrunk"
        assert max(running for _, running, _ in ticks) == 2
        assert all(parallel == 2 for _, _, parallel in ticks)
        assert prog.shrinks_left == 0  # every queued failure was filed before the return
        assert prog.findings == len(store.findings()) >= 2
    finally:
        store.close()


def test_failures_recorded_but_never_shrunk_are_filed_when_the_store_is_reopened(
        tmp_path: Path) -> None:
    """A campaign stopped while failures waited for their shrink (killed, Ctrl-C, or one that
    only recorded) left verdicts no finding holds; the next campaign on the store files them
    before anything else, and each only once."""
    from fuzzer.campaign import CampaignConfig, ShrinkConfig, run_campaign
    from fuzzer.store import Store

    store = Store(tmp_path / "store")
    try:
        cfg = CampaignConfig(seed=5, seconds=None, cases=64, targets=["torchscript-17/ort-all"],
                             coverage=False, shrink=None)  # records verdicts, files nothing
        run_campaign(cfg, store)
        left = store.unfiled()
        assert len(left) >= 2 and not store.findings()
        again = CampaignConfig(seed=5, seconds=None, cases=0, targets=cfg.targets,
                               coverage=False, shrink=ShrinkConfig(seconds=30, calls=40))
        prog = run_campaign(again, store)
        assert prog.refiled == len(left) and prog.cases == 0
        assert store.unfiled() == []
        linked = {(h, t) for f in store.findings() for h, t, _ in store.linked(f.id)}
        assert {(c.hash, v.target) for c, v in left} <= linked
        assert prog.findings == len(store.findings())
        assert run_campaign(again, store).refiled == 0  # nothing is filed twice
    finally:
        store.close()


def test_a_failure_queued_behind_the_shrink_of_its_bug_is_matched_not_shrunk(
        tmp_path: Path) -> None:
    """Every relu -> sigmoid Case fails the planted bug the same way. They queue behind the
    first one's shrink (also when the tail shrinks two at a time); once that finding is filed,
    the rest are matched to it, none shrunk again."""
    from fuzzer.campaign import CampaignConfig, ShrinkConfig, run_campaign
    from fuzzer.store import Store

    store = Store(tmp_path / "store")
    try:
        prog = run_campaign(CampaignConfig(
            seed=3, seconds=None, cases=24, targets=["fault-pair-relu-sigmoid/ort-all"],
            sampler="random", vocab=["aten::relu", "aten::sigmoid"], coverage=False,
            shrink=ShrinkConfig(seconds=30, calls=40)), store)
        (planted,) = [f for f in store.findings() if "planted bug" in f.detail]
        hows = [how for _, _, how in store.linked(planted.id)]
        assert hows.count("shrunk") == 1 and hows.count("matched") >= 3, hows
        assert prog.findings == len(store.findings())
    finally:
        store.close()


def test_ctrl_c_stops_with_a_summary_and_resume_files_what_was_left(tmp_path: Path) -> None:
    """SIGINT to the campaign's process group (what a terminal's Ctrl-C sends): a clean stop
    with the summary and a hint; whatever failure had not been shrunk is filed by --resume."""
    out = tmp_path / "store"
    p = subprocess.Popen([*EXE, "fuzz", "--time", "300", "--seed", "4", "--source", "random",
                          "-t", "torchscript-17/ort-all", *SOFTPLUS, "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    db = out / "store.sqlite"
    try:
        wait_for(db, {"SELECT COUNT(*) FROM verdicts WHERE outcome='bug'": 3}, "failure")
        os.killpg(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, stderr
    assert "interrupted" in stdout and "--resume" in stdout and "store:" in stdout
    assert "Traceback" not in stderr
    r = subprocess.run([*EXE, "fuzz", "--resume", str(out), "--cases", "1", "--time", "120"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert rows(db, UNFILED) == [(0,)]


def test_a_shrink_that_breaks_files_its_failure_unshrunk(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A shrink can end in an exception (a Dask worker lost for good, a harness bug): the
    failure is filed as it was found, with the error in its shrink summary, and the campaign
    goes on. The fault is injected into the shrink step itself."""
    import fuzzer.executors
    from fuzzer.campaign import CampaignConfig, ShrinkConfig, run_campaign
    from fuzzer.store import Store

    def broken(*args: object) -> None:
        raise RuntimeError("worker lost: planted")

    monkeypatch.setattr(fuzzer.executors, "shrink_in", broken)
    store = Store(tmp_path / "store")
    try:
        prog = run_campaign(CampaignConfig(
            seed=3, seconds=None, cases=8, targets=["fault-pair-relu-sigmoid/ort-all"],
            sampler="random", vocab=["aten::relu", "aten::sigmoid"], coverage=False,
            shrink=ShrinkConfig(seconds=30, calls=40)), store)
        assert prog.cases == 8
        findings = store.findings()
        assert findings and store.unfiled() == []
        for f in findings:
            assert f.shrink == {"error": "RuntimeError: worker lost: planted"}
            assert f.case_hash == f.original_hash  # filed as found
            assert "unshrunk" in [how for _, _, how in store.linked(f.id)]
    finally:
        store.close()


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

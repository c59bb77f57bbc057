"""The worker process: what runs inside a sandbox (fuzzer/sandbox.py is the driver's side).

Requests arrive on a pipe as tuples: ("run", case_json, target) judges one Case;
("job", job) generates the job's Cases here (their shape inference is then reused when they
are materialized) and judges each on its targets, exporting several Cases as one packed model
where the job says so (fuzzer/pack.py). Answers: ("cases", [json or None], {k: error}) —
a member the generator fails on is skipped, not fatal —, ("verdict", k, target, verdict
dict), ("alive",) before each packed export, and ("done",). Where the worker is (stage,
member) lives in shared memory, so a death is attributed without a message per stage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from fuzzer.case import Case
from fuzzer.job import case_for, schedule
from fuzzer.verdict import Outcome, Stage, Symptom, Verdict, first_line

STAGES = list(Stage)  # a stage crosses to the driver as its index
EAGER = STAGES.index(Stage.EAGER)
# The member slot of the shared location: a member index while one Case is judged alone,
# PACKED during a packed export (the culprit is unknown), GENERATING before the Cases exist.
PACKED, GENERATING = -1, -2


class Worker:
    def __init__(self, conn: Connection, log_fd: int, where: Any) -> None:
        self.conn = conn
        self.log_fd = log_fd
        self.where = where  # shared [stage index or -1, member slot]
        self.refs: dict[str, Any] = {}  # Case hash -> torch reference (None: eager fails)
        # Seconds spent on a Case before any target (generating it, its torch reference),
        # reported once, in the timings of its first verdict.
        self.costs: dict[str, dict[str, float]] = {}
        self.risk: Any = None  # what packs learned of which Cases fail (fuzzer.pack.Risk)
        self.failed: set[int] = set()  # members of the current job that failed a target

    def at(self, member: int) -> None:
        self.where[1] = member
        self.where[0] = -1

    def on_stage(self, s: str) -> None:
        self.where[0] = STAGES.index(Stage(s))

    # A Case's hash (its key in refs and costs) is computed once, where the Case is made, and
    # passed along: canonical JSON + sha256 per call was ~2% of a TorchScript worker's time.
    def reference(self, case: Case, h: str) -> Any:
        from fuzzer import oracle

        if h not in self.refs:
            t0 = time.perf_counter()
            self.where[0] = EAGER  # a death here is torch eager's: the Case is invalid
            try:
                self.refs[h] = oracle.reference(case)
            except oracle.Invalid:
                self.refs[h] = None  # judge() computes it again and says why
            finally:
                self.where[0] = -1
            self.costs.setdefault(h, {})["reference"] = time.perf_counter() - t0
        return self.refs[h]

    def charged(self, h: str, v: Verdict) -> Verdict:
        costs = self.costs.pop(h, None)
        if costs:
            v.evidence.setdefault("timings", {}).update(costs)
        return v

    def judge(self, case: Case, h: str, target: str) -> Verdict:
        from fuzzer import oracle

        os.ftruncate(self.log_fd, 0)  # the log tail a lost verdict carries is this run's
        os.lseek(self.log_fd, 0, os.SEEK_SET)
        self.where[0] = -1
        try:
            return self.charged(h, oracle.judge(case, target, self.reference(case, h),
                                                on_stage=self.on_stage))
        except MemoryError as e:
            return Verdict(target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target: say so, keep serving
            import traceback

            return Verdict(target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                           f"{type(e).__name__}: {first_line(str(e))}",
                           error=traceback.format_exc())

    def send_verdict(self, k: int, target: str, v: Verdict) -> None:
        if v.outcome != Outcome.PASS:
            self.failed.add(k)
        self.conn.send(("verdict", k, target, v.to_dict()))

    def run(self, case_json: str, target: str) -> None:
        case = Case.from_json(case_json)
        h = case.hash
        if h not in self.refs:
            self.refs.clear()  # one Case's reference, kept for its next target
        self.at(0)
        self.send_verdict(0, target, self.judge(case, h, target))

    def job(self, job: dict[str, Any]) -> None:
        self.refs.clear()
        cases: list[Case | None] = []
        hashes: list[str] = []
        errors: dict[int, str] = {}  # members the generator could not draw: skipped
        self.at(GENERATING)
        self.costs.clear()
        for k in range(len(job["members"])):
            t0 = time.perf_counter()
            try:
                case = case_for(job, k)
            except Exception as e:
                errors[k] = f"{type(e).__name__}: {first_line(str(e))}"
                cases.append(None)
                hashes.append("")
                continue
            cases.append(case)
            hashes.append(case.hash)
            self.costs[hashes[-1]] = {"generate": time.perf_counter() - t0}
        self.conn.send(("cases", [c.to_json(indent=None) if c else None for c in cases], errors))
        # Every member's eager reference before the first export: built between two exports
        # (cold caches) a reference cost ~2.5x as much. A crash here is still member k's.
        for k, (c, h) in enumerate(zip(cases, hashes, strict=True)):
            if c is not None:
                self.at(k)
                self.reference(c, h)
        self.failed = set()
        for target, ks in schedule(job, errors):
            if len(ks) == 1:
                self.at(ks[0])
                k = ks[0]
                self.send_verdict(k, target, self.judge(cases[k], hashes[k], target))  # type: ignore[arg-type]
            else:
                self.pack(target, [cases[k] for k in ks], [hashes[k] for k in ks], ks)  # type: ignore[misc]
        self.conn.send(("done",))

    def pack(self, target: str, cases: list[Case], hashes: list[str],
             ks: tuple[int, ...]) -> None:
        from fuzzer.pack import Risk, judge_pack

        self.risk = self.risk or Risk()

        def alone(j: int) -> Verdict:
            self.at(ks[j])
            return self.judge(cases[j], hashes[j], target)

        def alive() -> None:
            self.at(PACKED)
            self.conn.send(("alive",))

        try:
            refs = [self.reference(c, h) for c, h in zip(cases, hashes, strict=True)]
            verdicts = judge_pack(cases, target, refs, alone,
                                  alive, self.on_stage, self.risk,
                                  [j for j, k in enumerate(ks) if k in self.failed])
        except MemoryError:  # the packed model was too big: let each member speak alone
            verdicts = {j: alone(j) for j in range(len(cases))}
        for j, v in sorted(verdicts.items()):
            self.send_verdict(ks[j], target, self.charged(hashes[j], v))


def thread_lock_for_tqdm() -> None:
    """torch.fx's Interpreter builds a (disabled) tqdm bar in every dynamo export, and tqdm's
    first bar makes a multiprocessing RLock: a named semaphore, registered with the driver's
    resource tracker. A worker that is killed (crash, hang, recycle) never releases it, so
    each such death left a /dev/shm file and a "leaked semaphore" warning at exit. One
    process, one thread of bars: a thread lock is all tqdm needs here."""
    with contextlib.suppress(ImportError):
        import threading

        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())


def serve(conn: Connection, memory_mb: int, log_path: str, where: Any) -> None:
    """The worker's main loop (the sandbox's Process target)."""
    import torch

    from fuzzer.ops.spec import eager_shapes

    torch.set_num_threads(1)
    eager_shapes(True)  # this process is the sandbox: CPU kernels may run here
    logging.disable(logging.WARNING)  # nobody reads a worker's log records; exporters log a lot
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    thread_lock_for_tqdm()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)  # exporter chatter and native crash messages land here, not on the TTY
    with open("/proc/self/statm") as f:
        vsz = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    # Address-space cap: a runaway allocation fails fast with MemoryError in the worker
    # instead of swapping the machine; RSS polling in the parent is the backstop.
    limit = vsz + (memory_mb + 2048) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    worker = Worker(conn, fd, where)
    handlers = {"run": worker.run, "job": worker.job}
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if req is None:
            with contextlib.suppress(OSError):
                os.close(fd)
            return
        handlers[req[0]](*req[1:])

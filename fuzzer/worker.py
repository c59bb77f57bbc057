"""The worker process: what runs inside a sandbox (fuzzer/sandbox.py is the driver's side).

Requests arrive on a pipe as fuzzer.protocol messages: RunCase judges one Case; RunJob
generates the job's Cases here (their shape inference is then reused when they are
materialized) and judges each on its targets, exporting several Cases as one packed model
where the job says so (fuzzer/pack.py). Answers: CasesMade (JSON or None per member, and the
generator's errors — a member the generator fails on is skipped, not fatal), VerdictOf per
member and target, Alive before each packed export, and Done. Where the worker is (stage,
member) lives in shared memory, so a death is attributed without a message per stage.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import resource
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from fuzzer.case import Case
from fuzzer.job import case_for, schedule
from fuzzer.protocol import Alive, CasesMade, Done, Request, RunCase, RunJob, RunTask, VerdictOf
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

    # A Case's hash (its key in refs and costs) is computed once, by the Case itself.
    def reference(self, case: Case) -> Any:
        # worker process only: the driver imports this module for serve()
        from fuzzer import oracle

        h = case.hash
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

    def judge(self, case: Case, target: str) -> Verdict:
        # worker process only: the driver imports this module for serve()
        from fuzzer import oracle

        os.ftruncate(self.log_fd, 0)  # the log tail a lost verdict carries is this run's
        os.lseek(self.log_fd, 0, os.SEEK_SET)
        self.where[0] = -1
        try:
            return self.charged(case.hash, oracle.judge(case, target, self.reference(case),
                                                        on_stage=self.on_stage))
        except MemoryError as e:
            return Verdict(target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target: say so, keep serving
            return Verdict(target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                           f"{type(e).__name__}: {first_line(str(e))}",
                           error=traceback.format_exc())

    def send_verdict(self, k: int, target: str, v: Verdict) -> None:
        if v.outcome != Outcome.PASS:
            self.failed.add(k)
        self.conn.send(VerdictOf(k, target, v.to_dict()))

    def run(self, case_json: str, target: str) -> None:
        case = Case.from_json(case_json)
        if case.hash not in self.refs:
            self.refs.clear()  # one Case's reference, kept for its next target
        self.at(0)
        self.send_verdict(0, target, self.judge(case, target))

    def task(self, req: RunTask) -> None:
        """A RunTask: the named function judges whatever it judges, here, like a Case."""
        os.ftruncate(self.log_fd, 0)
        os.lseek(self.log_fd, 0, os.SEEK_SET)
        self.at(0)
        module, _, name = req.task.partition(":")
        try:
            v = getattr(importlib.import_module(module), name)(self, **req.args)
        except MemoryError as e:
            v = Verdict(req.target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target
            v = Verdict(req.target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                        f"{type(e).__name__}: {first_line(str(e))}",
                        error=traceback.format_exc())
        self.send_verdict(0, req.target, v)

    def job(self, job: dict[str, Any]) -> None:
        self.refs.clear()
        cases: list[Case | None] = []
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
                continue
            cases.append(case)
            self.costs[case.hash] = {"generate": time.perf_counter() - t0}
        self.conn.send(CasesMade([c.to_json(indent=None) if c else None for c in cases], errors))
        # Every member's eager reference before the first export: built between two exports
        # (cold caches) a reference cost ~2.5x as much. A crash here is still member k's.
        for k, c in enumerate(cases):
            if c is not None:
                self.at(k)
                self.reference(c)
        self.failed = set()
        for target, ks in schedule(job, errors):
            if len(ks) == 1:
                self.at(ks[0])
                k = ks[0]
                self.send_verdict(k, target, self.judge(cases[k], target))  # type: ignore[arg-type]
            else:
                self.pack(target, [cases[k] for k in ks], ks)  # type: ignore[misc]
        self.conn.send(Done())

    def pack(self, target: str, cases: list[Case], ks: tuple[int, ...]) -> None:
        # worker process only: the driver imports this module for serve()
        from fuzzer.pack import Risk, judge_pack

        self.risk = self.risk or Risk()

        def alone(j: int) -> Verdict:
            self.at(ks[j])
            return self.judge(cases[j], target)

        def alive() -> None:
            self.at(PACKED)
            self.conn.send(Alive())

        try:
            refs = [self.reference(c) for c in cases]
            verdicts = judge_pack(cases, target, refs, alone,
                                  alive, self.on_stage, self.risk,
                                  [j for j, k in enumerate(ks) if k in self.failed])
        except MemoryError:  # the packed model was too big: let each member speak alone
            verdicts = {j: alone(j) for j in range(len(cases))}
        for j, v in sorted(verdicts.items()):
            self.send_verdict(ks[j], target, self.charged(cases[j].hash, v))


def thread_lock_for_tqdm() -> None:
    """torch.fx's Interpreter builds a (disabled) tqdm bar in every dynamo export, and tqdm's
    first bar makes a multiprocessing RLock: a named semaphore, registered with the driver's
    resource tracker. A worker that is killed (crash, hang, recycle) never releases it, so
    each such death left a /dev/shm file and a "leaked semaphore" warning at exit. One
    process, one thread of bars: a thread lock is all tqdm needs here."""
    with contextlib.suppress(ImportError):
        # child processes only (worker, artifact dump); tqdm comes with torch
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())


def serve(conn: Connection, memory_mb: int, log_path: str, where: Any) -> None:
    """The worker's main loop (the sandbox's Process target)."""
    # worker process only: the driver imports this module for serve()
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
    while True:
        try:
            req: Request = conn.recv()
        except EOFError:
            return
        if isinstance(req, RunCase):
            worker.run(req.case_json, req.target)
        elif isinstance(req, RunJob):
            worker.job(req.job)
        elif isinstance(req, RunTask):
            worker.task(req)
        else:  # None: the driver closes this worker
            with contextlib.suppress(OSError):
                os.close(fd)
            return

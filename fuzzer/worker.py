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
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from fuzzer.case import Case
from fuzzer.job import case_for, root, schedule
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
        self.sizer: Any = None  # what packed exports cost (fuzzer.pack.Sizer)
        self.share = True  # the current job's targets share their chain prefixes
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

    def judge(self, case: Case, target: str, shared: Any = None) -> Verdict:
        # worker process only: the driver imports this module for serve()
        from fuzzer import oracle

        os.ftruncate(self.log_fd, 0)  # the log tail a lost verdict carries is this run's
        os.lseek(self.log_fd, 0, os.SEEK_SET)
        self.where[0] = -1
        try:
            return self.charged(case.hash, oracle.judge(case, target, self.reference(case),
                                                        on_stage=self.on_stage,
                                                        shared=shared))
        except MemoryError as e:
            return Verdict(target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target: say so, keep serving
            return Verdict(target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                           f"{type(e).__name__}: {first_line(str(e))}",
                           error=traceback.format_exc())

    def judge_tree(self, case: Case, targets: Sequence[str]) -> dict[str, Verdict]:
        """One Case on targets that share an exporter: each prefix runs once (with sharing
        on), each chain is judged on its own."""
        # worker process only: the driver imports this module for serve()
        from fuzzer.prefix import Prefixes

        shared = Prefixes(targets) if self.share and len(targets) > 1 else None
        return {t: self.judge(case, t, shared) for t in targets}

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

    def job(self, job: dict[str, Any], costs: dict[str, list[float]] | None = None) -> None:
        # worker process only: the driver imports this module for serve()
        from fuzzer.pack import Sizer

        self.refs.clear()
        self.share = job.get("share", True)
        self.sizer = Sizer(costs) if costs is not None else (self.sizer or Sizer())
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
        for targets, ks, size in schedule(job, errors):
            if size > 1 and len(ks) > 1:
                self.pack(targets, [cases[k] for k in ks], ks, size,  # type: ignore[misc]
                          job.get("adaptive", True))
                continue
            for k in ks:
                self.at(k)
                for t, v in self.judge_tree(cases[k], targets).items():  # type: ignore[arg-type]
                    self.send_verdict(k, t, v)
        self.conn.send(Done(self.sizer.plain()))

    def pack(self, targets: tuple[str, ...], cases: list[Case], ks: tuple[int, ...],
             cap: int, adaptive: bool) -> None:
        """Members ks on a tree of targets, through packed exports of up to `cap` Cases
        (as many as the Sizer finds cheapest, when `adaptive`)."""
        # worker process only: the driver imports this module for serve()
        from fuzzer.pack import Risk, chunks, judge_pack
        from fuzzer.targets import parse

        self.risk = self.risk or Risk()
        default = max(2, parse(targets[0]).exporter.pack)  # until its costs are known
        size = self.sizer.size(root(targets[0]), cap, default) if adaptive else cap

        def suspect(k: int) -> bool:
            """Judged alone from the start: it failed an earlier target. (Even a TorchScript
            failure: trying such members in dynamo packs anyway split 5% of the packs and
            cost more exports than it saved, measured on the real arm.)"""
            return k in self.failed

        def alive() -> None:
            self.at(PACKED)
            self.conn.send(Alive())

        for run in chunks(range(len(ks)), size):
            part = [cases[j] for j in run]

            def alone(i: int, ts: Sequence[str], run: list[int] = run) -> dict[str, Verdict]:
                self.at(ks[run[i]])
                return self.judge_tree(cases[run[i]], ts)

            try:
                refs = [self.reference(c) for c in part]
                verdicts = judge_pack(part, targets, refs, alone, alive, self.on_stage,
                                      self.risk,
                                      [i for i, j in enumerate(run) if suspect(ks[j])],
                                      self.sizer if adaptive else None, self.share)
            except MemoryError:  # the packed model was too big: let each member speak alone
                verdicts = {i: alone(i, targets) for i in range(len(part))}
            for i, vs in sorted(verdicts.items()):
                for t in targets:
                    self.send_verdict(ks[run[i]], t, self.charged(part[i].hash, vs[t]))


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
            worker.job(req.job, req.costs)
        elif isinstance(req, RunTask):
            worker.task(req)
        else:  # None: the driver closes this worker
            with contextlib.suppress(OSError):
                os.close(fd)
            return

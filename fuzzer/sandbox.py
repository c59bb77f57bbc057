"""Isolation: generated models run in worker processes the caller can afford to lose.

A segfault or abort, a hang past the per-case timeout, or memory past the per-case cap
becomes a Verdict (`process_death`, `hang`, `out_of_memory`) at the stage the worker last
announced, the worker is replaced, and the caller carries on. Workers are forked from a
forkserver that has already imported torch, so a replacement costs milliseconds, not seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import select
import signal
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fuzzer.case import Case
from fuzzer.job import Step, case_for, schedule
from fuzzer.protocol import (
    Alive,
    CasesMade,
    Done,
    Reply,
    Request,
    RunCase,
    RunJob,
    RunTask,
    VerdictOf,
)
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom, Verdict, first_line
from fuzzer.worker import STAGES, serve

# Imported once by the forkserver, so every worker (and every recycled one) starts with them.
# torch._dynamo is the costly one: meta-tensor shape inference imports it lazily, ~0.8 s that
# a fresh worker would otherwise pay on its first Case (40% of a TorchScript campaign's wall
# time at the default recycle quota). Each child also re-runs the main script (CPython 3.11's
# forkserver never preloads `__main__`: it asks for a `main_path` key that spawn's preparation
# data calls `init_main_from_path`), so what the CLI and campaign scripts import is here too.
# fuzzer.warm loads the default seeds' n-gram model (~0.4 s a worker otherwise).
PRELOAD = ["fuzzer.oracle", "fuzzer.campaign", "fuzzer.cli", "onnxruntime", "onnx.reference",
           "torch._dynamo", "torch.onnx._internal.torchscript_exporter.utils",
           "torch.onnx._internal.exporter._core", "onnxscript", "fuzzer.warm"]


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds per (Case, target); dynamo export of a big Case is slow
    memory_mb: int = 4096  # resident memory above the worker's start
    # A worker is replaced between requests after this many verdicts, or once its resident
    # memory has grown this much since its first answer (keeps memory flat). A replacement
    # forked from the warm forkserver costs ~50 ms plus its first export; growth is ~10 kB a
    # Case on TorchScript (benchmarks/throughput.py --soak-minutes).
    recycle: int = 1000
    recycle_mb: int = 512


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True)
class _Loss:
    """The worker is gone: how, since when, and where it was (stage, member slot)."""

    symptom: Symptom
    detail: str
    t0: float
    stage: Stage | None
    member: int


class WorkerError(RuntimeError):
    """The worker said something the protocol does not know (a convfuzz bug)."""


class Sandbox:
    """One worker process at a time; `run` always returns a Verdict."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._proc: Any = None
        self._conn: Connection | None = None
        self._served = 0
        self._log = Path(tempfile.gettempdir()) / f"convfuzz-worker-{os.getpid()}-{id(self)}.log"
        self.deaths = 0
        # What packed exports cost, as the last job's worker measured it (fuzzer.pack.Sizer):
        # handed to every job, so a recycled worker sizes its packs from the start.
        self.costs: dict[str, list[float]] | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._where = self._ctx.RawArray("i", [-1, -1])  # the worker's [stage, member]
        proc = self._ctx.Process(target=serve, daemon=True,
                                 args=(child, self.limits.memory_mb, str(self._log),
                                       self._where))
        try:
            proc.start()  # may raise (no fork, or a script without a __main__ guard)
        except BaseException:
            parent.close()
            child.close()
            raise  # with no half-started worker left for close() to trip over
        self._proc = proc
        child.close()
        self._conn = parent
        # One poll object for the pipe's life: Connection.poll builds a selector per call,
        # a measurable share of the driver's time at hundreds of messages a second.
        self._poller = select.poll()
        self._poller.register(parent.fileno(), select.POLLIN)
        self._served = 0
        self._base_rss = 0.0
        self._warm_rss = 0.0

    def _stop(self, kill: bool = False) -> None:
        # Claim the process first: on Ctrl-C the executor closes a shrink's sandbox while
        # the shrink's thread may be stopping the same worker after losing it, and the
        # second stop read `self._proc` after the first had cleared it (an AttributeError
        # and a traceback instead of the interrupt's summary).
        proc, conn = self._proc, self._conn
        if proc is None:
            return
        self._proc = self._conn = None
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        else:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        with contextlib.suppress(OSError):
            conn.close()

    def close(self) -> None:
        self._stop()
        with contextlib.suppress(OSError):
            self._log.unlink()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        keep = [ln for ln in lines if "torchvision is not installed" not in ln]
        return "\n".join(keep[-20:])

    def _worn(self) -> bool:
        return self._served >= self.limits.recycle or (
            self._warm_rss > 0 and _rss_mb(self._proc.pid) - self._warm_rss
            > self.limits.recycle_mb)

    def _request(self, req: Request) -> None:
        if self._proc is None or self._worn():
            self._stop()
            self._start()
        self._conn.send(req)

    def run(self, case: Case, target: str) -> Verdict:
        self._request(RunCase(case.to_json(indent=None), target))
        return self._verdict_reply(target)

    def run_task(self, task: str, args: dict[str, Any], target: str) -> Verdict:
        """`task` ("module:function") judges something on `target` in the worker
        (fuzzer.protocol.RunTask); a lost worker is a verdict like a lost Case's."""
        self._request(RunTask(task, args, target))
        return self._verdict_reply(target)

    def _verdict_reply(self, target: str) -> Verdict:
        msg = self._await()
        if isinstance(msg, _Loss):
            return self._lost(target, msg)
        if not isinstance(msg, VerdictOf):
            self._unexpected(msg)
        return self._verdict(msg.verdict)

    def run_job(self, job: dict[str, Any]) -> list[tuple[str, list[Verdict], str]]:
        """Generate a job's Cases in the worker and judge each on its targets
        (`executors.Job` as a dict): per member, its Case JSON, one verdict a target, and
        "" — or, for a member the generator failed on, "", no verdicts and the error.
        A lost worker costs the verdict of what it was judging alone; everything the job had
        not answered yet is judged again, one Case and target at a time, in a fresh worker
        (Cases the worker had not announced are generated here)."""
        members = job["members"]
        jsons: list[str | None] = [None] * len(members)
        errors: dict[int, str] = {}
        got: dict[tuple[int, str], Verdict] = {}
        self._request(RunJob(job, self.costs))
        while True:
            msg = self._await()
            if isinstance(msg, _Loss):
                self._blame(msg, schedule(job, errors), got)
                break
            if isinstance(msg, CasesMade):
                jsons, errors = list(msg.jsons), dict(msg.errors)
            elif isinstance(msg, VerdictOf):
                got[(msg.member, msg.target)] = self._verdict(msg.verdict)
                if self._proc is None:
                    break  # it hit its memory cap: the rest run in a fresh worker
            elif isinstance(msg, Done):
                self.costs = msg.costs or self.costs
                break
            elif not isinstance(msg, Alive):
                self._unexpected(msg)
        for k in range(len(members)):
            if jsons[k] is None and k not in errors:
                try:  # the worker died before it announced the Cases
                    jsons[k] = case_for(job, k).to_json(indent=None)
                except Exception as e:
                    errors[k] = f"{type(e).__name__}: {first_line(str(e))}"
        for targets, ks, _ in schedule(job, errors):
            for k in ks:
                for target in targets:
                    if (k, target) not in got:
                        got[(k, target)] = self.run(Case.from_json(jsons[k] or ""), target)
        return [(jsons[k] or "", [] if k in errors else [got[(k, t)] for t in m[2]],
                 errors.get(k, "")) for k, m in enumerate(members)]

    def _blame(self, loss: _Loss, steps: list[Step], got: dict[tuple[int, str], Verdict]
               ) -> None:
        """The lost verdict goes to the first unanswered target of the member the worker
        was judging alone; lost in a packed export or while generating, nobody is blamed
        (each member is judged again alone, and a culprit fails again by itself)."""
        member = loss.member
        todo = [t for ts, ks, _ in steps if member in ks for t in ts
                if (member, t) not in got]
        if not todo:
            self._lost("", loss)  # nothing to blame: just replace the worker
            return
        got[(member, todo[0])] = v = self._lost(todo[0], loss)
        if v.stage == Stage.EAGER:  # torch itself died on the Case: invalid on every target
            for t in todo[1:]:
                got[(member, t)] = dataclasses.replace(v, target=t)

    def _verdict(self, payload: dict[str, Any]) -> Verdict:
        self._served += 1
        if not self._warm_rss:
            self._warm_rss = _rss_mb(self._proc.pid)
        v = Verdict.from_dict(payload)
        if v.symptom == Symptom.OUT_OF_MEMORY and v.stage is None:
            v.stage = self._stage()
            self._stop(kill=True)  # a worker that hit its cap is not reused
        return v

    def _unexpected(self, msg: object) -> Any:
        self._stop(kill=True)
        raise WorkerError(f"unexpected worker message {str(msg)[:200]}")

    def _await(self) -> Reply | _Loss:
        """The worker's next message, or a _Loss when it died, gave no sign of life within
        the timeout or outgrew its memory cap."""
        t0 = time.perf_counter()
        deadline = t0 + self.limits.timeout
        while True:
            closed = False
            try:
                if self._poller.poll(50):
                    return self._conn.recv()
            except (EOFError, ConnectionResetError, BrokenPipeError):
                closed = True  # the worker's end is gone: it died (or is dying)
            if closed or not self._proc.is_alive():
                return _Loss(Symptom.PROCESS_DEATH, "", t0, self._stage(), self._where[1])
            if time.perf_counter() > deadline:
                return _Loss(Symptom.HANG, f"no answer within {self.limits.timeout:g} s", t0,
                             self._stage(), self._where[1])
            rss = _rss_mb(self._proc.pid)
            if self._base_rss == 0.0:
                self._base_rss = rss
            if rss - self._base_rss > self.limits.memory_mb:
                return _Loss(Symptom.OUT_OF_MEMORY, f"resident memory {rss:.0f} MB exceeded "
                             f"the cap of {self.limits.memory_mb} MB", t0, self._stage(),
                             self._where[1])

    def _stage(self) -> Stage | None:
        i = self._where[0]
        return STAGES[i] if i >= 0 else None

    def _lost(self, target: str, loss: _Loss) -> Verdict:
        symptom, detail, stage = loss.symptom, loss.detail, loss.stage
        self._proc.join(0.2)
        code = self._proc.exitcode
        self._stop(kill=True)
        self.deaths += 1
        tail = self._log_tail()
        if symptom == Symptom.PROCESS_DEATH:
            if code is not None and code < 0:
                detail = f"worker killed by {signal.Signals(-code).name}"
            else:
                detail = f"worker exited with code {code}"
        text = detail + (f"\n{tail}" if tail else "")
        outcome, where = Outcome.BUG, stage or Stage.NODE_CONVERSION
        # The process died where the last beacon said: the exporter's or the runtime's fault,
        # or torch eager's before any converter ran (the Case is invalid, never a finding).
        if where == Stage.EAGER:
            outcome, blame, detail = Outcome.INVALID, Attribution.NONE, f"torch eager: {detail}"
        elif where in (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN):
            blame = Attribution.RUNTIME
        else:
            blame = Attribution.CONVERTER
        return Verdict(target, outcome, where, symptom, blame, detail=detail, error=text,
                       evidence={"log_tail": first_line(tail)},
                       seconds=time.perf_counter() - loss.t0)

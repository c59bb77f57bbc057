"""Isolation: generated models run in worker processes the caller can afford to lose.

A segfault or abort, a hang past the per-case timeout, or memory past the per-case cap
becomes a Verdict (`process_death`, `hang`, `out_of_memory`) at the stage the worker last
announced, the worker is replaced, and the caller carries on. Workers are forked from a
forkserver that has already imported torch, so a replacement costs milliseconds, not seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import resource
import signal
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fuzzer.case import Case
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom, Verdict, first_line

# Imported once by the forkserver, so every worker (and every recycled one) starts with them.
# torch._dynamo is the costly one: meta-tensor shape inference imports it lazily, ~0.8 s that
# a fresh worker would otherwise pay on its first Case (40% of a TorchScript campaign's wall
# time at the default recycle quota). Each child also re-runs the main script (CPython 3.11's
# forkserver never preloads `__main__`: it asks for a `main_path` key that spawn's preparation
# data calls `init_main_from_path`), so what the CLI and campaign scripts import is here too.
PRELOAD = ["fuzzer.oracle", "fuzzer.campaign", "fuzzer.cli", "onnxruntime", "onnx.reference",
           "torch._dynamo", "torch.onnx._internal.torchscript_exporter.utils",
           "torch.onnx._internal.exporter._core", "onnxscript"]


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds per (Case, target); dynamo export of a big Case is slow
    memory_mb: int = 4096  # resident memory above the worker's start
    # A worker is replaced between requests after this many verdicts, or once its resident
    # memory has grown this much since its first answer (keeps memory flat). A replacement
    # costs ~0.3 s (seeds loaded again, first export), so the quota is not small; growth is
    # ~10 kB a Case on TorchScript (benchmarks/throughput.py --soak-minutes).
    recycle: int = 1000
    recycle_mb: int = 512


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


STAGES = list(Stage)  # a stage travels to the driver as its index in shared memory


class _Worker:
    """The worker's side: one Case's torch reference kept between the targets it runs on."""

    def __init__(self, conn: Connection, log_fd: int, stage: Any) -> None:
        self.conn = conn
        self.log_fd = log_fd
        self.stage = stage  # shared with the driver: where a lost worker was (-1: nowhere)
        self.cached: tuple[str, Any] | None = None

    def on_stage(self, s: str) -> None:
        self.stage.value = STAGES.index(Stage(s))

    def judge(self, case: Case, target: str) -> dict[str, Any]:
        from fuzzer import oracle

        os.ftruncate(self.log_fd, 0)  # the log tail a lost verdict carries is this run's
        os.lseek(self.log_fd, 0, os.SEEK_SET)
        self.stage.value = -1
        ref = self.cached[1] if self.cached and self.cached[0] == case.hash else None
        try:
            if ref is None:
                with contextlib.suppress(oracle.Invalid):
                    ref = oracle.reference(case)
                    self.cached = (case.hash, ref)
            v = oracle.judge(case, target, ref, on_stage=self.on_stage)
        except MemoryError as e:
            v = Verdict(target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target: say so, keep serving
            import traceback

            text = traceback.format_exc()
            v = Verdict(target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                        f"{type(e).__name__}: {first_line(str(e))}", error=text)
        return v.to_dict()

    def run(self, case_json: str, target: str) -> None:
        self.conn.send(("verdict", self.judge(Case.from_json(case_json), target)))

    def job(self, job: dict[str, Any]) -> None:
        """Generate the Case here (its shape inference is then reused when it is
        materialized), announce it, then judge it on every target of the job."""
        from fuzzer.executors import case_for

        try:
            case = case_for(job)
        except Exception as e:
            self.conn.send(("error", f"{type(e).__name__}: {first_line(str(e))}"))
            return
        self.conn.send(("case", case.to_json(indent=None)))
        for t in job["targets"]:
            self.conn.send(("verdict", self.judge(case, t)))


def _serve(conn: Connection, memory_mb: int, log_path: str, stage: Any) -> None:
    """Worker main loop: receive (request, *args), answer with the Case and verdicts; the
    current stage is written to shared memory (no message per stage)."""
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)  # exporter chatter and native crash messages land here, not on the TTY
    with open("/proc/self/statm") as f:
        vsz = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    # Address-space cap: a runaway allocation fails fast with MemoryError in the worker
    # instead of swapping the machine; RSS polling in the parent is the backstop.
    limit = vsz + (memory_mb + 2048) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    worker = _Worker(conn, fd, stage)
    handlers = {"run": worker.run, "job": worker.job}
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if req is None:
            return
        handlers[req[0]](*req[1:])


class WorkerError(RuntimeError):
    """The worker reported a failure of convfuzz itself (e.g. a generator error)."""


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

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._stage = self._ctx.RawValue("b", -1)
        self._proc = self._ctx.Process(target=_serve, daemon=True,
                                       args=(child, self.limits.memory_mb, str(self._log),
                                             self._stage))
        self._proc.start()
        child.close()
        self._conn = parent
        self._served = 0
        self._base_rss = 0.0
        self._warm_rss = 0.0

    def _stop(self, kill: bool = False) -> None:
        if self._proc is None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
        else:
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send(None)
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        with contextlib.suppress(OSError):
            self._conn.close()
        self._proc = self._conn = None

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

    def _request(self, *req: Any) -> None:
        if self._proc is None or self._worn():
            self._stop()
            self._start()
        self._conn.send(req)

    def run(self, case: Case, target: str) -> Verdict:
        self._request("run", case.to_json(indent=None), target)
        kind, payload = self._receive(target)
        return payload if kind in ("verdict", "lost") else self._unexpected(kind, payload)

    def run_job(self, job: dict[str, Any]) -> tuple[str, list[Verdict]]:
        """Generate a Case from a job (`executors.Job` as a dict) in the worker and run it on
        the job's targets: (the Case's JSON, one verdict a target). A worker lost on one
        target costs that target's verdict only: the rest run in a fresh worker. Lost before
        the Case was announced, the Case is generated here and every target runs alone."""
        from fuzzer.executors import case_for

        targets = list(job["targets"])
        self._request("job", job)
        kind, payload = self._receive(targets[0], generating=True)
        if kind == "error":
            raise WorkerError(payload)
        if kind != "case":
            case = case_for(job)
            return case.to_json(indent=None), [self.run(case, t) for t in targets]
        case_json = payload
        verdicts: list[Verdict] = []
        for t in targets:
            kind, payload = self._receive(t)
            if kind not in ("verdict", "lost"):
                self._unexpected(kind, payload)
            verdicts.append(payload)
            if kind == "lost":
                case = Case.from_json(case_json)
                verdicts += [self.run(case, r) for r in targets[len(verdicts):]]
                break
        return case_json, verdicts

    def _unexpected(self, kind: str, payload: Any) -> Any:
        self._stop(kill=True)
        raise WorkerError(f"unexpected worker message {kind!r}: {str(payload)[:200]}")

    def _receive(self, target: str, generating: bool = False) -> tuple[str, Any]:
        """The worker's next answer about `target`: ("verdict", Verdict), ("case", json),
        ("error", text), or ("lost", Verdict) when the worker died, hung past the timeout or
        outgrew its memory cap (it is then replaced). A worker lost while `generating` is
        ("gone", None): no target was running."""
        t0 = time.perf_counter()
        deadline = t0 + self.limits.timeout
        while True:
            try:
                ready = self._conn.poll(0.05)
                if ready:
                    kind, payload = self._conn.recv()
                    if kind != "verdict":
                        return kind, payload
                    self._served += 1
                    if not self._warm_rss:
                        self._warm_rss = _rss_mb(self._proc.pid)
                    v = Verdict.from_dict(payload)
                    if v.symptom == Symptom.OUT_OF_MEMORY and v.stage is None:
                        v.stage = self._where()
                        self._stop(kill=True)  # a worker that hit its cap is not reused
                    return "verdict", v
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass
            lost: tuple[Symptom, str] | None = None
            if not self._proc.is_alive() or (not ready and self._conn.closed):
                lost = (Symptom.PROCESS_DEATH, "")
            elif time.perf_counter() > deadline:
                lost = (Symptom.HANG, f"no answer within {self.limits.timeout:g} s")
            else:
                rss = _rss_mb(self._proc.pid)
                if self._base_rss == 0.0:
                    self._base_rss = rss
                if rss - self._base_rss > self.limits.memory_mb:
                    lost = (Symptom.OUT_OF_MEMORY, f"resident memory {rss:.0f} MB exceeded "
                            f"the cap of {self.limits.memory_mb} MB")
            if lost is not None:
                if generating:
                    self._lost(target, None, lost[0], t0, lost[1])
                    return "gone", None
                return "lost", self._lost(target, self._where(), lost[0], t0, lost[1])

    def _where(self) -> Stage | None:
        i = self._stage.value
        return STAGES[i] if i >= 0 else None

    def _lost(self, target: str, stage: Stage | None, symptom: Symptom, t0: float,
              detail: str = "") -> Verdict:
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
        where = stage or Stage.NODE_CONVERSION
        # The process died where the last beacon said: the exporter's or the runtime's fault.
        blame = (Attribution.RUNTIME if where in (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN)
                 else Attribution.CONVERTER)
        return Verdict(target, Outcome.BUG, where, symptom, blame, detail=detail, error=text,
                       evidence={"log_tail": first_line(tail)},
                       seconds=time.perf_counter() - t0)

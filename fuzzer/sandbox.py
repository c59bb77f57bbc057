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


@dataclass(frozen=True)
class Limits:
    timeout: float = 120.0  # seconds per (Case, target); dynamo export of a big Case is slow
    memory_mb: int = 4096  # resident memory above the worker's start
    recycle: int = 200  # requests before a worker is replaced (keeps memory flat)


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _serve(conn: Connection, memory_mb: int, log_path: str) -> None:
    """Worker main loop: receive (case json, target), send stage beacons and the verdict."""
    import torch

    from fuzzer import oracle

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
    cached: tuple[str, Any] | None = None
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if req is None:
            return
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        case_json, target = req
        case = Case.from_json(case_json)
        ref = cached[1] if cached and cached[0] == case.hash else None
        try:
            if ref is None:
                with contextlib.suppress(oracle.Invalid):
                    ref = oracle.reference(case)
                    cached = (case.hash, ref)
            v = oracle.judge(case, target, ref, on_stage=lambda s: conn.send(("stage", s)))
        except MemoryError as e:
            v = Verdict(target, Outcome.BUG, None, Symptom.OUT_OF_MEMORY, detail=str(e))
        except Exception as e:  # the harness broke, not the target: say so, keep serving
            import traceback

            text = traceback.format_exc()
            v = Verdict(target, Outcome.HARNESS, detail=f"convfuzz internal error: "
                        f"{type(e).__name__}: {first_line(str(e))}", error=text)
        conn.send(("verdict", v.to_dict()))


class Sandbox:
    """One worker process at a time; `run` always returns a Verdict."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["fuzzer.oracle", "onnxruntime", "onnx.reference"])
        self._proc: Any = None
        self._conn: Connection | None = None
        self._served = 0
        self._log = Path(tempfile.gettempdir()) / f"convfuzz-worker-{os.getpid()}-{id(self)}.log"
        self.deaths = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, daemon=True,
                                       args=(child, self.limits.memory_mb, str(self._log)))
        self._proc.start()
        child.close()
        self._conn = parent
        self._served = 0
        self._base_rss = 0.0

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

    def run(self, case: Case, target: str) -> Verdict:
        if self._proc is None or self._served >= self.limits.recycle:
            self._stop()
            self._start()
        self._served += 1
        t0 = time.perf_counter()
        stage: str | None = None
        self._conn.send((case.to_json(indent=None), target))
        deadline = t0 + self.limits.timeout
        while True:
            try:
                ready = self._conn.poll(0.05)
                if ready:
                    kind, payload = self._conn.recv()
                    if kind == "stage":
                        stage = payload
                        continue
                    v = Verdict.from_dict(payload)
                    if v.symptom == Symptom.OUT_OF_MEMORY and v.stage is None:
                        v.stage = Stage(stage) if stage else None
                        self._stop(kill=True)  # a worker that hit its cap is not reused
                    return v
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass
            now = time.perf_counter()
            if not self._proc.is_alive() or (not ready and self._conn.closed):
                return self._lost(target, stage, Symptom.PROCESS_DEATH, t0)
            if now > deadline:
                return self._lost(target, stage, Symptom.HANG, t0,
                                  f"no answer within {self.limits.timeout:g} s")
            rss = _rss_mb(self._proc.pid)
            if self._base_rss == 0.0:
                self._base_rss = rss
            if rss - self._base_rss > self.limits.memory_mb:
                return self._lost(target, stage, Symptom.OUT_OF_MEMORY, t0,
                                  f"resident memory {rss:.0f} MB exceeded the cap of "
                                  f"{self.limits.memory_mb} MB")

    def _lost(self, target: str, stage: str | None, symptom: Symptom, t0: float,
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
        where = Stage(stage) if stage else Stage.NODE_CONVERSION
        # The process died where the last beacon said: the exporter's or the runtime's fault.
        blame = (Attribution.RUNTIME if where in (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN)
                 else Attribution.CONVERTER)
        return Verdict(target, Outcome.BUG, where, symptom, blame, detail=detail, error=text,
                       evidence={"log_tail": first_line(tail)},
                       seconds=time.perf_counter() - t0)

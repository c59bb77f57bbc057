"""Where Cases run: local worker processes (the embedded default) or a Dask distributed
cluster. Both run the same units of work — a job: generate a batch of Cases of the stream and
judge each on its targets in a sandbox, several Cases through one export where the target's
exporter is worth packing; a shrink: minimize one failing Case in a sandbox — and hand results
back to the driver, the only writer of the store."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Protocol

from fuzzer.case import Case
from fuzzer.job import Job, Result
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.shrink import Budget, shrink
from fuzzer.verdict import Verdict


def execute(job: Job, sandbox: Sandbox) -> Result:
    """Generate and judge a job's Cases, both in the sandbox's worker process."""
    done = sandbox.run_job(job.plain())
    return [(m[0], case_json, [v.to_dict() for v in verdicts], error)
            for m, (case_json, verdicts, error) in zip(job.members, done, strict=True)]


def decode(result: Result) -> list[tuple[int, Case, list[Verdict]]]:
    """The members that were generated, as Cases and Verdicts."""
    return [(i, Case.from_json(case_json), [Verdict.from_dict(v) for v in vs])
            for i, case_json, vs, error in result if not error]


def skipped(result: Result) -> list[tuple[int, str]]:
    """The members the generator failed on: (stream index, error)."""
    return [(i, error) for i, _, _, error in result if error]


# A shrink's answer: the minimized Case, its verdict and the shrink's summary (calls, seconds,
# where it ran).
Shrunk = tuple[Case, Verdict, dict[str, Any]]


def shrink_in(sandbox: Sandbox, case: Case, verdict: Verdict, budget: Budget) -> Shrunk:
    res = shrink(case, verdict, lambda c: sandbox.run(c, verdict.target), budget)
    return res.case, res.verdict, res.summary()


class Executor(Protocol):
    workers: int

    def submit(self, job: Job) -> Future[Result]: ...

    def shrink(self, case: Case, verdict: Verdict, budget: Budget) -> Future[Shrunk]: ...

    def end_generation(self) -> int:
        """No more jobs will come: free what only they need. Returns how many shrinks may
        run at once from now on."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Threads in the driver, each owning one sandbox (one worker process at a time); shrinks
    run on threads of their own, each in a sandbox no other shrink is using."""

    def __init__(self, workers: int, limits: Limits) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convfuzz")
        self._local = threading.local()
        self._sandboxes: list[Sandbox] = []
        self._lock = threading.Lock()
        self._limits = limits
        # Once generation ends, the job workers are closed and the failures still queued are
        # shrunk `workers + 1` at a time (on 2 cores; the default campaign, `--time 120`,
        # filed its last finding 134 s after its budget on one serial queue, 37 s so).
        self._tail = max(1, min(os.cpu_count() or 1, workers + 1))
        self._shrink_pool = ThreadPoolExecutor(max_workers=self._tail,
                                               thread_name_prefix="convfuzz-shrink")
        self._idle: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()  # no shrink is using
        self._shrinkers: list[Sandbox] = []  # every shrink sandbox made, to close at the end

    def _sandbox(self) -> Sandbox:
        if not hasattr(self._local, "sb"):
            self._local.sb = Sandbox(self._limits)
            with self._lock:
                self._sandboxes.append(self._local.sb)
        return self._local.sb

    def submit(self, job: Job) -> Future[Result]:
        return self._pool.submit(lambda: execute(job, self._sandbox()))

    def shrink(self, case: Case, verdict: Verdict, budget: Budget) -> Future[Shrunk]:
        def run() -> Shrunk:
            try:
                sb = self._idle.get_nowait()
            except queue.Empty:
                sb = Sandbox(self._limits)
                with self._lock:
                    self._shrinkers.append(sb)
            try:
                return shrink_in(sb, case, verdict, budget)
            finally:
                self._idle.put(sb)
        return self._shrink_pool.submit(run)

    def end_generation(self) -> int:
        self._close_jobs()  # their workers' memory, before more shrink sandboxes start
        return self._tail

    def _close_jobs(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for sb in self._sandboxes:
                sb.close()
            self._sandboxes.clear()

    def close(self) -> None:
        self._close_jobs()
        # On Ctrl-C an unfinished shrink is dropped (its failing verdict is in the store).
        self._shrink_pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for sb in self._shrinkers:
                sb.close()


# A Dask worker runs `--nthreads` tasks at once, each on its own thread: one sandbox per
# thread, kept between tasks (a sandbox is one pipe to one process: two threads sharing it
# crashed the campaign with "concurrent poll() invocation").
_dask_local = threading.local()


def _dask_sandbox(limits: Mapping[str, Any]) -> Sandbox:
    sb = getattr(_dask_local, "sandbox", None)
    if sb is None:
        sb = _dask_local.sandbox = Sandbox(Limits(**limits))
    return sb


def _dask_task(job: Job) -> Result:
    """Runs inside a Dask worker, on its thread's sandbox."""
    return execute(job, _dask_sandbox(job.limits))


def _dask_shrink(case_json: str, verdict: dict[str, Any], budget: Budget,
                 limits: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A shrink inside a Dask worker (plain data both ways), its summary naming the worker."""
    # optional extra [cluster]: only a Dask campaign needs it
    from distributed import get_worker

    case, v, summary = shrink_in(_dask_sandbox(limits), Case.from_json(case_json),
                                 Verdict.from_dict(verdict), budget)
    return case.to_json(indent=None), v.to_dict(), summary | {"worker": get_worker().address}


class DaskExecutor:
    """A Dask distributed cluster (`dask scheduler` + `dask worker --no-nanny ...`)."""

    def __init__(self, address: str, limits: Limits) -> None:
        # optional extra [cluster]: only a Dask campaign needs it
        from distributed import Client

        try:
            self._client = Client(address, timeout="10s")
        except OSError as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(int(w.get("nthreads", 1))
                                  for w in info.get("workers", {}).values()))
        self._limits = asdict(limits)

    def _submit(self, fn: Any, *args: Any, decode: Any = None) -> Future[Any]:
        # Each task is distinct (pure=False): Dask must not deduplicate two equal-looking ones.
        dfut = self._client.submit(fn, *args, pure=False)
        fut: Future[Any] = Future()

        def done(d: Any) -> None:
            try:
                r = d.result()
                fut.set_result(decode(r) if decode else r)
            except BaseException as e:  # a lost worker: surface it to the driver
                fut.set_exception(e)
        dfut.add_done_callback(done)
        return fut

    def submit(self, job: Job) -> Future[Result]:
        return self._submit(_dask_task, job)

    def shrink(self, case: Case, verdict: Verdict, budget: Budget) -> Future[Shrunk]:
        # On the cluster too: the driver's machine may be the smallest of them.
        return self._submit(_dask_shrink, case.to_json(indent=None), verdict.to_dict(), budget,
                            self._limits, decode=lambda r: (Case.from_json(r[0]),
                                                           Verdict.from_dict(r[1]), r[2]))

    def end_generation(self) -> int:
        return self.workers  # every thread of the cluster is free for the shrinks left

    def close(self) -> None:
        self._client.close()

"""Where Cases run: local worker processes (the embedded default) or a Dask distributed
cluster. Both run the same unit of work — generate Case i of the stream, run it on every
target in a sandbox — and hand results back to the driver, the only writer of the store."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from fuzzer.case import Case
from fuzzer.generate import SAMPLERS, GenConfig
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.verdict import Verdict


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain data (it crosses process and host boundaries)."""

    index: int
    seed: int  # the Case seed (derived from the campaign seed and the index)
    sampler: str
    targets: tuple[str, ...]
    vocab: tuple[str, ...] | None
    gen: dict[str, Any]
    limits: dict[str, Any]

    def plain(self) -> dict[str, Any]:
        return dict(vars(self))  # its fields are plain already: no deep copy needed


Result = tuple[int, str, list[dict[str, Any]]]  # index, Case JSON, verdict dicts


def case_for(job: dict[str, Any]) -> Case:
    """Case `job["index"]` of the stream (a Job as a dict: it is what crosses to a worker)."""
    vocab = tuple(job["vocab"]) if job["vocab"] else None
    return SAMPLERS[job["sampler"]](job["seed"], vocab, GenConfig(**job["gen"]))


def execute(job: Job, sandbox: Sandbox) -> Result:
    """Generate and run one Case, both in the sandbox's worker process."""
    case_json, verdicts = sandbox.run_job(job.plain())
    return job.index, case_json, [v.to_dict() for v in verdicts]


def decode(result: Result) -> tuple[int, Case, list[Verdict]]:
    i, case_json, vs = result
    return i, Case.from_json(case_json), [Verdict.from_dict(v) for v in vs]


class Executor(Protocol):
    workers: int

    def submit(self, job: Job) -> Future[Result]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Threads in the driver, each owning one sandbox (one worker process at a time)."""

    def __init__(self, workers: int, limits: Limits) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convfuzz")
        self._local = threading.local()
        self._sandboxes: list[Sandbox] = []
        self._lock = threading.Lock()
        self._limits = limits

    def _sandbox(self) -> Sandbox:
        if not hasattr(self._local, "sb"):
            self._local.sb = Sandbox(self._limits)
            with self._lock:
                self._sandboxes.append(self._local.sb)
        return self._local.sb

    def submit(self, job: Job) -> Future[Result]:
        return self._pool.submit(lambda: execute(job, self._sandbox()))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for sb in self._sandboxes:
            sb.close()


def _dask_task(job: Job) -> Result:
    """Runs inside a Dask worker: one sandbox per worker process, kept between tasks."""
    from distributed import get_worker

    w = get_worker()
    sb = getattr(w, "_convfuzz_sandbox", None)
    if sb is None:
        sb = Sandbox(Limits(**job.limits))
        w._convfuzz_sandbox = sb
    return execute(job, sb)


class DaskExecutor:
    """A Dask distributed cluster (`dask scheduler` + `dask worker --no-nanny ...`)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        try:
            self._client = Client(address, timeout="10s")
        except OSError as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(int(w.get("nthreads", 1))
                                  for w in info.get("workers", {}).values()))

    def submit(self, job: Job) -> Future[Result]:
        # Each job is distinct (pure=False): Dask must not deduplicate two equal-looking ones.
        dfut = self._client.submit(_dask_task, job, pure=False)
        fut: Future[Result] = Future()

        def done(d: Any) -> None:
            try:
                fut.set_result(d.result())
            except BaseException as e:  # a lost worker: surface it to the driver
                fut.set_exception(e)
        dfut.add_done_callback(done)
        return fut

    def close(self) -> None:
        self._client.close()


@functools.lru_cache(maxsize=16)
def _fields(config: GenConfig | Limits) -> tuple[tuple[str, Any], ...]:
    return tuple(asdict(config).items())  # once a campaign, not once a Case


def job(index: int, seed: int, sampler: str, targets: Sequence[str],
        vocab: Sequence[str] | None, gen: GenConfig, limits: Limits) -> Job:
    return Job(index, seed, sampler, tuple(targets), tuple(vocab) if vocab else None,
               dict(_fields(gen)), dict(_fields(limits)))

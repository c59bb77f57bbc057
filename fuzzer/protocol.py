"""The messages between the sandbox (driver side) and its worker process, one type each:
what crosses the pipe is a small NamedTuple read by field, never a bare tuple read by index.
Only plain data inside (Case JSON, verdict dicts): a worker's objects never cross."""

from __future__ import annotations

from typing import Any, NamedTuple


# -- driver -> worker -------------------------------------------------------------------------
class RunCase(NamedTuple):
    """Judge one Case on one target."""

    case_json: str
    target: str


class RunJob(NamedTuple):
    """Generate a job's Cases and judge each on its targets (a fuzzer.job.Job as a dict).
    `costs`: what earlier jobs measured of packed exports (fuzzer.pack.Sizer), kept by the
    driver's sandbox so a recycled worker does not learn it again."""

    job: dict[str, Any]
    costs: dict[str, list[float]] | None = None


class RunTask(NamedTuple):
    """Call `task` ("module:function", taking the Worker and `args`, returning a Verdict) in
    the worker, for jobs that are not Cases (a whole architecture, fuzzer/models.py); the
    answer is one VerdictOf (member 0)."""

    task: str
    args: dict[str, Any]
    target: str


# The driver sends None to ask the worker to exit.
Request = RunCase | RunJob | RunTask | None


# -- worker -> driver -------------------------------------------------------------------------
class CasesMade(NamedTuple):
    """A job's Cases, as generated: JSON per member (None where the generator failed, with
    its error in `errors`)."""

    jsons: list[str | None]
    errors: dict[int, str]


class VerdictOf(NamedTuple):
    """Member `member`'s verdict on `target`."""

    member: int
    target: str
    verdict: dict[str, Any]


class Alive(NamedTuple):
    """A sign of life during a long packed export."""


class Done(NamedTuple):
    """Every verdict of the job has been sent; `costs`: the worker's packing measurements."""

    costs: dict[str, list[float]] | None = None


Reply = CasesMade | VerdictOf | Alive | Done

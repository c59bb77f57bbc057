"""A job: the unit of work a worker does — generate a batch of Cases of the stream and judge
each on its targets — as plain data (it crosses process and host boundaries), with the two
things both ends derive from it: member k's Case and the order the targets are judged in.
The worker follows that order; the driver's sandbox replays it to know what a lost worker
left unanswered."""

from __future__ import annotations

import functools
from collections.abc import Container, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fuzzer.case import Case
from fuzzer.sampling import GenConfig, draw

Member = tuple[int, int, tuple[str, ...]]  # stream index, Case seed, targets


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, as plain data (it crosses process and host boundaries)."""

    members: tuple[Member, ...]
    sampler: str
    vocab: tuple[str, ...] | None
    gen: dict[str, Any]
    limits: dict[str, Any]
    packs: tuple[tuple[str, int], ...] = ()  # target -> Cases a packed export takes

    def plain(self) -> dict[str, Any]:
        return dict(vars(self))  # its fields are plain already: no deep copy needed


# Per member: stream index, Case JSON, verdict dicts, and the generator's error ("" when the
# Case was drawn; else there is no Case and no verdict).
Result = list[tuple[int, str, list[dict[str, Any]], str]]


def case_for(job: Mapping[str, Any], k: int = 0) -> Case:
    """Member k of a job (a Job as a dict: what crosses to a worker)."""
    vocab = tuple(job["vocab"]) if job["vocab"] else None
    return draw(job["sampler"], job["members"][k][1], vocab, GenConfig(**job["gen"]))


def schedule(job: Mapping[str, Any],
             skip: Container[int] = ()) -> list[tuple[str, tuple[int, ...]]]:
    """The order a worker judges a job in: (target, members) steps, target by target; a step
    of several members is one packed export; members in `skip` (not generated) have none.
    The driver replays the same list to know what a lost worker left unanswered."""
    packs = dict(job["packs"])
    order = list(dict.fromkeys(t for m in job["members"] for t in m[2]))
    steps: list[tuple[str, tuple[int, ...]]] = []
    for t in order:
        ks = [k for k, m in enumerate(job["members"]) if t in m[2] and k not in skip]
        size = packs.get(t, 1)
        if size > 1 and len(ks) > 1:
            steps += [(t, tuple(ks[i:i + size])) for i in range(0, len(ks), size)]
        else:
            steps += [(t, (k,)) for k in ks]
    return steps


@functools.lru_cache(maxsize=16)
def _fields(config: Any) -> tuple[tuple[str, Any], ...]:  # a GenConfig or a sandbox.Limits
    return tuple(asdict(config).items())  # once a campaign, not once a Case


def job(members: Sequence[Member], sampler: str, vocab: Sequence[str] | None,
        gen: GenConfig, limits: Any, packs: Mapping[str, int] | None = None) -> Job:
    """A Job of `members` (`limits`: a sandbox.Limits, named not imported: the sandbox
    imports this module)."""
    return Job(tuple((i, seed, tuple(ts)) for i, seed, ts in members), sampler,
               tuple(vocab) if vocab else None, dict(_fields(gen)), dict(_fields(limits)),
               tuple(sorted((packs or {}).items())))

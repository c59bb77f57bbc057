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
    packs: tuple[tuple[str, int], ...] = ()  # target -> Cases a packed export takes (most)
    share: bool = True  # targets with one exporter share its export (fuzzer/prefix.py)
    adaptive: bool = True  # the worker sizes packs by their measured cost (fuzzer/pack.py)

    def plain(self) -> dict[str, Any]:
        return dict(vars(self))  # its fields are plain already: no deep copy needed


# Per member: stream index, Case JSON, verdict dicts, and the generator's error ("" when the
# Case was drawn; else there is no Case and no verdict).
Result = list[tuple[int, str, list[dict[str, Any]], str]]


def case_for(job: Mapping[str, Any], k: int = 0) -> Case:
    """Member k of a job (a Job as a dict: what crosses to a worker)."""
    vocab = tuple(job["vocab"]) if job["vocab"] else None
    return draw(job["sampler"], job["members"][k][1], vocab, GenConfig(**job["gen"]))


def root(target: str) -> str:
    """The first component of a chain name (its exporter, or a converter): the root of the
    tree a target joins (by name, as the driver knows it: no component is resolved)."""
    return target.strip("/").split("/")[0]


def trees(targets: Sequence[str], share: bool = True) -> list[tuple[str, ...]]:
    """The targets grouped by their root (the trees of fuzzer/prefix.py), in the order
    they first appear; without sharing each target is a tree of its own."""
    if not share:
        return [(t,) for t in targets]
    groups: dict[str, list[str]] = {}
    for t in targets:
        groups.setdefault(root(t), []).append(t)
    return [tuple(g) for g in groups.values()]


# One step of a job: a tree of targets (one exporter's, fuzzer/prefix.py), the members judged
# on it, and the most Cases one packed export takes (1: each member alone).
Step = tuple[tuple[str, ...], tuple[int, ...], int]


def schedule(job: Mapping[str, Any], skip: Container[int] = ()) -> list[Step]:
    """The order a worker judges a job in: tree by tree, members with the same targets of the
    tree together; members in `skip` (not generated) have none. A step of several members
    with a pack size above 1 is packed (the worker chooses how many Cases an export takes,
    up to that size). The driver replays the same list to know what a lost worker left
    unanswered."""
    packs = dict(job["packs"])
    order = list(dict.fromkeys(t for m in job["members"] for t in m[2]))
    # Chains a pack cannot take (a rewriter's, coverage is per Case) share no step with it.
    groups = trees(order, job.get("share", True))
    split = [tuple(t for t in g if packs.get(t, 1) == n)
             for g in groups for n in dict.fromkeys(packs.get(t, 1) for t in g)]
    steps: list[Step] = []
    for tree in split:
        size = packs.get(tree[0], 1)
        subsets: dict[tuple[str, ...], list[int]] = {}
        for k, m in enumerate(job["members"]):
            mine = tuple(t for t in tree if t in m[2])
            if mine and k not in skip:
                subsets.setdefault(mine, []).append(k)
        for ts, ks in subsets.items():
            if size > 1 and len(ks) > 1:
                steps.append((ts, tuple(ks), size))
            else:
                steps += [(ts, (k,), 1) for k in ks]
    return steps


@functools.lru_cache(maxsize=16)
def _fields(config: Any) -> tuple[tuple[str, Any], ...]:  # a GenConfig or a sandbox.Limits
    return tuple(asdict(config).items())  # once a campaign, not once a Case


def job(members: Sequence[Member], sampler: str, vocab: Sequence[str] | None,
        gen: GenConfig, limits: Any, packs: Mapping[str, int] | None = None,
        share: bool = True, adaptive: bool = True) -> Job:
    """A Job of `members` (`limits`: a sandbox.Limits, named not imported: the sandbox
    imports this module)."""
    return Job(tuple((i, seed, tuple(ts)) for i, seed, ts in members), sampler,
               tuple(vocab) if vocab else None, dict(_fields(gen)), dict(_fields(limits)),
               tuple(sorted((packs or {}).items())), share, adaptive)

"""The campaign loop: sample Cases, run them in sandboxes, record verdicts; shrink each new
failure and file it under a finding.

Case i of a campaign with seed S has seed derive(S, "case", i): the stream is reproducible and
a resumed campaign continues it where the store left off.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from fuzzer.case import Case, split_ref
from fuzzer.generate import SAMPLERS, GenConfig
from fuzzer.ops import get as get_op
from fuzzer.rng import derive
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.shrink import Budget, canonical, failure_key, infer, shrink
from fuzzer.store import Store
from fuzzer.targets import DEFAULT_TARGETS
from fuzzer.verdict import Outcome, Verdict


@dataclass(frozen=True)
class ShrinkConfig:
    enabled: bool = True
    seconds: float = 60.0  # per failure; the best Case so far is kept when it runs out
    calls: int = 200


@dataclass
class CampaignConfig:
    seed: int = 0
    seconds: float | None = 60.0
    cases: int | None = None
    targets: Sequence[str] = DEFAULT_TARGETS
    workers: int = 1
    sampler: str = "random"
    vocab: Sequence[str] | None = None
    gen: GenConfig = field(default_factory=GenConfig)
    limits: Limits = field(default_factory=Limits)
    # None: record verdicts only, file no findings (e.g. to measure raw throughput).
    shrink: ShrinkConfig | None = field(default_factory=ShrinkConfig)


@dataclass
class Progress:
    started: float = field(default_factory=time.time)
    cases: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Case, Verdict]] = field(default_factory=list)
    findings: int = 0  # distinct findings this campaign filed
    duplicates: int = 0  # failures filed under a finding already known

    @property
    def rate(self) -> float:
        return self.cases / max(1e-9, time.time() - self.started)


Listener = Callable[[Progress, Case, list[Verdict]], None]


def case_seed(seed: int, i: int) -> int:
    return derive(seed, "case", str(i))


def _fingerprint(case: Case) -> list[tuple[str, dict[str, object], str]] | None:
    metas = infer(case)
    if metas is None:
        return None
    out = []
    for n in case.nodes:
        dtype = ""
        if n.args:
            base, idx = split_ref(n.args[0])
            dtype = metas[base][idx or 0].dtype
        out.append((n.op, {**get_op(n.op).defaults(), **n.attrs}, dtype))
    return out


def covers(minimal: Case, case: Case) -> bool:
    """Does `case` hold every node of the minimized `minimal`: same operator, same dtype of
    the first operand, and the arguments `minimal` sets away from their defaults?"""
    mine, have = _fingerprint(canonical(minimal)), _fingerprint(case)
    if mine is None or have is None:
        return False
    explicit = {n.id: n.attrs for n in canonical(minimal).nodes}
    for n, (op, _, dtype) in zip(minimal.nodes, mine, strict=True):
        if not any(op == op2 and dtype == dt2 and all(a2.get(k) == v for k, v in
                                                      explicit[n.id].items())
                   for op2, a2, dt2 in have):
            return False
    return True


def probable_finding(store: Store, case: Case, verdict: Verdict) -> str | None:
    """A known finding this failure almost surely repeats: same failure class and every
    operator (with its trigger arguments) of the finding's minimized Case present. Saves
    the shrink; a heuristic, so the link is marked `matched`, not `shrunk`."""
    key = failure_key(verdict)
    for f in store.findings():
        if failure_key(Verdict.from_dict(f["verdict"])) == key and covers(
                Case.from_json(f["json"]), case):
            return str(f["id"])
    return None


def file_failure(store: Store, case: Case, verdict: Verdict, run: Callable[[Case], Verdict],
                 cfg: ShrinkConfig, match: bool = True) -> tuple[str, bool]:
    """Shrink a failing Case (run: Case -> Verdict on the verdict's target, through a
    sandbox) and file it under the finding of its minimized Case's signature. Returns
    (finding id, new). `match` first tries `probable_finding`, which skips the shrink."""
    known = probable_finding(store, case, verdict) if match else None
    if known is not None:
        store.link(known, case, verdict.target, "matched")
        return known, False
    if not cfg.enabled:
        return store.add_finding(case, verdict, case, verdict, None, how="unshrunk")
    res = shrink(case, verdict, run, Budget(cfg.seconds, cfg.calls))
    return store.add_finding(case, verdict, res.case, res.verdict, res.summary())


def run_campaign(cfg: CampaignConfig, store: Store | None = None,
                 listener: Listener | None = None,
                 stop: threading.Event | None = None) -> Progress:
    sample = SAMPLERS[cfg.sampler]
    stop = stop or threading.Event()
    prog = Progress()
    start = store.max_seq() + 1 if store is not None else 0
    local = threading.local()
    sandboxes: list[Sandbox] = []
    lock = threading.Lock()

    def sandbox() -> Sandbox:
        if not hasattr(local, "sb"):
            local.sb = Sandbox(cfg.limits)
            with lock:
                sandboxes.append(local.sb)
        return local.sb

    def work(i: int) -> tuple[int, Case, list[Verdict]]:
        case = sample(case_seed(cfg.seed, i), cfg.vocab, cfg.gen)
        sb = sandbox()
        return i, case, [sb.run(case, t) for t in cfg.targets]

    shrinker: list[Sandbox] = []  # the driver's own sandbox, made on the first failure

    def file(case: Case, v: Verdict) -> None:
        if not shrinker:
            shrinker.append(Sandbox(cfg.limits))
            sandboxes.append(shrinker[0])
        assert store is not None and cfg.shrink is not None
        _, new = file_failure(store, case, v, lambda c: shrinker[0].run(c, v.target),
                              cfg.shrink)
        prog.findings += new
        prog.duplicates += not new

    deadline = None if cfg.seconds is None else time.time() + cfg.seconds
    i = start

    def more() -> bool:
        if stop.is_set() or (deadline is not None and time.time() >= deadline):
            return False
        return cfg.cases is None or i < start + cfg.cases

    pending: set[Future[tuple[int, Case, list[Verdict]]]] = set()
    try:
        with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
            while True:
                while more() and len(pending) < cfg.workers:
                    pending.add(pool.submit(work, i))
                    i += 1
                if not pending:
                    break
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    seq, case, verdicts = fut.result()
                    if store is not None:
                        store.record(case, verdicts, seq)  # committed before it is shown
                    prog.cases += 1
                    bugs = [v for v in verdicts if v.outcome == Outcome.BUG]
                    for v in verdicts:
                        prog.verdicts[v.key] += 1
                    prog.failures.extend((case, v) for v in bugs)
                    if listener:  # before the shrink: the failure shows at once
                        listener(prog, case, verdicts)
                    if store is not None and cfg.shrink is not None:
                        for v in bugs:
                            file(case, v)  # the driver stays the only store writer
    finally:
        stop.set()
        for sb in sandboxes:
            sb.close()
    return prog

"""The campaign loop: sample Cases, run them in sandboxes, record verdicts.

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

from fuzzer.case import Case
from fuzzer.generate import SAMPLERS, GenConfig
from fuzzer.rng import derive
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.store import Store
from fuzzer.targets import DEFAULT_TARGETS
from fuzzer.verdict import Outcome, Verdict


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


@dataclass
class Progress:
    started: float = field(default_factory=time.time)
    cases: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Case, Verdict]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.cases / max(1e-9, time.time() - self.started)


Listener = Callable[[Progress, Case, list[Verdict]], None]


def case_seed(seed: int, i: int) -> int:
    return derive(seed, "case", str(i))


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
                    for v in verdicts:
                        prog.verdicts[v.key] += 1
                        if v.outcome == Outcome.BUG:
                            prog.failures.append((case, v))
                    if listener:
                        listener(prog, case, verdicts)
    finally:
        stop.set()
        for sb in sandboxes:
            sb.close()
    return prog

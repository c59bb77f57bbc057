"""`convfuzz models`' driver: which mined architectures to run, on which targets, in which
sandboxes, recorded where, and the summary per target.

Each architecture is one job: a thread hands it to its own sandbox (fuzzer/sandbox.py), whose
worker builds it once (fuzzer/models.py) and judges it on every target not yet recorded; a
segfault, hang or runaway allocation costs that architecture's verdict on that target only.
The driver's thread is the store's only writer (fuzzer/arch_rows.py): every verdict is
committed before it is shown, so `--resume` skips exactly what is recorded.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import arch_rows
from fuzzer.models import CLASSES, FAILING, Arch, verdict_class
from fuzzer.verdict import Verdict

TASK = "fuzzer.models:run_in_worker"
MODALITIES = ("text", "vision", "audio", "multimodal", "other")
META = "models"  # the store's meta key for the run's settings (what --resume reads)


class ModelsError(ValueError):
    """Bad input to `convfuzz models` (an unknown architecture or modality, no seeds)."""


def load_archs(seeds: Path) -> list[Arch]:
    """The architectures mining traced (status ok or fallback), by name."""
    path = Path(seeds) / "archs.json"
    if not path.is_file():
        raise ModelsError(f"{seeds}: no mined architectures here (no archs.json; run "
                          f"`convfuzz mine --out {seeds}`)")
    try:
        recs = json.loads(path.read_text())["archs"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelsError(f"{path}: not an archs.json mining wrote ({e})") from None
    return sorted((Arch.from_record(r) for r in recs if r.get("status") in ("ok", "fallback")),
                  key=lambda a: a.name)


def select(archs: list[Arch], names: list[str] | None = None,
           modalities: list[str] | None = None, limit: int | None = None,
           seed: int = 0) -> list[Arch]:
    """`names` ("bert" or "transformers:bert"), then `modalities`, then a random sample of
    `limit` (fixed by `seed`), in name order."""
    chosen = archs
    if names:
        by_name = {a.name: a for a in archs}
        by_type: dict[str, list[Arch]] = {}
        for a in archs:
            by_type.setdefault(a.model_type, []).append(a)
        picked: dict[str, Arch] = {}
        for n in names:
            hits = [by_name[n]] if n in by_name else by_type.get(n, [])
            if len(hits) != 1:
                known = "ambiguous" if hits else "not a mined architecture that traced"
                raise ModelsError(f"unknown architecture {n!r} ({known}; see seeds/archs.json)")
            picked[hits[0].name] = hits[0]
        chosen = sorted(picked.values(), key=lambda a: a.name)
    if modalities:
        bad = [m for m in modalities if m not in MODALITIES]
        if bad:
            raise ModelsError(f"unknown modality {bad[0]!r} (one of {', '.join(MODALITIES)})")
        chosen = [a for a in chosen if a.modality in modalities]
    if limit is not None and limit < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, limit), key=lambda a: a.name)
    return chosen


def check_sources(archs: list[Arch]) -> None:
    """The package each selected architecture's source needs (transformers: the `mine`
    extra) must be installed: else one line now, not a `build_failed` row per architecture."""
    # on use: the sources' table imports torch
    from fuzzer import extras
    from fuzzer.mine_sources import SOURCES

    for src in sorted({a.source for a in archs}):
        if src not in SOURCES:
            raise ModelsError(f"unknown mining source {src!r} in archs.json (known: "
                              f"{', '.join(sorted(SOURCES))})")
        if SOURCES[src].unavailable():
            raise ModelsError(extras.message(src, "convfuzz models"))


@dataclass
class ModelsConfig:
    targets: list[str]
    seeds: str
    archs: list[str] | None = None
    modalities: list[str] | None = None
    limit: int | None = None
    seed: int = 0
    workers: int = 1
    timeout: float = 300.0
    memory_mb: int = 4096

    def save(self, store: Any) -> None:
        store.set_meta(META, asdict(self))

    @staticmethod
    def saved(store: Any) -> ModelsConfig:
        d = store.get_meta(META)
        if not d:
            raise ModelsError(f"{store.root}: no `convfuzz models` run recorded here to resume")
        return ModelsConfig(**d)


@dataclass
class Progress:
    total: int  # architecture x target verdicts this run asks for
    skipped: int = 0  # recorded before (--resume)
    done: int = 0
    started: float = field(default_factory=time.time)
    by_target: dict[str, Counter[str]] = field(default_factory=dict)
    running: dict[int, str] = field(default_factory=dict)  # thread -> architecture
    failures: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    deaths: int = 0  # workers lost (crash, hang, memory)

    def add(self, arch: Arch, v: Verdict, cls: str) -> None:
        self.done += 1
        self.by_target.setdefault(v.target, Counter())[cls] += 1
        if cls in FAILING:
            self.failures.append(f"{arch.name}  {v.target}  {cls}: {v.key}  {v.detail[:90]}")

    @property
    def rate(self) -> float:
        return self.done / max(1e-9, time.time() - self.started)


Listener = Callable[[Progress], None]


def _work(jobs: queue.Queue[tuple[Arch, list[str]] | None], results: queue.Queue[Any],
          cfg: ModelsConfig, stop: threading.Event, prog: Progress) -> None:
    # on use: the sandbox starts torch in a forkserver
    from fuzzer.sandbox import Limits, Sandbox

    me = threading.get_ident()
    with Sandbox(Limits(timeout=cfg.timeout, memory_mb=cfg.memory_mb)) as box:
        while not stop.is_set():
            job = jobs.get()
            if job is None:
                break
            arch, targets = job
            prog.running[me] = arch.name
            for t in targets:
                if stop.is_set():
                    break
                results.put((arch, box.run_task(TASK, {"arch": arch.to_dict(), "target": t}, t)))
            prog.running.pop(me, None)
        prog.deaths += box.deaths
    results.put(None)  # this thread is done


def run(cfg: ModelsConfig, archs: list[Arch], store: Any, listen: Listener | None = None,
        stop: threading.Event | None = None) -> Progress:
    """Judge every architecture of `archs` on every target of `cfg` not yet in `store`."""
    stop = stop or threading.Event()
    have = arch_rows.done(store)
    todo = [(a, [t for t in cfg.targets if (a.name, t) not in have]) for a in archs]
    todo = [(a, ts) for a, ts in todo if ts]
    prog = Progress(total=len(archs) * len(cfg.targets))
    prog.skipped = prog.total - sum(len(ts) for _, ts in todo)
    jobs: queue.Queue[tuple[Arch, list[str]] | None] = queue.Queue()
    for job in todo:
        jobs.put(job)
    n = max(1, min(cfg.workers, len(todo)))
    for _ in range(n):
        jobs.put(None)
    results: queue.Queue[Any] = queue.Queue()
    threads = [threading.Thread(target=_work, args=(jobs, results, cfg, stop, prog),
                                daemon=True) for _ in range(n)]
    for th in threads:
        th.start()
    alive = n if todo else 0
    try:
        while alive:
            try:
                item = results.get(timeout=0.25)
            except queue.Empty:
                if listen:
                    listen(prog)
                continue
            if item is None:
                alive -= 1
                continue
            arch, v = item
            cls = verdict_class(v)
            arch_rows.record(store, arch, v, cls)  # committed before it is shown
            prog.add(arch, v, cls)
            if listen:
                listen(prog)
    finally:
        stop.set()
        for th in threads:
            th.join()
        while True:  # verdicts that arrived while the threads stopped are kept too
            try:
                item = results.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                arch, v = item
                arch_rows.record(store, arch, v, verdict_class(v))
    return prog


@dataclass(frozen=True)
class TargetSummary:
    target: str
    counts: dict[str, int]  # class -> architectures

    @property
    def built(self) -> int:
        """Architectures torch built and ran (every class but build_failed/harness_error)."""
        return sum(n for c, n in self.counts.items()
                   if c not in ("build_failed", "harness_error"))

    @property
    def failing(self) -> int:
        return sum(self.counts.get(c, 0) for c in FAILING)

    @property
    def converted(self) -> int:
        """Converted and ran: a model to compare (correct or wrong values)."""
        return self.counts.get("correct", 0) + self.counts.get("wrong_values", 0)


def summarize(rows: list[arch_rows.ArchRow], targets: list[str] | None = None,
              archs: set[str] | None = None) -> list[TargetSummary]:
    """Per target, architectures per class (of `archs` only, when given)."""
    by: dict[str, Counter[str]] = {t: Counter() for t in targets or []}
    for r in rows:
        if (archs is None or r.arch in archs) and (targets is None or r.target in targets):
            by.setdefault(r.target, Counter())[r.cls] += 1
    return [TargetSummary(t, {c: by[t].get(c, 0) for c in CLASSES}) for t in by]


def share(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "—"

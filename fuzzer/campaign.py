"""The campaign loop: sample Cases, run them in sandboxes, record verdicts; shrink each new
failure and file it under a finding.

Case i of a campaign with seed S has seed derive(S, "case", i): the stream is reproducible and
a resumed campaign continues it where the store left off.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import frontends, fusions, storage
from fuzzer.case import Case, split_ref
from fuzzer.coverage import Architectural
from fuzzer.dataflow import case_ngrams
from fuzzer.edit import canonical
from fuzzer.executors import DaskExecutor, Executor, LocalExecutor, decode, skipped
from fuzzer.generate import GenConfig
from fuzzer.generate import vocabulary as vocabulary_of
from fuzzer.job import Result, job, root
from fuzzer.ops import get as get_op
from fuzzer.ops import same_value
from fuzzer.pack import pack_cap, pack_size
from fuzzer.rng import derive, np_rng
from fuzzer.sampling import GenerationError, draw, samplers
from fuzzer.sandbox import Limits
from fuzzer.shrink import Budget, infer, shrink
from fuzzer.store import Store, StoreError
from fuzzer.targets import DEFAULT_TARGETS, TargetError
from fuzzer.targets import parse as parse_target
from fuzzer.verdict import Outcome, Verdict, failure_key, first_line


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
    weights: dict[str, float] = field(default_factory=dict)  # target -> share of Cases
    scheduler: str | None = None  # tcp://HOST:PORT of a Dask scheduler; None: local workers
    coverage: bool = True  # track the mined n-grams exercised (when seeds/ exist)
    # Cases a packed export takes (fuzzer/pack.py): None, each target's exporter decides
    # (the dynamo exporter packs 8); 1 never packs; N packs every target N at a time.
    pack: int | None = None
    # Targets with one exporter share its export, and its passes (fuzzer/prefix.py).
    share: bool = True
    # With `pack` None: a slow converter's pack size follows its measured cost per export and
    # the failure rate of its packs (fuzzer.pack.Sizer), up to Sizer.CAP; off: its own fixed
    # size (the dynamo exporter's 8).
    adaptive: bool = True
    # Cases a job carries to a worker: one round trip and one wake-up of the driver for
    # several Cases (2 TorchScript workers went from 1.71x to 1.87x of one with 8).
    batch: int = 8

    @classmethod
    def from_options(cls, *, seed: int, targets: Sequence[str] | None, sampler: str,
                     max_len: int, nondefault: float, dynamic: float,
                     vocab: Sequence[str] | None = None, seeds: str | Path | None = None,
                     vocabulary: str = "mined", pack: int | None = None,
                     near_miss: float = 0.0, **run: Any) -> CampaignConfig:
        """A campaign from its settings as `fuzz` takes them and the store keeps them
        (to_meta): target specs (`T@0.2` runs T on a 20% share of the Cases; None, the
        defaults), the operators named (None: the sampler's vocabulary), the seeds
        directory ("" or None: the default). `run` is what belongs to this run alone
        (seconds, cases, workers, limits, shrink, scheduler) and is never saved. Bad
        settings raise (GenerationError, TargetError, KeyError) before any store opens."""
        if sampler not in samplers():
            raise GenerationError(f"unknown source {sampler!r} (one of {', '.join(samplers())})")
        names, weights = weighted_targets(targets)
        ops = vocabulary_of(vocab) if vocab else None
        fe = targets_frontend(names)  # the targets' frontend decides which Cases are made
        if ops is None and fe.vocabulary is not None:
            ops = vocabulary_of(fe.load("vocabulary")())
        if not seeds and fe.seeds:  # its own mined n-grams for the real arm
            seeds = Path(__file__).resolve().parents[1] / fe.seeds
        if vocabulary not in ("mined", "catalogue"):
            raise GenerationError(f"unknown vocabulary {vocabulary!r} (mined or catalogue)")
        gen = GenConfig(max_len=max_len, nondefault=nondefault, dynamic=dynamic,
                        seeds=str(seeds or ""), vocabulary=vocabulary,
                        near_miss=near_miss if sampler.startswith("motif") else 0.0)
        draw(sampler, 0, ops, gen)  # fails fast on missing seeds or a bad vocabulary
        return cls(seed=seed, targets=names, weights=weights, sampler=sampler, vocab=ops,
                   gen=gen, pack=pack, **run)

    @classmethod
    def resumed(cls, store_dir: Path, **run: Any) -> CampaignConfig:
        """The campaign stored in `store_dir` (its saved settings), with this run's `run`."""
        saved = cls.saved(store_dir)
        missing = [k for k in _REQUIRED if k not in saved]
        if missing:
            raise StoreError(f"{store_dir}: the store's campaign settings lack "
                             f"{', '.join(missing)}")
        return cls.from_options(**{k: saved[k] for k in SETTINGS if k in saved}, **run)

    def to_meta(self) -> dict[str, Any]:
        """The settings a resume needs, as the store keeps them (meta "config")."""
        return {"seed": self.seed,
                "targets": [f"{n}@{self.weights[n]}" if n in self.weights else n
                            for n in self.targets],
                "sampler": self.sampler, "max_len": self.gen.max_len,
                "nondefault": self.gen.nondefault, "dynamic": self.gen.dynamic,
                "vocab": self.vocab, "seeds": self.gen.seeds,
                "vocabulary": self.gen.vocabulary, "pack": self.pack,
                "near_miss": self.gen.near_miss}

    def save(self, store: Store) -> None:
        store.set_meta("config", self.to_meta())

    @staticmethod
    def saved(store_dir: Path) -> dict[str, Any]:
        """The settings a stopped campaign saved in its store (to resume it); StoreError
        when there is no store or it holds none."""
        if not storage.is_store(store_dir):
            raise StoreError(f"{store_dir}: no campaign store to resume")
        st = Store(store_dir, readonly=True)
        try:
            saved = st.get_meta("config")
        finally:
            st.close()
        if not saved:
            raise StoreError(f"{store_dir}: the store has no campaign settings to resume")
        return dict(saved)


# What a campaign's stream depends on: the settings `fuzz` takes, the store keeps (meta
# "config") and a resume restores; the first six every saved campaign has.
SETTINGS = ("seed", "targets", "sampler", "max_len", "nondefault", "dynamic", "vocab", "seeds",
            "vocabulary", "pack", "near_miss")
_REQUIRED = SETTINGS[:6]


def weighted_targets(specs: Sequence[str] | None) -> tuple[list[str], dict[str, float]]:
    """Canonical target names, and the share of Cases of those given one (`T@0.25`; the
    others run every Case). None: the default targets."""
    specs = list(specs or DEFAULT_TARGETS)
    names = [parse_target(spec.rsplit("@", 1)[0]).name for spec in specs]
    weights = {}
    for spec, name in zip(specs, names, strict=True):
        if "@" in spec:
            w = spec.rsplit("@", 1)[1]
            try:
                share = float(w)
            except ValueError:
                raise TargetError(f"target weight {w!r} in {spec!r} is not a number") from None
            if not 0.0 < share <= 1.0:
                raise TargetError(f"target weight in {spec!r} must be in (0, 1]")
            weights[name] = share
    return names, weights


def targets_frontend(names: Sequence[str]) -> frontends.Frontend:
    """The one frontend (fuzzer.frontends) whose Cases every named target converts; a mix is
    a one-line error (a Case is written in one framework)."""
    found: dict[str, list[str]] = {}
    for n in names:
        found.setdefault(parse_target(n).frontend, []).append(n)
    if len(found) > 1:
        parts = "; ".join(f"{fe}: {', '.join(ts)}" for fe, ts in found.items())
        raise TargetError(f"targets convert models of different frameworks ({parts}): "
                          "run one campaign per frontend")
    return frontends.get(next(iter(found), frontends.DEFAULT))


@dataclass
class Progress:
    started: float = field(default_factory=time.time)
    cases: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    # The latest failures, for the dashboard; all of them are in the store (a list of every
    # one grew the driver by ~4 kB a failure over a long campaign).
    failures: deque[tuple[Case, Verdict]] = field(default_factory=lambda: deque(maxlen=64))
    finding_lines: list[str] = field(default_factory=list)  # one line per new finding
    coverage: dict[int, dict[str, Any]] = field(default_factory=dict)
    findings: int = 0  # distinct findings this campaign filed
    skipped: int = 0  # stream indices the generator failed on (no Case, nothing recorded)
    skip_error: str = ""  # the latest such failure
    duplicates: int = 0  # failures filed under a finding already known
    generated: float | None = None  # when the last Case was judged (the budget ran out)
    shrinks_left: int = 0  # failures queued or being shrunk
    shrinks_running: int = 0
    shrinks_parallel: int = 1  # shrinks at a time (more once no Case is being generated)
    refiled: int = 0  # failures a stopped campaign recorded but had not filed, filed now
    fusions: set[str] = field(default_factory=set)  # named fusions/rules fired (coverage)
    missed: int = 0  # missed fusions recorded (fuzzer/fusions.py): performance findings
    # For the dashboard: Cases judged per target family (a chain's exporter or converter),
    # and the seconds of worker time each converter, pass and runtime took (verdict timings).
    families: Counter[str] = field(default_factory=Counter)
    busy: Counter[str] = field(default_factory=Counter)
    workers: int = 1

    @property
    def elapsed(self) -> float:
        """Seconds while Cases were generated (not diluted by the shrink tail)."""
        return max(1e-9, (self.generated or time.time()) - self.started)

    @property
    def rate(self) -> float:
        """Cases a second while Cases were generated."""
        return self.cases / self.elapsed

    def charge(self, verdicts: Sequence[Verdict]) -> None:
        """Count a Case under each family it ran on, and its verdicts' time under the
        component that spent it."""
        for fam in {root(v.target) for v in verdicts}:
            self.families[fam] += 1
        for v in verdicts:
            parts = v.target.split("/")
            by_kind = {"exporter": parts[0], "converter": parts[0], "runtime": parts[-1],
                       "pass": "+".join(parts[1:-1])}
            for kind, s in v.evidence.get("timings", {}).items():
                if by_kind.get(kind):
                    self.busy[by_kind[kind]] += s


# Hears each Case's verdicts as they are recorded; (progress, None, []) is a refresh with no
# new result, every half second while the last failures are shrunk.
Listener = Callable[[Progress, Case | None, list[Verdict]], None]


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
        if not any(op == op2 and dtype == dt2 and all(k in a2 and same_value(a2[k], v)
                                                      for k, v in explicit[n.id].items())
                   for op2, a2, dt2 in have):
            return False
    return True


def probable_finding(store: Store, case: Case, verdict: Verdict) -> str | None:
    """A known finding this failure almost surely repeats: same failure class and every
    operator (with its trigger arguments) of the finding's minimized Case present. Saves
    the shrink; a heuristic, so the link is marked `matched`, not `shrunk`."""
    for fid, minimal in store.like(verdict):
        if covers(minimal, case):
            return fid
    return None


def file_without_shrink(store: Store, case: Case, verdict: Verdict, cfg: ShrinkConfig,
                        match: bool = True) -> tuple[str, bool] | None:
    """File a failure when no shrink is needed: linked to the known finding it almost surely
    repeats (`match`), or filed as it is when shrinking is off. None: it needs a shrink."""
    known = probable_finding(store, case, verdict) if match else None
    if known is not None:
        store.link(known, case, verdict.target, "matched")
        return known, False
    if not cfg.enabled:
        return store.add_finding(case, verdict, case, verdict, None, how="unshrunk")
    return None


def file_failure(store: Store, case: Case, verdict: Verdict, run: Callable[[Case], Verdict],
                 cfg: ShrinkConfig, match: bool = True) -> tuple[str, bool]:
    """Shrink a failing Case (run: Case -> Verdict on the verdict's target, through a
    sandbox) and file it under the finding of its minimized Case's signature. Returns
    (finding id, new). `match` first tries `probable_finding`, which skips the shrink."""
    filed = file_without_shrink(store, case, verdict, cfg, match)
    if filed is not None:
        return filed
    res = shrink(case, verdict, run, Budget(cfg.seconds, cfg.calls))
    return store.add_finding(case, verdict, res.case, res.verdict, res.summary())


def targets_for(cfg: CampaignConfig, seed: int) -> list[str]:
    """The targets Case `seed` runs on: each with probability its weight (default 1), drawn
    from the Case seed; never none (the most weighted one stands in)."""
    chosen = [t for t in cfg.targets if cfg.weights.get(t, 1.0) >= 1.0
              or np_rng(seed, "target", t).random() < cfg.weights[t]]
    return chosen or [max(cfg.targets, key=lambda t: cfg.weights.get(t, 1.0))]


def pack_sizes(cfg: CampaignConfig) -> dict[str, int]:
    """Targets worth packing and how many Cases a packed export takes (at most, when the
    size adapts)."""
    size = pack_cap if cfg.pack is None and cfg.adaptive else pack_size
    sizes = {t: cfg.pack if cfg.pack is not None else size(t) for t in cfg.targets}
    return {t: n for t, n in sizes.items() if n > 1}


def make_executor(cfg: CampaignConfig) -> Executor:
    if cfg.scheduler:
        return DaskExecutor(cfg.scheduler, cfg.limits)
    return LocalExecutor(cfg.workers, cfg.limits)


class Filing:
    """The shrink queue. Shrinking runs beside the campaign, where the Cases run
    (fuzzer/executors.py), so a new failure does not stall execution: one shrink at a time
    while Cases are generated, as many as the executor offers once the budget is spent.
    Only the driver thread calls it, and it alone writes findings to the store."""

    def __init__(self, store: Store, cfg: ShrinkConfig, ex: Executor, prog: Progress) -> None:
        self.store, self.cfg, self.ex, self.prog = store, cfg, ex, prog
        # Failures waiting for a shrink, with the count of findings filed when each was last
        # matched against them: one filed since may cover it, and then it needs no shrink.
        self.queued: deque[tuple[Case, Verdict, int]] = deque()
        self.shrinking: dict[Future[Any], tuple[Case, Verdict]] = {}

    def note(self, fid: str, new: bool, case: Case) -> None:
        prog = self.prog
        prog.findings += new
        prog.duplicates += not new
        if new:
            f = self.store.get_finding(fid)
            minimal = f.ops if f else case.ops
            chain = " → ".join(o.split("::")[-1] for o in minimal)
            v = f.judged if f else None
            where = f"{v.target} {v.key}" if v else ""
            prog.finding_lines.append(f"{fid[:8]} {where}: {chain}")

    def launch(self) -> None:
        """Start queued shrinks up to the parallelism of the phase. A failure that fails the
        way one being shrunk does waits for that finding (it most likely repeats it), so
        the parallel slots go to different bugs."""
        busy = {failure_key(v) for _, v in self.shrinking.values()}
        waiting: list[tuple[Case, Verdict, int]] = []
        while self.queued and len(self.shrinking) < self.prog.shrinks_parallel:
            case, v, matched_at = self.queued.popleft()
            if failure_key(v) in busy:
                waiting.append((case, v, matched_at))
                continue
            filed = (file_without_shrink(self.store, case, v, self.cfg)
                     if self.prog.findings > matched_at else None)
            if filed is not None:
                self.note(*filed, case)
                continue
            fut = self.ex.shrink(case, v, Budget(self.cfg.seconds, self.cfg.calls))
            self.shrinking[fut] = (case, v)
            busy.add(failure_key(v))
        self.queued.extendleft(reversed(waiting))  # first come, first shrunk
        self.prog.shrinks_running = len(self.shrinking)
        self.prog.shrinks_left = len(self.queued) + len(self.shrinking)

    def file(self, case: Case, v: Verdict) -> None:
        filed = file_without_shrink(self.store, case, v, self.cfg)
        if filed is not None:
            self.note(*filed, case)
        else:
            self.queued.append((case, v, self.prog.findings))
            self.launch()

    def refile(self) -> None:
        """A stopped campaign's failures that never reached their shrink: filed first, so a
        resume loses none of them (each is in the store already, so it is not counted)."""
        for case, v in self.store.unfiled():
            self.prog.refiled += 1
            self.file(case, v)

    def collect(self) -> None:
        """File the shrinks that have finished (the driver stays the only store writer)."""
        for fut in [f for f in self.shrinking if f.done()]:
            case, v = self.shrinking.pop(fut)
            try:
                small, sv, summary = fut.result()
                how = "shrunk"
            except Exception as e:  # the shrink broke (a lost Dask worker): keep the failure
                small, sv, how = case, v, "unshrunk"
                summary = {"error": f"{type(e).__name__}: {first_line(str(e))}"}
            self.note(*self.store.add_finding(case, v, small, sv, summary, how=how), case)
        self.launch()


class Campaign:
    """One run of a campaign: feed jobs of the Case stream to the executor, record each
    Case's verdicts (the store first, then progress, coverage and the listener), file each
    failure (through a Filing). Case i is generated where it runs (a local thread or a Dask
    worker); the driver alone writes the store, committing each Case's verdicts before
    showing them."""

    def __init__(self, cfg: CampaignConfig, store: Store | None = None,
                 listener: Listener | None = None, stop: threading.Event | None = None) -> None:
        self.cfg, self.store, self.listener = cfg, store, listener
        self.stop = stop or threading.Event()
        self.prog = Progress()
        self.start = store.max_seq() + 1 if store is not None else 0
        self.next = self.start  # the stream index of the next Case to submit
        self.ex = make_executor(cfg)
        self.cov = Architectural.load(cfg.gen.seeds) if cfg.coverage else None
        self.filing = (Filing(store, cfg.shrink, self.ex, self.prog)
                       if store is not None and cfg.shrink is not None else None)
        self.deadline = None if cfg.seconds is None else time.time() + cfg.seconds
        self.pending: set[Future[Result]] = set()
        # Two jobs a worker: the next one waits in the executor's queue, so a worker never
        # idles while the driver records the last one's Cases.
        self.depth = 2 * self.ex.workers
        self.prog.workers = self.ex.workers
        self.packs = pack_sizes(cfg)
        self.batch = max([cfg.batch, *self.packs.values()])

    # -- feed -------------------------------------------------------------------------------
    def more(self) -> bool:
        if self.stop.is_set() or (self.deadline is not None and time.time() >= self.deadline):
            return False
        return self.cfg.cases is None or self.next < self.start + self.cfg.cases

    def feed(self) -> None:
        """Keep `depth` jobs of `batch` Cases submitted while the budget lasts."""
        cfg = self.cfg
        while self.more() and len(self.pending) < self.depth:
            members = []
            while self.more() and len(members) < self.batch:
                seed_i = case_seed(cfg.seed, self.next)
                members.append((self.next, seed_i, targets_for(cfg, seed_i)))
                self.next += 1
            self.pending.add(self.ex.submit(job(members, cfg.sampler, cfg.vocab, cfg.gen,
                                                cfg.limits, self.packs, cfg.share,
                                                cfg.adaptive and cfg.pack is None)))

    # -- record -----------------------------------------------------------------------------
    def record(self, finished: list[Result]) -> None:
        prog = self.prog
        results = [r for res in finished for r in decode(res)]
        for res in finished:
            for _i, error in skipped(res):  # a generator bug costs its Case, not the run
                prog.skipped += 1
                prog.skip_error = error
        if self.store is not None:
            for _seq, case, verdicts in results:
                prog.missed += self.store.add_missed(case, fusions.missed(verdicts))
            self.store.record_many(results)  # committed before any of it is shown
        for _seq, case, verdicts in results:
            prog.cases += 1
            for v in verdicts:
                prog.fusions.update(fusions.verdict_fusions(v))
            if self.cov is not None:
                self.cov.add(case_ngrams(case))
                prog.coverage = self.cov.report()
            bugs = [v for v in verdicts if v.outcome == Outcome.BUG]
            for v in verdicts:
                prog.verdicts[v.key] += 1
            prog.charge(verdicts)
            prog.failures.extend((case, v) for v in bugs)
            if self.listener:  # before the shrink: the failure shows at once
                self.listener(prog, case, verdicts)
            if self.filing is not None:
                for v in bugs:
                    self.filing.file(case, v)

    # -- the loop ---------------------------------------------------------------------------
    def _tail(self) -> bool:
        """The budget is spent: wait for the shrinks left. False once none is left."""
        prog, filing = self.prog, self.filing
        if prog.generated is None:
            prog.generated = time.time()
            prog.shrinks_parallel = self.ex.end_generation()
            if filing is not None:
                filing.launch()
        if filing is None or not filing.shrinking:
            return False
        wait(list(filing.shrinking), timeout=0.5, return_when=FIRST_COMPLETED)
        if self.listener:
            self.listener(prog, None, [])
        return True

    def run(self) -> Progress:
        """Generate, execute, record, shrink and file until the time or Case budget runs out
        or `stop` is set."""
        try:
            if self.filing is not None:
                self.filing.refile()
            while True:
                self.feed()
                if self.filing is not None and self.filing.shrinking:
                    self.filing.collect()
                if not self.pending:  # the budget is spent: only the shrink tail is left
                    if not self._tail():
                        break
                    continue
                done, _ = wait(self.pending, timeout=0.5, return_when=FIRST_COMPLETED)
                self.pending.difference_update(done)
                self.feed()
                self.record([fut.result() for fut in done])
        finally:
            self.stop.set()
            # After a normal end every shrink has been filed; on Ctrl-C an unfinished shrink
            # is dropped (its failing verdict is already in the store, and a resume files it).
            self.ex.close()
            if self.store is not None and self.cov is not None and self.store.failed is None:
                self.store.set_meta("coverage",
                                    {str(n): c for n, c in self.cov.report().items()})
        return self.prog


def run_campaign(cfg: CampaignConfig, store: Store | None = None,
                 listener: Listener | None = None,
                 stop: threading.Event | None = None) -> Progress:
    """Generate, execute, record, shrink and file until the time or Case budget runs out or
    `stop` is set (a Campaign, run once)."""
    return Campaign(cfg, store, listener, stop).run()

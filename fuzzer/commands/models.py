"""`convfuzz models`: whole mined architectures, built from configs, converted and judged."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.live import Live
from rich.table import Table

from fuzzer.commands.common import (
    MemoryOpt,
    TargetOpt,
    app,
    bad_input,
    guarded,
    out,
    seeds_option,
    target_names,
)

HEADERS = {"correct": "converted correctly", "wrong_values": "wrong values",
           "invalid_model": "invalid model", "crash": "crash", "unsupported": "unsupported",
           "build_failed": "build failed", "harness_error": "harness error"}


LEGEND = ("wrong values: also wrong shapes, dtypes, NaN/Inf; crash: also hang, worker death, "
          "out of memory; build failed: torch could not build or run it as mining did; "
          "failing: wrong values + invalid model + crash")


def _dashboard(prog: Any, n_archs: int) -> Table:
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.models import CLASSES

    t = Table(title="convfuzz models", show_header=False, min_width=60)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    left = prog.total - prog.skipped - prog.done
    t.add_row("architectures", f"{n_archs}  ({prog.done} verdict(s) this run, {left} to go, "
              f"{prog.skipped} recorded before; {60 * prog.rate:.1f}/min)")
    for target, c in sorted(prog.by_target.items()):
        t.add_row(target, "  ".join(f"{HEADERS[k]} {c[k]}" for k in CLASSES if c.get(k)))
    if prog.running:
        t.add_row("running", ", ".join(sorted(prog.running.values())))
    for line in list(prog.failures)[-6:]:
        t.add_row("[red]failure[/red]", line)
    return t


def summary_table(sums: list[Any], title: str) -> Table:
    """Classes down, targets across (any number of targets fits 80 columns)."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.arch_campaign import share
    from fuzzer.models import CLASSES

    shown = [c for c in CLASSES if c != "harness_error" or any(s.counts[c] for s in sums)]
    t = Table(title=title, box=box.SIMPLE_HEAD)
    t.add_column("architectures")
    for s in sums:
        t.add_column(s.target, justify="right")
    for c in shown:
        t.add_row(HEADERS[c], *(str(s.counts[c]) for s in sums))
    t.add_section()
    t.add_row("wrong values / converted",
              *(f"{share(s.counts['wrong_values'], s.converted)} of {s.converted}"
                for s in sums))
    t.add_row("failing / built", *(f"{share(s.failing, s.built)} of {s.built}" for s in sums))
    return t


@app.command()
@guarded
def models(arch: Annotated[list[str] | None, typer.Option(
               "--arch", help="Only this mined architecture (bert or transformers:bert); "
               "repeatable.")] = None,
           modality: Annotated[list[str] | None, typer.Option(
               "--modality", help="Only architectures of this modality (text, vision, audio, "
               "multimodal, other); repeatable.")] = None,
           limit: Annotated[int | None, typer.Option(
               "--limit", min=1, help="A random sample of this many (fixed by --seed).")]
           = None,
           seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit sample.")] = 0,
           target: TargetOpt = None,
           seeds_dir: seeds_option("archs.json: the architectures mining traced") = None,
           out_dir: Annotated[Path, typer.Option(
               "--out", help="Store directory (the same store as `fuzz`; architecture "
               "verdicts go in its arch_verdicts table).")] = Path("runs/models"),
           workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                                help="Worker processes run in parallel.")] = 1,
           resume: Annotated[Path | None, typer.Option(
               "--resume", help="Continue the `models` run stored in this directory with its "
               "settings, skipping the architecture x target verdicts it recorded.")] = None,
           timeout: Annotated[float, typer.Option(
               "--timeout", help="Seconds one architecture may take on one target (build, "
               "export, run, judge) before it is a `hang`.")] = 300.0,
           memory_mb: MemoryOpt = 4096) -> None:
    """Convert whole mined architectures: build each from its tiny config exactly as mining
    did (random weights, no download), run it in torch eager (fp32 and fp64), export it with
    every target, run it and judge it with the oracle's rules; one verdict per architecture x
    target in the store, then a summary per target. `--resume DIR` continues a stopped run."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import arch_campaign as ac
    from fuzzer import arch_rows
    from fuzzer.generate import default_seeds
    from fuzzer.store import Store

    try:
        if resume is not None:
            ro = Store(resume, readonly=True)
            try:
                cfg = ac.ModelsConfig.saved(ro)
            finally:
                ro.close()
            cfg.workers = workers
            out_dir = resume
        else:
            cfg = ac.ModelsConfig(targets=target_names(target),
                                  seeds=str(seeds_dir or default_seeds()), archs=arch,
                                  modalities=modality, limit=limit, seed=seed,
                                  workers=workers, timeout=timeout, memory_mb=memory_mb)
        archs = ac.select(ac.load_archs(Path(cfg.seeds)), cfg.archs, cfg.modalities,
                          cfg.limit, cfg.seed)
        ac.check_sources(archs)
    except ac.ModelsError as e:
        raise bad_input(str(e)) from None
    if not archs:
        raise bad_input("no mined architecture matches the selection")
    store = Store(out_dir)
    try:
        cfg.save(store)
        stop = threading.Event()
        prog = ac.Progress(total=len(archs) * len(cfg.targets))
        with Live(_dashboard(prog, len(archs)), console=out, refresh_per_second=4,
                  transient=not out.is_terminal) as live:
            try:
                prog = ac.run(cfg, archs, store,
                              lambda p: live.update(_dashboard(p, len(archs))), stop)
            except KeyboardInterrupt:
                stop.set()
                out.print("[yellow]interrupted: every verdict shown is in the store; "
                          f"`convfuzz models --resume {store.root}` continues[/yellow]")
        out.print(_dashboard(prog, len(archs)))
        names = {a.name for a in archs}
        sums = ac.summarize(arch_rows.rows(store), cfg.targets, names)
        out.print(summary_table(sums, f"{len(archs)} mined architectures, per target"))
        out.print(LEGEND, highlight=False)
        failing = [r for r in arch_rows.rows(store) if r.arch in names and r.failed]
        for r in failing:
            v = r.verdict
            out.print(f"  [red]{r.arch}[/red]  {r.target}  {r.cls}: {v.key} "
                      f"({v.attribution.value})  {v.detail[:160]}", highlight=False)
        out.print(f"store: {store.root}  ({len(arch_rows.rows(store))} architecture "
                  "verdict(s) in all)")
    finally:
        store.close()

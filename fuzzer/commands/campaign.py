"""Commands for campaigns and what feeds or reads them: fuzz, mine, analyze."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from fuzzer import storage
from fuzzer.commands.common import (
    MemoryOpt,
    TargetOpt,
    TimeoutOpt,
    app,
    err,
    guarded,
    out,
    seeds_option,
)


def _dashboard(prog: Any, targets: list[str], seconds: float | None) -> Table:
    t = Table(title="convfuzz campaign", show_header=False, min_width=60)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("cases", f"{prog.cases}  ({prog.rate:.2f}/s)")
    t.add_row("targets", ", ".join(targets))
    if len(prog.families) > 1:
        t.add_row("Cases/s by family", "  ".join(
            f"{fam} {n / prog.elapsed:.2f}" for fam, n in prog.families.most_common()))
    if prog.busy:
        worker_time = prog.elapsed * prog.workers
        t.add_row("worker time in", "  ".join(
            f"{name} {100 * s / worker_time:.0f}%" for name, s in prog.busy.most_common(6)))
    for key, n in sorted(prog.verdicts.items(), key=lambda kv: -kv[1]):
        style = "green" if key == "pass" else ("yellow" if key in ("invalid", "unsupported")
                                               or "unsupported" in key else "red")
        t.add_row(f"[{style}]{key}[/{style}]", str(n))
    if prog.coverage:
        t.add_row("arch. coverage", "  ".join(
            f"{n}-grams {c['exercised']}/{c['mined']} ({100 * c['share']:.1f}%)"
            for n, c in sorted(prog.coverage.items())))
    if prog.fusions:
        # on use: `convfuzz --help` and bad flags stay fast (no torch)
        from fuzzer.fusions import summary

        cov = summary([prog.fusions])
        t.add_row("fusions fired", f"{cov['k']} of {cov['K']} known"
                  + (f"; {prog.missed} missed fusion(s)" if prog.missed else ""))
    if prog.skipped:
        t.add_row("[yellow]not generated[/yellow]", f"{prog.skipped} (convfuzz's generator "
                  f"failed: {prog.skip_error})")
    t.add_row("findings", f"{prog.findings} new, {prog.duplicates} duplicate failure(s)")
    if prog.shrinks_left:
        phase = "the budget is spent; " if prog.generated else ""
        t.add_row("[yellow]shrinking[/yellow]", f"{phase}{prog.shrinks_left} failure(s) left, "
                  f"{prog.shrinks_running} running")
    for line in prog.finding_lines[-8:]:
        t.add_row("[red]finding[/red]", line)
    if not prog.finding_lines:
        for case, v in list(prog.failures)[-3:]:
            t.add_row("[red]failure[/red]", f"{v.target} {v.key}: {' → '.join(case.ops)}")
    return t


@app.command()
@guarded
def fuzz(seconds: Annotated[float, typer.Option(
             "--time", help="Generate Cases for this many seconds; the failures found by then "
             "are still shrunk (each for at most --shrink-time, several at a time).")] = 60.0,
         cases: Annotated[int | None, typer.Option("--cases", help="Stop after this many Cases "
                                                   "(whichever limit comes first).")] = None,
         seed: Annotated[int, typer.Option("--seed", help="Campaign seed: same seed, same "
                                           "stream of Cases.")] = 0,
         target: TargetOpt = None,
         out_dir: Annotated[Path | None, typer.Option(
             "--out", help="Store directory: SQLite with every Case and verdict, and a "
             "folder per finding. Default: `runs/<seed>`.")] = None,
         workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                              help="Worker processes run in parallel.")] = 1,
         max_len: Annotated[int, typer.Option("--max-len", min=1, help="Longest operator "
                                              "chain generated.")] = 6,
         nondefault: Annotated[float, typer.Option("--nondefault", min=0.0, max=1.0, help=
                                                   "Share of keyword arguments drawn away from "
                                                   "their defaults.")] = 0.3,
         source: Annotated[str, typer.Option(
             "--source", help="Where operator chains come from: real (walks of the mined "
             "n-grams in seeds/), random (uniform over the same vocabulary: the control arm), "
             "mixed (half each), mutate (small edits of corpus Cases) or motif (mined "
             "multi-operator blocks of seeds/motifs.json - RMSNorm, GELU-tanh, rotary, "
             "SwiGLU... - with their constants and shared inputs, at new sizes; see "
             "--near-miss) or motif-splice (a motif inside a real chain).")] = "real",
         near_miss: Annotated[float, typer.Option(
             "--near-miss", min=0.0, max=1.0, help="motif sources only: share of Cases with "
             "exactly one precondition of the block changed (an axis, keepdim, a constant, "
             "where eps is added, the dtype, a broadcast shape, a dynamic dim). A fusion that "
             "still fires on a near miss is a rewriter bug.")] = 0.3,
         seeds_dir: seeds_option("the n-grams the real arm walks") = None,
         vocabulary_: Annotated[str, typer.Option(
             "--vocabulary", help="Operators the random arm draws from: mined (the real arm's "
             "vocabulary, the fair control) or catalogue (every operator convfuzz knows).")
         ] = "mined",
         dynamic: Annotated[float, typer.Option("--dynamic", min=0.0, max=1.0, help=
                                                "Share of Cases exported with a dynamic batch "
                                                "dim and also run at other batch sizes.")] = 0.1,
         op: Annotated[list[str] | None, typer.Option("--op", help="Restrict the vocabulary to "
                                                      "these operators (repeatable).")] = None,
         shrink: Annotated[bool, typer.Option(
             "--shrink/--no-shrink", help="Shrink each new failure before filing it as a "
             "finding (deduplicated by the signature of the shrunk Case).")] = True,
         shrink_time: Annotated[float, typer.Option(
             "--shrink-time", min=0.0, help="Seconds one failure may be shrunk for; the "
             "smallest Case so far is kept.")] = 60.0,
         shrink_calls: Annotated[int, typer.Option(
             "--shrink-calls", min=1, help="Target runs one shrink may use.")] = 200,
         scheduler: Annotated[str | None, typer.Option(
             "--scheduler", help="tcp://HOST:PORT of a Dask scheduler: run the Cases and the "
             "shrinks on its workers (the driver still writes the store). Default: local "
             "worker processes."
             )] = None,
         pack: Annotated[int | None, typer.Option(
             "--pack", min=1, help="Cases exported as one packed model (members judged on "
             "their own values; a member the pack cannot clear is judged alone). Default: "
             "each slow converter's pack size follows its measured cost (dynamo, "
             "ExecuTorch, LiteRT, ov-pt; TorchScript none); 1 never packs.")] = None,
         adaptive: Annotated[bool, typer.Option(
             "--adaptive-pack/--fixed-pack", help="Size each slow converter's packs by its "
             "measured cost per export and failure rate (up to 32 Cases), or pack its fixed "
             "number (the dynamo exporter's 8).")] = True,
         share: Annotated[bool, typer.Option(
             "--share/--no-share", help="Targets with one exporter share its export (and "
             "common passes): once per Case or pack, not once a target.")] = True,
         resume: Annotated[Path | None, typer.Option(
             "--resume", help="Continue the campaign stored in this directory: its settings, "
             "its seed stream from where it stopped, its findings.")] = None,
         timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run a fuzz campaign: generate Cases, convert and execute them on every target, judge,
    record every verdict in the store, shrink each new failure and file it as a finding.
    Ctrl-C stops cleanly; `--resume DIR` picks up where a stopped (or killed) campaign left."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.campaign import CampaignConfig, Progress, ShrinkConfig, run_campaign
    from fuzzer.sandbox import Limits
    from fuzzer.storage import backup_path
    from fuzzer.store import Store

    run: dict[str, Any] = dict(
        seconds=seconds, cases=cases, workers=workers, scheduler=scheduler,
        limits=Limits(timeout=timeout, memory_mb=memory_mb),
        shrink=ShrinkConfig(shrink, shrink_time, shrink_calls), share=share,
        adaptive=adaptive)
    if resume is not None:  # the stored campaign's settings, this run's budget and limits
        cfg = CampaignConfig.resumed(resume, **run)
    else:
        cfg = CampaignConfig.from_options(
            seed=seed, targets=target, sampler=source, vocab=op, max_len=max_len,
            nondefault=nondefault, dynamic=dynamic, seeds=seeds_dir, vocabulary=vocabulary_,
            pack=pack, near_miss=near_miss, **run)
    names = list(cfg.targets)
    store = Store(resume or out_dir or Path("runs") / str(cfg.seed))
    try:  # the store's lock and connection go however the campaign ends
        if store.migrated_from is not None:
            out.print(f"migrated {store.root} from store schema {store.migrated_from} (backup: "
                      f"{backup_path(store.root, store.migrated_from).name})")
        cfg.save(store)
        if resume is not None:
            out.print(f"resuming {store.root}: {store.n_cases()} cases recorded, continuing at "
                      f"case {store.max_seq() + 1}")
        stop = threading.Event()
        prog = Progress()
        with Live(_dashboard(prog, names, seconds), console=out, refresh_per_second=4,
                  transient=not out.is_terminal) as live:
            def listen(p: Any, case: Any, verdicts: Any) -> None:
                live.update(_dashboard(p, names, seconds))
            try:
                prog = run_campaign(cfg, store, listen, stop)
            except KeyboardInterrupt:
                stop.set()
                out.print("[yellow]interrupted: everything recorded so far is in the store; "
                          f"`convfuzz fuzz --resume {store.root}` files the failures not yet "
                          "shrunk[/yellow]")
        out.print(_dashboard(prog, names, seconds))
        if prog.refiled:
            out.print(f"{prog.refiled} failure(s) the stopped campaign had recorded but not yet "
                      "shrunk were filed first")
        out.print(f"store: {store.root}  ({store.n_cases()} cases in all)")
        out.print(f"findings: {prog.findings} new, {prog.duplicates} failure(s) filed under known "
                  f"ones; {len(store.findings())} in the store (convfuzz corpus list --store "
                  f"{store.root})")
    finally:
        store.close()


@app.command()
@guarded
def mine(source: Annotated[list[str] | None, typer.Option(
             "--source", help="transformers (every model type, built from tiny configs), or "
             "transformers:bert,gpt2 for some; torchvision / timm when installed.")] = None,
         out_dir: Annotated[Path, typer.Option("--out", help="Seeds directory to write.")]
         = Path("seeds"),
         limit: Annotated[int | None, typer.Option("--limit", help="At most this many "
                                                   "architectures per source.")] = None) -> None:
    """Mine operator n-grams (n = 1..4, along data flow) and attribute values from real
    architectures built from configs (no weights, no download) into a seeds directory."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.mine import mine as run_mine

    def progress(name: str, status: str) -> None:
        err.print(f"{status:9} {name}", highlight=False)

    cmd = " ".join(["convfuzz mine", *(f"--source {s}" for s in source or []),
                    f"--out {out_dir}", *([f"--limit {limit}"] if limit else [])])
    r = run_mine(source, out_dir, limit, progress, command=cmd)
    out.print(f"mined {r.ok} architectures ({r.fallback} by fallback tracing, {r.failed} "
              f"failed) into {out_dir}: {r.distinct_ops} operators, n-grams {r.ngrams}, "
              f"{r.motifs} motifs")


@app.command()
@guarded
def analyze(stores: Annotated[list[Path], typer.Argument(
                help=f"Campaign store directories (each holds {storage.DB}).",
                show_default=False)],
            out_dir: Annotated[Path, typer.Option(
                "--out", help="Directory for report.md/.html/.json and the PNG plots.")]
            = Path("analysis"),
            seeds: seeds_option("for the real-world exposure of each minimized failure")
            = None,
            markdown: Annotated[Path | None, typer.Option(
                "--markdown", help="Also write the markdown report here, image links made "
                "relative to it (e.g. docs/results.md).")] = None,
            note: Annotated[str | None, typer.Option(
                "--note", help="A paragraph put at the top of the report (e.g. the budget).")]
            = None,
            min_support: Annotated[int, typer.Option(
                "--min-support", min=1, help="Test only n-grams present in at least this many "
                "Cases.")] = 3) -> None:
    """Statistics over campaign stores: failure rates of the real and random arms with 95%
    CIs and tests, n-gram enrichment (Fisher + Benjamini–Hochberg), real-world exposure of
    minimized failures, the stage x symptom taxonomy beside the paper's; plots and a report."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.analysis_report import analyze as run_analysis
    from fuzzer.analyze import ANY, ARMS
    from fuzzer.generate import default_seeds
    from fuzzer.plots import Q, conclusion, fmt, fmt_p, rate_cell

    if seeds is None and (default_seeds() / "ngrams.json").is_file():
        seeds = default_seeds()
    rep = run_analysis(stores, out_dir, seeds, min_support, markdown, note)
    arms = sorted(rep.arms, key=lambda a: (ARMS.index(a) if a in ARMS else len(ARMS), a))
    t = Table(title="failure rates (Case level, any target; 95% Wilson CI)")
    for col in ("class", *arms, "p (real vs random)"):
        t.add_column(col, overflow="fold")
    by = {(r.arm, r.cls): r for r in rep.rates if r.target == "all"}
    tests = {c.cls: c for c in rep.comparisons if c.target == "all"}
    for cls in dict.fromkeys(r.cls for r in rep.rates if r.target == "all"):
        t.add_row(cls, *(rate_cell(by[a, cls]) if (a, cls) in by else "—" for a in arms),
                  fmt_p(tests[cls].p) if cls in tests else "—",
                  style="bold" if cls == ANY else None)
    out.print(t)
    if not all(a in rep.arms for a in ARMS):
        out.print(f"[yellow]only {', '.join(rep.arms) or 'no'} arm(s): no real-vs-random "
                  "test[/yellow]")
    out.print(conclusion(rep))
    sig = [e for e in rep.enrich_raw if e.q < Q]
    out.print(f"n-grams: {len(rep.enrich_raw)} tested, {len(sig)} at q < {Q}"
              + "".join(f"\n  {e.label}  OR {fmt(e.odds_ratio)}  q {fmt_p(e.q)}"
                        for e in sig[:5]))
    if rep.findings_by_arm is None:
        out.print("minimized failures: none in these stores")
    else:
        n = sum(rep.findings_by_arm.values())
        expo = ("" if rep.exposure is None else f"; {sum(bool(e.archs) for e in rep.exposure)} "
                "occur in mined architectures")
        out.print(f"minimized failures: {n}{expo}")
    if rep.archs is not None:
        for t in rep.archs.targets:
            out.print(f"architectures on {t.target}: {t.failing} of {t.built} built fail "
                      f"({fmt(100 * t.share, 1)}%; {t.counts.get('correct', 0)} correct)",
                      highlight=False)
        sig_a = [e for e in rep.archs.enrich if e.q < Q]
        out.print(f"architecture n-grams: {len(rep.archs.enrich)} tested ({len(rep.archs.failing)}"
                  f" failing vs {len(rep.archs.passing)} passing architectures), "
                  f"{len(sig_a)} at q < {Q}", highlight=False)
    out.print(f"report: {rep.files['markdown']}  (also .html, .json and "
              f"{sum(k not in ('markdown', 'html', 'json', 'markdown_copy') for k in rep.files)} "
              "PNG plots)")

"""The `convfuzz` command line: parse, call, print. Bad input is one line on stderr and exit
code 2; a failing verdict is exit code 1."""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="convfuzz: an operator-sequence fuzzer for PyTorch -> ONNX converters "
                       "(both torch.onnx exporters) and ONNX Runtime.")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", "-t", help="Target chain, e.g. torchscript-17/ort-all or dynamo/ref; repeat for "
    "several (default: torchscript-17/ort-all and dynamo/ort-all). See `convfuzz targets`.")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", help="Seconds one Case may take on one target before it is a `hang`.")]
MemoryOpt = Annotated[int, typer.Option(
    "--memory-mb", help="Resident memory (MB) a worker may add before it is `out_of_memory`.")]


def bad_input(msg: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def guarded(fn: F) -> F:
    """Map every known kind of bad input to a one-line error and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        from fuzzer.case import CaseError
        from fuzzer.generate import GenerationError
        from fuzzer.store import StoreError
        from fuzzer.targets import TargetError

        try:
            return fn(*a, **kw)
        except (CaseError, TargetError, StoreError, GenerationError) as e:
            raise bad_input(str(e)) from None
        except KeyError as e:  # unknown operator names in --op
            raise bad_input(str(e.args[0]) if e.args else "unknown key") from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise bad_input(f"{e.filename}: {e.strerror}") from None
        except ConnectionError as e:  # e.g. an unreachable Dask scheduler
            raise bad_input(str(e)) from None
    return wrapper  # type: ignore[return-value]


def _targets(names: list[str] | None) -> list[str]:
    from fuzzer.targets import DEFAULT_TARGETS, parse

    return [parse(n).name for n in (names or list(DEFAULT_TARGETS))]


@app.command()
@guarded
def run(case_file: Annotated[Path, typer.Argument(help="A Case JSON file.", show_default=False)],
        target: TargetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the case hash and, per "
                                              "target, target/outcome/stage/symptom/"
                                              "attribution/detail.")] = False,
        timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run one Case through each target and print the verdicts.

    Exit code 0 when every target passes (or the Case is unsupported or invalid in eager),
    1 when some target fails, 2 on bad input."""
    from fuzzer.case import load
    from fuzzer.sandbox import Limits, Sandbox
    from fuzzer.verdict import Outcome

    case = load(case_file)
    names = _targets(target)
    with Sandbox(Limits(timeout=timeout, memory_mb=memory_mb)) as sb:
        verdicts = [sb.run(case, t) for t in names]
    if as_json:
        print(json.dumps({"case": case.hash, "verdicts": [
            {k: v.to_dict()[k] for k in ("target", "outcome", "stage", "symptom", "attribution",
                                          "detail")} for v in verdicts]}, indent=2))
    else:
        table = Table(title=f"case {case.hash}  ({' → '.join(case.ops)})")
        for col in ("target", "outcome", "stage/symptom", "attribution", "detail"):
            table.add_column(col, overflow="fold")
        for v in verdicts:
            style = {"pass": "green", "bug": "red"}.get(v.outcome.value, "yellow")
            table.add_row(v.target, f"[{style}]{v.outcome.value}[/{style}]",
                          v.key if v.stage else "", v.attribution.value, v.detail[:160])
        out.print(table)
    raise typer.Exit(1 if any(v.outcome == Outcome.BUG for v in verdicts) else 0)


def _dashboard(prog: Any, targets: list[str], seconds: float | None) -> Table:
    t = Table(title="convfuzz campaign", show_header=False, min_width=60)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("cases", f"{prog.cases}  ({prog.rate:.2f}/s)")
    t.add_row("targets", ", ".join(targets))
    for key, n in sorted(prog.verdicts.items(), key=lambda kv: -kv[1]):
        style = "green" if key == "pass" else ("yellow" if key in ("invalid", "unsupported")
                                               or "unsupported" in key else "red")
        t.add_row(f"[{style}]{key}[/{style}]", str(n))
    if prog.coverage:
        t.add_row("arch. coverage", "  ".join(
            f"{n}-grams {c['exercised']}/{c['mined']} ({100 * c['share']:.1f}%)"
            for n, c in sorted(prog.coverage.items())))
    t.add_row("findings", f"{prog.findings} new, {prog.duplicates} duplicate failure(s)")
    for line in prog.finding_lines[-8:]:
        t.add_row("[red]finding[/red]", line)
    if not prog.finding_lines:
        for case, v in prog.failures[-3:]:
            t.add_row("[red]failure[/red]", f"{v.target} {v.key}: {' → '.join(case.ops)}")
    return t


def _saved_config(store_dir: Path) -> dict[str, Any]:
    from fuzzer.store import Store, StoreError

    if not (store_dir / "store.sqlite").is_file():
        raise StoreError(f"{store_dir}: no campaign store to resume")
    st = Store(store_dir)
    try:
        saved = st.get_meta("config")
    finally:
        st.close()
    if not saved:
        raise StoreError(f"{store_dir}: the store has no campaign settings to resume")
    return dict(saved)


@app.command()
@guarded
def fuzz(seconds: Annotated[float, typer.Option("--time", help="Stop after this many seconds.")]
         = 60.0,
         cases: Annotated[int | None, typer.Option("--cases", help="Stop after this many Cases "
                                                   "(whichever limit comes first).")] = None,
         seed: Annotated[int, typer.Option("--seed", help="Campaign seed: same seed, same "
                                           "stream of Cases.")] = 0,
         target: TargetOpt = None,
         out_dir: Annotated[Path | None, typer.Option(
             "--out", help="Store directory (SQLite store + one folder per failing Case). "
             "Default: runs/<seed>.")] = None,
         workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                              help="Worker processes run in parallel.")] = 1,
         max_len: Annotated[int, typer.Option("--max-len", min=1, help="Longest operator "
                                              "chain generated.")] = 6,
         nondefault: Annotated[float, typer.Option("--nondefault", min=0.0, max=1.0, help=
                                                   "Share of keyword arguments drawn away from "
                                                   "their defaults.")] = 0.3,
         source: Annotated[str, typer.Option(
             "--source", help="Where operator chains come from: real (walks of the mined "
             "n-grams in seeds/), random (uniform over the same vocabulary: the control arm) "
             "or mixed (half each).")] = "real",
         seeds_dir: Annotated[Path | None, typer.Option(
             "--seeds", help="Mined seeds directory for the real arm (default: the repo's "
             "seeds/).")] = None,
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
             "--scheduler", help="tcp://HOST:PORT of a Dask scheduler: run the Cases on its "
             "workers (the driver still writes the store). Default: local worker processes."
             )] = None,
         resume: Annotated[Path | None, typer.Option(
             "--resume", help="Continue the campaign stored in this directory: its settings, "
             "its seed stream from where it stopped, its findings.")] = None,
         timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run a fuzz campaign: generate Cases, convert and execute them on every target, judge,
    record every verdict in the store, shrink each new failure and file it as a finding.
    Ctrl-C stops cleanly; `--resume DIR` picks up where a stopped (or killed) campaign left."""
    from fuzzer.campaign import CampaignConfig, ShrinkConfig, run_campaign
    from fuzzer.generate import SAMPLERS, GenConfig, GenerationError, vocabulary
    from fuzzer.sandbox import Limits
    from fuzzer.store import Store

    if resume is not None:
        saved = _saved_config(resume)
        seed, target, source, op = saved["seed"], saved["targets"], saved["sampler"], \
            saved.get("vocab")
        max_len, nondefault, dynamic = saved["max_len"], saved["nondefault"], saved["dynamic"]
        seeds_dir = Path(saved["seeds"]) if saved.get("seeds") else None
        out_dir = resume
    if source not in SAMPLERS:
        raise GenerationError(f"unknown source {source!r} (one of {', '.join(SAMPLERS)})")
    names = _targets(target)
    vocab = vocabulary(op) if op else None
    gen = GenConfig(max_len=max_len, nondefault=nondefault, dynamic=dynamic,
                    seeds=str(seeds_dir or ""))
    SAMPLERS[source](0, vocab, gen)  # fails fast (exit 2) on missing seeds or a bad vocabulary
    store = Store(out_dir or Path("runs") / str(seed))
    cfg = CampaignConfig(seed=seed, seconds=seconds, cases=cases, targets=names,
                         workers=workers, vocab=vocab, gen=gen, sampler=source,
                         limits=Limits(timeout=timeout, memory_mb=memory_mb),
                         shrink=ShrinkConfig(shrink, shrink_time, shrink_calls),
                         scheduler=scheduler)
    store.set_meta("config", {"seed": seed, "targets": names, "sampler": cfg.sampler,
                              "max_len": max_len, "nondefault": nondefault,
                              "dynamic": dynamic, "vocab": vocab, "seeds": gen.seeds})
    if resume is not None:
        out.print(f"resuming {store.root}: {store.n_cases()} cases recorded, continuing at "
                  f"case {store.max_seq() + 1}")
    stop = threading.Event()
    from fuzzer.campaign import Progress

    prog = Progress()
    with Live(_dashboard(prog, names, seconds), console=out, refresh_per_second=4,
              transient=not out.is_terminal) as live:
        def listen(p: Any, case: Any, verdicts: Any) -> None:
            live.update(_dashboard(p, names, seconds))
        try:
            prog = run_campaign(cfg, store, listen, stop)
        except KeyboardInterrupt:
            stop.set()
            out.print("[yellow]interrupted: everything recorded so far is in the store[/yellow]")
    out.print(_dashboard(prog, names, seconds))
    out.print(f"store: {store.root}  ({store.n_cases()} cases in all)")
    out.print(f"findings: {prog.findings} new, {prog.duplicates} failure(s) filed under known "
              f"ones; {len(store.findings())} in the store (convfuzz corpus list --store "
              f"{store.root})")
    store.close()


@app.command()
@guarded
def sweep(case_file: Annotated[Path, typer.Argument(help="A Case JSON file.",
                                                    show_default=False)],
          exporter: Annotated[list[str] | None, typer.Option(
              "--exporter", "-e", help="torchscript (opsets 11-20) and/or dynamo (native 18, "
              "then 17..13 by down-conversion). Default: both.")] = None,
          opset: Annotated[list[int] | None, typer.Option(
              "--opset", help="Only these opsets (repeatable).")] = None,
          runtime: Annotated[str, typer.Option("--runtime", help="Runtime that runs every "
                                               "exported model.")] = "ort-all",
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one verdict per "
                                                "opset plus the grouped summary.")] = False,
          timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run one Case through an exporter at every opset: one verdict per opset, and which
    opsets share each failure. Exit 1 when any opset fails."""
    from fuzzer.case import load
    from fuzzer.sandbox import Limits, Sandbox
    from fuzzer.sweep import summarize, sweep_targets
    from fuzzer.sweep import sweep as run_sweep
    from fuzzer.targets import TargetError, parse
    from fuzzer.verdict import Outcome

    case = load(case_file)
    try:
        names = sweep_targets(exporter or ["torchscript", "dynamo"], runtime, opset)
    except ValueError as e:
        raise TargetError(str(e)) from None
    for n in names:
        parse(n)
    with Sandbox(Limits(timeout=timeout, memory_mb=memory_mb)) as sb:
        verdicts = run_sweep(case, names, sb.run)
    groups = summarize(verdicts)
    if as_json:
        print(json.dumps({"case": case.hash, "verdicts": [v.to_dict() for v in verdicts],
                          "groups": [{"exporter": g.exporter, "verdict": g.key,
                                      "error": g.error, "opsets": g.opsets} for g in groups]},
                         indent=2, default=str))
    else:
        t = Table(title=f"opset sweep of case {case.hash} ({' → '.join(case.ops)})")
        for col in ("exporter", "verdict", "opsets", "detail"):
            t.add_column(col, overflow="fold")
        for g in groups:
            t.add_row(g.exporter, g.key, ", ".join(g.opsets), g.example.detail[:120])
        out.print(t)
    raise typer.Exit(1 if any(v.outcome == Outcome.BUG for v in verdicts) else 0)


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
    from fuzzer.mine import mine as run_mine

    def progress(name: str, status: str) -> None:
        err.print(f"{status:9} {name}", highlight=False)

    cmd = " ".join(["convfuzz mine", *(f"--source {s}" for s in source or []),
                    f"--out {out_dir}", *([f"--limit {limit}"] if limit else [])])
    r = run_mine(source, out_dir, limit, progress, command=cmd)
    out.print(f"mined {r.ok} architectures ({r.fallback} by fallback tracing, {r.failed} "
              f"failed) into {out_dir}: {r.distinct_ops} operators, n-grams {r.ngrams}")


@app.command()
@guarded
def analyze(stores: Annotated[list[Path], typer.Argument(
                help="Campaign store directories (each holds store.sqlite).",
                show_default=False)],
            out_dir: Annotated[Path, typer.Option(
                "--out", help="Directory for report.md/.html/.json and the PNG plots.")]
            = Path("analysis"),
            seeds: Annotated[Path | None, typer.Option(
                "--seeds", help="Mined seeds directory: real-world exposure of each minimized "
                "failure (default: seeds/ when it holds ngrams.json).")] = None,
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
    from fuzzer.analyze import ANY, ARMS
    from fuzzer.analyze import analyze as run_analysis
    from fuzzer.plots import Q, conclusion, fmt, fmt_p, rate_cell

    if seeds is None and (Path("seeds") / "ngrams.json").is_file():
        seeds = Path("seeds")
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
    out.print(f"report: {rep.files['markdown']}  (also .html, .json and "
              f"{sum(k not in ('markdown', 'html', 'json', 'markdown_copy') for k in rep.files)} "
              "PNG plots)")


@app.command()
@guarded
def report(finding: Annotated[str | None, typer.Argument(
               help="Finding id (or unique prefix) in the corpus, or in --store.",
               show_default=False)] = None,
           all_: Annotated[bool, typer.Option("--all", help="Report every finding, with an "
                                              "index.md.")] = False,
           out_dir: Annotated[Path, typer.Option("--out", help="Where report.md and repro.py "
                                                 "go (one folder per finding).")]
           = Path("reports"),
           store_dir: Annotated[Path | None, typer.Option(
               "--store", help="Read findings from this campaign store instead of the "
               "corpus.")] = None,
           seeds_dir: Annotated[Path | None, typer.Option(
               "--seeds", help="Mined seeds, for the real-world exposure line (default: the "
               "repo's seeds/).")] = None,
           checks: Annotated[bool, typer.Option(
               "--checks/--no-checks", help="Run the control and the other-exporter check "
               "(a few sandboxed runs per finding).")] = True,
           timeout: TimeoutOpt = 120.0) -> None:
    """Write a tracker-ready report.md (PyTorch or ONNX Runtime template, by attribution) and a
    standalone, self-checking repro.py for a finding, or for all of them with --all."""
    from fuzzer import corpus
    from fuzzer import report as rep
    from fuzzer.generate import default_seeds
    from fuzzer.sandbox import Limits, Sandbox
    from fuzzer.store import versions

    if (finding is None) == (not all_):
        raise corpus.CorpusError("give a finding id, or --all")
    pool = (corpus.store_entries(store_dir) if store_dir else corpus.entries()) if all_ else [
        corpus.find(finding or "", store_dir)]
    seeds = seeds_dir or default_seeds()
    rows = []
    with Sandbox(Limits(timeout=timeout)) as sb:
        for e in pool:
            v = e.verdict
            ctx = rep.build_context(e.case, v, sb.run if checks else None, seeds, versions())
            md, _ = rep.write(e.case, v, e.id, out_dir / e.id if all_ else out_dir, ctx)
            out.print(f"{e.id}: {md}")
            rows.append({"id": e.id, "target": v.target, "key": v.key,
                         "attribution": v.attribution.value, "ops": e.case.ops})
    if all_:
        (out_dir / "index.md").write_text(rep.index(rows))
        out.print(f"index: {out_dir / 'index.md'} ({len(rows)} reports)")


@app.command("targets")
def list_targets(
        show_all: Annotated[bool, typer.Option("--all", help="Also list fault-injection "
                                               "components used by the tests.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the named target chains and the components they are built from."""
    from fuzzer.targets import NAMED, PATTERNS

    comps = [{"kind": p.kind, "pattern": p.regex.pattern.strip("^$"), "examples": p.examples,
              "help": p.help, "fault": p.fault} for p in PATTERNS if show_all or not p.fault]
    if as_json:
        print(json.dumps({"chains": NAMED, "components": comps}, indent=2))
        return
    t = Table(title="target chains: exporter, optional passes, runtime")
    t.add_column("chain")
    t.add_column("what it runs")
    for name, desc in NAMED.items():
        t.add_row(name, desc)
    out.print(t)
    c = Table(title="components")
    for col in ("kind", "examples", "what"):
        c.add_column(col, overflow="fold")
    for comp in comps:
        c.add_row(comp["kind"] + (" (fault)" if comp["fault"] else ""),
                  ", ".join(comp["examples"]), comp["help"])
    out.print(c)


@app.command("ops")
@guarded
def list_ops(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
             store: Annotated[Path | None, typer.Option(
                 "--store", help="Campaign store directory: add how often each operator was "
                 "exercised and failed, per target.")] = None,
             family: Annotated[str | None, typer.Option(
                 "--family", help="Only operators of this family.")] = None) -> None:
    """List the operator catalogue: family, keyword arguments with defaults and domains,
    dtypes (and, with --store, per-target exercised/failed counts)."""
    from fuzzer.ops import REGISTRY
    from fuzzer.ops.stats import describe, ops_stats

    specs = [s for s in sorted(REGISTRY.values(), key=lambda s: s.name)
             if family is None or s.family == family]
    rows = [describe(s) for s in specs]
    stats = ops_stats(store) if store is not None else None
    if stats is not None:
        for r in rows:
            r["stats"] = stats.get(r["name"], {})
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    t = Table(title=f"{len(rows)} operators")
    cols = ["name", "family", "arguments (default; other values)", "dtypes"]
    for col in cols + (["exercised/failed per target"] if stats is not None else []):
        t.add_column(col, overflow="fold")
    for r in rows:
        args = "; ".join(f"{k}={v['default']!r}" + (f" ({len(v['values']) + len(v['edges'])} "
                                                    "more)" if v["values"] or v["edges"]
                                                    else "") for k, v in r["args"].items())
        cells = [r["name"], r["family"], args, ",".join(r["dtypes"])]
        if stats is not None:
            cells.append(" ".join(f"{tg}:{c['exercised']}/{c['failed']}"
                                  for tg, c in r["stats"].items()))
        t.add_row(*cells)
    out.print(t)


# -- findings: shrink, corpus, repro, triage --------------------------------------------------
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="A campaign store (`convfuzz fuzz --out DIR`): use its findings instead "
    "of the repo corpus.")]
FindingArg = Annotated[str, typer.Argument(help="Finding id (or a unique prefix).",
                                           show_default=False)]
corpus_app = typer.Typer(no_args_is_help=True, help="The corpus of curated findings (or, "
                         "with --store, a campaign's findings).")
app.add_typer(corpus_app, name="corpus")


def _sandbox(timeout: float, memory_mb: int) -> Any:
    from fuzzer.sandbox import Limits, Sandbox

    return Sandbox(Limits(timeout=timeout, memory_mb=memory_mb))


def _rows_table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> Table:
    t = Table(title=title)
    for col in cols:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*(" → ".join(x.removeprefix("aten::") for x in r[c]) if isinstance(r[c], list)
                    else str(r[c]) for c in cols))
    return t


@corpus_app.command("list")
@guarded
def corpus_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON: id, target, "
                                                      "exporter, stage, symptom, attribution, "
                                                      "ops, count.")] = False,
                store: StoreOpt = None) -> None:
    """List the findings: id, target, stage, symptom, attribution, operators, count."""
    from fuzzer import corpus

    rows = [e.row() for e in (corpus.store_entries(store) if store else corpus.entries())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out.print(_rows_table(f"{len(rows)} finding(s) in {store or 'the corpus'}", rows,
                          ["id", "target", "stage", "symptom", "attribution", "ops", "count"]))


@corpus_app.command("show")
@guarded
def corpus_show(fid: FindingArg, store: StoreOpt = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print the metadata and "
                                                      "the minimized Case.")] = False) -> None:
    """Show one finding: its metadata, verdict detail, versions and minimized Case."""
    from fuzzer import corpus

    e = corpus.find(fid, store)
    if as_json:
        print(json.dumps({**e.row(), "meta": e.meta, "case": e.case.to_dict()}, indent=2,
                         default=str))
        return
    info = {**e.row(), "detail": e.meta.get("detail") or e.verdict.detail,
            "versions": ", ".join(f"{k} {v}" for k, v in (e.meta.get("versions") or {}).items()),
            "note": e.meta.get("note", ""), "folder": str(e.where or "")}
    out.print(_rows_table(f"finding {e.id}", [{"field": k, "value": v}
                                              for k, v in info.items() if v != ""],
                          ["field", "value"]))
    print(e.case.to_json())


@corpus_app.command("add")
@guarded
def corpus_add(fid: FindingArg,
               store: Annotated[Path, typer.Option("--store", help="The campaign store.")],
               note: Annotated[str, typer.Option("--note", help="Why this is a real bug "
                                                 "(what the spec or docs say).")] = "",
               name: Annotated[str | None, typer.Option("--name", help="Folder name (default: "
                                                        "exporter-op-symptom-id).")] = None
               ) -> None:
    """Curate a campaign finding into the repo corpus."""
    from fuzzer import corpus

    e = corpus.add(store, fid, note=note, name=name)
    print(f"added {e.id}: {e.target} {e.verdict.key} ({' → '.join(e.case.ops)})")


@app.command("shrink")
@guarded
def shrink_case(what: Annotated[str, typer.Argument(help="A Case JSON file, or a finding id "
                                                    "(its original Case is shrunk).",
                                                    show_default=False)],
                target: TargetOpt = None,
                out_file: Annotated[Path | None, typer.Option(
                    "--out", help="Write the minimized Case here (default: stdout).")] = None,
                store: StoreOpt = None,
                seconds: Annotated[float, typer.Option("--time", min=0.0, help="Shrink "
                                                       "budget in seconds.")] = 120.0,
                calls: Annotated[int, typer.Option("--calls", min=1, help="Shrink budget in "
                                                   "target runs.")] = 300,
                timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Shrink a failing Case to the smallest Case that fails the same way (target family,
    stage, symptom, error class) on the first target where it fails."""
    from fuzzer import corpus
    from fuzzer.case import CaseError, load
    from fuzzer.shrink import Budget, shrink
    from fuzzer.verdict import Outcome

    if Path(what).is_file() or what.endswith(".json") or "/" in what:
        case, names = load(what), _targets(target)
    else:
        e = corpus.find(what, store)
        case, names = e.original or e.case, _targets(target or [e.target])
    with _sandbox(timeout, memory_mb) as sb:
        v = next((v for v in (sb.run(case, t) for t in names) if v.outcome == Outcome.BUG),
                 None)
        if v is None:
            raise CaseError(f"case {case.hash} does not fail on {', '.join(names)}: nothing "
                            "to shrink")
        res = shrink(case, v, lambda c: sb.run(c, v.target), Budget(seconds, calls))
    if out_file:
        out_file.write_text(res.case.to_json() + "\n")
    else:
        print(res.case.to_json())
    err.print(f"{v.target} {v.key}: {len(case.nodes)} → {len(res.case.nodes)} node(s) "
              f"({' → '.join(res.case.ops)}) in {res.seconds:.1f} s, {res.calls} run(s)"
              f"{' (budget exhausted)' if res.exhausted else ''}\n  {res.verdict.detail}",
              highlight=False)


@app.command()
@guarded
def repro(fid: FindingArg, store: StoreOpt = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
          timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Replay one finding's minimized Case on its target with the installed versions.

    Exit code 1 while it still fails, 0 once it is fixed, 2 on bad input."""
    from fuzzer import corpus
    from fuzzer.verdict import Outcome

    e = corpus.find(fid, store)
    with _sandbox(timeout, memory_mb) as sb:
        r = corpus.replay(e, sb.run)
    row = r.row()
    if as_json:
        print(json.dumps(row, indent=2))
    else:
        out.print(f"{e.id}: {r.status} on {e.target} (recorded {row['recorded']}, now "
                  f"{row['now']})\n  {row['detail']}", highlight=False)
    raise typer.Exit(1 if r.verdict.outcome == Outcome.BUG else 0)


@app.command()
@guarded
def triage(as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one row per "
                                                 "finding (id, target, recorded, now, status, "
                                                 "same_versions, detail).")] = False,
           store: StoreOpt = None,
           timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Replay the whole corpus on the installed versions: still failing, fixed or changed.

    Exit code 1 when some finding changed (fails differently or became invalid), else 0."""
    from fuzzer import corpus

    pool = corpus.store_entries(store) if store else corpus.entries()
    with _sandbox(timeout, memory_mb) as sb:
        rows = [corpus.replay(e, sb.run).row() for e in pool]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        out.print(_rows_table(f"triage of {len(rows)} finding(s) on the installed versions",
                              rows, ["id", "target", "recorded", "now", "status"]))
    raise typer.Exit(1 if any(r["status"] == corpus.CHANGED for r in rows) else 0)

def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

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
    for case, v in prog.failures[-5:]:
        t.add_row("[red]failure[/red]", f"{v.target} {v.key}: {' → '.join(case.ops)} — "
                  f"{v.detail[:90]}")
    return t


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
         timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run a fuzz campaign: generate Cases, convert and execute them on every target, judge,
    and record every verdict in the store (failing Cases also as JSON files)."""
    from fuzzer.campaign import CampaignConfig, run_campaign
    from fuzzer.generate import SAMPLERS, GenConfig, GenerationError, vocabulary
    from fuzzer.sandbox import Limits
    from fuzzer.store import Store

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
                         limits=Limits(timeout=timeout, memory_mb=memory_mb))
    store.set_meta("config", {"seed": seed, "targets": names, "sampler": cfg.sampler,
                              "max_len": max_len, "nondefault": nondefault,
                              "dynamic": dynamic})
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
def list_ops(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the operator catalogue: family, keyword arguments with defaults, dtypes."""
    from fuzzer.ops import REGISTRY

    rows = [{"name": s.name, "family": s.family,
             "args": {a.name: a.default for a in s.args}, "dtypes": list(s.dtypes),
             "ranks": list(s.ranks)} for s in sorted(REGISTRY.values(), key=lambda s: s.name)]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    t = Table(title=f"{len(rows)} operators")
    for col in ("name", "family", "arguments (defaults)", "dtypes"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["family"], ", ".join(f"{k}={v!r}" for k, v in r["args"].items()),
                  ",".join(r["dtypes"]))
    out.print(t)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

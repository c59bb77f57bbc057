"""Commands that run or describe single Cases and the tool's vocabulary: run, sweep,
targets, ops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fuzzer.commands.common import (
    MemoryOpt,
    TargetOpt,
    TimeoutOpt,
    app,
    guarded,
    open_sandbox,
    out,
    seeds_option,
    target_names,
)


@app.command()
@guarded
def run(case_file: Annotated[Path, typer.Argument(help="A Case JSON file.", show_default=False)],
        target: TargetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the case hash and, per "
                                              "target, target/outcome/stage/symptom/"
                                              "attribution/detail (and the fusions that "
                                              "fired, the blame).")] = False,
        timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Run one Case through each target and print the verdicts.

    Exit code 0 when every target passes (or the Case is unsupported or invalid in eager),
    1 when some target fails, 2 on bad input."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.case import load
    from fuzzer.verdict import Outcome

    case = load(case_file)
    names = target_names(target)
    with open_sandbox(timeout, memory_mb) as sb:
        verdicts = [sb.run(case, t) for t in names]
    if as_json:
        print(json.dumps({"case": case.hash, "verdicts": [
            {k: v.to_dict()[k] for k in ("target", "outcome", "stage", "symptom", "attribution",
                                          "detail")}
            | ({"fusions": v.evidence["fusions"]} if "fusions" in v.evidence else {})
            | ({"blame": v.evidence["blame"]} if "blame" in v.evidence else {})
            for v in verdicts]}, indent=2))
    else:
        table = Table(title=f"case {case.hash}  ({' → '.join(case.ops)})")
        for col in ("target", "outcome", "stage/symptom", "attribution", "detail"):
            table.add_column(col, overflow="fold")
        for v in verdicts:
            style = {"pass": "green", "bug": "red"}.get(v.outcome.value, "yellow")
            table.add_row(v.target, f"[{style}]{v.outcome.value}[/{style}]",
                          v.key if v.stage else "", v.attribution.value, v.shown_detail[:160])
        out.print(table)
    raise typer.Exit(1 if any(v.outcome == Outcome.BUG for v in verdicts) else 0)



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
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.case import load
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
    with open_sandbox(timeout, memory_mb) as sb:
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
            t.add_row(g.exporter, g.key, ", ".join(g.opsets), g.example.shown_detail[:120])
        out.print(t)
    raise typer.Exit(1 if any(v.outcome == Outcome.BUG for v in verdicts) else 0)



@app.command("targets")
@guarded
def list_targets(
        show_all: Annotated[bool, typer.Option("--all", help="Also list fault-injection "
                                               "components used by the tests.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        store: Annotated[Path | None, typer.Option(
            "--store", help="Instead: how many Cases ran and failed on each target of this "
            "campaign store.")] = None) -> None:
    """List the named target chains and the components they are built from."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.targets import NAMED, PATTERNS

    if store is not None:
        _target_counts(store, as_json)
        return

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
                 "--family", help="Only operators of this family.")] = None,
             coverage: Annotated[bool, typer.Option(
                 "--coverage", help="Instead: the mined operators the catalogue lacks and the "
                 "share of mined occurrences it covers.")] = False,
             seeds_dir: seeds_option("what --coverage measures against") = None) -> None:
    """List the operator catalogue: family, keyword arguments with defaults and domains,
    dtypes (and, with --store, per-target exercised/failed counts)."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.ops import REGISTRY
    from fuzzer.ops.stats import describe, ops_stats

    if coverage:
        _coverage(seeds_dir, as_json)
        return

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


def _coverage(seeds_dir: Path | None, as_json: bool) -> None:
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.coverage import catalogue
    from fuzzer.generate import GenerationError, default_seeds
    from fuzzer.seeds import load_seeds

    path = seeds_dir or default_seeds()
    if not (path / "ops.json").is_file():
        raise GenerationError(f"{path}: no mined seeds here (run `convfuzz mine --out {path}`)")
    cov = catalogue(load_seeds(path).ops)
    if as_json:
        print(json.dumps(cov, indent=2))
        return
    out.print(f"catalogue covers {100 * cov['share']:.1f}% of {cov['occurrences']} mined operator "
              f"occurrences ({cov['operators']} distinct mined operators)")
    t = Table(title="mined operators the catalogue lacks")
    t.add_column("operator")
    t.add_column("occurrences", justify="right")
    for m in cov["missing"][:40]:
        t.add_row(m["op"], str(m["count"]))
    out.print(t)


def _target_counts(store_dir: Path, as_json: bool) -> None:
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.store import Store

    st = Store(store_dir, readonly=True)
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.fusions import summary

    try:
        rows = st.db.execute(
            "SELECT target, COUNT(*), SUM(outcome = 'bug'), SUM(outcome = 'unsupported'), "
            "SUM(outcome = 'invalid') FROM verdicts GROUP BY target ORDER BY target").fetchall()
        fused = st.fusions_by_target()
        missed = st.missed_fusions()
    finally:
        st.close()
    data = [{"target": t, "ran": n, "failed": b, "unsupported": u, "invalid": i,
             "fusions": summary([fused.get(t, {})]),
             "missed_fusions": [m for m in missed if m["missed_on"] == t]}
            for t, n, b, u, i in rows]
    if as_json:
        print(json.dumps(data, indent=2))
        return
    cols = ("target", "ran", "failed", "unsupported", "invalid")
    t = Table(title=f"targets in {store_dir}")
    for col in (*cols, "fusions fired"):
        t.add_column(col, justify="left" if col in ("target", "fusions fired") else "right",
                     overflow="fold")
    for r in data:
        f = r["fusions"]
        t.add_row(*(str(r[k]) for k in cols),
                  f"{f['k']} of {f['K']} known" + (f": {', '.join(f['fired'])}"
                                                   if f["fired"] else ""))
    out.print(t)
    if missed:
        m = Table(title="missed fusions (performance, not correctness)")
        for col in ("fusion", "fired on", "missed on", "cases", "shortest case"):
            m.add_column(col, overflow="fold")
        for r in missed:
            m.add_row(r["fusion"], r["fired_on"], r["missed_on"], str(r["cases"]),
                      " → ".join(o.removeprefix("aten::") for o in r["shortest"]))
        out.print(m)

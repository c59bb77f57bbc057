"""Commands on findings: corpus list/show/add, shrink, repro, triage, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fuzzer.commands.common import (
    MemoryOpt,
    TargetOpt,
    TimeoutOpt,
    app,
    err,
    guarded,
    open_sandbox,
    out,
    seeds_option,
    target_names,
)

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="A campaign store (`convfuzz fuzz --out DIR`): use its findings instead "
    "of the repo corpus.")]
FindingArg = Annotated[str, typer.Argument(help="Finding id (or a unique prefix).",
                                           show_default=False)]


corpus_app = typer.Typer(no_args_is_help=True, help="The corpus of curated findings (or, "
                         "with --store, a campaign's findings).")
app.add_typer(corpus_app, name="corpus")



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
                store: StoreOpt = None,
                by_cause: Annotated[bool, typer.Option(
                    "--causes", help="One row per root cause (as `corpus causes`).")] = False
                ) -> None:
    """List the findings: id, target, stage, symptom, attribution, operators, count."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus

    if by_cause:
        if store is not None:
            raise corpus.CorpusError("--causes reads the corpus's stored blames, not --store")
        corpus_causes(as_json)
        return
    rows = [e.row() for e in (corpus.store_entries(store) if store else corpus.entries())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out.print(_rows_table(f"{len(rows)} finding(s) in {store or 'the corpus'}", rows,
                          ["id", "target", "stage", "symptom", "attribution", "ops", "count"]))


@corpus_app.command("blame")
@guarded
def corpus_blame(checks: Annotated[bool, typer.Option(
                     "--checks/--no-checks", help="Also run each TorchScript finding on the "
                     "dynamo exporter (a sandboxed run each).")] = True,
                 timeout: TimeoutOpt = 120.0) -> None:
    """Name the function at fault for every corpus finding and store it in its finding.json
    (component, function, source file:line, tracker, kind of defect)."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from contextlib import nullcontext

    from fuzzer import causes, corpus

    curated = causes.curated_blames()  # written by hand: stored as they are
    with open_sandbox(timeout) if checks else nullcontext() as sb:
        for e in corpus.entries():
            m = causes.annotate(e, sb.run if sb is not None else None, curated)
            b = m["blame"]
            out.print(f"{e.id}: {b.get('tracker', '?')} {b.get('function', '?')} "
                      f"({b.get('source', '')}) {b.get('kind', '')} "
                      f"{m.get('dynamo_check', '')}", highlight=False)


@corpus_app.command("causes")
@guarded
def corpus_causes(as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one row "
                                                        "per root cause.")] = False) -> None:
    """The corpus by root cause: function at fault, tracker, triage label (new, known,
    documented, torchscript-only), whether to file it, and its instances."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import causes, corpus

    rows = [c.row() for c in causes.group(corpus.entries())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["file"] = "yes" if r["file"] else "no"
    out.print(_rows_table(f"{len(rows)} root cause(s) in the corpus", rows,
                          ["cause", "function", "tracker", "label", "file", "instances"]))


def _report_causes(which: str | None, out_dir: Path, unfiled: bool, timeout: float) -> None:
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import causes, corpus, exposure, filing
    from fuzzer.extras import MissingExtra
    from fuzzer.store import versions
    from fuzzer.targets import TargetError

    groups = causes.group(corpus.entries())
    expo = exposure.load(corpus.CORPUS / exposure.EXPOSURE)
    if which is not None:
        e = None if any(c.slug == which for c in groups) else corpus.find(which)
        pick = [c for c in groups if c.slug == which or e in c.instances]
    else:
        pick = [c for c in groups if c.file or unfiled]
    rows = []
    written = 0
    with open_sandbox(timeout) as sb:
        for c in pick:
            try:
                md = filing.write(filing.prepare(c, sb.run, versions(), expo),
                                  out_dir / c.slug)
            except (MissingExtra, TargetError) as e:
                if which is not None:  # the one asked for: its one-line error, exit 2
                    raise
                # --all goes on with the rest; an existing report of this cause stays
                err.print(f"{c.slug}: skipped ({e})", highlight=False, markup=False)
                continue
            written += 1
            out.print(f"{c.slug}: {md}", highlight=False)
    if which is None:
        # linked: every cause with a report in the folder (this run's, or one kept)
        rows = [{**c.row(), "written": (out_dir / c.slug / "report.md").is_file(),
                 "exposure": filing.exposure_cell(
                     [expo[e.id] for e in c.instances if e.id in expo])} for c in groups]
        (out_dir / "index.md").write_text(filing.index(rows))
        out.print(f"index: {out_dir / 'index.md'} ({written} reports, {len(rows)} causes)")


@corpus_app.command("show")
@guarded
def corpus_show(fid: FindingArg, store: StoreOpt = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print the metadata and "
                                                      "the minimized Case.")] = False) -> None:
    """Show one finding: its metadata, verdict detail, versions and minimized Case."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus

    e = corpus.find(fid, store)
    if as_json:
        print(json.dumps({**e.row(), "meta": e.meta, "case": e.case.to_dict()}, indent=2,
                         default=str))
        return
    info = {**e.row(), "detail": e.meta.get("detail") or e.verdict.shown_detail,
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
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
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
                file_into: Annotated[Path | None, typer.Option(
                    "--file-into", help="Also file the result as a finding in this campaign "
                    "store (made if absent), as a campaign files it: then `convfuzz corpus "
                    "add ID --store DIR` curates it.")] = None,
                timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Shrink a failing Case to the smallest Case that fails the same way (target family,
    stage, symptom, error class) on the first target where it fails."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus
    from fuzzer.case import CaseError, load
    from fuzzer.shrink import Budget, shrink
    from fuzzer.verdict import Outcome

    if Path(what).is_file() or what.endswith(".json") or "/" in what:
        case, names = load(what), target_names(target)
    else:
        e = corpus.find(what, store)
        case, names = e.original or e.case, target_names(target or [e.target])
    with open_sandbox(timeout, memory_mb) as sb:
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
    if file_into is not None:
        from fuzzer.store import Store  # on use: only when filing

        st = Store(file_into)
        try:
            fid, new = st.add_finding(case, v, res.case, res.verdict, res.summary())
            st.flush()
        finally:
            st.close()
        how = "new" if new else "one more of a known finding"
        err.print(f"filed {fid[:8]} in {file_into} ({how}): convfuzz corpus add {fid[:8]} "
                  f"--store {file_into}", highlight=False)
    err.print(f"{v.target} {v.key}: {len(case.nodes)} → {len(res.case.nodes)} node(s) "
              f"({' → '.join(res.case.ops)}) in {res.seconds:.1f} s, {res.calls} run(s)"
              f"{' (budget exhausted)' if res.exhausted else ''}\n  {res.verdict.shown_detail}",
              highlight=False)


@app.command()
@guarded
def repro(fid: FindingArg, store: StoreOpt = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
          timeout: TimeoutOpt = 120.0, memory_mb: MemoryOpt = 4096) -> None:
    """Replay one finding's minimized Case on its target with the installed versions.

    Exit code 1 while it still fails, 0 once it is fixed, 2 on bad input."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus
    from fuzzer.verdict import Outcome

    e = corpus.find(fid, store)
    with open_sandbox(timeout, memory_mb) as sb:
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
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus

    pool = corpus.store_entries(store) if store else corpus.entries()
    with open_sandbox(timeout, memory_mb) as sb:
        rows = [corpus.replay(e, sb.run).row() for e in pool]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        out.print(_rows_table(f"triage of {len(rows)} finding(s) on the installed versions",
                              rows, ["id", "target", "recorded", "now", "status"]))
    raise typer.Exit(1 if any(r["status"] == corpus.CHANGED for r in rows) else 0)


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
           seeds_dir: seeds_option("for the real-world exposure line") = None,
           checks: Annotated[bool, typer.Option(
               "--checks/--no-checks", help="Run the control and the other-exporter check "
               "(a few sandboxed runs per finding).")] = True,
           unfiled: Annotated[bool, typer.Option(
               "--unfiled", help="With --all on the corpus: also report the causes triage "
               "says not to file (known, documented, TorchScript-only).")] = False,
           timeout: TimeoutOpt = 120.0) -> None:
    """Write a report.md (in the template of the tracker the function at fault belongs to)
    and a short, self-checking repro.py: on the corpus, one per root cause (a cause slug or
    any of its findings' ids; --all: every cause triage says to file); with --store, one per
    campaign finding."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer import corpus
    from fuzzer import report as rep
    from fuzzer.exposure import Index
    from fuzzer.exposure import exposure as expose
    from fuzzer.generate import default_seeds
    from fuzzer.lift import arch_graphs
    from fuzzer.store import versions

    if (finding is None) == (not all_):
        raise corpus.CorpusError("give a finding id, or --all")
    if store_dir is None:
        _report_causes(finding, out_dir, unfiled, timeout)
        return
    pool = (corpus.store_entries(store_dir) if store_dir else corpus.entries()) if all_ else [
        corpus.find(finding or "", store_dir)]
    seeds = seeds_dir or default_seeds()
    rows = []
    index = None
    if arch_graphs(seeds):  # exposure by trigger over the committed traced graphs
        index = Index.load(seeds)
    with open_sandbox(timeout) as sb:
        for e in pool:
            v = e.verdict
            ctx = rep.build_context(e.case, v, sb.run if checks else None, seeds, versions())
            ctx.analysis = str(e.meta.get("note") or "")  # a corpus finding's, when curated
            if index is not None and index.covers(e.case):
                ctx.exposure = expose(e.id, e.case, v, index,
                                      sb.run if checks else None).line()
            md, _ = rep.write(e.case, v, e.id, out_dir / e.id if all_ else out_dir, ctx)
            out.print(f"{e.id}: {md}")
            rows.append({"id": e.id, "target": v.target, "key": v.key,
                         "attribution": v.attribution.value, "ops": e.case.ops})
    if all_:
        (out_dir / "index.md").write_text(rep.index(rows))
        out.print(f"index: {out_dir / 'index.md'} ({len(rows)} reports)")

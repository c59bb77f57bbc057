"""`convfuzz lift` and `convfuzz exposure`: mined architectures as Cases, and which of them a
finding's trigger occurs in (fuzzer/lift.py, fuzzer/exposure.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from fuzzer.commands.common import app, guarded, out, seeds_option


def _seeds(seeds_dir: Path | None) -> Path:
    # on use: `convfuzz --help` stays fast (no torch)
    from fuzzer.motif_sampler import SEEDS

    return seeds_dir or SEEDS


@app.command()
@guarded
def lift(arch: Annotated[str, typer.Argument(help="A mined architecture, e.g. "
                                             "transformers:bert (seeds/graphs/ lists them).")],
         seeds_dir: seeds_option("the traced graphs in graphs/") = None,
         around: Annotated[int | None, typer.Option(
             "--around", help="Keep the connected part around this traced node (index) "
             "instead of the largest.")] = None,
         out_file: Annotated[Path | None, typer.Option("--out", help="Write the Case here.")]
         = None,
         as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
         = False) -> None:
    """Lift a mined architecture's traced graph into a Case (catalogue operators, attributes,
    parameter shapes, constants, traced input shapes), cutting around the operators the
    catalogue has no entry for; `convfuzz run`/`shrink` take the Case."""
    # on use: lifting imports torch and the catalogue
    from fuzzer.lift import describe, load_arch_graph
    from fuzzer.lift import lift as do_lift

    name = arch if ":" in arch else f"transformers:{arch}"
    lifted = do_lift(load_arch_graph(_seeds(seeds_dir), name), name, around=around)
    if out_file is not None:
        out_file.write_text(lifted.case.to_json() + "\n")
    if as_json:
        print(json.dumps(describe(lifted), indent=2, sort_keys=True))
        return
    out.print(lifted.summary(), highlight=False)
    if out_file is not None:
        out.print(f"case {lifted.case.hash} written to {out_file}", highlight=False)


@app.command()
@guarded
def exposure(store: Annotated[Path | None, typer.Option(
                 "--store", help="A campaign store's findings instead of the corpus.")] = None,
             models: Annotated[Path | None, typer.Option(
                 "--models", help="A `convfuzz models` store: which architectures fail whole "
                 "the same way (for 'breaks').")] = None,
             seeds_dir: seeds_option("the traced graphs in graphs/") = None,
             confirm: Annotated[bool, typer.Option(
                 "--confirm/--no-confirm", help="Run every structural match, lifted at the "
                 "architecture's own shapes, on the finding's target (the trigger).")] = True,
             out_file: Annotated[Path | None, typer.Option(
                 "--out", help="Write the results here (default: corpus/exposure.json for the "
                 "corpus; nothing for a store).")] = None) -> None:
    """Which mined architectures contain each finding's minimal chain with its trigger, and
    which of them it breaks (from a models store). The reports read corpus/exposure.json."""
    # on use: torch, the catalogue and the sandbox
    from fuzzer.corpus import CORPUS, entries, store_entries
    from fuzzer.exposure import EXPOSURE, Index, save
    from fuzzer.exposure import exposure as expose
    from fuzzer.sandbox import Limits, Sandbox
    from fuzzer.store import Store

    started = time.monotonic()
    found = store_entries(store) if store else entries()
    rows = None
    if models is not None:
        from fuzzer import arch_rows  # on use: only with --models

        rows = arch_rows.rows(Store(models, readonly=True))
    index = Index.load(_seeds(seeds_dir))
    results = []
    with Sandbox(Limits(timeout=120, memory_mb=2048)) as sb:
        def run(case, target):  # type: ignore[no-untyped-def]
            return sb.run(case, target)

        for e in found:
            if not index.covers(e.case):
                out.print(f"{e.id}: not measured (the mined graphs are "
                          f"{index.frontend}'s)", highlight=False)
                continue
            r = expose(e.id, e.case, e.verdict, index, run if confirm else None, rows)
            results.append(r)
            out.print(f"{e.id}: {r.line()}", highlight=False, soft_wrap=True)
    dest = out_file or (CORPUS / EXPOSURE if store is None else None)
    if dest is not None:
        save(results, dest, {"command": "convfuzz exposure" + (" --no-confirm" if not confirm
                                                              else ""),
                             "architectures": len(index.graphs), "models": str(models or ""),
                             "seconds": round(time.monotonic() - started, 1)})
        out.print(f"{len(results)} finding(s); written to {dest}", highlight=False)

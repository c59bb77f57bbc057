"""`convfuzz motifs`: the mined motifs of seeds/motifs.json — the most widespread, and the
named blocks with the architectures they occur in."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fuzzer.commands.common import app, guarded, out, seeds_option


def _short(ops: list[str]) -> str:
    return " ".join(o.removeprefix("aten::") for o in ops)


@app.command()
@guarded
def motifs(seeds_dir: seeds_option("motifs.json, written by `convfuzz mine`") = None,
           top: Annotated[int, typer.Option("--top", min=1, help="How many of the most "
                                            "widespread motifs to list.")] = 20,
           name: Annotated[str | None, typer.Option(
               "--name", help="Only the motifs of this named block (rms_norm, gelu_tanh, "
               "rotary, swiglu, ...).")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the selected motifs "
                                                 "as JSON (with their instances).")] = False,
           ) -> None:
    """List mined motifs: connected subgraphs of 2..10 operators (14 for an attention block)
    seen in >= 2 architectures (with their constants, parameters and shared inputs), most
    widespread first, and the named blocks (the `motif` source of `convfuzz fuzz`
    instantiates them)."""
    # on use: `convfuzz --help` stays fast (no torch)
    from fuzzer.blocks import NAMED
    from fuzzer.motif_sampler import SEEDS
    from fuzzer.motifs import load_motifs
    from fuzzer.sampling import GenerationError

    path = (seeds_dir or SEEDS) / "motifs.json"
    if not path.is_file():
        raise GenerationError(f"{path}: no mined motifs (run `convfuzz mine --out "
                              f"{path.parent}`)")
    head, ms = load_motifs(path)
    if name is not None and name not in NAMED:
        raise GenerationError(f"unknown block {name!r} (one of {', '.join(NAMED)})")
    sel = [m for m in ms if name is None or name in m.name][:top]
    if as_json:
        print(json.dumps([m.__dict__ for m in sel], indent=1))
        return
    out.print(f"{len(ms)} motifs kept of {head['frequent']} seen in >= {head['min_archs']} "
              f"architectures ({head['distinct']} distinct) from {len(head['archs'])} traced "
              f"architectures; {path}")
    t = Table(title=f"most widespread motifs{f' named {name}' if name else ''}")
    for col in ("#", "operators", "named", "archs", "count"):
        t.add_column(col, overflow="fold", justify="right" if col in ("#", "archs", "count")
                     else "left")
    for i, m in enumerate(sel, 1):
        t.add_row(str(i), _short(m.ops), ",".join(m.name), str(len(m.archs)), str(m.count))
    out.print(t)
    if name is not None:
        return
    b = Table(title="named blocks")
    for col in ("block", "motifs", "archs", "most widespread", "architectures"):
        b.add_column(col, overflow="fold")
    for block in NAMED:
        hits = [m for m in ms if block in m.name]
        if not hits:
            b.add_row(block, "0", "0", "", "")
            continue
        archs = sorted({a.removeprefix("transformers:") for m in hits for a in m.archs})
        b.add_row(block, str(len(hits)), str(len(archs)), _short(hits[0].ops),
                  ", ".join(archs[:12]) + (f" (+{len(archs) - 12})" if len(archs) > 12 else ""))
    out.print(b)




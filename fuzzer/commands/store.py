"""Commands on a campaign store itself: store check, store recover."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fuzzer.commands.common import app, guarded, out

store_app = typer.Typer(no_args_is_help=True, help="A campaign store's health: check it, "
                        "recover what a damaged one still holds.")
app.add_typer(store_app, name="store")

StoreArg = Annotated[Path, typer.Argument(help="Campaign store directory (`convfuzz fuzz "
                                          "--out DIR`).", show_default=False)]


@store_app.command("check")
@guarded
def check(store: StoreArg) -> None:
    """Report a store's health without changing it: SQLite's integrity_check, schema version
    and the convfuzz that wrote it, rows per table, finding folders against finding rows, and
    the campaign holding its lock. Exit 0: intact; 1: damaged; 2: not a store."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.recover import check as run_check
    from fuzzer.storage import SCHEMA_VERSION

    rep = run_check(store)
    older = (f"; the next campaign migrates it to {SCHEMA_VERSION}"
             if rep.schema is not None and 0 < rep.schema < SCHEMA_VERSION else "")
    out.print(f"store {rep.root}: {rep.size / 1e6:.1f} MB, schema "
              f"{rep.schema if rep.schema is not None else '?'} (written by {rep.writer}"
              f"){older}")
    out.print("integrity: ok" if rep.problems is None else
              f"[red]integrity: damaged[/red] ({rep.problems})", highlight=False)
    out.print("rows: " + ", ".join(f"{t} {'unreadable' if n is None else n}"
                                   for t, n in rep.counts.items()))
    out.print(f"finding folders: {len(rep.damaged_folders)} damaged, "
              f"{len(rep.folders_without_row)} without a row, {len(rep.rows_without_folder)} "
              "rows without a folder")
    for name, why in sorted(rep.damaged_folders.items()):
        out.print(f"  [red]damaged[/red] findings/{name}: {why}", highlight=False)
    out.print("campaign: none running" if rep.holder is None else
              f"campaign: running ({rep.holder.describe()})")
    if not rep.ok:
        out.print(f"`convfuzz store recover {rep.root}` salvages what is intact")
        raise typer.Exit(1)


@store_app.command("recover")
@guarded
def recover(store: StoreArg,
            out_dir: Annotated[Path | None, typer.Option(
                "--out", help="Write the recovered store here (a new directory; the finding "
                "folders are copied) and leave STORE untouched. Default: in place, the damaged "
                "database kept beside the new one as store.sqlite.damaged-TIME.")] = None
            ) -> None:
    """Salvage every intact row of a damaged store with SQLite's own recovery (the sqlite3
    shell's `.recover` when it works here, else SQLite's B-tree reads stepping over damaged
    pages), rebuild the findings whose folders are intact, and report what was recovered and
    what was lost. `convfuzz fuzz --resume` continues on the recovered store."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.recover import recover as run_recover

    rep = run_recover(store, out_dir)
    out.print(f"recovered {rep.source} into {rep.dest}")
    out.print(f"method: {rep.method}" + (f"; {rep.gaps} damaged stretch(es) stepped over"
                                          if rep.gaps else ""))
    if rep.kept is not None:
        out.print(f"the damaged database is kept as {rep.kept}")
    t = Table(title="rows")
    for col in ("table", "last rowid before", "recovered", "lost (about)"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for c in rep.tables:
        if c.before is not None:
            before, lost = str(c.before), str(max(0, c.before - c.recovered))
        elif c.floor is not None:  # only a lower bound is known
            before, lost = f">= {c.floor}", f">= {max(0, c.floor - c.recovered)}"
        else:
            before = lost = "?"
        t.add_row(c.table, before, str(c.recovered), lost)
    out.print(t)
    out.print(f"findings: {len(rep.from_rows) + len(rep.rebuilt)} in the recovered store "
              f"({len(rep.from_rows)} from salvaged rows, {len(rep.rebuilt)} rebuilt from their "
              f"folders); {len(rep.damaged_folders)} folder(s) damaged, lost"
              + "".join(f"\n  lost findings/{k}: {v}" for k, v in
                        sorted(rep.damaged_folders.items())), highlight=False)

"""`convfuzz store check` and `convfuzz store recover`: what a damaged store still holds.

Recovery never changes the damaged files. It salvages every row that still reads, with
SQLite's own machinery: the sqlite3 shell's `.recover` where a sqlite3 with `sqlite_dbpage` is
on PATH (Debian's and Ubuntu's are built without it, so `.recover` fails there), otherwise
SQLite's B-tree reads, table by table in rowid order, stepping over a damaged page by seeking
to the next rowid that reads (`writable_schema` lets a truncated file open at all). The rows go
into a new store of the current schema, then every finding folder that is intact (its Cases and
verdict parse and its signature is its name) and lacks a row gets its row back. The damaged
database is kept beside the new one (in place) or left where it was (`--out NEW`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer import storage
from fuzzer.case import Case, CaseError
from fuzzer.storage import DB, TABLES, StoreError
from fuzzer.store import Store
from fuzzer.verdict import Verdict, signature

FOLDER_FILES = ("case.json", "original.json", "verdict.json")


@dataclass
class TableCount:
    table: str
    before: int | None  # the damaged store's last rowid: about how many rows it had
    recovered: int
    unplaced: int = 0  # salvaged but no longer fitting the schema
    floor: int | None = None  # with `before` unknown: at least this many rows were there


@dataclass
class Recovery:
    source: Path
    dest: Path
    method: str
    tables: list[TableCount]
    from_rows: list[str]  # finding ids whose rows were salvaged
    rebuilt: list[str]  # finding ids rebuilt from their folders
    damaged_folders: dict[str, str]  # folder -> why it could not be used
    kept: Path | None  # where the damaged database was moved (in place)
    gaps: int = 0  # damaged stretches stepped over


@dataclass
class Check:
    root: Path
    size: int
    schema: int | None
    writer: str
    problems: str | None  # None: integrity_check says ok
    counts: dict[str, int | None]
    holder: storage.Holder | None
    folders_without_row: list[str] = field(default_factory=list)
    rows_without_folder: list[str] = field(default_factory=list)
    damaged_folders: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problems is None and not self.damaged_folders


def _copy_db(root: Path, scratch: Path) -> Path:
    """The database and its WAL, copied: reading a damaged store must not change a byte."""
    for suffix in ("", "-wal"):
        src = root / f"{DB}{suffix}"
        if src.is_file():
            shutil.copyfile(src, scratch / f"{DB}{suffix}")
    return scratch / DB


def _salvage_con(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute("PRAGMA writable_schema = ON")  # a truncated file opens (nothing is written)
    return con


def _count(con: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = con.execute(sql).fetchone()
        return None if row is None or row[0] is None else int(row[0])
    except sqlite3.DatabaseError:
        return None


def _readable(con: sqlite3.Connection, table: str, rowid: int) -> int | None:
    """The first rowid >= `rowid` that a seek reaches (None: the seek hits damage or the end)."""
    try:
        row = con.execute(f'SELECT rowid FROM "{table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1',
                          (rowid,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else int(row[0])


def _next_readable(con: sqlite3.Connection, table: str, lo: int, hi: int) -> int | None:
    """Past a damaged page: the smallest start after `lo` whose seek reads (doubling steps,
    then bisection back to the page's end), None when none does up to `hi`."""
    step, probe = 1, None
    while lo + step <= hi:
        probe = _readable(con, table, lo + step)
        if probe is not None:
            break
        step *= 2
    if probe is None:
        return None
    bad, good = lo + step // 2, lo + step  # the seek at `good` reads, at `bad` it may not
    while good - bad > 1:
        mid = (bad + good) // 2
        if _readable(con, table, mid) is None:
            bad = mid
        else:
            good = mid
    return _readable(con, table, good)


def _salvage_table(con: sqlite3.Connection, table: str,
                   cols: list[str]) -> tuple[list[tuple[Any, ...]], int]:
    """Every row of `table` that reads, in rowid order, and the damaged stretches skipped."""
    select = (f'SELECT rowid, {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table}" '
              "WHERE rowid > ? ORDER BY rowid")
    hi = _count(con, f'SELECT MAX(rowid) FROM "{table}"') or (1 << 40)
    lo, rows, gaps, restart = -(1 << 62), [], 0, None
    while True:
        try:
            for r in con.execute(select, (lo,)):
                rows.append(r[1:])
                lo = r[0]
            return rows, gaps
        except sqlite3.DatabaseError:
            gaps += 1
            # No row read since the last restart: the row there is itself damaged (its
            # overflow pages, say), so look past it.
            start = max(lo, 0) if restart is None or lo > restart else restart + 1
            nxt = _next_readable(con, table, start, hi)
            if nxt is None:
                return rows, gaps
            lo = restart = nxt - 1


def _cases_floor(salvaged: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> int | None:
    """At least how many Cases a store whose cases table lost its right edge had: its stream
    reached the highest salvaged `seq`, and every salvaged verdict names a Case."""
    cols, rows = salvaged["cases"]
    seqs = [r[cols.index("seq")] for r in rows if "seq" in cols and r[cols.index("seq")]
            is not None]
    vcols, vrows = salvaged["verdicts"]
    hashes = {r[0] for r in rows} | ({r[vcols.index("case_hash")] for r in vrows}
                                     if "case_hash" in vcols else set())
    floor = max(max(seqs) + 1 if seqs else 0, len(hashes))
    return floor or None


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
    except sqlite3.DatabaseError:
        return []


def sqlite3_with_recover() -> str | None:
    """A sqlite3 shell whose `.recover` works here ($CONVFUZZ_SQLITE3 or sqlite3 on PATH)."""
    exe = os.environ.get("CONVFUZZ_SQLITE3") or shutil.which("sqlite3")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "probe.sqlite"
        sqlite3.connect(db).executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        r = subprocess.run([exe, str(db), ".recover"], capture_output=True, text=True,
                           timeout=60, check=False)
    return exe if r.returncode == 0 and "INSERT" in r.stdout else None


def _shell_recover(exe: str, db: Path, scratch: Path) -> Path:
    """`.recover` into a scratch database (the shell goes on past statements that fail)."""
    out = scratch / "recovered.sqlite"
    sql = subprocess.run([exe, str(db), ".recover"], capture_output=True, text=True,
                         timeout=3600, check=False).stdout
    subprocess.run([exe, str(out)], input=sql, capture_output=True, text=True, timeout=3600,
                   check=False)
    return out


def _folder_finding(d: Path) -> tuple[Case, Case, Verdict, dict[str, Any] | None]:
    """(original, minimized, verdict, shrink summary) of an intact finding folder."""
    try:
        original = Case.from_json((d / "original.json").read_text())
        minimized = Case.from_json((d / "case.json").read_text())
        v = Verdict.from_dict(json.loads((d / "verdict.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError, CaseError) as e:
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         ) from None
    if signature(v, minimized.ops) != d.name:
        raise ValueError("its Case and verdict no longer give its signature")
    shrink = None
    with contextlib.suppress(OSError, ValueError):
        for line in (d / "log.txt").read_text().splitlines():
            if line.startswith("shrink: "):
                shrink = json.loads(line[len("shrink: "):])
    return original, minimized, v, shrink


def _folders(root: Path) -> list[Path]:
    top = storage.findings_dir(root)
    return sorted(p for p in top.iterdir() if p.is_dir()) if top.is_dir() else []


def recover(root: Path, out: Path | None = None) -> Recovery:
    root = Path(root)
    if not storage.is_store(root):
        raise StoreError(f"{root}: not a campaign store (no {DB})")
    dest = Path(out) if out is not None else root
    if out is not None and dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest}: not empty (store recover --out wants a new directory)")
    lock = storage.Lock(root)  # no campaign may write while its store is rebuilt
    try:
        with tempfile.TemporaryDirectory(prefix="convfuzz-recover-") as tmp:
            scratch = Path(tmp)
            copy = _copy_db(root, scratch)
            exe = sqlite3_with_recover()
            if exe:
                src, method = _shell_recover(exe, copy, scratch), f"sqlite3 .recover ({exe})"
            else:
                src, method = copy, ("SQLite B-tree reads, stepping over damaged pages (no "
                                     "sqlite3 shell with a working .recover here)")
            con = _salvage_con(src)
            salvaged: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
            gaps = 0
            before: dict[str, int | None] = {}
            for t in TABLES:
                cols = _columns(con, t)
                rows, g = _salvage_table(con, t, cols) if cols else ([], 0)
                salvaged[t], gaps = (cols, rows), gaps + g
            orig = _salvage_con(copy)
            for t in TABLES:
                before[t] = _count(orig, f'SELECT MAX(rowid) FROM "{t}"')
                if before[t] is None:  # the right edge is damaged: AUTOINCREMENT's mark
                    before[t] = _count(orig, "SELECT seq FROM sqlite_sequence WHERE name = "
                                       f"'{t}'")
            orig.close()
            floor = _cases_floor(salvaged) if before["cases"] is None else None
            con.close()
            kept = None
            if out is None:  # in place: the damaged files step aside, kept
                stamp = time.strftime("%Y%m%d-%H%M%S")
                kept = root / f"{DB}.damaged-{stamp}"
                for suffix in ("", "-wal", "-shm"):
                    if (root / f"{DB}{suffix}").exists():
                        os.replace(root / f"{DB}{suffix}", root / f"{kept.name}{suffix}")
                st = Store(root, lock=lock)
            else:
                lock.release()
                dest.mkdir(parents=True, exist_ok=True)
                if storage.findings_dir(root).is_dir():
                    shutil.copytree(storage.findings_dir(root), storage.findings_dir(dest))
                st = Store(dest)
            try:
                counts = _insert(st, salvaged, before)
                counts[TABLES.index("cases")].floor = floor
                from_rows = [f.id for f in st.findings()]
                rebuilt, bad = _rebuild(st, dest)
            finally:
                st.close()
    finally:
        lock.release()
    return Recovery(root, dest, method, counts, from_rows, rebuilt, bad, kept, gaps)


# Columns that hold JSON: a salvaged row whose JSON does not parse is damaged, not placed.
JSON_COLUMNS = {"meta": ("value",), "cases": ("ops", "json"), "verdicts": ("json",),
                "findings": ("ops", "json", "verdict", "shrink", "versions"),
                "missed_fusions": ("ops",), "arch_verdicts": ("json",)}


def _intact(table: str, row: dict[str, Any]) -> bool:
    try:
        for c in JSON_COLUMNS.get(table, ()):
            if row.get(c) is not None:
                json.loads(row[c])
    except (TypeError, ValueError):
        return False
    return True


def _insert(st: Store, salvaged: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
            before: dict[str, int | None]) -> list[TableCount]:
    counts = []
    for t in TABLES:
        cols, rows = salvaged[t]
        keep = [i for i, c in enumerate(cols) if c in _columns(st.db, t)]
        verb = "INSERT OR REPLACE" if t == "meta" else "INSERT OR IGNORE"
        sql = (f'{verb} INTO "{t}" ({", ".join(cols[i] for i in keep)}) '
               f'VALUES ({", ".join("?" * len(keep))})')
        placed = 0
        for r in rows:
            if t == "meta" and r[0] == "writer":
                continue  # the new store's writer is this convfuzz
            if not _intact(t, dict(zip(cols, r, strict=True))):
                continue
            with contextlib.suppress(sqlite3.Error):  # no longer fits the schema: unplaced
                placed += st.db.execute(sql, [r[i] for i in keep]).rowcount > 0
        st.db.commit()
        counts.append(TableCount(t, before[t], placed, len(rows) - placed))
    return counts


def _rebuild(st: Store, dest: Path) -> tuple[list[str], dict[str, str]]:
    """Finding rows back from the intact folders the salvaged rows lack."""
    rebuilt, bad = [], {}
    have = {f.id for f in st.findings()}
    for d in _folders(dest):
        try:
            original, minimized, v, shrink = _folder_finding(d)
        except ValueError as e:
            bad[d.name] = str(e)
            continue
        if d.name in have:
            continue
        links = st.db.execute("SELECT COUNT(*) FROM finding_cases WHERE finding_id = ?",
                              (d.name,)).fetchone()[0]
        if not links:
            st.db.execute("INSERT OR IGNORE INTO finding_cases VALUES (?, ?, ?, 'recovered', ?)",
                          (d.name, original.hash, v.target, d.stat().st_mtime))
        st.restore_finding(d.name, original, minimized, v, shrink, max(1, links),
                           d.stat().st_mtime)
        rebuilt.append(d.name)
    return rebuilt, bad


def check(root: Path) -> Check:
    """What `store check` reports; changes nothing."""
    root = Path(root)
    if not storage.is_store(root):
        raise StoreError(f"{root}: not a campaign store (no {DB})")
    # The live file, read-only: a copy taken while a campaign checkpoints could be torn and
    # look damaged when the store is not. writable_schema lets a truncated file open.
    try:
        con = sqlite3.connect(f"{storage.db_path(root).resolve().as_uri()}?mode=ro", uri=True,
                              timeout=30)
        con.execute("PRAGMA writable_schema = ON")
    except sqlite3.Error as e:
        raise storage.damaged(root, str(e)) from None
    try:
        try:
            rows = [r[0] for r in con.execute("PRAGMA integrity_check(20)")]
            problems = None if rows == ["ok"] else storage.problems(rows)
        except sqlite3.DatabaseError as e:
            problems = str(e)
        try:
            schema: int | None = storage.schema_version(con)
        except sqlite3.DatabaseError:
            schema = None
        try:
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError:
            present = set(TABLES)
        counts = {t: _count(con, f'SELECT COUNT(*) FROM "{t}"') for t in TABLES
                  if t in present}  # an older schema lacks some
        try:
            ids = {r[0] for r in con.execute("SELECT id FROM findings")}
        except sqlite3.DatabaseError:
            ids = set()
        writer = storage.writer_of(con)
    finally:
        con.close()
    rep = Check(root, storage.db_path(root).stat().st_size, schema, writer, problems, counts,
                storage.holder(root))
    folders = _folders(root)
    for d in folders:
        try:
            _folder_finding(d)
        except ValueError as e:
            rep.damaged_folders[d.name] = str(e)
    names = {d.name for d in folders}
    rep.folders_without_row = sorted(names - ids)
    rep.rows_without_folder = sorted(ids - names)
    return rep

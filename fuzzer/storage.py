"""The store on disk: which files make a store, how they are opened, and what protects them.

A store is a directory: `store.sqlite` (SQLite in WAL mode: every Case, verdict and finding),
`findings/<id>/` (a folder per finding) and `campaign.lock`. This module is the one place that
spells those names, and the one way to open the database:

- `open_writer` is for the one process that writes (a campaign, `store recover`): it takes an
  OS lock (`flock`, released when the process dies, however it dies) and records its pid in the
  lock file, so a second writer is refused with the holder named;
- `open_readonly` is for every verb that only reads (`corpus list --store`, `analyze`,
  `targets --store`, `report --store`...): a `mode=ro` connection that never takes the lock and
  reads beside a running campaign (WAL readers see the last commit).

Both check the file first (a cheap `quick_check`, or only the schema and each table's last page
for a store over QUICK_CHECK_BYTES) and turn a damaged one into `StoreDamaged`, one line
naming `convfuzz store recover`. Both read the schema version (`PRAGMA user_version`): a newer
store is refused with the convfuzz version that wrote it; an older one is migrated in place by
the writer, after a backup.

To change the schema: edit SCHEMA (what a new store gets), bump SCHEMA_VERSION, and register
the step from the previous version with `@migration(previous)`; tests/test_storage.py checks
that an old store migrated step by step ends with the tables of a new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

DB = "store.sqlite"
LOCK = "campaign.lock"
FINDINGS = "findings"
# Above this size opening checks only the schema and each table's last page (quick_check
# reads every page: 0.2 s for 300 MB from the page cache, measured, seconds from a cold disk).
QUICK_CHECK_BYTES = 1 << 30

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    hash TEXT PRIMARY KEY, seq INTEGER, sampler TEXT, ops TEXT NOT NULL, json TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_hash TEXT NOT NULL, target TEXT NOT NULL,
    outcome TEXT NOT NULL, stage TEXT, symptom TEXT, attribution TEXT, detail TEXT,
    json TEXT NOT NULL, seconds REAL, created REAL NOT NULL,
    UNIQUE (case_hash, target));
CREATE INDEX IF NOT EXISTS verdicts_outcome ON verdicts (outcome);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, family TEXT NOT NULL, stage TEXT, symptom TEXT,
    attribution TEXT, error_class TEXT NOT NULL, detail TEXT, ops TEXT NOT NULL,
    count INTEGER NOT NULL, case_hash TEXT NOT NULL, original_hash TEXT NOT NULL,
    json TEXT NOT NULL, verdict TEXT NOT NULL, shrink TEXT, versions TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS finding_cases (
    finding_id TEXT NOT NULL, case_hash TEXT NOT NULL, target TEXT NOT NULL, how TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (finding_id, case_hash, target));
-- unfiled(): which failures no finding links, without a scan of the links per failure
CREATE INDEX IF NOT EXISTS finding_cases_case ON finding_cases (case_hash, target);
-- missed fusions (fuzzer/fusions.py): performance findings, apart from correctness ones
CREATE TABLE IF NOT EXISTS missed_fusions (
    fusion TEXT NOT NULL, fired_on TEXT NOT NULL, missed_on TEXT NOT NULL,
    case_hash TEXT NOT NULL, ops TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (fusion, fired_on, missed_on, case_hash));
-- whole mined architectures (`convfuzz models`, fuzzer/arch_rows.py): one verdict per
-- architecture x target; `class` is the summary's column (fuzzer.models.CLASSES)
CREATE TABLE IF NOT EXISTS arch_verdicts (
    arch TEXT NOT NULL, target TEXT NOT NULL, source TEXT, modality TEXT, structure TEXT,
    class TEXT NOT NULL, outcome TEXT NOT NULL, stage TEXT, symptom TEXT, attribution TEXT,
    detail TEXT, json TEXT NOT NULL, seconds REAL, created REAL NOT NULL,
    PRIMARY KEY (arch, target));
"""
TABLES = ("meta", "cases", "verdicts", "findings", "finding_cases", "missed_fusions",
          "arch_verdicts")


class StoreError(RuntimeError):
    """Bad input about a store (the CLI prints it as one line, exit code 2)."""


class StoreDamaged(StoreError):
    pass


class StoreBusy(StoreError):
    pass


class StoreFull(StoreError):
    pass


def db_path(root: Path) -> Path:
    return Path(root) / DB


def findings_dir(root: Path) -> Path:
    return Path(root) / FINDINGS


def is_store(root: Path) -> bool:
    return db_path(root).is_file()


def damaged(root: Path, why: str) -> StoreDamaged:
    return StoreDamaged(f"{root}: the store's database is damaged ({why}); "
                        f"`convfuzz store recover {root}` salvages what is intact")


def full(root: Path, why: str) -> StoreFull:
    return StoreFull(f"{root}: no space left on the disk ({why}); everything committed before "
                     f"is in the store: free some space, then `convfuzz fuzz --resume {root}`")


def no_space(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    # SQLITE_FULL, or an I/O error while growing a file on a full disk (the -shm, the WAL)
    code = getattr(e, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF == 13 or "disk is full" in str(e))


def translate(e: BaseException, root: Path) -> BaseException:
    """The store error an exception from SQLite or the file system stands for (or `e`)."""
    if isinstance(e, StoreError):
        return e
    if no_space(e) or (isinstance(e, sqlite3.OperationalError) and _disk_nearly_full(root)):
        return full(root, str(e))
    if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
        return damaged(root, str(e))
    if isinstance(e, sqlite3.OperationalError) and "malformed" in str(e):
        return damaged(root, str(e))
    return e


def _disk_nearly_full(root: Path) -> bool:
    try:
        return shutil.disk_usage(root).free < 64 * 1024
    except OSError:
        return False


# -- schema versions -------------------------------------------------------------------------
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def migration(version: int) -> Callable[[Callable[[sqlite3.Connection], None]],
                                        Callable[[sqlite3.Connection], None]]:
    """Register the step that brings a store of `version` to `version + 1` (run inside the
    migration's transaction)."""
    def register(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection],
                                                                       None]:
        MIGRATIONS[version] = fn
        return fn
    return register


# A step creates what it adds in its own words, never through SCHEMA (which moves on).
@migration(1)
def _v1_to_v2(con: sqlite3.Connection) -> None:
    """Version 1: stores written before versions were recorded. The oldest lack the finding
    tables (before findings existed), the index of finding links (before d2f5544) or the
    missed fusions (before 90e565b)."""
    con.execute("""CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, family TEXT NOT NULL, stage TEXT, symptom TEXT,
    attribution TEXT, error_class TEXT NOT NULL, detail TEXT, ops TEXT NOT NULL,
    count INTEGER NOT NULL, case_hash TEXT NOT NULL, original_hash TEXT NOT NULL,
    json TEXT NOT NULL, verdict TEXT NOT NULL, shrink TEXT, versions TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL)""")
    con.execute("""CREATE TABLE IF NOT EXISTS finding_cases (
    finding_id TEXT NOT NULL, case_hash TEXT NOT NULL, target TEXT NOT NULL, how TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (finding_id, case_hash, target))""")
    con.execute("CREATE INDEX IF NOT EXISTS finding_cases_case ON finding_cases "
                "(case_hash, target)")
    con.execute("""CREATE TABLE IF NOT EXISTS missed_fusions (
    fusion TEXT NOT NULL, fired_on TEXT NOT NULL, missed_on TEXT NOT NULL,
    case_hash TEXT NOT NULL, ops TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (fusion, fired_on, missed_on, case_hash))""")


@migration(2)
def _v2_to_v3(con: sqlite3.Connection) -> None:
    """Version 2 had no architecture verdicts (`convfuzz models`)."""
    con.execute("""CREATE TABLE IF NOT EXISTS arch_verdicts (
    arch TEXT NOT NULL, target TEXT NOT NULL, source TEXT, modality TEXT, structure TEXT,
    class TEXT NOT NULL, outcome TEXT NOT NULL, stage TEXT, symptom TEXT, attribution TEXT,
    detail TEXT, json TEXT NOT NULL, seconds REAL, created REAL NOT NULL,
    PRIMARY KEY (arch, target))""")


def convfuzz_version() -> str:
    try:
        return version("convfuzz")
    except PackageNotFoundError:
        return "unknown"


def schema_version(con: sqlite3.Connection) -> int:
    """The store's schema version; 0 for an empty database (a new store)."""
    v = int(con.execute("PRAGMA user_version").fetchone()[0])
    if v == 0 and con.execute("SELECT 1 FROM sqlite_master WHERE name = 'cases'").fetchone():
        return 1  # written before the version was recorded
    return v


def writer_of(con: sqlite3.Connection) -> str:
    """Which convfuzz wrote the store last, as the store recorded it."""
    with contextlib.suppress(sqlite3.Error, ValueError, TypeError):
        for key in ("writer", "versions"):
            row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row and json.loads(row[0]).get("convfuzz"):
                return f"convfuzz {json.loads(row[0])['convfuzz']}"
    return "an unknown convfuzz"


def _refuse_newer(con: sqlite3.Connection, root: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{root}: written by {writer_of(con)} with store schema {version}; this convfuzz "
            f"({convfuzz_version()}) knows schemas up to {SCHEMA_VERSION}: upgrade convfuzz "
            "to use this store")


def backup_path(root: Path, version: int) -> Path:
    return Path(root) / f"{DB}.schema{version}.bak"


def migrate(con: sqlite3.Connection, root: Path, version: int) -> Path | None:
    """Bring a store of `version` to SCHEMA_VERSION (a backup first); a new store gets
    SCHEMA. Returns the backup written, if any."""
    backup = None
    if version == 0:
        con.executescript(SCHEMA)
    elif version < SCHEMA_VERSION:
        if any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
            raise StoreError(f"{root}: store schema {version} (written by {writer_of(con)}) "
                             "is older than this convfuzz can migrate; open it with that "
                             "version")
        backup = backup_path(root, version)
        dst = sqlite3.connect(backup)
        try:
            con.backup(dst)  # consistent, WAL frames included
        finally:
            dst.close()
        con.execute("BEGIN IMMEDIATE")
        try:
            for v in range(version, SCHEMA_VERSION):
                MIGRATIONS[v](con)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return backup


# -- integrity -----------------------------------------------------------------------------
def probe(con: sqlite3.Connection, root: Path, full_check: bool = False) -> None:
    """Raise StoreDamaged unless the database reads: SQLite's quick_check (integrity_check
    with `full_check`), or for a large store the schema and the right edge of every table."""
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        size = db_path(root).stat().st_size
        if full_check or size <= QUICK_CHECK_BYTES:
            pragma = "integrity_check" if full_check else "quick_check"
            rows = [r[0] for r in con.execute(f"PRAGMA {pragma}(20)")]
            if rows != ["ok"]:
                raise damaged(root, problems(rows))
        for t in tables:
            con.execute(f'SELECT MAX(rowid) FROM "{t}"').fetchone()
    except sqlite3.DatabaseError as e:
        raise damaged(root, str(e)) from None


def problems(rows: list[str]) -> str:
    """integrity_check's report in one line: the first problem and how many more."""
    lines = [x.strip() for r in rows for x in str(r).splitlines()
             if x.strip() and not x.startswith("***")]
    more = f" and {len(lines) - 1} more problem(s)" if len(lines) > 1 else ""
    return (lines[0] if lines else "integrity check failed") + more


# -- the lock ------------------------------------------------------------------------------
@dataclass
class Holder:
    pid: int | None
    host: str
    since: float | None
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.since)) if self.since else "?"
        pid = self.pid if self.pid is not None else "unknown"
        return f"pid {pid} on {self.host or '?'}, since {when}"


def holder(root: Path) -> Holder | None:
    """Who holds the store's lock (None: nobody)."""
    path = Path(root) / LOCK
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> Holder:
    try:
        d: dict[str, Any] = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        d = {}
    return Holder(d.get("pid"), str(d.get("host", "")), d.get("since"), str(d.get("command", "")))


class Lock:
    """The store's writer lock: an exclusive `flock` on campaign.lock, holder recorded in it.
    The kernel drops it when the process ends, so a killed campaign leaves no stale lock."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK
        self.fd: int | None = None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = _read_holder(self.path)
            raise StoreBusy(f"{root}: a campaign is writing this store ({h.describe()}); "
                            "wait for it to end or use another --out (reading verbs work "
                            "beside it)") from None
        self.fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "command": " ".join(sys.argv)}
        with contextlib.suppress(OSError):  # a full disk must not stop the lock itself
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# -- opening -----------------------------------------------------------------------------
def open_readonly(root: Path, check: bool = True) -> sqlite3.Connection:
    """A read-only connection (no lock taken) to a store that must exist and read."""
    root = Path(root)
    if not root.is_dir():
        raise StoreError(f"{root}: no such store directory")
    path = db_path(root)
    if not path.is_file():
        raise StoreError(f"{root}: not a campaign store (no {DB}; `convfuzz fuzz --out DIR` "
                         "makes one)")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        raise translate(e, root) from None
    try:
        if check:
            probe(con, root)
        version = schema_version(con)
        _refuse_newer(con, root, version)
        if version < SCHEMA_VERSION:
            _temp_tables(con)
    except sqlite3.DatabaseError as e:
        con.close()
        raise damaged(root, str(e)) from None
    except BaseException:
        con.close()
        raise
    return con


def _temp_tables(con: sqlite3.Connection) -> None:
    """A reader of an older store (only the next writer migrates it) sees the tables it lacks
    as empty: TEMP tables of this connection, nothing written to the store."""
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for text in SCHEMA.split(";"):
        stmt = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("--"))
        head = stmt.strip().split("(")[0].split()
        if head[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"] and head[5] not in have:
            con.execute(stmt.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))


@dataclass
class Opened:
    con: sqlite3.Connection
    lock: Lock
    migrated_from: int | None  # the schema version a migration started from
    backup: Path | None


def open_writer(root: Path, lock: Lock | None = None) -> Opened:
    """The writer's connection: lock (or the `lock` held already), open, check, create or
    migrate, record the writer."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"{root}: cannot create store directory ({e.strerror})") from e
    lock = lock or Lock(root)
    try:
        existed = db_path(root).is_file() and db_path(root).stat().st_size > 0
        con = sqlite3.connect(db_path(root), timeout=30)
        try:
            if existed:
                probe(con, root)
            version = schema_version(con)
            _refuse_newer(con, root, version)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            backup = migrate(con, root, version)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('writer', ?)", (json.dumps(
                {"convfuzz": convfuzz_version(), "schema": SCHEMA_VERSION}),))
            con.commit()
        except BaseException:
            con.close()
            raise
    except BaseException as e:
        lock.release()
        err = translate(e, root)
        if err is e:
            raise
        raise err from None
    return Opened(con, lock, version if 0 < version < SCHEMA_VERSION else None, backup)

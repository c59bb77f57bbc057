"""The store on disk (fuzzer/storage.py): schema versions and their migration, the writer's
lock, read-only opening, and a damaged file turned into one line. Real SQLite, no campaign
(tests/test_store_robust.py runs the campaigns)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer import storage
from fuzzer.storage import SCHEMA_VERSION, StoreBusy, StoreDamaged, StoreError
from fuzzer.store import Store
from tests.conftest import make_case

EXE = [sys.executable, "-c", "from fuzzer.cli import main; main()"]  # see test_store_robust
# The store as the first convfuzz wrote it (67956f9): no findings, no version recorded.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cases (
    hash TEXT PRIMARY KEY, seq INTEGER, sampler TEXT, ops TEXT NOT NULL, json TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_hash TEXT NOT NULL, target TEXT NOT NULL,
    outcome TEXT NOT NULL, stage TEXT, symptom TEXT, attribution TEXT, detail TEXT,
    json TEXT NOT NULL, seconds REAL, created REAL NOT NULL,
    UNIQUE (case_hash, target));
CREATE INDEX verdicts_outcome ON verdicts (outcome);
"""
RELU = [{"id": "n0", "op": "aten::relu", "args": ["x"], "attrs": {}}]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=120)


def one_line_exit_2(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def v1_store(root: Path, n: int = 3) -> None:
    root.mkdir(parents=True)
    con = sqlite3.connect(root / storage.DB)
    con.executescript(V1_SCHEMA)
    for i in range(n):
        c = make_case(RELU, seed=i)
        con.execute("INSERT INTO cases VALUES (?, ?, 'random', ?, ?, 0)",
                    (c.hash, i, json.dumps(c.ops), c.to_json(indent=None)))
    con.execute("INSERT INTO meta VALUES ('versions', ?)",
                (json.dumps({"convfuzz": "0.0.9"}),))
    con.commit()
    con.close()


def columns(db: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")]
        return {n: [r[1:] for r in con.execute(f'PRAGMA index_xinfo("{n}")')]
                or [r[1:] for r in con.execute(f'PRAGMA table_info("{n}")')] for n in names}
    finally:
        con.close()


def test_a_new_store_records_its_schema_version_and_writer(tmp_path: Path) -> None:
    st = Store(tmp_path)
    st.close()
    con = sqlite3.connect(tmp_path / storage.DB)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    writer = json.loads(con.execute("SELECT value FROM meta WHERE key = 'writer'").fetchone()[0])
    assert writer["schema"] == SCHEMA_VERSION and writer["convfuzz"]


def test_an_old_store_reads_as_it_is_and_is_migrated_by_the_next_writer(tmp_path: Path
                                                                        ) -> None:
    v1_store(tmp_path / "s")
    before = (tmp_path / "s" / storage.DB).read_bytes()
    ro = Store(tmp_path / "s", readonly=True)  # readers never migrate: lacking tables are empty
    assert ro.n_cases() == 3 and ro.findings() == [] and ro.missed_fusions() == []
    ro.close()
    assert (tmp_path / "s" / storage.DB).read_bytes() == before
    assert not storage.backup_path(tmp_path / "s", 1).exists()
    st = Store(tmp_path / "s")
    try:
        assert st.migrated_from == 1
        assert st.n_cases() == 3  # every row is still there
        assert st.findings() == []  # and the tables it lacked exist now
    finally:
        st.close()
    backup = storage.backup_path(tmp_path / "s", 1)
    con = sqlite3.connect(backup)
    assert con.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 3
    assert "findings" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    # Migrated once: the next writer finds it current.
    st = Store(tmp_path / "s")
    assert st.migrated_from is None
    st.close()


def test_every_migration_ends_with_the_tables_of_a_new_store(tmp_path: Path) -> None:
    """Guards the next schema change: SCHEMA and the chain of migrations must agree."""
    v1_store(tmp_path / "old")
    Store(tmp_path / "old").close()
    Store(tmp_path / "new").close()
    assert columns(tmp_path / "old" / storage.DB) == columns(tmp_path / "new" / storage.DB)


def test_a_newer_store_is_refused_naming_the_convfuzz_that_wrote_it(tmp_path: Path) -> None:
    Store(tmp_path).close()
    con = sqlite3.connect(tmp_path / storage.DB)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('writer', ?)",
                (json.dumps({"convfuzz": "9.1.0", "schema": 99}),))
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"convfuzz 9\.1\.0 with store schema 99"):
        Store(tmp_path)
    one_line_exit_2(cli("corpus", "list", "--store", str(tmp_path)), "convfuzz 9.1.0",
                    "upgrade convfuzz")


def test_a_second_writer_is_refused_naming_the_holder_and_readers_go_on(tmp_path: Path) -> None:
    st = Store(tmp_path)
    st.record(make_case(RELU), [], seq=0)
    try:
        with pytest.raises(StoreBusy, match=f"pid {os.getpid()} "):
            Store(tmp_path)
        ro = Store(tmp_path, readonly=True)  # no lock taken: reads beside the writer
        assert ro.n_cases() == 1
        with pytest.raises(StoreError, match="read-only"):
            ro.set_meta("x", 1)
        ro.close()
        assert storage.holder(tmp_path).pid == os.getpid()
        # The same through the command line: `fuzz` refused, a reading verb served.
        one_line_exit_2(cli("fuzz", "--out", str(tmp_path), "--cases", "1"),
                        f"pid {os.getpid()} ", "a campaign is writing this store")
        assert cli("targets", "--store", str(tmp_path)).returncode == 0
    finally:
        st.close()
    assert storage.holder(tmp_path) is None
    Store(tmp_path).close()  # released by close()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = ("import sys, time; from fuzzer.store import Store; Store(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy, match=f"pid {p.pid} "):
            Store(tmp_path)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    Store(tmp_path).close()  # no stale lock


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_a_damaged_store_is_one_line_and_exit_2(tmp_path: Path, damage: str) -> None:
    st = Store(tmp_path)
    for i in range(300):  # a few hundred kB, so the damage lands in table pages
        st.record(make_case(RELU, seed=i), [], seq=i)
    st.close()
    db = tmp_path / storage.DB
    data = db.read_bytes()
    half = len(data) // 2
    if damage == "truncate":  # half the file, then garbage
        db.write_bytes(data[:half] + os.urandom(8192))
    else:  # same size, a garbled stretch in the middle
        db.write_bytes(data[:half] + os.urandom(16384) + data[half + 16384:])
    with pytest.raises(StoreDamaged):
        Store(tmp_path, readonly=True)
    verbs = [["corpus", "list", "--store", str(tmp_path)]]
    if damage == "truncate":  # every verb that opens a store says the same
        verbs += [["fuzz", "--resume", str(tmp_path), "--cases", "1"],
                  ["targets", "--store", str(tmp_path)],
                  ["analyze", str(tmp_path), "--out", str(tmp_path / "an")]]
    for args in verbs:
        one_line_exit_2(cli(*args), "damaged", f"convfuzz store recover {tmp_path}")

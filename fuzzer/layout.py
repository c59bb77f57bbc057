"""Where a campaign store keeps what: the one place its file names are spelled. Readers and
the writer (fuzzer.store) ask here instead of joining names of their own."""

from __future__ import annotations

from pathlib import Path

DB = "store.sqlite"  # cases, verdicts, findings, meta (SQLite, WAL)
FINDINGS = "findings"  # one directory of artifacts per finding


def db_path(root: str | Path) -> Path:
    return Path(root) / DB


def is_store(root: str | Path) -> bool:
    """Does `root` hold a campaign store (its database)?"""
    return db_path(root).is_file()


def finding_dir(root: str | Path, fid: str) -> Path:
    return Path(root) / FINDINGS / fid

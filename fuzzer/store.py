"""The campaign store: SQLite (WAL) for cases and verdicts, plus a folder per failing Case.

The driver process is the only writer. Every verdict is committed before it is shown, so a
crash of the driver loses at most the Case in flight.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from fuzzer.case import Case
from fuzzer.verdict import Outcome, Verdict

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
"""


class StoreError(RuntimeError):
    pass


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.root}: cannot create store directory ({e.strerror})") from e
        self.db = sqlite3.connect(self.root / "store.sqlite", timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        self.db.commit()

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def record(self, case: Case, verdicts: list[Verdict], seq: int | None = None) -> None:
        now = time.time()
        self.db.execute("INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?, ?, ?)",
                        (case.hash, seq, case.origin.get("sampler"), json.dumps(case.ops),
                         case.to_json(indent=None), now))
        for v in verdicts:
            self.db.execute(
                "INSERT OR REPLACE INTO verdicts (case_hash, target, outcome, stage, symptom, "
                "attribution, detail, json, seconds, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (case.hash, v.target, v.outcome.value, v.stage.value if v.stage else None,
                 v.symptom.value if v.symptom else None, v.attribution.value, v.detail,
                 json.dumps(v.to_dict()), v.seconds, now))
        self.db.commit()
        for v in verdicts:
            if v.outcome == Outcome.BUG:
                self.write_failure(case, v)

    def write_failure(self, case: Case, v: Verdict) -> Path:
        d = self.root / "failures" / f"{case.hash}-{_slug(v.target)}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "case.json").write_text(case.to_json() + "\n")
        (d / "verdict.json").write_text(json.dumps(v.to_dict(), indent=2, sort_keys=True) + "\n")
        return d

    def counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT outcome, stage, symptom, COUNT(*) FROM verdicts GROUP BY 1, 2, 3").fetchall()
        out: dict[str, int] = {}
        for outcome, stage, symptom, n in rows:
            key = f"{stage}/{symptom}" if stage and outcome != "pass" else outcome
            out[key] = out.get(key, 0) + n
        return out

    def n_cases(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def max_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM cases").fetchone()
        return -1 if row[0] is None else int(row[0])

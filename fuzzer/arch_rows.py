"""The store's architecture verdicts (`convfuzz models`): one row per mined architecture x
target in the `arch_verdicts` table (fuzzer/storage.py has its schema).

A row says what happened to a whole architecture on one target: its summary class
(`fuzzer.models.CLASSES`), the verdict's stage/symptom/attribution and one-line detail, the
full verdict as JSON (evidence: timings per component, referees, blame), the seconds it took,
and the architecture's source, modality and structure as archs.json recorded them. Readers
(`analyze`, exposure) use `rows()`; the one writer is `record()`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from fuzzer import storage
from fuzzer.verdict import Verdict

COLUMNS = ("arch", "target", "source", "modality", "structure", "class", "outcome", "stage",
           "symptom", "attribution", "detail", "json", "seconds", "created")


@dataclass(frozen=True)
class ArchRow:
    arch: str  # "transformers:bert"
    target: str
    source: str
    modality: str
    structure: str
    cls: str  # summary class: correct, wrong_values, invalid_model, crash, unsupported...
    verdict: Verdict
    created: float

    @property
    def failed(self) -> bool:
        # on use: models imports torch
        from fuzzer.models import FAILING

        return self.cls in FAILING


def record(store: Any, arch: Any, v: Verdict, cls: str) -> None:
    """Commit one architecture's verdict on one target (replacing an earlier one).
    `store` is a writing fuzzer.store.Store, `arch` a fuzzer.models.Arch."""
    if store.readonly:
        raise storage.StoreError(f"{store.root}: opened read-only")
    try:
        store.db.execute(
            f"INSERT OR REPLACE INTO arch_verdicts ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            (arch.name, v.target, arch.source, arch.modality, arch.structure, cls,
             v.outcome.value, v.stage.value if v.stage else None,
             v.symptom.value if v.symptom else None, v.attribution.value, v.detail,
             json.dumps(v.to_dict(), sort_keys=True, default=str), v.seconds, time.time()))
        store.db.commit()
    except (sqlite3.Error, OSError) as e:
        err = storage.translate(e, store.root)
        if err is e:
            raise
        raise err from None


def done(store: Any) -> set[tuple[str, str]]:
    """(architecture, target) pairs with a verdict: what `--resume` skips."""
    return {(a, t) for a, t in store.db.execute("SELECT arch, target FROM arch_verdicts")}


def rows(store: Any, target: str | None = None) -> list[ArchRow]:
    """Every architecture verdict of the store (of one target), by architecture, target."""
    sql = ("SELECT arch, target, source, modality, structure, class, json, created "
           "FROM arch_verdicts" + (" WHERE target = ?" if target else "")
           + " ORDER BY arch, target")
    return [ArchRow(a, t, s or "", m or "", st or "", c, Verdict.from_dict(json.loads(j)), cr)
            for a, t, s, m, st, c, j, cr in store.db.execute(sql, (target,) if target else ())]

"""The store's rows as types: a finding and a finding's link as fuzzer/store.py returns them;
and campaign stores read back for analysis: every Case with its verdicts, the findings, and
what each store was (seed, sampler, targets). Free of torch: analysis runs on a machine that
only has the stores.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from fuzzer.storage import StoreError, damaged, open_readonly
from fuzzer.verdict import Verdict

EVALUATED = ("pass", "bug", "unsupported")


# -- the store's own rows -------------------------------------------------------------------
@dataclass(frozen=True)
class FindingRow:
    """A row of the store's findings table, its JSON columns parsed. The fields are the
    columns, in their order (FINDING_FIELDS), except that the minimized Case's column `json`
    is `case_json`."""
    id: str  # the Signature of the minimized Case
    target: str
    family: str
    stage: str | None
    symptom: str | None
    attribution: str | None
    error_class: str
    detail: str | None  # as a user reads it (other shapes included)
    ops: list[str]
    count: int
    case_hash: str
    original_hash: str
    case_json: str  # the minimized Case
    verdict: dict[str, Any]  # the minimized Case's verdict, as JSON
    shrink: dict[str, Any] | None
    versions: dict[str, str] | None
    created: float
    updated: float

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> FindingRow:
        vals = list(row)
        for i in _JSON_FIELDS:
            vals[i] = json.loads(vals[i]) if vals[i] is not None else None
        return cls(*vals)

    @property
    def judged(self) -> Verdict:
        return Verdict.from_dict(self.verdict)

    def to_dict(self) -> dict[str, Any]:
        """Column name -> value, in the table's order (what `corpus show --json` prints)."""
        return {"json" if k == "case_json" else k: getattr(self, k)
                for k in self.__dataclass_fields__}


FINDING_FIELDS = tuple("json" if k == "case_json" else k for k in FindingRow.__dataclass_fields__)
_JSON_FIELDS = tuple(FINDING_FIELDS.index(k) for k in ("ops", "verdict", "shrink", "versions"))


class Link(NamedTuple):
    """A failing Case linked to the finding it reproduces."""
    case_hash: str
    target: str
    how: str  # shrunk | matched | unshrunk ...


@dataclass
class VRow:
    target: str
    outcome: str
    stage: str | None
    symptom: str | None
    raw: dict[str, Any]  # the verdict JSON (error text for signatures)


@dataclass
class CaseRow:
    hash: str
    sampler: str
    case: dict[str, Any]
    verdicts: dict[str, VRow] = field(default_factory=dict)
    raw: bool = True

    @property
    def evaluated(self) -> bool:
        return any(v.outcome in EVALUATED for v in self.verdicts.values())

    @property
    def failed(self) -> bool:
        return any(v.outcome == "bug" for v in self.verdicts.values())

    @property
    def passed(self) -> bool:
        """Never failed and passed somewhere: the background of the enrichment tests."""
        return not self.failed and any(v.outcome == "pass" for v in self.verdicts.values())


@dataclass
class Finding:
    signature: str
    count: int
    target: str
    stage: str | None
    symptom: str | None
    case: dict[str, Any]  # the minimized Case
    arms: list[str]  # samplers of the raw Cases that reproduce it


@dataclass
class StoreInfo:
    path: str
    cases: int
    verdicts: int
    span_s: float  # first to last Case recorded: the wall-clock budget actually spent
    config: dict[str, Any]
    findings: int | None  # None: the store has no findings table


@dataclass
class Campaign:
    cases: list[CaseRow]
    findings: list[Finding] | None
    stores: list[StoreInfo]


def _connect(path: Path) -> sqlite3.Connection:
    con = open_readonly(path)  # checked: a damaged store is one line naming `store recover`
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"cases", "verdicts"} <= tables:
        con.close()
        raise StoreError(f"{path}: not a campaign store (no cases/verdicts tables)")
    return con


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _load_findings(con: sqlite3.Connection) -> list[Finding] | None:
    """Minimized failures (fuzzer/store.py: id = signature, json = the minimized Case), with
    the arms of the raw Cases linked to each; None when the store predates findings."""
    cols = set(_columns(con, "findings"))
    if not {"id", "target", "stage", "symptom", "count", "json"} <= cols:
        return None
    links: dict[str, set[str]] = defaultdict(set)
    if _columns(con, "finding_cases"):
        for fid, sampler in con.execute(
                "SELECT l.finding_id, c.sampler FROM finding_cases l "
                "JOIN cases c ON c.hash = l.case_hash"):
            links[fid].add(sampler or "unknown")
    return [Finding(fid, int(n or 1), target, stage, symptom, json.loads(blob),
                    sorted(links[fid]))
            for fid, target, stage, symptom, n, blob in con.execute(
                "SELECT id, target, stage, symptom, count, json FROM findings ORDER BY created")]


def load(stores: Sequence[Path]) -> Campaign:
    """Read one or more stores; a Case found in several is one Case (verdicts merged)."""
    if not stores:
        raise StoreError("no store directories given")
    cases: dict[str, CaseRow] = {}
    findings: dict[str, Finding] | None = None
    infos: list[StoreInfo] = []
    for path in stores:
        con = _connect(Path(path))
        try:
            n_cases = n_verdicts = 0
            t0, t1 = math.inf, -math.inf
            for h, sampler, blob, created in con.execute(
                    "SELECT hash, sampler, json, created FROM cases ORDER BY seq, created"):
                n_cases += 1
                t0, t1 = min(t0, created), max(t1, created)
                case = json.loads(blob)
                origin = case.get("origin") or {}
                arm = str(origin.get("sampler") or sampler or "unknown")
                raw = origin.get("parent") is None or arm == "mutate"
                cases.setdefault(h, CaseRow(h, arm, case, raw=raw))
            for h, target, outcome, stage, symptom, blob in con.execute(
                    "SELECT case_hash, target, outcome, stage, symptom, json FROM verdicts"):
                n_verdicts += 1
                if h in cases:
                    cases[h].verdicts[target] = VRow(target, outcome, stage, symptom,
                                                     json.loads(blob))
            meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
            found = _load_findings(con)
        except sqlite3.DatabaseError as e:
            raise damaged(Path(path), str(e)) from None
        except (json.JSONDecodeError, KeyError) as e:
            raise StoreError(f"{path}: unreadable store ({e})") from None
        finally:
            con.close()
        if found is not None:
            findings = findings or {}
            for f in found:  # one finding may turn up in several stores (e.g. both arms)
                if f.signature in findings:
                    old = findings[f.signature]
                    old.count += f.count
                    old.arms = sorted({*old.arms, *f.arms})
                else:
                    findings[f.signature] = f
        infos.append(StoreInfo(str(path), n_cases, n_verdicts,
                               0.0 if n_cases == 0 else float(t1 - t0),
                               meta.get("config") or {}, None if found is None else len(found)))
    return Campaign(list(cases.values()),
                    None if findings is None else list(findings.values()), infos)


# ---------------------------------------------------------------------------- statistics

# ---------------------------------------------------------------------------- data flow

"""The corpus: curated findings, one folder each, replayable on whatever versions are installed.

`corpus/<id>/` holds `case.json` (the minimized Case), `original.json` (the Case the campaign
found) and `finding.json` (target, verdict, signature, operators, versions). A campaign store's
findings read through the same `Entry` type, so every command works on either.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzer.case import Case
from fuzzer.storage import is_store
from fuzzer.store import FindingRow, Store, StoreError, versions
from fuzzer.verdict import Outcome, Verdict, failure_key, target_family

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
# The packages whose versions decide a verdict; a finding fixed under other versions of
# these is fixed upstream, one fixed under the same versions is a flaky finding.
DECISIVE = ("torch", "onnx", "onnxruntime", "onnxscript")
STILL_FAILING, FIXED, CHANGED = "still_failing", "fixed", "changed"


class CorpusError(StoreError):
    """An unknown or ambiguous finding id, or a malformed corpus folder."""


@dataclass
class Entry:
    id: str
    meta: dict[str, Any]  # finding.json
    case: Case  # minimized
    original: Case | None
    where: Path | None = None

    @property
    def target(self) -> str:
        return str(self.meta["target"])

    @property
    def verdict(self) -> Verdict:
        return Verdict.from_dict(self.meta["verdict"])

    def row(self) -> dict[str, Any]:
        m = self.meta
        return {"id": self.id, "target": m["target"], "exporter": m["target"].split("/")[0],
                "stage": m["stage"], "symptom": m["symptom"], "attribution": m["attribution"],
                "ops": self.case.ops, "count": m.get("count", 1)}


def _load_dir(d: Path) -> Entry:
    try:
        meta = json.loads((d / "finding.json").read_text())
        case = Case.from_json((d / "case.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CorpusError(f"{d}: not a finding folder ({e})") from None
    orig = d / "original.json"
    return Entry(d.name, meta, case, Case.from_json(orig.read_text()) if orig.is_file()
                 else None, d)


def entries(root: Path = CORPUS) -> list[Entry]:
    if not root.is_dir():
        return []
    return [_load_dir(d) for d in sorted(root.iterdir()) if (d / "finding.json").is_file()]


def _store_entry(store: Store, f: FindingRow) -> Entry:
    orig = store.case(f.original_hash)
    d = store.finding_dir(f.id)
    if orig is None and (d / "original.json").is_file():
        orig = Case.from_json((d / "original.json").read_text())
    # finding.json's fields: the row's columns but the Case, which is case.json
    meta = {k: v for k, v in f.to_dict().items() if k != "json"}
    meta["signature"] = f.id
    return Entry(f.id, meta, Case.from_json(f.case_json), orig, d)


def store_entries(store_dir: Path) -> list[Entry]:
    if not is_store(store_dir):
        raise CorpusError(f"{store_dir}: no campaign store here (convfuzz fuzz --out DIR)")
    store = Store(store_dir, readonly=True)
    try:
        return [_store_entry(store, f) for f in store.findings()]
    finally:
        store.close()


def find(fid: str, store_dir: Path | None = None, root: Path = CORPUS) -> Entry:
    """An entry by id or unique id prefix: a store's findings with `store_dir`, else the
    repo corpus, whose folders are also found by their finding's signature (the id it had in
    the store it was curated from: `corpus add 1c4e2867` then `report 1c4e2867`)."""
    pool = store_entries(store_dir) if store_dir is not None else entries(root)
    exact = [e for e in pool if fid in (e.id, e.meta.get("signature"))]
    hits = exact or ([e for e in pool if e.id.startswith(fid) or str(
        e.meta.get("signature", "")).startswith(fid)] if fid else [])
    where = str(store_dir) if store_dir is not None else "the corpus"
    if not hits:
        raise CorpusError(f"no finding {fid!r} in {where} (see `convfuzz corpus list`)")
    if len(hits) > 1:
        raise CorpusError(f"finding id {fid!r} is ambiguous in {where}: "
                          f"{', '.join(e.id for e in hits[:5])}")
    return hits[0]


def slug(meta: dict[str, Any], ops: list[str]) -> str:
    """exporter-op-symptom-signature prefix, e.g. torchscript-cdist-wrong_values-a6d7d27f."""
    op = ops[-1].split("::")[-1] if ops else "case"
    exporter = target_family(meta["target"]).split("/")[0]
    return re.sub(r"[^a-z0-9_-]+", "-",
                  f"{exporter}-{op}-{meta['symptom']}-{meta['id'][:8]}".lower())


def add(store_dir: Path, fid: str, root: Path = CORPUS, note: str = "",
        name: str | None = None) -> Entry:
    """Copy a store's finding into the corpus (the minimized Case and its metadata)."""
    e = find(fid, store_dir)
    meta = dict(e.meta)
    meta.pop("json", None)
    meta["note"] = note
    v = dict(meta["verdict"])
    v["error"] = v.get("error", "")[:4000]  # a log tail is enough to recognise it
    meta["verdict"] = v
    d = root / (name or slug(meta, e.case.ops))
    if d.exists():
        raise CorpusError(f"{d}: already in the corpus")
    d.mkdir(parents=True)
    (d / "case.json").write_text(e.case.to_json() + "\n")
    if e.original is not None:
        (d / "original.json").write_text(e.original.to_json() + "\n")
    (d / "finding.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str)
                                    + "\n")
    if e.where is not None and (e.where / "model.onnx").is_file():
        shutil.copy(e.where / "model.onnx", d / "model.onnx")
    return _load_dir(d)


@dataclass
class Replay:
    entry: Entry
    verdict: Verdict
    status: str  # still_failing | fixed | changed
    same_versions: bool

    def row(self) -> dict[str, Any]:
        return {"id": self.entry.id, "target": self.entry.target,
                "recorded": self.entry.verdict.key, "now": self.verdict.key,
                "status": self.status, "same_versions": self.same_versions,
                "detail": self.verdict.shown_detail[:200]}


def classify(recorded: Verdict, now: Verdict) -> str:
    if now.outcome == Outcome.BUG and failure_key(now) == failure_key(recorded):
        return STILL_FAILING
    if now.outcome in (Outcome.PASS, Outcome.UNSUPPORTED):
        return FIXED
    return CHANGED


def same_versions(meta: dict[str, Any]) -> bool:
    now, then = versions(), meta.get("versions") or {}
    return all(now.get(k) == then.get(k) for k in DECISIVE)


def replay(entry: Entry, run: Callable[[Case, str], Verdict]) -> Replay:
    v = run(entry.case, entry.target)
    return Replay(entry, v, classify(entry.verdict, v), same_versions(entry.meta))

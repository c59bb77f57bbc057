"""The campaign store: SQLite (WAL) for cases, verdicts and findings, plus folders.

A *finding* is one distinct failure: its id is the Signature (DESIGN.md) of its minimized Case.
Every failing Case is linked to the finding it reproduces and bumps its count. Each finding has
a folder: original and minimized Case, verdict, ONNX model, inputs, outputs and log.

The driver process is the only writer. Every verdict is committed before it is shown, so a
crash of the driver loses at most the Case in flight. A finding's row and Case files are
written at once; its model, inputs and outputs (an export in a child process, seconds) are
written on a thread of their own, finished by `flush()` or `close()`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing as mp
import platform
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from fuzzer import storage
from fuzzer.case import Case
from fuzzer.rows import FINDING_FIELDS, FindingRow, Link
from fuzzer.sandbox import PRELOAD
from fuzzer.storage import StoreError
from fuzzer.verdict import Symptom, Verdict, error_class, failure_key, signature, target_family

__all__ = ["FINDING_FIELDS", "FindingRow", "Link", "Store", "StoreError", "dump_artifacts",
           "versions"]
F = TypeVar("F", bound=Callable[..., Any])
WRITES = {"set_meta", "record_many", "add_finding", "link", "add_missed", "restore_finding"}


def _guarded(fn: F) -> F:
    """SQLite and file-system errors as store errors: a full disk (StoreFull) or a damaged
    database (StoreDamaged), one line naming the store. After a failed write the store is
    `failed` and writes nothing more (a campaign stops on it)."""
    @functools.wraps(fn)
    def wrapper(self: Store, *a: Any, **kw: Any) -> Any:
        if fn.__name__ in WRITES:
            if self.readonly:
                raise StoreError(f"{self.root}: opened read-only")
            if self.failed is not None:
                raise self.failed
        try:
            return fn(self, *a, **kw)
        except (sqlite3.Error, OSError) as e:
            err = storage.translate(e, self.root)
            if err is e:
                raise
            if isinstance(err, storage.StoreFull):
                self.failed = err
                with contextlib.suppress(sqlite3.Error):
                    self.db.rollback()
            raise err from None
    return wrapper  # type: ignore[return-value]


class Store:
    """A campaign store. `Store(dir)` is its one writer (it takes the store's lock, refusing a
    second one); `Store(dir, readonly=True)` reads beside a running campaign (fuzzer/storage.py
    opens both)."""

    def __init__(self, root: str | Path, readonly: bool = False,
                 lock: storage.Lock | None = None) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self.failed: StoreError | None = None
        self._lock: storage.Lock | None = None
        self.migrated_from: int | None = None
        if readonly:
            self.db = storage.open_readonly(self.root)
        else:
            opened = storage.open_writer(self.root, lock)
            self.db, self._lock = opened.con, opened.lock
            self.migrated_from = opened.migrated_from
            if self.get_meta("versions") is None:
                self.set_meta("versions", versions())
        # Findings by failure key, built on first use and kept in step by add_finding (the
        # driver is the only writer): matching a failure must not read every finding.
        self._by_key: dict[tuple[str, ...], list[tuple[str, Case]]] | None = None
        # Writing a finding's artifacts re-exports its Case in a fresh process (2.7-4.8 s
        # each, measured): done in the driver's loop it stalled the campaign for that long
        # on every new finding, workers idle, and most of the shrink tail was spent there.
        self._artifacts: ThreadPoolExecutor | None = None
        self._pending: list[Future[bool]] = []

    def flush(self) -> None:
        """Wait until every finding folder written so far has its artifacts."""
        for fut in self._pending:
            fut.result()
        self._pending.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._artifacts is not None:
                self._artifacts.shutdown()
            self.db.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    @_guarded
    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        self.db.commit()

    @_guarded
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def record(self, case: Case, verdicts: list[Verdict], seq: int | None = None) -> None:
        self.record_many([(seq, case, verdicts)])

    @_guarded
    def record_many(self, rows: list[tuple[int | None, Case, list[Verdict]]]) -> None:
        """Cases and their verdicts, committed together (one transaction for a job's
        Cases: the commit, not the inserts, is what costs)."""
        for seq, case, verdicts in rows:
            self._insert(case, verdicts, seq)
        self.db.commit()

    def _insert(self, case: Case, verdicts: list[Verdict], seq: int | None) -> None:
        now, h = time.time(), case.hash
        self.db.execute("INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?, ?, ?)",
                        (h, seq, case.origin.get("sampler"), json.dumps(case.ops),
                         case.to_json(indent=None), now))
        for v in verdicts:
            self.db.execute(
                "INSERT OR REPLACE INTO verdicts (case_hash, target, outcome, stage, symptom, "
                "attribution, detail, json, seconds, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (h, v.target, v.outcome.value, v.stage.value if v.stage else None,
                 v.symptom.value if v.symptom else None, v.attribution.value, v.shown_detail,
                 json.dumps(v.to_dict()), v.seconds, now))

    @_guarded
    def add_missed(self, case: Case, missed: list[dict[str, str]]) -> int:
        """Record a Case's missed fusions (committed with the next verdicts); how many were
        new."""
        n = 0
        for m in missed:
            n += self.db.execute("INSERT OR IGNORE INTO missed_fusions VALUES (?,?,?,?,?,?)",
                                 (m["fusion"], m["fired_on"], m["missed_on"], case.hash,
                                  json.dumps(case.ops), time.time())).rowcount
        return n

    @_guarded
    def missed_fusions(self) -> list[dict[str, Any]]:
        """Per (fusion, fired on, missed on): how many Cases, and the shortest one's ops."""
        rows = self.db.execute(
            "SELECT fusion, fired_on, missed_on, COUNT(*), MIN(length(ops)), "
            "(SELECT ops FROM missed_fusions m2 WHERE m2.fusion = m.fusion AND m2.fired_on = "
            "m.fired_on AND m2.missed_on = m.missed_on ORDER BY length(ops) LIMIT 1) "
            "FROM missed_fusions m GROUP BY 1, 2, 3 ORDER BY 4 DESC").fetchall()
        return [{"fusion": f, "fired_on": a, "missed_on": b, "cases": n,
                 "shortest": json.loads(o)} for f, a, b, n, _, o in rows]

    @_guarded
    def fusions_by_target(self) -> dict[str, dict[str, int]]:
        """Per target, each fusion/rule that fired and on how many verdicts."""
        out: dict[str, dict[str, int]] = {}
        # Parsed here, not with json_extract: a verdict's evidence may hold NaN, which
        # Python's JSON writes and SQLite's JSON functions refuse.
        for target, blob in self.db.execute(
                "SELECT target, json FROM verdicts WHERE json LIKE '%\"fusions\"%'"):
            per = out.setdefault(target, {})
            for name in (json.loads(blob).get("evidence") or {}).get("fusions") or {}:
                per[name] = per.get(name, 0) + 1
        return out

    @_guarded
    def counts(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT outcome, stage, symptom, COUNT(*) FROM verdicts GROUP BY 1, 2, 3").fetchall()
        out: dict[str, int] = {}
        for outcome, stage, symptom, n in rows:
            key = f"{stage}/{symptom}" if stage and outcome != "pass" else outcome
            out[key] = out.get(key, 0) + n
        return out

    @_guarded
    def n_cases(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    @_guarded
    def max_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM cases").fetchone()
        return -1 if row[0] is None else int(row[0])

    # -- findings ------------------------------------------------------------------------
    @_guarded
    def add_finding(self, original: Case, verdict: Verdict, minimized: Case,
                    min_verdict: Verdict, shrink: dict[str, Any] | None = None,
                    how: str = "shrunk") -> tuple[str, bool]:
        """File a failure under the signature of its minimized Case: a new finding (with
        its folder), or one more count and link for a known one. Returns (id, new)."""
        fid = signature(min_verdict, minimized.ops)  # a finding's id: its Signature
        if self.get_finding(fid, prefix=False) is not None:
            self.link(fid, original, verdict.target, how)
            return fid, False
        # The folder first: a full disk stops the filing before the row exists, so the
        # failure stays unfiled and a resume files it again, folder and all.
        d = self.write_finding(fid, original, verdict, minimized, min_verdict, shrink,
                               artifacts=False)
        self._insert_finding(fid, original, minimized, min_verdict, shrink, versions())
        self.db.commit()
        self._index(fid, minimized, min_verdict)
        self.link(fid, original, verdict.target, how)
        self._dump_artifacts(minimized, min_verdict, d)
        return fid, True

    def _insert_finding(self, fid: str, original: Case, minimized: Case, min_verdict: Verdict,
                        shrink: dict[str, Any] | None, vers: dict[str, str],
                        count: int = 0, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.db.execute(
            f"INSERT INTO findings ({', '.join(FINDING_FIELDS)}) VALUES "
            f"({', '.join('?' * len(FINDING_FIELDS))})",
            (fid, min_verdict.target, target_family(min_verdict.target),
             min_verdict.stage.value if min_verdict.stage else None,
             min_verdict.symptom.value if min_verdict.symptom else None,
             min_verdict.attribution.value, error_class(min_verdict), min_verdict.shown_detail,
             json.dumps(minimized.ops), count, minimized.hash, original.hash,
             minimized.to_json(indent=None), json.dumps(min_verdict.to_dict()),
             json.dumps(shrink) if shrink is not None else None, json.dumps(vers), now, now))

    @_guarded
    def restore_finding(self, fid: str, original: Case, minimized: Case, min_verdict: Verdict,
                        shrink: dict[str, Any] | None, count: int, created: float) -> None:
        """A finding row rebuilt from its folder (`store recover`): the folder stays as it
        is, and no artifacts are written again."""
        self._insert_finding(fid, original, minimized, min_verdict, shrink, {}, count, created)
        self.db.commit()

    def like(self, v: Verdict) -> list[tuple[str, Case]]:
        """(id, minimized Case) of the findings that fail the way `v` does (its failure
        key)."""
        if self._by_key is None:
            self._by_key = {}
            for f in self.findings():
                self._index(f.id, Case.from_json(f.case_json), f.judged)
        return self._by_key.get(failure_key(v), [])

    def _index(self, fid: str, minimized: Case, v: Verdict) -> None:
        if self._by_key is not None:
            self._by_key.setdefault(failure_key(v), []).append((fid, minimized))

    @_guarded
    def link(self, fid: str, case: Case, target: str, how: str) -> bool:
        """Link a failing Case to a finding; the count grows once per (Case, target)."""
        cur = self.db.execute("INSERT OR IGNORE INTO finding_cases VALUES (?, ?, ?, ?, ?)",
                              (fid, case.hash, target, how, time.time()))
        if cur.rowcount:
            self.db.execute("UPDATE findings SET count = count + 1, updated = ? WHERE id = ?",
                            (time.time(), fid))
        self.db.commit()
        return bool(cur.rowcount)

    @_guarded
    def unfiled(self) -> list[tuple[Case, Verdict]]:
        """Failures recorded but linked to no finding: a campaign stopped (killed, or Ctrl-C)
        while they waited for their shrink. Oldest first."""
        rows = self.db.execute(
            "SELECT c.json, v.json FROM verdicts v JOIN cases c ON c.hash = v.case_hash "
            "WHERE v.outcome = 'bug' AND NOT EXISTS (SELECT 1 FROM finding_cases f WHERE "
            "f.case_hash = v.case_hash AND f.target = v.target) ORDER BY c.seq, v.id")
        return [(Case.from_json(c), Verdict.from_dict(json.loads(v))) for c, v in rows]

    @_guarded
    def findings(self) -> list[FindingRow]:
        rows = self.db.execute(f"SELECT {', '.join(FINDING_FIELDS)} FROM findings "
                               "ORDER BY created").fetchall()
        return [FindingRow.from_db(r) for r in rows]

    @_guarded
    def get_finding(self, fid: str, prefix: bool = True) -> FindingRow | None:
        """A finding by id (or a unique id prefix). Raises StoreError when ambiguous."""
        cols = ", ".join(FINDING_FIELDS)
        row = self.db.execute(f"SELECT {cols} FROM findings WHERE id = ?", (fid,)).fetchone()
        if row is None and prefix and fid:
            rows = self.db.execute(f"SELECT {cols} FROM findings WHERE id LIKE ?",
                                   (fid.replace("%", "") + "%",)).fetchall()
            if len(rows) > 1:
                raise StoreError(f"finding id {fid!r} is ambiguous ({len(rows)} match)")
            row = rows[0] if rows else None
        return FindingRow.from_db(row) if row else None

    @_guarded
    def linked(self, fid: str) -> list[Link]:
        return [Link(*r) for r in self.db.execute(
            "SELECT case_hash, target, how FROM finding_cases WHERE finding_id = ? "
            "ORDER BY created", (fid,))]

    @_guarded
    def case(self, case_hash: str) -> Case | None:
        row = self.db.execute("SELECT json FROM cases WHERE hash = ?", (case_hash,)).fetchone()
        return Case.from_json(row[0]) if row else None

    def finding_dir(self, fid: str) -> Path:
        return storage.findings_dir(self.root) / fid

    def write_finding(self, fid: str, original: Case, verdict: Verdict, minimized: Case,
                      min_verdict: Verdict, shrink: dict[str, Any] | None,
                      artifacts: bool = True) -> Path:
        d = self.finding_dir(fid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "original.json").write_text(original.to_json() + "\n")
        (d / "case.json").write_text(minimized.to_json() + "\n")
        (d / "verdict.json").write_text(json.dumps(min_verdict.to_dict(), indent=2,
                                                   sort_keys=True, default=str) + "\n")
        log = [f"finding {fid}: {min_verdict.target} {min_verdict.key}",
               f"original {original.hash}: {' -> '.join(original.ops)}",
               f"  {verdict.shown_detail}",
               f"minimized {minimized.hash}: {' -> '.join(minimized.ops)}",
               f"  {min_verdict.shown_detail}", f"shrink: {json.dumps(shrink)}", "",
               "error:", min_verdict.shown_error if min_verdict.error else min_verdict.shown_detail]
        (d / "log.txt").write_text("\n".join(log) + "\n")
        if artifacts:
            self._dump_artifacts(minimized, min_verdict, d)
        return d

    def _dump_artifacts(self, minimized: Case, min_verdict: Verdict, d: Path) -> None:
        # A Case that hangs or exhausts memory would do it again: keep its inputs only.
        chain = min_verdict.symptom not in (Symptom.HANG, Symptom.OUT_OF_MEMORY)
        if self._artifacts is None:
            self._artifacts = ThreadPoolExecutor(1, thread_name_prefix="convfuzz-artifacts")
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._artifacts.submit(dump_artifacts, minimized,
                                                    min_verdict.target, d, chain=chain))


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    for pkg in ("convfuzz", "torch", "onnx", "onnxruntime", "onnxscript", "numpy", "openvino",
                "executorch", "litert-torch", "ai-edge-litert", "tensorflow-cpu", "tf2onnx"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return tuple(out.items())


def versions() -> dict[str, str]:
    """The versions a verdict depends on: a finding is only meaningful with them (read once
    a process: importlib.metadata costs milliseconds a call)."""
    return dict(_versions())


def _dump(case_json: str, target: str, folder: str, chain: bool) -> None:
    """Child process: the finding's ONNX model, inputs and outputs (torch's and the target's,
    as far as the chain gets). Runs apart because the chain may abort the process."""
    # the child process imports these: the driver writing the store needs none
    import contextlib
    import os
    import traceback

    import numpy as np
    import torch

    from fuzzer import frontends, targets
    from fuzzer.worker import thread_lock_for_tqdm

    thread_lock_for_tqdm()  # killed on a hang, it would leave a named semaphore behind
    d = Path(folder)
    fd = os.open(d / "export.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    torch.set_num_threads(1)
    case = Case.from_json(case_json)
    ref = frontends.reference(case)  # the Case in its own framework (torch, TF)
    module, inputs = ref.module, ref.inputs
    np.savez(d / "inputs.npz", **{x.name: t.numpy() for x, t in zip(case.inputs, inputs,
                                                                    strict=True)})
    expected = [t.detach().numpy() for t in ref.out32]
    art = targets.Artifact(case, module, inputs)
    for comp in targets.parse(target).components if chain else ():
        try:
            comp.run(art)
        except Exception:
            traceback.print_exc()
            break
    if art.model is not None:
        (d / "model.onnx").write_bytes(art.model)
    outs = {f"expected_{i}": e for i, e in enumerate(expected)}
    for i, a in enumerate(art.outputs or []):
        outs[f"actual_{i}"] = np.asarray(a)
    np.savez(d / "outputs.npz", **outs)
    with contextlib.suppress(OSError):
        os.close(fd)


def dump_artifacts(case: Case, target: str, folder: Path, timeout: float = 60.0,
                   chain: bool = True) -> bool:
    """Write model.onnx, inputs.npz, outputs.npz and export.log into `folder`, isolated in a
    child process; False when the child died or hung (the files it got to stay). Without
    `chain`, only the inputs and torch's outputs."""
    ctx = mp.get_context("forkserver")
    # The sandbox's preload, in case no sandbox started the forkserver (a campaign on Dask):
    # a cold forkserver child imports torch and both exporters for each finding again.
    ctx.set_forkserver_preload(PRELOAD)
    proc = ctx.Process(
        target=_dump, args=(case.to_json(indent=None), target, str(folder), chain),
        daemon=True)
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return proc.exitcode == 0

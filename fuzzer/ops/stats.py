"""What `convfuzz ops` prints: each entry described as plain data, and, given a campaign
store, how often each operator was exercised and failed per target."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from fuzzer.ops.probe import _arg_metas
from fuzzer.ops.spec import Arg, Meta, OpSpec, same_value
from fuzzer.storage import StoreError, open_readonly


def _domain(a: Arg, spec: OpSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"default": a.default, "kind": a.kind}
    if a.pick is not None:
        # Candidates depend on the input; show them for a typical input of the entry.
        metas: list[Meta] = _arg_metas(spec, spec.dtypes[0])
        d["values"] = [v for v in a.pick(metas) if not same_value(v, a.default)]
        d["values_for_shape"] = list(metas[0].shape)
    else:
        d["values"] = [v for v in a.values if not same_value(v, a.default)]
    d["edges"] = list(a.edges)
    if a.doc:
        d["doc"] = a.doc
    return d


def _plain(v: Any) -> Any:
    """Strict JSON: non-finite floats become the strings torch spells them with."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def describe(spec: OpSpec) -> dict[str, Any]:
    return {"name": spec.name, "family": spec.family,
            "args": _plain({a.name: _domain(a, spec) for a in spec.args}),
            "dtypes": list(spec.dtypes), "ranks": list(spec.ranks),
            "overload": spec.overload, "python": spec.python, "doc": spec.doc}


def ops_stats(store_dir: str | Path) -> dict[str, dict[str, dict[str, int]]]:
    """{op: {target: {"exercised", "failed", "unsupported", "invalid"}}} from a campaign
    store: a verdict on a Case counts once for every distinct operator in the Case."""
    db = open_readonly(Path(store_dir))  # never write a store we read
    try:
        rows = db.execute("SELECT c.ops, v.target, v.outcome, COUNT(*) FROM verdicts v "
                          "JOIN cases c ON c.hash = v.case_hash "
                          "GROUP BY c.ops, v.target, v.outcome").fetchall()
    except sqlite3.Error as e:
        raise StoreError(f"{store_dir}: not a convfuzz store ({e})") from None
    finally:
        db.close()
    out: dict[str, dict[str, dict[str, int]]] = {}
    key = {"bug": "failed", "unsupported": "unsupported", "invalid": "invalid"}
    for ops_json, target, outcome, n in rows:
        for name in sorted(set(json.loads(ops_json))):
            c = out.setdefault(name, {}).setdefault(
                target, {"exercised": 0, "failed": 0, "unsupported": 0, "invalid": 0})
            c["exercised"] += n
            if outcome in key:
                c[key[outcome]] += n
    return out

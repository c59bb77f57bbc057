"""Shrink time and runner calls for real findings: each corpus finding's original Case (as the
campaign found it) is shrunk again on its target, from scratch, with a fresh memo. With
--store, the longest failing Cases of a campaign store are shrunk instead.

    python benchmarks/shrink.py [--target-prefix torchscript] [--limit N] [--seconds S]
    python benchmarks/shrink.py --store runs/11 --min-nodes 5 --limit 10

Targets (issue 5): median <= 30 s and <= 200 calls on the TorchScript target.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from fuzzer import corpus
from fuzzer.case import Case
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.shrink import Budget, same_failure, shrink
from fuzzer.storage import open_readonly
from fuzzer.verdict import Outcome, Verdict


def store_pool(store: Path, prefix: str, min_nodes: int,
               limit: int) -> list[tuple[str, Case, str, Case | None, Verdict | None]]:
    """The longest failing Cases of a campaign store, one per operator chain."""
    db = open_readonly(store)  # reads beside a campaign that may still be writing it
    rows = db.execute("SELECT c.hash, c.json, v.target FROM verdicts v JOIN cases c ON "
                      "c.hash = v.case_hash WHERE v.outcome = 'bug' AND v.target LIKE ? "
                      "ORDER BY json_array_length(c.ops) DESC, c.seq", (prefix + "%",))
    out, seen = [], set()
    for h, text, target in rows:
        case = Case.from_json(text)
        if len(case.nodes) >= min_nodes and tuple(case.ops) not in seen:
            seen.add(tuple(case.ops))
            out.append((h, case, target, None, None))
    db.close()
    return out[:limit] if limit else out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-prefix", default="torchscript")
    ap.add_argument("--limit", type=int, default=0, help="at most this many findings (0: all)")
    ap.add_argument("--seconds", type=float, default=120.0, help="budget per finding")
    ap.add_argument("--calls", type=int, default=400, help="budget per finding")
    ap.add_argument("--store", type=Path, help="shrink this store's failing Cases instead")
    ap.add_argument("--min-nodes", type=int, default=5, help="with --store: shortest Case")
    a = ap.parse_args()
    if a.store:
        pool = store_pool(a.store, a.target_prefix, a.min_nodes, a.limit)
    else:
        pool = [(e.id, e.original, e.target, e.case, e.verdict) for e in corpus.entries()
                if e.original is not None and e.target.startswith(a.target_prefix)]
        pool = pool[:a.limit] if a.limit else pool
    if not pool:
        raise SystemExit(f"no failing Case to shrink on {a.target_prefix}*")
    rows = []
    print(f"{'finding':<44} {'nodes':>7} {'calls':>6} {'hits':>5} {'seconds':>8}  "
          f"{'result' if a.store else 'same as the corpus'}")
    with Sandbox(Limits(timeout=60, memory_mb=2048)) as sb:
        for name, original, target, minimized, recorded in pool:
            v = sb.run(original, target)
            if v.outcome != Outcome.BUG:
                print(f"{name:<44} original no longer fails ({v.key}): skipped")
                continue
            res = shrink(original, v, lambda c, t=target: sb.run(c, t),
                         Budget(a.seconds, a.calls))
            rows.append(res)
            if minimized is not None and recorded is not None:
                same = sorted(res.case.ops) == sorted(minimized.ops) and same_failure(
                    res.verdict, recorded)
                tail = "yes" if same else "no: " + " -> ".join(res.case.ops)
            else:
                tail = f"{v.key}: {' -> '.join(o.removeprefix('aten::') for o in res.case.ops)}"
            print(f"{name:<44} {len(original.nodes):>3}->{len(res.case.nodes):<3} "
                  f"{res.calls:>6} {res.hits:>5} {res.seconds:>8.2f}  {tail}")
    if rows:
        secs = [r.seconds for r in rows]
        calls = [r.calls for r in rows]
        print(f"{len(rows)} findings: median {statistics.median(secs):.2f} s "
              f"(max {max(secs):.2f}), median {statistics.median(calls):g} calls "
              f"(max {max(calls)}); targets: median <= 30 s and <= 200 calls")


if __name__ == "__main__":
    main()

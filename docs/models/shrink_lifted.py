"""Shrink a lifted Case on one target, as `convfuzz shrink CASE -t TARGET` does, and optionally
file the result into a campaign store (for `convfuzz corpus add`).

    PYTHONPATH=. .venv/bin/python docs/models/shrink_lifted.py CASE TARGET SECONDS OUT [STORE]

It shrinks with a larger call budget than the CLI's default and files the result where
`convfuzz corpus add` reads it. (It once also patched `fuzzer.edit.keep_nodes`, whose
`resolve_output` was exponential at fan-in on lifted graphs; that is fixed in fuzzer/edit.py.)
"""

from __future__ import annotations

import json
import sys
import time

from fuzzer import shrink as S
from fuzzer.case import load
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.verdict import Outcome


def main() -> None:
    path, target, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    store_dir = sys.argv[5] if len(sys.argv) > 5 else None
    case = load(path)
    t0 = time.perf_counter()
    with Sandbox(Limits(timeout=120, memory_mb=4096)) as sb:
        v = sb.run(case, target)
        print("original:", v.outcome.value, v.key, v.shown_detail[:200], flush=True)
        if v.outcome != Outcome.BUG:
            raise SystemExit(f"{case.hash} does not fail on {target}")
        res = S.shrink(case, v, lambda c: sb.run(c, target), S.Budget(seconds, 600))
    with open(out, "w") as f:
        f.write(res.case.to_json() + "\n")
    print(f"{v.target} {v.key}: {len(case.nodes)} -> {len(res.case.nodes)} "
          f"({' -> '.join(res.case.ops)}) in {res.seconds:.1f} s, {res.calls} runs, "
          f"wall {time.perf_counter() - t0:.0f} s\n  {res.verdict.shown_detail[:300]}")
    print(json.dumps(res.summary()))
    if store_dir:
        from fuzzer.store import Store

        st = Store(store_dir)
        fid, new = st.add_finding(case, v, res.case, res.verdict, res.summary())
        st.flush()
        st.close()
        print("filed", fid, "new" if new else "known")


if __name__ == "__main__":
    main()

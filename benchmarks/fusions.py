"""Optimization coverage per arm: for equal time on one worker, the distinct named fusions and
rewrite rules that fired on the rewriter targets, per arm (real, random, and motif once that
sampler exists), with each arm's failures per target and its missed fusions.

    python benchmarks/fusions.py [--seconds 150] [--seed 1] [--out runs/fusions]
                                 [--arm real --arm random ...] [--target T ...]

Each arm is a campaign of its own (`--no-shrink`, one worker, `pack=1` so ONNX Runtime's own
fusions are recorded per Case); time, not Cases, is what the arms share.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.fusions import known
from fuzzer.sampling import GenConfig, samplers
from fuzzer.store import Store

# TorchScript exports take milliseconds and dynamo's ~0.5 s unpacked, so the default chains
# put every rewriter behind the TorchScript exporter (`--target` adds dynamo chains).
REWRITER_TARGETS = (
    "torchscript-17/ort-all",  # ONNX Runtime's own graph transformers
    "torchscript-17/onnxscript-rewrite/ort-disabled",
    "torchscript-17/onnxscript-ort-fusions/ort-disabled",
    "torchscript-17/ort-transformers-bert/ort-disabled",
    "torchscript-17/ort-transformers-gpt2/ort-disabled",
)


def arm(name: str, seconds: float, seed: int, targets: list[str], out: Path) -> dict:
    d = out / name
    if d.exists():
        raise SystemExit(f"{d}: exists (choose another --out)")
    store = Store(d)
    cfg = CampaignConfig(seed=seed, seconds=seconds, targets=targets, workers=1,
                         sampler=name, gen=GenConfig(), shrink=None, pack=1)
    t0 = time.perf_counter()
    prog = run_campaign(cfg, store)
    wall = time.perf_counter() - t0
    per_target = {t: {"fired": sorted(f)} for t, f in store.fusions_by_target().items()}
    rows = store.db.execute("SELECT target, COUNT(*), SUM(outcome = 'bug') FROM verdicts "
                            "GROUP BY target").fetchall()
    for t, n, b in rows:
        per_target.setdefault(t, {"fired": []}).update(ran=n, failed=b)
    missed = store.missed_fusions()
    store.close()
    fired = sorted({f for t in per_target.values() for f in t["fired"]})
    return {"arm": name, "seconds": wall, "cases": prog.cases, "fired": fired,
            "targets": per_target, "missed": missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/fusions"))
    ap.add_argument("--arm", action="append", default=None)
    ap.add_argument("--target", action="append", default=None)
    a = ap.parse_args()
    arms = a.arm or [s for s in ("real", "random", "motif") if s in samplers()]
    targets = a.target or list(REWRITER_TARGETS)
    results = [arm(name, a.seconds, a.seed, targets, a.out) for name in arms]
    K = len(known())
    print(f"equal time per arm: {a.seconds:.0f} s, 1 worker, seed {a.seed}; "
          f"targets: {', '.join(targets)}")
    for r in results:
        print(f"\n{r['arm']}: {r['cases']} Cases in {r['seconds']:.0f} s; distinct fusions/"
              f"rules fired: {len(r['fired'])} of {K} known")
        for f in r["fired"]:
            print(f"  {f}")
        for t, d in sorted(r["targets"].items()):
            print(f"  {t}: {d.get('ran', 0)} ran, {d.get('failed', 0)} failed, "
                  f"{len(d['fired'])} fired")
        for m in r["missed"]:
            print(f"  missed {m['fusion']} on {m['missed_on']} ({m['cases']} Cases; fired on "
                  f"{m['fired_on']}): {' -> '.join(m['shortest'])}")
    overall = sorted({f for r in results for f in r["fired"]})
    print(f"\noverall: {len(overall)} distinct named fusions/rules fired; "
          + ", ".join(f"{r['arm']} {len(r['fired'])}" for r in results))
    (a.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

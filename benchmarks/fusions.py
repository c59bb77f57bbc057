"""Optimization coverage per arm: for equal time on one worker, the distinct named fusions and
rewrite rules that fired on the rewriter targets, per arm (real, random, motif, the motif
sampler's near misses, windows of mined architectures), with each arm's failures per target and
its missed fusions. Fusions (several operators computed by one fused op) and generic cleanups
(identity elimination, cast collapsing...) are counted apart (`fuzzer.fusions.kind`): a cleanup
fires on almost any chain.

    python benchmarks/fusions.py [--seconds 150] [--seed 1] [--out runs/fusions]
                                 [--arm real --arm random --arm motif --arm motif-near ...]
                                 [--target T ...]

Each arm is a campaign of its own (`--no-shrink`, one worker, `pack=1` so ONNX Runtime's own
fusions are recorded per Case); time, not Cases, is what the arms share.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.fusions import known, split_kinds
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

# An arm: the sampler it draws from and its generation settings. `motif-near` is the motif
# sampler with every Case a near miss (one precondition changed): what fires there fired
# where its pattern's preconditions do not all hold.
ARMS: dict[str, tuple[str, GenConfig]] = {
    "real": ("real", GenConfig()),
    "random": ("random", GenConfig()),
    "motif": ("motif", GenConfig()),
    "motif-near": ("motif", GenConfig(near_miss=1.0)),
    "arch": ("arch", GenConfig()),  # windows of mined architectures (fuzzer/arch_sampler.py)
}


def arm(name: str, seconds: float, seed: int, targets: list[str], out: Path) -> dict:
    d = out / name
    if d.exists():
        raise SystemExit(f"{d}: exists (choose another --out)")
    sampler, gen = ARMS.get(name, (name, GenConfig()))
    store = Store(d)
    cfg = CampaignConfig(seed=seed, seconds=seconds, targets=targets, workers=1,
                         sampler=sampler, gen=gen, shrink=None, pack=1)
    t0 = time.perf_counter()
    prog = run_campaign(cfg, store)
    wall = time.perf_counter() - t0
    per_target = {t: {"fired": sorted(f)} for t, f in store.fusions_by_target().items()}
    rows = store.db.execute("SELECT target, COUNT(*), SUM(outcome = 'bug') FROM verdicts "
                            "GROUP BY target").fetchall()
    for t, n, b in rows:
        per_target.setdefault(t, {"fired": []}).update(ran=n, failed=b)
    missed = store.missed_fusions()
    near = near_miss_firings(store)
    store.close()
    fired = sorted({f for t in per_target.values() for f in t["fired"]})
    return {"arm": name, "seconds": wall, "cases": prog.cases, "fired": fired,
            "kinds": split_kinds(fired),
            "targets": per_target, "missed": missed, "near_miss": near}


def near_miss_firings(store: Store) -> list[dict]:
    """Per (near-miss kind, fusion): on how many verdicts it fired and how many of those
    failed (wrong values, invalid model, crash: the rewriter's finding when blame names it)."""
    rows: dict[tuple[str, str], dict] = {}
    for case_json, verdict_json in store.db.execute(
            "SELECT c.json, v.json FROM verdicts v JOIN cases c ON c.hash = v.case_hash "
            "WHERE v.json LIKE '%\"fusions\"%'"):
        miss = (json.loads(case_json).get("origin") or {}).get("near_miss")
        if not miss:
            continue
        v = json.loads(verdict_json)
        for f in (v.get("evidence") or {}).get("fusions") or {}:
            r = rows.setdefault((miss["kind"], f), {"kind": miss["kind"], "fusion": f,
                                                     "fired": 0, "failed": 0, "details": []})
            r["fired"] += 1
            if v["outcome"] == "bug":
                r["failed"] += 1
                if len(r["details"]) < 3:
                    r["details"].append(f"{v['target']}: {(v.get('detail') or '')[:160]}")
    return sorted(rows.values(), key=lambda r: (-r["failed"], r["kind"], r["fusion"]))


def table(results: list[dict]) -> str:
    """Fusions and cleanups per arm, side by side, each arm against the random arm."""
    kinds = {r["arm"]: split_kinds(r["fired"]) for r in results}
    base = kinds.get("random")
    lines = ["", "| arm | Cases | fusions | cleanups | all | fusions vs random |",
             "|---|---|---|---|---|---|"]
    for r in results:
        k = kinds[r["arm"]]
        ratio = (f"{len(k['fusion']) / len(base['fusion']):.1f}x"
                 if base and base["fusion"] else "-")
        lines.append(f"| {r['arm']} | {r['cases']} | {len(k['fusion'])} | {len(k['cleanup'])} "
                     f"| {len(r['fired'])} | {ratio} |")
    only = {a: sorted(set(k["fusion"]) - {f for b, o in kinds.items() if b != a
                                            for f in o["fusion"]}) for a, k in kinds.items()}
    lines += [f"fusions only {a} fired: {', '.join(fs) or '-'}" for a, fs in only.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/fusions"))
    ap.add_argument("--arm", action="append", default=None)
    ap.add_argument("--target", action="append", default=None)
    a = ap.parse_args()
    arms = a.arm or [s for s in ("real", "random", "motif") if s in samplers()]
    for name in arms:
        if ARMS.get(name, (name,))[0] not in samplers():
            raise SystemExit(f"unknown arm {name!r} (known: {', '.join(ARMS)})")
    targets = a.target or list(REWRITER_TARGETS)
    results = [arm(name, a.seconds, a.seed, targets, a.out) for name in arms]
    K = len(known())
    print(f"equal time per arm: {a.seconds:.0f} s, 1 worker, seed {a.seed}; "
          f"targets: {', '.join(targets)}")
    for r in results:
        kinds = split_kinds(r["fired"])
        print(f"\n{r['arm']}: {r['cases']} Cases in {r['seconds']:.0f} s; distinct names fired: "
              f"{len(r['fired'])} of {K} known = {len(kinds['fusion'])} fusions + "
              f"{len(kinds['cleanup'])} cleanups")
        for k in ("fusion", "cleanup"):
            for f in kinds[k]:
                print(f"  {k:7s} {f}")
        for t, d in sorted(r["targets"].items()):
            print(f"  {t}: {d.get('ran', 0)} ran, {d.get('failed', 0)} failed, "
                  f"{len(d['fired'])} fired")
        for n in r["near_miss"]:
            print(f"  near miss {n['kind']:13s} {n['fusion']}: fired {n['fired']}, "
                  f"failed {n['failed']}" + "".join(f"\n      {d}" for d in n["details"]))
        for m in r["missed"]:
            print(f"  missed {m['fusion']} on {m['missed_on']} ({m['cases']} Cases; fired on "
                  f"{m['fired_on']}): {' -> '.join(m['shortest'])}")
    overall = sorted({f for r in results for f in r["fired"]})
    print(f"\noverall: {len(overall)} distinct named fusions/rules fired; "
          + ", ".join(f"{r['arm']} {len(r['fired'])}" for r in results))
    print(table(results))
    (a.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

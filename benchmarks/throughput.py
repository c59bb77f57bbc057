"""Campaign throughput and memory, in one run:

- cases/s on the TorchScript target with 1 and 2 local workers, on the same Cases (2 should
  be >= 1.8x);
- where worker time goes: export + ONNX Runtime (the converter under test) and the rest
  (generation, torch reference, onnx.checker, judging, IPC, the driver);
- cases/s of the default campaign (both exporters, real arm) with and without packing
  several Cases into one dynamo export;
- resident memory of the campaign's whole process tree at the start and end of a long run.

    python benchmarks/throughput.py [--cases 3000] [--workers 1 2] [--default-seconds 120]
                                    [--soak-minutes 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from typing import Any

from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.store import Store
from fuzzer.targets import DEFAULT_TARGETS

INSIDE = ("exporter", "pass", "runtime")  # the converter and runtime under test


def tree_rss_mb(root: int) -> float:
    """RSS of a process and all its descendants (driver, forkserver, workers)."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            pass
    return total


def measure(workers: int, targets: list[str], seed: int, cases: int | None = None,
            seconds: float | None = None, rss: list[tuple[float, float]] | None = None,
            pack: int | None = None, sampler: str = "random") -> dict[str, Any]:
    spent: Counter[str] = Counter()
    t0 = 0.0

    def listen(prog: Any, case: Any, verdicts: Any) -> None:
        for v in verdicts:
            spent.update(v.evidence.get("timings", {}))
        if rss is not None and prog.cases % 50 == 0:
            rss.append((time.perf_counter() - t0, tree_rss_mb(os.getpid())))

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        # shrink=None: measure the loop (generate, run, judge, record), not the shrinker.
        run_campaign(CampaignConfig(seed=seed + 1, seconds=None, cases=8 * workers,
                                    targets=targets, workers=workers, sampler=sampler,
                                    shrink=None, coverage=False, pack=1), store)  # warm-up
        t0 = time.perf_counter()
        prog = run_campaign(CampaignConfig(seed=seed, seconds=seconds, cases=cases,
                                           targets=targets, workers=workers, sampler=sampler,
                                           shrink=None, coverage=False, pack=pack),
                            store, listen)
        wall = time.perf_counter() - t0
        store.close()
    worker_time = wall * workers
    return {"workers": workers, "cases": prog.cases, "seconds": wall,
            "cases_per_s": prog.cases / wall,
            "inside_share": sum(spent[k] for k in INSIDE) / worker_time,
            "shares": {k: v / worker_time for k, v in spent.items()}}


def breakdown(r: dict[str, Any]) -> str:
    parts = sorted(r["shares"].items(), key=lambda kv: -kv[1])
    rest = 1 - sum(r["shares"].values())
    return ", ".join(f"{k} {100 * v:.1f}%" for k, v in parts) + \
        f", other (judging, IPC, driver, idle) {100 * rest:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3000,
                    help="Cases per scaling run (the same Cases for every worker count)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--soak-minutes", type=float, default=10.0, help="0 skips the RSS soak")
    ap.add_argument("--target", default="torchscript-17/ort-all")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--default-seconds", type=float, default=120.0,
                    help="per run of the default campaign, unpacked then packed; 0 skips")
    a = ap.parse_args()
    print(f"target {a.target}; {os.cpu_count()} cores")
    base = None
    for w in a.workers:
        r = measure(w, [a.target], a.seed, cases=a.cases)
        base = base or r["cases_per_s"]
        print(f"workers={w}: {r['cases']} cases in {r['seconds']:.1f} s = "
              f"{r['cases_per_s']:.1f} cases/s (x{r['cases_per_s'] / base:.2f} of 1 worker); "
              f"inside export+ORT {100 * r['inside_share']:.1f}% of worker time, "
              f"outside (fuzzer overhead) {100 * (1 - r['inside_share']):.1f}%\n"
              f"  worker time: {breakdown(r)}", flush=True)
    if a.default_seconds > 0:
        rates = {}
        for pack in (1, None):
            r = measure(1, list(DEFAULT_TARGETS), a.seed, seconds=a.default_seconds,
                        pack=pack, sampler="real")
            rates[pack] = r["cases_per_s"]
            how = "unpacked" if pack == 1 else "dynamo packed (default)"
            print(f"default campaign ({' + '.join(DEFAULT_TARGETS)}, real arm, 1 worker), "
                  f"{how}: {r['cases']} cases in {r['seconds']:.0f} s = "
                  f"{r['cases_per_s']:.2f} cases/s"
                  + (f" (x{rates[None] / rates[1]:.2f} of unpacked)" if pack is None else "")
                  + f"\n  worker time: {breakdown(r)}", flush=True)
    if a.soak_minutes > 0:
        samples: list[tuple[float, float]] = []
        r = measure(1, [a.target], a.seed + 7, seconds=a.soak_minutes * 60, rss=samples)
        warm = [s for s in samples if s[0] >= 60] or samples  # after workers are warm
        start, end = warm[0], samples[-1]
        print(f"soak: {r['cases']} cases in {r['seconds'] / 60:.1f} min; process-tree RSS "
              f"{start[1]:.0f} MB at {start[0]:.0f} s, {end[1]:.0f} MB at {end[0]:.0f} s "
              f"({100 * (end[1] / start[1] - 1):+.1f}%)", flush=True)


if __name__ == "__main__":
    main()

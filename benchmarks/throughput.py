"""Campaign throughput and memory, in one run:

- cases/s on the TorchScript target with 1 and 2 local workers, on the same Cases (2 should
  be >= 1.8x);
- where worker time goes: export + ONNX Runtime (the converter under test) and the rest
  (generation, torch reference, onnx.checker, judging, IPC, the driver);
- cases/s of the default campaign (both exporters, real arm) with and without packing
  several Cases into one dynamo export;
- cases/s of five chains, four of them below one dynamo export, and of the default campaign,
  with prefix sharing and adaptive packing off and on (issue 26);
- resident memory of the campaign's whole process tree at the start and end of a long run.

    python benchmarks/throughput.py [--cases 3000] [--workers 1 2] [--repeat 5]
                                    [--default-seconds 120] [--soak-minutes 10]
                                    [--chains-seconds 120] [--chains-repeat 1]
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


def own_rss_mb() -> float:
    """The driver's own resident memory (what must stay flat: workers are recycled)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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
            seconds: float | None = None,
            rss: list[tuple[float, float, float]] | None = None,
            pack: int | None = None, sampler: str = "random", share: bool = True,
            adaptive: bool = True) -> dict[str, Any]:
    spent: Counter[str] = Counter()
    packs: Counter[int] = Counter()  # verdicts cleared in a pack, by its size
    t0 = 0.0

    def listen(prog: Any, case: Any, verdicts: Any) -> None:
        for v in verdicts:
            spent.update(v.evidence.get("timings", {}))
            if "pack" in v.evidence:
                packs[v.evidence["pack"]] += 1
        if rss is not None and prog.cases % 50 == 0:
            rss.append((time.perf_counter() - t0, tree_rss_mb(os.getpid()),
                        own_rss_mb()))

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        # shrink=None: measure the loop (generate, run, judge, record), not the shrinker.
        run_campaign(CampaignConfig(seed=seed + 1, seconds=None, cases=8 * workers,
                                    targets=targets, workers=workers, sampler=sampler,
                                    shrink=None, coverage=False, pack=1), store)  # warm-up
        t0 = time.perf_counter()
        prog = run_campaign(CampaignConfig(seed=seed, seconds=seconds, cases=cases,
                                           targets=targets, workers=workers, sampler=sampler,
                                           shrink=None, coverage=False, pack=pack,
                                           share=share, adaptive=adaptive),
                            store, listen)
        wall = time.perf_counter() - t0
        store.close()
    worker_time = wall * workers
    return {"workers": workers, "cases": prog.cases, "seconds": wall,
            "cases_per_s": prog.cases / wall,
            "inside_share": sum(spent[k] for k in INSIDE) / worker_time,
            "shares": {k: v / worker_time for k, v in spent.items()},
            "packs": packs}


def breakdown(r: dict[str, Any]) -> str:
    parts = sorted(r["shares"].items(), key=lambda kv: -kv[1])
    rest = 1 - sum(r["shares"].values())
    return ", ".join(f"{k} {100 * v:.1f}%" for k, v in parts) + \
        f", other (judging, IPC, driver, idle) {100 * rest:.1f}%"


# Issue 26: one exporter, several chains below it.
CHAINS = ["torchscript-17/ort-all", "dynamo/ort-all", "dynamo/ort-disabled",
          "dynamo/onnxscript-opt/ort-disabled", "dynamo/onnxsim/ort-disabled"]


def packed_sizes(r: dict[str, Any]) -> str:
    total = sum(r["packs"].values())
    if not total:
        return "none cleared in a pack"
    mean = sum(n * c for n, c in r["packs"].items()) / total
    return f"mean pack {mean:.1f} Cases ({total} verdicts cleared in packs)"


def chains(a: argparse.Namespace) -> list[str]:
    """The five chains, then the default campaign, each with prefix sharing and adaptive
    packing off and on, interleaved (off, on, off, on, ...): this machine's speed drifts."""
    out = []
    for name, targets in (("five chains", CHAINS), ("default campaign",
                                                    list(DEFAULT_TARGETS))):
        rates: dict[bool, list[float]] = {False: [], True: []}
        last: dict[bool, dict[str, Any]] = {}
        for rep in range(a.chains_repeat):
            for on in (False, True):
                r = measure(1, targets, a.seed + rep, seconds=a.chains_seconds,
                            sampler=a.default_source, share=on, adaptive=on)
                rates[on].append(r["cases_per_s"])
                last[on] = r
                print(f"  {name}, run {rep + 1}, sharing+adaptive {'on' if on else 'off'}: "
                      f"{r['cases']} Cases in {r['seconds']:.0f} s = {r['cases_per_s']:.2f} "
                      f"Cases/s; {packed_sizes(r)}\n    worker time: {breakdown(r)}",
                      flush=True)
        off, on_ = (sorted(rates[k])[len(rates[k]) // 2] for k in (False, True))
        print(f"{name} ({' + '.join(targets)}; {a.default_source} arm, 1 worker, "
              f"{a.chains_seconds:g} s a run, median of {a.chains_repeat}): "
              f"off {off:.2f} Cases/s, on {on_:.2f} Cases/s = x{on_ / off:.2f}", flush=True)
        if targets == CHAINS:
            out.append(f"five chains >= 2.5x with sharing+adaptive packing: x{on_ / off:.2f} "
                       f"{'met' if on_ / off >= 2.5 else 'MISSED'}")
        else:
            out.append(f"dynamo Cases/s >= 8 on the default campaign, 1 worker: {on_:.2f} "
                       f"{'met' if on_ >= 8 else 'MISSED'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3000,
                    help="Cases per scaling run (the same Cases for every worker count)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5,
                    help="runs of each worker count (3 are too few on this VM's drift)")
    ap.add_argument("--soak-minutes", type=float, default=10.0, help="0 skips the RSS soak")
    ap.add_argument("--target", default="torchscript-17/ort-all")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--source", default="random", choices=["real", "random"],
                    help="the arm of the scaling runs")
    ap.add_argument("--default-seconds", type=float, default=120.0,
                    help="per run of the default campaign, unpacked then packed; 0 skips")
    ap.add_argument("--default-source", default="real", choices=["real", "random"],
                    help="the arm of the default campaign runs")
    ap.add_argument("--chains-seconds", type=float, default=120.0,
                    help="per run of the five chains and of the default campaign, prefix "
                    "sharing and adaptive packing off then on (issue 26); 0 skips")
    ap.add_argument("--chains-repeat", type=int, default=1,
                    help="off/on pairs of each (interleaved)")
    a = ap.parse_args()
    print(f"target {a.target}; {os.cpu_count()} cores")
    # Worker counts alternate, repeated: this VM's speed drifts by +-10% over minutes, which a
    # single run of each would read as scaling.
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in a.workers}
    for rep in range(a.repeat):
        for w in a.workers:
            r = measure(w, [a.target], a.seed, cases=a.cases, sampler=a.source)
            runs[w].append(r)
            print(f"  run {rep + 1}, workers={w}: {r['cases_per_s']:.1f} cases/s", flush=True)
    verdicts: list[str] = []  # the targets, read against this run's figures

    def mark(ok: bool) -> str:
        return "met" if ok else "MISSED"

    base = None
    for w in a.workers if a.repeat > 0 else []:
        r = sorted(runs[w], key=lambda x: x["cases_per_s"])[len(runs[w]) // 2]  # the median
        base = base or r["cases_per_s"]
        print(f"workers={w}: median of {a.repeat} runs of {r['cases']} cases: "
              f"{r['cases_per_s']:.1f} cases/s (x{r['cases_per_s'] / base:.2f} of 1 worker); "
              f"inside export+ORT {100 * r['inside_share']:.1f}% of worker time, "
              f"outside (fuzzer overhead) {100 * (1 - r['inside_share']):.1f}%\n"
              f"  worker time: {breakdown(r)}", flush=True)
        if w == a.workers[0]:
            verdicts.append(f"overhead <= 15% ({a.target}, {w} worker): "
                            f"{100 * (1 - r['inside_share']):.1f}% "
                            f"{mark(1 - r['inside_share'] <= 0.15)}")
        elif w == 2 and base:
            verdicts.append(f"2 workers >= 1.8x one: x{r['cases_per_s'] / base:.2f} "
                            f"{mark(r['cases_per_s'] / base >= 1.8)}")
    if a.default_seconds > 0:
        rates = {}
        for pack in (1, None):
            r = measure(1, list(DEFAULT_TARGETS), a.seed, seconds=a.default_seconds,
                        pack=pack, sampler=a.default_source)
            rates[pack] = r["cases_per_s"]
            how = "unpacked" if pack == 1 else "dynamo packed (default)"
            print(f"default campaign ({' + '.join(DEFAULT_TARGETS)}, {a.default_source} arm, "
                  "1 worker), "
                  f"{how}: {r['cases']} cases in {r['seconds']:.0f} s = "
                  f"{r['cases_per_s']:.2f} cases/s"
                  + (f" (x{rates[None] / rates[1]:.2f} of unpacked)" if pack is None else "")
                  + f"\n  worker time: {breakdown(r)}", flush=True)
            if pack is None:
                verdicts.append(f"overhead <= 15% (default campaign, packed): "
                                f"{100 * (1 - r['inside_share']):.1f}% "
                                f"{mark(1 - r['inside_share'] <= 0.15)}")
    if a.chains_seconds > 0:
        verdicts += chains(a)
    if a.soak_minutes > 0:
        samples: list[tuple[float, float, float]] = []
        r = measure(1, [a.target], a.seed + 7, seconds=a.soak_minutes * 60, rss=samples)
        # Medians of the first warm minute and of the last one: a worker swings by ~70 MB
        # between its start and its recycling, which single samples would read as growth.
        first = [x for x in samples if 60 <= x[0] < 120] or samples[:1]
        last = [x for x in samples if x[0] >= samples[-1][0] - 60]

        def med(xs: list[tuple[float, float, float]], k: int) -> float:
            return sorted(x[k] for x in xs)[len(xs) // 2]

        tree0, tree1, own0, own1 = med(first, 1), med(last, 1), med(first, 2), med(last, 2)
        print(f"soak: {r['cases']} cases in {r['seconds'] / 60:.1f} min; process-tree RSS "
              f"(median of a minute) {tree0:.0f} MB after the first minute, {tree1:.0f} MB in "
              f"the last ({100 * (tree1 / tree0 - 1):+.1f}%); the driver's own {own0:.0f} -> "
              f"{own1:.0f} MB ({100 * (own1 / own0 - 1):+.1f}%)", flush=True)
        verdicts.append(f"RSS growth <= 10% over {a.soak_minutes:g} min: "
                        f"{100 * (tree1 / tree0 - 1):+.1f}% {mark(tree1 / tree0 - 1 <= 0.10)}")
    print("targets (issues 7, 26):\n" + "\n".join(f"  {v}" for v in verdicts), flush=True)


if __name__ == "__main__":
    main()

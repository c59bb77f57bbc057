"""Throughput of a campaign on the TorchScript target: cases/s per worker count, and the
share of wall time spent inside export + ONNX Runtime (the rest is the fuzzer's overhead:
generation, materialization, eager reference, IPC, checker, store).

    python benchmarks/throughput.py [--seconds 60] [--workers 1 2] [--target T]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from fuzzer.campaign import CampaignConfig, ShrinkConfig, run_campaign
from fuzzer.store import Store


def measure(seconds: float, workers: int, target: str, seed: int) -> dict[str, float]:
    inside = 0.0

    def listen(prog, case, verdicts) -> None:  # a campaign listener
        nonlocal inside
        for v in verdicts:
            t = v.evidence.get("timings", {})
            inside += t.get("exporter", 0.0) + t.get("pass", 0.0) + t.get("runtime", 0.0)

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        # Warm-up (worker start, first export) is excluded from the measured window.
        raw = ShrinkConfig(enabled=False)  # measure the loop, not the shrinker
        run_campaign(CampaignConfig(seed=seed + 1, seconds=None, cases=2 * workers,
                                    targets=[target], workers=workers, sampler="random",
                                    shrink=raw), store)
        t0 = time.perf_counter()
        prog = run_campaign(CampaignConfig(seed=seed, seconds=seconds, targets=[target],
                                           workers=workers, sampler="random", shrink=raw),
                            store, listen)
        wall = time.perf_counter() - t0
        store.close()
    busy = wall * workers  # worker-seconds available
    return {"workers": workers, "cases": prog.cases, "seconds": wall,
            "cases_per_s": prog.cases / wall, "inside_share": inside / busy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1])
    ap.add_argument("--target", default="torchscript-17/ort-all")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    print(f"target {a.target}, {a.seconds:g} s per run")
    base = None
    for w in a.workers:
        r = measure(a.seconds, w, a.target, a.seed)
        base = base or r["cases_per_s"]
        print(f"workers={w}: {r['cases']} cases in {r['seconds']:.1f} s = "
              f"{r['cases_per_s']:.1f} cases/s (x{r['cases_per_s'] / base:.2f}); "
              f"inside export+ORT {100 * r['inside_share']:.1f}% of worker time, "
              f"overhead {100 * (1 - r['inside_share']):.1f}%")


if __name__ == "__main__":
    main()

"""Cases/s of each converter target beyond torch.onnx (OpenVINO, ExecuTorch, LiteRT), one
worker, the same random Cases on each, with packing as a campaign does it; and the share of
worker time inside the converter (export, conversion, runtime). A target whose package is not
installed is listed as skipped with the extra to install.

    python benchmarks/converters.py [--seconds 60] [--targets ov-pt litert ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.store import Store
from fuzzer.targets import TargetError, parse

TARGETS = ["torchscript-17/ort-all", "torchscript-17/ov", "dynamo/ov", "ov-pt", "executorch",
           "executorch-xnnpack", "litert"]
INSIDE = ("exporter", "pass", "runtime", "converter")


def measure(target: str, seconds: float, seed: int) -> dict[str, Any]:
    spent: Counter[str] = Counter()

    def listen(prog: Any, case: Any, verdicts: Any) -> None:
        for v in verdicts:
            spent.update(v.evidence.get("timings", {}))

    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        # Warm-up (imports, the first conversion), then the measured run; no shrinking.
        run_campaign(CampaignConfig(seed=seed + 1, seconds=None, cases=4, targets=[target],
                                    workers=1, sampler="random", shrink=None,
                                    coverage=False), store)
        t0 = time.perf_counter()
        prog = run_campaign(CampaignConfig(seed=seed, seconds=seconds, cases=None,
                                           targets=[target], workers=1, sampler="random",
                                           shrink=None, coverage=False), store, listen)
        wall = time.perf_counter() - t0
        store.close()
    return {"cases": prog.cases, "seconds": wall, "cases_per_s": prog.cases / wall,
            "inside": sum(spent[k] for k in INSIDE) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds a target")
    ap.add_argument("--targets", nargs="+", default=TARGETS)
    ap.add_argument("--seed", type=int, default=28)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; 1 worker, random Cases, "
          f"{args.seconds:.0f} s a target")
    print(f"{'target':24} {'Cases':>6} {'Cases/s':>8} {'in converter':>13}")
    for t in args.targets:
        try:
            parse(t)
        except TargetError as e:
            print(f"{t:24} skipped: {e}")
            continue
        r = measure(t, args.seconds, args.seed)
        print(f"{t:24} {r['cases']:>6} {r['cases_per_s']:>8.2f} {100 * r['inside']:>12.0f}%",
              flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

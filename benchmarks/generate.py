"""Cases generated per second by each sampler, and the share of them that run in torch eager.

Shape inference runs as in the driver (meta tensors) and as in a sandboxed worker (the
lowering on CPU zeros first, meta only when that raises); both give the same Cases.

    python benchmarks/generate.py [--cases 1000]
"""

from __future__ import annotations

import argparse
import time

from fuzzer.generate import GenConfig
from fuzzer.ops.spec import _MEMO, eager_shapes
from fuzzer.oracle import Invalid, reference
from fuzzer.sampling import samplers

SAMPLERS = samplers()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    a = ap.parse_args()
    arms = [(name, sample, GenConfig()) for name, sample in SAMPLERS.items()]
    if "motif" in SAMPLERS:  # and with the campaign's default share of near misses
        arms.append(("motif-nm", SAMPLERS["motif"], GenConfig(near_miss=0.3)))
    for name, sample, cfg in arms:
        sample(0, None, cfg)  # load seeds and warm caches outside the timed window
        rates = {}
        for mode in ("meta", "worker"):
            eager_shapes(mode == "worker")
            _MEMO.clear()  # no sampler or mode reuses another's shape inference
            t0 = time.perf_counter()
            cases = [sample(s, None, cfg) for s in range(1, a.cases + 1)]
            rates[mode] = a.cases / (time.perf_counter() - t0)
        eager_shapes(False)
        bad = 0
        for c in cases:
            try:
                reference(c)
            except Invalid:
                bad += 1
        ops = {o for c in cases for o in c.ops}
        print(f"{name:8} {rates['meta']:7.1f} Cases/s (driver, meta shapes), "
              f"{rates['worker']:7.1f} (worker, CPU first); "
              f"{100 * (1 - bad / a.cases):.1f}% run in eager "
              f"({bad} invalid of {a.cases}); {len(ops)} distinct operators; mean "
              f"{sum(len(c.nodes) for c in cases) / a.cases:.2f} nodes", flush=True)


if __name__ == "__main__":
    main()

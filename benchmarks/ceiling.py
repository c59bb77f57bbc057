"""What two cores can give at best: the worker's own loop (generate, judge on TorchScript) in
1 and then 2 processes at once, with no driver, no pipe and no store. The campaign's 2-worker
speed-up (benchmarks/throughput.py) is to be read against this.

    python benchmarks/ceiling.py [--seconds 20] [--target torchscript-17/ort-all]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from typing import Any


def _loop(k: int, seconds: float, target: str, ready: Any, go: Any, out: Any) -> None:
    import torch

    from fuzzer.campaign import case_seed
    from fuzzer.generate import GenConfig
    from fuzzer.job import job
    from fuzzer.ops.spec import eager_shapes
    from fuzzer.sandbox import Limits
    from fuzzer.worker import Worker

    torch.set_num_threads(1)
    eager_shapes(True)  # as fuzzer.worker.serve does

    class Quiet:  # answers go nowhere: only the work is measured
        def send(self, msg: Any) -> None:
            pass

    fd = os.open(tempfile.mktemp(prefix="convfuzz-ceiling-"), os.O_WRONLY | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    w = Worker(Quiet(), fd, mp.RawArray("i", [-1, -1]))  # type: ignore[arg-type]

    def one(i: int) -> None:
        w.job(job([(i, case_seed(11, i), (target,))], "random", None, GenConfig(),
                  Limits()).plain())

    for i in range(50):  # warm: seeds loaded, first exports done
        one(10**6 * (k + 1) + i)
    ready.release()
    go.wait()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        one(n)
        n += 1
    out.put(n / (time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--target", default="torchscript-17/ort-all")
    a = ap.parse_args()
    ctx = mp.get_context("fork")
    base = None
    for n in (1, 2):
        ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_loop, args=(k, a.seconds, a.target, ready, go, out))
                 for k in range(n)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        go.set()
        rates = [out.get() for _ in procs]
        for p in procs:
            p.join()
        total = sum(rates)
        base = base or total
        print(f"{n} bare worker loop(s): {total:.1f} Cases/s (x{total / base:.2f}); per loop "
              + ", ".join(f"{r:.1f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()

"""Where a worker's time goes, part by part: the worker loop (generate, reference, judge) in
this process — no sandbox, no driver, no store — with each part of the oracle timed per
Case. The converter under test is the exporter and ONNX Runtime; everything else is the
fuzzer's own work, and what issue 7's overhead target is about.

    python benchmarks/parts.py [--cases 1500] [--repeat 2] [--target torchscript-17/ort-all]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections import Counter
from typing import Any

# (module, attribute, label): each is timed where it is called from, wrappers included.
PARTS = [("fuzzer.worker", "case_for", "generation"),
         ("fuzzer.oracle", "materialize", "materialize"),  # where it is called from
         ("fuzzer.oracle", "reference_at", "eager run"),
         ("fuzzer.oracle", "_validate", "onnx.checker"),
         ("fuzzer.oracle", "_judge_outputs", "comparison"),
         ("fuzzer.oracle", "run_chain", "run_chain"),
         ("fuzzer.oracle", "judge", "oracle.judge"),
         ("fuzzer.worker", "Worker.send_verdict", "verdict message"),
         ("fuzzer.worker", "Worker.judge", "worker.judge"),
         ("fuzzer.worker", "Worker.job", "job")]


def _wrap(spent: Counter[str], module: str, attr: str, label: str) -> None:
    owner: Any = importlib.import_module(module)
    *path, name = attr.split(".")
    for p in path:
        owner = getattr(owner, p)
    f = getattr(owner, name)

    @functools.wraps(f)
    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[label] += time.perf_counter() - t
    setattr(owner, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--target", default="torchscript-17/ort-all")
    a = ap.parse_args()

    import torch

    from fuzzer.campaign import case_seed
    from fuzzer.generate import GenConfig
    from fuzzer.job import job
    from fuzzer.ops.spec import eager_shapes
    from fuzzer.sandbox import PRELOAD, Limits
    from fuzzer.worker import Worker

    for name in PRELOAD:  # what a worker inherits from the forkserver: else the first
        importlib.import_module(name)  # Case that needs torch._dynamo pays ~0.9 s for it
    torch.set_num_threads(1)
    eager_shapes(True)  # as fuzzer.worker.serve does
    logging.disable(logging.WARNING)  # as serve does: else every export toggles it (~0.2 ms)
    spent: Counter[str] = Counter()
    for module, attr, label in PARTS:
        _wrap(spent, module, attr, label)

    # A real pipe, drained by a thread: the answers cost their pickling and the write, as
    # in a campaign (where the driver's end is in another process).
    conn, other = mp.Pipe()

    def drain() -> None:
        while True:
            try:
                other.recv()
            except EOFError:
                return
    threading.Thread(target=drain, daemon=True).start()

    fd = os.open(tempfile.mktemp(prefix="convfuzz-parts-"), os.O_WRONLY | os.O_CREAT)
    stdout = os.dup(1)
    os.dup2(fd, 1)  # the exporters' chatter
    os.dup2(fd, 2)
    w = Worker(conn, fd, mp.RawArray("i", [-1, -1]))

    def run(start: int, n: int) -> float:
        t0 = time.perf_counter()
        for s in range(start, start + n, 8):  # jobs of 8, as a campaign sends them
            w.job(job([(i, case_seed(11, i), (a.target,)) for i in range(s, s + 8)], "random",
                      None, GenConfig(), Limits()).plain())
        return time.perf_counter() - t0

    run(10**6, 200)  # warm: seeds loaded, first exports done
    for rep in range(a.repeat):
        spent.clear()
        wall = run(rep * a.cases, a.cases)
        us = {k: 1e6 * v / a.cases for k, v in spent.items()}
        inside = us["run_chain"] - us["onnx.checker"]  # export + passes + ORT
        essential = us["generation"] + us["materialize"] + us["eager run"] + \
            us["onnx.checker"] + us["comparison"]
        per = 1e6 * wall / a.cases
        lines = [f"run {rep + 1}: {a.cases / wall:.1f} Cases/s, {per:.0f} us a Case; "
                 f"export + ORT {inside:.0f} us, outside {100 * (1 - inside / per):.1f}%"]
        lines += [f"  {k:16} {v:7.0f} us" for k, v in sorted(us.items(), key=lambda kv: -kv[1])]
        lines.append(f"  generation + reference + checker + comparison: {essential:.0f} us = "
                     f"{100 * essential / (inside + essential):.1f}% of a Case with nothing "
                     "else outside the converter")
        os.write(stdout, ("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()

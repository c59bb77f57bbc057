"""Mine operator sequences from real architectures into `seeds/`.

Each architecture (see `fuzzer.mine_sources.SOURCES`) is built from its config alone, traced with
`torch.export.export(strict=False)` at the functional ATen level (falling back to
`torch.jit.trace`) inside a worker process with a timeout, and turned into a graph of operator
calls (`fuzzer.opgraph`). From the graphs we write (read back by `fuzzer.seeds`):

- `ngrams.json`: operator chains of n = 1..4 nodes along data-flow paths, with counts and the
  architectures they occur in;
- `ops.json`: per operator, the observed values of every non-tensor argument (by ATen schema
  name) and the ranks/shapes/dtypes of its tensor arguments and outputs;
- `archs.json`: every architecture attempted, with how it was traced or why it failed;
- `motifs.json`: connected subgraphs of 2..10 operators (fuzzer/motifs.py) seen in >= 2
  architectures, with counts, architectures, names of the known blocks and an instance;
- `meta.json`: versions, date and command (the only file that changes between identical runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from fuzzer.dataflow import ngram_counts
from fuzzer.mine_sources import SOURCES, Pool
from fuzzer.motifs import MotifStats, write_motifs
from fuzzer.opgraph import OpGraph, dump_graph, to_digraph
from fuzzer.seeds import FORMAT, MAX_N

os.environ["HF_HUB_OFFLINE"] = "1"  # never download, even by accident

TIMEOUT_S = 120.0
MAX_SHAPES = 12
MAX_VALUES = 48

# ---------------------------------------------------------------------------- aggregation

def chains(g: nx.DiGraph, max_n: int = MAX_N) -> Counter[tuple[str, ...]]:
    """Operator-name sequences of every path of 1..max_n nodes, with multiplicity: the one
    definition of an n-gram, shared with the Cases' coverage and the analysis."""
    return ngram_counts(g, max_n)


def _tstats() -> dict[str, Counter[str]]:
    return {"dtypes": Counter(), "ranks": Counter(), "shapes": Counter()}


def _add_tensor(st: dict[str, Counter[str]], rec: Any) -> None:
    if not rec:
        return
    dtype, shape = rec
    st["dtypes"][dtype] += 1
    st["ranks"][str(len(shape))] += 1
    st["shapes"][json.dumps(shape)] += 1


class _Stats:
    def __init__(self) -> None:
        self.ngrams: dict[tuple[str, ...], list[Any]] = {}
        self.ops: dict[str, dict[str, Any]] = {}

    def add(self, name: str, rec: dict[str, Any]) -> None:
        for ch, c in chains(to_digraph(rec)).items():
            entry = self.ngrams.setdefault(ch, [0, set()])
            entry[0] += c
            entry[1].add(name)
        for n in rec["graph"].nodes:
            o = self.ops.setdefault(n["op"], {
                "count": 0, "aten": n["aten"], "archs": set(),
                "args": defaultdict(Counter), "inputs": defaultdict(_tstats),
                "outputs": _tstats()})
            o["count"] += 1
            o["archs"].add(name)
            for k, v in n["args"].items():
                o["args"][k][json.dumps(v, sort_keys=True)] += 1
            for k, t in n["tensors"].items():
                for r in t["list"] if isinstance(t, dict) else [t]:
                    _add_tensor(o["inputs"][k], r)
            for r in n["outs"]:
                _add_tensor(o["outputs"], r)


def _top(c: Counter[str], k: int) -> dict[str, int]:
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


def _tjson(st: dict[str, Counter[str]]) -> dict[str, Any]:
    return {"dtypes": dict(st["dtypes"]), "ranks": dict(st["ranks"]),
            "shapes": _top(st["shapes"], MAX_SHAPES), "distinct_shapes": len(st["shapes"])}


def _ops_json(stats: _Stats) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op, o in stats.ops.items():
        out[op] = {
            "count": o["count"], "aten": o["aten"], "archs": sorted(o["archs"]),
            "args": {k: _top(c, MAX_VALUES) for k, c in o["args"].items()},
            "distinct_values": {k: len(c) for k, c in o["args"].items() if len(c) > MAX_VALUES},
            "inputs": {k: _tjson(st) for k, st in o["inputs"].items()},
            "outputs": _tjson(o["outputs"]),
        }
    return {"format": FORMAT, "ops": out}


def _write_ngrams(path: Path, stats: _Stats) -> dict[int, int]:
    """One n-gram per line; architectures as indices into the sorted `archs` table (the names
    repeated per n-gram would triple the file)."""
    names = sorted({a for _, archs in stats.ngrams.values() for a in archs})
    index = {a: i for i, a in enumerate(names)}
    by_n: dict[int, list[tuple[tuple[str, ...], int, list[int]]]] = defaultdict(list)
    for ch, (c, archs) in stats.ngrams.items():
        by_n[len(ch)].append((ch, c, sorted(index[a] for a in archs)))
    lines = [f'{{"format": {FORMAT}, "max_n": {MAX_N},', f'"archs": {json.dumps(names)},',
             '"ngrams": {']
    for n in range(1, MAX_N + 1):
        rows = sorted(by_n[n], key=lambda r: (-r[1], r[0]))
        body = ",\n".join(json.dumps({"ops": list(ch), "count": c, "archs": a})
                          for ch, c, a in rows)
        lines.append(f'"{n}": [\n{body}\n]' + ("," if n < MAX_N else ""))
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n")
    return {n: len(by_n[n]) for n in range(1, MAX_N + 1)}


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------- API

@dataclass
class MineResult:
    ok: int
    fallback: int
    failed: int
    ngrams: dict[int, int]
    distinct_ops: int
    skipped_sources: dict[str, str]
    out: Path
    seconds: float
    motifs: int = 0


def _parse_sources(sources: list[str] | None) -> list[tuple[str, list[str] | None]]:
    """`"transformers"` or `"transformers:bert,gpt2"` → (source, explicit names or None)."""
    out: list[tuple[str, list[str] | None]] = []
    for spec in sources or sorted(SOURCES):
        name, _, rest = spec.partition(":")
        if name not in SOURCES:
            raise ValueError(f"unknown mining source {name!r}; known: {sorted(SOURCES)}")
        out.append((name, [x for x in rest.split(",") if x] if rest else None))
    return out


def mine(sources: list[str] | None = None, out: Path = Path("seeds"), limit: int | None = None,
         progress: Callable[[str, str], None] | None = None, *, timeout: float = TIMEOUT_S,
         command: str | None = None, graphs: Path | None = None) -> MineResult:
    """Trace every architecture of `sources` and write ngrams/ops/archs/motifs/meta JSON to
    `out` (and each traced graph as `<graphs>/<source>:<name>.json.gz` when `graphs` is
    given: motifs can then be mined again without tracing, `python -m fuzzer.motifs`)."""

    start = time.monotonic()
    jobs: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for src, names in _parse_sources(sources):
        why = SOURCES[src].unavailable()
        if why:
            skipped[src] = why
            continue
        jobs += [(src, n) for n in (names if names is not None else SOURCES[src].names())]
    jobs = jobs[:limit] if limit is not None else jobs
    stats, archs, pool, motif_stats = _Stats(), [], Pool(timeout), MotifStats()
    try:
        for src, name in jobs:
            rec = pool.run(src, name)
            label = f"{src}:{name}"
            if "graph" in rec:
                stats.add(label, rec)
                g: OpGraph = rec.pop("graph")
                motif_stats.add(label, g)
                if graphs is not None:
                    dump_graph(graphs / f"{label}.json.gz", g)
                rec.update(nodes=len(g.nodes), edges=len(g.edges),
                           distinct_ops=len({n["op"] for n in g.nodes}))
            rec["name"] = label
            rec["error"] = _main_error(rec) if rec["status"] == "failed" else None
            archs.append(rec)
            if progress:
                progress(label, rec["status"])
    finally:
        pool.stop()
    out.mkdir(parents=True, exist_ok=True)
    counts = Counter(a["status"] for a in archs)
    ngram_counts = _write_ngrams(out / "ngrams.json", stats)
    _dump(out / "ops.json", _ops_json(stats))
    _dump(out / "archs.json", {"format": FORMAT, "archs": sorted(archs, key=lambda a: a["name"])})
    n_motifs = write_motifs(out / "motifs.json", motif_stats, {"command": command})
    result = MineResult(counts["ok"], counts["fallback"], counts["failed"], ngram_counts,
                        len(stats.ops), skipped, out, round(time.monotonic() - start, 1),
                        n_motifs)
    _dump(out / "meta.json", _meta(sources, limit, command, result))
    return result


def _main_error(rec: dict[str, Any]) -> str | None:
    """The error of the furthest stage reached: that is what stopped the architecture."""
    errors = rec.get("errors", {})
    for stage in ("worker", "export", "jit.trace", "eager", "build", "inputs"):
        if stage in errors:
            return f"{stage}: {errors[stage]}"
    return None


def _meta(sources: list[str] | None, limit: int | None, command: str | None,
          r: MineResult) -> dict[str, Any]:
    try:
        # optional: only its version is recorded
        import transformers
        tf_version: str | None = transformers.__version__
    except ImportError:
        tf_version = None
    return {
        "format": FORMAT, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or f"fuzzer.mine.mine(sources={sources!r}, limit={limit!r})",
        "torch": torch.__version__, "transformers": tf_version,
        "python": platform.python_version(), "sources": sources, "limit": limit,
        "skipped_sources": r.skipped_sources, "seconds": r.seconds,
        "counts": {"ok": r.ok, "fallback": r.fallback, "failed": r.failed,
                   "distinct_ops": r.distinct_ops,
                   "ngrams": {str(k): v for k, v in r.ngrams.items()}},
        "trace": "torch.export.export(strict=False), ATen (not decomposed); "
                 "fallback torch.jit.trace",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzzer.mine", description=__doc__.split("\n")[0])
    p.add_argument("--source", action="append", help="e.g. transformers or transformers:bert,vit")
    p.add_argument("--out", type=Path, default=Path("seeds"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--timeout", type=float, default=TIMEOUT_S)
    p.add_argument("--graphs", type=Path, default=None,
                   help="also write each traced graph here (gzipped JSON)")
    a = p.parse_args(argv)
    cmd = "python -m fuzzer.mine " + " ".join(argv if argv is not None else sys.argv[1:])
    r = mine(a.source, a.out, a.limit, lambda n, s: print(f"{s:9} {n}", flush=True),
             timeout=a.timeout, command=cmd.strip(), graphs=a.graphs)
    print(f"ok={r.ok} fallback={r.fallback} failed={r.failed} ops={r.distinct_ops} "
          f"ngrams={r.ngrams} motifs={r.motifs} skipped={r.skipped_sources} in {r.seconds}s")
    return 0


if __name__ == "__main__":
    # Re-enter through the package so spawned workers unpickle `fuzzer.mine._worker`.
    from fuzzer.mine import main as _main

    sys.exit(_main())

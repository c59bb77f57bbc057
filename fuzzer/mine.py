"""Mine operator sequences from real architectures into `seeds/`.

Each architecture (see `fuzzer.mine_sources.SOURCES`) is built from its config alone, traced with
`torch.export.export(strict=False)` at the functional ATen level (falling back to
`torch.jit.trace`) inside a worker process with a timeout, and turned into a networkx DiGraph
of operator calls. From the graphs we write:

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
import operator
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from fuzzer.dataflow import ngram_counts

os.environ["HF_HUB_OFFLINE"] = "1"  # never download, even by accident

MAX_N = 4
TIMEOUT_S = 120.0
MAX_SHAPES = 12
MAX_VALUES = 48
FORMAT = 1

# Data-free bookkeeping ops: asserts and shape queries carry no tensor data between operators.
_PLUMBING = {"aten::_assert_tensor_metadata", "aten::_assert_async", "aten::_assert_scalar",
             "aten::sym_constrain_range", "aten::sym_constrain_range_for_size", "aten::size",
             "aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "aten::sym_size",
             "aten::sym_numel", "aten::sym_stride", "aten::dim", "aten::numel",
             "aten::_set_grad_enabled"}
_INLINED_HOPS = {"wrap_with_set_grad_enabled", "wrap_with_autocast"}


# ---------------------------------------------------------------------------- graph extraction

def _canon(name: str) -> tuple[str, bool]:
    """Canonical `aten::<packet>` name (in-place `add_` folds into `add`) and whether it is ATen."""
    if name.startswith("aten::"):
        base = name[6:]
        if base.endswith("_") and not base.endswith("__"):
            base = base[:-1]
        return "aten::" + base, True
    return name, False


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)  # dtype, device, layout, memory_format, enums


def tensor_rec(t: Any) -> list[Any] | None:
    import torch

    if isinstance(t, torch.Tensor):
        return [str(t.dtype).removeprefix("torch."), [int(s) for s in t.shape]]
    return None


@dataclass
class OpGraph:
    """Operator nodes (plain dicts) and data-flow edges; picklable across the worker pipe."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: set[tuple[int, int]] = field(default_factory=set)

    def add(self, op: str, is_aten: bool, args: dict[str, Any], tensors: dict[str, Any],
            outs: list[Any], preds: Iterable[int], src: dict[str, Any] | None = None) -> int:
        i = len(self.nodes)
        self.nodes.append({"op": op, "aten": is_aten, "args": args, "tensors": tensors,
                           "outs": outs, "src": src or {}})
        self.edges.update((p, i) for p in preds)
        return i


def graph_from_fx(gm: Any) -> OpGraph:
    g = OpGraph()
    _walk_fx(gm, g, {}, {})
    return g


def _placeholder_src(name: str) -> list[Any]:
    """What a graph placeholder is, by torch.export's lifting prefixes: a parameter, buffer or
    lifted constant (initializers in an exported model) or a user input."""
    for prefix, kind in (("p_", "param"), ("b_", "buffer"), ("c_", "const")):
        if name.startswith(prefix):
            return [kind, name]
    return ["input", name]


def _walk_fx(gm: Any, g: OpGraph, env: dict[Any, Any], origin: dict[Any, Any]) -> list[Any]:
    """Add gm's operator calls to g; env maps fx nodes to producer ids (or per-item lists),
    origin maps them to the one value they are (`[id, output index]` or a placeholder kind):
    which argument slot each edge feeds, which inputs are shared, constants and parameters
    (the motif miner needs all four; n-grams need only env)."""
    import torch
    from torch.fx import Node

    def srcs(x: Any) -> set[int]:
        out: set[int] = set()
        for n in _fx_nodes(x):
            v = env.get(n, ())
            out |= set(_flat(v))
        return out

    result: list[Any] = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            origin.setdefault(node, _placeholder_src(node.name))
            continue
        if node.op == "output":
            result = [sorted(srcs(a)) for a in node.args[0]] if isinstance(
                node.args[0], (list, tuple)) else [sorted(srcs(node.args[0]))]
            continue
        if node.op != "call_function":
            continue
        tgt = node.target
        if tgt is operator.getitem:
            base, idx = node.args
            v = env.get(base, ())
            env[node] = v[idx] if isinstance(v, list) and v and isinstance(v[0], list) else v
            o = origin.get(base)
            if isinstance(o, list) and o and isinstance(o[0], int):
                origin[node] = [o[0], idx]
            elif isinstance(o, list) and o and isinstance(o[0], list) and idx < len(o):
                origin[node] = o[idx]
            continue
        if isinstance(tgt, torch._ops.HigherOrderOperator) and tgt.__name__ in _INLINED_HOPS:
            sub_i = next(i for i, a in enumerate(node.args)
                         if isinstance(a, Node) and a.op == "get_attr")
            sub = getattr(gm, node.args[sub_i].target)
            phs = [n for n in sub.graph.nodes if n.op == "placeholder"]
            sub_env = {ph: sorted(srcs(a)) for ph, a in zip(phs, node.args[sub_i + 1:],
                                                             strict=False)}
            sub_origin = {ph: origin.get(a) for ph, a in zip(phs, node.args[sub_i + 1:],
                                                             strict=False)}
            env[node] = _walk_fx(sub, g, sub_env, sub_origin)
            continue
        if isinstance(tgt, torch._ops.OpOverload):
            op, is_aten = _canon(tgt._schema.name)
            schema_args = tgt._schema.arguments
        else:
            op = "higher_order::" + tgt.__name__ if isinstance(
                tgt, torch._ops.HigherOrderOperator) else _pyname(tgt)
            is_aten, schema_args = False, []
        if op in _PLUMBING:
            continue
        args, tensors = _fx_args(node, schema_args)
        val = node.meta.get("val")
        vals = val if isinstance(val, (list, tuple)) else [val]
        outs = [r for r in (tensor_rec(v) for v in vals) if r is not None]
        src = _fx_srcs(node, schema_args, origin)
        i = g.add(op, is_aten, args, tensors, outs, srcs((node.args, node.kwargs)), src)
        env[node] = [i]
        origin[node] = [i, 0]
    return result


def _fx_srcs(node: Any, schema_args: Sequence[Any], origin: dict[Any, Any]) -> dict[str, Any]:
    """Per tensor argument (schema name), the value it reads: `[producer id, output]`, a
    placeholder kind, or None (an fx value this walk does not track)."""
    from torch.fx import Node

    names = [a.name for a in schema_args]
    given: dict[str, Any] = dict(node.kwargs)
    for i, a in enumerate(node.args):
        given[names[i] if i < len(names) else f"arg{i}"] = a
    out: dict[str, Any] = {}
    for name, v in given.items():
        if isinstance(v, Node):
            out[name] = origin.get(v)
        elif isinstance(v, (list, tuple)) and any(isinstance(x, Node) for x in v):
            out[name] = {"list": [origin.get(x) if isinstance(x, Node) else None for x in v]}
    return out


def _pyname(tgt: Any) -> str:
    mod = getattr(tgt, "__module__", None) or "python"
    return f"{mod.replace('_operator', 'operator')}.{getattr(tgt, '__name__', str(tgt))}"


def _fx_nodes(x: Any) -> Iterable[Any]:
    from torch.fx import Node

    if isinstance(x, Node):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _fx_nodes(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _fx_nodes(y)


def _flat(v: Any) -> Iterable[int]:
    if isinstance(v, int):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _flat(x)


def _fx_args(node: Any, schema_args: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Non-tensor argument values and tensor records, keyed by schema argument name."""
    from torch.fx import Node

    given: dict[str, Any] = dict(node.kwargs)
    names = [a.name for a in schema_args]
    for i, a in enumerate(node.args):
        given[names[i] if i < len(names) else f"arg{i}"] = a
    for a in schema_args:  # omitted arguments take their schema default
        if a.name not in given and a.has_default_value():
            given[a.name] = a.default_value
    args: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    for name, v in given.items():
        if isinstance(v, Node) or (isinstance(v, (list, tuple)) and any(
                isinstance(x, Node) for x in v)):
            items = v if isinstance(v, (list, tuple)) else [v]
            recs = [tensor_rec(x.meta.get("val")) if isinstance(x, Node) else None
                    for x in items]
            if any(r is not None for r in recs):
                tensors[name] = {"list": recs} if isinstance(v, (list, tuple)) else recs[0]
                continue
            args[name] = _jsonable([_sym(x) for x in items] if isinstance(v, (list, tuple))
                                   else _sym(v))
        else:
            args[name] = _jsonable(v)
    return args, tensors


def _sym(x: Any) -> Any:
    from torch.fx import Node

    return x.meta.get("val", "sym") if isinstance(x, Node) else x


def graph_from_jit(graph: Any) -> OpGraph:
    """The same extraction over a TorchScript (jit.trace) graph, with aten::<op> node kinds."""
    import torch

    g = OpGraph()
    srcs: dict[Any, set[int]] = {}
    consts: dict[Any, Any] = {}
    items: dict[Any, list[Any]] = {}
    for node in graph.nodes():
        kind = node.kind()
        ins, outs = list(node.inputs()), list(node.outputs())
        if kind == "prim::Constant":
            consts[outs[0]] = outs[0].toIValue() if outs[0].type().kind() != "FunctionType" \
                else None
            continue
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            items[outs[0]] = ins
            srcs[outs[0]] = set().union(*(srcs.get(v, set()) for v in ins))
            if all(v in consts for v in ins):
                consts[outs[0]] = [consts[v] for v in ins]
            continue
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            parts = items.get(ins[0])
            for k, o in enumerate(outs):
                srcs[o] = srcs.get(parts[k], set()) if parts else srcs.get(ins[0], set())
            continue
        if kind in ("prim::TupleIndex", "prim::GetAttr", "prim::NumToTensor") or kind in \
                _PLUMBING:
            continue
        op, is_aten = _canon(kind)
        try:
            names = [a.name for a in torch._C.parse_schema(node.schema()).arguments]
        except RuntimeError:
            names = []
        args: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        preds: set[int] = set()
        for i, v in enumerate(ins):
            name = names[i] if i < len(names) else f"arg{i}"
            preds |= srcs.get(v, set())
            if v in consts:
                args[name] = _jsonable(consts[v])
            elif isinstance(v.type(), torch._C.TensorType):
                tensors[name] = _jit_tensor(v)
            elif v in items:
                tensors[name] = {"list": [_jit_tensor(x) for x in items[v]]}
        if op == "aten::_convolution":
            op, args = _conv_from_jit(args)
        recs = [_jit_tensor(o) for o in outs if isinstance(o.type(), torch._C.TensorType)]
        i_new = g.add(op, is_aten, args, tensors, [r for r in recs if r], preds)
        for o in outs:
            srcs[o] = {i_new}
    return g


def _conv_from_jit(args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """jit.trace records `aten::_convolution`; name it as export does (conv2d,
    conv_transpose1d, ...) with that op's arguments, so both tracers share one vocabulary."""
    nd = len(args.get("stride") or [0, 0])
    keys = ["stride", "padding", "dilation", "groups"]
    if args.get("transposed"):
        keys.append("output_padding")
    out = {k: args[k] for k in keys if k in args}
    if "bias" in args:  # only present here when it was a None constant
        out["bias"] = None
    kind = "conv_transpose" if args.get("transposed") else "conv"
    return f"aten::{kind}{nd}d", out


def _jit_tensor(v: Any) -> list[Any] | None:
    t = v.type()
    try:
        dtype, sizes = t.dtype(), t.sizes()
    except (RuntimeError, AttributeError):
        return None
    if dtype is None or sizes is None:
        return None
    return [str(dtype).removeprefix("torch."), list(sizes)]


# ---------------------------------------------------------------------------- aggregation

def to_digraph(rec: dict[str, Any]) -> nx.DiGraph:
    """An architecture's operator graph: node attribute `op`, edges = data flow."""
    graph: OpGraph = rec["graph"]
    g = nx.DiGraph(name=rec["name"])
    for i, n in enumerate(graph.nodes):
        g.add_node(i, op=n["op"], aten=n["aten"])
    g.add_edges_from(sorted(graph.edges))
    return g


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


def dump_graph(path: Path, g: OpGraph) -> None:
    import gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump({"nodes": g.nodes, "edges": sorted(g.edges)}, f)


def load_graph(path: Path) -> OpGraph:
    import gzip

    with gzip.open(path, "rt") as f:
        d = json.load(f)
    return OpGraph(d["nodes"], {tuple(e) for e in d["edges"]})  # type: ignore[misc]


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
    from fuzzer.mine_sources import SOURCES

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
    """Trace every architecture of `sources` and write ngrams/ops/archs/meta JSON to `out`
    (and each traced graph as `<graphs>/<source>:<name>.json.gz` when `graphs` is given:
    motifs can be mined again from them without tracing)."""
    from fuzzer.mine_sources import SOURCES, Pool

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
    from fuzzer.motifs import MotifStats, write_motifs

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
    import torch

    try:
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


# ---------------------------------------------------------------------------- reading

@dataclass
class Seeds:
    """Mined seeds: `ngrams[n][chain] = (count, archs)`, plus the ops/archs/meta JSON."""

    ngrams: dict[int, dict[tuple[str, ...], tuple[int, list[str]]]]
    ops: dict[str, dict[str, Any]]
    archs: list[dict[str, Any]]
    meta: dict[str, Any]
    _tables: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    def archs_containing(self, chain: Sequence[str]) -> list[str]:
        """Architectures in which `chain` (1..4 operators) occurs along a data-flow path."""
        key = tuple(chain)
        if not 1 <= len(key) <= MAX_N:
            raise ValueError(f"chains of 1..{MAX_N} operators are mined, got {len(key)}")
        return list(self.ngrams.get(len(key), {}).get(key, (0, []))[1])

    def arg_values(self, op: str, arg: str) -> list[tuple[Any, int]]:
        """Observed values of a non-tensor argument, decoded, most frequent first."""
        vals = self.ops.get(op, {}).get("args", {}).get(arg, {})
        return sorted(((json.loads(k), c) for k, c in vals.items()), key=lambda kv: -kv[1])

    def arg_table(self, op: str, arg: str) -> tuple[tuple[str, ...], np.ndarray] | None:
        """`arg_values` as the generator draws from it: the values still JSON-encoded (each
        draw decodes a fresh object) and their cumulative probabilities, normalized as
        numpy's `Generator.choice(n, p=...)` does, so `cdf.searchsorted(rng.random(),
        "right")` is that choice, draw for draw, without its ~5 us of checks; None when
        none was observed. Built once an argument: decoding every observed value at every
        draw was ~40% of drawing a real-arm Case."""
        key = (op, arg)
        if key not in self._tables:
            vals = self.ops.get(op, {}).get("args", {}).get(arg, {})
            rows = sorted(vals.items(), key=lambda kv: -kv[1])
            self._tables[key] = None
            if rows:
                w = np.asarray([c for _, c in rows], dtype=np.float64)
                cdf = (w / w.sum()).cumsum()
                cdf /= cdf[-1]
                self._tables[key] = (tuple(k for k, _ in rows), cdf)
        return self._tables[key]


def load_seeds(path: Path) -> Seeds:
    path = Path(path)
    raw = json.loads((path / "ngrams.json").read_text())
    names = raw["archs"]
    ngrams = {int(n): {tuple(r["ops"]): (r["count"], [names[i] for i in r["archs"]])
                       for r in rows} for n, rows in raw["ngrams"].items()}
    meta_p = path / "meta.json"
    return Seeds(ngrams, json.loads((path / "ops.json").read_text())["ops"],
                 json.loads((path / "archs.json").read_text())["archs"],
                 json.loads(meta_p.read_text()) if meta_p.exists() else {})


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

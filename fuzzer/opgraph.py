"""A traced architecture as a graph of operator calls: nodes are ATen calls (with their
non-tensor arguments and tensor shapes), edges are data flow. Built from a `torch.export`
FX graph or a `torch.jit.trace` graph inside the mining worker (fuzzer.mine_sources), and
aggregated into seeds by fuzzer.mine."""

from __future__ import annotations

import gzip
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from torch.fx import Node

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
    """Add gm's operator calls to g; env maps fx nodes to producer ids (or per-item lists).
    `origin` maps fx nodes to the one value they are (`[id, output index]` or a placeholder
    kind): which argument slot each edge feeds, shared inputs, constants and parameters (the
    motif miner needs them; n-grams need only env)."""

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
        i = g.add(op, is_aten, args, tensors, outs, srcs((node.args, node.kwargs)),
                  _fx_srcs(node, schema_args, origin))
        g.nodes[i]["fx"] = node.name  # the FX value it is: fuzzer.lift reads values by it
        env[node] = [i]
        origin[node] = [i, 0]
    return result


def _fx_srcs(node: Any, schema_args: Sequence[Any], origin: dict[Any, Any]) -> dict[str, Any]:
    """Per tensor argument (schema name), the value it reads: `[producer id, output]`, a
    placeholder kind, or None (an fx value this walk does not track)."""
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


def dump_graph(path: Any, g: OpGraph) -> None:
    """A traced graph as gzipped JSON (`mine --graphs`): motifs can be mined again from it
    without tracing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump({"nodes": g.nodes, "edges": sorted(g.edges)}, f)


def load_graph(path: Any) -> OpGraph:
    with gzip.open(path, "rt") as f:
        d = json.load(f)
    return OpGraph(d["nodes"], {(int(a), int(b)) for a, b in d["edges"]})


# Ops that hand their input on unchanged in value: `x.transpose(1, 2).contiguous()` ends most
# attention blocks of transformers. Left in, every one of them cuts a motif or a lifted window
# in two (the catalogue gives them no entry: they compute nothing an exporter must convert).
IDENTITIES = {"aten::contiguous": "self", "aten::alias": "self", "aten::detach": "self",
              "aten::clone": "self", "aten::lift_fresh_copy": "self"}


def bypass_identities(graph: OpGraph) -> OpGraph:
    """The same nodes (same indices), with every read of an IDENTITIES node's output reading
    its input instead and no edge into or out of it: the identity nodes stay, disconnected and
    without sources."""
    nodes = graph.nodes

    def source(ref: Any) -> Any:
        seen = 0
        while (isinstance(ref, list) and len(ref) == 2 and isinstance(ref[0], int)
               and 0 <= ref[0] < len(nodes) and nodes[ref[0]]["op"] in IDENTITIES
               and seen < len(nodes)):
            n = nodes[ref[0]]
            ref = (n.get("src") or {}).get(IDENTITIES[n["op"]], ref)
            seen += 1
        return ref

    def remap(src: Any) -> Any:
        if isinstance(src, dict) and "list" in src:
            return {**src, "list": [source(r) for r in src["list"]]}
        return source(src)

    ident = {i for i, n in enumerate(nodes) if n["op"] in IDENTITIES}
    if not any(nodes[i].get("src") for i in ident):
        return graph  # none, or bypassed already (lift() of a load_arch_graph() graph)
    # an identity keeps its place but reads nothing (so nothing translates it into a dangling
    # copy) and is read by nothing
    out = OpGraph([{**n, "src": {k: remap(v) for k, v in (n.get("src") or {}).items()}}
                   if i not in ident else {**n, "src": {}} for i, n in enumerate(nodes)], set())
    for i, n in enumerate(out.nodes):
        if i in ident:
            continue
        for v in n["src"].values():
            for r in (v["list"] if isinstance(v, dict) and "list" in v else [v]):
                if isinstance(r, list) and len(r) == 2 and isinstance(r[0], int):
                    out.edges.add((r[0], i))
    # edges the sources do not show (a read the tracer recorded only as an edge) are kept
    out.edges |= {(a, b) for a, b in graph.edges if a not in ident and b not in ident}
    return out


def _pyname(tgt: Any) -> str:
    mod = getattr(tgt, "__module__", None) or "python"
    return f"{mod.replace('_operator', 'operator')}.{getattr(tgt, '__name__', str(tgt))}"


def _fx_nodes(x: Any) -> Iterable[Any]:

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

    return x.meta.get("val", "sym") if isinstance(x, Node) else x


def graph_from_jit(graph: Any) -> OpGraph:
    """The same extraction over a TorchScript (jit.trace) graph, with aten::<op> node kinds."""

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


def to_digraph(rec: dict[str, Any]) -> nx.DiGraph:
    """An architecture's operator graph: node attribute `op`, edges = data flow."""
    graph: OpGraph = rec["graph"]
    g = nx.DiGraph(name=rec["name"])
    for i, n in enumerate(graph.nodes):
        g.add_node(i, op=n["op"], aten=n["aten"])
    g.add_edges_from(sorted(graph.edges))
    return g



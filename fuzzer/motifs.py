"""Motifs: the multi-operator blocks real architectures are built of, mined from traced graphs.

n-grams follow one data-flow path; a motif is a connected subgraph of 2..10 operators (up to 14
for an attention block: the q/k/v projections to the heads merged again) with its
fan-in and fan-out (RMSNorm reads its input twice, rotary joins two halves), its constants
(eps, 0.5, sqrt(2/pi), 0.044715), its parameters and its shared inputs. Candidates are the
single-entry regions of a traced graph: for every node v and every ancestor u within
`MAX_NODES` steps, the nodes on the paths from u to v (with and without u itself, so that a
block that reads one tensor twice is found with that tensor as a shared input).

Each candidate is translated into catalogue terms (the operator entries a Case is made of),
checked by the catalogue's shape rules against the traced shapes, and canonicalized: operator
labels, argument slots, which arguments are inputs, scalar constants (exact values),
parameters, attribute values, and shapes relative to each other (every size > 1 named by its
rank among the motif's sizes). The Weisfeiler-Lehman hash of that labelled graph
(networkx) is the motif's key. `convfuzz mine` counts them per architecture and writes the
frequent ones (>= 2 architectures) to `seeds/motifs.json`, each with a concrete instance (a
Case fragment at the traced sizes) the `motif` sampler instantiates.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from fuzzer import ops
from fuzzer.blocks import names_of
from fuzzer.opgraph import bypass_identities, load_graph
from fuzzer.ops.spec import Meta

FORMAT = 1
MIN_NODES, MAX_NODES = 2, 10
# An attention block (q/k/v projections, their views and transposes, the attention, the merge
# of the heads: 12-13 operators) is the block the attention fusions match and does not fit in
# MAX_NODES; regions ending within ATTENTION_TAIL steps after an attention get this many.
MAX_ATTENTION_NODES, ATTENTION_TAIL = 14, 3
_ATTENTION = "aten::scaled_dot_product_attention"
MIN_ARCHS = 2
MAX_SCALAR_LITERAL = 64  # elements: tensor constants up to this size keep their values
# Tensor argument slots in the order catalogue entries take them (schema names).
_SLOT_ORDER = ("self", "input", "tensors", "query", "key", "value", "other", "mat2", "attn_mask",
               "exponent")
# Attributes whose integers are sizes (so they scale with the shapes); others (dims) are not.
_SIZE_ATTRS = {"size", "shape", "start", "end", "out_features", "split_size"}
# Entries that are not the traced op's semantics (where: x > threshold; contiguous:
# transposes; chunk/split: one piece) or whose inputs need valid index values a motif does
# not know (indexing), or that make tensors from nothing (creation).
_SKIP_FAMILIES = {"indexing", "creation", "loss", "selection"}
_SKIP_OPS = {"aten::where", "aten::contiguous", "aten::chunk", "aten::split",
             "aten::split_with_sizes", "aten::unbind", "aten::copy", "aten::diff",
             "aten::cummax", "aten::cummin"}


# -- translation: one traced node -> catalogue op, tensor slots and attributes ---------------
@dataclass
class Slot:
    """One tensor argument of a translated node: where its value comes from."""

    src: Any  # [node id, output] | ["input"|"param"|"buffer"|"const", name] | None
    meta: tuple[str, list[int]] | None  # traced dtype and shape
    scalar: Any = None  # a Python number standing where the catalogue takes a tensor


@dataclass
class Translated:
    op: str
    slots: list[Slot]
    attrs: dict[str, Any]


Translator = Callable[[dict[str, Any]], tuple[str, list[str], dict[str, Any]] | None]
TRANSLATORS: dict[str, Translator] = {}


def translator(*names: str) -> Callable[[Translator], Translator]:
    def deco(fn: Translator) -> Translator:
        for n in names:
            TRANSLATORS[n] = fn
        return fn
    return deco


def _dtype(v: Any) -> Any:
    return v.removeprefix("torch.") if isinstance(v, str) and v.startswith("torch.") else v


def _generic(n: dict[str, Any], op: str) -> tuple[str, list[str], dict[str, Any]] | None:
    spec = ops.get(op)
    attrs = {}
    for a in spec.args:
        if a.name in n["args"]:
            v = n["args"][a.name]
            attrs[a.name] = _dtype(v) if a.kind == "dtype" else v
    slots = [s for s in _SLOT_ORDER if s in n["src"] or
             (s == "other" and isinstance(n["args"].get("other"), (int, float)))]
    return op, slots, attrs


@translator("aten::linear")
def _linear(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    w = n["tensors"].get("weight")
    if not w or len(w[1]) != 2:
        return None
    return "aten::linear", ["input"], {"out_features": w[1][0], "with_bias": "bias" in n["src"]}


@translator("aten::conv1d", "aten::conv2d", "aten::conv3d")
def _conv(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    """The catalogue's convolution owns its weight: out_channels and kernel_size from it."""
    w = n["tensors"].get("weight")
    nd = int(n["op"][-2])
    if not w or len(w[1]) != nd + 2:
        return None
    a = n["args"]
    attrs = {"out_channels": w[1][0], "kernel_size": list(w[1][2:]),
             "with_bias": "bias" in n["src"]}
    for k in ("stride", "padding", "dilation", "groups"):
        if k in a:
            v = a[k]
            attrs[k] = [v] * nd if isinstance(v, int) and k != "groups" else v
    return n["op"], ["input"], attrs


@translator("aten::layer_norm", "aten::rms_norm")
def _norm(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    shape = n["args"].get("normalized_shape")
    if not isinstance(shape, list):
        return None
    attrs = {"normalized_dims": len(shape), "eps": n["args"].get("eps"),
             "elementwise_affine": "weight" in n["src"]}
    if n["op"] == "aten::layer_norm":
        attrs["with_bias"] = "bias" in n["src"]
        if attrs["eps"] is None:
            return None
    return n["op"], ["input"], attrs


@translator("aten::dropout")
def _dropout(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    """The catalogue's dropout is the eval-mode identity: faithful where the trace was."""
    if n["args"].get("train") is not False:
        return None
    return "aten::dropout", ["input"], {"p": n["args"].get("p", 0.5)}


@translator("aten::embedding")
def _embedding(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    """A lookup in a weight the trace holds (word, position, token-type embeddings): the
    catalogue's entry owns its weight; ATen's padding_idx -1 is None (eval: no effect)."""
    w = n["tensors"].get("weight")
    if not w or len(w[1]) != 2 or "weight" not in n["src"]:
        return None
    pad = n["args"].get("padding_idx", -1)
    return n["op"], ["indices"], {"num_embeddings": w[1][0], "embedding_dim": w[1][1],
                                  "padding_idx": None if pad == -1 else pad,
                                  "weight_dtype": w[0]}


@translator("aten::scaled_dot_product_attention")
def _sdpa(n: dict[str, Any]) -> tuple[str, list[str], dict[str, Any]] | None:
    a = n["args"]
    mask = n["tensors"].get("attn_mask")
    attrs = {"attn_mask": None if not mask else ("bool" if mask[0] == "bool" else "float"),
             "mask_rank": len(mask[1]) if mask else 2, "dropout_p": 0.0,
             "is_causal": bool(a.get("is_causal", False)), "scale": a.get("scale"),
             "enable_gqa": bool(a.get("enable_gqa", False))}
    return n["op"], ["query", "key", "value"] + (["attn_mask"] if mask else []), attrs


def translate(n: dict[str, Any]) -> Translated | None:
    """The catalogue form of a traced node, or None when the catalogue has no faithful one
    (unknown op, or the entry's shape rule disagrees with the traced shapes)."""
    op = ops.canonical(n["op"])
    if op not in ops.REGISTRY or not n["outs"] or "src" not in n:
        return None
    spec = ops.get(op)
    if (spec.family in _SKIP_FAMILIES and op not in TRANSLATORS) or op in _SKIP_OPS:
        return None
    got = TRANSLATORS[op](n) if op in TRANSLATORS else _generic(n, op)
    if got is None:
        return None
    op, slot_names, attrs = got
    slots: list[Slot] = []
    for s in slot_names:
        src, rec = n["src"].get(s), n["tensors"].get(s)
        if isinstance(src, dict):  # a list argument (cat): one slot per item
            recs = rec["list"] if isinstance(rec, dict) else []
            if len(src["list"]) != len(recs):
                return None
            slots += [Slot(x, tuple(r) if r else None) for x, r in zip(src["list"], recs,
                                                                         strict=True)]
        elif s in n["src"]:
            slots.append(Slot(src, tuple(rec) if rec else None))
        else:
            v = n["args"].get(s)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                return None
            slots.append(Slot(None, None, scalar=v))
    if not slots or any(s.meta is None and s.scalar is None for s in slots):
        return None
    metas = [Meta(tuple(s.meta[1]), s.meta[0]) if s.meta else
             Meta((), "int64" if isinstance(s.scalar, int) else "float64") for s in slots]
    if slots[0].scalar is not None or any(m.dtype not in _DTYPES for m in metas):
        return None
    want = n["outs"][0]
    try:
        full = {**spec.defaults(), **attrs}
        out = spec.infer(metas, full)
    except Exception:
        return None
    if list(out[0].shape) != list(want[1]) or out[0].dtype != want[0]:
        return None
    return Translated(op, slots, attrs)


_DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32",
           "int64", "bool")


# -- candidate regions --------------------------------------------------------------------------
def attention_tails(g: nx.DiGraph, ops_of: dict[int, str]) -> set[int]:
    """The attention nodes and the nodes up to ATTENTION_TAIL steps after one."""
    out: set[int] = set()
    frontier = {i for i, op in ops_of.items() if op == _ATTENTION}
    for _ in range(ATTENTION_TAIL + 1):
        out |= frontier
        frontier = {s for w in frontier for s in g._succ[w]} - out
    return out


def regions(g: nx.DiGraph, ok: set[int], max_nodes: int = MAX_NODES,
            wide: set[int] | None = None) -> set[frozenset[int]]:
    """Node sets of the single-entry regions among translatable nodes `ok`: for v and an
    ancestor u, the nodes on the u->v paths (capped at max_nodes, MAX_ATTENTION_NODES when v
    is in `wide`), and the same without u."""
    out: set[frozenset[int]] = set()
    for v in ok:
        limit = MAX_ATTENTION_NODES if wide and v in wide else max_nodes
        anc: dict[int, int] = {v: 0}
        todo = deque([v])
        while todo:
            w = todo.popleft()
            if anc[w] >= limit - 1:
                continue
            for p in g._pred[w]:
                if p in ok and p not in anc:
                    anc[p] = anc[w] + 1
                    todo.append(p)
        for u in anc:
            if u == v:
                continue
            reach, stack, big = {u}, [u], False
            while stack and not big:
                w = stack.pop()
                for s in g._succ[w]:
                    if s in anc and s not in reach:
                        reach.add(s)
                        stack.append(s)
                        if len(reach) > limit:
                            big = True
                            break
            if big or v not in reach:
                continue
            # Only nodes from which v is reachable inside the set: the u->v paths.
            region = _co_reach(g, reach, v)
            if MIN_NODES <= len(region) <= limit:
                out.add(frozenset(region))
            inner = region - {u}
            if len(inner) >= MIN_NODES and _connected(g, inner):
                out.add(frozenset(inner))
    return out


def _connected(g: nx.DiGraph, nodes: set[int]) -> bool:
    start = next(iter(nodes))
    seen, stack = {start}, [start]
    while stack:
        w = stack.pop()
        for x in (*g._succ[w], *g._pred[w]):
            if x in nodes and x not in seen:
                seen.add(x)
                stack.append(x)
    return len(seen) == len(nodes)


def _co_reach(g: nx.DiGraph, within: set[int], v: int) -> set[int]:
    seen, stack = {v}, [v]
    while stack:
        w = stack.pop()
        for p in g._pred[w]:
            if p in within and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


# -- a region as a Case fragment, and its canonical key ------------------------------------
@dataclass
class Fragment:
    """A motif instance in Case terms (plain JSON) at the traced sizes."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    consts: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "consts": self.consts, "nodes": self.nodes,
                "outputs": self.outputs}


def fragment(g: nx.DiGraph, tr: dict[int, Translated], region: Iterable[int],
             where: dict[str, Any] | None = None) -> Fragment:
    """Inputs x0.., constants c0.. (scalars) and w0.. (parameters), nodes n0.. in topological
    order (n<i> is the i-th smallest node id of the region); outputs are the region's nodes
    read outside it or by nothing. `where`, when given, gets each input's and parameter's
    traced source (fuzzer.lift binds the architecture's own values by it)."""
    order = sorted(region)  # node ids are execution order: a topological order
    ids = {v: f"n{i}" for i, v in enumerate(order)}
    frag = Fragment()
    seen: dict[str, str] = {}
    for v in order:
        t = tr[v]
        args = []
        for s in t.slots:
            if s.scalar is not None:
                name = f"c{len(frag.consts)}"
                frag.consts.append({"name": name, "shape": [],
                                    "dtype": "int64" if isinstance(s.scalar, int) else "float64",
                                    "value": s.scalar, "scalar": True})
                args.append(name)
                continue
            src = s.src
            if isinstance(src, list) and src and isinstance(src[0], int) and src[0] in ids:
                args.append(ids[src[0]] if src[1] == 0 else f"{ids[src[0]]}:{src[1]}")
                continue
            key = json.dumps(src)
            if key not in seen:
                kind = src[0] if isinstance(src, list) and isinstance(src[0], str) else "input"
                dtype, shape = s.meta  # type: ignore[misc]
                if kind in ("param", "buffer", "const"):
                    name = f"w{sum(1 for c in frag.consts if not c.get('scalar'))}"
                    frag.consts.append({"name": name, "shape": list(shape), "dtype": dtype,
                                        "values": _values(dtype)})
                else:
                    name = f"x{len(frag.inputs)}"
                    frag.inputs.append({"name": name, "shape": list(shape), "dtype": dtype,
                                        "values": _values(dtype)})
                seen[key] = name
                if where is not None:
                    where[name] = src
            args.append(seen[key])
        frag.nodes.append({"id": ids[v], "op": t.op, "args": args, "attrs": t.attrs})
    _fit_indices(frag)
    inside = set(order)
    for v in order:
        succ = set(g.successors(v))
        if not succ or succ - inside:
            frag.outputs.append(ids[v])
    return frag


_MOVES_VALUES = frozenset(f"aten::{o}" for o in (
    "expand", "slice", "view", "reshape", "unsqueeze", "squeeze", "flatten", "select",
    "transpose", "permute", "contiguous", "clone", "repeat"))


def _fit_indices(frag: Fragment) -> None:
    """An int input or constant read as embedding indices draws below the table's rows (a
    token-type table has 2)."""
    vals = {x["name"]: x["values"] for x in [*frag.inputs, *frag.consts] if "values" in x}
    nodes = {n["id"]: n for n in frag.nodes}
    for n in frag.nodes:
        if n["op"] != "aten::embedding":
            continue
        ref = n["args"][0]
        while ref in nodes and nodes[ref]["op"] in _MOVES_VALUES:  # ids sliced, expanded...
            ref = nodes[ref]["args"][0]
        if ref in vals:
            v = vals[ref]
            v["high"] = min(v.get("high", 8), n["attrs"]["num_embeddings"] - 1)  # inclusive


def _values(dtype: str) -> dict[str, Any]:
    if dtype == "bool":
        return {"dist": "bool", "p": 0.5}
    if dtype in ("float32", "float64", "float16", "bfloat16"):
        return {"dist": "normal", "scale": 1.0}
    return {"dist": "int", "low": 0, "high": 8}


def sizes_of(frag: dict[str, Any]) -> list[int]:
    """The distinct sizes > 1 of the fragment's inputs and constants, ascending."""
    return sorted({s for x in [*frag["inputs"], *frag["consts"]] for s in x["shape"] if s > 1})


def _sym(v: int, names: dict[int, str]) -> Any:
    if v in names:
        return names[v]
    for s, n in names.items():
        if s % 2 == 0 and v == s // 2:
            return f"{n}/2"
    return v


def _abstract(attrs: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if k in _SIZE_ATTRS and isinstance(v, int) and not isinstance(v, bool):
            out[k] = _sym(v, names)
        elif k in _SIZE_ATTRS and isinstance(v, list):
            out[k] = [_sym(x, names) if isinstance(x, int) else x for x in v]
        else:
            out[k] = v
    return out


def key_graph(frag: dict[str, Any]) -> nx.DiGraph:
    """The fragment as a labelled graph: the canonical form the key hashes."""
    names = {s: f"d{i}" for i, s in enumerate(sizes_of(frag))}

    def shape(sh: list[int]) -> list[Any]:
        return [names.get(s, s) for s in sh]

    g = nx.DiGraph()
    for x in frag["inputs"]:
        g.add_node(x["name"], label=f"in|{x['dtype']}|{shape(x['shape'])}")
    for c in frag["consts"]:
        g.add_node(c["name"], label=(f"scalar|{c['dtype']}|{c['value']!r}" if c.get("scalar")
                                     else f"param|{c['dtype']}|{shape(c['shape'])}"))
    for n in frag["nodes"]:
        label = f"{n['op']}|{json.dumps(_abstract(n['attrs'], names), sort_keys=True)}"
        g.add_node(n["id"], label=label)
        for i, a in enumerate(n["args"]):
            base, _, idx = a.partition(":")
            g.add_edge(base, n["id"], slot=f"{i}:{idx or 0}")
    return g


_KEYS: dict[str, str] = {}


def motif_key(frag: dict[str, Any]) -> str:
    """WL hash of `key_graph`; memoized on the fragment's JSON (a block repeated per layer
    yields the same fragment, and hashing was most of mining motifs)."""
    text = json.dumps(frag, sort_keys=True)
    k = _KEYS.get(text)
    if k is None:
        with warnings.catch_warnings():
            # networkx >= 3.5 warns at every call that directed hashes changed in 3.5: the
            # keys are compared only within one networkx (seeds/ records the mining run).
            warnings.simplefilter("ignore", UserWarning)
            k = _KEYS[text] = nx.weisfeiler_lehman_graph_hash(
                key_graph(frag), node_attr="label", edge_attr="slot", iterations=5,
                digest_size=8)
        if len(_KEYS) > 200_000:
            _KEYS.clear()
    return k


# -- counting across architectures ----------------------------------------------------------
class MotifStats:
    """Motif keys -> occurrences, architectures and the first instance seen."""

    def __init__(self) -> None:
        self.motifs: dict[str, dict[str, Any]] = {}
        self.archs: list[str] = []
        self.skipped: dict[str, str] = {}

    def add(self, label: str, graph: Any) -> None:
        graph = bypass_identities(graph)  # x.transpose(1, 2).contiguous() cuts no block
        nodes = graph.nodes
        if not any("src" in n and n["src"] for n in nodes):
            self.skipped[label] = "no argument sources (fallback tracer)"
            return
        g = nx.DiGraph()
        g.add_nodes_from(range(len(nodes)))
        g.add_edges_from(graph.edges)
        tr = {i: t for i, n in enumerate(nodes) if (t := translate(n)) is not None}
        self.archs.append(label)
        local: Counter[str] = Counter()
        firsts: dict[str, Fragment] = {}
        wide = attention_tails(g, {i: n["op"] for i, n in enumerate(nodes)})
        for region in regions(g, set(tr), wide=wide):
            frag = fragment(g, tr, region)
            k = motif_key(frag.to_json())
            local[k] += 1
            firsts.setdefault(k, frag)
        for k, c in local.items():
            m = self.motifs.get(k)
            if m is None:
                m = self.motifs[k] = {"count": 0, "archs": [], "instance": firsts[k].to_json()}
            m["count"] += c
            m["archs"].append(label)


MAX_MOTIFS = 1500  # the most widespread; plus up to MAX_NAMED of every named block
MAX_NAMED = 40
# ... of which at most this many share one set of architectures: near-copies of one family (four
# parakeet variants, three nemotron ASR encoders) would otherwise fill a block's budget with one
# layer, and the same block in other families (mobilenet's pad -> conv) would never be drawn.
MAX_PER_FAMILY = 8
# Motifs of data movement alone (unsqueeze chains, view -> transpose) test little a chain
# does not: a kept motif computes something.
_MOVES = {"shape", "cast", "copy"}


def _computes(inst: dict[str, Any]) -> bool:
    return any(ops.get(n["op"]).family not in _MOVES for n in inst["nodes"])


def write_motifs(path: Path, stats: MotifStats, meta: dict[str, Any]) -> int:
    """The motifs seen in >= MIN_ARCHS architectures that compute something, most widespread
    first (MAX_MOTIFS, plus the MAX_NAMED most widespread of each named block, MAX_PER_FAMILY
    from one set of architectures); one a line."""
    rows = []
    for k, m in stats.motifs.items():
        if len(m["archs"]) < MIN_ARCHS or not _computes(m["instance"]):
            continue
        inst = m["instance"]
        rows.append({"key": k, "name": names_of(inst), "n": len(inst["nodes"]),
                     "ops": [n["op"] for n in inst["nodes"]], "count": m["count"],
                     "archs": sorted(m["archs"]), "instance": inst})
    rows.sort(key=lambda r: (-len(r["archs"]), -r["count"], r["key"]))
    per_name: Counter[str] = Counter()
    per_family: Counter[tuple[str, tuple[str, ...]]] = Counter()
    kept = []
    for i, r in enumerate(rows):
        fam = tuple(r["archs"])
        named_ok = [n for n in r["name"]
                    if per_name[n] < MAX_NAMED and per_family[n, fam] < MAX_PER_FAMILY]
        if i < MAX_MOTIFS or named_ok:
            kept.append(r)
            per_name.update(r["name"])
            per_family.update((n, fam) for n in r["name"])
    rows = kept
    head = {"format": FORMAT, "min_archs": MIN_ARCHS,
            "nodes": [MIN_NODES, MAX_NODES, MAX_ATTENTION_NODES],
            "archs": sorted(stats.archs), "skipped": stats.skipped,
            "distinct": len(stats.motifs),
            "frequent": sum(1 for m in stats.motifs.values() if len(m["archs"]) >= MIN_ARCHS),
            **meta}
    body = ",\n".join(json.dumps(r, sort_keys=True) for r in rows)
    path.write_text(json.dumps(head, sort_keys=True)[:-1] + ',\n"motifs": [\n' + body + "\n]}\n")
    return len(rows)


@dataclass
class Motif:
    key: str
    name: list[str]
    ops: list[str]
    count: int
    archs: list[str]
    instance: dict[str, Any]


def load_motifs(path: Path) -> tuple[dict[str, Any], list[Motif]]:
    """(header, motifs) of a motifs.json."""
    raw = json.loads(Path(path).read_text())
    motifs = [Motif(r["key"], r["name"], r["ops"], r["count"], r["archs"], r["instance"])
              for r in raw.pop("motifs")]
    return raw, motifs


def mine_graphs(graphs: Path, out: Path, command: str) -> int:
    """Motifs from graphs written by `python -m fuzzer.mine --graphs` (no tracing)."""
    stats = MotifStats()
    for p in sorted(Path(graphs).glob("*.json.gz")):
        stats.add(p.name.removesuffix(".json.gz"), load_graph(p))
    return write_motifs(out, stats, {"command": command})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzzer.motifs",
                                description="Mine motifs from dumped traced graphs.")
    p.add_argument("graphs", type=Path, help="directory of <source>:<name>.json.gz graphs")
    p.add_argument("out", type=Path, help="motifs.json to write")
    a = p.parse_args(argv)
    cmd = "python -m fuzzer.motifs " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{mine_graphs(a.graphs, a.out, cmd)} motifs written to {a.out}")
    return 0


if __name__ == "__main__":
    from fuzzer.motifs import main as _main

    raise SystemExit(_main())

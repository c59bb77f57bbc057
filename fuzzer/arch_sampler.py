"""The `arch` sampler: a connected window of a real architecture's lifted graph as a Case.

Rewriters' fusions match real blocks *in context*: a LayerNorm fusion wants the bias add
after the scale, an attention fusion the q/k/v projections of one normalized input, the
head reshapes and the output projection. A motif (2..10 operators, fuzzer/motifs.py) is too
small to hold that; a whole lifted architecture (fuzzer/lift.py) is one Case per
architecture. Seed s draws one of the mined architectures (`seeds/graphs/`), a traced node
of it that the catalogue translates faithfully, and a window of `MIN_NODES`..`MAX_NODES`
translated nodes grown around it through data flow (producers and readers alike), with the
architecture's real shapes, attributes and scalar constants; parameters, buffers and lifted
constants stay constants (initializers), and a value the window reads from a node outside it
becomes a Case input of its traced shape and dtype. Deterministic: every draw comes from the
Case seed (fuzzer/rng.py); an architecture's translation is computed once per process.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, MAX_NUMEL, Case, CaseError, split_ref
from fuzzer.lift import LiftError, arch_graphs, load_arch_graph, translations
from fuzzer.model import infer
from fuzzer.motif_sampler import as_parameters
from fuzzer.motifs import Translated, fragment
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, GenerationError, sampler

SEEDS = Path(__file__).resolve().parent.parent / "seeds"  # the repo's, as the motif arm's
MIN_NODES, MAX_NODES = 6, 40
# Windows start at, and grow towards, floating computation: the mask and position plumbing
# (int/bool unsqueeze, expand, compare, bitwise_and: a fifth of a transformer's nodes) weighs
# `PLUMBING`, so a window mostly holds the blocks fusions are written for, with some plumbing
# where the block reads it (an attention mask).
PLUMBING = 0.15
# A third of the draws start at an operator kind drawn uniformly over the kinds the architectures
# compute (then an architecture holding it, then one of its nodes of that kind): 45 of the
# 423 architectures share llama's operators, and a block written out in one or two of them
# (deberta's LayerNorm as Div(x - mean, sqrt(var + eps)) * w + b) would else be drawn once in
# 400 Cases. The rest (after the anchors below) draw an architecture uniformly and start
# anywhere (by weight).
BY_OPERATOR = 0.35
# Another third start at an operator a fusion is written around (a norm, an activation the
# GELU/QuickGelu/FastGelu fusions spell out, attention, an embedding lookup, a conv or
# projection a bias or activation folds into, rotary's cos/sin): drawn uniformly among the
# anchors the architectures compute, the window then grows its context around it.
BY_ANCHOR = 0.35
ANCHORS = ("aten::layer_norm", "aten::rms_norm", "aten::group_norm", "aten::batch_norm",
           "aten::rsqrt", "aten::softmax", "aten::scaled_dot_product_attention",
           "aten::gelu", "aten::silu", "aten::sigmoid", "aten::tanh", "aten::erf",
           "aten::embedding", "aten::conv1d", "aten::conv2d", "aten::linear", "aten::matmul",
           "aten::cos", "aten::sin", "aten::dropout")
BOOL_TRUE = 0.9  # share of true values in a bool input (see _input_values)
_DOMAINS = ("positive", "uniform")  # value distributions that are an operator's domain
_REACH = 3  # operators downstream of a cut input whose domain it is drawn from
_TRIES = 16  # architectures (or windows) tried before the draw gives up


@dataclasses.dataclass(frozen=True)
class ArchGraph:
    """An architecture's traced graph, its faithful translations and their adjacency."""

    g: nx.DiGraph
    tr: dict[int, Translated]
    nbrs: dict[int, tuple[int, ...]]  # translated node -> translated producers and readers
    ok: tuple[int, ...]  # translated nodes whose window can reach MIN_NODES
    weight: dict[int, float]  # a node's weight as a start or the next node of a window
    traced: dict[int, str]  # translated node -> its traced operator
    cdf: np.ndarray  # cumulative start weights over `ok`


@functools.lru_cache(maxsize=4)
def _names(path: str) -> tuple[str, ...]:
    names = tuple(arch_graphs(Path(path)))
    if not names:
        raise GenerationError(f"{path}/graphs: no traced architecture "
                              "(`python -m fuzzer.mine --graphs DIR`)")
    return names


@functools.lru_cache(maxsize=512)  # every mined architecture (423): each one is small
def arch_graph(path: str, name: str, vocab: tuple[str, ...] | None = None) -> ArchGraph | None:
    """The architecture's translated nodes (within `vocab`), or None if none lift."""
    try:
        graph = load_arch_graph(Path(path), name)
    except LiftError:
        return None
    tr = translations(graph)
    if vocab is not None:
        allowed = set(vocab)
        tr = {v: t for v, t in tr.items() if t.op in allowed}
    g = nx.DiGraph()
    g.add_nodes_from(range(len(graph.nodes)))
    g.add_edges_from(graph.edges)
    # The data flow the Case will have: a translated node's tensor slots that read another
    # translated node (a traced edge may feed an argument the entry takes as a scalar).
    sub = nx.Graph()
    sub.add_nodes_from(tr)
    sub.add_edges_from((v, s.src[0]) for v, t in tr.items() for s in t.slots
                       if s.scalar is None and isinstance(s.src, list) and s.src
                       and isinstance(s.src[0], int) and s.src[0] in tr)
    nbrs = {v: tuple(sorted(sub.neighbors(v))) for v in sorted(tr)}
    ok = tuple(sorted(v for part in nx.connected_components(sub) if len(part) >= MIN_NODES
                      for v in part))
    if not ok:
        return None
    weight = {v: 1.0 if _floating(graph.nodes[v]) else PLUMBING for v in tr}
    cdf = np.cumsum([weight[v] for v in ok])
    traced = {v: graph.nodes[v]["op"] for v in tr}
    return ArchGraph(g, tr, nbrs, ok, weight, traced, cdf / cdf[-1])


@functools.lru_cache(maxsize=4)
def _by_operator(path: str) -> dict[str, tuple[str, ...]]:
    """Traced operator with a floating output -> the architectures computing it (one pass
    over the graphs, ~3 s once per process)."""
    out: dict[str, set[str]] = {}
    for name in _names(path):
        try:
            graph = load_arch_graph(Path(path), name)
        except LiftError:
            continue
        for n in graph.nodes:
            if _floating(n):
                out.setdefault(n["op"], set()).add(name)
    return {op: tuple(sorted(archs)) for op, archs in sorted(out.items())}


def _floating(node: dict[str, Any]) -> bool:
    outs = node.get("outs") or []
    return bool(outs) and outs[0] is not None and outs[0][0] in FLOAT_DTYPES


def window(rng: np.random.Generator, a: ArchGraph, size: int,
           start: int | None = None) -> list[int]:
    """A connected set of `size` translated nodes (fewer if the part is smaller), grown from
    `start` (else one drawn by weight) by adding a neighbour of the set, drawn by weight, at
    each step."""
    if start is None:
        start = a.ok[min(int(a.cdf.searchsorted(rng.random(), "right")), len(a.ok) - 1)]
    got, frontier = {start}, set(a.nbrs[start])
    while len(got) < size and frontier:
        cands = sorted(frontier)
        w = np.cumsum([a.weight[c] for c in cands])
        v = cands[min(int(w.searchsorted(rng.random() * w[-1], "right")), len(cands) - 1)]
        got.add(v)
        frontier |= set(a.nbrs[v])
        frontier -= got
    return sorted(got)


def _domain(case: Case, name: str) -> dict[str, Any] | None:
    """The value domain of the first operator within `_REACH` steps downstream of `name`
    (through each reader's first argument) that has one: a window cut between a variance's
    mean and its `+ eps -> rsqrt` must still feed rsqrt positive values."""
    frontier = [name]
    for _ in range(_REACH):
        nxt = []
        for ref in frontier:
            for n in case.nodes:
                if not n.args or split_ref(n.args[0])[0] != ref:
                    continue
                if isinstance(n.attrs.get("exponent"), int):
                    continue  # x ** 2 (RMSNorm) takes any sign
                pref = ops.get(n.op).values
                if pref is not None and pref.get("dist") in _DOMAINS:
                    return dict(pref)
                nxt.append(n.id)
        frontier = nxt
    return None


def _input_values(case: Case) -> Case:
    """Each floating input drawn from the domain of the operator it flows into (positive for
    rsqrt and log, within (-1, 1) for asin...: `_domain`), but not from the edge values a
    chain's first operator is probed with (a cast's +-1000, NaNs for isnan): a cut edge
    carries a real activation; int inputs in [0, 8]; bool inputs (a cut attention mask)
    mostly true, as real masks are: a row masked out entirely is NaN in torch's attention
    and undefined across runtimes."""
    new = []
    for x in case.inputs:
        values = {"dist": "bool", "p": BOOL_TRUE} if x.dtype == "bool" else x.values
        if x.dtype in FLOAT_DTYPES:
            values = _domain(case, x.name) or values
        new.append(dataclasses.replace(x, values=values))
    return dataclasses.replace(case, inputs=new)


def window_case(a: ArchGraph, arch: str, nodes: list[int], seed: int) -> Case:
    """The window as a Case (fuzzer.motifs.fragment: inputs for cut edges, constants)."""
    frag = fragment(a.g, a.tr, nodes)
    d: dict[str, Any] = {"schema": 1, "seed": seed, **frag.to_json(),
                         "origin": {"sampler": "arch", "architecture": arch,
                                    "window": [nodes[0], nodes[-1], len(nodes)],
                                    "parent": None}}
    d["inputs"] = [{**x, "dynamic": []} for x in d["inputs"]]
    if not d["consts"]:
        d.pop("consts")
    if not d["inputs"]:
        raise CaseError("window reads no input")
    for x in [*d["inputs"], *d.get("consts", [])]:
        if int(np.prod(x["shape"], dtype=np.int64)) > MAX_NUMEL:
            raise CaseError(f"{x['name']}: over the Case cap")
    case = _input_values(Case.from_dict(d))
    case, params = as_parameters(case)
    case = dataclasses.replace(case, origin={**case.origin, "params": params,
                                             "ngram": case.ops})
    infer(case)  # the catalogue's shape rules agree with the traced shapes (ShapeError)
    return case


@sampler("arch")
def arch_case(seed: int, vocab: Sequence[str] | None = None,
              cfg: GenConfig | None = None) -> Case:
    """A connected window of 6..40 translated nodes of a mined architecture, started at a
    drawn operator kind, at a drawn fusion anchor, or anywhere in a drawn architecture."""
    cfg = cfg or GenConfig()
    path = str(cfg.seeds or SEEDS)
    names = _names(path)
    key = tuple(sorted(vocab)) if vocab else None
    rng = np_rng(seed, "generate", "arch")
    for _ in range(_TRIES):
        op = None
        u = rng.random()
        if u < BY_OPERATOR + BY_ANCHOR:
            index = _by_operator(path)
            kinds = list(index) if u < BY_OPERATOR else [a for a in ANCHORS if a in index]
            op = kinds[int(rng.integers(len(kinds)))]
            name = index[op][int(rng.integers(len(index[op])))]
        else:
            name = names[int(rng.integers(len(names)))]
        a = arch_graph(path, name, key)
        if a is None:
            continue
        size = int(rng.integers(MIN_NODES, MAX_NODES + 1))
        starts = [v for v in a.ok if a.traced[v] == op]
        start = starts[int(rng.integers(len(starts)))] if starts else None
        nodes = window(rng, a, size, start)
        try:
            return window_case(a, name, nodes, seed)
        except CaseError:
            continue
    raise GenerationError(f"seed {seed}: no architecture window lifted in {_TRIES} tries")

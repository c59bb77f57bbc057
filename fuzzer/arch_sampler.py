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
from fuzzer.case import FLOAT_DTYPES, MAX_NUMEL, Case, CaseError
from fuzzer.lift import LiftError, arch_graphs, load_arch_graph, translations
from fuzzer.model import infer
from fuzzer.motif_sampler import as_parameters
from fuzzer.motifs import Translated, fragment
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, GenerationError, sampler

SEEDS = Path(__file__).resolve().parent.parent / "seeds"  # the repo's, as the motif arm's
MIN_NODES, MAX_NODES = 6, 40
_TRIES = 16  # architectures (or windows) tried before the draw gives up


@dataclasses.dataclass(frozen=True)
class ArchGraph:
    """An architecture's traced graph, its faithful translations and their adjacency."""

    g: nx.DiGraph
    tr: dict[int, Translated]
    nbrs: dict[int, tuple[int, ...]]  # translated node -> translated producers and readers
    ok: tuple[int, ...]  # translated nodes whose window can reach MIN_NODES


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
    sub = g.subgraph(tr).to_undirected(as_view=True)
    nbrs = {v: tuple(sorted(sub.neighbors(v))) for v in sorted(tr)}
    ok = tuple(sorted(v for part in nx.connected_components(sub) if len(part) >= MIN_NODES
                      for v in part))
    return ArchGraph(g, tr, nbrs, ok) if ok else None


def window(rng: np.random.Generator, a: ArchGraph, size: int,
           start: int | None = None) -> list[int]:
    """A connected set of `size` translated nodes (fewer if the part is smaller), grown from
    `start` (else a random one) by adding a random neighbour of the set at each step."""
    if start is None:
        start = a.ok[int(rng.integers(len(a.ok)))]
    got, frontier = {start}, set(a.nbrs[start])
    while len(got) < size and frontier:
        cands = sorted(frontier)
        v = cands[int(rng.integers(len(cands)))]
        got.add(v)
        frontier |= set(a.nbrs[v])
        frontier -= got
    return sorted(got)


def _input_values(case: Case) -> Case:
    """Each floating input drawn as its first reader prefers (positive for rsqrt and log...),
    as the chain samplers draw a chain's first input; int inputs in [0, 8)."""
    new = []
    for x in case.inputs:
        values = x.values
        if x.dtype in FLOAT_DTYPES:
            first = next((n for n in case.nodes if n.args and n.args[0] == x.name), None)
            pref = ops.get(first.op).values if first is not None else None
            if pref is not None and not isinstance(first.attrs.get("exponent"), int):
                values = dict(pref)  # x ** 2 (RMSNorm) takes any sign
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
    """A connected window of 6..40 translated nodes of a mined architecture."""
    cfg = cfg or GenConfig()
    path = str(cfg.seeds or SEEDS)
    names = _names(path)
    key = tuple(sorted(vocab)) if vocab else None
    rng = np_rng(seed, "generate", "arch")
    for _ in range(_TRIES):
        name = names[int(rng.integers(len(names)))]
        a = arch_graph(path, name, key)
        if a is None:
            continue
        size = int(rng.integers(MIN_NODES, MAX_NODES + 1))
        nodes = window(rng, a, size)
        try:
            return window_case(a, name, nodes, seed)
        except CaseError:
            continue
    raise GenerationError(f"seed {seed}: no architecture window lifted in {_TRIES} tries")

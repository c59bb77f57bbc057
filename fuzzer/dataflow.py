"""Operator n-grams along data flow — one definition shared by mining (architectures), the
campaign's architectural coverage and the analysis (Cases)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import networkx as nx

MAX_N = 4


def case_graph(case: Any) -> nx.DiGraph:
    """A Case (object or its JSON dict) as a DiGraph: node attribute `op`, edges = data flow
    from a node's output to the nodes that take it as an argument."""
    nodes = case["nodes"] if isinstance(case, Mapping) else [n.__dict__ for n in case.nodes]
    g = nx.DiGraph()
    for n in nodes:
        g.add_node(str(n["id"]), op=str(n["op"]))
    for n in nodes:
        for a in n.get("args", []):
            src = a.split(":", 1)[0] if isinstance(a, str) else None
            if src is not None and src in g and src != n["id"]:
                g.add_edge(src, str(n["id"]))
    return g


def ngram_counts(g: nx.DiGraph, max_n: int = MAX_N) -> Counter[tuple[str, ...]]:
    """Operator-name sequences of every path of 1..max_n nodes, with multiplicity."""
    counts: Counter[tuple[str, ...]] = Counter()
    ops = nx.get_node_attributes(g, "op")

    def walk(path: tuple[Any, ...], names: tuple[str, ...]) -> None:
        counts[names] += 1
        if len(path) < max_n:
            for s in g.successors(path[-1]):
                walk((*path, s), (*names, ops[s]))

    for v in g.nodes:
        walk((v,), (ops[v],))
    return counts


def case_ngrams(case: Any, max_n: int = MAX_N) -> set[tuple[str, ...]]:
    return set(ngram_counts(case_graph(case), max_n))

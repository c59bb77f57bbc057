"""Lift a traced architecture into a Case: its whole operator graph, in catalogue terms.

Mining traces every architecture with `torch.export` into an operator graph
(`fuzzer.opgraph`); `fuzzer.motifs.translate` maps one traced node onto a catalogue entry
(operator, attributes, argument slots) and checks the entry's shape rule against the traced
shapes. Lifting applies it to every node and keeps the translated nodes as one Case: the
traced input shapes and dtypes, scalar constants as Python numbers, parameters, buffers and
lifted constants as the Case's drawn constants (their traced shapes), parameters an entry owns
(linear, norm and convolution weights) as the entry's. A node the catalogue has no faithful
entry for (an unknown operator, an index op that needs valid indices, a shape rule that
disagrees) is cut out: what it produced becomes a Case input of its traced shape, and of the
connected parts left the largest is kept (or the one around a given node). `Lifted` says
which operators were cut, and maps every Case name back to the traced value it stands for,
so that `bind` can give the lifted module the architecture's own parameters and inputs (the
equivalence check: the lifted Case computes what the architecture computed, node by node).

The shrinker then reduces a failing lifted Case like any other; `origin.architecture` keeps
the architecture it came from.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch

from fuzzer import ops
from fuzzer.case import Case, CaseError
from fuzzer.model import CaseModule, infer
from fuzzer.motifs import Translated, fragment, translate
from fuzzer.opgraph import IDENTITIES, OpGraph, bypass_identities, graph_from_fx, load_graph
from fuzzer.values import TORCH_DTYPES

GRAPHS = "graphs"  # seeds/graphs/<source>:<name>.json.gz (`python -m fuzzer.mine --graphs`)


class LiftError(CaseError):
    """Nothing to lift (no graph, no translatable node, a node that is not in the Case)."""


@dataclass
class Lifted:
    """A lifted Case and where each of its names comes from in the traced graph."""

    case: Case
    arch: str
    nodes: dict[str, int]  # Case node id -> traced node index
    sources: dict[str, Any]  # Case input/constant -> [node, output] | [kind, placeholder]
    params: dict[str, Any]  # CaseModule buffer "<node>_<param>" -> [kind, placeholder]
    total: int  # traced nodes
    translated: int  # traced nodes with a catalogue entry (before the cut)
    cut: Counter[str] = field(default_factory=Counter)  # untranslated operators -> count
    parts: int = 1  # connected parts of the translated nodes

    def summary(self) -> str:
        cut = ", ".join(f"{o.split('::')[-1]} x{c}" for o, c in self.cut.most_common(8))
        more = f" (+{len(self.cut) - 8} more)" if len(self.cut) > 8 else ""
        return (f"{self.arch}: {len(self.case.nodes)} of {self.total} traced nodes lifted "
                f"({self.translated} in the catalogue, {self.parts} connected part(s), the "
                f"kept one has {len(self.case.nodes)}); not in the catalogue: "
                f"{cut or 'none'}{more}")


def translations(graph: OpGraph) -> dict[int, Translated]:
    """The traced nodes the catalogue has a faithful entry for. A node reading a value the
    trace did not track (no source) cannot be wired and counts as untranslated."""
    out: dict[int, Translated] = {}
    for i, n in enumerate(graph.nodes):
        t = translate(n)
        if t is not None and all(s.src is not None or s.scalar is not None for s in t.slots):
            out[i] = t
    return out


def coverage(graph: OpGraph) -> tuple[int, int, Counter[str]]:
    """(translated nodes, traced nodes, untranslated operators with counts)."""
    tr = translations(graph)
    return len(tr), len(graph.nodes), _cut(graph, tr)


def _cut(graph: OpGraph, tr: dict[int, Translated]) -> Counter[str]:
    """Untranslated operators with counts; a bypassed identity op is no cut."""
    return Counter(n["op"] for i, n in enumerate(graph.nodes)
                   if i not in tr and n["op"] not in IDENTITIES)


def _digraph(graph: OpGraph) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(len(graph.nodes)))
    g.add_edges_from(graph.edges)
    return g


def lift(graph: OpGraph, arch: str, *, around: int | None = None, seed: int = 0) -> Lifted:
    """The translated nodes of `graph` as a Case: the largest connected part, or the part
    holding traced node `around`."""
    graph = bypass_identities(graph)
    tr = translations(graph)
    if not tr:
        raise LiftError(f"{arch}: no traced node has a catalogue entry")
    g = _digraph(graph)
    parts = sorted(nx.weakly_connected_components(g.subgraph(tr)),
                   key=lambda p: (-len(p), min(p)))
    if around is None:
        region = parts[0]
    else:
        if around not in tr:
            op = graph.nodes[around]["op"] if 0 <= around < len(graph.nodes) else "?"
            raise LiftError(f"{arch}: traced node {around} ({op}) has no catalogue entry")
        region = next(p for p in parts if around in p)
    where: dict[str, Any] = {}
    frag = fragment(g, tr, region, where)
    order = sorted(region)
    nodes = {f"n{i}": v for i, v in enumerate(order)}
    params: dict[str, Any] = {}
    for nid, v in nodes.items():
        spec = ops.get(tr[v].op)
        if spec.params is None:
            continue
        for pname in ("weight", "bias"):
            src = graph.nodes[v]["src"].get(pname)
            if src is not None:
                params[f"{nid}_{pname}"] = src
    d = {"schema": 1, "seed": seed, **frag.to_json(),
         "origin": {"sampler": "lift", "architecture": arch,
                    "lifted": [len(order), len(graph.nodes)]}}
    d["inputs"] = [{**x, "dynamic": []} for x in d["inputs"]]
    if not d["consts"]:
        d.pop("consts")
    case = Case.from_dict(d)
    infer(case)  # the catalogue's shape rules agree with every traced shape (ShapeError)
    return Lifted(case, arch, nodes, where, params, len(graph.nodes), len(tr), _cut(graph, tr),
                  len(parts))


# -- where traced graphs come from -----------------------------------------------------------
def graph_path(seeds_dir: Path, arch: str) -> Path:
    return Path(seeds_dir) / GRAPHS / f"{arch}.json.gz"


def load_arch_graph(seeds_dir: Path, arch: str) -> OpGraph:
    """The committed traced graph of a mined architecture (`seeds/graphs/`), its identity ops
    (`.contiguous()`...) bypassed."""
    p = graph_path(seeds_dir, arch)
    if not p.is_file():
        raise LiftError(f"{arch}: no traced graph at {p} (mined architectures are named like "
                        "transformers:bert; `python -m fuzzer.mine --graphs DIR` writes them)")
    try:
        return bypass_identities(load_graph(p))
    except (OSError, ValueError, KeyError, EOFError, gzip.BadGzipFile) as e:
        raise LiftError(f"{p}: not a traced graph ({type(e).__name__})") from None


def arch_graphs(seeds_dir: Path) -> list[str]:
    """The architectures with a committed traced graph, sorted."""
    return sorted(p.name.removesuffix(".json.gz")
                  for p in (Path(seeds_dir) / GRAPHS).glob("*.json.gz"))


# -- the architecture's own values: tracing with values, binding them into a lifted module --
@dataclass
class Traced:
    """An architecture traced as mining traces it, with every FX value it computed."""

    graph: OpGraph
    values: dict[str, Any]  # fx node name (placeholders too) -> tensor or tuple of tensors
    outputs: list[torch.Tensor]


def trace_values(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> Traced:
    """`torch.export` the module (as `fuzzer.mine_sources.trace_one` does) and run its graph
    once, keeping every value: parameters and buffers by placeholder, every node's output."""
    # on use: torch.export's internals load only when values are traced
    from torch.export.graph_signature import InputKind

    ep = torch.export.export(model, args, strict=False)
    sig, values, user = ep.graph_signature, {}, iter(args)
    feeds = []
    for spec in sig.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            v = next(user)
        elif spec.target in ep.state_dict:
            v = ep.state_dict[spec.target]
        else:
            v = ep.constants[spec.target]
        feeds.append(v)

    class _Record(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            out = super().run_node(n)
            values[n.name] = out
            return out

    with torch.no_grad():
        outs = _Record(ep.graph_module).run(*feeds)
    flat = [o for o in (outs if isinstance(outs, (list, tuple)) else [outs])
            if isinstance(o, torch.Tensor)]
    return Traced(graph_from_fx(ep.graph_module), values, flat)


def _value(traced: Traced, src: Any) -> torch.Tensor:
    """The traced value a lifted name stands for."""
    if isinstance(src[0], int):
        v = traced.values[traced.graph.nodes[src[0]]["fx"]]
        return v[src[1]] if isinstance(v, (list, tuple)) else v
    return traced.values[src[1]]


def bind(lifted: Lifted, traced: Traced) -> tuple[CaseModule, list[torch.Tensor]]:
    """The lifted Case's module with the architecture's own parameters and constants, and
    the traced values of its inputs: it must compute what the architecture computed."""
    case = lifted.case
    module = CaseModule(case, infer(case)).eval()
    for c in case.consts:
        if not c.scalar:
            t = _value(traced, lifted.sources[c.name])
            setattr(module, f"const_{c.name}", t.detach().to(TORCH_DTYPES[c.dtype]).clone())
    for buf, src in lifted.params.items():
        old = getattr(module, buf)
        setattr(module, buf, _value(traced, src).detach().to(old.dtype).clone())
    inputs = [_value(traced, lifted.sources[x.name]).detach() for x in case.inputs]
    return module, inputs


def compare_nodes(lifted: Lifted, traced: Traced, module: CaseModule,
                  inputs: list[torch.Tensor]) -> dict[str, float]:
    """Per lifted node, the largest absolute difference between its output in the lifted
    module and the traced value of the node it was lifted from (inf: shapes or dtypes
    differ)."""
    with torch.no_grad():
        env = module.run_all(*inputs)
    out: dict[str, float] = {}
    for nid, v in lifted.nodes.items():
        want = _value(traced, [v, 0])
        got = env[nid][0]
        if got.shape != want.shape or got.dtype != want.dtype:
            out[nid] = float("inf")
        elif got.is_floating_point():
            out[nid] = float((got.double() - want.double()).abs().max()) if got.numel() else 0.0
        else:
            out[nid] = float((got != want).sum())
    return out


def describe(lifted: Lifted) -> dict[str, Any]:
    """JSON-ready summary (the CLI's --json)."""
    return {"architecture": lifted.arch, "nodes": len(lifted.case.nodes),
            "traced": lifted.total, "in_catalogue": lifted.translated, "parts": lifted.parts,
            "not_in_catalogue": dict(lifted.cut.most_common()), "case": lifted.case.hash}


def dumps(lifted: Lifted) -> str:
    return json.dumps(describe(lifted), indent=2, sort_keys=True)

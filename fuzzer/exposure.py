"""Real-world exposure by trigger: which mined architectures contain a finding's minimal chain
*with what makes it fail*, and which of them the failure actually breaks.

An operator occurs almost everywhere; its trigger (an attribute value, a dtype, a dim whose
size is not 1) may occur nowhere. So exposure is decided in two steps over the committed
traced graphs (`seeds/graphs/`, lifted node by node with `fuzzer.lift.translations`):

1. **structure**: the finding's Case as a pattern — its operators, the data flow between them
   (which argument slot each edge feeds), which non-size attributes are set away from their
   catalogue default, and the dtype of every tensor argument — matched as a subgraph
   (networkx `DiGraphMatcher`, monomorphism) against each architecture's lifted graph;
2. **trigger**: every match is lifted on its own, at the architecture's traced shapes,
   attribute values and constants (`fuzzer.motifs.fragment`; its inputs draw the values the
   finding's inputs draw, as a trigger may be in the values), and run on the finding's
   target: a match that fails the same way (`fuzzer.verdict.failure_key`) contains the
   trigger. Matches that lift to the same fragment (a block repeated per layer, or shared by
   architectures) run once.

"Occurs in N architectures" is step 2. "Breaks these real architectures" needs more: the
architecture as a whole fails on the finding's target family with the same stage and symptom
in a `convfuzz models` store (`arch_verdicts`), and contains the trigger.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from networkx.algorithms.isomorphism import DiGraphMatcher

from fuzzer import frontends, ops
from fuzzer.case import Case, split_ref
from fuzzer.lift import arch_graphs, load_arch_graph, translations
from fuzzer.model import infer
from fuzzer.motifs import _SIZE_ATTRS, fragment, motif_key
from fuzzer.verdict import Outcome, Verdict, failure_key, target_family

EXPOSURE = "exposure.json"  # corpus/exposure.json: what the reports read
Runner = Callable[[Case, str], Verdict]


# -- labelled graphs: a finding's pattern and an architecture's lifted graph ------------------
def _label(op: str, attrs: dict[str, Any], dtypes: list[str | None]) -> dict[str, Any]:
    """Which attributes are away from their default (a trigger is an argument someone set;
    its value is for the confirmation run to judge: squeeze's dim=1 and dim=2 are one
    trigger when the dim's size is not 1), and the dtype of every argument."""
    defaults = ops.get(op).defaults()
    set_ = sorted(k for k, v in attrs.items() if k not in _SIZE_ATTRS and
                  not (op in _OWNS_SIZES and k in _OWNS_SIZES[op]) and
                  (k not in defaults or not ops.same_value(v, defaults[k])))
    return {"op": op, "attrs": json.dumps(set_), "dtypes": dtypes}


# Attributes that are sizes of a parameter the entry owns (they follow the model's widths).
_OWNS_SIZES = {"aten::linear": {"out_features"},
               **{f"aten::conv{d}d": {"out_channels", "kernel_size"} for d in (1, 2, 3)}}


def pattern(case: Case) -> nx.DiGraph:
    """The finding's Case as a labelled graph: node labels (op, non-size attributes, argument
    dtypes; a scalar constant's dtype is None: a Python number), edges with their slot."""
    metas = infer(case)
    scalars = {c.name for c in case.consts if c.scalar}
    g = nx.DiGraph()
    for n in case.nodes:
        dts = [None if split_ref(a)[0] in scalars else _meta_at(metas, a).dtype for a in n.args]
        g.add_node(n.id, **_label(n.op, n.attrs, dts))
        for i, a in enumerate(n.args):
            base, _ = split_ref(a)
            if any(m.id == base for m in case.nodes):
                g.add_edge(base, n.id, slot=i)
    return g


def _meta_at(metas: dict[str, Any], ref: str) -> Any:
    base, idx = split_ref(ref)
    return metas[base][idx or 0]


def arch_graph(graph: Any) -> tuple[nx.DiGraph, dict[int, Any]]:
    """An architecture's lifted graph (translated nodes only) with the same labels."""
    tr = translations(graph)
    g = nx.DiGraph()
    for v, t in tr.items():
        g.add_node(v, **_label(t.op, t.attrs, [None if s.scalar is not None else s.meta[0]
                                                for s in t.slots]))
    for v, t in tr.items():
        for i, s in enumerate(t.slots):
            if isinstance(s.src, list) and s.src and isinstance(s.src[0], int) and \
                    s.src[0] in tr:
                g.add_edge(s.src[0], v, slot=i)
    return g, tr


def _node_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["op"] == b["op"] and a["attrs"] == b["attrs"] and a["dtypes"] == b["dtypes"]


def matches(pat: nx.DiGraph, arch: nx.DiGraph, limit: int = 200) -> list[dict[int, str]]:
    """Distinct embeddings of the pattern in `arch` (slots preserved), each as a map from
    architecture node to pattern node; one per node set."""
    if len(pat) == 1:
        (p,) = pat.nodes
        want = pat.nodes[p]
        return [{v: p} for v, d in arch.nodes(data=True) if _node_match(d, want)][:limit]
    gm = DiGraphMatcher(arch, pat, node_match=_node_match,
                        edge_match=lambda a, b: a["slot"] == b["slot"])
    out: dict[frozenset[int], dict[int, str]] = {}
    for m in gm.subgraph_monomorphisms_iter():
        out.setdefault(frozenset(m), dict(m))
        if len(out) >= limit:
            break
    return list(out.values())


# -- the exposure of one finding ------------------------------------------------------------
@dataclass
class Exposure:
    finding: str
    target: str
    ops: list[str]
    operator_archs: int = 0  # architectures with every operator of the chain (the old measure)
    structural: list[str] = field(default_factory=list)  # step 1
    occurs: list[str] = field(default_factory=list)  # step 2: the trigger fails there too
    breaks: list[str] = field(default_factory=list)  # fail whole, the same way, with trigger
    fragments: int = 0  # distinct lifted matches run on the target
    confirmed: bool = True  # False: step 2 not run (no runner): occurs = structural
    models: bool = False  # a models store was read for `breaks`

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """The report's line."""
        def names(xs: list[str], k: int = 6) -> str:
            short = [x.removeprefix("transformers:") for x in xs[:k]]
            return ", ".join(short) + (f" and {len(xs) - k} more" if len(xs) > k else "")

        chain = " → ".join(o.split("::")[-1] for o in self.ops)
        how = ("with its trigger (the same operators, data flow, attributes set and dtypes; "
               "the block, lifted at the architecture's own shapes and attribute values, "
               "fails the same way)"
               if self.confirmed else "with the same operators, data flow, attributes set "
               "and dtypes (trigger not run)")
        s = (f"the chain `{chain}` occurs {how} in {len(self.occurs)} of the mined "
             f"architectures" + (f" ({names(self.occurs)})" if self.occurs else "")
             + f"; {self.operator_archs} contain its operators")
        if self.models:
            hit = (f"{len(self.breaks)} real architecture(s) ({names(self.breaks)})"
                   if self.breaks else "none of the real architectures")
            s += f"; it breaks {hit} converted whole by `convfuzz models`"
        return s + "."


def _model_failures(rows: Iterable[Any], v: Verdict) -> set[str]:
    """Architectures a models store saw fail whole on the finding's target family with its
    stage and symptom."""
    fam = target_family(v.target).split("/")[0]
    out = set()
    for r in rows:
        rv = r.verdict
        if rv.outcome == Outcome.BUG and target_family(rv.target).split("/")[0] == fam and \
                rv.stage == v.stage and rv.symptom == v.symptom:
            out.add(r.arch)
    return out


@dataclass
class Index:
    """Every architecture's lifted graph, built once."""

    graphs: dict[str, tuple[nx.DiGraph, dict[int, Any], nx.DiGraph]]
    ops: dict[str, set[str]]  # every traced operator of each architecture (catalogue names)
    # The frontend whose Cases the graphs lift to: they are torch.export traces, so a
    # TensorFlow finding's trigger cannot occur in them (its exposure is not measured).
    frontend: str = frontends.DEFAULT

    def covers(self, case: Case) -> bool:
        return frontends.of_case(case).name == self.frontend

    @classmethod
    def load(cls, seeds_dir: Path, archs: list[str] | None = None) -> Index:
        out, names = {}, {}
        for a in archs if archs is not None else arch_graphs(seeds_dir):
            raw = load_arch_graph(seeds_dir, a)
            names[a] = {ops.canonical(n["op"]) for n in raw.nodes}
            lifted, tr = arch_graph(raw)
            full = nx.DiGraph()
            full.add_nodes_from(range(len(raw.nodes)))
            full.add_edges_from(raw.edges)
            out[a] = (lifted, tr, full)
        return cls(out, names)


def instance(index: Index, arch: str, match: dict[int, str], case: Case,
             seed: int = 0) -> tuple[Case, str]:
    """A match lifted on its own at the architecture's shapes, attributes and constants: a
    Case to run, and its key (the same fragment at the same relative shapes, wherever it
    occurs, runs once). An input that stands where the finding's Case reads one of its own
    inputs draws its values as that input does: a trigger may be in the values (an
    underflow), and the question is whether the architecture's block fails on them."""
    _, tr, full = index.graphs[arch]
    where: dict[str, Any] = {}
    frag = fragment(full, tr, match, where).to_json()
    by_src = {json.dumps(src): name for name, src in where.items()}
    mine = {x.name: x for x in case.inputs}
    values: dict[str, dict[str, Any]] = {}
    for a, p in match.items():
        for i, ref in enumerate(case.node(p).args):
            x = mine.get(split_ref(ref)[0])
            name = by_src.get(json.dumps(tr[a].slots[i].src)) if i < len(tr[a].slots) else None
            if x is not None and name is not None:
                values[name] = x.values
    for x in frag["inputs"]:
        if x["name"] in values:
            x["values"] = values[x["name"]]
    key = motif_key(frag)
    d = {"schema": 1, "seed": seed, **frag, "origin": {"sampler": "exposure",
                                                      "architecture": arch}}
    d["inputs"] = [{**x, "dynamic": []} for x in d["inputs"]]
    if not d["consts"]:
        d.pop("consts")
    return Case.from_dict(d), key


def exposure(fid: str, case: Case, v: Verdict, index: Index, run: Runner | None = None,
             model_rows: list[Any] | None = None) -> Exposure:
    """Structural matches of the finding in every architecture, each confirmed on the
    finding's target when `run` is given; `breaks` from a models store's rows."""
    e = Exposure(fid, v.target, case.ops, confirmed=run is not None,
                 models=model_rows is not None)
    pat = pattern(case)
    want_ops = set(case.ops)
    by_key: dict[str, bool] = {}
    want = failure_key(v)
    for arch, (lifted, _, _) in sorted(index.graphs.items()):
        if want_ops <= index.ops[arch]:
            e.operator_archs += 1
        found = matches(pat, lifted)
        if not found:
            continue
        e.structural.append(arch)
        if run is None:
            continue
        for m in found:
            try:
                inst, k = instance(index, arch, m, case)
            except Exception:  # a match that does not lift (or fit) is not a trigger
                continue
            if k not in by_key:
                got = run(inst, v.target)
                by_key[k] = got.outcome == Outcome.BUG and failure_key(got) == want
            if by_key[k]:
                e.occurs.append(arch)
                break
    e.fragments = len(by_key)
    if run is None:
        e.occurs = list(e.structural)
    if model_rows is not None:
        failing = _model_failures(model_rows, v)
        e.breaks = [a for a in e.occurs if a in failing]
    return e


def save(results: list[Exposure], path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({**meta, "findings": {r.finding: r.to_dict() for r in results}},
                               indent=1, sort_keys=True) + "\n")


def load(path: Path) -> dict[str, Exposure]:
    """A saved exposure file by finding id ({} when there is none)."""
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {k: Exposure(**v) for k, v in raw.get("findings", {}).items()}

"""Lifting a traced architecture into a Case (fuzzer/lift.py): the committed traced graphs, a
real architecture built from its config and traced again, and a planted bug shrunk on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fuzzer.case import Case
from fuzzer.lift import LiftError, bind, compare_nodes, lift, load_arch_graph, trace_values
from fuzzer.model import materialize
from fuzzer.sandbox import Sandbox
from fuzzer.shrink import Budget, shrink
from fuzzer.verdict import Outcome, Stage, Symptom

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
BERT = "transformers:bert"


def test_lifting_bert_keeps_its_largest_part_and_names_what_it_cut() -> None:
    graph = load_arch_graph(SEEDS, BERT)
    lifted = lift(graph, BERT)
    case = lifted.case
    assert Case.from_json(case.to_json()).hash == case.hash  # a valid Case, round trip
    assert case.origin["architecture"] == BERT and case.origin["sampler"] == "lift"
    # arange makes values from nothing, gather needs indices in range: cut out, and what
    # they fed is an input of its traced shape; the embeddings are lifted with their tables
    assert set(lifted.cut) == {"aten::arange", "aten::gather"}
    assert lifted.translated + sum(lifted.cut.values()) == lifted.total == len(graph.nodes)
    assert lifted.parts > 1 and len(case.nodes) < lifted.translated
    assert {"aten::layer_norm", "aten::linear", "aten::gelu",
            "aten::scaled_dot_product_attention"} <= set(case.ops)
    # word, position and token-type lookups into the embedding layer norm, each index input
    # drawn below its table's rows (token types: 2), so the lifted model runs
    assert case.ops.count("aten::embedding") == 3
    assert {"aten::embedding", "aten::layer_norm"} <= set(case.ops[:10])
    rows = {n.args[0]: n.attrs["num_embeddings"] for n in case.nodes if n.op == "aten::embedding"}
    highs = {x.name: x.values["high"] for x in case.inputs if x.dtype == "int64"}
    assert highs and all(h < 512 for h in highs.values())
    assert 1 in highs.values() and 2 in rows.values()  # the token-type table's ids: 0..1
    module, xs = materialize(case)
    module(*xs)
    assert all(len(x.shape) == 3 for x in case.inputs if x.dtype == "float32")
    # the parameters linear/layer_norm own map to the architecture's placeholders
    assert any(k.endswith("_weight") and v[0] == "param" for k, v in lifted.params.items())
    # another part, around one of its nodes
    other = next(i for i in range(len(graph.nodes))
                 if i not in lifted.nodes.values() and graph.nodes[i]["op"] == "aten::add")
    small = lift(graph, BERT, around=other)
    assert other in small.nodes.values() and len(small.case.nodes) < len(case.nodes)
    cut = next(i for i, n in enumerate(graph.nodes) if n["op"] == "aten::arange")
    with pytest.raises(LiftError, match=r"traced node \d+ \(aten::arange\) has no catalogue"):
        lift(graph, BERT, around=cut)
    with pytest.raises(LiftError, match="no traced graph"):
        load_arch_graph(SEEDS, "transformers:no_such_model")


def _bert() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """bert as mining builds it: the first candidate of its tiny config, weights under seed 0."""
    from fuzzer.mine_sources import SOURCES, _Flat

    with torch.random.fork_rng():
        torch.manual_seed(0)
        cand = next(c for c in SOURCES["transformers"].build("bert")
                    if not isinstance(c, Exception))
    return _Flat(cand.model, list(cand.inputs)).eval(), tuple(cand.inputs.values())


@pytest.mark.integration
def test_lifted_bert_computes_what_bert_computed_node_by_node() -> None:
    pytest.importorskip("transformers")
    model, args = _bert()
    traced = trace_values(model, args)
    # the traced graph is the committed one (mining is deterministic)
    committed = load_arch_graph(SEEDS, BERT)
    assert [{k: v for k, v in n.items() if k != "fx"} for n in traced.graph.nodes] == \
        committed.nodes
    lifted = lift(traced.graph, BERT)
    module, inputs = bind(lifted, traced)
    errors = compare_nodes(lifted, traced, module, inputs)
    assert len(errors) == len(lifted.case.nodes) == 64  # embeddings included
    assert max(errors.values()) <= 1e-6, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    # bert's outputs (last hidden state, pooler) are values of the lifted module, equal to
    # eager; the pooler's, read by nothing, is the Case's output
    with torch.no_grad():
        want = model(*args)
        env = module.run_all(*inputs)
        # the position ids' slice is read by a cut gather too: an output before the pooler's
        *_, out = module(*inputs)
    for w in want:
        assert any(v[0].shape == w.shape and torch.allclose(v[0], w, atol=1e-6)
                   for k, v in env.items() if k in lifted.nodes)
    assert torch.allclose(out, want[1], atol=1e-6)


@pytest.mark.integration
def test_a_planted_bug_on_lifted_bert_shrinks_to_a_short_chain(sandbox: Sandbox) -> None:
    lifted = lift(load_arch_graph(SEEDS, BERT), BERT)
    target = "fault-pair-gelu-linear"  # fails where gelu feeds linear (bert's FFN)
    assert sandbox.run(lifted.case, "torchscript-17/ort-all").outcome == Outcome.PASS
    v = sandbox.run(lifted.case, target)
    assert v.outcome == Outcome.BUG and (v.stage, v.symptom) == (Stage.NODE_CONVERSION,
                                                                 Symptom.CRASH)
    res = shrink(lifted.case, v, lambda c: sandbox.run(c, target), Budget(90, 200))
    assert len(res.case.nodes) <= 5
    assert res.case.ops[-2:] == ["aten::gelu", "aten::linear"]
    assert res.case.origin["architecture"] == BERT
    again = sandbox.run(res.case, target)
    assert again.outcome == Outcome.BUG and again.detail == v.detail


def test_contiguous_is_bypassed_so_an_attention_tail_stays_whole() -> None:
    """`x.transpose(1, 2).contiguous()` ends most attention blocks: the catalogue has no entry
    for it, so it cut every motif and lifted window there. It is bypassed now: the same
    nodes (indices kept), every read of it reads its input, no edge touches it."""
    from fuzzer.motifs import MotifStats
    from fuzzer.opgraph import bypass_identities

    class Tail(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.transpose(1, 2).contiguous() * 2).reshape(2, -1)

    graph = trace_values(Tail(), (torch.randn(2, 3, 4),)).graph
    ops = [n["op"] for n in graph.nodes]
    t, c, m = ops.index("aten::transpose"), ops.index("aten::contiguous"), ops.index("aten::mul")
    b = bypass_identities(graph)
    assert [n["op"] for n in b.nodes] == ops
    assert b.nodes[m]["src"]["self"][0] == t and (t, m) in b.edges
    assert not any(c in e for e in b.edges) and not b.nodes[c]["src"]
    lifted = lift(graph, "tail")
    assert [n.op for n in lifted.case.nodes] == ["aten::transpose", "aten::mul", "aten::reshape"]
    assert not lifted.cut  # an identity is not a cut
    st = MotifStats()
    st.add("tail", graph)
    assert any([n["op"] for n in mo["instance"]["nodes"]] ==
               ["aten::transpose", "aten::mul", "aten::reshape"] for mo in st.motifs.values())


def test_cli_lift_writes_a_case_and_refuses_an_unknown_architecture(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fuzzer.cli import app

    out = tmp_path / "bert.json"
    ok = CliRunner().invoke(app, ["lift", "bert", "--out", str(out), "--json"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output)
    assert summary["nodes"] == 64 and summary["not_in_catalogue"] == {"aten::arange": 4,
                                                                      "aten::gather": 1}
    assert Case.from_json(out.read_text()).hash == summary["case"]
    bad = CliRunner().invoke(app, ["lift", "no_such_model"])
    assert bad.exit_code == 2 and "no traced graph" in bad.output

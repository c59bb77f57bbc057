"""The `arch` sampler (fuzzer/arch_sampler.py): connected windows of mined architectures."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from fuzzer.arch_sampler import (
    MAX_NODES,
    MIN_NODES,
    SEEDS,
    arch_case,
    arch_graph,
    window,
    window_case,
)
from fuzzer.case import split_ref, validate
from fuzzer.oracle import Invalid, reference
from fuzzer.sampling import draw
from fuzzer.sandbox import Sandbox
from fuzzer.verdict import Outcome


def _connected(case: object) -> bool:
    g = nx.Graph()
    g.add_nodes_from(n.id for n in case.nodes)  # type: ignore[attr-defined]
    ids = set(g.nodes)
    for n in case.nodes:  # type: ignore[attr-defined]
        g.add_edges_from((n.id, split_ref(a)[0]) for a in n.args if split_ref(a)[0] in ids)
    return nx.is_connected(g)


def test_same_seed_same_bytes() -> None:
    for s in range(20):
        assert arch_case(s).to_json() == draw("arch", s).to_json()
    assert arch_case(1).to_json() != arch_case(2).to_json()


def test_windows_are_connected_within_bounds_and_carry_real_attributes() -> None:
    archs, attrs, scalars, params = set(), 0, 0, 0
    for s in range(40):
        c = arch_case(s)
        validate(c)
        assert c.origin["sampler"] == "arch"
        archs.add(c.origin["architecture"])
        assert len(c.nodes) <= MAX_NODES
        assert len(c.nodes) >= MIN_NODES or c.origin["window"][2] == len(c.nodes)
        assert _connected(c), c.origin
        attrs += sum(bool(n.attrs) for n in c.nodes)
        scalars += sum(k.scalar for k in c.consts)
        params += sum(not k.scalar for k in c.consts)
    assert len(archs) >= 20
    assert attrs and scalars and params  # real attributes, scalar constants and parameters


def test_windows_run_in_eager() -> None:
    bad = [s for s in range(40) if _invalid(s)]
    assert len(bad) <= 1, bad


def _invalid(s: int) -> bool:
    try:
        reference(arch_case(s))
    except Invalid:
        return True
    return False


def _around(arch: str, op: str, size: int, seed: int = 0, nth: int = 0) -> object:
    a = arch_graph(str(SEEDS), arch)
    assert a is not None
    start = [v for v in sorted(a.tr) if a.tr[v].op == op][nth]
    nodes = window(np.random.default_rng(seed), a, size, start=start)
    return window_case(a, arch, nodes, seed)


def test_llama_rms_norm_window_materializes_and_runs() -> None:
    c = _around("transformers:llama", "aten::pow", 12)
    ops = [n.op for n in c.nodes]  # type: ignore[attr-defined]
    assert {"aten::pow", "aten::mean", "aten::rsqrt"} <= set(ops) or len(ops) == 12
    pw = next(n for n in c.nodes if n.op == "aten::pow")  # type: ignore[attr-defined]
    assert pw.attrs["exponent"] == 2
    reference(c)  # type: ignore[arg-type]


def test_bert_attention_window_materializes_and_runs() -> None:
    c = _around("transformers:bert", "aten::scaled_dot_product_attention", 30)
    ops = {n.op for n in c.nodes}  # type: ignore[attr-defined]
    assert "aten::scaled_dot_product_attention" in ops and "aten::linear" in ops
    sdpa = next(n for n in c.nodes  # type: ignore[attr-defined]
                if n.op == "aten::scaled_dot_product_attention")
    assert sdpa.attrs["scale"] == 0.25  # bert's own 1/sqrt(head dim 16)
    reference(c)  # type: ignore[arg-type]


@pytest.mark.integration
def test_an_arch_window_with_a_residual_layer_norm_exports_and_fuses(sandbox: Sandbox) -> None:
    """The first drawn window with a residual add read by a layer norm (bert's, vit's...)
    exports with TorchScript, and ONNX Runtime fuses Add + LayerNormalization; and it exports
    with dynamo."""
    for s in range(200):
        c = arch_case(s)
        by_id = {n.id: n for n in c.nodes}
        scalars = {k.name for k in c.consts if k.scalar}
        adds = [by_id.get(split_ref(n.args[0])[0]) for n in c.nodes
                if n.op == "aten::layer_norm" and n.attrs.get("with_bias")]
        if any(a is not None and a.op == "aten::add" and not scalars & set(a.args)
               for a in adds):
            break
    else:
        pytest.skip("no residual layer norm in 200 windows")
    v = sandbox.run(c, "torchscript-17/ort-all")
    assert v.outcome == Outcome.PASS, v.detail
    assert "onnxruntime:SkipLayerNormalization" in v.evidence.get("fusions", {}), c.origin
    v = sandbox.run(c, "dynamo/ort-disabled")  # the dynamo exporter takes it as well
    assert v.outcome == Outcome.PASS, v.detail

"""Motif splicing (fuzzer/splice.py), the motif sampler's draw of named blocks and weights as
parameters, and fusions told apart from cleanups (fuzzer/fusions.kind)."""

from __future__ import annotations

from collections import Counter

import pytest

from fuzzer import fusions
from fuzzer.blocks import NAMED
from fuzzer.case import validate
from fuzzer.model import infer
from fuzzer.motif_sampler import as_parameters, instance_case, motif_case
from fuzzer.oracle import Invalid, reference
from fuzzer.sampling import GenConfig, draw
from fuzzer.sandbox import Sandbox
from fuzzer.splice import spliced_case
from fuzzer.verdict import Outcome
from tests.test_motifs import MOTIFS


def test_same_seed_same_spliced_bytes_and_the_same_motif_as_the_motif_sampler() -> None:
    cfg = GenConfig(near_miss=0.3)
    for s in range(30):
        a = spliced_case(s, None, cfg)
        assert a.to_json() == draw("motif-splice", s, None, cfg).to_json()
        m = motif_case(s, None, cfg)
        assert a.origin["motif"] == m.origin["motif"]
        assert a.origin["near_miss"] == m.origin["near_miss"]


def test_the_motif_sits_whole_inside_a_real_chain() -> None:
    seen = Counter()
    for s in range(60):
        c, m = spliced_case(s), motif_case(s)
        validate(c)
        sp = c.origin["splice"]
        seen.update(k for k in ("before", "after") if sp[k])
        by_id = {n.id: n for n in c.nodes}
        pre = sp["before"]
        fed = None
        if pre:  # the chain's last node replaces the motif input, for every reader alike
            fed = c.nodes[len(pre["ops"]) - 1].id
            assert [n.op for n in c.nodes[:len(pre["ops"])]] == pre["ops"]
            metas = infer(c)
            x = next(x for x in m.inputs if x.name == pre["on"])
            assert (list(metas[fed][0].shape), metas[fed][0].dtype) == (x.shape, x.dtype)
        for n in m.nodes:  # the motif's nodes, ids, attributes and constants unchanged
            got = by_id[n.id]
            assert (got.op, got.attrs) == (n.op, n.attrs)
            assert got.args == [fed if pre and a == pre["on"] else a for a in n.args]
        assert {k.name: k.value for k in m.consts} == {k.name: k.value for k in c.consts}
        if sp["after"]:
            first = c.nodes[len(pre["ops"]) if pre else 0:][len(m.nodes)]
            assert first.args[0] == sp["after"]["from"]
            assert sp["after"]["from"] not in c.outputs or len(m.outputs) > 1
    assert seen["before"] >= 20 and seen["after"] >= 30


def test_spliced_cases_run_in_eager() -> None:
    bad = 0
    for s in range(60):
        try:
            reference(spliced_case(s))
        except Invalid:
            bad += 1
    assert bad <= 3  # >= 95% eager-valid


def test_named_blocks_take_most_draws_and_every_block_is_drawn() -> None:
    names = Counter()
    for s in range(600):  # 13 block names share 85% of the draws: ~39 each expected
        names.update(motif_case(s).origin["motif_name"] or ["-"])
    assert names["-"] <= 0.3 * 600
    present = {n for m in MOTIFS for n in m.name}
    assert present <= set(NAMED)
    for n in present:  # gelu_tanh (13 motifs, 11 architectures) as well as rms_norm
        assert names[n] >= 10, names


def test_rank1_float_inputs_become_parameters() -> None:
    m = next(m for m in MOTIFS if "layer_norm_manual" in m.name
             and any(len(x["shape"]) == 1 for x in m.instance["inputs"]))
    case, params = as_parameters(instance_case(m, 0))
    assert params and all(len(k.shape) == 1 for k in case.consts if k.name in params)
    assert not any(x.name in params for x in case.inputs) and case.inputs
    assert all(k.values and k.value is None for k in case.consts if k.name in params)
    reference(case)


def test_fusions_and_cleanups_are_told_apart() -> None:
    kinds = fusions.split_kinds(fusions.known())
    assert set(kinds["fusion"]) | set(kinds["cleanup"]) == set(fusions.known())
    for name in ("onnxruntime:SimplifiedLayerNormalization", "onnxruntime:Gemm",
                 "onnxruntime.transformers:SkipLayerNormalization",
                 "onnxscript.ort_fusions:rotary_embedding", "onnxscript.rewriter:FuseMinMaxToClip"):
        assert fusions.kind(name) == "fusion"
    for name in ("onnxscript.rewriter:no_op:Mul#2", "onnxscript.rewriter:CastIdentity",
                 "onnxscript.rewriter:TransposeTranspose", "onnxscript.rewriter:FuseSuccessiveRelu",
                 "onnxscript.ort_fusions:gemm_to_matmul_add"):
        assert fusions.kind(name) == "cleanup"


@pytest.mark.integration
def test_a_spliced_rms_norm_still_fuses(sandbox: Sandbox) -> None:
    """An RMSNorm with its weight, a real chain spliced after it: ONNX Runtime still fuses it."""
    for s in range(3000):  # 15 named blocks share the draws: the first is seed 409
        c = spliced_case(s)
        if "rms_norm" in c.origin["motif_name"] and c.origin["splice"]["after"] and \
                c.nodes[-len(c.origin["splice"]["after"]["ops"]) - 1].op == "aten::mul" and \
                any(not k.scalar for k in c.consts):
            break
    else:
        pytest.fail("no spliced RMSNorm with its weight in 3000 seeds")
    v = sandbox.run(c, "torchscript-17/ort-all")
    assert v.outcome == Outcome.PASS, v.detail
    assert "onnxruntime:SimplifiedLayerNormalization" in v.evidence.get("fusions", {})

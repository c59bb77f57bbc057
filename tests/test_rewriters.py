"""Rewriter targets, optimization coverage and named blame, on the real packages: ONNX
Runtime's graph transformers, onnxruntime.transformers' optimizer and onnxscript's rewriter."""

from __future__ import annotations

import json

import pytest

from fuzzer import fusions, targets
from fuzzer.blame import blame
from fuzzer.case import load
from fuzzer.oracle import _misbehaves, judge, reference
from fuzzer.pack import pack_cap
from fuzzer.store import Store
from fuzzer.targets import Artifact
from fuzzer.verdict import Attribution, Outcome, Stage
from tests.conftest import CASES, make_case

RMS = CASES / "rmsnorm_chain.json"  # pow -> mean -> add(eps) -> rsqrt -> mul(x) -> mul(weight)
GELU = CASES / "gelu_tanh_chain.json"  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))


def test_component_names_resolve():
    for name in ("onnxscript-rewrite", "onnxscript-ort-fusions", "ort-transformers-bert",
                 "ort-transformers-gpt2-O1", "ort-all-without-GeluFusion,LayerNormFusion"):
        assert targets.resolve(name).name == name
    with pytest.raises(ValueError, match="no model type"):
        targets.resolve("ort-transformers-nosuchmodel")


def test_rmsnorm_fused_by_ort_after_torchscript_not_after_dynamo():
    case = load(RMS)
    ts = judge(case, "torchscript-17/ort-all")
    dyn = judge(case, "dynamo/ort-all")
    assert ts.outcome == dyn.outcome == Outcome.PASS
    # TorchScript's chain has Div, which ONNX Runtime's SimplifiedLayerNormFusion matches;
    # dynamo's has Reciprocal, which it does not.
    assert ts.evidence["fusions"] == {"onnxruntime:SimplifiedLayerNormalization": 1}
    assert "fusions" not in dyn.evidence
    assert "SimplifiedLayerNormalization" not in dyn.evidence["fused_present"]
    missed = fusions.missed([ts, dyn])
    assert missed == [{"fusion": "onnxruntime:SimplifiedLayerNormalization",
                       "fired_on": "torchscript-17/ort-all", "missed_on": "dynamo/ort-all"}]


def test_rmsnorm_fused_by_onnxscript_ort_fusions_after_dynamo(tmp_path):
    case = load(RMS)
    v = judge(case, "dynamo/onnxscript-ort-fusions/ort-disabled")
    assert v.outcome == Outcome.PASS, v.detail
    assert v.evidence["fusions"] == {"onnxscript.ort_fusions:rms_normalization": 1}
    # The reference evaluator does not run the fused contrib op: unsupported, not a bug.
    assert judge(case, "dynamo/onnxscript-ort-fusions/ref").outcome == Outcome.UNSUPPORTED
    store = Store(tmp_path)
    store.record(case, [v])
    assert store.fusions_by_target() == {
        "dynamo/onnxscript-ort-fusions/ort-disabled":
            {"onnxscript.ort_fusions:rms_normalization": 1}}
    store.close()


def test_gelu_tanh_fused_into_fastgelu_by_ort_transformers():
    v = judge(load(GELU), "torchscript-17/ort-transformers-gpt2/ort-disabled")
    assert v.outcome == Outcome.PASS, v.detail
    assert v.evidence["fusions"] == {"onnxruntime.transformers:FastGelu": 1}
    assert set(fusions.summary([v.evidence["fusions"]])["fired"]) <= set(fusions.known())


def test_planted_wrong_rule_is_blamed_by_name():
    case = make_case([{"id": "n1", "op": "aten::relu", "args": ["x"]},
                      {"id": "n2", "op": "aten::mul", "args": ["n1", "x"]}])
    v = judge(case, "torchscript-17/fault-rule/ort-disabled")
    assert v.outcome == Outcome.BUG and v.attribution == Attribution.OPTIMIZER
    b = v.evidence["blame"]
    assert (b["component"], b["rule"]) == ("fault-rule", "planted_relu_to_abs")
    assert v.evidence["fusions"] == {"test.rewriter:planted_relu_to_abs": 1}
    assert judge(case, "torchscript-17/onnxscript-rewrite/ort-disabled").outcome == Outcome.PASS


def test_ort_transformers_layernorm_fusion_over_a_non_last_axis_is_blamed():
    # A real bug: onnxruntime.transformers' FusionSimplifiedLayerNormalization checks that
    # ReduceMean has one axis, not that it is the last, and passes it on as `axis`, from
    # which SimplifiedLayerNormalization normalizes every dim to the end.
    case = load(CASES / "rmsnorm_dim_minus2.json")
    v = judge(case, "torchscript-17/ort-transformers-bert/ort-disabled")
    assert (v.outcome, v.stage) == (Outcome.BUG, Stage.GRAPH_OPTIMIZATION)
    b = v.evidence["blame"]
    assert (b["component"], b["rule"], b["project"]) == (
        "ort-transformers-bert", "enable_layer_norm", "onnxruntime.transformers")
    assert judge(case, "torchscript-17/ort-disabled").outcome == Outcome.PASS


def test_ort_transformer_named_by_disabling_it():
    """ONNX Runtime's transformers are halved over `disabled_optimizers` on the real runtime;
    the fault is injected in the judge: "fails" means "SimplifiedLayerNormFusion fired"."""
    case = load(RMS)
    ref = reference(case)
    art = Artifact(case, ref.module, ref.inputs)
    targets.resolve("torchscript-17").run(art)
    timings: dict[str, float] = {}

    def fused(model: bytes, runtime: str) -> bool:
        trial = Artifact(case, ref.module, ref.inputs, model=model)
        targets.resolve(runtime).run(trial)
        return "SimplifiedLayerNormalization" in (trial.notes.get("fired") or {}).get(
            targets.resolve(runtime).name, {})

    from fuzzer.targets.runtimes import ORT_TRANSFORMERS

    b = blame(art.history, "ort-all", fused, {"torchscript-17": "torch.onnx"},
              transformers=ORT_TRANSFORMERS)
    assert b is not None and b["rule"] == "SimplifiedLayerNormFusion"
    assert not _misbehaves(art, ref, art.model, "ort-all", timings)  # the real one passes


def test_dynamo_optimizer_reruns_with_named_rules_off():
    """Blame's re-run of the dynamo exporter's own optimizer reproduces it with nothing off,
    and leaves the model as exported with every rule and constant folding off."""
    import onnx

    from fuzzer.targets.rules import optimizer_switches, optimizer_without

    case = make_case([{"id": "n1", "op": "aten::mul.Scalar", "args": ["x"],
                       "attrs": {"other": 1.0}},
                      {"id": "n2", "op": "aten::relu", "args": ["n1"]}])
    ref = reference(case)
    art = Artifact(case, ref.module, ref.inputs)
    targets.resolve("dynamo").run(art)
    (_, _, raw), (_, _, optimized) = art.history

    def ops(model: bytes) -> list[str]:
        return [n.op_type for n in onnx.load_from_string(model).graph.node]

    assert ops(optimizer_without(raw, frozenset())) == ops(optimized) == ["Relu"]
    assert "Mul" in ops(optimizer_without(raw, frozenset(optimizer_switches())))
    assert ops(optimizer_without(raw, frozenset({"no_op:Mul"}))) != ops(optimized)


def test_ort_constant_folding_named_on_a_real_case():
    """tile of a 0-d tensor (TorchScript): ONNX Runtime fails only with ConstantFolding on."""
    v = judge(load(CASES / "tile_ort_constant_folding.json"), "torchscript-17/ort-all")
    assert v.outcome == Outcome.BUG and v.attribution == Attribution.OPTIMIZER
    b = v.evidence["blame"]
    assert (b["component"], b["rule"]) == ("ort-all", "ConstantFolding")


@pytest.mark.parametrize("name, target, named", [
    # multi-operator failures the rewriter targets found (docs/results.md judges them)
    ("add_layer_norm_2d", "torchscript-17/ort-transformers-bert/ort-disabled",
     "enable_skip_layer_norm"),
    ("mul_transpose_matmul_int64", "torchscript-17/onnxscript-ort-fusions/ort-disabled",
     "ort_pattern_rules"),
    ("clamp_clamp_rank0", "torchscript-17/onnxscript-rewrite/ort-disabled",
     "FuseSuccessiveClip"),
])
def test_multi_operator_rewriter_failures_name_their_rule(name, target, named):
    case = load(CASES / f"{name}.json")
    assert len(case.nodes) >= 2
    v = judge(case, target)
    assert (v.outcome, v.stage) == (Outcome.BUG, Stage.GRAPH_OPTIMIZATION), v.detail
    assert named in json.dumps(v.evidence.get("blame")) + v.detail
    if name == "clamp_clamp_rank0":  # it raises inside the rule: the frame is named
        assert v.evidence["raised_in"]["function"] == "_FuseReluClipBase.extract_min_max"
        assert v.evidence["raised_in"]["source"].startswith("onnxscript/rewriter/")
    base = target.split("/")[0] + "/ort-disabled"
    assert judge(case, base).outcome == Outcome.PASS  # the export alone is fine


def test_differential_oracle_blames_a_rewrite_where_the_exporter_is_wrong_too():
    """Torch disagrees with the raw export (TorchScript's atan2 at a corner) and with the
    rewritten model: the rewrite's own change is judged against the raw export on the same
    runtime, and the planted rule is still named."""
    case = load(CASES / "atan2_beside_relu.json")
    assert judge(case, "torchscript-17/ort-disabled").attribution == Attribution.CONVERTER
    v = judge(case, "torchscript-17/fault-rule/ort-disabled")
    assert v.attribution == Attribution.OPTIMIZER
    b = v.evidence["blame"]
    assert b["rule"] == "planted_relu_to_abs" and b["oracle"].startswith("differential")


def test_a_failure_that_needs_the_whole_pattern_shrinks_to_the_pattern():
    from fuzzer.shrink import Budget, shrink

    case = load(CASES / "rmsnorm_dim_minus2.json")
    target = "torchscript-17/ort-transformers-bert/ort-disabled"
    v = judge(case, target)
    res = shrink(case, v, lambda c: judge(c, target), Budget(60, 100))
    assert res.case.ops == case.ops  # every node of the RMSNorm chain is needed


PAD_CONV_RELU = [{"id": "n0", "op": "aten::pad", "args": ["x"],
                  "attrs": {"pad": [1, 1, 1, 1], "mode": "constant", "value": None}},
                 {"id": "n1", "op": "aten::conv2d", "args": ["n0"],
                  "attrs": {"out_channels": 4, "kernel_size": [3, 3], "stride": [1, 1],
                            "padding": [0, 0], "dilation": [1, 1], "groups": 1,
                            "with_bias": True}},
                 {"id": "n2", "op": "aten::relu", "args": ["n1"]}]


def test_dynamo_exporters_own_rewrite_rules_count_for_coverage_only():
    """The dynamo exporter's optimizer runs onnxscript's default rules: what they fire counts
    (FuseConvPad folds the pad into the conv), blame halves over those and constant folding,
    and no TorchScript chain without those rules is said to have missed them."""
    case = make_case(PAD_CONV_RELU)
    dyn = judge(case, "dynamo/ort-all")
    ts = judge(case, "torchscript-17/ort-all")
    assert dyn.outcome == ts.outcome == Outcome.PASS, (dyn.detail, ts.detail)
    assert dyn.evidence["fusions"]["onnxscript.rewriter:FuseConvPad"] == 1
    assert not any(n.startswith("onnxscript.rewriter:") for n in ts.evidence["fusions"])
    assert not [m for m in fusions.missed([dyn, ts])
                if m["fusion"].startswith("onnxscript.rewriter:")]
    # Not a rewriter pass: the chain packs, and is not a rewriter target.
    assert targets.parse("dynamo/ort-all").exporter.settings["optimizer_rules"]
    assert pack_cap("dynamo/ort-all") > 1
    ref = reference(case)
    art = Artifact(case, ref.module, ref.inputs)
    targets.resolve("dynamo").run(art)
    assert fusions.switches(art.notes, targets.parse("dynamo/ort-disabled"))["dynamo"] == [
        "constant_folding", *sorted(art.notes["fired"]["dynamo"])]


def test_ort_conv_activation_fusion_counted_in_the_nchwc_layout():
    """At level all, ONNX Runtime's NCHWc layout rewrites FusedConv into an nchwc Conv with
    the activation as an attribute: still ConvActivationFusion's FusedConv (level extended
    shows it under its own name)."""
    case = make_case(PAD_CONV_RELU)
    for level in ("extended", "all"):
        v = judge(case, f"torchscript-17/ort-{level}")
        assert v.evidence["fusions"].get("onnxruntime:FusedConv") == 1, (level, v.evidence)
        assert "FusedConv" in v.evidence["fused_present"]

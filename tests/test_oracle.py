"""The oracle on hand-made Cases through the real exporters and ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.case import Case
from fuzzer.oracle import compare, reference
from fuzzer.sandbox import Sandbox
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom
from tests.conftest import CASES, make_case

BOTH = ["torchscript-17/ort-all", "dynamo/ort-all"]


@pytest.mark.parametrize("target", [*BOTH, "torchscript-17/ref", "torchscript-11/ort-disabled"])
def test_known_good_chain_passes(sandbox: Sandbox, target: str) -> None:
    case = Case.from_json((CASES / "good_chain.json").read_text())
    v = sandbox.run(case, target)
    assert v.outcome == Outcome.PASS, v.detail


@pytest.mark.parametrize("target", BOTH)
def test_equal_values_into_index_ops_do_not_fail(sandbox: Sandbox, target: str) -> None:
    # All-equal inputs: every index is a valid argmax/topk answer; only values may be judged.
    case = make_case(
        [{"id": "n0", "op": "aten::argmax", "args": ["x"], "attrs": {"dim": 1}},
         {"id": "n1", "op": "aten::topk", "args": ["x"], "attrs": {"k": 2, "dim": -1}}],
        inputs=[{"name": "x", "shape": [3, 6], "values": {"dist": "const", "value": 1.5}}],
        outputs=["n0", "n1:0", "n1:1"])
    v = sandbox.run(case, target)
    assert v.outcome == Outcome.PASS, v.detail


def test_tie_rule_still_catches_wrong_indices() -> None:
    case = make_case([{"id": "n0", "op": "aten::argmax", "args": ["x"], "attrs": {"dim": 1}}],
                     inputs=[{"name": "x", "shape": [2, 5]}])
    ref = reference(case)
    right = ref.out32[0].numpy()
    assert compare(case, ref, [right]) is None
    wrong = (right + 1) % 5  # normal inputs have no ties: another index selects another value
    m = compare(case, ref, [wrong])
    assert m is not None and m.symptom == Symptom.WRONG_VALUES


def test_eager_invalid_case_is_invalid_not_a_finding(sandbox: Sandbox) -> None:
    # conv2d with 3 input channels and groups=2 fails in torch eager itself.
    case = make_case([{"id": "n0", "op": "aten::conv2d", "args": ["x"],
                       "attrs": {"groups": 2, "out_channels": 4}}])
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert v.outcome == Outcome.INVALID
    assert v.stage == Stage.EAGER


def test_compare_flags_real_errors_but_not_fp32_noise() -> None:
    case = Case.from_json((CASES / "good_chain.json").read_text())
    ref = reference(case)
    exact = ref.out32[0].numpy()
    assert compare(case, ref, [exact]) is None
    noisy = exact * (1 + 1e-6)  # well inside float32's tolerance
    assert compare(case, ref, [noisy.astype(np.float32)]) is None
    off = exact.copy()
    off[0, 1] += 0.05
    m = compare(case, ref, [off])
    assert m is not None and m.symptom == Symptom.WRONG_VALUES
    assert m.evidence["index"] == [0, 1]
    assert compare(case, ref, [exact[:, :2]]).symptom == Symptom.WRONG_SHAPE
    assert compare(case, ref, [exact.astype(np.float64)]).symptom == Symptom.WRONG_DTYPE
    nan = exact.copy()
    nan[0, 0] = np.nan
    assert compare(case, ref, [nan]).symptom == Symptom.NAN_INF_MISMATCH


def test_nan_where_torch_has_nan_is_not_a_mismatch() -> None:
    case = make_case([{"id": "n0", "op": "aten::log", "args": ["x"]}],
                     inputs=[{"name": "x", "shape": [4], "values": {"dist": "const",
                                                                    "value": -1.0}}])
    ref = reference(case)
    assert torch.isnan(ref.out32[0]).all()
    assert compare(case, ref, [np.full(4, np.nan, dtype=np.float32)]) is None
    assert compare(case, ref, [np.zeros(4, dtype=np.float32)]).symptom == \
        Symptom.NAN_INF_MISMATCH


def test_unsupported_is_kept_apart_from_bugs(sandbox: Sandbox) -> None:
    # The TorchScript exporter has no symbolic for aten::rms_norm: an honest "not supported".
    case = make_case([{"id": "n0", "op": "aten::rms_norm", "args": ["x"]}],
                     inputs=[{"name": "x", "shape": [2, 6]}])
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert v.outcome == Outcome.UNSUPPORTED
    assert (v.stage, v.symptom) == (Stage.NODE_CONVERSION, Symptom.UNSUPPORTED)
    assert v.attribution == Attribution.NONE
    assert not v.failed


def test_a_dynamo_failure_leads_with_its_cause(sandbox: Sandbox) -> None:
    """The dynamo exporter wraps every failure in one "Failed to convert the exported program"
    advice (with terminal colour codes): as the first line it was every conversion failure's
    detail and error class. Its torchlib refuses non-4D attention on purpose (onnxscript
    #2558): a refusal, so unsupported."""
    case = make_case([{"id": "n0", "op": "aten::scaled_dot_product_attention",
                       "args": ["x", "x", "x"]}], inputs=[{"name": "x", "shape": [2, 3, 4]}])
    v = sandbox.run(case, "dynamo/ort-all")
    assert v.detail == "AssertionError: only 4D query, key, and value are supported"
    assert (v.outcome, v.stage, v.symptom) == (Outcome.UNSUPPORTED, Stage.NODE_CONVERSION,
                                               Symptom.UNSUPPORTED)
    assert "Failed to convert the exported program" in v.error  # the whole chain is kept
    assert "\x1b" not in v.error
    assert "onnxscript#2558" in v.evidence["known_limitation"]


def test_a_non_constant_layer_norm_shape_is_a_known_refusal(sandbox: Sandbox) -> None:
    """layer_norm(x, x.shape[-1:]) over a dim exported as dynamic: the TorchScript exporter
    refuses a traced size where ONNX wants a constant ("... because it is not constant. Please
    try to make things static"), as it has since pytorch#32282. A refusal, already known;
    `make fuzz` filed it as a crash in nearly every campaign."""
    case = Case.from_json((CASES / "layer_norm_dynamic.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert "because it is not constant" in v.error
    assert (v.outcome, v.symptom) == (Outcome.UNSUPPORTED, Symptom.UNSUPPORTED)
    assert "pytorch#32282" in v.evidence["known_limitation"]
    assert sandbox.run(case, "dynamo/ort-all").outcome == Outcome.PASS  # valid PyTorch


def test_a_float64_attention_mask_is_a_known_refusal(sandbox: Sandbox) -> None:
    """The TorchScript symbolic of sdpa raises ValueError("Unsupported type for attn_mask:
    DOUBLE") on a float64 mask torch eager takes: a refusal (filed as a crash by an audit)."""
    case = Case.from_json((CASES / "sdpa_f64_mask.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert "Unsupported type for attn_mask" in v.error
    assert (v.outcome, v.symptom) == (Outcome.UNSUPPORTED, Symptom.UNSUPPORTED)
    assert "float64" in v.evidence["known_limitation"]


@pytest.mark.parametrize("target", ["torchscript-17/ort-all", "torchscript-17/ref"])
def test_a_bfloat16_model_output_is_a_wrong_dtype_not_a_runtime_crash(sandbox: Sandbox,
                                                                      target: str) -> None:
    """floor_divide(bfloat16 scalar, float32 [1]) is float32 in torch; the TorchScript
    exporter declares a bfloat16 output, which ONNX Runtime's Python API cannot return. Both
    runtimes must call it the same converter bug."""
    case = make_case([{"id": "n0", "op": "aten::floor_divide", "args": ["x", "y"]}],
                     inputs=[{"name": "x", "shape": [], "dtype": "bfloat16"},
                             {"name": "y", "shape": [1], "dtype": "float32"}])
    v = sandbox.run(case, target)
    assert (v.outcome, v.stage, v.symptom, v.attribution) == (
        Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_DTYPE, Attribution.CONVERTER), v.detail
    assert v.detail.startswith("output 0: expected dtype float32, got bfloat16")


def test_a_float64_output_is_held_to_the_tolerance_of_its_float32_stages(
        sandbox: Sandbox) -> None:
    """linear(float32) -> to -> type_as(float64): ONNX Runtime's float32 linear differs from
    torch's by an ulp, and the fp64 baseline rounds at the same cast, so float64's tolerance
    flagged it (a campaign filed 4 such findings). The float32 stage sets the tolerance."""
    from fuzzer.compare import judged_dtype

    case = Case.from_json((CASES / "f32_stage_f64_output.json").read_text())
    ref = reference(case)
    assert ref.out32[0].dtype == torch.float64
    dtypes = {n: [str(t.dtype).removeprefix("torch.") for t in ts if t.is_floating_point()]
              for n, ts in ref.env.items()}
    assert judged_dtype(case, 0, lambda n: dtypes.get(n, [])) == "float32"
    assert judged_dtype(case, 0, lambda n: ["float64"]) == "float64"
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert v.outcome == Outcome.PASS, v.detail


def test_a_wrong_shape_both_onnx_executors_give_is_the_converters(sandbox: Sandbox) -> None:
    """F.interpolate(scale_factor=2.1, recompute_scale_factor=True) on 30 samples: eager
    computes the size in double, floor(63.0000...) = 63; while tracing, torch computes it in
    float32 tensors, floor(62.99999) = 62, and the TorchScript export keeps that. ONNX Runtime
    and the reference evaluator both give 62 (their nearest picks differ at ties): the shape
    is the model's, so the converter's, not 'unknown'."""
    case = Case.from_json((CASES / "interpolate_recompute_scale.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert (v.outcome, v.stage, v.symptom) == (Outcome.BUG, Stage.COMPARISON,
                                               Symptom.WRONG_SHAPE)
    assert v.detail == "output 0: expected shape [1, 1, 63], got [1, 1, 62]"
    assert v.attribution == Attribution.CONVERTER
    assert v.evidence["reference_evaluator"].startswith("gives ONNX Runtime's shapes")
    assert sandbox.run(case, "dynamo/ort-all").outcome == Outcome.PASS


def test_a_failure_at_another_size_is_not_blamed_on_the_optimizer(sandbox: Sandbox) -> None:
    """view(-1) -> unbind over a dynamic batch dim: the TorchScript model splits into the
    traced count of outputs, and at batch 2 ONNX Runtime cannot run its Split. Blame re-ran
    the model at the traced shape, where it passes with optimizations off, and so named ONNX
    Runtime's level 'all' for a failure no optimization had made; the reference evaluator
    fails on the model at batch 2 as well: the converter's."""
    case = Case.from_json((CASES / "unbind_dynamic.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert (v.outcome, v.stage, v.symptom) == (Outcome.BUG, Stage.RUNTIME_RUN, Symptom.CRASH)
    assert v.shapes == ((2, 1, 1, 1),) and "Split" in v.detail
    assert not v.detail.startswith("at input")  # the shapes are a field, not text
    assert v.shown_detail == "at input shape(s) [[2, 1, 1, 1]]: " + v.detail
    assert v.attribution == Attribution.CONVERTER
    assert "blame" not in v.evidence


def test_a_wrong_dtype_the_model_declares_is_the_converters(sandbox: Sandbox) -> None:
    """TorchScript's diagonal multiplies its input by a float32 mask and never casts back: a
    bool diagonal comes out float32, and the model declares float32. The reference evaluator
    refuses the model (a 1-D CumSum axis), which left the attribution 'unknown'; ONNX
    Runtime gives the dtype the model itself declares, so the converter is at fault."""
    case = Case.from_json((CASES / "diagonal_bool.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert (v.outcome, v.symptom) == (Outcome.BUG, Symptom.WRONG_DTYPE)
    assert v.detail == "output 0: expected dtype bool, got float32"
    assert v.attribution == Attribution.CONVERTER
    assert v.evidence["reference_evaluator"].endswith("the model declares ONNX Runtime's dtypes")


def test_a_model_the_spec_rejects_at_another_size_is_the_converters(sandbox: Sandbox) -> None:
    """split over a dynamic dim traced at size 1: the model's Split sizes sum to 1, and at
    size 2 ONNX Runtime refuses to run it, as the spec says it must. The reference evaluator
    runs it anyway (it does not check the sizes) and agrees with torch, which made ONNX
    Runtime look guilty. Strict shape inference at the new size names the violation."""
    case = Case.from_json((CASES / "split_dynamic.json").read_text())
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert (v.outcome, v.stage, v.symptom) == (Outcome.BUG, Stage.RUNTIME_RUN, Symptom.CRASH)
    assert v.shapes == ((2,),) and v.shown_detail.startswith("at input shape(s) [[2]]: ")
    assert v.attribution == Attribution.CONVERTER
    assert "Mismatch between the sum of 'split' (1)" in v.evidence["shape_inference"]

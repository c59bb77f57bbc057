"""Blame to the function and root causes, on the committed corpus with the real exporter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fuzzer import causes, corpus
from fuzzer.provenance import DTYPE_NOT_ENFORCED, blame_dynamo

# corpus finding -> the torchlib function that emitted its wrong nodes
TORCHLIB = {"87bbfd67": "aten_squeeze_dim", "ef35d010": "aten_signbit", "e4bf00e0": "aten_copy",
            "99aa34a8": "aten_isnan", "564d9efa": "aten_max_pool2d", "b3bcaa6d": "aten_dot",
            "fa91f428": "aten_index_put", "d31f6aee": "aten_embedding_renorm"}
DTYPE = {"99aa34a8", "564d9efa", "b3bcaa6d", "fa91f428", "d31f6aee"}


@pytest.fixture(scope="module")
def blames() -> dict[str, dict[str, str]]:
    out = {}
    for fid in TORCHLIB:
        e = corpus.find(fid)
        b = blame_dynamo(e.case, e.verdict.error or e.verdict.detail)
        assert b is not None, fid
        out[fid] = b.to_dict()
    return out


def test_blame_names_the_torchlib_function_and_its_source(blames: dict) -> None:
    for fid, fn in TORCHLIB.items():
        b = blames[fid]
        assert b["torchlib"].endswith(f": {fn}"), (fid, b)
        assert b["torchlib"].startswith("onnxscript/function_libs/torch_lib/ops/"), b
    assert blames["87bbfd67"]["tracker"] == "onnxscript"
    assert blames["87bbfd67"]["function"] == "aten_squeeze_dim"


def test_the_five_dtype_findings_are_one_dispatcher_cause(blames: dict) -> None:
    for fid in DTYPE:
        b = blames[fid]
        assert (b["function"], b["kind"], b["tracker"]) == (
            "_dispatching.dispatch", DTYPE_NOT_ENFORCED, "pytorch"), (fid, b)
        assert "declares" in b["evidence"]
    for fid in set(TORCHLIB) - DTYPE:
        assert blames[fid]["kind"] != DTYPE_NOT_ENFORCED
    entries = [corpus.find(f) for f in TORCHLIB]
    for e in entries:
        e.meta = {**e.meta, "blame": blames[e.meta["signature"][:8]]}
    groups = causes.group(entries)
    dtype = [c for c in groups if c.blame["kind"] == DTYPE_NOT_ENFORCED]
    assert len(dtype) == 1 and {e.meta["signature"][:8] for e in dtype[0].instances} == DTYPE
    assert len(groups) == 4  # dispatcher, squeeze, signbit, copy


def test_the_fp16_abs_finding_is_blamed_on_torch_onnx_not_torchlib() -> None:
    e = corpus.find("2846047e")
    b = blame_dynamo(e.case, e.verdict.detail)
    assert b is not None and b.component == "torch.onnx" and b.tracker == "pytorch"
    assert "float16 in the FX graph" in b.evidence


def test_known_issue_and_torchscript_only_labels() -> None:
    groups = {c.slug: c for c in causes.group(corpus.entries())}
    ls = groups["ort-log_sigmoid-underflow"]
    assert ls.label == causes.KNOWN and not ls.file
    assert "microsoft/onnxruntime#22557" in ls.upstream and len(ls.instances) == 2
    ts = [c for c in groups.values() if c.label == causes.TORCHSCRIPT_ONLY]
    assert ts and not any(c.file for c in ts)
    assert groups["dynamo-dispatch-dtype-not-enforced"].file


def test_corpus_list_by_cause_json() -> None:
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "corpus", "list", "--causes",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {x["cause"]: x for x in json.loads(r.stdout)}
    d = rows["dynamo-dispatch-dtype-not-enforced"]
    assert len(d["instances"]) == 5 and d["file"] and d["tracker"] == "pytorch"
    assert all(not x["file"] for x in rows.values() if x["label"] == "torchscript-only")
    assert sum(len(x["instances"]) for x in rows.values()) == len(corpus.entries())


@pytest.mark.parametrize(("fid", "function", "source", "tracker"), [
    ("7a5d046b", "SkipLayerNormFusion.check",
     "onnxscript/rewriter/ort_fusions/skip_normalization.py", "onnxscript"),
    ("7cb621fa", "FusionSkipLayerNormalization.fuse",
     "onnxruntime/transformers/fusion_skiplayernorm.py", "onnxruntime"),
])
def test_a_rewriter_finding_is_blamed_on_the_function_that_decides_the_fusion(
        fid: str, function: str, source: str, tracker: str) -> None:
    """SkipLayerNormalization fused in float64 (no double in the contrib op): the corpus
    blames the fusion's own check, in its project's tracker, one cause per project."""
    e = corpus.find(fid)
    b = causes.blame_of(e)
    assert (b["function"], b["tracker"], b["kind"]) == (function, tracker, "invalid_model")
    assert b["source"].startswith(source + ":") and int(b["source"].rsplit(":", 1)[1]) > 1
    groups = {c.slug: c for c in causes.group(corpus.entries())}
    slug = {"onnxscript": "onnxscript-skip_layer_norm-float64",
            "onnxruntime": "ort-transformers-skip_layer_norm-float64"}[tracker]
    assert groups[slug].file and [x.id for x in groups[slug].instances] == [e.id]


@pytest.mark.parametrize(("fid", "function", "source", "tracker", "slug", "label"), [
    ("ce18561e", "RmsNormFusion.check", "onnxscript/rewriter/ort_fusions/rms_normalization.py:",
     "onnxscript", "onnxscript-rms_norm-broadcast-scale", "new"),
    ("603a4318", "FusionSimplifiedLayerNormalization.fuse",
     "onnxruntime/transformers/fusion_simplified_layernorm.py:", "onnxruntime",
     "ort-transformers-simplified_layer_norm-broadcast-scale", "new"),
    ("d3bd852a", "SimplifiedLayerNormFusion::ApplyImpl",
     "onnxruntime/core/optimizer/layer_norm_fusion.cc", "onnxruntime",
     "ort-simplified_layer_norm_fusion-broadcast-scale", "known"),
])
def test_the_rmsnorm_broadcast_scale_finding_is_one_cause_per_fusion(
        fid: str, function: str, source: str, tracker: str, slug: str, label: str) -> None:
    """An RMSNorm over a last dim of 1 times a [32] weight (a motif near miss): three fusions
    fold the broadcasting Mul into SimplifiedLayerNormalization and ONNX Runtime fails at run
    time. Each is blamed on its own fusion (the transformers switch enable_layer_norm refined
    by the op that fired; the C++ transformer by name), the C++ one known upstream."""
    e = corpus.find(fid)
    b = causes.blame_of(e)
    assert (b["function"], b["tracker"], b["kind"]) == (function, tracker, "crash")
    assert b["source"].startswith(source) and b == e.meta["blame"]  # stored as computed
    groups = {c.slug: c for c in causes.group(corpus.entries())}
    c = groups[slug]
    assert [x.id for x in c.instances] == [e.id] and c.label == label
    assert c.file == (label == "new")
    assert any(r.startswith("microsoft/onnxruntime#31980") for r in c.upstream)


def test_a_switch_that_makes_several_ops_is_refined_by_the_op_that_fired() -> None:
    from fuzzer.targets.rewriters import fault_function

    project, switch = "onnxruntime.transformers", "enable_layer_norm"
    assert fault_function(project, switch, ["SimplifiedLayerNormalization"])[1] == (
        "FusionSimplifiedLayerNormalization.fuse")
    assert fault_function(project, switch, ["LayerNormalization", "FastGelu"])[1] == (
        "FusionLayerNormalization.fuse")
    both = ["LayerNormalization", "SimplifiedLayerNormalization"]
    assert fault_function(project, switch, both) == (None, f"{project}: {switch}")


def test_corpus_blame_keeps_the_blames_written_by_hand(tmp_path: Path) -> None:
    """The ov-pt and litert blames name the converter's lowering down to its source; the
    computed ones only name the component and operator. `corpus blame` stores the curated
    ones (causes.json "blames") as written, and the corpus holds what causes.json says."""
    curated = causes.curated_blames()
    assert set(curated) == {"ov-pt-copy-wrong_values-1246fc98", "litert-add-crash-4e272527",
                            "tf2onnx-resize-invalid_model-a0b2040e",
                            "tf2onnx-resize-wrong_values-59a97256",
                            "tf2onnx-one_hot-wrong_values-cb5469e1",
                            "dynamo-scaled_dot_product_attention-wrong_values-90954bd6",
                            "torchscript-mul-invalid_model-ef54c3c9"}
    for fid, b in curated.items():
        assert corpus.find(fid).meta["blame"] == b, fid  # what a re-run would store
    fid = "ov-pt-copy-wrong_values-1246fc98"
    shutil.copytree(corpus.CORPUS / fid, tmp_path / fid)
    (e,) = corpus.entries(tmp_path)
    assert causes.annotate(e, None, curated)["blame"] == curated[fid]
    stored = json.loads((tmp_path / fid / "finding.json").read_text())
    assert stored["blame"]["source"] == "src/frontends/pytorch/src/op_table.cpp"
    assert causes.annotate(e, None)["blame"] != curated[fid]  # computed: coarser


def test_tf2onnx_findings_are_three_causes_on_tf2onnx_s_tracker() -> None:
    # Each blamed on the tf2onnx handler at fault (written by hand: tf2onnx's handlers are
    # found in a TF process, not by the driver), one cause per function and kind of defect.
    tf = [c for c in causes.group(corpus.entries()) if c.blame.get("component") == "tf2onnx"]
    rows = {c.slug: c.row() for c in tf}
    assert set(rows) == {"tf2onnx-resize-float32-scales", "tf2onnx-resize-area-as-nearest",
                         "tf2onnx-one_hot-negative-index"}, rows
    assert {r["tracker"] for r in rows.values()} == {"onnx/tensorflow-onnx"}
    assert rows["tf2onnx-resize-float32-scales"]["function"] == "Resize.version_11"
    assert rows["tf2onnx-resize-area-as-nearest"]["label"] == "known"
    assert not rows["tf2onnx-resize-area-as-nearest"]["file"]
    assert rows["tf2onnx-one_hot-negative-index"]["file"]


def test_an_uncurated_tf2onnx_finding_is_blamed_on_the_converter_not_torch() -> None:
    e = corpus.find("tf2onnx-one_hot-wrong_values-cb5469e1")
    b = causes.blame_of(e)
    assert (b["component"], b["tracker"]) == ("tf2onnx", "onnx/tensorflow-onnx")
    assert "tf::one_hot" in b["function"]


def test_the_sdpa_finding_from_a_lifted_architecture_is_blamed_on_the_bool_mask_helper() -> None:
    # Found by lifting real architectures: the function that fills the mask (dtype.min, not
    # -inf), one cause of its own, filed on onnxscript.
    (c,) = [c for c in causes.group(corpus.entries()) if c.slug ==
            "torchlib-aten_sdpa-fully-masked-row"]
    assert c.blame["function"] == "_aten_scaled_dot_product_attention_bool_mask_onnx"
    assert c.blame["tracker"] == "onnxscript" and c.file and c.label == causes.NEW


@pytest.mark.parametrize(("fid", "function", "source", "kind", "slug", "label"), [
    ("f291ebaf", "FusionSimplifiedLayerNormalization.fuse",
     "onnxruntime/transformers/fusion_simplified_layernorm.py:117", "raises TypeError",
     "ort-transformers-simplified_layer_norm-mul-x-x", "new"),
    ("8dbc749b", "FusionQuickGelu.fuse", "onnxruntime/transformers/fusion_quickgelu.py:53",
     "raises AttributeError", "torchscript-mul-crash-8dbc749b", "known"),
])
def test_a_rewriter_that_crashes_is_blamed_on_the_function_it_raised_in(
        fid: str, function: str, source: str, kind: str, slug: str, label: str) -> None:
    """optimize_model raising inside a fusion (no model to bisect): the pass records the
    innermost frame of its own code, and the cause is that function and exception, apart from
    the same function's broadcast-scale cause and not 'TorchScript-only' though the finding
    was made behind TorchScript."""
    e = corpus.find(fid)
    assert e.verdict.evidence["raised_in"]["function"] == function
    b = causes.blame_of(e)
    assert (b["function"], b["source"], b["kind"], b["tracker"]) == (
        function, source, kind, "onnxruntime")
    groups = {c.slug: c for c in causes.group(corpus.entries())}
    c = groups[slug]
    assert [x.id for x in c.instances] == [e.id] and c.label == label
    assert c.file == (label == "new")
    broadcast = groups["ort-transformers-simplified_layer_norm-broadcast-scale"]
    assert e.id not in [x.id for x in broadcast.instances]


def test_the_no_op_cast_before_div_mul_is_known_upstream() -> None:
    """The arch arm's RMSNorm windows (x.to(float32) first): a curated blame names ONNX
    Runtime's DivMulFusion::Apply, and the known-issue rule matches on that function."""
    e = corpus.find("ef54c3c9")
    groups = {c.slug: c for c in causes.group(corpus.entries())}
    c = next(c for c in groups.values() if e.id in [x.id for x in c.instances])
    assert c.blame["function"] == "DivMulFusion::Apply" and c.label == causes.KNOWN
    assert "microsoft/onnxruntime#32416" in c.upstream and not c.file

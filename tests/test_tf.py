"""TensorFlow -> ONNX through tf2onnx, with the real packages (the `tf` extra): every
catalogue entry as a single-operator Case gets a classified verdict, the numpy shape rules
agree with TF, a known-good chain passes, an unsupported operator is `unsupported`, a finding
shrinks to a repro that imports only tensorflow, tf2onnx, onnxruntime and numpy, and a
campaign on a tf2onnx target makes TensorFlow Cases."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer.case import Case
from fuzzer.extras import installed
from fuzzer.model import infer
from fuzzer.repro import repro_script
from fuzzer.shrink import Budget, shrink
from fuzzer.tf import catalogue
from fuzzer.verdict import Outcome, Symptom
from tests.test_frontends import single

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not (installed("tensorflow") and installed("tf2onnx")),
    reason="needs the tf extra: pip install 'convfuzz[tf]'")]
TARGET = "tf2onnx-17/ort-all"


def case_of(nodes: list[dict], shape: list[int], seed: int = 5) -> Case:
    return Case.from_dict({"schema": 1, "seed": seed, "inputs": [
        {"name": "x", "shape": shape, "dtype": "float32"}], "nodes": nodes,
        "outputs": [nodes[-1]["id"]]})


def test_every_entry_as_a_single_op_case_gets_a_classified_verdict(sandbox) -> None:
    outcomes: dict[str, list[str]] = {}
    for name in catalogue.vocabulary():
        case = single(name)
        v = sandbox.run(case, TARGET)
        assert v.outcome in (Outcome.PASS, Outcome.BUG, Outcome.UNSUPPORTED), (name, v.detail)
        if v.outcome != Outcome.PASS:
            assert v.stage is not None and v.symptom is not None, name
        outcomes.setdefault(v.outcome.value, []).append(name)
    assert len(outcomes.get("pass", [])) >= 0.7 * len(catalogue.REGISTRY), outcomes
    assert "tf::erfc" in outcomes["unsupported"]


def test_the_numpy_shape_rules_agree_with_tf() -> None:
    from fuzzer.tf.model import reference

    for name in catalogue.vocabulary():
        for seed in (1, 50):
            case = single(name, seed)
            want = infer(case)
            ref = reference(case)  # TF eager on the same Case
            got = [(tuple(t.shape), str(t.dtype).removeprefix("torch.")) for t in ref.out32]
            rule = [(m.shape, m.dtype) for o in case.outputs
                    for m in [want[o.split(":")[0]][int(o.split(":")[1]) if ":" in o else 0]]]
            assert got == rule, (name, case.nodes[0].attrs)


def test_a_known_good_chain_passes_at_two_opsets(sandbox) -> None:
    case = case_of([{"id": "n0", "op": "tf::dense", "args": ["x"], "attrs": {"units": 8}},
                    {"id": "n1", "op": "tf::gelu", "args": ["n0"], "attrs": {"approximate": True}},
                    {"id": "n2", "op": "tf::layer_normalization", "args": ["n1"]},
                    {"id": "n3", "op": "tf::softmax", "args": ["n2"]}], [2, 6])
    for target in (TARGET, "tf2onnx-13/ort-all"):
        v = sandbox.run(case, target)
        assert v.outcome == Outcome.PASS, (target, v.detail)


def test_an_unsupported_tf_op_is_unsupported_not_a_bug(sandbox) -> None:
    # tf.nn.gelu's exact form lowers to Erfc, which tf2onnx logs as unsupported and leaves in
    # the model it returns anyway.
    case = case_of([{"id": "n0", "op": "tf::gelu", "args": ["x"], "attrs": {}}], [2, 6])
    v = sandbox.run(case, TARGET)
    assert v.outcome == Outcome.UNSUPPORTED and v.symptom == Symptom.UNSUPPORTED
    assert "Erfc" in v.detail and "invalid" in v.detail


def test_a_tf_case_on_a_torch_target_is_invalid(sandbox) -> None:
    case = case_of([{"id": "n0", "op": "tf::relu", "args": ["x"]}], [2, 6])
    v = sandbox.run(case, "torchscript-17/ort-all")
    assert v.outcome == Outcome.INVALID and "converts pytorch models" in v.detail


def test_a_tf_finding_shrinks_to_a_standalone_repro(sandbox, tmp_path: Path) -> None:
    # TF's MaxPool skips NaN (sqrt of a negative), ONNX Runtime's propagates it.
    case = case_of([
        {"id": "n0", "op": "tf::scale_shift", "args": ["x"], "attrs": {"scale": 0.5}},
        {"id": "n1", "op": "tf::sqrt", "args": ["n0"]},
        {"id": "n2", "op": "tf::max_pool2d", "args": ["n1"]},
        {"id": "n3", "op": "tf::reshape", "args": ["n2"], "attrs": {"shape": [-1]}}],
        [1, 4, 4, 2])
    v = sandbox.run(case, TARGET)
    assert v.outcome == Outcome.BUG and v.symptom == Symptom.NAN_INF_MISMATCH
    res = shrink(case, v, lambda c: sandbox.run(c, TARGET), Budget(seconds=60, calls=80))
    assert len(res.case.nodes) < len(case.nodes)
    assert "tf::max_pool2d" in res.case.ops and res.verdict.key == v.key
    script = tmp_path / "repro.py"
    script.write_text(repro_script(res.case, res.verdict, "test"))
    tops = {a.name.split(".")[0] if isinstance(n, ast.Import) else n.module.split(".")[0]
            for n in ast.walk(ast.parse(script.read_text()))
            if isinstance(n, (ast.Import, ast.ImportFrom)) for a in getattr(n, "names", [])}
    assert tops <= {"os", "sys", "numpy", "tensorflow", "tf2onnx", "onnxruntime"}, tops
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "REPRODUCED" in r.stdout, r.stdout + r.stderr[-2000:]


DRIVER = """
import sys
from fuzzer.sampling import GenConfig, draw
from fuzzer.model import infer
from fuzzer.repro import repro_script
from fuzzer.shrink import infer as shrink_infer
from fuzzer.tf import catalogue
from fuzzer.verdict import Outcome, Verdict
case = draw("random", 4, catalogue.vocabulary(), GenConfig(max_len=6, vocabulary="catalogue"))
infer(case); shrink_infer(case)
repro_script(case, Verdict("tf2onnx-17/ort-all", Outcome.BUG), "x")
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


def test_the_driver_side_never_imports_tensorflow() -> None:
    r = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"]


def test_a_campaign_on_tf2onnx_makes_tf_cases_and_a_mix_is_exit_2(tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "fuzzer.cli", "fuzz", "--source", "random", "--seed", "3",
           "--cases", "4", "--no-shrink", "--workers", "1"]
    r = subprocess.run([*exe, "-t", TARGET, "--out", str(tmp_path / "s")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    import sqlite3

    with sqlite3.connect(tmp_path / "s" / "store.sqlite") as db:
        cases = [json.loads(row[0]) for row in db.execute("SELECT json FROM cases")]
    assert len(cases) == 4
    assert all(n["op"].startswith("tf::") for c in cases for n in c["nodes"])
    r = subprocess.run([*exe, "-t", TARGET, "-t", "torchscript-17/ort-all", "--out",
                        str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "different frameworks" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_a_tf_cause_report_has_a_short_repro_that_asserts_the_defect(tmp_path: Path) -> None:
    # The filed report of a TF root cause: the tf.Module, tf2onnx, onnx's checker (the
    # defect: float32 scales give one row less by the spec's floor) and nothing of torch.
    from fuzzer import causes, corpus, defect, filing

    cause = next(c for c in causes.group(corpus.entries())
                 if c.slug == "tf2onnx-resize-float32-scales")
    e = cause.instances[0]
    obs = defect.observe_finding(e.case, e.verdict)
    assert obs.where == "check" and "differ in dimension 1" in obs.message
    src = defect.repro(e.case, e.verdict, obs, cause.title)
    assert "torch" not in src and len(src.splitlines()) <= 50
    script = tmp_path / "repro.py"
    script.write_text(src)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 1 and "REPRODUCED" in r.stdout, r.stdout + r.stderr[-2000:]
    f = filing.Filed(cause, e.case, e, e.verdict, obs, src, "", {"tensorflow-cpu": "2.21.0"})
    md = filing.render(f)
    assert "where torch" not in md and "TensorFlow → ONNX" in md
    assert "tensorflow-cpu==2.21.0" in md


def test_a_tf_finding_s_report_goes_to_tf2onnx_and_speaks_of_tensorflow(tmp_path: Path) -> None:
    from fuzzer import corpus
    from fuzzer import report as rep

    e = corpus.find("tf2onnx-one_hot-wrong_values-cb5469e1")
    md, _ = rep.write(e.case, e.verdict, e.id, tmp_path, rep.Context(versions={
        "tensorflow-cpu": "2.21.0", "tf2onnx": "1.17.0"}))
    text = md.read_text().split("### Step-by-step reproduction")[0]  # the prose, not the script
    assert text.startswith("<!-- for https://github.com/onnx/tensorflow-onnx/issues -->")
    assert "TensorFlow eager" in text and "- tf2onnx: 1.17.0" in md.read_text()
    assert "PyTorch" not in text and "torch" not in text

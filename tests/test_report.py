"""Reports and standalone repro scripts: the repro proves itself in a fresh interpreter and
never imports convfuzz; report.md follows the tracker the attribution points to."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer import corpus
from fuzzer.case import Case
from fuzzer.oracle import judge
from fuzzer.report import Context, build_context, write
from fuzzer.repro import repro_script
from fuzzer.sandbox import Sandbox
from fuzzer.targets.registry import TargetError, parse
from fuzzer.verdict import Attribution, Outcome
from tests.conftest import CASES, make_case

ALLOWED = {"io", "subprocess", "sys", "numpy", "onnx", "onnxruntime", "torch", "onnxscript",
           "onnxoptimizer", "onnxsim", "onnxslim"}
# Unbatched adaptive_avg_pool2d: the TorchScript exporter treats dim 0 as the batch.
WRONG_SHAPE = make_case([{"id": "n0", "op": "aten::adaptive_avg_pool2d", "args": ["x"],
                          "attrs": {"output_size": [2, 2]}}],
                        inputs=[{"name": "x", "shape": [1, 4, 6]}])


def imported_modules(source: str) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def run_repro(source: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    p = tmp / "repro.py"
    p.write_text(source)
    return subprocess.run([sys.executable, str(p)], capture_output=True, text=True,
                          timeout=300, cwd=tmp)


def test_repro_of_a_real_bug_exits_1_and_of_a_pass_exits_0(tmp_path: Path) -> None:
    v = judge(WRONG_SHAPE, "torchscript-17/ort-all")
    assert v.outcome == Outcome.BUG and v.symptom.value == "wrong_shape"
    src = repro_script(WRONG_SHAPE, v, "t1")
    assert imported_modules(src) <= ALLOWED and "fuzzer" not in imported_modules(src)
    r = run_repro(src, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "expected shape [1, 2, 2], got [1, 4, 2]" in r.stdout
    good = Case.from_json((CASES / "good_chain.json").read_text())
    r = run_repro(repro_script(good, judge(good, "torchscript-17/ort-all"), "t2"), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pytorch_report_has_the_template_and_the_evidence(tmp_path: Path) -> None:
    v = judge(WRONG_SHAPE, "torchscript-17/ort-all")
    ctx = build_context(WRONG_SHAPE, v, judge, None, {"torch": "2.13.0"})
    md, repro = write(WRONG_SHAPE, v, "t1", tmp_path, ctx)
    text = md.read_text()
    for needle in ("### 🐛 Describe the bug", "### Versions", "fp64", "torchscript-17/ort-all",
                   "comparison/wrong_shape", "aten::adaptive_avg_pool2d",
                   "Found by fuzzing with convfuzz", "The dynamo exporter (`dynamo=True`)",
                   "TorchScript-based exporter"):
        assert needle in text, needle
    assert repro.read_text() in text.replace("```python\n", "", 1) or "def main" in text


def test_a_rejected_model_report_has_its_error_and_no_empty_values_section(
        tmp_path: Path) -> None:
    """An invalid model has no values to set side by side; its error is what a maintainer
    reads (and the control names the argument that matters: int exponent 2, not 2.0)."""
    case = make_case([{"id": "n0", "op": "aten::pow", "args": ["x"], "attrs": {"exponent": 2}}],
                     inputs=[{"name": "x", "shape": [4], "dtype": "uint8"}])
    v = judge(case, "torchscript-17/ort-all")
    assert (v.stage.value, v.symptom.value) == ("validation", "invalid_model"), v.detail
    ctx = build_context(case, v, judge, None, {"torch": "2.13.0"})
    text = write(case, v, "t4", tmp_path, ctx)[0].read_text()
    assert "**Expected vs actual:**" not in text
    assert "**Error:**" in text and "unsupported type: tensor(uint8)" in text
    assert "with `exponent=2.0` (its default) instead of `exponent=2`" in text


def test_runtime_attributed_findings_use_the_ort_template(tmp_path: Path) -> None:
    v = judge(WRONG_SHAPE, "torchscript-17/ort-all")
    v.attribution = Attribution.RUNTIME
    md, _ = write(WRONG_SHAPE, v, "t3", tmp_path, Context(versions={"onnxruntime": "1.32.0"}))
    text = md.read_text()
    for needle in ("### Describe the issue", "### To reproduce", "### Urgency",
                   "### Execution Provider", "1.32.0"):
        assert needle in text, needle


def test_a_report_names_the_shape_inference_error_at_another_size(tmp_path: Path) -> None:
    case = Case.from_json((CASES / "split_dynamic.json").read_text())
    v = judge(case, "torchscript-17/ort-all")
    md, _ = write(case, v, "t4", tmp_path, Context(versions={"torch": "2.13.0"}))
    text = md.read_text()
    assert "**Attribution:** converter" in text
    assert "ONNX's strict shape inference rejects the model: `[ShapeInferenceError]" in text


ENTRIES = corpus.entries()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_every_corpus_repro_matches_the_finding_status(entry: corpus.Entry, tmp_path: Path,
                                                       sandbox: Sandbox) -> None:
    try:  # a finding on a converter whose optional extra CI does not install (litert)
        parse(entry.target)
    except TargetError as e:
        pytest.skip(str(e))
    src = repro_script(entry.case, entry.verdict, entry.id)
    assert "fuzzer" not in imported_modules(src)
    now = sandbox.run(entry.case, entry.target)  # a finding may kill the process
    r = run_repro(src, tmp_path)
    assert r.returncode == (1 if now.outcome == Outcome.BUG else 0), (now.key, r.stdout)


def test_repro_judges_tie_indices_by_the_values_they_select(tmp_path: Path) -> None:
    import runpy

    import torch

    from fuzzer.verdict import Stage, Symptom, Verdict

    case = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::argmax", "args": ["n0"],
                       "attrs": {"dim": 1, "keepdim": False}}],
                     inputs=[{"name": "x", "shape": [6, 5],
                              "values": {"dist": "ties", "levels": 2}}])
    v = Verdict("torchscript-17/ort-all", Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_VALUES)
    path = tmp_path / "repro.py"
    path.write_text(repro_script(case, v, "ties"))
    ns = runpy.run_path(str(path), run_name="repro")  # defines, does not run main()
    args = ns["make_inputs"]()
    (x,) = ns["tie_inputs"](args)
    assert torch.equal(x, torch.relu(args[0]))  # torch's input of the tie operator
    expected = ns["Model"]().eval()(*args)
    base = ns["Model"]().double().eval()(*(a.double() for a in args))
    idx = expected[0].numpy()
    row = next(r for r in range(6) if (x[r] == x[r, idx[r]]).sum() > 1)
    other = next(j for j in range(5) if j != idx[row] and x[row, j] == x[row, idx[row]])
    tie = idx.copy()
    tie[row] = other
    assert ns["compare"](expected, base, [tie], (x,)) is None  # another index of a tie
    wrong = idx.copy()
    wrong[row] = next(j for j in range(5) if x[row, j] != x[row, idx[row]])
    assert "select different values" in ns["compare"](expected, base, [wrong], (x,))
    assert int((tie != idx).sum()) == 1


def test_a_corpus_report_carries_the_curators_analysis(tmp_path: Path) -> None:
    """The note `corpus add --note` records (why it is a bug, where the cause is) goes into
    the report a maintainer reads, found by the id the finding had in its store."""
    (entry,) = [e for e in corpus.entries() if e.meta["signature"].startswith("1c4e2867")]
    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "report", "1c4e2867", "--no-checks",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (md,) = tmp_path.glob("*/report.md")  # one report per root cause, in its own folder
    text = md.read_text()
    assert f"- **Analysis:** {entry.meta['note']}" in text
    assert "_get_tracing_state()" in text

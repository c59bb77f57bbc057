"""The short repro checks its defect: exit 1 now, 0 when a patched component is simulated
(a test double plants the fix), 3 on an unrelated error; it judges values with the oracle's
own rules; and the committed reports are what a maintainer files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fuzzer import compare, corpus, defect
from fuzzer.verdict import Symptom

REPORTS = Path(__file__).resolve().parent.parent / "docs" / "reports"
ROOT = str(Path(__file__).resolve().parent.parent)

# Planted fixes, each a stand-in for a patched upstream function.
FIX_SQUEEZE = '''
import torch
from onnxscript import opset18 as op

def aten_squeeze_dim(self, dim):  # the fix: a no-op where the dim's size is not 1
    if self.shape is not None and self.shape[dim] != 1:
        return op.Identity(self)
    return op.Squeeze(self, op.Constant(value_ints=[dim]))

_export = torch.onnx.export
torch.onnx.export = lambda *a, **k: _export(
    *a, **k, custom_translation_table={torch.ops.aten.squeeze.dim: aten_squeeze_dim})
'''
FIX_DISPATCH = '''
from torch.onnx._internal.exporter import _core, _dispatching
from fuzzer.provenance import _undeclared

_dispatch = _dispatching.dispatch

def dispatch(node, registry):  # the fix: refuse a function at types it does not declare
    fn, msg = _dispatch(node, registry)
    if fn is not None and _undeclared(node, fn):
        return None, "no ONNX function declares these input types: " + str(_undeclared(node, fn))
    return fn, msg

_core._dispatching.dispatch = dispatch
'''
BREAK_ONNXSCRIPT = "import sys\nsys.modules['onnxscript'] = None\n"


def run(script: Path, preamble: str = "") -> subprocess.CompletedProcess[str]:
    driver = script.with_name("driver.py")
    driver.write_text(preamble + f"\nimport runpy\nrunpy.run_path({str(script)!r}, "
                      "run_name='__main__')\n")
    return subprocess.run([sys.executable, str(driver)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": ROOT})


def _repro(fid: str, tmp: Path, dtype_kind: bool = False) -> Path:
    e = corpus.find(fid)
    obs = defect.observe(e.case, e.target)
    p = tmp / f"repro_{fid}.py"
    p.write_text(defect.repro(e.case, e.verdict, obs, "title", dtype_kind))
    return p


def test_squeeze_repro_exits_1_now_0_when_torchlib_is_fixed_3_when_unrelated(
        tmp_path: Path) -> None:
    p = _repro("87bbfd67", tmp_path)
    assert len(p.read_text().splitlines()) <= 40
    r = run(p)
    assert r.returncode == 1 and "REPRODUCED" in r.stdout, r.stdout + r.stderr[-2000:]
    r = run(p, FIX_SQUEEZE)
    assert r.returncode == 0 and "FIXED" in r.stdout, r.stdout + r.stderr[-2000:]
    r = run(p, BREAK_ONNXSCRIPT)  # the old harness called this REPRODUCED
    assert r.returncode == 3 and "CHANGED" in r.stdout, r.stdout + r.stderr[-2000:]


@pytest.mark.integration
def test_a_shape_defect_repro_draws_its_inputs_a_values_defect_prints_them(
        tmp_path: Path) -> None:
    """The MHA wrong shape does not depend on the values: its repro draws three seeded randn
    inputs instead of printing ~5,000 characters of them, and still exits 1. A wrong-values
    finding keeps its literals whatever they cost."""
    e = corpus.find("9e4873a3")
    obs = defect.observe(e.case, e.target)
    literal = defect.repro(e.case, e.verdict, obs, "title")
    short = defect.short(e.case, e.verdict, obs, "title", literal)
    assert "torch.manual_seed(0)" in short and short.count("torch.randn(") == 3
    assert "torch.tensor(" not in short and len(short) < len(literal) - defect.SAVES
    p = tmp_path / "repro.py"
    p.write_text(short)
    r = run(p)
    assert r.returncode == 1 and "REPRODUCED" in r.stdout, r.stdout + r.stderr[-2000:]
    values = next(f for f in corpus.entries() if f.verdict.symptom
                  and f.verdict.symptom.value == "wrong_values" and f.target.startswith("dynamo"))
    assert defect.short(values.case, values.verdict, obs, "t", "LITERAL") == "LITERAL"


@pytest.mark.slow  # ~25 s; the squeeze test above covers the exit codes in the default run
def test_dtype_repro_is_fixed_by_a_dispatcher_that_checks_declared_types(
        tmp_path: Path) -> None:
    p = _repro("99aa34a8", tmp_path, dtype_kind=True)
    assert run(p).returncode == 1
    r = run(p, FIX_DISPATCH)
    assert r.returncode == 0 and "exporter refuses" in r.stdout, r.stdout + r.stderr[-2000:]


def test_plus_inf_against_minus_inf_is_judged_alike_by_oracle_and_repro() -> None:
    ns: dict = {"np": np}
    exec(defect.rules_source(), ns)  # what a repro carries
    inf = float("inf")
    cases = [([inf], [-inf], [-inf]), ([-inf], [inf], [inf]), ([np.nan], [1.0], [1.0]),
             ([1.0], [1.0], [1.0]), ([inf], [inf], [inf]), ([2.0], [1.0], [1.0]),
             ([1.0 + 1e-6], [1.0], [1.0])]
    for a, e, r in cases:
        a, e, r = (np.array(x, dtype=np.float64) for x in (a, e, r))
        m = compare._float_mismatch(0, a, e, r, "float32")
        nan = bool(ns["nonfinite_differs"](a, e, r).any())
        off = bool(ns["values_off"](a, e, r, *compare.TOLERANCE["float32"])[0].any())
        assert (m is not None and m.symptom == Symptom.NAN_INF_MISMATCH) == nan, (a, e)
        assert (m is not None) == (nan or off), (a, e)
    assert "nonfinite_differs" in defect.rules_source()  # the source is the oracle's own


@pytest.mark.parametrize("d", sorted(p for p in REPORTS.iterdir() if p.is_dir()) if
                         REPORTS.is_dir() else [], ids=lambda p: p.name)
def test_committed_reports_are_fileable(d: Path) -> None:
    md, repro = (d / "report.md").read_text(), (d / "repro.py").read_text()
    assert md.startswith("# ") and "**Tracker:** " in md and "**Function at fault:**" in md
    assert "## Versions" in md and "onnxruntime==" in md
    # A TensorFlow repro also carries TF's determinism line and a tf.Module with its signature.
    # About 30 lines of harness, plus a line per parameter tensor the model holds.
    limit = (50 if "import tensorflow" in repro else 40) + repro.count("register_buffer(") // 2
    assert len(repro.splitlines()) <= limit and "sys.exit" in repro
    for noise in ("convfuzz finding", "Cases", "filed as", "Attribution:"):
        assert noise not in md, noise
    assert "torchscript" not in d.name  # TorchScript-only causes are not reported by default


@pytest.mark.parametrize("slug, runtime, tracker", [
    ("ov-pt-copy-wrong_values-1246fc98", "OpenVINO", "openvinotoolkit/openvino"),
    ("litert-add-crash-4e272527", "LiteRT", "google-ai-edge/litert-torch")])
def test_converter_report_names_its_runtime_and_tracker(slug: str, runtime: str,
                                                        tracker: str) -> None:
    """A converter finding's report is filed on the converter's tracker and speaks of the
    runtime that ran the model, not ONNX Runtime (the committed report, as regenerated)."""
    text = (REPORTS / slug / "report.md").read_text()
    assert f"**Tracker:** {tracker}\n" in text
    assert "ONNX Runtime" not in text and "`None`" not in text
    assert runtime in text and not text.startswith("# ?")


@pytest.mark.integration
def test_a_rewriter_crash_is_observed_in_the_pass_not_the_export() -> None:
    """optimize_model raising on the exported model (LayerNorm without its bias) is the graph
    rewriter failing, which the report says; the export itself went through."""
    e = corpus.find("1e6b2252")
    obs = defect.observe(e.case, e.target)
    assert (obs.where, obs.error_class) == ("pass", "IndexError"), obs
    assert obs.behaviour.startswith("the graph rewriter fails")

"""Exposure by trigger (fuzzer/exposure.py): which mined architectures contain a finding's
minimal chain with what makes it fail, and which a `convfuzz models` store saw break."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer import arch_rows
from fuzzer.corpus import find
from fuzzer.exposure import Exposure, Index, exposure, load, pattern, save
from fuzzer.filing import exposure_cell
from fuzzer.sandbox import Sandbox
from fuzzer.store import Store
from fuzzer.verdict import Outcome
from tests.conftest import make_case

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
T = "transformers:"
SQUEEZE = "dynamo-squeeze-invalid_model-87bbfd67"  # squeeze(x, 1) on a dim of size 2


def _gelu_linear():  # type: ignore[no-untyped-def]
    return make_case([{"id": "n0", "op": "aten::gelu", "args": ["x"]},
                      {"id": "n1", "op": "aten::linear", "args": ["n0"]}],
                     inputs=[{"name": "x", "shape": [2, 8]}])


def test_structure_is_data_flow_set_attributes_and_dtypes() -> None:
    idx = Index.load(SEEDS, [T + a for a in ("bert", "vit", "gemma", "llama")])
    pat = pattern(_gelu_linear())
    assert pat.has_edge("n0", "n1") and pat.edges["n0", "n1"]["slot"] == 0
    e = exposure("p", _gelu_linear(), find(SQUEEZE).verdict, idx)  # no runner: structure
    # gemma has gelu (approximate='tanh', an attribute set) and linear; llama has neither
    assert e.structural == [T + "bert", T + "vit"] and e.operator_archs == 3
    assert not e.confirmed and e.occurs == e.structural and not e.models


@pytest.mark.integration
def test_the_squeeze_trigger_occurs_where_the_dim_is_not_1(sandbox: Sandbox) -> None:
    """squeeze with a dim set occurs in deberta and parakeet_rnnt; only parakeet squeezes a
    dim whose size is not 1 (dim=2 of [1, 4, 4, 512], where the finding has dim=1 of [4, 2]),
    and its block, lifted at its own shapes, fails the dynamo export the same way."""
    f = find(SQUEEZE)
    idx = Index.load(SEEDS, [T + a for a in ("bert", "deberta", "parakeet_rnnt")])
    e = exposure(f.id, f.case, f.verdict, idx, lambda c, t: sandbox.run(c, t))
    assert e.operator_archs == 2 and e.structural == [T + "deberta", T + "parakeet_rnnt"]
    assert e.occurs == [T + "parakeet_rnnt"] and e.confirmed and e.fragments >= 2
    assert "occurs with its trigger" in e.line() and "in 1 of the mined" in e.line()


@pytest.mark.integration
def test_breaks_needs_the_whole_architecture_to_fail_the_same_way(tmp_path: Path,
                                                                   sandbox: Sandbox) -> None:
    """A fixture models store by a real run: bert converted whole by the planted-bug exporter
    (every output + 1: wrong values). The gelu -> linear finding of that exporter occurs in
    bert and vit; it breaks bert only (vit was not converted)."""
    pytest.importorskip("transformers")
    from fuzzer.arch_campaign import ModelsConfig, load_archs, run, select

    target = "fault-wrongmodel/ort-all"
    cfg = ModelsConfig(targets=[target], seeds=str(SEEDS), archs=["bert"], timeout=120)
    st = Store(tmp_path / "models")
    try:
        run(cfg, select(load_archs(SEEDS), ["bert"]), st)
        rows = arch_rows.rows(st)
    finally:
        st.close()
    assert [r.cls for r in rows] == ["wrong_values"]
    case = _gelu_linear()
    v = sandbox.run(case, target)
    assert v.outcome == Outcome.BUG
    idx = Index.load(SEEDS, [T + a for a in ("bert", "vit", "llama")])
    e = exposure("gl", case, v, idx, lambda c, t: sandbox.run(c, t), rows)
    assert e.occurs == [T + "bert", T + "vit"] and e.breaks == [T + "bert"] and e.models
    assert "it breaks 1 real architecture(s) (bert)" in e.line()
    # saved and read back as the reports read it
    save([e], tmp_path / "exposure.json", {"command": "test"})
    back = load(tmp_path / "exposure.json")["gl"]
    assert back == e and exposure_cell([back]) == "2 of 2, breaks 1"
    assert load(tmp_path / "none.json") == {} and exposure_cell([]) == "-"
    assert isinstance(back, Exposure)


# Writing a report collects the environment (platform.platform() runs `uname -p`): a process.
@pytest.mark.integration
def test_a_campaign_report_states_exposure_by_trigger_not_by_operator(tmp_path: Path) -> None:
    from fuzzer.report import Context, write
    from fuzzer.verdict import Stage, Symptom, Verdict

    case = _gelu_linear()
    v = Verdict("torchscript-17/ort-all", Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_VALUES,
                detail="output 0: 1/16 value(s) off")
    idx = Index.load(SEEDS, [T + a for a in ("bert", "llama")])
    e = exposure("gl", case, v, idx)
    md, _ = write(case, v, "gl", tmp_path, Context(archs=["transformers:bert"] * 9,
                                                    chain=["aten::gelu"], exposure=e.line()))
    text = md.read_text()
    assert f"- **Real-world exposure:** {e.line()}" in text
    assert "appears in 9 mined" not in text  # the operator count gives way

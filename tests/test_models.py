"""`convfuzz models`: whole mined architectures built from their configs (real transformers
models, tiny sizes, random weights), converted, run and judged; rows in the store; resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer import arch_rows
from fuzzer.arch_campaign import (
    ModelsConfig,
    ModelsError,
    load_archs,
    run,
    select,
    summarize,
)
from fuzzer.generate import default_seeds
from fuzzer.models import Arch, verdict_class
from fuzzer.store import Store
from fuzzer.verdict import Outcome, Stage, Symptom, Verdict

pytest.importorskip("transformers")

SEEDS = default_seeds()


def test_verdict_classes_follow_the_taxonomy() -> None:
    cases = [
        (Verdict("t", Outcome.PASS), "correct"),
        (Verdict("t", Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_SHAPE), "wrong_values"),
        (Verdict("t", Outcome.BUG, Stage.GRAPH_OPTIMIZATION, Symptom.WRONG_VALUES),
         "wrong_values"),  # blamed on a rewrite: still wrong values
        (Verdict("t", Outcome.BUG, Stage.VALIDATION, Symptom.INVALID_MODEL), "invalid_model"),
        (Verdict("t", Outcome.BUG, Stage.RUNTIME_RUN, Symptom.PROCESS_DEATH), "crash"),
        (Verdict("t", Outcome.UNSUPPORTED, Stage.NODE_CONVERSION, Symptom.UNSUPPORTED),
         "unsupported"),
        (Verdict("t", Outcome.INVALID, Stage.EAGER, Symptom.CRASH), "build_failed"),
    ]
    for v, cls in cases:
        assert verdict_class(v) == cls


def test_selection_by_name_modality_and_sample() -> None:
    archs = load_archs(SEEDS)
    assert len(archs) > 300 and all(a.name.startswith("transformers:") for a in archs)
    assert [a.name for a in select(archs, ["bert", "transformers:vit"])] == [
        "transformers:bert", "transformers:vit"]
    audio = select(archs, modalities=["audio"])
    assert audio and {a.modality for a in audio} == {"audio"}
    sample = select(archs, limit=5, seed=3)
    assert len(sample) == 5 and sample == select(archs, limit=5, seed=3)
    with pytest.raises(ModelsError, match="unknown architecture 'nope'"):
        select(archs, ["nope"])
    with pytest.raises(ModelsError, match="unknown modality"):
        select(archs, modalities=["smell"])


@pytest.mark.integration
def test_real_architecture_passes_a_planted_bug_fails_and_resume_skips(tmp_path: Path
                                                                         ) -> None:
    """bert, built from its tiny config exactly as mining built it, converts correctly with
    the TorchScript exporter; the planted-bug exporter (every output + 1) gives a
    wrong-values row; an exporter that aborts the worker gives a
    crash row and the run goes on; a second run over the same store judges nothing again."""
    archs = select(load_archs(SEEDS), ["bert"])
    targets = ["torchscript-17/ort-all", "fault-wrongmodel/ort-all", "fault-abort/ort-all"]
    cfg = ModelsConfig(targets=targets, seeds=str(SEEDS), archs=["bert"], timeout=120)
    st = Store(tmp_path / "s")
    try:
        prog = run(cfg, archs, st)
        assert (prog.done, prog.skipped) == (3, 0)
        rows = {r.target: r for r in arch_rows.rows(st)}
        assert rows["torchscript-17/ort-all"].cls == "correct", rows["torchscript-17/ort-all"]
        wrong = rows["fault-wrongmodel/ort-all"]
        assert wrong.cls == "wrong_values" and wrong.failed
        assert wrong.verdict.symptom == Symptom.WRONG_VALUES
        assert "value(s) off" in wrong.verdict.detail
        assert wrong.verdict.evidence["architecture"] == "transformers:bert"
        crash = rows["fault-abort/ort-all"]
        assert (crash.cls, crash.verdict.symptom) == ("crash", Symptom.PROCESS_DEATH)
        assert {r.modality for r in rows.values()} == {"text"}
        created = {t: r.created for t, r in rows.items()}
        (s,) = summarize(arch_rows.rows(st), ["fault-wrongmodel/ort-all"])
        assert (s.counts["wrong_values"], s.failing, s.built, s.converted) == (1, 1, 1, 1)

        again = run(cfg, archs, st)  # --resume: every pair is recorded already
        assert (again.done, again.skipped) == (0, 3)
        assert {r.target: r.created for r in arch_rows.rows(st)} == created
    finally:
        st.close()


@pytest.mark.integration
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, said in ((["--arch", "nope"], "unknown architecture 'nope'"),
                       (["--arch", "bert", "-t", "nope/ort-all"], "unknown target"),
                       (["--seeds", str(tmp_path)], "no mined architectures")):
        r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "models", *args,
                            "--out", str(tmp_path / "s")], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, r.stderr
        assert said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "s").exists()  # bad input writes no store


def test_arch_record_round_trips() -> None:
    rec = json.loads((SEEDS / "archs.json").read_text())["archs"]
    a = Arch.from_record(next(r for r in rec if r["name"] == "transformers:bert"))
    assert Arch.from_record(a.to_dict()) == a
    assert a.model_type == "bert" and a.inputs["input_ids"][1] == [1, 8]


@pytest.mark.integration
def test_each_target_gets_a_pristine_architecture() -> None:
    """donut-swin exported by TorchScript and then by the dynamo exporter, the same module
    object, failed torch.export's data-dependent guard (Eq(u0, 1)); exported alone it
    passes. Each target gets a fresh copy, so the order of targets changes nothing."""
    from fuzzer.models import build, judge

    (arch,) = select(load_archs(SEEDS), ["donut-swin"])
    built = build(arch)
    first = judge(arch, "torchscript-17/ort-all", built)
    then = judge(arch, "dynamo/ort-all", built)
    assert (first.outcome, then.outcome) == (Outcome.PASS, Outcome.PASS), (first.detail,
                                                                           then.detail)

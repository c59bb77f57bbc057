"""`convfuzz analyze` on architecture verdicts (fuzzer/arch_analysis.py): the per-target table
and the sequence hypothesis at architecture level."""

from __future__ import annotations

import json
from pathlib import Path

from fuzzer import arch_rows
from fuzzer.analyze import compute
from fuzzer.models import Arch
from fuzzer.plots import blocks
from fuzzer.seeds import load_seeds
from fuzzer.store import Store
from fuzzer.verdict import Outcome, Stage, Symptom, Verdict

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
ASR = ["nemotron3_5_asr", "nemotron_asr_streaming", "parakeet_rnnt", "parakeet_tdt"]
TEXT = ["bert", "gpt2", "llama", "vit", "albert", "t5", "bart", "roberta", "mistral", "qwen2"]
T = "dynamo/ort-all"


def _store(root: Path) -> Path:
    """Verdicts as `convfuzz models` records them: the four ASR architectures crash on the
    dynamo export (as they do, see docs), ten others convert correctly, one does not build."""
    archs = {a["name"]: a for a in json.loads((SEEDS / "archs.json").read_text())["archs"]}
    st = Store(root)
    try:
        for name in ASR + TEXT + ["xlstm"]:
            arch = Arch.from_record(archs[f"transformers:{name}"])
            if name in ASR:
                v = Verdict(T, Outcome.BUG, Stage.NODE_CONVERSION, Symptom.CRASH,
                            detail="ValueError: Cannot view a tensor")
                cls = "crash"
            elif name == "xlstm":
                v, cls = Verdict(T, Outcome.INVALID, Stage.EAGER, Symptom.CRASH), "build_failed"
            else:
                v, cls = Verdict(T, Outcome.PASS), "correct"
            arch_rows.record(st, arch, v, cls)
    finally:
        st.close()
    return root


def test_architecture_table_and_sequence_hypothesis(tmp_path: Path) -> None:
    rep = compute([_store(tmp_path / "m")], SEEDS)
    a = rep.archs
    assert a is not None
    (t,) = a.targets
    assert (t.target, t.built, t.failing, t.counts["correct"], t.counts["build_failed"]) == \
        (T, 14, 4, 10, 1)
    assert abs(t.share - 4 / 14) < 1e-9 and t.lo < t.share < t.hi
    assert a.failing == [f"transformers:{n}" for n in ASR] and len(a.passing) == 10
    assert {f["key"] for f in a.failures} == {"node_conversion/crash"}
    # the hypothesis: n-grams of failing vs passing architectures, Fisher + BH
    assert a.enrich and all(0 <= e.p <= 1 and e.p <= e.q <= 1 for e in a.enrich)
    top = a.enrich[0]
    assert (top.fail_with, top.pass_with) == (4, 0)  # in every failing one, in no passing one
    seeds = load_seeds(SEEDS)
    for arch in a.failing:
        assert arch in seeds.archs_containing(top.ngram)
    md = "\n".join(str(b) for b in blocks(rep, None, SEEDS))
    assert "Whole architectures" in md and "4/14" in md and "Sequence hypothesis" in md
    json.dumps(rep.to_dict())  # report.json stays strict JSON
    # a store without architecture verdicts has no table
    empty = Store(tmp_path / "e")
    empty.close()
    assert compute([tmp_path / "e"], SEEDS).archs is None

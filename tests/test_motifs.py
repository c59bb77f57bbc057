"""Motifs: mined multi-operator blocks (seeds/motifs.json), Case constants, the motif sampler
with its near misses, and a motif Case through both exporters, the shrinker and a repro."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fuzzer.blocks import names_of
from fuzzer.case import Case, CaseError
from fuzzer.model import infer, materialize
from fuzzer.motif_sampler import (
    NEAR_MISSES,
    SEEDS,
    consistent,
    fragment_of,
    instance_case,
    motif_case,
    resize,
)
from fuzzer.motifs import MotifStats, load_motifs, motif_key
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig
from fuzzer.sandbox import Sandbox
from fuzzer.shrink import Budget, shrink
from fuzzer.verdict import Outcome
from tests.conftest import CASES

_HEAD, MOTIFS = load_motifs(SEEDS / "motifs.json")
TF = "transformers:"


def _named(name: str) -> list[Any]:
    return [m for m in MOTIFS if name in m.name]


def _archs(name: str) -> set[str]:
    return {a.removeprefix(TF) for m in _named(name) for a in m.archs}


# -- the committed mined data -------------------------------------------------------------------
@pytest.mark.parametrize(("name", "archs"), [
    ("rms_norm", {"llama", "mistral", "qwen2", "gemma", "phi3"}),
    ("gelu_tanh", {"gpt2"}),
    ("rotary", {"llama", "mistral", "qwen2", "phi3"}),
    ("swiglu", {"llama", "mistral", "qwen2"}),
    ("quick_gelu", {"clip", "altclip", "chinese_clip"}),  # x * sigmoid(1.702 x)
    ("conv_bn", {"resnet", "regnet", "levit"}),
    ("conv_act", {"resnet", "wav2vec2"}),
    ("pad_conv", {"mobilenet_v1", "mobilenet_v2"}),  # TF-style "same" padding
    ("pooler", {"bert", "albert"}),  # tanh(linear(x[:, 0]))
    ("attention_block", {"bert", "vit", "clip"}),  # q/k/v projections -> sdpa -> heads merged
])
def test_named_blocks_are_mined_with_the_architectures_that_contain_them(
        name: str, archs: set[str]) -> None:
    assert _named(name), f"no {name} motif in seeds/motifs.json"
    assert archs <= _archs(name)
    for m in _named(name):
        assert len(m.archs) >= 2 and m.count >= len(m.archs)


def test_the_rms_norm_and_gelu_tanh_motifs_carry_their_real_constants() -> None:
    rms = next(m for m in _named("rms_norm") if {"aten::pow", "aten::rsqrt"} <= set(m.ops))
    eps = [c["value"] for c in rms.instance["consts"] if c.get("scalar")]
    assert eps and all(0 < e <= 1e-4 for e in eps)
    pow_node = next(n for n in rms.instance["nodes"] if n["op"] == "aten::pow")
    assert pow_node["attrs"]["exponent"] == 2
    gelu = _named("gelu_tanh")[0]
    vals = sorted(c["value"] for c in gelu.instance["consts"] if c.get("scalar"))
    assert any(abs(v - 0.044715) < 1e-9 for v in vals)
    assert any(abs(v - 0.7978845608028654) < 1e-9 for v in vals)
    # GELU reads its input three times: fan-out from one shared input.
    (x,) = gelu.instance["inputs"]
    assert sum(a == x["name"] for n in gelu.instance["nodes"] for a in n["args"]) >= 3


def test_rotary_has_fan_in_and_fan_out() -> None:
    m = _named("rotary")[0]
    reads: dict[str, int] = {}
    for n in m.instance["nodes"]:
        for a in n["args"]:
            reads[a] = reads.get(a, 0) + 1
    assert max(reads.values()) >= 3  # q feeds the cos product and both halves
    assert any(len(n["args"]) == 2 and all(a.startswith("n") for a in n["args"])
               for n in m.instance["nodes"])  # the final add joins two branches


def test_a_named_block_spans_families_not_one_familys_variants() -> None:
    # pad_conv is in three nemotron ASR encoders and two mobilenets, among others: a budget
    # taken in order of spread alone kept 40 nemotron layers and no mobilenet
    for name in ("conv_bn", "conv_act", "pad_conv"):
        assert len({tuple(m.archs) for m in _named(name)}) >= 3, name
    assert {"mobilenet_v1", "nemotron_asr_streaming"} <= _archs("pad_conv")


def test_motifs_json_records_how_it_was_mined() -> None:
    assert _HEAD["command"] and len(_HEAD["archs"]) >= 100
    assert len(MOTIFS) >= 100 and _HEAD["frequent"] >= len(MOTIFS)


def test_mining_one_tiny_architecture_finds_the_blocks() -> None:
    pytest.importorskip("transformers")  # the `mine` extra (installed by `make install`)
    from fuzzer.mine_sources import trace_one

    rec = trace_one("transformers", "llama")
    st = MotifStats()
    st.add("llama", rec["graph"])
    found = {n for m in st.motifs.values() for n in names_of(m["instance"])}
    assert {"rms_norm", "rotary", "swiglu"} <= found


# -- Case constants -----------------------------------------------------------------------------
def _const_case(consts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": 1, "seed": 3, "inputs": [{"name": "x", "shape": [2, 4]}],
            "consts": consts, "nodes": [{"id": "n0", "op": "aten::mul", "args": ["x", "c"]}],
            "outputs": ["n0"]}


@pytest.mark.parametrize(("const", "msg"), [
    ({"name": "c", "shape": [2], "value": [1.0]}, "not numbers of shape"),
    ({"name": "c", "shape": [], "value": 1.0, "values": {"dist": "normal"}, "scalar": True},
     "takes a 'value'"),
    ({"name": "x", "shape": [], "value": 1.0}, "duplicate name"),
    ({"name": "c", "shape": [100], "value": [0.0] * 100}, "literal cap"),
    ({"name": "c", "shape": [4], "values": {"dist": "nope"}}, "known 'dist'"),
])
def test_bad_constants_are_one_line_errors(const: dict[str, Any], msg: str) -> None:
    with pytest.raises(CaseError, match=msg):
        Case.from_dict(_const_case([const]))


def test_constants_materialize_as_python_numbers_and_buffers() -> None:
    scalar = Case.from_dict(_const_case([{"name": "c", "shape": [], "dtype": "float64",
                                          "value": 0.5, "scalar": True}]))
    module, (x,) = materialize(scalar)
    assert module.scalars == {"c": 0.5} and not list(module.buffers())
    assert module(x)[0].equal(x * 0.5)
    literal = Case.from_dict(_const_case([{"name": "c", "shape": [4], "value": [1, 2, 3, 4]}]))
    module, (x,) = materialize(literal)
    assert module(x)[0].equal(x * module.const_c) and module.const_c.tolist() == [1, 2, 3, 4]
    drawn = Case.from_dict(_const_case([{"name": "c", "shape": [4],
                                         "values": {"dist": "normal", "scale": 1.0}}]))
    a, _ = materialize(drawn)
    b, _ = materialize(Case.from_json(drawn.to_json()))
    assert a.const_c.equal(b.const_c)  # keyed by (seed, name): the same every time


def test_cases_without_constants_keep_their_json_and_hash() -> None:
    text = (CASES / "good_chain.json").read_text()
    case = Case.from_json(text)
    assert "consts" not in case.to_json() and case.hash == Case.from_json(case.to_json()).hash


# -- the sampler --------------------------------------------------------------------------------
def test_exact_instances_keep_structure_constants_and_shape_relations() -> None:
    for m in [_named("rms_norm")[0], _named("gelu_tanh")[0], _named("rotary")[0],
              _named("swiglu")[0]]:
        base = instance_case(m, 0)
        assert motif_key(fragment_of(base)) == m.key
        before = infer(base)
        changed = 0
        for s in range(16):
            c, sizes = resize(np_rng(s, "t"), instance_case(m, s))
            changed += bool(sizes)
            assert [(n.op, n.args, set(n.attrs)) for n in c.nodes] == \
                [(n.op, n.args, set(n.attrs)) for n in base.nodes]
            assert [(k.name, k.value, k.scalar) for k in c.consts] == \
                [(k.name, k.value, k.scalar) for k in base.consts]
            after = infer(c)
            for old, new in sizes.items():  # each change keeps every shape's relations
                assert consistent(before, after, int(old), new) or len(sizes) > 1
            if m.name != ["rotary"]:  # no size there equals another's half by chance
                assert motif_key(fragment_of(c)) == m.key, (m.name, sizes)
        assert changed >= 4, m.name  # new sizes, not only the traced ones


def _leaves(d: Any, path: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        return {k2: v for k, x in d.items() for k2, v in _leaves(x, f"{path}.{k}").items()}
    if isinstance(d, list) and d and isinstance(d[0], (dict, list)):
        return {k2: v for i, x in enumerate(d) for k2, v in _leaves(x, f"{path}[{i}]").items()}
    return {path: d}


def test_near_misses_change_exactly_one_precondition() -> None:
    exact_cfg, near_cfg = GenConfig(near_miss=0.0), GenConfig(near_miss=1.0)
    kinds: set[str] = set()
    for s in range(160):
        exact, near = motif_case(s, None, exact_cfg), motif_case(s, None, near_cfg)
        nm = near.origin["near_miss"]
        assert exact.origin["motif"] == near.origin["motif"]
        if nm is None:
            assert exact.identity() == near.identity()
            continue
        kinds.add(nm["kind"])
        a, b = _leaves(exact.identity()), _leaves(near.identity())
        diff = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        if nm["kind"] in ("axis", "keepdim", "constant", "broadcast"):
            assert len(diff) == 1, (nm, diff)
        elif nm["kind"] == "dtype":
            assert diff and all(k.endswith(".dtype") for k in diff)
            assert {b[k] for k in diff} == {nm["to"]}
        elif nm["kind"] == "dynamic":
            assert diff and all(".dynamic" in k for k in diff)
        elif nm["kind"] == "eps_placement":
            assert sorted(near.ops) == sorted(exact.ops) and all(".args" in k or k.endswith(
                ".id") or ".op" in k or ".attrs" in k or "outputs" in k for k in diff)
        infer(near)
    assert {"axis", "constant", "dtype", "broadcast", "dynamic"} <= kinds
    assert set(NEAR_MISSES) >= kinds


def test_eps_placement_moves_the_epsilon_past_rsqrt() -> None:
    m = next(m for m in _named("rms_norm") if "aten::rsqrt" in m.ops)
    case = instance_case(m, 0)
    got = NEAR_MISSES["eps_placement"](np_rng(0, "t"), case)
    assert got is not None
    c, info = got
    by_id = {n.id: n for n in c.nodes}
    add = by_id[info["at"]]
    assert by_id[add.args[0]].op == "aten::rsqrt" and add.args[1] in {k.name for k in c.consts}
    infer(c)


def test_same_seed_same_case_bytes() -> None:
    cfg = GenConfig(near_miss=0.5)
    for s in range(20):
        assert motif_case(s, None, cfg).to_json() == motif_case(s, None, cfg).to_json()


def test_vocabulary_restricts_the_motifs() -> None:
    vocab = ["aten::pow", "aten::mean", "aten::add", "aten::rsqrt", "aten::mul", "aten::to"]
    for s in range(10):
        assert set(motif_case(s, vocab).ops) <= set(vocab)


# -- a motif Case through the pipeline ---------------------------------------------------------
@pytest.fixture(scope="module")
def rms_case() -> Case:
    m = next(m for m in _named("rms_norm") if {"aten::rsqrt", "aten::mul"} <= set(m.ops))
    return instance_case(m, 5)


@pytest.mark.parametrize("target", ["torchscript-17/ort-all", "dynamo/ort-all"])
def test_a_motif_case_exports_and_runs_on_both_exporters(sandbox: Sandbox, rms_case: Case,
                                                         target: str) -> None:
    v = sandbox.run(rms_case, target)
    assert v.outcome == Outcome.PASS, v.detail


def test_a_motif_case_shrinks_to_the_planted_pair_and_keeps_its_constant(
        sandbox: Sandbox, rms_case: Case) -> None:
    target = "fault-pair-add-rsqrt"
    v = sandbox.run(rms_case, target)
    assert v.outcome == Outcome.BUG
    res = shrink(rms_case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert res.case.ops == ["aten::add", "aten::rsqrt"]
    assert all(k.scalar for k in res.case.consts) and len(res.case.consts) == 1
    assert sandbox.run(res.case, target).outcome == Outcome.BUG


@pytest.mark.parametrize(("block", "target", "fusion", "size"), [
    ("conv_act", "torchscript-17/ort-all", "onnxruntime:FusedConv", 2),
    ("conv_bn", "dynamo/onnxscript-ort-fusions/ort-disabled",
     "onnxscript.rewriter:FuseBatchNormIntoConv", 2),
    ("pad_conv", "dynamo/onnxscript-ort-fusions/ort-disabled",
     "onnxscript.rewriter:FuseConvPad", 2),
    ("pooler", "torchscript-17/ort-all", "onnxruntime:FusedGemm", 2),
    # the whole block, heads merged again (13+ operators: past MAX_NODES, see motifs.py)
    ("attention_block", "dynamo/onnxscript-ort-fusions/ort-disabled",
     "onnxscript.ort_fusions:attention", 13),
])
def test_named_blocks_reach_the_fusions_they_are_named_for(block: str, target: str,
                                                           fusion: str, size: int) -> None:
    """One of the smallest instances of `size` or more operators fires the fusion on the real
    exporter and rewriter."""
    from fuzzer.oracle import judge

    fired = []
    pool = [m for m in _named(block) if len(m.ops) >= size]
    for m in sorted(pool, key=lambda m: (len(m.ops), m.key))[:6]:
        v = judge(instance_case(m, 3), target)
        assert v.outcome == Outcome.PASS, (m.ops, v.detail)
        fired.append(v.evidence.get("fusions", {}).get(fusion, 0))
    assert any(fired), (block, fired)


def test_a_motif_case_becomes_a_repro(tmp_path: Path, rms_case: Case) -> None:
    from fuzzer.oracle import judge
    from fuzzer.repro import repro_script
    from tests.test_report import run_repro

    v = judge(rms_case, "torchscript-17/ort-all")
    src = repro_script(rms_case, v, "m1")
    eps = next(k.value for k in rms_case.consts if k.scalar)
    assert f"= {eps!r}" in src  # the epsilon is a literal in the model's source
    r = run_repro(src, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(rms_case.to_json())["consts"]

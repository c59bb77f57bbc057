"""Samplers: determinism, the real arm follows mined transitions with mined attributes, and
generated Cases run in eager."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fuzzer.generate import GenConfig, Markov, real_case, weighted_order
from fuzzer.oracle import Invalid, reference
from fuzzer.rng import np_rng
from fuzzer.sampling import samplers

SAMPLERS = samplers()

CHAINS = [
    (["aten::layer_norm"], 40), (["aten::linear"], 60), (["aten::gelu"], 20),
    (["aten::layer_norm", "aten::linear"], 30), (["aten::linear", "aten::gelu"], 15),
    (["aten::gelu", "aten::linear"], 12), (["aten::linear", "aten::add"], 10),
    (["aten::add"], 10), (["aten::add", "aten::layer_norm"], 9),
    (["aten::layer_norm", "aten::linear", "aten::gelu"], 8),
]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeds directory in the mined format (data, not a stand-in for torch)."""
    d = tmp_path_factory.mktemp("seeds")
    by_n: dict[str, list[dict]] = {"1": [], "2": [], "3": [], "4": []}
    for ops, n in CHAINS:
        by_n[str(len(ops))].append({"ops": ops, "count": n, "archs": [0]})
    (d / "ngrams.json").write_text(json.dumps({"format": 1, "max_n": 4,
                                               "archs": ["transformers:bert"], "ngrams": by_n}))
    ops = {"aten::layer_norm": {"count": 40, "args": {"eps": {"1e-12": 40}}},
           "aten::gelu": {"count": 20, "args": {"approximate": {'"tanh"': 20}}}}
    (d / "ops.json").write_text(json.dumps({"format": 1, "ops": ops}))
    (d / "archs.json").write_text(json.dumps({"format": 1, "archs": []}))
    return d


@pytest.mark.parametrize("sampler", ["random", "real", "mixed", "mutate"])
def test_same_seed_same_bytes(sampler: str, seeds: Path) -> None:
    cfg = GenConfig(seeds=str(seeds))
    for s in range(20):
        a = SAMPLERS[sampler](s, None, cfg).to_json()
        assert a == SAMPLERS[sampler](s, None, cfg).to_json()
    assert SAMPLERS[sampler](1, None, cfg).hash != SAMPLERS[sampler](2, None, cfg).hash


def test_real_walks_follow_mined_transitions_with_mined_attrs(seeds: Path) -> None:
    pairs = {tuple(o) for o, _ in CHAINS if len(o) == 2}
    cfg = GenConfig(seeds=str(seeds), nondefault=0.0, min_len=2, max_len=4)
    seen_pairs = 0
    for s in range(60):
        case = real_case(s, None, cfg)
        assert case.origin["sampler"] == "real"
        for a, b in zip(case.ops, case.ops[1:], strict=False):
            assert (a, b) in pairs, case.ops
            seen_pairs += 1
        for n in case.nodes:
            if n.op == "aten::layer_norm":
                assert n.attrs["eps"] == 1e-12
            if n.op == "aten::gelu":
                assert n.attrs["approximate"] == "tanh"
    assert seen_pairs > 30


def test_random_arm_draws_from_the_real_arms_vocabulary(seeds: Path) -> None:
    mined = {o for chain, _ in CHAINS for o in chain}
    drawn = {o for s in range(80) for o in SAMPLERS["random"](s, None, GenConfig(
        seeds=str(seeds))).ops}
    assert drawn <= mined and len(drawn) >= 3
    wide = {o for s in range(80) for o in SAMPLERS["random"](s, None, GenConfig(
        seeds=str(seeds), vocabulary="catalogue")).ops}
    assert len(wide - mined) > 20


def test_markov_backs_off_to_shorter_prefixes(seeds: Path) -> None:
    from fuzzer.generate import _load

    m = Markov(_load(str(seeds)), ["aten::layer_norm", "aten::linear", "aten::gelu",
                                   "aten::add"])
    assert m.counts(["aten::layer_norm", "aten::linear"]) == {"aten::gelu": 8}
    assert m.counts(["aten::gelu", "aten::linear"]) == {"aten::gelu": 15, "aten::add": 10}
    assert m.counts([]) == {"aten::layer_norm": 40, "aten::linear": 60, "aten::gelu": 20,
                            "aten::add": 10}


def test_arg_table_is_arg_values_as_drawn_and_every_draw_is_a_fresh_object(
        seeds: Path) -> None:
    from fuzzer.generate import _load

    s = _load(str(seeds))
    s.ops["aten::conv2d"] = {"args": {"stride": {"[1, 1]": 6, "[2, 2]": 2}}}  # this copy only
    encoded, cdf = s.arg_table("aten::conv2d", "stride")
    assert [json.loads(e) for e in encoded] == [v for v, _ in s.arg_values("aten::conv2d",
                                                                            "stride")]
    assert cdf.tolist() == [0.75, 1.0]
    # The table's draw is numpy's weighted choice, draw for draw (same stream, same index).
    p = np.array([0.75, 0.25])
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert [int(a.choice(2, p=p)) for _ in range(200)] == [
        int(cdf.searchsorted(b.random(), "right")) for _ in range(200)]
    assert s.arg_table("aten::conv2d", "stride")[0] is encoded  # built once
    assert s.arg_table("aten::conv2d", "padding") is None
    del s.ops["aten::conv2d"]
    cfg = GenConfig(seeds=str(seeds), nondefault=0.0, min_len=3, max_len=4)
    a, b = real_case(3, None, cfg), real_case(3, None, cfg)
    for na, nb in zip(a.nodes, b.nodes, strict=True):
        for k, v in na.attrs.items():
            if isinstance(v, (list, dict)):
                assert v is not nb.attrs[k]  # a Case that edits its attrs shares nothing


def test_markov_order_is_weighted_order_of_its_counts(seeds: Path) -> None:
    from fuzzer.generate import _load

    m = Markov(_load(str(seeds)), ["aten::layer_norm", "aten::linear", "aten::gelu",
                                   "aten::add"])
    for history in ([], ["aten::linear"], ["aten::gelu", "aten::linear"], ["aten::add",
                                                                           "aten::gelu"]):
        for k in range(5):
            want = weighted_order(np_rng(k, "o"), m.counts(history))
            assert m.order(np_rng(k, "o"), history) == want, history
    assert m.order(np_rng(0, "o"), ["aten::relu"]) == []  # nothing mined follows it


def test_weighted_order_prefers_frequent_ops() -> None:
    rng = np_rng(0, "t")
    firsts = [weighted_order(rng, {"a": 90, "b": 10})[0] for _ in range(400)]
    assert 0.8 < firsts.count("a") / 400 < 0.97


def test_random_cases_run_in_eager() -> None:
    bad = 0
    for s in range(150):
        try:
            reference(SAMPLERS["random"](s, None, GenConfig()))
        except Invalid:
            bad += 1
    assert bad / 150 <= 0.10


def test_mutants_edit_a_corpus_case_and_still_fit() -> None:
    from fuzzer.model import infer
    from fuzzer.mutate import corpus_cases, default_corpus

    parents = {c.hash: c for c in corpus_cases(default_corpus())}
    kinds = set()
    for s in range(40):
        m = SAMPLERS["mutate"](s, None, GenConfig())
        assert m.origin["sampler"] == "mutate" and m.origin["parent"] in parents
        assert m.origin["mutations"], m.origin
        kinds |= set(m.origin["mutations"])
        infer(m)  # the shape rules accept every mutant
        p = parents[m.origin["parent"]]
        assert m.ops == p.ops  # edits of values, dtypes and sizes, not of the chain
    assert kinds >= {"argument", "dtype", "size", "dynamic"}


def test_shape_inference_is_memoized_without_sharing_results_or_hiding_errors() -> None:
    from fuzzer import ops
    from fuzzer.ops.spec import _MEMO, Meta

    spec = ops.get("aten::matmul")
    a, b = Meta((3, 4), "float32"), Meta((4, 5), "float32")
    first = spec.infer([a, b], spec.defaults())
    assert any(k[:2] == (spec.name, (a, b)) for k in _MEMO)
    first.append(Meta((1,), "float32"))  # a caller's edit must not reach the memo
    assert spec.infer([a, b], spec.defaults()) == [Meta((3, 5), "float32")]
    for _ in range(2):  # a shape error is raised every time, never remembered as a result
        with pytest.raises(Exception, match=r"\S"):
            spec.infer([a, Meta((7, 5), "float32")], spec.defaults())


def test_a_rejection_is_remembered_as_the_same_error_but_running_out_of_memory_is_not() -> None:
    import dataclasses

    from fuzzer import ops
    from fuzzer.ops.spec import _MEMO, Meta

    spec = ops.get("aten::matmul")
    bad = [Meta((3, 4), "float32"), Meta((6, 5), "float32")]
    with pytest.raises(Exception) as first:
        spec.infer(bad, spec.defaults())
    (kept,) = [v for k, v in _MEMO.items() if k[:2] == (spec.name, tuple(bad))]
    assert kept.__traceback__ is None and kept.__context__ is None  # no frames held
    with pytest.raises(type(first.value)) as again:
        spec.infer(bad, spec.defaults())
    assert str(again.value) == str(first.value) and again.value is not kept

    # An op that runs out of memory once (a fault, injected) fits when memory is back.
    calls = []

    def flaky(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("injected")
        return spec.fn(*a, **k)

    spec2 = dataclasses.replace(spec, name="test::flaky_matmul", fn=flaky)
    ok = [Meta((3, 4), "float32"), Meta((4, 5), "float32")]
    with pytest.raises(MemoryError):
        spec2.infer(ok, spec.defaults())
    assert spec2.infer(ok, spec.defaults()) == [Meta((3, 5), "float32")]

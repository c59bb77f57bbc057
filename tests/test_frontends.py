"""Frontends as registry entries: a Case names its framework by its operators' prefix,
PyTorch Cases keep their bytes and hashes, and TensorFlow Cases are made, validated and
shape-checked without TensorFlow (the driver never imports it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer import frontends
from fuzzer.case import Case, CaseError, load
from fuzzer.model import infer
from fuzzer.ops import get
from fuzzer.sampling import GenConfig, GenerationError, draw
from fuzzer.tf import catalogue
from tests.conftest import CASES

# Hashes computed by main before the frontend registry existed (commit d5a0657).
PINNED = {"add_layer_norm_2d.json": "8b1aa18ce6eb3777", "atan2_beside_relu.json":
          "1f4afee377f0780d", "clamp_clamp_rank0.json": "453c5583e66fc44b",
          "diagonal_bool.json": "2b227687b18685e9"}


def test_pytorch_cases_keep_their_bytes_and_hashes() -> None:
    for name, h in PINNED.items():
        case = load(CASES / name)
        assert case.hash == h
        assert frontends.of_case(case).name == "pytorch"
    assert draw("random", 7, None, None).hash == "7b83bb7bba65b54a"


def tf_case(seed: int, vocab: list[str] | None = None, max_len: int = 5) -> Case:
    return draw("random", seed, vocab or catalogue.vocabulary(),
                GenConfig(max_len=max_len, vocabulary="catalogue"))


def single(name: str, seed: int = 3) -> Case:
    """A single-operator Case of `name`: the first seed from `seed` whose fresh input fits
    (some entries constrain it: depth_to_space wants channels divisible by 4)."""
    for s in range(seed, seed + 40):
        try:
            return tf_case(s, [name], max_len=1)
        except GenerationError:
            continue
    raise AssertionError(f"{name}: no fresh input fits in 40 draws")


def test_same_seed_same_tf_case_bytes() -> None:
    a, b = tf_case(11), tf_case(11)
    assert a.to_json() == b.to_json() and a.hash == b.hash
    assert all(op.startswith("tf::") for op in a.ops)
    assert frontends.of_case(a).name == "tensorflow"
    assert tf_case(12).hash != a.hash


def test_a_case_mixing_frameworks_is_a_one_line_error() -> None:
    d = {"schema": 1, "seed": 1, "inputs": [{"name": "x", "shape": [2, 3]}],
         "nodes": [{"id": "n0", "op": "aten::relu", "args": ["x"]},
                   {"id": "n1", "op": "tf::relu", "args": ["n0"]}], "outputs": ["n1"]}
    with pytest.raises(CaseError, match="tensorflow operator in a pytorch Case"):
        Case.from_dict(d)
    d["nodes"][1]["op"] = "tf::no_such_op"
    with pytest.raises(CaseError, match="unknown operator 'tf::no_such_op'"):
        Case.from_dict(d)


def test_every_tf_entry_renders_and_its_shape_rule_accepts_its_own_draws() -> None:
    assert len(catalogue.REGISTRY) >= 80
    for name in catalogue.vocabulary():
        spec = get(name)
        assert spec.name == name and name.startswith("tf::")
        case = single(name)  # generation ran the entry's shape rule
        assert case.ops == [name]
        metas = infer(case)
        n = case.nodes[0]
        params = {p: f"self.{p}" for p in spec.param_shapes(
            {**spec.defaults(), **n.attrs}, [metas[a][0] for a in n.args])}
        src = spec.render(list(n.args), n.attrs, params)
        compile(src, name, "eval")  # the template is TF source with every field filled
        assert "{" not in src.replace("{'", "")


def test_the_real_arm_walks_the_mined_keras_ngrams() -> None:
    seeds = str(Path(__file__).resolve().parent.parent / frontends.get("tensorflow").seeds)
    cases = [draw("real", s, catalogue.vocabulary(), GenConfig(seeds=seeds)) for s in range(6)]
    assert all(op.startswith("tf::") for c in cases for op in c.ops)
    assert all(c.origin["sampler"] == "real" for c in cases)

"""Mining real (tiny, config-built) transformers architectures end to end."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

pytest.importorskip("transformers")

from fuzzer.mine import chains, mine
from fuzzer.seeds import Seeds, load_seeds

ARCHS = "transformers:bert,gpt2,vit,no_such_model"
FILES = ("ngrams.json", "ops.json", "archs.json")


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    mine([ARCHS], a, progress=lambda name, status: seen.append((name, status)))
    mine([ARCHS], b)
    return a, b, seen


@pytest.fixture(scope="module")
def seeds(mined: tuple[Path, Path, list[tuple[str, str]]]) -> Seeds:
    return load_seeds(mined[0])


def test_statuses_and_progress(mined: tuple[Path, Path, list[tuple[str, str]]],
                               seeds: Seeds) -> None:
    by_name = {a["name"]: a for a in seeds.archs}
    assert set(by_name) == {"transformers:bert", "transformers:gpt2", "transformers:vit",
                            "transformers:no_such_model"}
    for name in ("transformers:bert", "transformers:gpt2", "transformers:vit"):
        assert by_name[name]["status"] == "ok"
        assert by_name[name]["method"] == "export"
        assert by_name[name]["nodes"] > 20
    bad = by_name["transformers:no_such_model"]
    assert bad["status"] == "failed" and bad["error"]
    assert by_name["transformers:vit"]["modality"] == "vision"
    assert by_name["transformers:gpt2"]["structure"] == "decoder"
    assert sorted(mined[2]) == sorted((n, a["status"]) for n, a in by_name.items())
    assert seeds.meta["counts"]["ok"] == 3 and seeds.meta["counts"]["failed"] == 1
    assert seeds.meta["torch"] and seeds.meta["transformers"]


def test_ngrams(seeds: Seeds) -> None:
    assert "transformers:bert" in seeds.archs_containing(["aten::layer_norm", "aten::linear"])
    assert seeds.archs_containing(["aten::conv2d"]) == ["transformers:vit"]
    sdpa = seeds.archs_containing(["aten::scaled_dot_product_attention"])
    assert set(sdpa) >= {"transformers:bert", "transformers:vit"}
    # GPT-2: Conv1D is addmm, gelu_new is spelled out as pow/mul/tanh.
    assert seeds.archs_containing(["aten::view", "aten::addmm", "aten::view"]) == [
        "transformers:gpt2"]
    assert "transformers:gpt2" in seeds.archs_containing(["aten::mul", "aten::tanh", "aten::add"])
    assert "transformers:bert" in seeds.archs_containing(["aten::linear", "aten::gelu"])
    count, archs = seeds.ngrams[1][("aten::linear",)]
    assert count >= 10 and archs == ["transformers:bert", "transformers:vit"]
    assert seeds.archs_containing(["aten::no_such_op", "aten::linear"]) == []
    for n in range(1, 5):
        assert seeds.ngrams[n], n
        assert all(len(k) == n for k in seeds.ngrams[n])
    with pytest.raises(ValueError):
        seeds.archs_containing(["aten::add"] * 5)


def test_attribute_values(seeds: Seeds) -> None:
    # BERT's and ViT's default layer_norm_eps is 1e-12, GPT-2's 1e-5.
    eps = dict(seeds.arg_values("aten::layer_norm", "eps"))
    assert 1e-12 in eps and 1e-5 in eps
    vit = next(a for a in seeds.archs if a["name"] == "transformers:vit")
    p = vit["config"]["patch_size"]
    strides = [v for v, _ in seeds.arg_values("aten::conv2d", "stride")]
    assert strides == [[p, p]]  # the patch embedding: stride == patch size
    conv = seeds.ops["aten::conv2d"]
    assert conv["inputs"]["input"]["ranks"] == {"4": 1}
    assert conv["outputs"]["dtypes"] == {"float32": 1}
    assert seeds.ops["aten::linear"]["inputs"]["weight"]["ranks"] == {"2": sum(
        seeds.ops["aten::linear"]["inputs"]["weight"]["ranks"].values())}
    assert all(seeds.ops[op]["aten"] for op in ("aten::linear", "aten::layer_norm"))


def test_deterministic(mined: tuple[Path, Path, list[tuple[str, str]]]) -> None:
    a, b, _ = mined
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    json.loads((a / "meta.json").read_text())


def test_chains_counts_paths() -> None:
    g = nx.DiGraph()
    g.add_nodes_from([(0, {"op": "a"}), (1, {"op": "b"}), (2, {"op": "c"})])
    g.add_edges_from([(0, 1), (1, 2), (0, 2)])
    c = chains(g)
    assert c[("a",)] == 1 and c[("a", "c")] == 1 and c[("a", "b", "c")] == 1
    assert sum(v for k, v in c.items() if len(k) == 2) == 3


def test_sources_guarded(tmp_path: Path) -> None:
    r = mine(["timm:resnet18"], tmp_path)  # timm is not installed here: skipped, with why
    if r.skipped_sources:
        assert "timm" in r.skipped_sources
        assert load_seeds(tmp_path).meta["skipped_sources"]["timm"]
    with pytest.raises(ValueError):
        mine(["no_such_source"], tmp_path)

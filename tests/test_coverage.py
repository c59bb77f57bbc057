"""Coverage against the committed seeds: the catalogue covers the mined operators, and the
architectural coverage of a set of Cases counts mined n-grams along data flow."""

from __future__ import annotations

from pathlib import Path

from fuzzer.coverage import Architectural, architectural, catalogue
from fuzzer.dataflow import case_ngrams
from fuzzer.generate import GenConfig, default_seeds, real_case
from fuzzer.seeds import load_seeds
from tests.conftest import make_case

SEEDS = default_seeds()


def test_committed_seeds_come_from_150_plus_architectures() -> None:
    seeds = load_seeds(SEEDS)
    traced = [a for a in seeds.archs if a.get("status") in ("ok", "fallback")]
    assert len(traced) >= 150
    assert seeds.archs_containing(["aten::layer_norm", "aten::linear"])


def test_catalogue_covers_95_percent_of_mined_occurrences() -> None:
    cov = catalogue(load_seeds(SEEDS).ops)
    assert cov["share"] >= 0.95, cov["missing"][:10]


def test_case_ngrams_follow_data_flow_not_node_order() -> None:
    # n1 reads x, not n0: (relu, sigmoid) is adjacent in node order but not a data-flow pair.
    case = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::sigmoid", "args": ["x"]},
                      {"id": "n2", "op": "aten::add", "args": ["n0", "n1"]}],
                     inputs=[{"name": "x", "shape": [4]}])
    grams = case_ngrams(case)
    assert ("aten::relu", "aten::add") in grams and ("aten::sigmoid", "aten::add") in grams
    assert ("aten::relu", "aten::sigmoid") not in grams


def test_architectural_coverage_of_real_cases_grows_and_is_bounded() -> None:
    mined = load_seeds(SEEDS).ngrams
    cfg = GenConfig(seeds=str(Path(SEEDS)))
    seen: set[tuple[str, ...]] = set()
    shares = []
    for s in range(40):
        seen |= case_ngrams(real_case(s, None, cfg))
        shares.append(architectural(seen, mined)[2]["share"])
    assert 0 < shares[0] <= shares[-1] <= 1
    assert architectural(seen, mined)[1]["exercised"] >= 10


def test_campaign_coverage_added_case_by_case_equals_the_set_at_once() -> None:
    mined = load_seeds(SEEDS).ngrams
    cfg = GenConfig(seeds=str(Path(SEEDS)))
    running = Architectural(mined)
    seen: set[tuple[str, ...]] = set()
    for s in range(30):
        grams = case_ngrams(real_case(s, None, cfg))
        running.add(grams)
        seen |= grams
    assert running.report() == architectural(seen, mined)
    assert sum(r["exercised"] for r in running.report().values()) > 0


def test_ops_coverage_command_reports_the_share() -> None:
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "ops", "--coverage", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cov = json.loads(r.stdout)
    assert cov["share"] >= 0.95 and cov["occurrences"] > 100_000
    assert all(m["count"] > 0 for m in cov["missing"])

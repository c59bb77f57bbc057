"""`convfuzz analyze` on synthetic stores: the statistics recover planted effects, find nothing
in a null store, and the report and its plots are written. No torch export runs here."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from fuzzer.analysis_report import analyze
from fuzzer.analyze import (
    ANY,
    chains,
    chi2_if_fits,
    enrichment,
    fisher,
    mantel_haenszel,
    ngrams,
    wilson,
)
from fuzzer.plots import conclusion

VOCAB = [f"aten::{c}" for c in "abcdefgh"]
AB = ("aten::a", "aten::b")
TARGET = "torchscript-17/ort-all"
Outcome = tuple[str, str | None, str | None]  # outcome, stage, symptom
PASS: Outcome = ("pass", None, None)
WRONG: Outcome = ("bug", "comparison", "wrong_values")
UNSUP: Outcome = ("unsupported", "node_conversion", "unsupported")


def chain_case(ops: Sequence[str], seed: int, arm: str, parent: str | None = None
               ) -> dict[str, Any]:
    nodes, prev = [], "x"
    for j, op in enumerate(ops):
        nodes.append({"id": f"n{j}", "op": op, "args": [prev], "attrs": {}})
        prev = f"n{j}"
    return {"schema": 1, "seed": seed, "inputs": [{"name": "x", "shape": [4], "dtype": "float32"}],
            "nodes": nodes, "outputs": [prev],
            "origin": {"sampler": arm, "ngram": list(ops), "parent": parent}}


def has_ab(ops: Sequence[str]) -> bool:
    return any(tuple(ops[i:i + 2]) == AB for i in range(len(ops) - 1))


def build_store(root: Path, rows: Sequence[tuple[dict[str, Any], Outcome]],
                findings: Sequence[tuple[dict[str, Any], Outcome, list[str]]] = (),
                with_findings: bool = True) -> Path:
    """A store in the real schema (fuzzer.store), filled by SQL: synthetic operators are not
    in the catalogue, so Store.record (which validates Cases) cannot take them."""
    if with_findings:
        from fuzzer.store import Store

        st = Store(root)
        db = st.db
    else:  # a store written before findings existed
        root.mkdir(parents=True)
        db = sqlite3.connect(root / "store.sqlite")
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE cases (hash TEXT PRIMARY KEY, seq INTEGER, sampler TEXT, ops TEXT, "
            "json TEXT, created REAL);"
            "CREATE TABLE verdicts (id INTEGER PRIMARY KEY, case_hash TEXT, target TEXT, "
            "outcome TEXT, stage TEXT, symptom TEXT, attribution TEXT, detail TEXT, json TEXT, "
            "seconds REAL, created REAL)")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)",
               (json.dumps({"seed": 0, "targets": [TARGET], "sampler": "synthetic"}),))
    for i, (case, (outcome, stage, symptom)) in enumerate(rows):
        h = f"{i:016x}"
        ops = [n["op"] for n in case["nodes"]]
        db.execute("INSERT INTO cases (hash, seq, sampler, ops, json, created) "
                   "VALUES (?,?,?,?,?,?)", (h, i, case["origin"]["sampler"], json.dumps(ops),
                                            json.dumps(case), 1000.0 + i))
        v = {"target": TARGET, "outcome": outcome, "stage": stage, "symptom": symptom,
             "attribution": "none", "detail": f"{symptom or outcome} in {ops[0]}",
             "error": f"{symptom or outcome} in {ops[0]}"}
        db.execute("INSERT INTO verdicts (case_hash, target, outcome, stage, symptom, "
                   "attribution, detail, json, seconds, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (h, TARGET, outcome, stage, symptom, "none", v["detail"], json.dumps(v),
                    0.01, 1000.0 + i))
    for k, (case, (_, stage, symptom), linked) in enumerate(findings):
        fid = f"f{k:015x}"
        db.execute("INSERT INTO findings (id, target, family, stage, symptom, attribution, "
                   "error_class, detail, ops, count, case_hash, original_hash, json, verdict, "
                   "shrink, versions, created, updated) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (fid, TARGET, "torchscript/ort", stage, symptom, "converter", "x", "",
                    json.dumps([n["op"] for n in case["nodes"]]), len(linked), f"m{k}",
                    linked[0], json.dumps(case), "{}", None, "{}", 2000.0 + k, 2000.0 + k))
        for h in linked:
            db.execute("INSERT INTO finding_cases VALUES (?,?,?,?,?)",
                       (fid, h, TARGET, "shrunk", 2000.0 + k))
    db.commit()
    db.close()
    return root


def synthetic(seed: int, n: int, fail_p: Callable[[list[str], str], float]
              ) -> list[tuple[dict[str, Any], Outcome]]:
    """n Cases of 2-5 chained operators, half per arm; a Case fails with fail_p(ops, arm)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arm = ("real", "random")[i % 2]
        ops = [str(o) for o in rng.choice(VOCAB, size=int(rng.integers(2, 6)))]
        u = rng.random()
        out = WRONG if u < fail_p(ops, arm) else (UNSUP if rng.random() < 0.05 else PASS)
        rows.append((chain_case(ops, seed * 100_000 + i, arm), out))
    return rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = synthetic(1, 500, lambda ops, arm: 0.8 if has_ab(ops) else 0.05)
    failing = [f"{i:016x}" for i, (c, o) in enumerate(rows)
               if o == WRONG and has_ab([n["op"] for n in c["nodes"]])]
    finds = [(chain_case(list(AB), 9, "shrink", parent=failing[0]), WRONG, failing[:5]),
             (chain_case(["aten::a", "aten::b", "aten::c"], 10, "shrink", parent=failing[5]),
              WRONG, failing[5:7])]
    return build_store(tmp_path_factory.mktemp("planted") / "store", rows, finds)


@pytest.fixture(scope="module")
def planted_report(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    # The mined seeds through their reading API (the file format is the miner's business).
    from fuzzer import analyze as mod
    from fuzzer.seeds import Seeds

    mined = Seeds({1: {("aten::a",): (3, ["bert", "vit"])}, 2: {AB: (2, ["bert", "vit"])},
                   3: {("aten::a", "aten::b", "aten::c"): (1, ["bert"])}}, {}, [], {})
    seeds = tmp_path_factory.mktemp("seeds")
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mod, "load_seeds", lambda path: mined)
        return analyze([planted], out, seeds, markdown=out / "copy" / "results.md",
                       note="budget: synthetic")


def test_wilson_interval_matches_scipy_and_is_sane() -> None:
    for k, n in [(0, 10), (3, 10), (10, 10), (17, 250)]:
        lo, hi = wilson(k, n)
        ref = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert wilson(50, 100)[1] - wilson(50, 100)[0] > wilson(500, 1000)[1] - wilson(500, 1000)[0]
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_ngrams_follow_data_flow_not_node_order() -> None:
    case = {"nodes": [{"id": "n0", "op": "a", "args": ["x"]},
                      {"id": "n1", "op": "c", "args": ["x"]},
                      {"id": "n2", "op": "b", "args": ["n0:1", "x"]},
                      {"id": "n3", "op": "d", "args": ["n2", "n1"]}]}
    g = ngrams(case)
    assert {("a", "b"), ("a", "b", "d"), ("c", "d"), ("b", "d")} <= g
    assert ("c", "b") not in g  # adjacent in node order only
    assert max(map(len, g)) == 3
    assert chains(case) == [("a", "b", "d"), ("c", "d")]


def test_small_helpers() -> None:
    assert chi2_if_fits([[1, 2], [0, 1]]) is None  # expected counts far below 5
    fit = chi2_if_fits([[40, 60], [60, 40]])
    assert fit is not None and fit["p"] < 0.01
    same = mantel_haenszel([(10, 10, 10, 10), (5, 20, 5, 20)])
    assert same is not None and same["p"] > 0.5 and same["odds_ratio"] == pytest.approx(1.0)
    assert enrichment([], [{("a",)}]) == []


def test_planted_enrichment_is_recovered(planted_report: Any) -> None:
    rep = planted_report
    sig = [e for e in rep.enrich_raw if e.q < 0.05]
    ab = next(e for e in rep.enrich_raw if e.ngram == AB)
    assert ab.q < 0.05 and ab.odds_ratio > 5
    assert sig and all({"aten::a", "aten::b"} & set(e.ngram) for e in sig)
    assert rep.enrich_min is not None
    assert any(e.ngram == AB and e.fail_with == 2 for e in rep.enrich_min)
    assert rep.findings_by_arm == {"random": 1, "real": 1} or \
        sum(rep.findings_by_arm.values()) == 2
    # Real-world exposure from the mined seeds: a→b in 2 architectures, a→b→c in 1.
    assert rep.exposure is not None
    assert sorted((e.chain, e.archs) for e in rep.exposure) == [("a → b", 2), ("a → b → c", 1)]
    assert {e.ngram: e.archs for e in rep.enrich_raw}[AB] == 2


def test_arm_difference_and_length_adjustment(tmp_path: Path) -> None:
    rows = synthetic(2, 600, lambda ops, arm: 0.3 if arm == "real" else 0.1)
    rep = analyze([build_store(tmp_path / "s", rows)], tmp_path / "out", figures=False)
    p = rep.primary
    assert p is not None and p.cls == ANY and p.target == "all"
    assert p.p < 1e-4 and p.diff > 0 and p.diff_lo > 0
    assert rep.length_adjusted is not None and rep.length_adjusted["p"] < 1e-3
    assert [c.target for c in rep.sensitivity] == ["shared ops only (8)", "accepted Cases only"]
    assert all(c.p < 1e-3 and c.diff > 0 for c in rep.sensitivity)
    assert rep.arms["real"]["ops"] == rep.arms["random"]["ops"] == len(VOCAB)
    assert "significantly more often" in conclusion(rep)
    assert {c.target for c in rep.comparisons} == {"all", TARGET}


def test_null_store_reports_nothing_significant(tmp_path: Path) -> None:
    # One fixed seed; that such seeds are the rule, not luck, is the calibration test below.
    rows = synthetic(4, 600, lambda ops, arm: 0.15)
    rep = analyze([build_store(tmp_path / "s", rows)], tmp_path / "out", figures=False)
    assert rep.enrich_raw, "n-grams should have been tested"
    assert min(e.q for e in rep.enrich_raw) >= 0.05
    assert rep.primary is not None and rep.primary.p >= 0.05
    assert "no evidence" in conclusion(rep)


def test_report_and_plots_are_written(planted_report: Any) -> None:
    files = planted_report.files
    pngs = [Path(files[k]) for k in ("rates", "enrichment", "enrichment_min", "taxonomy")]
    for p in pngs:
        assert p.stat().st_size > 5000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = Path(files["markdown"]).read_text()
    assert "budget: synthetic" in md and "Different populations" in md and "56%" in md
    assert all(f"]({p.name})" in md for p in pngs)
    copy = Path(files["markdown_copy"]).read_text()
    assert "](../rates.png)" in copy
    assert "<img src='rates.png'" in Path(files["html"]).read_text()
    d = json.loads(Path(files["json"]).read_text(), parse_constant=lambda c: pytest.fail(c))
    assert d["conclusion"] and d["taxonomy"]["counts"]


def test_store_without_findings_table(tmp_path: Path) -> None:
    rows = synthetic(4, 60, lambda ops, arm: 0.2)
    rep = analyze([build_store(tmp_path / "s", rows, with_findings=False)], tmp_path / "out",
                  figures=False)
    assert rep.enrich_min is None and rep.findings_by_arm is None
    assert "No minimized failures in this store." in Path(rep.files["markdown"]).read_text()


def test_cli_missing_store_is_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "fuzzer.cli", "analyze", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "no such store directory" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_tests_are_calibrated_under_the_null() -> None:
    """Under the null the arm test rejects about 5% of the time (Fisher: a little less) and
    BH over all n-grams yields any discovery in about 5% of campaigns."""
    rng = np.random.default_rng(11)
    arm_p = [fisher(int(a), 300 - int(a), int(b), 300 - int(b))[1]
             for a, b in rng.binomial(300, 0.15, size=(400, 2))]
    assert 0.01 <= np.mean(np.asarray(arm_p) < 0.05) <= 0.07
    hits = 0
    for rep in range(20):
        rows = synthetic(100 + rep, 150, lambda ops, arm: 0.2)
        fail = [ngrams(c) for c, (o, _, _) in rows if o == "bug"]
        ok = [ngrams(c) for c, (o, _, _) in rows if o == "pass"]
        hits += any(e.q < 0.05 for e in enrichment(fail, ok))
    assert hits <= 2

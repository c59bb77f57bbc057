"""The corpus: every committed finding still reproduces its recorded verdict on the installed
versions (or is reported fixed, explicitly); and the commands that read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer import corpus
from fuzzer.case import Case
from fuzzer.sandbox import Sandbox
from fuzzer.store import Store
from fuzzer.verdict import Outcome
from tests.conftest import make_case

ENTRIES = corpus.entries()
EXE = [sys.executable, "-m", "fuzzer.cli"]


def cf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_corpus_finding_reproduces_its_recorded_verdict(entry: corpus.Entry,
                                                        sandbox: Sandbox) -> None:
    from fuzzer.targets import TargetError, parse

    try:
        parse(entry.target)
    except TargetError as e:  # a converter whose optional extra is not installed here
        pytest.skip(str(e))
    r = corpus.replay(entry, sandbox.run)
    if r.status == corpus.FIXED and not r.same_versions:
        pytest.skip(f"FIXED on the installed versions: {entry.id} now {r.verdict.key}")
    assert r.status == corpus.STILL_FAILING, (
        f"{entry.id}: recorded {entry.verdict.key} ({entry.verdict.detail[:120]}), now "
        f"{r.status} {r.verdict.key}: {r.verdict.detail[:200]}")


def test_corpus_holds_ten_distinct_minimized_findings() -> None:
    assert len(ENTRIES) >= 10
    assert len({e.meta["signature"] for e in ENTRIES}) == len(ENTRIES)
    for e in ENTRIES:
        # a fusion's finding keeps the whole block its pattern matches (RMSNorm: 6 ops), and
        # so does a fusion that raised while matching it (evidence names the function)
        ev = e.verdict.evidence
        block = e.verdict.attribution.value == "optimizer" and (ev.get("fusions")
                                                                 or ev.get("raised_in"))
        assert len(e.case.nodes) <= (10 if block else 3), e.id
        assert e.meta["ops"] == e.case.ops, e.id
        assert {"torch", "onnx", "onnxruntime"} <= set(e.meta["versions"]), e.id
        assert e.verdict.outcome == Outcome.BUG and e.meta["note"], e.id


# -- commands -------------------------------------------------------------------------------
def test_corpus_list_and_show_json() -> None:
    r = cf("corpus", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == [e.id for e in ENTRIES]
    assert all(set(x) == {"id", "target", "exporter", "stage", "symptom", "attribution",
                          "ops", "count"} for x in rows)
    r = cf("corpus", "show", ENTRIES[0].id, "--json")
    assert r.returncode == 0, r.stderr
    assert Case.from_dict(json.loads(r.stdout)["case"]).hash == ENTRIES[0].case.hash


def test_a_corpus_folder_is_found_by_the_id_it_had_in_its_store() -> None:
    # `corpus add 1c4e2867 --store D` names the folder exporter-op-symptom-1c4e2867; the
    # next command a user types names the finding the same way.
    for e in ENTRIES:
        assert corpus.find(e.meta["signature"][:8]).id == e.id
        assert corpus.find(e.meta["signature"]).id == e.id
    with pytest.raises(corpus.CorpusError, match="no finding"):
        corpus.find("ffffffffffff")


@pytest.fixture(scope="module")
def fault_store(tmp_path_factory: pytest.TempPathFactory,
                sandbox: Sandbox) -> tuple[Path, str, str]:
    """A store with a finding that still fails and one whose Case no longer does (what a
    fixed bug looks like), on the planted-bug target."""
    target = "fault-pair-relu-sigmoid"
    pair = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::sigmoid", "args": ["n0"]}],
                     inputs=[{"name": "x", "shape": [4]}])
    alone = make_case([{"id": "n1", "op": "aten::sigmoid", "args": ["x"]}],
                      inputs=[{"name": "x", "shape": [4]}])
    v = sandbox.run(pair, target)
    assert v.outcome == Outcome.BUG
    d = tmp_path_factory.mktemp("faults")
    store = Store(d)
    failing, _ = store.add_finding(pair, v, pair, v)
    fixed, _ = store.add_finding(alone, v, alone, v)  # recorded failing, passes today
    store.close()
    return d, failing, fixed


def test_repro_exit_codes(fault_store: tuple[Path, str, str]) -> None:
    d, failing, fixed = fault_store
    r = cf("repro", failing, "--store", str(d), "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["status"] == "still_failing"
    r = cf("repro", fixed[:8], "--store", str(d), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "fixed"
    r = cf("repro", "nosuchfinding")
    assert r.returncode == 2 and "no finding" in r.stderr and len(r.stderr.splitlines()) == 1


def test_triage_reports_still_failing_and_fixed(fault_store: tuple[Path, str, str]) -> None:
    d, failing, fixed = fault_store
    r = cf("triage", "--store", str(d), "--json")
    assert r.returncode == 0, r.stderr
    status = {x["id"]: x["status"] for x in json.loads(r.stdout)}
    assert status == {failing: "still_failing", fixed: "fixed"}


def test_shrink_command_writes_the_minimized_case(tmp_path: Path) -> None:
    case = make_case([{"id": "n0", "op": "aten::abs", "args": ["x"]},
                      {"id": "n1", "op": "aten::adaptive_avg_pool2d", "args": ["n0"],
                       "attrs": {"output_size": [2, 2]}},
                      {"id": "n2", "op": "aten::neg", "args": ["n1"]}],
                     inputs=[{"name": "x", "shape": [3, 4, 4]}])
    src, dst = tmp_path / "case.json", tmp_path / "min.json"
    src.write_text(case.to_json())
    store = tmp_path / "store"
    r = cf("shrink", str(src), "-t", "torchscript-17/ort-all", "--out", str(dst),
           "--file-into", str(store))
    assert r.returncode == 0, r.stderr
    assert Case.from_json(dst.read_text()).ops == ["aten::adaptive_avg_pool2d"]
    assert "3 → 1 node(s)" in r.stderr
    # Filed as a campaign files it, so a shrunk Case (a lifted architecture's) can be curated.
    fid = r.stderr.split("filed ")[1].split()[0]
    e = corpus.find(fid, store)
    assert e.case.ops == ["aten::adaptive_avg_pool2d"] and e.original is not None
    assert e.original.ops == case.ops and e.target == "torchscript-17/ort-all"

"""The store's findings: deduplication by the signature of the shrunk Case, counts, links,
finding folders, versions; and a campaign that files its failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzzer.campaign import CampaignConfig, ShrinkConfig, file_failure, run_campaign
from fuzzer.case import Case
from fuzzer.generate import GenConfig
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.store import Store, versions
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom, Verdict
from tests.conftest import make_case

TS = "torchscript-17/ort-all"
SHRINK = ShrinkConfig(True, 60.0, 150)


def _pool_case(pre: list[str], size: list[int], out: list[int], seed: int) -> Case:
    """A chain around adaptive_avg_pool2d on an unbatched (C, H, W) input, which the
    TorchScript exporter pools over the wrong dims (torch 2.13): a wrong output shape."""
    nodes = [{"id": f"n{i}", "op": op, "args": [f"n{i - 1}" if i else "x"]}
             for i, op in enumerate(pre)]
    k = len(pre)
    nodes.append({"id": f"n{k}", "op": "aten::adaptive_avg_pool2d", "args": [f"n{k - 1}"],
                  "attrs": {"output_size": out}})
    nodes.append({"id": f"n{k + 1}", "op": "aten::tanh", "args": [f"n{k}"]})
    return make_case(nodes, inputs=[{"name": "x", "shape": size}], seed=seed)


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> tuple[Store, list[str]]:
    store = Store(tmp_path_factory.mktemp("store"))
    a = _pool_case(["aten::relu"], [2, 6, 6], [3, 3], seed=1)
    b = _pool_case(["aten::sigmoid", "aten::neg"], [4, 8, 8], [2, 2], seed=2)
    ids = []
    for case in (a, b):
        v = sandbox.run(case, TS)
        assert v.outcome == Outcome.BUG, v.detail
        store.record(case, [v])
        # match=False: both go through the shrinker, so the signature alone must merge them.
        fid, _ = file_failure(store, case, v, lambda c: sandbox.run(c, TS), SHRINK, match=False)
        ids.append(fid)
    store.flush()  # the folders' artifacts are written on a thread of their own
    return store, ids


def test_two_cases_with_one_minimized_failure_are_one_finding(
        filed: tuple[Store, list[str]]) -> None:
    store, ids = filed
    assert ids[0] == ids[1]
    (f,) = store.findings()
    assert f.count == 2 and f.ops == ["aten::adaptive_avg_pool2d"]
    assert (f.stage, f.symptom) == ("comparison", "wrong_shape")
    assert [how for _, _, how in store.linked(f.id)] == ["shrunk", "shrunk"]
    assert f.versions == versions() and store.get_meta("versions") == versions()
    assert store.get_finding(f.id[:6]).id == f.id  # a unique prefix is enough


def test_finding_folder_holds_what_a_report_needs(filed: tuple[Store, list[str]]) -> None:
    store, ids = filed
    d = store.finding_dir(ids[0])
    names = {p.name for p in d.iterdir()}
    assert {"original.json", "case.json", "verdict.json", "log.txt", "model.onnx",
            "inputs.npz", "outputs.npz"} <= names
    import numpy as np

    outs = np.load(d / "outputs.npz")
    assert outs["expected_0"].shape != outs["actual_0"].shape  # the wrong shape, on disk
    minimized = Case.from_json((d / "case.json").read_text())
    assert len(minimized.nodes) == 1 and minimized.origin["sampler"] == "shrink"


def test_closing_the_store_finishes_the_artifacts_of_its_findings(tmp_path: Path,
                                                                   sandbox: Sandbox) -> None:
    target = "fault-pair-relu-sigmoid"  # a planted bug: fails in one quick export
    pair = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::sigmoid", "args": ["n0"]}],
                     inputs=[{"name": "x", "shape": [4]}])
    v = sandbox.run(pair, target)
    assert v.outcome == Outcome.BUG
    store = Store(tmp_path)
    fid, new = store.add_finding(pair, v, pair, v)
    d = store.finding_dir(fid)
    assert new and {"case.json", "verdict.json", "log.txt"} <= {p.name for p in d.iterdir()}
    store.close()  # without a flush() first: the artifacts still being written are finished
    assert {"inputs.npz", "outputs.npz", "export.log"} <= {p.name for p in d.iterdir()}


def test_filing_a_finding_does_not_wait_for_its_artifacts(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The artifacts' export is made to hang (a fault, injected): the driver files the
    # finding and goes on; the export finishes on its own thread, and close() waits for it.
    import threading

    import fuzzer.store

    release, finished = threading.Event(), threading.Event()

    def hanging_dump(*args: object, **kwargs: object) -> bool:
        release.wait(30)
        finished.set()
        return True

    monkeypatch.setattr(fuzzer.store, "dump_artifacts", hanging_dump)
    case = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]}],
                     inputs=[{"name": "x", "shape": [4]}])
    v = Verdict(TS, Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_VALUES, detail="planted")
    store = Store(tmp_path)
    fid, new = store.add_finding(case, v, case, v)
    assert new and store.get_finding(fid) is not None  # filed, committed
    assert not finished.is_set()  # the export is still running
    release.set()
    store.close()
    assert finished.is_set()


def test_a_known_failure_is_matched_and_counted_once(filed: tuple[Store, list[str]],
                                                    sandbox: Sandbox) -> None:
    store, ids = filed
    c = _pool_case(["aten::abs", "aten::exp", "aten::relu"], [3, 6, 6], [2, 3], seed=3)
    v = sandbox.run(c, TS)
    for _ in range(2):  # the same Case twice counts once
        fid, new = file_failure(store, c, v, lambda x: sandbox.run(x, TS), SHRINK)
        assert (fid, new) == (ids[0], False)
    assert store.get_finding(fid).count == 3
    assert store.linked(fid)[-1].how == "matched"


def test_a_campaign_files_every_failure_under_a_finding(tmp_path: Path) -> None:
    store = Store(tmp_path / "camp")
    cfg = CampaignConfig(seed=5, seconds=120, cases=12, targets=[TS], sampler="random",
                         gen=GenConfig(max_len=4, nondefault=0.5),
                         limits=Limits(timeout=60, memory_mb=2048),
                         shrink=ShrinkConfig(True, 60.0, 120))
    prog = run_campaign(cfg, store)
    bugs = {h for (h,) in store.db.execute("SELECT case_hash FROM verdicts WHERE outcome='bug'")}
    assert bugs, "seed 5 is known to fail on TorchScript; pick another seed if the catalogue moved"
    assert {c.hash for c, _ in prog.failures} <= bugs  # the dashboard's latest failures
    linked = {h for f in store.findings() for h, _, _ in store.linked(f.id)}
    assert bugs <= linked
    assert prog.findings == len(store.findings()) >= 1
    for f in store.findings():
        assert len(json.loads(f.case_json)["nodes"]) <= 3
    store.close()


# -- the store's rows are types; the CLI's JSON of them is what it always was ---------------
COMMANDS = {"corpus show": ["corpus", "show", "abab"], "corpus list": ["corpus", "list"],
            "targets": ["targets"]}
GOLDEN = Path(__file__).parent / "golden" / "store_cli.json"


def store_with_a_finding(root: Path) -> None:
    """One finding, two Cases and their verdicts, every value fixed (no artifacts)."""
    orig = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]},
                      {"id": "n1", "op": "aten::tanh", "args": ["n0"]}])
    mini = make_case([{"id": "n0", "op": "aten::tanh", "args": ["x"]}])
    v = Verdict(TS, Outcome.BUG, Stage.COMPARISON, Symptom.WRONG_VALUES, Attribution.CONVERTER,
                "output 0 differs", "output 0 differs", {"atol": 1e-5})
    st = Store(root)
    try:
        st.record(orig, [v])
        st.record(mini, [v])
        st.restore_finding("ab" * 8, orig, mini, v, {"calls": 3}, 2, 1700000000.0)
    finally:
        st.close()


def test_finding_rows_are_typed_and_the_cli_prints_them_as_before(tmp_path: Path) -> None:
    """tests/golden/store_cli.json: the JSON these commands printed when the store's rows were
    dicts (written by the code of d5a0657); typed rows must print it byte for byte."""
    from typer.testing import CliRunner

    from fuzzer.cli import app
    from fuzzer.store import FindingRow, Link

    store_with_a_finding(tmp_path)
    st = Store(tmp_path, readonly=True)
    try:
        (f,) = st.findings()
        assert isinstance(f, FindingRow) and st.get_finding("abab") == f
        assert (f.ops, f.count, f.shrink, f.judged.symptom) == (
            ["aten::tanh"], 2, {"calls": 3}, Symptom.WRONG_VALUES)
        assert Case.from_json(f.case_json).hash == f.case_hash
        assert st.linked(f.id) == [] and isinstance(Link("h", TS, "matched").how, str)
    finally:
        st.close()
    golden = json.loads(GOLDEN.read_text())
    for name, args in COMMANDS.items():
        res = CliRunner().invoke(app, [*args, "--store", str(tmp_path), "--json"])
        assert res.exit_code == 0, res.output
        assert res.output.replace(str(tmp_path), "STORE") == golden[name], name

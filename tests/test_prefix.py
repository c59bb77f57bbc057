"""Prefix sharing and adaptive packing (issue 26): targets below one exporter export once per
Case or pack, a failing prefix fails every chain below it with one verdict, and a campaign's
verdicts are the same with sharing and adaptive packing on or off."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fuzzer import oracle
from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.case import Case
from fuzzer.job import schedule, trees
from fuzzer.pack import Sizer, chunks, judge_pack
from fuzzer.prefix import Prefixes
from fuzzer.targets.faults import EXPORTS
from fuzzer.verdict import Outcome, Verdict
from tests.conftest import make_case

pytestmark = pytest.mark.integration

COUNTED = ["fault-count/ort-all", "fault-count/ort-disabled", "fault-count/ref"]
PAIR = ["fault-pair-relu-sigmoid/ort-all", "fault-pair-relu-sigmoid/ort-disabled",
        "fault-pair-relu-sigmoid/ref"]


def _chain(*ops: str, seed: int = 3) -> Case:
    nodes = [{"id": f"n{i}", "op": f"aten::{op}", "args": [f"n{i - 1}" if i else "x"]}
             for i, op in enumerate(ops)]
    return make_case(nodes, inputs=[{"name": "x", "shape": [2, 5]}], seed=seed)


def _exports(fn: object) -> int:
    before = EXPORTS.get("fault-count", 0)
    fn()  # type: ignore[operator]
    return EXPORTS.get("fault-count", 0) - before


def _same(v: Verdict) -> tuple[object, ...]:
    return (v.outcome, v.stage, v.symptom, v.attribution, v.detail)


def test_a_tree_with_a_shared_exporter_exports_once_per_case_and_per_pack() -> None:
    case = _chain("relu", "tanh")
    ref = oracle.reference(case)
    got: dict[str, Verdict] = {}

    def shared() -> None:
        prefixes = Prefixes(COUNTED)
        got.update({t: oracle.judge(case, t, ref, shared=prefixes) for t in COUNTED})

    assert _exports(shared) == 1
    assert [v.outcome for v in got.values()] == [Outcome.PASS] * 3
    # Each chain is charged a third of the one export: the timings still add up.
    assert len({v.evidence["timings"]["exporter"] for v in got.values()}) == 1
    assert _exports(lambda: [oracle.judge(case, t, ref) for t in COUNTED]) == 3

    cases = [_chain("relu"), _chain("tanh", "abs", seed=5), _chain("sigmoid", seed=9)]
    refs = [oracle.reference(c) for c in cases]

    def one(k: int, ts: Sequence[str]) -> dict[str, Verdict]:
        return {t: oracle.judge(cases[k], t, refs[k]) for t in ts}

    for share, exports in ((True, 1), (False, 3)):
        out: dict[int, dict[str, Verdict]] = {}
        assert _exports(lambda s=share, o=out: o.update(judge_pack(
            cases, COUNTED, refs, one, lambda: None, share=s))) == exports
        assert all(v.outcome == Outcome.PASS and v.evidence["pack"] == 3
                   for vs in out.values() for v in vs.values())


def test_a_failing_prefix_gives_every_chain_below_it_the_same_verdict() -> None:
    case = _chain("relu", "sigmoid")  # the planted bug: relu feeding sigmoid
    prefixes = Prefixes(PAIR)
    shared = [oracle.judge(case, t, shared=prefixes) for t in PAIR]
    assert prefixes.ran[(("fault-pair-relu-sigmoid",), "")] == 1  # exported once
    assert sum(prefixes.ran.values()) == 1  # no check after a failed export
    assert shared[0].outcome == Outcome.BUG and "planted bug" in shared[0].detail
    assert {_same(v) for v in shared} == {_same(shared[0])}
    assert [v.target for v in shared] == PAIR
    alone = oracle.judge(case, PAIR[1])
    assert _same(alone) == _same(shared[1])


def test_the_schedule_groups_targets_by_exporter_and_keeps_unpackable_chains_apart() -> None:
    ts = ["torchscript-17/ort-all", "dynamo/ort-all", "dynamo/ort-disabled",
          "torchscript-17/ref", "dynamo/onnxsim/ort-disabled"]
    assert trees(ts) == [("torchscript-17/ort-all", "torchscript-17/ref"),
                         ("dynamo/ort-all", "dynamo/ort-disabled",
                          "dynamo/onnxsim/ort-disabled")]
    assert trees(ts, share=False) == [(t,) for t in ts]
    job = {"members": [(0, 1, tuple(ts)), (1, 2, ("dynamo/ort-all",)), (2, 3, tuple(ts))],
           "packs": [("dynamo/ort-all", 32), ("dynamo/ort-disabled", 32)], "share": True}
    steps = schedule(job)
    assert (("dynamo/ort-all", "dynamo/ort-disabled"), (0, 2), 32) in steps
    assert (("dynamo/onnxsim/ort-disabled",), (0,), 1) in steps  # its own pack size: apart
    assert (("dynamo/ort-all",), (1, ), 1) in steps
    assert chunks(range(20), 8) == [list(range(7)), list(range(7, 14)), list(range(14, 20))]


def test_the_pack_size_follows_the_cost_per_export_and_the_failure_rate() -> None:
    slow, cheap = Sizer(), Sizer()
    for n in (8, 4, 8, 1, 8, 2):
        slow.observe("dynamo", n, 0.5 + 0.02 * n)  # a fixed half second an export
        cheap.observe("ov-pt", n, 0.005 + 0.05 * n)  # the cost is per Case
    assert slow.size("dynamo", 32, 8) >= 16
    assert cheap.size("ov-pt", 32, 8) == 1
    for _ in range(10):
        slow.outcome("dynamo", 16, 8, True)  # half the members fail, every pack breaks
    assert slow.size("dynamo", 32, 8) < 8
    assert Sizer(slow.plain()).size("dynamo", 32, 8) == slow.size("dynamo", 32, 8)


def _verdicts(on: bool) -> tuple[dict[int, list[tuple[str, str, str, str]]], int]:
    seen: dict[int, list[tuple[str, str, str, str]]] = {}
    packed = 0

    def listen(prog, case: Case, verdicts: list[Verdict]) -> None:
        nonlocal packed
        seen[case.seed] = [(v.target, v.key, v.attribution.value, v.detail) for v in verdicts]
        packed += sum("pack" in v.evidence for v in verdicts)

    run_campaign(CampaignConfig(seed=26, seconds=None, cases=24,
                                targets=[*COUNTED, "torchscript-17/ort-all"],
                                sampler="random", shrink=None, coverage=False, share=on,
                                adaptive=on), None, listen)
    return seen, packed


def test_sharing_and_adaptive_packing_change_no_verdict_of_a_campaign() -> None:
    (off, packed_off), (on, packed_on) = _verdicts(False), _verdicts(True)
    assert len(off) == 24 and packed_off > 0 and packed_on > 0
    assert on == off

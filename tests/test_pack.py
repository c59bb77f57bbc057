"""Packing several Cases into one export: a member the pack cannot clear is judged alone (so
its verdict is exactly its own), the others pass with their own values, a worker lost in a
packed export costs nobody a verdict, and packing changes no verdict of a campaign."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fuzzer import oracle
from fuzzer.campaign import CampaignConfig, run_campaign
from fuzzer.case import Case, load
from fuzzer.pack import PackModule, judge_pack, union
from fuzzer.sandbox import Limits, Sandbox
from fuzzer.verdict import Outcome, Stage, Symptom, Verdict
from tests.conftest import CASES, make_case

CORPUS = Path(__file__).parent.parent / "corpus"
SOFTPLUS = load(CORPUS / "torchscript-softplus-wrong_values-40222726" / "case.json")


def _chain(*ops: str, seed: int = 3) -> Case:
    nodes = [{"id": f"n{i}", "op": f"aten::{op}", "args": [f"n{i - 1}" if i else "x"]}
             for i, op in enumerate(ops)]
    return make_case(nodes, inputs=[{"name": "x", "shape": [2, 5]}], seed=seed)


def _judge(cases: list[Case], target: str) -> tuple[dict[int, Verdict], list[int]]:
    refs = [oracle.reference(c) for c in cases]
    alone: list[int] = []

    def one(k: int, ts: Sequence[str]) -> dict[str, Verdict]:
        alone.append(k)
        return {t: oracle.judge(cases[k], t, refs[k]) for t in ts}

    out = judge_pack(cases, [target], refs, one, lambda: None)
    return {k: vs[target] for k, vs in out.items()}, alone


def test_union_renames_members_apart_and_the_pack_module_keeps_their_values() -> None:
    a, b = _chain("relu", "tanh"), _chain("sigmoid", seed=9)
    u = union([a, b])
    assert [x.name for x in u.inputs] == ["m0_x", "m1_x"]
    assert u.outputs == ["m0_n1", "m1_n0"] and u.nodes[1].args == ["m0_n0"]
    ra, rb = oracle.reference(a), oracle.reference(b)
    outs = PackModule([ra.module, rb.module], [1, 1])(*ra.inputs, *rb.inputs)
    assert outs[0].equal(ra.out32[0]) and outs[1].equal(rb.out32[0])


def test_a_member_that_breaks_the_export_is_judged_alone_the_rest_pass_packed() -> None:
    cases = [_chain("tanh"), _chain("relu", "sigmoid"), _chain("gelu"), _chain("abs", "exp")]
    verdicts, alone = _judge(cases, "fault-pair-relu-sigmoid/ort-all")
    bad = verdicts[1]
    assert (bad.outcome, bad.stage, bad.symptom) == (Outcome.BUG, Stage.NODE_CONVERSION,
                                                     Symptom.CRASH)
    assert "planted bug" in bad.detail
    assert 1 in alone and len(alone) <= 2  # found by halving, not by trying every member
    for k in (0, 2, 3):
        assert verdicts[k].outcome == Outcome.PASS, verdicts[k].detail
    assert any(verdicts[k].evidence.get("pack", 0) >= 2 for k in (0, 2, 3))


def test_a_member_with_wrong_values_gets_its_own_verdict() -> None:
    cases = [_chain("relu"), SOFTPLUS, Case.from_json((CASES / "good_chain.json").read_text())]
    verdicts, alone = _judge(cases, "torchscript-17/ort-all")
    assert alone == [1]  # the packed model exported and ran; only its outputs were off
    solo = oracle.judge(SOFTPLUS, "torchscript-17/ort-all")
    assert verdicts[1].key == solo.key == "comparison/wrong_values"
    assert verdicts[1].detail == solo.detail
    assert verdicts[0].outcome == verdicts[2].outcome == Outcome.PASS
    assert verdicts[0].evidence["pack"] == 3


def test_a_worker_lost_in_a_packed_export_costs_each_member_only_its_own_run() -> None:
    from fuzzer.campaign import case_seed
    from fuzzer.generate import GenConfig
    from fuzzer.job import job

    t = "fault-abort/ort-all"
    j = job([(i, case_seed(8, i), (t,)) for i in range(3)], "random", None, GenConfig(),
            Limits(), {t: 3})
    with Sandbox(Limits(timeout=30)) as sb:
        done = sb.run_job(j.plain())
        assert [v.symptom for _, (v,), _ in done] == [Symptom.PROCESS_DEATH] * 3
        assert sb.deaths == 4  # the packed export, then each member alone


def _outcomes(pack: int, target: str = "torchscript-17/ort-all", cases: int = 16,
              sampler: str = "random") -> tuple[dict[int, list[tuple[str, str, str]]], int]:
    seen: dict[int, list[tuple[str, str, str]]] = {}
    cleared = 0

    def listen(prog, case: Case, verdicts: list[Verdict]) -> None:
        nonlocal cleared
        seen[case.seed] = [(v.target, v.key, v.attribution.value) for v in verdicts]
        cleared += sum("pack" in v.evidence for v in verdicts)

    run_campaign(CampaignConfig(seed=21, seconds=None, cases=cases, targets=[target],
                                sampler=sampler, shrink=None, coverage=False, pack=pack),
                 None, listen)
    return seen, cleared


def test_packing_changes_no_verdict_of_a_campaign() -> None:
    (alone, none), (packed, cleared) = _outcomes(1), _outcomes(4)
    assert len(alone) == 16 and none == 0
    assert cleared >= 2  # Cases really were cleared in packs (3 with this seed)
    assert packed == alone


def test_the_dynamo_exporter_packs_by_default_and_changes_no_verdict() -> None:
    (alone, _), (packed, cleared) = (_outcomes(p, "dynamo/ort-all", 8, "real")
                                     for p in (1, None))
    assert len(alone) == 8 and cleared >= 2
    assert packed == alone

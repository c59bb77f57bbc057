"""The dynamo exporter's memos (fuzzer/targets/export_memo.py) change its speed, not its
output: the same Cases give the same ONNX bytes with torch's own functions, and a warm
process no longer recollects the CIA ops an export needs."""

from __future__ import annotations

import pytest

from fuzzer import pack
from fuzzer.case import Case, load
from fuzzer.model import materialize
from fuzzer.sampling import GenConfig, samplers
from fuzzer.targets import export_memo, parse
from fuzzer.targets.registry import Artifact, StageFailure
from tests.conftest import CASES

pytestmark = pytest.mark.integration


def _export(case: Case) -> list[tuple[str, str, bytes]] | str:
    """The raw export and the model after the exporter's optimizer, or how it failed."""
    module, inputs = materialize(case)
    art = Artifact(case, module, inputs)
    try:
        parse("dynamo/ref").exporter.run(art)
    except StageFailure as e:
        return f"{e.stage}: {str(e).splitlines()[0]}"
    return art.history


def _cases() -> list[Case]:
    real = samplers()["real"]
    drawn = [real(s, None, GenConfig()) for s in (101, 102, 103, 104)]
    names = ("split_dynamic", "gelu_tanh_chain", "rmsnorm_chain",
             "sdpa_f64_mask")  # the last one fails to export
    files = [load(CASES / f"{n}.json") for n in names]
    return [*drawn, pack.union(drawn), *files]


def test_memoized_exports_are_the_same_bytes_as_torchs_own() -> None:
    cases = _cases()
    memo = [_export(c) for c in cases]
    with export_memo.originals():
        plain = [_export(c) for c in cases]
    assert memo == plain
    assert [len(h) for h in memo[:-1]] == [2] * (len(cases) - 1)
    assert isinstance(memo[-1], str) and "only 4D query" in memo[-1]


def test_a_warm_process_collects_the_cia_ops_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._export import utils as export_utils

    calls: list[object] = []
    walk = export_utils._collect_all_valid_cia_ops_for_namespace

    def counted(ns: object) -> object:
        calls.append(ns)
        return walk(ns)

    monkeypatch.setattr(export_utils, "_collect_all_valid_cia_ops_for_namespace", counted)
    case = _cases()[0]
    _export(case)  # installs the memos, fills them
    calls.clear()
    _export(case)
    assert calls == []
    with export_memo.originals():
        _export(case)
    assert len(calls) >= 2  # torch walks every namespace, twice an export

"""The Case: validation with one-line errors, canonical hash, deterministic materialization."""

from __future__ import annotations

import io
import json

import pytest
import torch

from fuzzer.case import Case, CaseError, load
from fuzzer.model import materialize
from tests.conftest import CASES, make_case


def good() -> dict:
    return json.loads((CASES / "good_chain.json").read_text())


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda d: d.update(schema=99), "unsupported schema 99"),
    (lambda d: d["nodes"][1].update(op="aten::nope"), "unknown operator 'aten::nope'"),
    (lambda d: d["nodes"][1].update(args=["n9"]), "'n9' is not defined"),
    (lambda d: d["inputs"][0].update(dtype="float8"), "unknown dtype 'float8'"),
    (lambda d: d["inputs"][0].update(shape=[1, -3]), "must be a list of non-negative ints"),
    (lambda d: d["inputs"][0].update(shape=[4096, 4096]), "exceeds the cap"),
    (lambda d: d.pop("seed"), "missing field 'seed'"),
    (lambda d: d.update(outputs=[]), "at least one output"),
    (lambda d: d["inputs"][0]["values"].update(dist="cauchy"), "unknown distribution"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
])
def test_validation_names_the_problem_in_one_line(mutate, needle: str) -> None:
    d = good()
    mutate(d)
    with pytest.raises(CaseError) as e:
        Case.from_dict(d)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_load_reports_missing_file_and_bad_json(tmp_path) -> None:
    with pytest.raises(CaseError, match="no such file"):
        load(tmp_path / "absent.json")
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(CaseError, match="not JSON"):
        load(p)


def test_hash_is_canonical_and_ignores_origin() -> None:
    a = Case.from_dict(good())
    d = good()
    d["origin"] = {"sampler": "other"}
    b = Case.from_dict(json.loads(json.dumps(d, sort_keys=False, indent=4)))
    assert a.hash == b.hash
    d["nodes"][1]["attrs"]["approximate"] = "none"
    assert Case.from_dict(d).hash != a.hash
    assert Case.from_json(a.to_json()).to_json() == a.to_json()


def test_materialize_is_deterministic_and_node_local() -> None:
    case = Case.from_dict(good())
    m1, x1 = materialize(case)
    m2, x2 = materialize(Case.from_dict(good()))
    assert torch.equal(x1[0], x2[0])
    assert torch.equal(m1.n0_weight, m2.n0_weight)
    assert torch.equal(m1(*x1)[0], m2(*x2)[0])
    # Weights are keyed by node id: deleting another node leaves them unchanged.
    solo = make_case([case.nodes[0].__dict__], seed=case.seed)
    m3, _ = materialize(solo)
    assert torch.equal(m1.n0_weight, m3.n0_weight)
    other = make_case([case.nodes[0].__dict__], seed=case.seed + 1)
    assert not torch.equal(materialize(other)[0].n0_weight, m1.n0_weight)


def test_same_case_same_onnx_bytes() -> None:
    case = Case.from_dict(good())

    def export() -> bytes:
        m, xs = materialize(case)
        f = io.BytesIO()
        torch.onnx.export(m, tuple(xs), f, dynamo=False, opset_version=17)
        return f.getvalue()

    assert export() == export()

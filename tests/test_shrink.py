"""The shrinker: ddmin on plain lists, a planted bug shrunk to exactly its operator pair, and
a real exporter bug shrunk to its one operator and argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzer.case import Case
from fuzzer.edit import keep_nodes, set_attr
from fuzzer.sandbox import Sandbox
from fuzzer.shrink import Budget, complexity, ddmin, infer, shrink
from fuzzer.verdict import Outcome, Stage, Symptom
from tests.conftest import CASES, make_case


# -- ddmin knows nothing about Cases -------------------------------------------------------
def test_ddmin_finds_the_two_elements_that_matter() -> None:
    calls: list[list[int]] = []

    def needs_3_and_11(xs: list[int]) -> bool:
        calls.append(xs)
        return 3 in xs and 11 in xs

    assert ddmin(list(range(16)), needs_3_and_11) == [3, 11]
    assert all(xs for xs in calls)  # the empty list is never tried
    assert len({tuple(xs) for xs in calls}) < 30  # what a memoized runner would execute


def test_ddmin_stop_keeps_the_best_so_far() -> None:
    seen: list[int] = []

    def test(xs: list[int]) -> bool:
        seen.append(len(xs))
        return 5 in xs

    out = ddmin(list(range(32)), test, stop=lambda: len(seen) >= 3)
    assert 5 in out and len(out) < 32 and len(seen) == 3


# -- Case surgery keeps shapes and node ids ---------------------------------------------------
def _long_case() -> Case:
    """13 operators, a side input, a shape change and a planted relu -> sigmoid pair."""
    nodes = [
        {"id": "n0", "op": "aten::tanh", "args": ["x"]},
        {"id": "n1", "op": "aten::add", "args": ["n0", "y"]},
        {"id": "n2", "op": "aten::abs", "args": ["n1"]},
        {"id": "n3", "op": "aten::transpose", "args": ["n2"], "attrs": {"dim0": 1, "dim1": 2}},
        {"id": "n4", "op": "aten::gelu", "args": ["n3"], "attrs": {"approximate": "tanh"}},
        {"id": "n5", "op": "aten::neg", "args": ["n4"]},
        {"id": "n6", "op": "aten::relu", "args": ["n5"]},
        {"id": "n7", "op": "aten::sigmoid", "args": ["n6"]},
        {"id": "n8", "op": "aten::mul", "args": ["n7", "n7"]},
        {"id": "n9", "op": "aten::flatten", "args": ["n8"], "attrs": {"start_dim": 1}},
        {"id": "n10", "op": "aten::linear", "args": ["n9"], "attrs": {"out_features": 6}},
        {"id": "n11", "op": "aten::silu", "args": ["n10"]},
        {"id": "n12", "op": "aten::softmax", "args": ["n11"], "attrs": {"dim": 1}},
    ]
    return make_case(nodes, inputs=[{"name": "x", "shape": [2, 3, 4, 5]},
                                    {"name": "y", "shape": [2, 3, 4, 5]}])


def test_deleting_nodes_rewires_to_a_value_of_the_same_shape() -> None:
    case = _long_case()
    metas = infer(case)
    assert metas is not None
    cand = keep_nodes(case, {"n6", "n7"}, metas)
    assert cand is not None and [n.id for n in cand.nodes] == ["n6", "n7"]
    (x,) = cand.inputs
    assert x.shape == [2, 4, 3, 5]  # n5's shape, after the transpose
    assert infer(cand) is not None
    assert cand.outputs == ["n7"]  # the output moved up the chain from n12


def test_planted_pair_shrinks_to_exactly_that_pair(sandbox: Sandbox) -> None:
    case = _long_case()
    assert len(case.nodes) >= 12
    target = "fault-pair-relu-sigmoid"
    v = sandbox.run(case, target)
    assert v.outcome == Outcome.BUG and "planted bug" in v.detail
    res = shrink(case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert res.case.ops == ["aten::relu", "aten::sigmoid"]
    assert [n.id for n in res.case.nodes] == ["n6", "n7"]  # ids are stable
    assert len(res.case.inputs) == 1 and len(res.case.inputs[0].shape) <= 1
    assert sandbox.run(res.case, target).outcome == Outcome.BUG
    assert complexity(res.case) < complexity(case)
    assert res.calls <= 200 and not res.exhausted


# A real TorchScript bug (torch 2.13): softplus with beta != 1 is exported with the beta
# but without scaling the threshold, and past beta*x > threshold torch returns x.
def _softplus_chain() -> Case:
    nodes = [
        {"id": "n0", "op": "aten::layer_norm", "args": ["x"]},
        {"id": "n1", "op": "aten::abs", "args": ["n0"]},
        {"id": "n2", "op": "aten::mul", "args": ["n1", "y"]},
        {"id": "n3", "op": "aten::softplus", "args": ["n2"],
         "attrs": {"beta": 2.0, "threshold": 1.0}},
        {"id": "n4", "op": "aten::relu", "args": ["n3"]},
    ]
    return make_case(nodes, inputs=[{"name": "x", "shape": [2, 8, 6]},
                                    {"name": "y", "shape": [2, 8, 6],
                                     "values": {"dist": "uniform", "low": 1, "high": 4}}])


@pytest.mark.parametrize("target", ["torchscript-17/ort-all"])
def test_real_bug_shrinks_to_at_most_two_operators(sandbox: Sandbox, target: str) -> None:
    case = _softplus_chain()
    v = sandbox.run(case, target)
    assert v.outcome == Outcome.BUG, v.detail
    assert (v.stage, v.symptom) == (Stage.COMPARISON, Symptom.WRONG_VALUES)
    res = shrink(case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert len(res.case.nodes) <= 2
    assert "aten::softplus" in res.case.ops
    again = sandbox.run(res.case, target)
    assert again.outcome == Outcome.BUG and again.symptom == Symptom.WRONG_VALUES


# -- an argument equal to its default in Python is not the default to torch ------------------
def _int_pow_chain() -> Case:
    """torch.pow(int16, 2) stays int16 and both exporters emit an ONNX Pow on int16, which
    ONNX does not define; pow's default exponent is 2.0, which would promote to float."""
    nodes = [{"id": "n0", "op": "aten::pow", "args": ["x"], "attrs": {"exponent": 2}},
             {"id": "n1", "op": "aten::sum", "args": ["n0"], "attrs": {"dim": [-1]}},
             {"id": "n2", "op": "aten::sub", "args": ["n1", "y"],
              "attrs": {"alpha": 1, "other_dtype": "int64"}}]
    return make_case(nodes, inputs=[{"name": "x", "shape": [8], "dtype": "int16"},
                                    {"name": "y", "shape": [], "dtype": "int64"}])


def test_canonical_keeps_an_int_argument_whose_default_is_the_equal_float() -> None:
    from fuzzer.edit import canonical
    from fuzzer.shrink import nondefault_attrs

    case = _int_pow_chain()
    kept = canonical(case).nodes[0].attrs
    assert kept == {"exponent": 2} and type(kept["exponent"]) is int
    as_float = make_case([{"id": "n0", "op": "aten::pow", "args": ["x"],
                           "attrs": {"exponent": 2.0}}])
    assert canonical(as_float).nodes[0].attrs == {} and nondefault_attrs(as_float) == 0
    assert nondefault_attrs(make_case(case.to_dict()["nodes"][:1],
                                      inputs=case.to_dict()["inputs"][:1])) == 1


def test_a_shrunk_int_pow_still_fails(sandbox: Sandbox) -> None:
    """A campaign filed this with `exponent` dropped as 'default': the minimized Case passed."""
    target = "torchscript-17/ort-all"
    case = _int_pow_chain()
    v = sandbox.run(case, target)
    assert (v.outcome, v.stage, v.symptom) == (Outcome.BUG, Stage.VALIDATION,
                                               Symptom.INVALID_MODEL), v.detail
    res = shrink(case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert res.case.ops == ["aten::pow"] and res.case.nodes[0].attrs == {"exponent": 2}
    again = sandbox.run(res.case, target)
    assert (again.outcome, again.symptom) == (Outcome.BUG, Symptom.INVALID_MODEL)


def test_a_float_exponent_does_not_cover_a_finding_of_the_int_one() -> None:
    """The campaign links a failure to a known finding without shrinking when it holds the
    finding's operators and trigger arguments; 2.0 is not the trigger 2."""
    from fuzzer.campaign import covers

    minimal = make_case([{"id": "n0", "op": "aten::pow", "args": ["x"],
                          "attrs": {"exponent": 2}}],
                        inputs=[{"name": "x", "shape": [8], "dtype": "int16"}])
    same = _int_pow_chain()
    floated = set_attr(same, same.nodes[0].id, "exponent", 2.0)
    floated = Case.from_json(floated.to_json())  # as a store would hand it back
    assert type(floated.nodes[0].attrs["exponent"]) is float
    assert covers(minimal, same) and not covers(minimal, floated)


# -- a failure found at another size of a dynamic dim -----------------------------------------
def test_the_failure_class_ignores_how_many_inputs_the_other_shapes_list() -> None:
    from fuzzer.verdict import Outcome as O
    from fuzzer.verdict import Verdict, error_class

    def cls(detail: str, shapes: tuple[tuple[int, ...], ...] | None = None) -> str:
        return error_class(Verdict("torchscript-17/ort-all", O.BUG, Stage.COMPARISON,
                                   Symptom.WRONG_VALUES, detail=detail, error=detail,
                                   shapes=shapes))

    tail = "output 0: 1/3 value(s) differ, first at [1, 0]: expected True, got False"
    four = cls(tail, ((3, 1, 4), (3, 1, 1), (3, 1), ()))
    assert four == cls(tail, ((2, 1),)) and four.startswith("at input shape: ")  # (s) too
    assert "[" not in four and four != cls("output 0: expected shape [1, 2], got [1, 4]")


def test_a_runtime_failure_at_another_size_has_one_class_for_any_number_of_inputs() -> None:
    """Not only comparisons: ONNX Runtime's refusal at another size led with the shape list
    too, whose length also moved where the error text was cut to length."""
    from fuzzer.verdict import Outcome as O
    from fuzzer.verdict import Verdict, error_class

    def cls(detail: str, shapes: tuple[tuple[int, ...], ...] | None = None) -> str:
        return error_class(Verdict("torchscript-11/ort-all", O.BUG, Stage.RUNTIME_RUN,
                                   Symptom.CRASH, detail=detail, error=detail, shapes=shapes))

    tail = ("Fail: [ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while "
            "running Split node. Name:'/Split' Status Message: Cannot split using values in "
            "'split' attribute. Axis=0 Input shape={2,1,1} NumOutputs=1 Num entries in 'split' "
            "(must equal number of outputs) was 1")
    three = cls(tail, ((2, 1, 1), (2, 1, 1), (2, 1, 1)))
    assert three == cls(tail, ((2, 1, 1),))
    assert three.startswith("at input shape(s): Fail:") and "Cannot split" in three
    assert cls("Fail: [1] other") == "Fail: [<n>] other"  # nothing else is touched


def test_other_shapes_are_a_field_of_the_verdict_and_its_json() -> None:
    """The shapes a failure was found at are the verdict's `shapes`, rendered into the text a
    user reads (tables, reports, the store's detail column) and never parsed back out of it;
    a verdict's JSON written before they had a field (shapes in evidence, both texts led by
    them) reads as the same typed verdict, with the same failure class."""
    import json

    from fuzzer.verdict import Outcome as O
    from fuzzer.verdict import Verdict, error_class

    said = "Fail: Non-zero status code returned while running Split node."
    v = Verdict("torchscript-11/ort-all", O.BUG, Stage.RUNTIME_RUN, Symptom.CRASH,
                detail=said, error=said, shapes=((2, 1, 1), (2,)))
    lead = "at input shape(s) [[2, 1, 1], [2]]: "
    assert (v.shown_detail, v.shown_error) == (lead + said, lead + said)
    d = v.to_dict()
    assert (d["detail"], d["shapes"]) == (said, [[2, 1, 1], [2]])
    assert Verdict.from_dict(json.loads(json.dumps(d))) == v
    assert "shapes" not in Verdict("t", O.PASS).to_dict()  # other verdicts' JSON unchanged
    old = {**d, "detail": lead + said, "error": lead + said,
           "evidence": {"shapes": [[2, 1, 1], [2]]}}
    del old["shapes"]
    back = Verdict.from_dict(old)
    assert (back.shapes, back.detail, back.shown_error) == (v.shapes, said, lead + said)
    assert error_class(back) == error_class(v) == "at input shape(s): Fail: Non-zero status " \
        "code returned while running Split node."
    # a text that merely starts like it, without the shapes in evidence, is left alone
    assert Verdict.from_dict({**old, "evidence": {}}).shapes is None


def test_the_store_shows_the_other_shapes_and_keeps_them_typed(tmp_path: Path) -> None:
    from fuzzer.store import Store
    from fuzzer.verdict import Outcome as O
    from fuzzer.verdict import Verdict

    case = make_case([{"id": "n0", "op": "aten::relu", "args": ["x"]}])
    v = Verdict("dynamo/ort-all", O.BUG, Stage.COMPARISON, Symptom.WRONG_VALUES,
                detail="output 0 differs", error="output 0 differs", shapes=((3, 3, 8, 8),))
    store = Store(tmp_path)
    try:
        store.record(case, [v])
        column = store.db.execute("SELECT detail FROM verdicts").fetchone()[0]
        assert column == "at input shape(s) [[3, 3, 8, 8]]: output 0 differs"
        [(_, back)] = store.unfiled()
        assert back == v
    finally:
        store.close()


def test_a_runtime_failure_at_another_size_shrinks_past_its_inputs(sandbox: Sandbox) -> None:
    """lt -> le -> unbind over a dynamic batch, from a `--dynamic 1.0` campaign: at batch 2
    ONNX Runtime cannot run the Split of unbind's traced outputs. The shrinker kept all 3
    nodes (every deletion changed the shape list's length); the bug is unbind alone."""
    target = "torchscript-11/ort-all"
    case = Case.from_json((CASES / "unbind_chain_dynamic.json").read_text())
    v = sandbox.run(case, target)
    assert (v.stage, v.symptom) == (Stage.RUNTIME_RUN, Symptom.CRASH), v.detail
    res = shrink(case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert res.case.ops == ["aten::unbind"], res.case.ops


def test_a_failure_at_another_shape_shrinks_past_its_inputs(sandbox: Sandbox) -> None:
    """Found by a mutate campaign: `any` is wrong at other batch sizes; the shrinker kept all
    5 nodes because every deletion changed the number of inputs the failure listed."""
    target = "torchscript-17/ort-all"
    case = Case.from_json((CASES / "other_shape_chain.json").read_text())
    v = sandbox.run(case, target)
    assert (v.stage, v.symptom) == (Stage.COMPARISON, Symptom.WRONG_VALUES), v.detail
    assert v.shapes is not None and v.shown_detail.startswith("at input shape(s) [[")
    res = shrink(case, v, lambda c: sandbox.run(c, target), Budget(120, 200))
    assert res.case.ops == ["aten::any"], res.case.ops
    again = sandbox.run(res.case, target)
    assert (again.outcome, again.stage, again.symptom) == (Outcome.BUG, Stage.COMPARISON,
                                                            Symptom.WRONG_VALUES)


def test_deleting_a_deep_diamond_of_joins_moves_the_output_up_at_once() -> None:
    # Lifted architectures join branches at every residual: moving an output up through 40
    # deleted joins whose branches all lead back to the graph input tried each branch again
    # at every join (3^40 walks) before each reference's answer was kept once.
    nodes = [{"id": "side", "op": "aten::neg", "args": ["x"]},
             {"id": "n0", "op": "aten::relu", "args": ["x"]}]
    nodes += [{"id": f"n{i}", "op": "aten::add", "args": [f"n{i - 1}", f"n{i - 1}"]}
              for i in range(1, 41)]
    case = make_case(nodes, outputs=["n40", "side"])
    out = keep_nodes(case, {"side"}, infer(case))
    assert out is not None and [n.id for n in out.nodes] == ["side"]

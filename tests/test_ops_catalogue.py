"""The operator catalogue: breadth, argument coverage against torch's own signatures, eager
validity of every entry's defaults, templates that render to code computing the same thing,
and reachability of every non-default and edge value."""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fuzzer import ops
from fuzzer.model import materialize
from fuzzer.ops import probe
from fuzzer.ops.resize import MODES
from fuzzer.ops.spec import OpSpec

SPECS = sorted(ops.REGISTRY.values(), key=lambda s: s.name)

# Arguments no entry needs, whatever the operator: (argument, reason).
GENERIC: dict[str, str] = {
    "out": "output buffers are an eager-API detail, never exported",
    "inplace": "in-place variants would mutate graph inputs the oracle re-runs",
    "_stacklevel": "warning plumbing, no semantics",
    "size_average": "deprecated alias of reduction",
    "reduce": "deprecated alias of reduction (scatter's own `reduce` is an entry argument)",
    "memory_format": "layout only; values are unchanged",
    "non_blocking": "device transfer only",
    "copy": "aliasing only; values are unchanged",
    "cudnn_enabled": "backend switch, no semantics",
    "cudnn_enable": "backend switch, no semantics",
    "generator": "random streams: Cases are deterministic",
    "sparse_grad": "gradient only",
    "scale_grad_by_freq": "gradient only",
    "sparse": "gradient only",
    "layout": "placement only; values are unchanged",
    "device": "placement only (convfuzz runs on the CPU)",
    "pin_memory": "placement only; values are unchanged",
}

# Per-operator exceptions: (operator, argument) -> reason. Anything else missing fails.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("aten::layer_norm", "normalized_shape"): "drawn as normalized_dims (trailing dims)",
    ("aten::rms_norm", "normalized_shape"): "drawn as normalized_dims (trailing dims)",
    ("aten::batch_norm", "training"): "training=True updates running stats in place "
                                      "(stateful; the oracle re-runs the model)",
    ("aten::instance_norm", "running_mean"): "a parameter, toggled by track_running_stats",
    ("aten::instance_norm", "running_var"): "a parameter, toggled by track_running_stats",
    ("aten::rrelu", "training"): "training=True draws random slopes",
    ("aten::dropout", "training"): "training=True draws a random mask",
    ("aten::dropout", "train"): "training=True draws a random mask",
    ("aten::softmin", "_stacklevel"): "warning plumbing",
    ("aten::multi_margin_loss", "weight"): "a parameter, toggled by with_weight",
    ("aten::expand", "implicit"): "a tracing flag, no semantics",
    ("aten::arange", "end"): "derived: start + the input's length along dim * step, as "
                             "arange(seq_len) is in real models",
    ("aten::split_with_sizes", "split_sizes"): "derived: [1, n - 1] along dim (sizes must "
                                               "sum to the dim's length)",
}
EXCEPTIONS[("aten::add.Scalar", "alpha")] = "stays 1: the Tensor entry varies alpha"
# interpolate: one entry per mode, so `mode` is fixed by the entry; the ATen `.vec` overload's
# output_size/scale_factors are the functional's size/scale_factor.
for _key, (_aten, _nd, _corners, _aa) in MODES.items():
    _op = f"aten::{_aten}"
    EXCEPTIONS[(_op, "mode")] = "fixed by the entry (one ATen op per mode)"
    if not _corners:
        EXCEPTIONS[(_op, "align_corners")] = "torch rejects align_corners for this mode"
    if not _aa:
        EXCEPTIONS[(_op, "antialias")] = "torch implements antialias for bilinear/bicubic only"


def _python_params(path: str) -> set[str] | None:
    mod, _, name = path.rpartition(".")
    fn = getattr(importlib.import_module(mod), name)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    tensors = {"input", "self", "other", "target", "weight", "bias", "input1", "input2",
               "x1", "x2", "anchor", "positive", "negative", "query", "key", "value",
               "attn_mask", "running_mean", "running_var", "pos_weight", "tensor", "a", "b"}
    return {p.name for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in tensors}


def _schema_params(spec: OpSpec) -> set[str] | None:
    # `aten::add.Scalar`: an entry named by the overload it stands for
    packet = getattr(torch.ops.aten, spec.name.split("::")[1].split(".")[0], None)
    if packet is None or spec.overload not in packet.overloads():
        return None
    schema = getattr(packet, spec.overload)._schema
    return {a.name for a in schema.arguments
            if "Tensor" not in str(a.type) and a.name not in ("self", "input")}


def _missing(spec: OpSpec, wanted: set[str]) -> set[str]:
    have = {a.name for a in spec.args}
    return {w for w in wanted - have
            if w not in GENERIC and (spec.name, w) not in EXCEPTIONS}


def test_breadth() -> None:
    assert len(SPECS) >= 150
    fams = Counter(s.family for s in SPECS)
    for fam in ("activation", "elementwise", "comparison", "logical", "bitwise", "division",
                "reduction", "cumulative", "selection", "shape", "indexing", "masking", "conv",
                "pool", "resize", "norm", "linalg", "attention", "loss", "cast"):
        assert fams[fam] >= 1, fam


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_arguments_cover_a_torch_signature(spec: OpSpec) -> None:
    refs = {"ATen schema": _schema_params(spec)}
    if spec.python:
        refs["Python signature"] = _python_params(spec.python)
    known = {k: v for k, v in refs.items() if v is not None}
    assert known, f"{spec.name}: neither overload {spec.overload!r} nor {spec.python!r} found"
    gaps = {k: _missing(spec, v) for k, v in known.items()}
    assert any(not g for g in gaps.values()), f"{spec.name} misses arguments: {gaps}"


def test_exceptions_are_used() -> None:
    """A stale exception hides nothing but misleads: each must name an existing entry."""
    for name, _ in EXCEPTIONS:
        assert name in ops.REGISTRY, name


def _first_dtype(spec: OpSpec) -> str:
    return "float32" if "float32" in spec.dtypes else spec.dtypes[0]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_defaults_run_in_eager_and_template_agrees(spec: OpSpec) -> None:
    case = probe.single_op_case(spec.name, _first_dtype(spec))
    module, inputs = materialize(case)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = module(*inputs)
        env: dict[str, Any] = {"torch": torch, "F": F}
        names = [x.name for x in case.inputs]
        env.update({n: t for n, t in zip(names, inputs, strict=True)})
        params = {p: f"P_{p}" for p in module.param_names[0]}
        env.update({f"P_{p}": getattr(module, b) for p, b in module.param_names[0].items()})
        src = spec.render(names, case.nodes[0].attrs, params)
        got = eval(src, env)  # the repro template must be standalone PyTorch code
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    assert len(got) >= len(outs), src
    for g, o in zip(got, outs, strict=False):
        g = g.float() if g.dtype == torch.bfloat16 else g
        assert g.shape == o.shape and g.dtype == o.dtype, src
        assert torch.equal(torch.nan_to_num(g.double()), torch.nan_to_num(o.double())), src


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_sampled_attrs_render(spec: OpSpec) -> None:
    """Non-default draws render too (dtype kinds, `{name:kw}` fields, non-finite floats)."""
    rng = np.random.default_rng(0)
    metas = probe._arg_metas(spec, _first_dtype(spec))
    for _ in range(5):
        attrs = spec.sample_attrs(rng, metas, 1.0)
        src = spec.render([f"x{i}" for i in range(4)], attrs)
        compile(src, spec.name, "eval")


def test_every_candidate_is_reachable() -> None:
    """At a non-default share of 1, every non-default and edge value is drawn."""
    rng = np.random.default_rng(1)
    for spec in SPECS:
        metas = probe._arg_metas(spec, _first_dtype(spec))
        for a in spec.args:
            cands = a.candidates(metas)
            seen = [False] * len(cands)
            for _ in range(40 * len(cands)):
                v = a.sample(rng, metas, 1.0)
                for i, c in enumerate(cands):
                    if repr(c) == repr(v):
                        seen[i] = True
            assert all(seen), (spec.name, a.name, [c for c, s in zip(cands, seen,
                                                                     strict=True) if not s])


def test_edges_build_as_cases() -> None:
    """Edge values are not only drawable but make valid single-operator Cases (alone or
    with partner values), except those listed by the sweep as unbuildable."""
    built = total = 0
    for spec in SPECS:
        dt = _first_dtype(spec)
        for a in spec.args:
            for e in a.edges:
                if e == a.default:
                    continue
                total += 1
                built += probe.build(probe.Probe(spec.name, dt, {a.name: e})) is not None
    assert built >= 0.9 * total, (built, total)


# -- known limitations and store statistics (no exporter needed) -------------------------------
def _verdict(target: str, error: str, outcome: str = "unsupported") -> Any:
    from fuzzer.verdict import Outcome, Stage, Symptom, Verdict

    return Verdict(target, Outcome(outcome), Stage.NODE_CONVERSION,
                   Symptom.UNSUPPORTED if outcome == "unsupported" else Symptom.CRASH,
                   detail=error, error=error)


def test_known_limitation_matches_op_target_and_error() -> None:
    from fuzzer.ops.limitations import Limitation, known

    case = probe.single_op_case("aten::_upsample_nearest_exact2d", "float32")
    msg = ("UnsupportedOperatorError: Exporting the operator 'aten::_upsample_nearest_exact2d' "
           "to ONNX opset version 17 is not supported")
    assert known(case, _verdict("torchscript-17/ort-all", msg))
    assert known(case, _verdict("dynamo/ort-all", msg)) is None  # another component
    assert known(case, _verdict("torchscript-17/ort-all", msg, "bug")) is None  # not honest
    assert known(case, _verdict("torchscript-17/ort-all", "something else")) is None
    other = probe.single_op_case("aten::relu", "float32")
    assert known(other, _verdict("torchscript-17/ort-all", msg)) is None  # op not in Case
    table = [Limitation("aten::relu", "ort-*", "NOT_IMPLEMENTED", "no kernel",
                        dtypes=("float16",), when=lambda a: True)]
    ort = "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for Relu"
    half = probe.single_op_case("aten::relu", "float16")
    assert known(half, _verdict("torchscript-17/ort-all", ort), table) == "no kernel"
    assert known(other, _verdict("torchscript-17/ort-all", ort), table) is None  # dtype


def test_limitations_name_catalogue_ops_and_compile() -> None:
    import re

    from fuzzer.ops.limitations import ALL_OPS, LIMITATIONS

    for lim in LIMITATIONS:
        assert lim.op == ALL_OPS or lim.op in ops.REGISTRY, lim.op
        re.compile(lim.error)
        assert lim.reason and lim.component


def test_ops_stats_counts_per_op_and_target(tmp_path: Any) -> None:
    from fuzzer.ops.stats import ops_stats
    from fuzzer.store import Store, StoreError
    from fuzzer.verdict import Outcome, Verdict

    store = Store(tmp_path)
    case = probe.single_op_case("aten::relu", "float32")
    store.record(case, [Verdict("torchscript-17/ort-all", Outcome.PASS),
                        _verdict("dynamo/ort-all", "boom", "bug")])
    store.close()
    st = ops_stats(tmp_path)
    assert st["aten::relu"]["torchscript-17/ort-all"]["exercised"] == 1
    assert st["aten::relu"]["dynamo/ort-all"] == {"exercised": 1, "failed": 1,
                                                   "unsupported": 0, "invalid": 0}
    with pytest.raises(StoreError):
        ops_stats(tmp_path / "missing")


def test_cli_ops_json_and_store(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from fuzzer.cli import app
    from fuzzer.store import Store
    from fuzzer.verdict import Outcome, Verdict

    res = CliRunner().invoke(app, ["ops", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) >= 150
    sp = next(r for r in rows if r["name"] == "aten::softplus")
    assert sp["family"] == "activation" and sp["args"]["beta"]["default"] == 1.0
    assert sp["args"]["beta"]["edges"] and "float16" in sp["dtypes"]
    store = Store(tmp_path)
    store.record(probe.single_op_case("aten::relu", "float32"),
                 [Verdict("torchscript-17/ort-all", Outcome.PASS)])
    store.close()
    res = CliRunner().invoke(app, ["ops", "--json", "--store", str(tmp_path)])
    relu = next(r for r in json.loads(res.output) if r["name"] == "aten::relu")
    assert relu["stats"]["torchscript-17/ort-all"]["exercised"] == 1
    res = CliRunner().invoke(app, ["ops", "--store", str(tmp_path / "nope")])
    assert res.exit_code == 2


STATEFUL = [s for s in SPECS if s.params is not None]


@pytest.mark.parametrize("spec", STATEFUL, ids=lambda s: s.name)
def test_repro_model_keeps_its_parameters_like_the_campaigns(spec: OpSpec) -> None:
    """An op that updates a parameter in place (embedding's max_norm, instance_norm's running
    stats) is cloned by the lowering; the repro's source must clone it too, or its eager run
    changes the buffers the export then bakes in, and the repro no longer shows the bug."""
    from fuzzer.codegen import model_source

    rng = np.random.default_rng(3)
    metas = probe._arg_metas(spec, _first_dtype(spec))
    checked = 0
    flips = [{a.name: not a.default} for a in spec.args if isinstance(a.default, bool)]
    draws = [{}, *flips] + [spec.sample_attrs(rng, metas, 0.7) for _ in range(12)]
    for attrs in draws:
        try:
            case = probe.single_op_case(spec.name, _first_dtype(spec), attrs)
            module, inputs = materialize(case)
        except Exception:
            continue  # a draw that does not fit these shapes: nothing to compare
        env: dict[str, Any] = {"torch": torch, "F": F}
        exec(model_source(case), env)
        repro = env["Model"]()
        before = {k: v.clone() for k, v in repro.named_buffers()}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                want = module(*inputs)
            except Exception:
                continue  # invalid in eager: never judged
            repro(*inputs)
            got = repro(*inputs)  # the second run: what an export after the eager run sees
        for k, v in repro.named_buffers():
            assert torch.equal(torch.nan_to_num(v), torch.nan_to_num(before[k])), \
                f"{spec.name}: the repro's run changed buffer {k} ({case.nodes[0].attrs})"
        for g, o in zip(got, want, strict=True):
            assert torch.equal(torch.nan_to_num(g.double()), torch.nan_to_num(o.double()))
        checked += 1
    assert checked, f"{spec.name}: no draw materialized"

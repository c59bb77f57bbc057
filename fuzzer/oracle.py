"""The oracle: run a Case through a target and judge it against torch eager.

Rules (DESIGN.md): a Case that fails in torch eager is invalid, never a finding; values are
judged against an fp64 run of the same model, and flagged only where the converted output is
farther from it than torch's own output by more than the dtype's tolerance; index outputs of
operators with ties are judged by the values they select; NaN/Inf positions are compared
explicitly; attribution asks the ONNX reference evaluator to referee ONNX Runtime.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fuzzer import ops, targets
from fuzzer.case import Case, CaseError, split_ref
from fuzzer.model import materialize, to_fp64
from fuzzer.targets import Artifact, StageFailure
from fuzzer.targets.runtimes import run_reference
from fuzzer.verdict import Attribution, Outcome, Stage, Symptom, Verdict, first_line

# (rtol, atol) per output dtype; atol scales with the output's magnitude (see _float_mismatch).
TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9), "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3), "bfloat16": (5e-2, 1e-2),
}
UNSUPPORTED = re.compile(
    r"NOT_IMPLEMENTED|not (?:yet )?implemented|is not supported|are not supported|"
    r"not currently supported|UnsupportedOperatorError|No ONNX function found|"
    r"Could not find an implementation|Unsupported: |unsupported operator", re.I)
INVALID = re.compile(r"INVALID_GRAPH|INVALID_PROTOBUF|ShapeInferenceError|Type Error|"
                     r"\[TypeInferenceError\]|ValidationError|invalid model", re.I)
OOM = re.compile(r"bad_alloc|out of memory|Failed to allocate|MemoryError", re.I)


@dataclass
class Reference:
    """torch's answer: fp32 (the Case's own dtypes) and the fp64 baseline."""

    module: Any
    inputs: list[torch.Tensor]
    out32: list[torch.Tensor]
    out64: list[torch.Tensor] | None
    env: dict[str, list[torch.Tensor]]


class Invalid(Exception):
    """The Case fails in torch eager (or does not materialize)."""


def reference(case: Case) -> Reference:
    try:
        module, inputs = materialize(case)
        with torch.no_grad():
            env = module.run_all(*inputs)
            out32 = list(module(*inputs))
    except CaseError as e:
        raise Invalid(str(e)) from e
    except Exception as e:
        raise Invalid(f"{type(e).__name__}: {first_line(str(e))}") from e
    try:
        m64, in64 = to_fp64(module, inputs)
        with torch.no_grad():
            out64: list[torch.Tensor] | None = list(m64(*in64))
    except Exception:
        out64 = None  # some ops have no fp64 kernel: judge against fp32 alone
    return Reference(module, inputs, out32, out64, env)


def classify(stage: Stage, error: BaseException | str) -> Symptom:
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    if isinstance(error, MemoryError) or OOM.search(text):
        return Symptom.OUT_OF_MEMORY
    if UNSUPPORTED.search(text):
        return Symptom.UNSUPPORTED
    if stage in (Stage.VALIDATION, Stage.RUNTIME_LOAD) and INVALID.search(text):
        return Symptom.INVALID_MODEL
    if stage == Stage.VALIDATION:
        return Symptom.INVALID_MODEL
    return Symptom.CRASH


def _error_text(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


# -- comparison -------------------------------------------------------------------------------
@dataclass
class Mismatch:
    symptom: Symptom
    output: int
    detail: str
    evidence: dict[str, Any]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64 if t.is_floating_point() else t.dtype).numpy()


def _float_mismatch(i: int, got: np.ndarray, e32: np.ndarray, r64: np.ndarray,
                    dtype: str) -> Mismatch | None:
    rtol, atol = TOLERANCE.get(dtype, TOLERANCE["float32"])
    a, e, r = got.astype(np.float64), e32, r64
    # Positions where torch's own fp32 and fp64 disagree on finiteness are numerically
    # unstable (overflow, 0/0 at a boundary): nothing there can be blamed on the converter.
    unstable = (np.isnan(e) != np.isnan(r)) | (np.isinf(e) != np.isinf(r))
    nonfinite = (~np.isfinite(a)) | (~np.isfinite(e))
    nan_bad = (np.isnan(a) != np.isnan(e)) | (np.isposinf(a) != np.isposinf(e)) | (
        np.isneginf(a) != np.isneginf(e))
    nan_bad &= nonfinite & ~unstable
    if nan_bad.any():
        j = tuple(int(k) for k in np.argwhere(nan_bad)[0])
        return Mismatch(Symptom.NAN_INF_MISMATCH, i,
                        f"output {i}: {int(nan_bad.sum())} NaN/Inf position(s) differ, first at "
                        f"{list(j)}: expected {e[j]!r}, got {a[j]!r}",
                        {"count": int(nan_bad.sum()), "index": list(j),
                         "expected": float(e[j]), "actual": float(a[j])})
    ok = np.isfinite(a) & np.isfinite(e) & np.isfinite(r)
    if not ok.any():
        return None
    err_a = np.where(ok, np.abs(a - r), 0.0)
    err_e = np.where(ok, np.abs(e - r), 0.0)
    scale = max(1.0, float(np.abs(np.where(ok, r, 0.0)).max()))
    allowed = 2.0 * err_e + atol * scale + rtol * np.abs(np.where(ok, r, 0.0))
    bad = ok & (err_a > allowed)
    if not bad.any():
        return None
    j = tuple(int(k) for k in np.unravel_index(int(np.argmax(np.where(bad, err_a, -1))),
                                               a.shape))
    return Mismatch(Symptom.WRONG_VALUES, i,
                    f"output {i}: {int(bad.sum())}/{a.size} value(s) off, max abs error "
                    f"{float(err_a[j]):.4g} at {list(j)} (expected {e[j]:.6g}, fp64 {r[j]:.6g}, "
                    f"got {a[j]:.6g}; tolerance rtol={rtol} atol={atol})",
                    {"count": int(bad.sum()), "size": int(a.size), "index": list(j),
                     "expected": float(e[j]), "fp64": float(r[j]), "actual": float(a[j]),
                     "max_abs_err": float(err_a[j]), "torch_err": float(err_e[j]),
                     "rtol": rtol, "atol": atol})


def compare(case: Case, ref: Reference, got: list[np.ndarray]) -> Mismatch | None:
    if len(got) != len(ref.out32):
        return Mismatch(Symptom.WRONG_SHAPE, -1, f"expected {len(ref.out32)} output(s), got "
                        f"{len(got)}", {"expected": len(ref.out32), "actual": len(got)})
    for i, (g, t32) in enumerate(zip(got, ref.out32, strict=True)):
        g = np.asarray(g)
        if tuple(g.shape) != tuple(t32.shape):
            return Mismatch(Symptom.WRONG_SHAPE, i, f"output {i}: expected shape "
                            f"{list(t32.shape)}, got {list(g.shape)}",
                            {"expected": list(t32.shape), "actual": list(g.shape)})
        want = str(t32.dtype).removeprefix("torch.")
        if str(g.dtype) != want:
            return Mismatch(Symptom.WRONG_DTYPE, i, f"output {i}: expected dtype {want}, got "
                            f"{g.dtype}", {"expected": want, "actual": str(g.dtype)})
        tie = _tie_rule(case, ref, i)
        order_dim = _unordered_dim(case, i)
        if tie is not None:
            m = _tie_mismatch(i, tie, t32, g, order_dim)
        elif order_dim is not None:
            # Element order is unspecified: compare sorted along that dim.
            t32 = torch.sort(t32, dim=order_dim).values
            g = torch.sort(torch.from_numpy(g), dim=order_dim).values.numpy()
            r64 = (torch.sort(ref.out64[i], dim=order_dim).values.numpy()
                   if ref.out64 is not None else _np(t32))
            m = _float_mismatch(i, g, _np(t32), r64.astype(np.float64),
                                case_output_dtype(case, ref, i))
        elif t32.is_floating_point():
            r64 = _np(ref.out64[i]) if ref.out64 is not None else _np(t32)
            dtype = case_output_dtype(case, ref, i)
            m = _float_mismatch(i, g, _np(t32), r64, dtype)
        else:
            m = _exact_mismatch(i, g, t32, ref.out64[i] if ref.out64 is not None else None)
        if m is not None:
            return m
    return None


def case_output_dtype(case: Case, ref: Reference, i: int) -> str:
    base, idx = split_ref(case.outputs[i])
    vals = ref.env.get(base)
    t = vals[idx or 0] if vals else ref.out32[i]
    return str(t.dtype).removeprefix("torch.")


def _exact_mismatch(i: int, got: np.ndarray, t32: torch.Tensor,
                    t64: torch.Tensor | None) -> Mismatch | None:
    e = t32.numpy()
    bad = got != e
    if t64 is not None:  # where fp32 and fp64 torch disagree, the value sits on a boundary
        bad &= t64.numpy() == e
    if not bad.any():
        return None
    j = tuple(int(k) for k in np.argwhere(bad)[0])
    return Mismatch(Symptom.WRONG_VALUES, i, f"output {i}: {int(bad.sum())}/{got.size} "
                    f"value(s) differ, first at {list(j)}: expected {e[j]!r}, got {got[j]!r}",
                    {"count": int(bad.sum()), "size": int(got.size), "index": list(j),
                     "expected": e[j].item(), "actual": got[j].item()})


def _tie_rule(case: Case, ref: Reference, i: int) -> tuple[Any, list[torch.Tensor],
                                                            dict[str, Any]] | None:
    base, idx = split_ref(case.outputs[i])
    try:
        node = case.node(base)
    except KeyError:
        return None
    spec = ops.get(node.op)
    rule = spec.ties.get(idx or 0)
    if rule is None:
        return None
    inputs = [ref.env[split_ref(a)[0]][split_ref(a)[1] or 0] for a in node.args]
    return rule, inputs, {**spec.defaults(), **node.attrs}


def _unordered_dim(case: Case, i: int) -> int | None:
    base, _ = split_ref(case.outputs[i])
    try:
        node = case.node(base)
    except KeyError:
        return None
    spec = ops.get(node.op)
    return spec.unordered({**spec.defaults(), **node.attrs}) if spec.unordered else None


def _tie_mismatch(i: int, tie: Any, t32: torch.Tensor, got: np.ndarray,
                  order_dim: int | None) -> Mismatch | None:
    rule, inputs, attrs = tie
    want = rule(inputs, attrs, t32)
    try:
        have = rule(inputs, attrs, torch.from_numpy(got.astype(np.int64)))
    except (RuntimeError, IndexError) as e:
        return Mismatch(Symptom.WRONG_VALUES, i, f"output {i}: index out of range "
                        f"({first_line(str(e))})", {})
    if order_dim is not None:
        want = torch.sort(want, dim=order_dim).values
        have = torch.sort(have, dim=order_dim).values
    if torch.equal(want, have) or (want.is_floating_point() and torch.allclose(
            want, have, equal_nan=True)):
        return None
    return Mismatch(Symptom.WRONG_VALUES, i, f"output {i}: indices select different values "
                    f"(ties allowed)", {"expected": want.flatten()[:8].tolist(),
                                        "actual": have.flatten()[:8].tolist()})


# -- the judge -----------------------------------------------------------------------------
def _validate(model: bytes) -> None:
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(model), full_check=True)
    except Exception as e:
        raise StageFailure(Stage.VALIDATION, e, Symptom.INVALID_MODEL) from e


_KIND_STAGE = {"exporter": Stage.NODE_CONVERSION, "pass": Stage.GRAPH_OPTIMIZATION,
               "runtime": Stage.RUNTIME_RUN}


def judge(case: Case, target_name: str, ref: Reference | None = None,
          on_stage: Callable[[str], None] | None = None) -> Verdict:
    """Run one Case through one target chain and return a classified Verdict. Never raises
    for anything the target does. `on_stage` hears each stage before it starts, so a sandbox
    that loses the process still knows where it died."""
    t0 = time.perf_counter()
    target = targets.parse(target_name)
    name = target.name
    if ref is None:
        try:
            ref = reference(case)
        except Invalid as e:
            return Verdict(name, Outcome.INVALID, Stage.EAGER, Symptom.CRASH, detail=str(e),
                           error=str(e), seconds=time.perf_counter() - t0)
    art = Artifact(case, ref.module, ref.inputs)
    timings: dict[str, float] = {}
    try:
        for comp in target.components:
            if on_stage:
                on_stage(_KIND_STAGE[comp.kind].value)
            s = time.perf_counter()
            try:
                comp.run(art)
            except StageFailure:
                raise
            except Exception as e:  # a component that raised without classifying
                raise StageFailure(_KIND_STAGE[comp.kind], e) from e
            timings[comp.kind] = timings.get(comp.kind, 0.0) + time.perf_counter() - s
            if comp.kind != "runtime" and comp is target.components[-2]:
                if on_stage:
                    on_stage(Stage.VALIDATION.value)
                _validate(art.model)  # after the last graph-producing component
    except StageFailure as f:
        symptom = f.symptom or classify(f.stage, f.error)
        v = Verdict(name, Outcome.UNSUPPORTED if symptom == Symptom.UNSUPPORTED else Outcome.BUG,
                    f.stage, symptom, detail=first_line(_error_text(f.error)),
                    error=_error_text(f.error), evidence={"timings": timings})
        if v.outcome == Outcome.BUG:
            v.attribution = _attribute_failure(target, art, ref, f.stage)
        v.seconds = time.perf_counter() - t0
        return v
    m = compare(case, ref, art.outputs or [])
    ev: dict[str, Any] = {"timings": timings}
    if m is None:
        return Verdict(name, Outcome.PASS, evidence=ev, seconds=time.perf_counter() - t0)
    ev |= m.evidence | {"output": m.output}
    attribution, ev["reference_evaluator"] = _attribute_mismatch(target, art, case, ref)
    return Verdict(name, Outcome.BUG, Stage.COMPARISON, m.symptom, attribution, m.detail,
                   m.detail, ev, time.perf_counter() - t0)


def _attribute_failure(target: targets.Target, art: Artifact, ref: Reference,
                       stage: Stage) -> Attribution:
    if stage in (Stage.TRACE, Stage.NODE_CONVERSION, Stage.VALIDATION):
        return Attribution.CONVERTER
    if stage == Stage.GRAPH_OPTIMIZATION:
        return Attribution.OPTIMIZER
    if target.runtime.name == "ref" or art.model is None:
        return Attribution.UNKNOWN
    # ONNX Runtime rejected or crashed on the model: if the reference evaluator runs it and
    # agrees with torch, the runtime is at fault; if it fails as well, the model is.
    try:
        outs = run_reference(art)
    except StageFailure as f:
        return (Attribution.UNKNOWN if classify(f.stage, f.error) == Symptom.UNSUPPORTED
                else Attribution.CONVERTER)
    return Attribution.RUNTIME if compare(art.case, ref, outs) is None else Attribution.CONVERTER


def _attribute_mismatch(target: targets.Target, art: Artifact, case: Case,
                        ref: Reference) -> tuple[Attribution, str]:
    if target.runtime.name == "ref":
        return Attribution.CONVERTER, "is the runtime of this target"
    try:
        outs = run_reference(art)
    except StageFailure as f:
        return Attribution.UNKNOWN, f"failed: {first_line(_error_text(f.error))}"
    m = compare(case, ref, outs)
    if m is None:
        return Attribution.RUNTIME, "agrees with torch"
    if _close(outs, art.outputs or []):
        # Both ONNX executors agree and torch does not: the model computes something else.
        return Attribution.CONVERTER, f"agrees with ONNX Runtime, not torch ({m.detail})"
    return Attribution.UNKNOWN, f"disagrees with both torch and ONNX Runtime ({m.detail})"


def _close(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=1e-3,
                               atol=1e-5, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True

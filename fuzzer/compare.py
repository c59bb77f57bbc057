"""Comparison rules: a converted model's outputs against torch's fp32 and fp64 answers.

Values are flagged only where the converted output is farther from the fp64 baseline than
torch's own output by more than the tolerance of the least precise floating dtype on the
output's data flow (a float32 stage's rounding stays in a float64 output); index outputs of
operators with ties are judged by the values they select; outputs whose order is unspecified
are compared sorted; NaN/Inf positions are compared explicitly, except where torch's fp32 and
fp64 disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fuzzer import ops
from fuzzer.case import Case, split_ref, upstream
from fuzzer.verdict import Symptom, first_line

# (rtol, atol) per output dtype; atol scales with the output's magnitude (see _float_mismatch).
TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9), "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3), "bfloat16": (5e-2, 1e-2),
}
@dataclass
class Reference:
    """torch's answer: fp32 (the Case's own dtypes) and, computed only when a comparison
    needs it, the fp64 baseline (most outputs match fp32 closely and never need it)."""

    module: Any
    inputs: list[torch.Tensor]
    out32: list[torch.Tensor]
    env: dict[str, list[torch.Tensor]]
    baseline: Callable[[], list[torch.Tensor] | None] | None = None
    _out64: Any = field(default=None, repr=False)
    _done: bool = field(default=False, repr=False)

    @property
    def out64(self) -> list[torch.Tensor] | None:
        if not self._done:
            self._out64 = self.baseline() if self.baseline else None
            self._done = True
        return self._out64


@dataclass
class Mismatch:
    symptom: Symptom
    output: int
    detail: str
    evidence: dict[str, Any]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64 if t.is_floating_point() else t.dtype).numpy()


# The two rules below are the oracle's, and repro scripts carry their source verbatim
# (fuzzer/defect.py): keep them self-contained, numpy only.
def nonfinite_differs(a, e, r):
    """Positions where the ONNX output `a` and torch's fp32 output `e` differ in NaN, +Inf or
    -Inf, except where torch's fp32 and fp64 (`r`) disagree on finiteness themselves: those
    are numerically unstable (overflow, 0/0 at a boundary) and blame nothing."""
    unstable = (np.isnan(e) != np.isnan(r)) | (np.isinf(e) != np.isinf(r))
    nonfinite = (~np.isfinite(a)) | (~np.isfinite(e))
    bad = (np.isnan(a) != np.isnan(e)) | (np.isposinf(a) != np.isposinf(e)) | (
        np.isneginf(a) != np.isneginf(e))
    return bad & nonfinite & ~unstable


def values_off(a, e, r, rtol, atol):
    """(mask of finite values off, ONNX error, torch error): a value is off where ONNX is
    farther from the fp64 baseline `r` than twice torch's own error, plus the tolerance (atol
    scaled by the output's magnitude)."""
    ok = np.isfinite(a) & np.isfinite(e) & np.isfinite(r)
    err_a = np.where(ok, np.abs(a - r), 0.0)
    err_e = np.where(ok, np.abs(e - r), 0.0)
    scale = max(1.0, float(np.abs(np.where(ok, r, 0.0)).max(initial=0.0)))
    allowed = 2.0 * err_e + atol * scale + rtol * np.abs(np.where(ok, r, 0.0))
    return ok & (err_a > allowed), err_a, err_e


def _float_mismatch(i: int, got: np.ndarray, e32: np.ndarray, r64: np.ndarray,
                    dtype: str) -> Mismatch | None:
    rtol, atol = TOLERANCE.get(dtype, TOLERANCE["float32"])
    a, e, r = got.astype(np.float64), e32, r64
    nan_bad = nonfinite_differs(a, e, r)
    if nan_bad.any():
        j = tuple(int(k) for k in np.argwhere(nan_bad)[0])
        return Mismatch(Symptom.NAN_INF_MISMATCH, i,
                        f"output {i}: {int(nan_bad.sum())} NaN/Inf position(s) differ, first at "
                        f"{list(j)}: expected {e[j]!r}, got {a[j]!r}",
                        {"count": int(nan_bad.sum()), "index": list(j),
                         "expected": float(e[j]), "actual": float(a[j])})
    if not (np.isfinite(a) & np.isfinite(e) & np.isfinite(r)).any():
        return None  # nothing finite to compare (and no inf - inf warnings)
    bad, err_a, err_e = values_off(a, e, r, rtol, atol)
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


def _close_to_torch(got: np.ndarray, e32: np.ndarray, dtype: str) -> bool:
    """The cheap first check: same non-finite positions and values within the dtype's
    tolerance of torch's own output (a subset of what the fp64 rule accepts)."""
    rtol, atol = TOLERANCE.get(dtype, TOLERANCE["float32"])
    a = got.astype(np.float64)
    if a.size == 0:
        return True
    if np.isfinite(a).all() and np.isfinite(e32).all():  # the usual case, in 5 array ops
        scale = max(1.0, float(np.abs(e32).max()))
        return bool(np.all(np.abs(a - e32) <= atol * scale + rtol * np.abs(e32)))
    if not np.array_equal(np.isnan(a), np.isnan(e32)) or not np.array_equal(
            np.where(np.isinf(a), a, 0.0), np.where(np.isinf(e32), e32, 0.0)):
        return False
    ok = np.isfinite(a)
    if not ok.any():
        return True
    scale = max(1.0, float(np.abs(np.where(ok, e32, 0.0)).max()))
    return bool(np.all(np.abs(np.where(ok, a - e32, 0.0)) <= atol * scale + rtol * np.abs(
        np.where(ok, e32, 0.0))))


def compare(case: Case, ref: Reference, got: list[np.ndarray],
            computes: Mapping[str, str] | None = None) -> Mismatch | None:
    """`computes`: the dtype a runtime really computes a dtype in (OpenVINO: float64 in
    float32); such outputs are held to that dtype's tolerance."""
    held: Callable[[str], str] = (lambda d: computes.get(d, d)) if computes else (lambda d: d)
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
        found = producer(case, i)
        tie = _tie_rule(ref, found)
        order_dim = _unordered_dim(found)
        if tie is not None:
            m = _tie_mismatch(i, tie, t32, g, order_dim)
        elif order_dim is not None:
            # Element order is unspecified: compare sorted along that dim.
            t32 = torch.sort(t32, dim=order_dim).values
            g = torch.sort(torch.from_numpy(g), dim=order_dim).values.numpy()
            r64 = (torch.sort(ref.out64[i], dim=order_dim).values.numpy()
                   if ref.out64 is not None else _np(t32))
            m = _float_mismatch(i, g, _np(t32), r64.astype(np.float64),
                                held(judged_dtype(case, i, _env_dtypes(ref))))
        elif t32.is_floating_point():
            dtype = held(case_output_dtype(case, ref, i))
            e32 = _np(t32)
            if _close_to_torch(g, e32, dtype):
                continue  # within tolerance of torch itself: no baseline needed
            loosest = held(judged_dtype(case, i, _env_dtypes(ref)))
            if loosest != dtype:
                dtype = loosest
                if _close_to_torch(g, e32, dtype):
                    continue
            r64 = _np(ref.out64[i]) if ref.out64 is not None else e32
            m = _float_mismatch(i, g, e32, r64, dtype)
        else:
            m = _exact_mismatch(i, g, t32, ref)
        if m is not None:
            return m
    return None


def case_output_dtype(case: Case, ref: Reference, i: int) -> str:
    base, idx = split_ref(case.outputs[i])
    vals = ref.env.get(base)
    t = vals[idx or 0] if vals else ref.out32[i]
    return str(t.dtype).removeprefix("torch.")


def judged_dtype(case: Case, i: int, dtypes_of: Callable[[str], list[str]]) -> str:
    """The tolerance output i is held to: that of the least precise floating dtype on its
    data flow. Precision a float32 stage lost stays lost in a float64 output, and an explicit
    cast repeats that rounding in the fp64 baseline too, so torch's own error no longer covers
    it (a chain linear(f32) -> type_as(f64) was flagged for one float32 ulp)."""
    loosest = ""
    for name in upstream(case, [case.outputs[i]]):
        for d in dtypes_of(name):
            if d in TOLERANCE and (not loosest or TOLERANCE[d][0] > TOLERANCE[loosest][0]):
                loosest = d
    return loosest or "float32"


def _env_dtypes(ref: Reference) -> Callable[[str], list[str]]:
    return lambda name: [str(t.dtype).removeprefix("torch.") for t in ref.env.get(name, ())
                         if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _exact_mismatch(i: int, got: np.ndarray, t32: torch.Tensor,
                    ref: Reference) -> Mismatch | None:
    e = t32.numpy()
    bad = got != e
    if not bad.any():
        return None  # the common case: no fp64 run needed
    t64 = ref.out64[i] if ref.out64 is not None else None
    if t64 is not None:  # where fp32 and fp64 torch disagree, the value sits on a boundary
        bad &= t64.numpy() == e
    if not bad.any():
        return None
    j = tuple(int(k) for k in np.argwhere(bad)[0])
    return Mismatch(Symptom.WRONG_VALUES, i, f"output {i}: {int(bad.sum())}/{got.size} "
                    f"value(s) differ, first at {list(j)}: expected {e[j]!r}, got {got[j]!r}",
                    {"count": int(bad.sum()), "size": int(got.size), "index": list(j),
                     "expected": e[j].item(), "actual": got[j].item()})


Producer = tuple[Any, Any, dict[str, Any], int] | None  # node, spec, attrs, output index


def producer(case: Case, i: int) -> Producer:
    """The node behind output i, its catalogue entry, effective attrs and output index."""
    base, idx = split_ref(case.outputs[i])
    try:
        node = case.node(base)
    except KeyError:
        return None  # a graph input passed through
    spec = ops.get(node.op)
    return node, spec, {**spec.defaults(), **node.attrs}, idx or 0


def _tie_rule(ref: Reference, found: Producer) -> tuple[Any, list[torch.Tensor],
                                                        dict[str, Any]] | None:
    if found is None or found[3] not in found[1].ties:
        return None
    node, spec, attrs, idx = found
    inputs = [ref.env[split_ref(a)[0]][split_ref(a)[1] or 0] for a in node.args]
    return spec.ties[idx], inputs, attrs


def _unordered_dim(found: Producer) -> int | None:
    if found is None or found[1].unordered is None:
        return None
    return found[1].unordered(found[2])


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



def close(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
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

"""The oracle: run a Case through a target and judge it against torch eager.

Rules (DESIGN.md): a Case that fails in torch eager is invalid, never a finding; values are
judged against an fp64 run of the same model, and flagged only where the converted output is
farther from it than torch's own output by more than the dtype's tolerance; index outputs of
operators with ties are judged by the values they select; NaN/Inf positions are compared
explicitly; attribution asks the ONNX reference evaluator to referee ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import onnx
import torch
from onnx import shape_inference

from fuzzer import frontends, fusions, targets
from fuzzer.blame import blame
from fuzzer.case import Case, CaseError
from fuzzer.compare import Reference, close, compare
from fuzzer.edit import reseed, with_shapes
from fuzzer.model import make_inputs, materialize, to_fp64
from fuzzer.ops.limitations import known
from fuzzer.targets import Artifact, StageFailure, rewriters
from fuzzer.targets.runtimes import ORT_FUSED, ORT_TRANSFORMERS, run_reference
from fuzzer.verdict import (
    Attribution,
    Outcome,
    Stage,
    Symptom,
    Verdict,
    as_shapes,
    first_line,
)

UNSUPPORTED = re.compile(
    r"NOT_IMPLEMENTED|not (?:yet )?implemented|\bnot supported\b|does not support|"
    r"not currently supported|UnsupportedOperatorError|No ONNX function found|"
    r"Could not find an implementation|Unsupported: |unsupported operator|"
    r"\bonly\b[^.\n]{0,80}\b(?:is|are) supported\b|"
    # TorchScript's symbolic_helper refusing a traced (non-constant) value where ONNX wants
    # an attribute: "... because it is not constant. Please try to make things static".
    r"because it is not constant|"
    r"Unsupported type for ", re.I)  # e.g. sdpa's symbolic: "Unsupported type for attn_mask"
INVALID = re.compile(r"INVALID_GRAPH|INVALID_PROTOBUF|ShapeInferenceError|Type Error|"
                     r"\[TypeInferenceError\]|ValidationError|invalid model", re.I)
OOM = re.compile(r"bad_alloc|out of memory|Failed to allocate|MemoryError", re.I)


class Invalid(Exception):
    """The Case fails in torch eager (or does not materialize)."""


def reference(case: Case) -> Reference:
    """The Case run by its own framework (fuzzer.frontends): fp32, and fp64 when needed."""
    try:
        fe = frontends.of_case(case)
    except frontends.FrontendError as e:
        raise Invalid(str(e)) from e
    return fe.load("reference")(case)


def torch_reference(case: Case) -> Reference:
    """The PyTorch frontend's reference: torch eager."""
    try:
        module, inputs = materialize(case)
    except CaseError as e:
        raise Invalid(str(e)) from e
    except Exception as e:
        raise Invalid(f"{type(e).__name__}: {first_line(str(e))}") from e
    return reference_at(module, inputs)


def reference_at(module: Any, inputs: list[torch.Tensor]) -> Reference:
    """torch's fp32 and fp64 answers for this module at these inputs."""
    try:
        with torch.no_grad():
            env = module.run_all(*inputs)
        out32 = module.outputs(env)  # the same values forward() returns, without a 2nd run
    except Exception as e:
        raise Invalid(f"{type(e).__name__}: {first_line(str(e))}") from e
    def baseline() -> list[torch.Tensor] | None:
        try:
            m64, in64 = to_fp64(module, inputs)
            with torch.no_grad():
                return list(m64(*in64))
        except Exception:
            return None  # some ops have no fp64 kernel: judge against fp32 alone

    return Reference(module, inputs, out32, env, baseline)


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


# -- the judge -----------------------------------------------------------------------------
# ONNX Runtime contrib ops that live in the ONNX domain; with com.microsoft ones, a model
# that holds them is checked by ONNX Runtime when it loads, not by onnx.checker.
_CONTRIB_IN_ONNX_DOMAIN = frozenset({"SimplifiedLayerNormalization",
                                     "SkipSimplifiedLayerNormalization"})


def _has_contrib_ops(model: bytes) -> bool:
    return any(n.domain == "com.microsoft" or n.op_type in _CONTRIB_IN_ONNX_DOMAIN
               for n in onnx.load_from_string(model).graph.node)


def _validate(model: bytes, rewritten: bool = False) -> None:
    """onnx.checker on the model; for a rewriter's output (`rewritten`), not when it holds
    ONNX Runtime contrib ops the checker cannot know."""
    if rewritten and _has_contrib_ops(model):
        return

    try:
        # The bytes go straight to the C++ checker: a ModelProto would be parsed in Python
        # only to be serialized again (half of checking a tiny model).
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise StageFailure(Stage.VALIDATION, e, Symptom.INVALID_MODEL) from e


_KIND_STAGE = {"exporter": Stage.NODE_CONVERSION, "pass": Stage.GRAPH_OPTIMIZATION,
               "runtime": Stage.RUNTIME_RUN, "converter": Stage.NODE_CONVERSION}


def judge(case: Case, target_name: str, ref: Reference | None = None,
          on_stage: Callable[[str], None] | None = None, shared: Any = None) -> Verdict:
    """Run one Case through one target chain and return a classified Verdict. Never raises
    for anything the target does. `on_stage` hears each stage before it starts, so a sandbox
    that loses the process still knows where it died. `shared` (a fuzzer.prefix.Prefixes
    of this Case) runs each chain prefix once for all the Case's targets."""
    t0 = time.perf_counter()
    target = targets.parse(target_name)
    theirs = frontends.of_case(case).name
    if theirs != target.frontend:  # a Case another framework's converter cannot read
        why = f"target {target.name} converts {target.frontend} models, this Case is {theirs}"
        return Verdict(target.name, Outcome.INVALID, Stage.EAGER, Symptom.CRASH, detail=why,
                       error=why, seconds=time.perf_counter() - t0)
    if ref is None:
        try:
            ref = reference(case)
        except Invalid as e:
            return Verdict(target.name, Outcome.INVALID, Stage.EAGER, Symptom.CRASH,
                           detail=str(e), error=str(e), seconds=time.perf_counter() - t0)
    art = Artifact(case, ref.module, ref.inputs)
    timings: dict[str, float] = {}
    try:
        run_chain(target, art, timings, on_stage, shared)
        v = _judge_outputs(target, art, ref)
        if v is None:
            v = _judge_other_shapes(target, art, timings, on_stage)
    except StageFailure as f:
        v = _failure_verdict(target, art, ref, f)
    if v is None:
        v = Verdict(target.name, Outcome.PASS)
    v.evidence["timings"] = timings
    if "shapes_checked" in art.notes:
        v.evidence["shapes_checked"] = art.notes["shapes_checked"]
    fused = fusions.fired(target, art.notes)
    if fused:
        v.evidence["fusions"] = fused
    if "fused_present" in art.notes:
        v.evidence["fused_present"] = art.notes["fused_present"]
    # Not at other shapes: blame re-runs the model at the traced shape, where it passes, and
    # would name the runtime's highest optimization level for any failure found there.
    if v.outcome == Outcome.BUG and v.stage in _BLAMEABLE and v.shapes is None:
        blamed = _blame(target, art, lambda model, rt: _misbehaves(art, ref, model, rt,
                                                                   timings))
        if blamed is None and v.stage == Stage.COMPARISON and fusions.has_rewriter(target):
            blamed = _differential(target, art, timings)
        if blamed is not None:
            v.stage, v.attribution = Stage.GRAPH_OPTIMIZATION, Attribution.OPTIMIZER
            v.evidence["blame"] = blamed
    if v.outcome == Outcome.UNSUPPORTED:
        reason = known(case, v)
        if reason:  # already documented: counted under its reason, never re-reported
            v.evidence["known_limitation"] = reason
    v.seconds = time.perf_counter() - t0
    return v


def _blame(target: targets.Target, art: Artifact,
           fails: Callable[[bytes, str], bool]) -> dict[str, Any] | None:
    # ONNX Runtime's transformers whose fused ops appear first: the likeliest culprits.
    seen = (art.notes.get("fired") or {}).get(target.runtime.name) or {}
    likely = [ORT_FUSED[t] for t in seen if t in ORT_FUSED]
    return blame(art.history, target.runtime.name, fails,
                 {c.name: c.settings.get("rewriter") or c.family for c in target.components},
                 withouts={c.name: c.without for c in target.components if c.without},
                 switches=fusions.switches(art.notes, target),
                 transformers=[*likely, *ORT_TRANSFORMERS],
                 judgeable=rewriters.runnable)


def _run_on(art: Artifact, model: bytes, runtime: str,
            timings: dict[str, float]) -> list[np.ndarray] | None:
    """The model's outputs on that runtime, None when it fails to run."""
    trial = Artifact(art.case, art.module, art.inputs, model=model)
    try:
        with _timed(timings, "runtime"):
            targets.resolve(runtime).run(trial)
    except StageFailure:
        return None
    return trial.outputs


def _differential(target: targets.Target, art: Artifact,
                  timings: dict[str, float]) -> dict[str, Any] | None:
    """The rewriters' own oracle: the raw export, un-rewritten, on the same runtime (ONNX
    Runtime with its optimizations off) against the rewritten model's outputs. Torch already
    disagrees with both (the exporter's doing); a rewrite that changes the results further,
    beyond tolerance, is the rewriter's finding all the same."""
    if not art.history or art.outputs is None:
        return None
    base_rt = "ort-disabled" if target.runtime.name.startswith("ort-") else target.runtime.name
    baseline = _run_on(art, art.history[0][2], base_rt, timings)
    if baseline is None or close(baseline, art.outputs):
        return None

    def differs(model: bytes, rt: str) -> bool:
        outs = _run_on(art, model, rt, timings)
        return outs is None or not close(baseline, outs)

    blamed = _blame(target, art, differs)
    if blamed is not None:
        blamed["oracle"] = (f"differential: the rewritten model's outputs differ from the raw "
                            f"export's on {base_rt} (torch disagrees with both)")
    return blamed


def _misbehaves(art: Artifact, ref: Reference, model: bytes, runtime: str,
                timings: dict[str, float]) -> bool:
    """Does this model fail (invalid, rejected, crashing or wrong) on this runtime? The
    runtime's time here is the runtime's, not the fuzzer's, in the verdict's timings."""
    trial = Artifact(art.case, art.module, art.inputs, model=model)
    try:
        _validate(model, rewritten=True)
        with _timed(timings, "runtime"):
            targets.resolve(runtime).run(trial)
    except StageFailure:
        return True
    return compare(art.case, ref, trial.outputs or [],
                   trial.notes.get("computes")) is not None


_BLAMEABLE = (Stage.COMPARISON, Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN, Stage.VALIDATION)


@contextlib.contextmanager
def _timed(timings: dict[str, float], kind: str) -> Iterator[None]:
    """Adds the block's seconds to timings[kind], also when it raises: the verdict's timings
    say where the time went (export, passes, runtime, validation), not only what passed."""
    s = time.perf_counter()
    try:
        yield
    finally:
        timings[kind] = timings.get(kind, 0.0) + time.perf_counter() - s


def run_chain(target: targets.Target, art: Artifact, timings: dict[str, float],
              on_stage: Callable[[str], None] | None = None, shared: Any = None) -> None:
    """Export, pass and run `art` through the target's components, validating the model
    after the last graph-producing one; raises StageFailure where a component fails.
    `shared` (fuzzer.prefix.Prefixes): a prefix another chain ran already is not run again;
    `art` takes the state it left (or its failure is raised again)."""
    for i, comp in enumerate(target.components):
        def step(a: Artifact, comp: targets.Component = comp) -> None:
            if on_stage:
                on_stage(_KIND_STAGE[comp.kind].value)
            try:
                comp.run(a)
            except StageFailure:
                raise
            except Exception as e:  # a component that raised without classifying
                raise StageFailure(_KIND_STAGE[comp.kind], e) from e

        def check(a: Artifact, comp: targets.Component = comp) -> None:
            if on_stage:
                on_stage(Stage.VALIDATION.value)
            _validate(a.model, rewritten=fusions.project(comp) is not None)

        # a failing export costs converter time too
        _step(shared, target, i, "", art, timings, comp.kind, step)
        if comp.kind in ("exporter", "pass") and comp is target.components[-2]:
            # after the last graph-producing component
            _step(shared, target, i, "validation", art, timings, "validation", check)


def _step(shared: Any, target: targets.Target, i: int, what: str, art: Artifact,
          timings: dict[str, float], kind: str, fn: Callable[[Artifact], None]) -> None:
    if shared is None or i == len(target.components) - 1:  # a chain's runtime is its own
        with _timed(timings, kind):
            fn(art)
    else:
        shared.step(target, i, what, art, timings, kind, fn)


def _failure_verdict(target: targets.Target, art: Artifact, ref: Reference,
                     f: StageFailure, shapes: list[list[int]] | None = None) -> Verdict:
    symptom = f.symptom or classify(f.stage, f.error)
    text = _error_text(f.error)
    v = Verdict(target.name, Outcome.UNSUPPORTED if symptom == Symptom.UNSUPPORTED
                else Outcome.BUG, f.stage, symptom, detail=first_line(text), error=text,
                shapes=None if shapes is None else as_shapes(shapes))
    if v.outcome != Outcome.BUG:
        return v
    if f.raised_in:
        v.evidence["raised_in"] = f.raised_in
    invalid = (_invalid_at(art) if shapes and art.model is not None
               and f.stage in (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN) else None)
    if invalid:
        # At another size the spec itself rejects the model (e.g. Split sizes traced for
        # batch 1 at batch 2): ONNX Runtime is right to fail, however lenient the
        # reference evaluator is.
        v.attribution = Attribution.CONVERTER
        v.evidence["shape_inference"] = invalid
    elif (target.runtime.referees != ("ref",) and art.model is not None
          and f.stage in (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN)):
        v.attribution, v.evidence["referees"] = _referee_vote(target, art, ref)
    else:
        v.attribution = _attribute_failure(target, art, ref, f.stage)
    return v


def _invalid_at(art: Artifact) -> str | None:
    """ONNX's strict shape inference of the model with its inputs fixed to `art.inputs`'
    shapes: the error it reports, or None when the model is valid at those shapes."""
    model = onnx.load_from_string(art.model)
    for inp, t in zip(model.graph.input, art.inputs, strict=False):
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != t.dim():
            return None  # not the Case's inputs in order: nothing to say
        for d, size in zip(dims, t.shape, strict=True):
            d.Clear()
            d.dim_value = int(size)
    try:
        shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        return first_line(str(e))
    return None


def _judge_outputs(target: targets.Target, art: Artifact, ref: Reference,
                   shapes: list[list[int]] | None = None) -> Verdict | None:
    m = compare(art.case, ref, art.outputs or [], art.notes.get("computes"))
    if m is None:
        return None
    ev: dict[str, Any] = m.evidence | {"output": m.output}
    attribution, said = _attribute_mismatch(target, art, art.case, ref, m.symptom)
    if art.model is not None:  # a converter has no ONNX model for referees to run
        ev["referees" if target.runtime.referees != ("ref",) else "reference_evaluator"] = said
    return Verdict(target.name, Outcome.BUG, Stage.COMPARISON, m.symptom, attribution,
                   m.detail, m.detail, ev, shapes=None if shapes is None else as_shapes(shapes))


# Sizes a dynamic dim of traced size s takes at the extra shapes: every dim of the same traced
# size moves together, so inputs that must agree (a batch dim) still agree.
ALT_SIZES: tuple[Callable[[int], int], ...] = (lambda s: s + 1, lambda s: 2 * s + 1)


def other_shapes(case: Case) -> list[list[list[int]]]:
    if not any(x.dynamic for x in case.inputs):
        return []
    return [[[f(s) if d in x.dynamic else s for d, s in enumerate(x.shape)] for x in case.inputs]
            for f in ALT_SIZES]


def _specialized(art: Artifact) -> bool:
    graph = onnx.load_from_string(art.model).graph
    declared = {i.name: i.type.tensor_type.shape.dim for i in graph.input}
    for x in art.case.inputs:
        dims = declared.get(x.name)
        if dims is not None and any(d < len(dims) and dims[d].HasField("dim_value")
                                    for d in x.dynamic):
            return True
    return False


def _judge_other_shapes(target: targets.Target, art: Artifact, timings: dict[str, float],
                        on_stage: Callable[[str], None] | None = None) -> Verdict | None:
    """A model exported with dynamic dims must also be right at other sizes of them. Torch
    eager runs again here, so the stage says so: a worker lost in it makes the Case invalid,
    not the runtime guilty."""
    alternatives = other_shapes(art.case)
    if not alternatives or art.model is None or _specialized(art):
        # (no ONNX model: a converter traced at the Case's shapes, which is all it claims)
        return None  # the exporter declared a dim static (allowed by Dim.AUTO): nothing to hold
    for k, shapes in enumerate(alternatives):
        # Fresh values as well as a fresh shape.
        alt_case = reseed(with_shapes(art.case, shapes), art.case.seed + k + 1)
        if on_stage:
            on_stage(Stage.EAGER.value)
        try:
            ref = reference_at(art.module, make_inputs(alt_case))
        except Invalid:
            continue  # eager rejects this size: nothing to hold the converter to
        alt = Artifact(art.case, art.module, ref.inputs, model=art.model)
        if on_stage:
            on_stage(Stage.RUNTIME_RUN.value)
        try:
            with _timed(timings, "runtime"):  # the runtime under test, at another shape
                target.runtime.run(alt)
        except StageFailure as f:
            v = _failure_verdict(target, alt, ref, f, shapes)
        else:
            v = _judge_outputs(target, alt, ref, shapes)
        if v is not None:
            return v
        art.notes["shapes_checked"] = art.notes.get("shapes_checked", 0) + 1
    return None


def _attribute_failure(target: targets.Target, art: Artifact, ref: Reference,
                       stage: Stage) -> Attribution:
    if stage in (Stage.TRACE, Stage.NODE_CONVERSION, Stage.VALIDATION):
        return Attribution.CONVERTER
    if stage == Stage.GRAPH_OPTIMIZATION:
        return Attribution.OPTIMIZER
    if target.runtime.kind == "converter":  # its own runtime failed: still its project
        return Attribution.RUNTIME
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


_LAYOUT = (Symptom.WRONG_SHAPE, Symptom.WRONG_DTYPE)


def _layout(outs: list[Any]) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(np.shape(o)), str(np.asarray(o).dtype)) for o in outs]


def _declared_dtypes(art: Artifact) -> list[str]:
    graph = onnx.load_from_string(art.model).graph
    return [str(onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type))
            for o in graph.output]


def _attribute_mismatch(target: targets.Target, art: Artifact, case: Case, ref: Reference,
                        symptom: Symptom) -> tuple[Attribution, str]:
    if target.runtime.name == "ref":
        return Attribution.CONVERTER, "is the runtime of this target"
    if art.model is None:  # a converter: lowering and kernels are one project's
        return Attribution.CONVERTER, "has no ONNX model to run (the converter runs its own)"
    if target.runtime.referees != ("ref",):
        return _referee_vote(target, art, ref)
    try:
        outs = run_reference(art)
    except StageFailure as f:
        failed = f"failed: {first_line(_error_text(f.error))}"
        if symptom == Symptom.WRONG_DTYPE and _declared_dtypes(art) == [
                dtype for _, dtype in _layout(art.outputs or [])]:
            # ONNX Runtime gives the dtypes the model declares for its outputs: the converter
            # wrote them, whatever the reference evaluator makes of the rest of the model.
            return Attribution.CONVERTER, (f"{failed.rstrip('.')}; the model declares ONNX "
                                           "Runtime's dtypes")
        return Attribution.UNKNOWN, failed
    m = compare(case, ref, outs)
    if m is None:
        return Attribution.RUNTIME, "agrees with torch"
    if close(outs, art.outputs or []):
        # Both ONNX executors agree and torch does not: the model computes something else.
        return Attribution.CONVERTER, f"agrees with ONNX Runtime, not torch ({m.detail})"
    if symptom in _LAYOUT and _layout(outs) == _layout(art.outputs or []):
        # The shapes and dtypes are the model's: both executors give the ones torch does not
        # (their values may still differ, e.g. at nearest-neighbour ties).
        return Attribution.CONVERTER, (f"gives ONNX Runtime's shapes and dtypes, not torch's "
                                       f"({m.detail})")
    return Attribution.UNKNOWN, f"disagrees with both torch and ONNX Runtime ({m.detail})"




def _referee_vote(target: targets.Target, art: Artifact, ref: Reference
                  ) -> tuple[Attribution, str]:
    """A runtime refereed by others (OpenVINO by ONNX Runtime and the reference evaluator):
    a failure none of them shares is the runtime's; one every referee that can run the model
    shares is the model's, i.e. the exporter's (one finding, not one per runtime)."""
    said, good, bad = [], 0, 0
    for name in target.runtime.referees:
        trial = Artifact(art.case, art.module, art.inputs, model=art.model)
        try:
            targets.resolve(name).run(trial)
        except StageFailure as f:
            if classify(f.stage, f.error) == Symptom.UNSUPPORTED:
                said.append(f"{name} cannot run it ({first_line(_error_text(f.error))[:120]})")
                continue
            bad += 1
            said.append(f"{name} fails too ({first_line(_error_text(f.error))[:120]})")
            continue
        m = compare(art.case, ref, trial.outputs or [], trial.notes.get("computes"))
        if m is None:
            good += 1
            said.append(f"{name} agrees with torch")
        else:
            bad += 1
            said.append(f"{name} disagrees with torch too ({m.detail[:120]})")
    verdict = (Attribution.RUNTIME if good and not bad else
               Attribution.CONVERTER if bad and not good else Attribution.UNKNOWN)
    return verdict, "; ".join(said)

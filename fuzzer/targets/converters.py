"""Converters other than torch.onnx, on the same Cases: OpenVINO (as a runtime of any ONNX
chain, `ov`, and from the torch module through its PyTorch frontend, `ov-pt`), ExecuTorch
(portable kernels, or the XNNPACK delegate) and LiteRT (litert-torch, LiteRT interpreter).

Each package is an optional extra: naming a component whose package is missing is a one-line
error (`pip install 'convfuzz[openvino]'`), checked without importing it. Each component
recognises its own "not supported" messages (an honest refusal is `unsupported`, never a bug)
and runs with one thread, in fp32 (OpenVINO's CPU default precision is bf16 where the CPU has
bf16 units: not a bug).
"""

from __future__ import annotations

import os
import re
import traceback
from typing import Any

import numpy as np
import torch

from fuzzer.extras import require
from fuzzer.targets.quiet import quiet
from fuzzer.targets.registry import Artifact, Component, StageFailure, component
from fuzzer.targets.runtimes import feeds
from fuzzer.verdict import Stage, Symptom

OV_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}

# Repro snippets (fuzzer/repro.py wraps each as a function): a runtime's body turns
# `model_bytes, args` into `actual`, a converter's turns `model, args` into `actual`; each
# imports its own package, so a repro imports only the converter it reproduces.
# f32 pinned: on CPUs with bf16 units OpenVINO's default precision is bf16. One line each
# (a repro stays within 40 lines).
OV_COMPILE = ('compiled = ov.Core().compile_model(ov_model, "CPU", '
              '{"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})\n')


def ov_snippet(case: Any) -> str:
    names = [x.name for x in case.inputs]
    return ("import openvino as ov\n\nov_model = ov.Core().read_model(model_bytes, b\"\")\n"
            + OV_COMPILE + f"feeds = dict(zip({names!r}, (a.numpy() for a in args)))\n"
            "result = compiled({i.get_any_name(): feeds[i.get_any_name()] "
            "for i in ov_model.inputs})\nactual = [result[o] for o in compiled.outputs]\n")


def ov_pt_snippet(case: Any) -> str:
    # no torch.no_grad(): a Case's model has no parameters to track
    return ("import openvino as ov\n"
            "ov_model = ov.convert_model(model, example_input=tuple(args))\n" + OV_COMPILE
            + "result = compiled([a.numpy() for a in args])\n"
            "actual = [result[o] for o in compiled.outputs]\n")


def et_snippet(xnnpack: bool) -> Any:
    def snippet(case: Any) -> str:
        part = ("from executorch.backends.xnnpack.partition.xnnpack_partitioner import "
                "XnnpackPartitioner\n" if xnnpack else "")
        return ("from executorch.exir import to_edge_transform_and_lower\n"
                "from executorch.runtime import Runtime\n" + part + "\n"
                "program = torch.export.export(model, tuple(args))\n"
                "buffer = to_edge_transform_and_lower(program, partitioner="
                + ("[XnnpackPartitioner()]" if xnnpack else "None") + ").to_executorch().buffer\n"
                "method = Runtime.get().load_program(buffer).load_method(\"forward\")\n"
                "actual = [t.numpy() for t in method.execute([a.clone() for a in args])]\n")
    return snippet


def litert_snippet(case: Any) -> str:
    return ("import litert_torch\nfrom ai_edge_litert.interpreter import Interpreter\n\n"
            "flatbuffer = litert_torch.convert(model, tuple(args)).model_content()\n"
            "runner = Interpreter(model_content=flatbuffer, num_threads=1).get_signature_runner(\n"
            "    \"serving_default\")\n"
            "# litert-torch lowers int64 to int32: feed the declared dtypes, widen int32 results.\n"
            "declared = {k: d[\"dtype\"] for k, d in runner.get_input_details().items()}\n"
            "out = runner(**{f\"args_{i}\": a.numpy().astype(declared[f\"args_{i}\"])\n"
            "                for i, a in enumerate(args)})\n"
            "actual = [o.astype(np.int64) if o.dtype == np.int32 else o\n"
            "          for o in (out[f\"output_{i}\"] for i in range(len(out)))]\n")


# Each converter's own words for "this operator/dtype is not implemented".
OV_UNSUPPORTED = re.compile(
    r"No conversion rule found|OpenVINO does not support the following ONNX operations|"
    r"is not supported|Unsupported (?:data )?type|not implemented", re.I)
ET_UNSUPPORTED = re.compile(
    # Edge dialect accepts Core ATen only: an op torch.export leaves undecomposed is refused.
    r"is not in Core ATen opset|Missing out variants|Operator missing|missing operator|"
    r"kernel not found|"
    r"KernelNotFound|not (?:yet )?supported|not implemented", re.I)
LITERT_UNSUPPORTED = re.compile(
    r"Lowering not found|No lowering|not (?:yet )?supported|not implemented|"
    r"Unsupported (?:op|data ?type|dtype)|failed to legalize", re.I)


def failure(stage: Stage, e: BaseException | str, unsupported: re.Pattern[str]) -> StageFailure:
    text = f"{type(e).__name__}: {e}" if isinstance(e, BaseException) else str(e)
    return StageFailure(stage, text, Symptom.UNSUPPORTED if unsupported.search(text) else None)


def export_stage(e: BaseException) -> Stage:
    """torch.export's own failures (dynamo tracing, guards) are TRACE: the converter never got
    a graph. Everything after it is the converter's lowering."""
    chain: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and len(chain) < 10:
        chain.append(x)
        x = x.__cause__ or x.__context__
    for c in chain:
        files = [f.f_code.co_filename for f, _ in traceback.walk_tb(c.__traceback__)]
        inner = next((f for f in reversed(files) if "/torch/" in f or "/executorch/" in f
                      or "litert" in f), "")
        if "/torch/_dynamo/" in inner or "/torch/export/" in inner or "/torch/_export/" in inner:
            return Stage.TRACE
    return Stage.NODE_CONVERSION


def outputs_of(values: Any) -> list[np.ndarray]:
    vals = values if isinstance(values, (list, tuple)) else [values]
    return [v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in vals]


# -- OpenVINO -------------------------------------------------------------------------------
_OV_CORE: list[Any] = []


def ov_core() -> Any:
    """One openvino.Core a process (creating one reads the plugin registry, ~20 ms)."""
    if not _OV_CORE:
        # the converter's optional package, imported on use (seconds to import)
        import openvino as ov

        _OV_CORE.append(ov.Core())
    return _OV_CORE[0]


def ov_infer(model: Any, art: Artifact, names: list[str] | None) -> list[np.ndarray]:
    """Compile `model` for CPU in fp32 on one thread and run the Case's inputs."""
    core = ov_core()
    # OpenVINO's CPU plugin computes float64 in float32 (documented): the oracle holds such
    # outputs to float32's tolerance, or every float64 Case is a false finding.
    art.notes["computes"] = {"float64": "float32"}
    try:
        compiled = core.compile_model(model, "CPU", OV_CONFIG)
    except Exception as e:
        raise failure(Stage.RUNTIME_LOAD, e, OV_UNSUPPORTED) from e
    try:
        if names is None:  # the PyTorch frontend: inputs in forward's order
            args: Any = [t.detach().numpy() for t in art.inputs]
        else:
            args = feeds(art, names)
        result = compiled(args)
        return [np.asarray(result[o]) for o in compiled.outputs]
    except StageFailure:
        raise
    except Exception as e:
        raise failure(Stage.RUNTIME_RUN, e, OV_UNSUPPORTED) from e


@component("runtime", r"ov", ("ov",),
           "OpenVINO CPU on the chain's ONNX model (core.read_model of the bytes), fp32 on one "
           "thread; ONNX Runtime and the reference evaluator referee it. Needs "
           "the openvino extra")
def ov_runtime() -> Component:
    require("openvino", "target component 'ov'")

    def run(art: Artifact) -> None:
        try:
            model = ov_core().read_model(art.model, b"")  # the ONNX frontend converts here
        except Exception as e:
            raise failure(Stage.RUNTIME_LOAD, e, OV_UNSUPPORTED) from e
        art.outputs = ov_infer(model, art, [i.get_any_name() for i in model.inputs])

    return Component("runtime", "ov", run, "openvino", {"device": "CPU", **OV_CONFIG},
                     referees=("ort-disabled", "ref"), snippet=ov_snippet)


@component("converter", r"ov-pt", ("ov-pt",),
           "OpenVINO's PyTorch frontend, openvino.convert_model(module, example_input=...), "
           "then OpenVINO CPU, fp32 on one thread. Needs the openvino extra")
def ov_pt() -> Component:
    require("openvino", "target component 'ov-pt'")

    def run(art: Artifact) -> None:
        # the converter's optional package, imported on use (seconds to import)
        import openvino as ov

        try:
            with quiet(), torch.no_grad():
                model = ov.convert_model(art.module, example_input=tuple(art.inputs))
        except Exception as e:
            raise failure(Stage.NODE_CONVERSION, e, OV_UNSUPPORTED) from e
        art.outputs = ov_infer(model, art, None)

    # ~50 ms a Case: not worth packing 8 at a time; the adaptive pack size decides.
    return Component("converter", "ov-pt", run, "openvino",
                     {"frontend": "pytorch", "device": "CPU", **OV_CONFIG}, packable=True,
                     snippet=ov_pt_snippet)


# -- ExecuTorch -----------------------------------------------------------------------------
def _export(art: Artifact) -> Any:
    try:
        with quiet():
            return torch.export.export(art.module, tuple(art.inputs))
    except Exception as e:
        raise StageFailure(Stage.TRACE, f"{type(e).__name__}: {e}") from e


@component("converter", r"executorch(?P<xnnpack>-xnnpack)?", ("executorch", "executorch-xnnpack"),
           "torch.export, ExecuTorch's to_edge_transform_and_lower().to_executorch(), run by "
           "its runtime on the portable kernels; `-xnnpack` delegates to XNNPACK. Needs "
           "the executorch extra")
def executorch(xnnpack: str | None = None) -> Component:
    require("executorch", f"target component 'executorch{xnnpack or ''}'")
    name = "executorch" + (xnnpack or "")

    def run(art: Artifact) -> None:
        # the converter's optional package, imported on use (seconds to import)
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime

        program = _export(art)
        try:
            with quiet():
                parts = []
                if xnnpack:
                    # the converter's optional package, imported on use (seconds to import)
                    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
                        XnnpackPartitioner,
                    )
                    parts = [XnnpackPartitioner()]
                buffer = to_edge_transform_and_lower(program, partitioner=parts or None
                                                     ).to_executorch().buffer
        except Exception as e:
            raise failure(Stage.NODE_CONVERSION, e, ET_UNSUPPORTED) from e
        try:
            method = Runtime.get().load_program(buffer).load_method("forward")
        except Exception as e:
            raise failure(Stage.RUNTIME_LOAD, e, ET_UNSUPPORTED) from e
        try:
            # Clones: an in-place op of the program must not touch the Case's inputs.
            art.outputs = outputs_of(method.execute([t.clone() for t in art.inputs]))
        except Exception as e:
            raise failure(Stage.RUNTIME_RUN, e, ET_UNSUPPORTED) from e

    # ~0.5 s a lowering whatever the model's size: packed like the dynamo exporter.
    return Component("converter", name, run, "executorch",
                     {"backend": "xnnpack" if xnnpack else "portable"},
                     packable=True, pack=8,
                     snippet=et_snippet(bool(xnnpack)))


def widened(outs: list[np.ndarray], art: Artifact) -> list[np.ndarray]:
    """int32 results of int64 torch outputs, widened back (litert-torch narrows by design)."""
    # on use: fuzzer.model imports the operator catalogue, which targets do not need
    from fuzzer.case import split_ref
    from fuzzer.model import infer

    try:
        metas = infer(art.case)
    except Exception:
        return outs
    for i, ref in enumerate(art.case.outputs[:len(outs)]):
        base, idx = split_ref(ref)
        want = str(metas[base][idx or 0].dtype).removeprefix("torch.")
        if want == "int64" and outs[i].dtype == np.int32:
            outs[i] = outs[i].astype(np.int64)
    return outs


# -- LiteRT ---------------------------------------------------------------------------------
@component("converter", r"litert", ("litert",),
           "litert-torch's convert(module, args) (torch.export, then its lowering to a "
           "LiteRT flatbuffer), run by the LiteRT interpreter on one thread. Needs "
           "the litert extra")
def litert() -> Component:
    require("litert_torch", "target component 'litert'")
    # TensorFlow Lite's C++ logging goes to fd 2 unless told otherwise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    def run(art: Artifact) -> None:
        # the converter's optional package, imported on use (seconds to import)
        import litert_torch
        from ai_edge_litert.interpreter import Interpreter

        try:
            with quiet():
                flatbuffer = litert_torch.convert(art.module.eval(),
                                                  tuple(art.inputs)).model_content()
        except Exception as e:
            stage = export_stage(e)
            raise failure(stage, e, LITERT_UNSUPPORTED) from e
        try:
            interp = Interpreter(model_content=flatbuffer, num_threads=1)
            runner = interp.get_signature_runner("serving_default")
        except Exception as e:
            raise failure(Stage.RUNTIME_LOAD, e, LITERT_UNSUPPORTED) from e
        # litert-torch lowers int64 to int32 by design (LiteRT has few int64 kernels): the
        # inputs go in at the dtypes the model declares, as a user would feed them, and int32
        # results of int64 torch outputs come back widened (their values are still judged).
        declared = {k: d["dtype"] for k, d in runner.get_input_details().items()}
        try:
            got = runner(**{f"args_{i}": t.detach().numpy().astype(
                declared.get(f"args_{i}", t.detach().numpy().dtype), copy=False)
                for i, t in enumerate(art.inputs)})
        except Exception as e:
            raise failure(Stage.RUNTIME_RUN, e, LITERT_UNSUPPORTED) from e
        art.outputs = widened([np.asarray(got[f"output_{i}"]) for i in range(len(got))], art)

    return Component("converter", "litert", run, "litert",
                     {"runtime": "interpreter", "num_threads": 1},
                     packable=True, pack=8,
                     snippet=litert_snippet)

"""Targets as plugins. A *component* is one exporter, ONNX pass or runtime, registered under a
name pattern; a *target* is a chain of them, named like `torchscript-17/ort-all`. A
*converter* (OpenVINO's PyTorch frontend, ExecuTorch, LiteRT) is exporter and runtime in one:
it takes the torch module and gives outputs, and is a target on its own (`ov-pt`).

Components raise `StageFailure` (or any exception, classified by the stage they declare) and
pass an `Artifact` along: the torch module and inputs in, ONNX bytes through, outputs out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fuzzer.extras import MissingExtra
from fuzzer.verdict import Stage, Symptom


@dataclass
class Artifact:
    case: Any  # fuzzer.case.Case
    module: Any  # fuzzer.model.CaseModule
    inputs: list[Any]  # torch tensors, in Case input order
    model: bytes | None = None
    outputs: list[np.ndarray] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    # Every model a graph-producing step left behind, in order: (component, step, bytes).
    # Blame bisects this list instead of re-running export or passes.
    history: list[tuple[str, str, bytes]] = field(default_factory=list)

    def set_model(self, component: str, step: str, model: bytes) -> None:
        self.model = model
        self.history.append((component, step, model))


class StageFailure(Exception):
    """A component failed at a known stage with a known symptom (None: classify from text)."""

    def __init__(self, stage: Stage, error: BaseException | str,
                 symptom: Symptom | None = None,
                 raised_in: dict[str, str] | None = None) -> None:
        super().__init__(str(error))
        self.stage = stage
        self.error = error
        self.symptom = symptom
        # Where inside the component's own code it raised (function, source file:line), when
        # the component can tell: a crash inside a rewriter is that function's defect.
        self.raised_in = raised_in


@dataclass(frozen=True)
class Family:
    """A project blamed for findings: its name in reports and the tracker its bugs go to."""
    display: str
    tracker: str
    runs_as: str = "the runtime"  # a report's words for it running a model
    # A converter's own bug template: the project's name there and the package versions it
    # asks for (empty: the family files through the PyTorch or ONNX Runtime template).
    form: tuple[str, tuple[str, ...]] | None = None


# The projects a Component.family names; reports and blame read these, never the name.
FAMILIES: dict[str, Family] = {
    "torch.onnx": Family("torch.onnx", "pytorch/pytorch"),
    "onnxscript": Family("onnxscript", "microsoft/onnxscript"),
    "onnxruntime": Family("ONNX Runtime", "microsoft/onnxruntime", "ONNX Runtime"),
    "onnx": Family("ONNX", "onnx/onnx", "the ONNX reference evaluator"),
    "openvino": Family("OpenVINO", "openvinotoolkit/openvino", "OpenVINO",
                       ("OpenVINO", ("openvino", "torch", "onnx", "numpy"))),
    "executorch": Family("ExecuTorch", "pytorch/executorch", "the ExecuTorch runtime",
                         ("ExecuTorch", ("executorch", "torch", "numpy"))),
    "litert": Family("LiteRT", "google-ai-edge/litert-torch", "the LiteRT interpreter",
                     ("litert-torch", ("litert-torch", "ai-edge-litert", "torch", "numpy"))),
    "tf2onnx": Family("tf2onnx", "onnx/tensorflow-onnx", "the runtime",
                      ("tf2onnx", ("tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime",
                                   "numpy"))),
}


@dataclass(frozen=True)
class Component:
    kind: str  # exporter | pass | runtime | converter
    name: str
    run: Callable[[Artifact], None]
    # Which project is blamed: torch.onnx, onnxscript, onnxruntime, onnx, openvino,
    # executorch, litert, test.
    family: str
    settings: dict[str, Any] = field(default_factory=dict)
    # Exporters and converters whose cost is per export, not per node, are `packable`:
    # several Cases go through one packed model (fuzzer/pack.py), as many as their measured
    # cost makes cheapest (fuzzer.pack.Sizer); with adaptive packing off, `pack` a time
    # (1: never packed).
    packable: bool = False
    pack: int = 1
    # Rewriters whose rules/fusions can be switched off by name: the model this component
    # makes from `model` with those names off. Blame halves the names that fired
    # (`Artifact.notes["fired"]`) to name the one a failure needs.
    without: Callable[[bytes, frozenset[str]], bytes] | None = None
    # Runtimes: the runtimes that referee this one on the same ONNX model. A failure they
    # do not share is this runtime's; one they all share is the model's (the exporter's).
    referees: tuple[str, ...] = ("ref",)
    # The component's own call as plain source for a repro, given the Case: an exporter
    # turns `model, args` into `model_bytes`, a pass rewrites `model_bytes`, a runtime turns
    # `model_bytes, args` into `actual` (a list of numpy arrays), a converter turns
    # `model, args` into `actual`. None: no repro source.
    snippet: Callable[[Any], str] | None = None
    # Exporters and converters: the frontend (fuzzer.frontends) whose models they convert;
    # a campaign on them generates that frontend's Cases.
    frontend: str = "pytorch"


@dataclass(frozen=True)
class Opsets:
    """An exporter's opset sweep (`convfuzz sweep`): the levels swept by default and the
    component name at each (None: the exporter's native opset)."""

    exporter: str  # the name `convfuzz sweep --exporter` takes
    levels: tuple[int | None, ...]
    name: Callable[[int | None], str]


@dataclass(frozen=True)
class Pattern:
    kind: str
    regex: re.Pattern[str]
    factory: Callable[..., Component]
    examples: tuple[str, ...]
    help: str
    fault: bool  # fault-injection doubles: listed apart, never picked by default
    opsets: Opsets | None = None  # exporters that can be swept over opsets


PATTERNS: list[Pattern] = []


def component(kind: str, pattern: str, examples: tuple[str, ...], help: str,
              fault: bool = False, opsets: Opsets | None = None
              ) -> Callable[[Callable[..., Component]], Callable[..., Component]]:
    def deco(factory: Callable[..., Component]) -> Callable[..., Component]:
        PATTERNS.append(Pattern(kind, re.compile(f"^{pattern}$"), factory, examples, help,
                                fault, opsets))
        return factory
    return deco


class TargetError(ValueError):
    """An unknown or malformed target name."""


def resolve(name: str) -> Component:
    for p in PATTERNS:
        m = p.regex.match(name)
        if m:
            try:
                return p.factory(**m.groupdict())
            except MissingExtra as e:  # its package is an optional extra, not installed
                raise TargetError(str(e)) from None
    raise TargetError(f"unknown target component {name!r} (see `convfuzz targets`)")


@dataclass(frozen=True)
class Target:
    name: str
    components: tuple[Component, ...]

    @property
    def exporter(self) -> Component:
        return self.components[0]

    @property
    def runtime(self) -> Component:
        return self.components[-1]

    @property
    def frontend(self) -> str:
        return self.exporter.frontend


def parse(name: str) -> Target:
    """`exporter[/pass...]/runtime`; a bare exporter defaults to ONNX Runtime at level all."""
    # Components are stateless, so a worker resolves each target name once, not once a
    # verdict (~0.06 ms of regex and imports); a pattern registered later re-keys the cache.
    key = (name, len(PATTERNS))
    if key not in _PARSED:
        _PARSED[key] = _parse(name)
    return _PARSED[key]


_PARSED: dict[tuple[str, int], Target] = {}


def _parse(name: str) -> Target:
    parts = [p for p in name.strip().split("/") if p]
    if not parts:
        raise TargetError("empty target name")
    comps = [resolve(p) for p in parts]
    if comps[0].kind == "converter":
        if len(comps) > 1:
            raise TargetError(f"target {name!r}: {comps[0].name!r} converts and runs the "
                              "torch module itself; it stands alone")
        return Target(comps[0].name, (comps[0],))
    if comps[0].kind != "exporter":
        raise TargetError(f"target {name!r} must start with an exporter, not {comps[0].kind} "
                          f"{comps[0].name!r}")
    if len(comps) == 1:
        comps.append(resolve("ort-all"))
    if comps[-1].kind != "runtime":
        raise TargetError(f"target {name!r} must end with a runtime")
    for c in comps[1:-1]:
        if c.kind != "pass":
            raise TargetError(f"target {name!r}: {c.name!r} is a {c.kind}, expected a pass")
    return Target("/".join(c.name for c in comps), tuple(comps))


# The chains `convfuzz targets` lists and `fuzz` runs by default.
NAMED: dict[str, str] = {
    "torchscript-17/ort-all": "TorchScript exporter at opset 17, ONNX Runtime, all graph opts",
    "torchscript-17/ort-disabled": "TorchScript exporter at opset 17, ONNX Runtime, no graph opts",
    "torchscript-17/ref": "TorchScript exporter at opset 17, ONNX reference evaluator",
    "dynamo/ort-all": "dynamo exporter with its optimizer, ONNX Runtime, all graph opts",
    "dynamo/ort-disabled": "dynamo exporter with its optimizer, ONNX Runtime, no graph opts",
    "dynamo-noopt/ort-all": "dynamo exporter without its optimizer, ONNX Runtime, all opts",
    "dynamo/ref": "dynamo exporter with its optimizer, ONNX reference evaluator",
    "dynamo/ort-basic": "dynamo exporter, ONNX Runtime with basic graph opts only",
    "torchscript-17/onnxscript-opt/ort-disabled": "TorchScript export, then the onnxscript "
                                                  "optimizer as a standalone pass",
    "torchscript-17/onnxoptimizer/ort-disabled": "TorchScript export, then onnxoptimizer's "
                                                 "fuse-and-eliminate passes one by one",
    "dynamo-noopt/onnxsim/ort-disabled": "dynamo export (no optimizer), then onnx-simplifier",
    "dynamo-noopt/onnxslim/ort-disabled": "dynamo export (no optimizer), then onnxslim",
    "torchscript-17/ov": "TorchScript exporter at opset 17, OpenVINO's ONNX frontend on CPU",
    "dynamo/ov": "dynamo exporter with its optimizer, OpenVINO's ONNX frontend on CPU",
    "ov-pt": "OpenVINO's PyTorch frontend (openvino.convert_model) on CPU",
    "executorch": "torch.export, ExecuTorch lowering, portable kernels",
    "executorch-xnnpack": "torch.export, ExecuTorch lowering with the XNNPACK delegate",
    "litert": "litert-torch conversion (torch.export), LiteRT interpreter",
    "tf2onnx-17/ort-all": "TensorFlow Cases: tf2onnx at opset 17, ONNX Runtime, all graph opts",
    "tf2onnx-13/ort-all": "TensorFlow Cases: tf2onnx at opset 13, ONNX Runtime, all graph opts",
    "tf2onnx-17/ref": "TensorFlow Cases: tf2onnx at opset 17, ONNX reference evaluator",
}
DEFAULT_TARGETS = ("torchscript-17/ort-all", "dynamo/ort-all")

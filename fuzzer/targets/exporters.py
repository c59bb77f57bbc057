"""The two torch.onnx exporters as components."""

from __future__ import annotations

import io
import re
import traceback
from typing import Any

import torch

from fuzzer.targets import export_memo
from fuzzer.targets.quiet import quiet
from fuzzer.targets.registry import Artifact, Component, Opsets, StageFailure, component
from fuzzer.targets.rewriters import record_fired
from fuzzer.targets.rules import counting_defaults, optimizer_without
from fuzzer.verdict import Stage

DYNAMO_OPSET = 18  # the dynamo exporter's native opset in torch 2.13


def input_names(art: Artifact) -> list[str]:
    return [x.name for x in art.case.inputs]


def output_names(art: Artifact) -> list[str]:
    return [f"out{i}" for i in range(len(art.case.outputs))]


def _torchscript_stage(exc: BaseException) -> Stage:
    """Which part of the TorchScript exporter raised, from the traceback's files."""
    # Only the files matter: extract_tb would also read every source line (~0.3 ms a
    # failed export, a fifth of all TorchScript exports on the random arm).
    files = " ".join(f.f_code.co_filename for f, _ in traceback.walk_tb(exc.__traceback__))
    text = str(exc)
    if "symbolic_opset" in files or "symbolic_helper" in files or "symbolic" in text.lower():
        return Stage.NODE_CONVERSION
    if "UnsupportedOperatorError" in type(exc).__name__ or "to ONNX opset" in text:
        return Stage.NODE_CONVERSION
    if "jit/_trace" in files or "_create_jit_graph" in files or "trace" in text.lower()[:80]:
        return Stage.TRACE
    if "_jit_pass" in text or "_model_to_graph" in files:
        return Stage.GRAPH_OPTIMIZATION
    return Stage.NODE_CONVERSION


def torchscript(opset: str) -> Component:
    level = int(opset)
    if not 7 <= level <= 20:
        raise ValueError(f"TorchScript exporter opset must be 7..20, got {level}")

    def run(art: Artifact) -> None:
        f = io.BytesIO()
        dyn = {x.name: x.dynamic for x in art.case.inputs if x.dynamic}
        try:
            with quiet():
                torch.onnx.export(art.module, tuple(art.inputs), f, dynamo=False,
                                  opset_version=level, input_names=input_names(art),
                                  output_names=output_names(art),
                                  dynamic_axes=dyn or None)
        except Exception as e:
            raise StageFailure(_torchscript_stage(e), e) from e
        art.set_model(f"torchscript-{level}", "export", f.getvalue())

    def snippet(case: Any) -> str:
        dyn = {x.name: x.dynamic for x in case.inputs if x.dynamic}
        return ("f = io.BytesIO()  # the TorchScript exporter (dynamo=False, deprecated)\n"
                f"torch.onnx.export(model, args, f, dynamo=False, opset_version={level}, "
                f"input_names={[x.name for x in case.inputs]!r}"
                + (f", dynamic_axes={dyn!r}" if dyn else "") + ")\nmodel_bytes = f.getvalue()\n")

    return Component("exporter", f"torchscript-{level}", run, "torch.onnx",
                     {"dynamo": False, "opset_version": level}, snippet=snippet)


component("exporter", r"torchscript-(?P<opset>\d+)", ("torchscript-17", "torchscript-11"),
          "TorchScript-based exporter, torch.onnx.export(dynamo=False), at an opset 7-20",
          opsets=Opsets("torchscript", tuple(range(11, 21)), lambda o: f"torchscript-{o}"))(
    torchscript)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def _dynamo_stage(chain: list[BaseException]) -> Stage:
    # private torch module: only the dynamo error path reads it
    from torch.onnx._internal.exporter import _errors

    if any(isinstance(c, _errors.TorchExportError) for c in chain):
        return Stage.TRACE
    return Stage.NODE_CONVERSION


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _dynamo_error(chain: list[BaseException]) -> str:
    """The failure's text, its root cause first. The exporter wraps every failure in the same
    "Failed to convert the exported program ... step 3/3" advice: as the first line it gave
    every conversion failure one detail and one error class, so the shrinker could trade one
    cause for another and dedup merged them. The outermost error follows (torch's text of it
    summarizes the chain), colour codes removed."""
    top = f"{type(chain[0]).__name__}: {chain[0]}"
    if len(chain) == 1:
        return _ANSI.sub("", top)
    root = next((c for c in reversed(chain) if str(c).strip()), chain[-1])
    lead = f"{type(root).__name__}: {root}"
    if root is not chain[-1]:  # the innermost said nothing (a bare assert): name it too
        lead = f"{type(chain[-1]).__name__} in {lead}"
    return _ANSI.sub("", f"{lead}\n\n{top}")


def dynamic_shapes(art: Artifact) -> tuple[Any, ...] | None:
    """torch.export's spelling of the Case's dynamic dims. AUTO lets export keep a dim static
    where the model forces it; the oracle then only runs shapes eager accepts."""
    if not any(x.dynamic for x in art.case.inputs):
        return None
    # One entry: forward(*inputs) takes a single varargs tuple.
    return (tuple({d: torch.export.Dim.AUTO for d in x.dynamic} or None
                  for x in art.case.inputs),)


def dynamo(optimize: str | None = None, opset: str | None = None) -> Component:
    opt = optimize != "-noopt"
    level = int(opset) if opset else None
    name = "dynamo" + ("" if opt else "-noopt") + (f"-{level}" if level else "")

    def run(art: Artifact) -> None:
        export_memo.install()
        try:
            with quiet():
                prog = torch.onnx.export(art.module, tuple(art.inputs), dynamo=True,
                                         optimize=False, opset_version=level,
                                         input_names=input_names(art),
                                         output_names=output_names(art), verbose=False,
                                         dynamic_shapes=dynamic_shapes(art))
        except Exception as e:
            chain = _chain(e)
            raise StageFailure(_dynamo_stage(chain), _dynamo_error(chain)) from e
        try:
            art.set_model(name, "export", prog.model_proto.SerializeToString())
        except Exception as e:  # e.g. a >2 GB proto: a conversion problem, not a runtime one
            raise StageFailure(Stage.NODE_CONVERSION, e) from e
        if opt:
            # The exporter's optimizer runs as its own step: its failures get their own stage,
            # and the model before it stays in the history for blame.
            counts: dict[str, Any] = {}
            try:
                with quiet(), counting_defaults(counts):
                    prog.optimize()
                art.set_model(name, "optimize", prog.model_proto.SerializeToString())
            except Exception as e:
                raise StageFailure(Stage.GRAPH_OPTIMIZATION, e) from e
            # Its rewrite rules are onnxscript's defaults: what fired counts for coverage,
            # and blame halves over those and constant folding (fusions.switches).
            record_fired(art, name, counts)

    # ~0.5 s an export whether the model has one node or twenty-five: worth packing.
    def snippet(case: Any) -> str:
        dyn = any(x.dynamic for x in case.inputs)
        shapes = ("(tuple(" + ", ".join(
            ("{" + ", ".join(f"{d}: torch.export.Dim.AUTO" for d in x.dynamic) + "}")
            if x.dynamic else "None" for x in case.inputs) + ",),)") if dyn else ""
        return (f"program = torch.onnx.export(model, args, dynamo=True, optimize={opt!r}"
                + (f", opset_version={level}" if level else "")
                + f", input_names={[x.name for x in case.inputs]!r}"
                + (f", dynamic_shapes={shapes}" if dyn else "") + ")\n"
                "model_bytes = program.model_proto.SerializeToString()\n")

    # With its optimizer on, blame can re-run that step with named rewrite rules off.
    without = None
    if opt:
        without = optimizer_without
    # "optimizer_rules": whose rules its optimizer fires, for coverage only (it is no
    # rewriter pass: it packs, and blame names torch.onnx's step, then the rule).
    return Component("exporter", name, run, "torch.onnx",
                     {"dynamo": True, "optimize": opt, "opset_version": level,
                      **({"optimizer_rules": "onnxscript.rewriter"} if opt else {})},
                     packable=True, pack=8,
                     without=without, snippet=snippet)


component("exporter", r"dynamo(?P<optimize>-noopt)?(?:-(?P<opset>\d+))?",
          ("dynamo", "dynamo-noopt", "dynamo-17"),
          "torch.export-based exporter, torch.onnx.export(dynamo=True); `-noopt` skips its "
          "optimizer; `-N` requests opset N (it exports at 18 and converts)",
          # None: its native opset (18); lower ones are converted.
          opsets=Opsets("dynamo", (None, 17, 16, 15, 14, 13),
                        lambda o: f"dynamo{'' if o in (None, 18) else f'-{o}'}"))(dynamo)

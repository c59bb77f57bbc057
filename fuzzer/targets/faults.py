"""Fault-injection exporters: test doubles that abort, hang, exhaust memory or plant a known
bug, so that isolation and the shrinker can be tested against faults of known shape. They are
never chosen by default and `convfuzz targets` lists them apart."""

from __future__ import annotations

import os
import time

import torch

from fuzzer.targets.exporters import torchscript
from fuzzer.targets.registry import Artifact, Component, StageFailure, component
from fuzzer.verdict import Stage, Symptom


@component("exporter", r"fault-abort", ("fault-abort",), "aborts the process (SIGABRT)",
           fault=True)
def abort() -> Component:
    def run(art: Artifact) -> None:
        os.abort()
    return Component("exporter", "fault-abort", run, "test")


@component("exporter", r"fault-hang", ("fault-hang",), "sleeps forever", fault=True)
def hang() -> Component:
    def run(art: Artifact) -> None:
        while True:
            time.sleep(3600)
    return Component("exporter", "fault-hang", run, "test")


@component("exporter", r"fault-oom", ("fault-oom",), "allocates memory without bound",
           fault=True)
def oom() -> Component:
    def run(art: Artifact) -> None:
        hog = []
        while True:
            hog.append(bytearray(64 << 20))  # bytearray touches its pages: real RSS growth
    return Component("exporter", "fault-oom", run, "test")


@component("exporter", r"fault-pair-(?P<a>[a-z0-9_]+)-(?P<b>[a-z0-9_]+)",
           ("fault-pair-relu-sigmoid",),
           "TorchScript export that fails whenever op A feeds op B (a planted bug)", fault=True)
def pair(a: str, b: str) -> Component:
    inner = torchscript("17")
    first, second = f"aten::{a}", f"aten::{b}"

    def run(art: Artifact) -> None:
        ops = {n.id: n.op for n in art.case.nodes}
        for n in art.case.nodes:
            if n.op == second and any(ops.get(r.split(":")[0]) == first for r in n.args):
                raise StageFailure(Stage.NODE_CONVERSION,
                                   f"planted bug: {first} feeding {second}", Symptom.CRASH)
        inner.run(art)
    return Component("exporter", f"fault-pair-{a}-{b}", run, "test")


@component("exporter", r"fault-constant", ("fault-constant",),
           "exports the traced output as a constant: right only at the trace shape",
           fault=True)
def constant() -> Component:
    def run(art: Artifact) -> None:
        # on use: a component imports its heavy dependency when it runs
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        with torch.no_grad():
            outs = art.module(*art.inputs)
        # Graph inputs keep symbolic dims where the Case asks for them, so the lie is only
        # visible when the model runs at another size.
        ins = [helper.make_tensor_value_info(
            x.name, TensorProto.FLOAT, [f"d{d}" if d in x.dynamic else s
                                        for d, s in enumerate(x.shape)])
            for x in art.case.inputs]
        nodes, vals = [], []
        for i, o in enumerate(outs):
            name = f"out{i}"
            nodes.append(helper.make_node("Constant", [], [name],
                                          value=numpy_helper.from_array(o.numpy(), name)))
            vals.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(o.shape)))
        graph = helper.make_graph(nodes, "constant", ins, vals)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        art.set_model("fault-constant", "export", model.SerializeToString())
        onnx.checker.check_model(model)
    return Component("exporter", "fault-constant", run, "test")

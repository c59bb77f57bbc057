"""Fault-injection exporters: test doubles that abort, hang, exhaust memory or plant a known
bug, so that isolation and the shrinker can be tested against faults of known shape. They are
never chosen by default and `convfuzz targets` lists them apart."""

from __future__ import annotations

import os
import time

import numpy as np
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


@component("converter", r"fault-segv", ("fault-segv",),
           "a converter that segfaults while converting (SIGSEGV), as OpenVINO's ONNX reader "
           "did on one exported model", fault=True)
def segv() -> Component:
    # on use: only the fault-injection doubles need these
    import signal

    def run(art: Artifact) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)
    return Component("converter", "fault-segv", run, "test")


@component("exporter", r"fault-wrongmodel", ("fault-wrongmodel",),
           "TorchScript export, then every output plus one: a valid model that computes the "
           "wrong thing on every runtime (a planted exporter bug)", fault=True)
def wrong_model() -> Component:
    inner = torchscript("17")

    def run(art: Artifact) -> None:
        # on use: only the fault-injection doubles need these
        import onnx
        from onnx import helper, numpy_helper

        inner.run(art)
        art.history.clear()  # one step of one exporter: blame has nothing to bisect
        model = onnx.load_from_string(art.model)
        g = model.graph
        for i, out in enumerate(g.output):
            shifted = f"{out.name}_planted"
            for n in g.node:
                # Consumers inside the model (bert's pooler reads its last hidden state)
                # keep reading the true value: only the model's output is planted.
                n.output[:] = [shifted if o == out.name else o for o in n.output]
                n.input[:] = [shifted if x == out.name else x for x in n.input]
            one = numpy_helper.from_array(np.ones((), dtype=np.float32), f"planted_one{i}")
            g.initializer.append(one)
            g.node.append(helper.make_node("Add", [shifted, one.name], [out.name]))
        art.set_model("fault-wrongmodel", "export", model.SerializeToString())
    return Component("exporter", "fault-wrongmodel", run, "test")


@component("runtime", r"fault-ovwrong", ("fault-ovwrong",),
           "OpenVINO, then its first output negated: a planted runtime bug that ONNX Runtime "
           "and the reference evaluator, its referees, do not share", fault=True)
def ov_wrong() -> Component:
    # on use: only the fault-injection doubles need these
    from fuzzer.targets.converters import ov_runtime

    real = ov_runtime()

    def run(art: Artifact) -> None:
        real.run(art)
        assert art.outputs is not None
        art.outputs[0] = -art.outputs[0] - 1
    return Component("runtime", "fault-ovwrong", run, "test", referees=real.referees)


# Exports the `fault-count` exporter ran in this process: tests count them to see a shared
# prefix run once.
EXPORTS: dict[str, int] = {}


@component("exporter", r"fault-count", ("fault-count",),
           "TorchScript export at opset 17 that counts its runs in this process, packable "
           "like a slow exporter (a test double for prefix sharing and packing)", fault=True)
def count() -> Component:
    inner = torchscript("17")

    def run(art: Artifact) -> None:
        EXPORTS["fault-count"] = EXPORTS.get("fault-count", 0) + 1
        inner.run(art)
    return Component("exporter", "fault-count", run, "test", packable=True, pack=4)

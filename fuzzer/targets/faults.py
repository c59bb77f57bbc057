"""Fault-injection exporters: test doubles that abort, hang, exhaust memory or plant a known
bug, so that isolation and the shrinker can be tested against faults of known shape. They are
never chosen by default and `convfuzz targets` lists them apart."""

from __future__ import annotations

import os
import time

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

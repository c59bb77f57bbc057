"""Targets under test. Importing this package registers every component module."""

from __future__ import annotations

import importlib

from fuzzer.targets.registry import (
    DEFAULT_TARGETS,
    NAMED,
    PATTERNS,
    Artifact,
    Component,
    Opsets,
    StageFailure,
    Target,
    TargetError,
    parse,
    resolve,
)

for _mod in ("exporters", "passes", "rewriters", "runtimes", "converters", "tf2onnx", "faults"):
    importlib.import_module(f"fuzzer.targets.{_mod}")

__all__ = ["DEFAULT_TARGETS", "NAMED", "PATTERNS", "Artifact", "Component", "Opsets",
           "StageFailure", "Target", "TargetError", "parse", "resolve"]

"""Shared fixtures: small hand-made Cases and one sandbox per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fuzzer.case import Case
from fuzzer.sandbox import Limits, Sandbox

CASES = Path(__file__).parent / "cases"


def make_case(nodes: list[dict[str, Any]], inputs: list[dict[str, Any]] | None = None,
              outputs: list[str] | None = None, seed: int = 7) -> Case:
    return Case.from_dict({
        "schema": 1, "seed": seed,
        "inputs": inputs or [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}],
        "nodes": nodes, "outputs": outputs or [nodes[-1]["id"]]})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=120, memory_mb=2048)) as sb:
        yield sb

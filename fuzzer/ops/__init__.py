"""The operator catalogue. Importing this package registers every family module."""

from __future__ import annotations

import importlib

from fuzzer.ops.aliases import ALIASES, canonical
from fuzzer.ops.spec import REGISTRY, Meta, Operand, OpSpec, same_value

FAMILIES = ("activations", "elementwise", "casts", "reductions", "shape", "indexing",
            "convpool", "pool", "resize", "norms", "linalg", "attention", "losses", "creation")
for _fam in FAMILIES:
    importlib.import_module(f"fuzzer.ops.{_fam}")


def get(name: str) -> OpSpec:
    """The entry of `name`: this (PyTorch) catalogue's, else its frontend's (`tf::` ...)."""
    found = REGISTRY.get(name)
    if found is not None:
        return found
    from fuzzer import frontends  # on use: the registry loads other catalogues lazily

    return frontends.spec(name)


__all__ = ["ALIASES", "REGISTRY", "Meta", "OpSpec", "Operand", "canonical", "get", "same_value"]

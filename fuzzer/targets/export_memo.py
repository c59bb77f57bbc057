"""Process-level memos of what torch.onnx.export(dynamo=True) recomputes at every call.

A worker exports thousands of small models with the same torch in one process. Per export,
torch.onnx rebuilds three things that depend only on the process's registered operators,
never on the model: its ATen -> ONNX registry (`ONNXRegistry.from_torchlib`: it parses the
source of ~500 onnxscript functions, ~0.5 s), the set of CompositeImplicitAutograd ops of
every namespace (`torch._export.utils._collect_all_valid_cia_ops`: ~20 ms, twice an export,
a third of what is left), and the ONNX-friendly decomposition table built from the two; and
it evaluates a typing annotation ~5,700 times an export (`_typing_callable`).
Each memo keeps torch's own function and result: the exported program and ONNX model are
the same bytes (tests/test_export_memo.py compares them with the memos off). What an export
may still change (a registration, a table entry) goes to a copy. `install()` is idempotent;
`originals()` hands tests torch's own functions back.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_REGISTRIES: dict[int, Any] = {}
_ORIGINALS: dict[tuple[Any, str], Any] = {}


def _replace(owner: Any, attr: str, new: Any) -> None:
    _ORIGINALS.setdefault((owner, attr), getattr(owner, attr))
    setattr(owner, attr, new)


def _registry() -> None:
    """The registry is a pure function of the opset and the export only reads it: built once
    per opset, each export gets a copy of its table (a registration made during one export
    cannot leak into the next)."""
    # private torch module: the exporter's own registry class
    from torch.onnx._internal.exporter import _registration

    build = _registration.ONNXRegistry.from_torchlib

    def from_torchlib(cls: Any, opset_version: int = _registration._constants.TORCHLIB_OPSET
                      ) -> Any:
        if opset_version not in _REGISTRIES:
            _REGISTRIES[opset_version] = build.__func__(cls, opset_version)
        made = _REGISTRIES[opset_version]
        fresh = cls()
        fresh._opset_version = made._opset_version
        fresh.functions = {k: list(v) for k, v in made.functions.items()}
        return fresh

    _replace(_registration.ONNXRegistry, "from_torchlib", classmethod(from_torchlib))


def _cia_key() -> tuple[Any, ...]:
    """What the CIA op set depends on: the op namespaces and the C++ CIA registrations
    (0.4 ms; a namespace or an op registered later changes it and the set is recomputed)."""
    return (tuple(torch.ops._dir), len(torch._C._dispatch_get_registrations_for_dispatch_key(
        "CompositeImplicitAutograd")))


def _cia_ops() -> None:
    """torch caches the aten namespace's CIA ops only (other namespaces may gain ops, its
    comment says); the whole set is recomputed twice an export. Here it is kept per
    `_cia_key()`, and each caller gets its own set (torch's callers copy or iterate it)."""
    # private torch modules: the three that call the collector by name
    from torch._export import utils as export_utils
    from torch.export import decomp_utils, exported_program

    collect = export_utils._collect_all_valid_cia_ops
    memo: dict[tuple[Any, ...], frozenset[Any]] = {}

    def collect_memoized() -> set[Any]:
        key = _cia_key()
        if key not in memo:
            memo.clear()
            memo[key] = frozenset(collect())
        return set(memo[key])

    for module in (export_utils, decomp_utils, exported_program):
        if getattr(module, "_collect_all_valid_cia_ops", None) is collect:
            _replace(module, "_collect_all_valid_cia_ops", collect_memoized)


def _decomposition_table() -> None:
    """The ONNX-friendly table is torch's default decompositions minus the ops the registry
    implements: kept per (registered op set, CIA key); each export gets a copy."""
    # private torch module: the exporter's decomposition table builder
    from torch.onnx._internal.exporter import _decomp

    build = _decomp.create_onnx_friendly_decomposition_table

    @functools.lru_cache(maxsize=4)
    def table(ops: frozenset[Any], key: tuple[Any, ...]) -> dict[Any, Callable[..., Any]]:
        return build(set(ops))

    def create(onnx_registered_ops: set[Any]) -> dict[Any, Callable[..., Any]]:
        return dict(table(frozenset(onnx_registered_ops), _cia_key()))

    _replace(_decomp, "create_onnx_friendly_decomposition_table", create)


def _typing_callable() -> None:
    """torch._ops evaluates `collections.abc.Callable[_P, _T]` annotations each time
    `py_impl` runs (no `from __future__ import annotations` there), and every export
    overrides ~500 CIA ops through it, ~5,700 calls: a sixth of a small export. typing's
    Callable is the same annotation with its subscriptions cached; the one isinstance check
    in torch._ops answers alike for both."""
    _replace(torch._ops, "Callable", typing.Callable)


def install() -> None:
    """Install the memos (once a process; a later call does nothing)."""
    if _ORIGINALS:
        return
    _registry()
    _cia_ops()
    _decomposition_table()
    _typing_callable()


@contextmanager
def originals() -> Iterator[None]:
    """torch's own functions for the duration (the memos stay installed after)."""
    memos = {k: getattr(*k) for k in _ORIGINALS}
    try:
        for (owner, attr), fn in _ORIGINALS.items():
            setattr(owner, attr, fn)
        yield
    finally:
        for (owner, attr), fn in memos.items():
            setattr(owner, attr, fn)

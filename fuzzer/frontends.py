"""Frontends: the framework a Case's model is written in. PyTorch (`aten::` operators) and
TensorFlow (`tf::` operators) are registry entries; each owns its operator catalogue, the
reference that runs a Case in that framework (eager, fp32 and fp64), its default vocabulary
and its repro script. Everything after conversion (ONNX passes, runtimes, the comparison,
the shrinker, the store, reports) is shared and asks this module, never the framework's name.

A Case names its frontend by its operators' prefix, so PyTorch Cases keep the bytes (and the
hashes) they always had. Entries name their parts as "module:attribute" strings, loaded on
use: the driver never imports TensorFlow, and this module imports neither framework.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the Case imports this registry (validation), not the other way
    from fuzzer.case import Case


class FrontendError(ValueError):
    """An unknown frontend, or operators of two frameworks in one Case (one line)."""


@dataclass(frozen=True)
class Frontend:
    name: str  # "pytorch", "tensorflow"
    prefix: str  # the operator names' prefix: "aten::", "tf::"
    catalogue: str  # "module:attr" of its {name: OpSpec} registry
    reference: str  # "module:attr" of Case -> fuzzer.compare.Reference (worker processes only)
    repro: str  # "module:attr" of (case, verdict, finding_id) -> standalone script
    # "module:attr" of () -> the operator names a campaign draws from when none are given;
    # None: the samplers' own default (the mined vocabulary).
    vocabulary: str | None = None
    # Its mined seeds (the `real` arm's n-grams), relative to the repository; "" = seeds/.
    seeds: str = ""
    # "module:attr" of the short repro's fuzzer.defect.Lang (the filed report's framework side)
    defect: str = "fuzzer.defect:TORCH"
    # The package the reference imports (a missing one is a one-line error, fuzzer.extras).
    package: str = "torch"
    doc: str = ""

    def load(self, part: str) -> Any:
        return _load(getattr(self, part))

    def ops(self) -> dict[str, Any]:
        return self.load("catalogue")


@functools.cache
def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


FRONTENDS: dict[str, Frontend] = {}
DEFAULT = "pytorch"


def register(fe: Frontend) -> Frontend:
    if fe.name in FRONTENDS:
        raise ValueError(f"frontend {fe.name} registered twice")
    FRONTENDS[fe.name] = fe
    return fe


register(Frontend(
    "pytorch", "aten::", "fuzzer.ops.spec:REGISTRY", "fuzzer.oracle:torch_reference",
    "fuzzer.repro:torch_repro_script", package="torch",
    doc="torch.nn modules built from ATen operators; torch eager is the reference"))
register(Frontend(
    "tensorflow", "tf::", "fuzzer.tf.catalogue:REGISTRY", "fuzzer.tf.model:reference",
    "fuzzer.tf.repro:repro_script", vocabulary="fuzzer.tf.catalogue:vocabulary",
    package="tensorflow", seeds="seeds/tf", defect="fuzzer.tf.defect:TF",
    doc="tf.function graphs with a named TensorSpec signature; TF eager is the reference"))


def get(name: str) -> Frontend:
    try:
        return FRONTENDS[name]
    except KeyError:
        raise FrontendError(f"unknown frontend {name!r} (one of {', '.join(FRONTENDS)})") from None


def of_op(op: str) -> Frontend | None:
    for fe in FRONTENDS.values():
        if op.startswith(fe.prefix):
            return fe
    return None


def spec(op: str) -> Any:
    """The catalogue entry of `op` in its frontend's catalogue (KeyError when unknown)."""
    fe = of_op(op)
    found = fe.ops().get(op) if fe is not None else None
    if found is None:
        raise KeyError(f"unknown operator {op!r} (see `convfuzz ops`)")
    return found


def known(op: str) -> bool:
    fe = of_op(op)
    return fe is not None and op in fe.ops()


def of_case(case: Case) -> Frontend:
    """The frontend the Case's operators belong to (the default for a Case without nodes)."""
    return of_ops(n.op for n in case.nodes)


def of_ops(names: Iterable[str]) -> Frontend:
    found: Frontend | None = None
    for op in names:
        fe = of_op(op)
        if fe is None:
            raise FrontendError(f"operator {op!r} belongs to no frontend (prefixes: "
                            f"{', '.join(f.prefix for f in FRONTENDS.values())})")
        if found is not None and fe is not found:
            raise FrontendError(f"operator {op!r} is a {fe.name} operator in a {found.name} Case "
                            "(a Case is written in one framework)")
        found = fe
    return found or FRONTENDS[DEFAULT]


def reference(case: Case) -> Any:
    """The Case run in its own framework: a fuzzer.compare.Reference (worker processes)."""
    return of_case(case).load("reference")(case)

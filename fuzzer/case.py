"""The Case: the one value that passes between modules.

A Case is plain JSON: graph inputs (with how their values are drawn), nodes (canonical ATen op
name, argument references, concrete keyword attributes), outputs and origin. Validation raises
`CaseError` with a one-line message naming the problem; the canonical hash is its identity.

A Case is frozen and its hash computed once: every change is a new Case made by fuzzer.edit.
(The lists and dicts inside are never changed in place either; edits share them.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1
DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32",
          "int64", "bool")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
MAX_NUMEL = 1 << 20  # per input: keeps every Case cheap to run and to store
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::(\d+))?$")


class CaseError(ValueError):
    """A malformed Case. The message is one line and names the offending field."""


@dataclass(frozen=True)
class Input:
    name: str
    shape: list[int]
    dtype: str = "float32"
    values: dict[str, Any] = field(default_factory=lambda: {"dist": "normal", "scale": 1.0})
    # Dimensions (indices) exported as dynamic; the oracle also runs other sizes of them.
    dynamic: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Const:
    """A value embedded in the model, as real models have them: a scalar (`scalar`: passed as a
    Python number, as `x + 1e-6` traces), a small tensor of exact `value`s, or a parameter
    drawn from the `values` distribution (keyed by Case seed and name, like the inputs).
    Both exporters embed them (a literal or an initializer), which is what rewriters match."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    value: Any = None  # a number, or nested lists of the shape's size (MAX_CONST_LITERAL)
    values: dict[str, Any] | None = None  # else: a distribution, like an Input's
    scalar: bool = False


MAX_CONST_LITERAL = 64


@dataclass(frozen=True)
class Node:
    id: str
    op: str
    args: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    seed: int
    inputs: list[Input]
    nodes: list[Node]
    outputs: list[str]
    origin: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA
    consts: list[Const] = field(default_factory=list)

    # -- serialization -------------------------------------------------------------------
    def _plain(self) -> dict[str, Any]:
        """The fields as JSON-ready dicts that share their values with the Case (no copies:
        `dataclasses.asdict` deep-copies and costs more than the JSON itself)."""
        return {"seed": self.seed, "schema": self.schema, "outputs": self.outputs,
                "origin": self.origin,
                "inputs": [{"name": x.name, "shape": x.shape, "dtype": x.dtype,
                            "values": x.values, "dynamic": x.dynamic} for x in self.inputs],
                "nodes": [{"id": n.id, "op": n.op, "args": n.args, "attrs": n.attrs}
                          for n in self.nodes],
                # Only when present: Cases without constants keep the hash they always had.
                **({"consts": [_const_plain(c) for c in self.consts]} if self.consts else {})}

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain data."""
        return json.loads(self.to_json(indent=None))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self._plain(), indent=indent, sort_keys=True)

    def identity(self) -> dict[str, Any]:
        """What determines behaviour: everything but the origin."""
        d = self._plain()
        d.pop("origin", None)
        return d

    @functools.cached_property  # computed once: the Case never changes
    def hash(self) -> str:
        canon = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    @property
    def ops(self) -> list[str]:
        return [n.op for n in self.nodes]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @classmethod
    def from_dict(cls, d: Any) -> Case:
        case = _parse(d)
        validate(case)
        return case

    @classmethod
    def from_json(cls, text: str) -> Case:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise CaseError(f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(d)


def _const_plain(c: Const) -> dict[str, Any]:
    d: dict[str, Any] = {"name": c.name, "shape": c.shape, "dtype": c.dtype}
    if c.values is not None:
        d["values"] = c.values
    else:
        d["value"] = c.value
    if c.scalar:
        d["scalar"] = True
    return d


def load(path: str | Path) -> Case:
    p = Path(path)
    if not p.is_file():
        raise CaseError(f"{p}: no such file")
    try:
        return Case.from_json(p.read_text())
    except CaseError as e:
        raise CaseError(f"{p}: {e}") from None


@functools.lru_cache(maxsize=4096)  # the same few names, parsed for every node of every run
def split_ref(ref: str) -> tuple[str, int | None]:
    m = _REF.match(ref)
    if not m:
        raise CaseError(f"bad reference {ref!r} (expected NAME or NAME:INDEX)")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def upstream(case: Case, refs: list[str]) -> set[str]:
    """Names of the values (inputs and nodes) the given references depend on, themselves
    included: a walk back along the data flow."""
    by_id = {n.id: n for n in case.nodes}
    seen: set[str] = set()
    todo = [split_ref(r)[0] for r in refs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in by_id:
            todo.extend(split_ref(a)[0] for a in by_id[name].args)
    return seen


def _req(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise CaseError(f"{where}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise CaseError(f"{where}.{key}: expected {name}, got {type(v).__name__}")
    return v


def _parse(d: Any) -> Case:
    if not isinstance(d, dict):
        raise CaseError("a Case must be a JSON object")
    schema = d.get("schema", None)
    if schema != SCHEMA:
        raise CaseError(f"unsupported schema {schema!r} (this convfuzz reads schema {SCHEMA})")
    known = {"schema", "seed", "inputs", "nodes", "outputs", "origin", "consts"}
    extra = sorted(set(d) - known)
    if extra:
        raise CaseError(f"unknown field {extra[0]!r}")
    inputs = []
    for i, x in enumerate(_req(d, "inputs", list, "case")):
        w = f"inputs[{i}]"
        if not isinstance(x, dict):
            raise CaseError(f"{w}: expected an object")
        inputs.append(Input(name=_req(x, "name", str, w), shape=_req(x, "shape", list, w),
                            dtype=x.get("dtype", "float32"),
                            values=x.get("values", {"dist": "normal", "scale": 1.0}),
                            dynamic=x.get("dynamic", [])))
    nodes = []
    for i, n in enumerate(_req(d, "nodes", list, "case")):
        w = f"nodes[{i}]"
        if not isinstance(n, dict):
            raise CaseError(f"{w}: expected an object")
        nodes.append(Node(id=_req(n, "id", str, w), op=_req(n, "op", str, w),
                          args=_req(n, "args", list, w), attrs=n.get("attrs", {})))
    consts = []
    for i, c in enumerate(d.get("consts", [])):
        w = f"consts[{i}]"
        if not isinstance(c, dict):
            raise CaseError(f"{w}: expected an object")
        extra = sorted(set(c) - {"name", "shape", "dtype", "value", "values", "scalar"})
        if extra:
            raise CaseError(f"{w}: unknown field {extra[0]!r}")
        consts.append(Const(name=_req(c, "name", str, w), shape=_req(c, "shape", list, w),
                            dtype=c.get("dtype", "float32"), value=c.get("value"),
                            values=c.get("values"), scalar=bool(c.get("scalar", False))))
    return Case(seed=_req(d, "seed", int, "case"), inputs=inputs, nodes=nodes,
                outputs=_req(d, "outputs", list, "case"), origin=d.get("origin") or {},
                schema=schema, consts=consts)


def validate(case: Case) -> None:
    """Structural checks plus 'every op is in the catalogue'. Shape consistency is checked by
    the materializer (it runs the shape rules); a Case that only fails in eager is `invalid`."""
    # local: the catalogues import torch; keep case.py light to import
    from fuzzer import frontends

    names: set[str] = set()
    for i, x in enumerate(case.inputs):
        w = f"inputs[{i}]"
        numel = _check_declared(x.name, x.dtype, x.shape, w, names)
        names.add(x.name)
        if numel > MAX_NUMEL:
            raise CaseError(f"{w}.shape: {numel} elements exceeds the cap of {MAX_NUMEL}")
        if not isinstance(x.values, dict) or "dist" not in x.values:
            raise CaseError(f"{w}.values: expected an object with a 'dist' field")
        # local: fuzzer.values imports torch; keep case.py light to import
        from fuzzer.values import DISTRIBUTIONS

        if x.values["dist"] not in DISTRIBUTIONS:
            raise CaseError(f"{w}.values.dist: unknown distribution {x.values['dist']!r}")
        if not all(isinstance(a, int) and 0 <= a < len(x.shape) for a in x.dynamic):
            raise CaseError(f"{w}.dynamic: {x.dynamic!r} must list dimension indices")
    for i, c in enumerate(case.consts):
        _check_const(c, f"consts[{i}]", names)
        names.add(c.name)
    for i, n in enumerate(case.nodes):
        w = f"nodes[{i}]"
        if not _NAME.match(n.id):
            raise CaseError(f"{w}.id: {n.id!r} is not an identifier")
        if n.id in names:
            raise CaseError(f"{w}.id: duplicate name {n.id!r}")
        if not frontends.known(n.op):
            raise CaseError(f"{w}.op: unknown operator {n.op!r} (see `convfuzz ops`)")
        if not isinstance(n.attrs, dict):
            raise CaseError(f"{w}.attrs: expected an object")
        for a in n.args:
            if not isinstance(a, str):
                raise CaseError(f"{w}.args: {a!r} is not a reference string")
            base, _ = split_ref(a)
            if base not in names:
                raise CaseError(f"{w}.args: {a!r} is not defined before node {n.id!r}")
        names.add(n.id)
    try:
        frontends.of_case(case)  # one framework a Case: a mix is malformed
    except frontends.FrontendError as e:
        raise CaseError(f"nodes: {e}") from None
    if not case.outputs:
        raise CaseError("outputs: a Case needs at least one output")
    for o in case.outputs:
        if not isinstance(o, str):
            raise CaseError(f"outputs: {o!r} is not a reference string")
        base, _ = split_ref(o)
        if base not in names:
            raise CaseError(f"outputs: {o!r} is not defined")


def _nested_shape(v: Any) -> list[int] | None:
    """The shape of a nested list of numbers, or None when ragged or not numbers."""
    if isinstance(v, (bool, int, float)):
        return []
    if not isinstance(v, list) or not v:
        return None if not isinstance(v, list) else [0]
    inner = [_nested_shape(x) for x in v]
    if any(s is None or s != inner[0] for s in inner):
        return None
    return [len(v), *inner[0]]  # type: ignore[misc]


def _check_declared(name: str, dtype: str, shape: Any, w: str, names: set[str]) -> int:
    """The checks an input and a constant share (name, dtype, shape); returns the numel."""
    if not _NAME.match(name):
        raise CaseError(f"{w}.name: {name!r} is not an identifier")
    if name in names:
        raise CaseError(f"{w}.name: duplicate name {name!r}")
    if dtype not in DTYPES:
        raise CaseError(f"{w}.dtype: unknown dtype {dtype!r} (one of {', '.join(DTYPES)})")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise CaseError(f"{w}.shape: {shape!r} must be a list of non-negative ints")
    numel = 1
    for s in shape:
        numel *= s
    return numel


def _check_const(c: Const, w: str, names: set[str]) -> None:
    numel = _check_declared(c.name, c.dtype, c.shape, w, names)
    if c.values is not None:
        from fuzzer.values import DISTRIBUTIONS  # local: values imports torch (see validate)

        if c.scalar:
            raise CaseError(f"{w}: a scalar constant takes a 'value', not 'values'")
        if not isinstance(c.values, dict) or c.values.get("dist") not in DISTRIBUTIONS:
            raise CaseError(f"{w}.values: expected an object with a known 'dist'")
        if numel > MAX_NUMEL:
            raise CaseError(f"{w}.shape: {numel} elements exceeds the cap of {MAX_NUMEL}")
        return
    if c.scalar and c.shape:
        raise CaseError(f"{w}.shape: a scalar constant has shape [], got {c.shape!r}")
    if numel > MAX_CONST_LITERAL:
        raise CaseError(f"{w}.value: {numel} elements exceeds the literal cap of "
                        f"{MAX_CONST_LITERAL} (draw larger tensors from 'values')")
    if _nested_shape(c.value) != list(c.shape):
        raise CaseError(f"{w}.value: {c.value!r} is not numbers of shape {c.shape!r}")

"""Every Case -> Case edit: the shrinker's passes, the mutator's mutations, the oracle's other
shapes and the reports' controls all change a Case through these functions. Cases are frozen:
an edit returns a new Case (its hash computed afresh) and leaves its argument untouched, so
the parts it does not change are shared, never copied.

Node ids are never renamed here: weights are drawn per (Case seed, node id, param name), so
an edit elsewhere leaves the surviving nodes' weights unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fuzzer import ops
from fuzzer.case import Case, Input, Node, split_ref, upstream
from fuzzer.ops.spec import Meta


# -- fields -----------------------------------------------------------------------------------
def replace(case: Case, **changes: Any) -> Case:
    """`case` with some of its fields (seed, inputs, nodes, outputs, origin) replaced."""
    return dataclasses.replace(case, **changes)


def with_outputs(case: Case, outputs: Sequence[str]) -> Case:
    return dataclasses.replace(case, outputs=list(outputs))


def reseed(case: Case, seed: int) -> Case:
    """Fresh weights and input values, the same graph."""
    return dataclasses.replace(case, seed=seed)


def with_origin(case: Case, origin: Mapping[str, Any]) -> Case:
    return dataclasses.replace(case, origin=dict(origin))


# -- inputs -----------------------------------------------------------------------------------
def map_inputs(case: Case, fn: Callable[[Input], Input]) -> Case:
    """Each input through `fn` (which returns it, or a changed copy from `input_with`)."""
    return dataclasses.replace(case, inputs=[fn(x) for x in case.inputs])


def input_with(x: Input, **changes: Any) -> Input:
    """One input with some fields (shape, dtype, values, dynamic) replaced."""
    return dataclasses.replace(x, **changes)


def edit_inputs(case: Case, names: Iterable[str], **changes: Any) -> Case:
    """The named inputs with the same fields replaced."""
    want = set(names)
    return map_inputs(case, lambda x: input_with(x, **changes) if x.name in want else x)


def with_shapes(case: Case, shapes: Sequence[list[int]]) -> Case:
    """Every input at the given shape, in order."""
    return dataclasses.replace(case, inputs=[
        input_with(x, shape=list(s)) for x, s in zip(case.inputs, shapes, strict=True)])


def default_values(dtype: str) -> dict[str, Any]:
    """How an input of `dtype` draws its values when nothing says otherwise."""
    if dtype == "bool":
        return {"dist": "bool", "p": 0.5}
    if dtype in ("float32", "float64", "float16", "bfloat16"):
        return {"dist": "normal", "scale": 1.0}
    return {"dist": "int", "low": 0 if dtype == "uint8" else -8, "high": 8}


def fresh_name(case: Case) -> str:
    used = {x.name for x in case.inputs} | {n.id for n in case.nodes} | \
        {k.name for k in case.consts}
    k = 0
    while f"x{k}" in used:
        k += 1
    return f"x{k}"


# -- nodes ------------------------------------------------------------------------------------
def map_nodes(case: Case, fn: Callable[[Node], Node]) -> Case:
    return dataclasses.replace(case, nodes=[fn(n) for n in case.nodes])


def set_attr(case: Case, node_id: str, key: str, value: Any) -> Case:
    """Keyword argument `key` of node `node_id` set to `value`."""
    return map_nodes(case, lambda n: dataclasses.replace(n, attrs={**n.attrs, key: value})
                     if n.id == node_id else n)


def drop_attr(case: Case, node_id: str, key: str) -> Case:
    """Keyword argument `key` of node `node_id` back to its default (left out)."""
    return map_nodes(case, lambda n: dataclasses.replace(
        n, attrs={k: v for k, v in n.attrs.items() if k != key}) if n.id == node_id else n)


def rename_reads(case: Case, old: str, new: str) -> Case:
    """Every argument that reads value `old` reads `new` instead."""
    def fix(n: Node) -> Node:
        args = [new if split_ref(r)[0] == old else r for r in n.args]
        return n if args == n.args else dataclasses.replace(n, args=args)
    return map_nodes(case, fix)


def canonical(case: Case) -> Case:
    """Keyword arguments at their default are implied: leaving them out changes no
    behaviour and lets a reader see the one argument that matters."""
    def strip(n: Node) -> Node:
        defaults = ops.get(n.op).defaults()
        return dataclasses.replace(n, attrs={k: v for k, v in n.attrs.items()
                                             if k not in defaults
                                             or not ops.same_value(defaults[k], v)})
    return map_nodes(case, strip)


# -- graph surgery ----------------------------------------------------------------------------
def prune(case: Case) -> Case | None:
    """Drop nodes no output depends on, then inputs nothing reads; outputs that are bare
    graph inputs test nothing and go too. None when no output is left."""
    inputs = {x.name for x in case.inputs} | {k.name for k in case.consts}
    outputs = list(dict.fromkeys(o for o in case.outputs if split_ref(o)[0] not in inputs))
    if not outputs:
        return None
    live = upstream(case, outputs)
    return dataclasses.replace(case, nodes=[n for n in case.nodes if n.id in live],
                               inputs=[x for x in case.inputs if x.name in live],
                               consts=[k for k in case.consts if k.name in live],
                               outputs=outputs)


def _meta(metas: dict[str, list[Meta]], ref: str) -> Meta:
    base, idx = split_ref(ref)
    return metas[base][idx or 0]


def keep_nodes(case: Case, keep: set[str], metas: dict[str, list[Meta]]) -> Case | None:
    """`case` with only the nodes in `keep`. An argument that read a deleted node's output
    reads a value of exactly its shape and dtype instead: one of the deleted node's own
    inputs, else a graph input, else a fresh graph input, so shapes still fit by
    construction. A graph output moves to the deleted node's first input."""
    deleted = {n.id: n for n in case.nodes if n.id not in keep}
    inputs = list(case.inputs)
    repl: dict[tuple[str, int], str] = {}
    dynamic = any(x.dynamic for x in case.inputs)
    metas = dict(metas)

    def resolve(ref: str) -> str:
        base, idx = split_ref(ref)
        if base not in deleted:
            return ref
        key = (base, idx or 0)
        if key in repl:
            return repl[key]
        want = metas[base][idx or 0]
        choice = None
        for a in deleted[base].args:
            r = resolve(a)
            if _meta(metas, r) == want:
                choice = r
                break
        if choice is None:
            choice = next((x.name for x in inputs if _meta(metas, x.name) == want), None)
        if choice is None:
            choice = fresh_name(dataclasses.replace(case, inputs=inputs))
            inputs.append(Input(choice, list(want.shape), want.dtype,
                                default_values(want.dtype),
                                [0] if dynamic and want.shape else []))
            metas[choice] = [want]
        repl[key] = choice
        return choice

    kept = [dataclasses.replace(n, args=[resolve(a) for a in n.args])
            for n in case.nodes if n.id not in deleted]

    moved: dict[str, str] = {}  # each reference's answer once: re-walking every path
    # up a lifted graph's joins is exponential (minutes on a real architecture)

    def resolve_output(ref: str) -> str:
        # An output has no shape to fit: it moves up the chain to the deleted node's input.
        if ref in moved:
            return moved[ref]
        base, _ = split_ref(ref)
        if base not in deleted:
            return ref
        args = deleted[base].args
        if not args:
            return moved.setdefault(ref, resolve(ref))
        # Where branches join (fan-in), up the first branch that still computes something:
        # the first argument may be a graph input or constant, which is no output at all.
        graph = {x.name for x in inputs} | {k.name for k in case.consts}
        for a in args:
            r = resolve_output(a)
            if split_ref(r)[0] not in graph:
                return moved.setdefault(ref, r)
        return moved.setdefault(ref, resolve_output(args[0]))

    outputs = [resolve_output(o) for o in case.outputs]
    return prune(dataclasses.replace(case, inputs=inputs, nodes=kept, outputs=outputs))

"""Samplers: seed -> Case. Every draw comes from a generator seeded by the Case seed, so the
same seed always yields a byte-identical Case.

`random` (the control arm) chains operators drawn uniformly from the catalogue vocabulary;
shapes are kept consistent by each operator's shape rule (the lowering run on meta tensors),
and attribute values are drawn from the entry's domains with a configurable share of
non-default and edge values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fuzzer import ops
from fuzzer.case import Case, Input, Node
from fuzzer.ops.spec import Meta, Operand, OpSpec
from fuzzer.rng import np_rng


@dataclass(frozen=True)
class GenConfig:
    min_len: int = 1
    max_len: int = 6
    nondefault: float = 0.3  # share of keyword arguments drawn away from their default
    float32_share: float = 0.7  # the rest of the inputs take another dtype the op accepts
    tries: int = 12  # attribute draws per op before another op is tried
    dynamic: float = 0.0  # share of Cases whose inputs' dim 0 is exported as dynamic


class GenerationError(RuntimeError):
    """No operator in the vocabulary fits (e.g. an empty or inconsistent vocabulary)."""


def _start_meta(rng: np.random.Generator, spec: OpSpec, cfg: GenConfig) -> Meta:
    lo, hi = spec.ranks
    rank = int(rng.integers(max(lo, 1) if hi >= 1 else 0, min(hi, 4) + 1))
    shape = tuple(int(rng.integers(1, 3)) if i == 0 and rank >= 3 else int(rng.integers(3, 9))
                  for i in range(rank))
    floats = [d for d in spec.dtypes if d == "float32"]
    if floats and rng.random() < cfg.float32_share:
        dtype = "float32"
    else:
        dtype = spec.dtypes[int(rng.integers(len(spec.dtypes)))]
    return Meta(shape, dtype)


def _default_values(m: Meta) -> dict[str, Any]:
    if m.dtype == "bool":
        return {"dist": "bool", "p": 0.5}
    if m.dtype in ("float32", "float64", "float16", "bfloat16"):
        return {"dist": "normal", "scale": 1.0}
    return {"dist": "int", "low": 0 if m.dtype == "uint8" else -8, "high": 8}


@dataclass
class _Builder:
    rng: np.random.Generator
    cfg: GenConfig
    inputs: list[Input]
    nodes: list[Node]

    def new_input(self, meta: Meta, values: dict[str, Any] | None) -> str:
        name = f"x{len(self.inputs)}"
        vals = values if values is not None else _default_values(meta)
        if meta.dtype not in ("float32", "float64", "float16", "bfloat16"):
            vals = _default_values(meta) if vals.get("dist") not in ("int", "bool") else vals
        self.inputs.append(Input(name, list(meta.shape), meta.dtype, dict(vals)))
        return name

    def try_op(self, spec: OpSpec, ref: str, meta: Meta) -> tuple[Node, list[Meta]] | None:
        """Draw attributes and operands for `spec` applied to `ref`; None when nothing fits."""
        if not spec.accepts_meta(meta):
            return None
        for _ in range(self.cfg.tries):
            attrs = spec.sample_attrs(self.rng, [meta], self.cfg.nondefault)
            extra: list[Operand] = spec.operands(self.rng, meta, attrs) if spec.operands else []
            metas = [meta] + [o.meta for o in extra]
            try:
                out = spec.infer(metas, {**spec.defaults(), **attrs})
            except Exception:
                continue
            if any(0 in m.shape for m in out) or any(np.prod(m.shape) > 1 << 16 for m in out):
                continue  # empty or blown-up tensors teach nothing and cost time
            args = [ref] + [self.new_input(o.meta, o.values) for o in extra]
            node = Node(f"n{len(self.nodes)}", spec.name, args, attrs)
            return node, out
        return None


def _terminal(node: Node) -> bool:
    """Index outputs and unordered outputs end a chain: what consumed them would inherit an
    ambiguity (tie-breaking, element order) that no oracle could judge."""
    spec = ops.get(node.op)
    attrs = {**spec.defaults(), **node.attrs}
    return 0 in spec.ties or (spec.unordered is not None and spec.unordered(attrs) is not None)


def chain_case(seed: int, pick: Callable[[np.random.Generator, Meta | None, int], Sequence[str]],
               cfg: GenConfig, sampler: str) -> Case:
    """Build a chain: `pick(rng, current_meta, position)` proposes operator names in order of
    preference; the first that fits the current tensor is applied."""
    rng = np_rng(seed, "generate", sampler)
    length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    b = _Builder(rng, cfg, [], [])
    outputs: list[str] = []
    ref, meta = "", None
    for pos in range(length):
        placed = False
        for name in pick(rng, meta, pos):
            spec = ops.get(name)
            if meta is None:
                start = _start_meta(rng, spec, cfg)
                if not spec.accepts_meta(start):
                    continue
                mark = len(b.inputs)
                ref0 = b.new_input(start, spec.values)
                res = b.try_op(spec, ref0, start)
                if res is None:
                    del b.inputs[mark:]
                    continue
            else:
                mark = len(b.inputs)
                res = b.try_op(spec, ref, meta)
                if res is None:
                    del b.inputs[mark:]
                    continue
            node, outs = res
            b.nodes.append(node)
            # Index outputs (ties) are judged by the values they select: keep them terminal.
            for k in spec.ties:
                if k != 0:
                    outputs.append(f"{node.id}:{k}")
            ref = node.id if len(outs) == 1 else f"{node.id}:0"
            meta = outs[0]
            placed = True
            break
        if not placed or (b.nodes and _terminal(b.nodes[-1])):
            break
    if not b.nodes:
        raise GenerationError("no operator of the vocabulary fits a fresh input")
    outputs.insert(0, ref)
    if cfg.dynamic and rng.random() < cfg.dynamic:
        for x in b.inputs:
            x.dynamic = [0] if x.shape else []
    return Case(seed=seed, inputs=b.inputs, nodes=b.nodes, outputs=outputs,
                origin={"sampler": sampler, "ngram": [n.op for n in b.nodes], "parent": None})


def vocabulary(names: Sequence[str] | None = None) -> list[str]:
    vocab = sorted(names) if names else sorted(ops.REGISTRY)
    for n in vocab:
        ops.get(n)  # unknown names fail here, with the name
    return vocab


def random_case(seed: int, vocab: Sequence[str] | None = None,
                cfg: GenConfig | None = None) -> Case:
    """The control arm: operators uniform over the vocabulary."""
    names = vocabulary(vocab)
    cfg = cfg or GenConfig()

    def pick(rng: np.random.Generator, meta: Meta | None, pos: int) -> list[str]:
        order = rng.permutation(len(names))
        return [names[i] for i in order]

    return chain_case(seed, pick, cfg, "random")


SAMPLERS: dict[str, Callable[..., Case]] = {"random": random_case}

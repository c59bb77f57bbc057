"""The `motif-splice` sampler: a mined motif inside a chain the real sampler draws.

Seed s gives the `motif` sampler's Case s (same motif, sizes and near miss), then a real chain
spliced around it: *before*, a walk of the mined n-gram graph from a fresh input with the
motif input's shape and dtype, keeping only operators that return that shape and dtype (so
the motif reads it where it read its input, every reader alike: RMSNorm's shared input stays
shared); *after*, a walk that continues from one of the motif's outputs, the motif's last
operators as its n-gram history. A block in real models sits between other operators, and a
rewriter must find it there too (or leave alone a neighbour that breaks its preconditions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, Case, Input, Node, split_ref
from fuzzer.generate import (
    Markov,
    _Builder,
    _load,
    _markov,
    _terminal,
    default_seeds,
    mined_attrs,
    vocab_tuple,
)
from fuzzer.model import infer
from fuzzer.motif_sampler import motif_case
from fuzzer.ops.spec import Meta
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, sampler

MAX_BEFORE, MAX_AFTER = 2, 3
_FROM = "motif_out"  # the after-walk's start, renamed to the motif output it reads
_TRIES = 24  # operator names tried per step (in the n-gram model's drawn order)


def _rename(ref: str, names: dict[str, str]) -> str:
    base, idx = split_ref(ref)
    new = names.get(base, base)
    return new if idx is None else f"{new}:{idx}"


def _walk(rng: np.random.Generator, b: _Builder, chain: Markov, ref: str, meta: Meta,
          history: list[str], steps: int, keep_meta: bool) -> tuple[str, list[str]]:
    """Up to `steps` operators of the real arm applied from `ref`; with `keep_meta`, only
    those whose one output has `meta`'s shape and dtype. Returns the last ref and the extra
    outputs (index outputs, as chain_case keeps them)."""
    extra: list[str] = []
    for _ in range(steps):
        order = chain.order(rng, history) or chain.order(rng, [])
        placed = False
        for name in order[:_TRIES]:
            spec = ops.get(name)
            mark = len(b.inputs)
            res = b.try_op(spec, ref, meta)
            if res is None or (keep_meta and (len(res[1]) != 1 or res[1][0] != meta)):
                del b.inputs[mark:]
                continue
            node, outs = res
            if keep_meta and (spec.ties or _terminal(node)):
                del b.inputs[mark:]
                continue
            b.nodes.append(node)
            extra += [f"{node.id}:{k}" for k in spec.ties if k != 0]
            ref = node.id if len(outs) == 1 else f"{node.id}:0"
            meta, history = outs[0], [*history, name]
            placed = True
            break
        if not placed or _terminal(b.nodes[-1]):
            break
    return ref, extra


def _prefixed(b: _Builder, node_prefix: str, input_prefix: str,
              keep: str | None = None) -> tuple[list[Input], list[Node], dict[str, str]]:
    """The builder's inputs and nodes under names that cannot meet the motif's (x/c/w/n):
    input 0 may keep the name `keep`."""
    names = {x.name: (keep if keep and i == 0 else f"{input_prefix}{i}")
             for i, x in enumerate(b.inputs)}
    names.update({n.id: f"{node_prefix}{i}" for i, n in enumerate(b.nodes)})
    inputs = [dataclasses.replace(x, name=names[x.name]) for x in b.inputs]
    nodes = [dataclasses.replace(n, id=names[n.id], args=[_rename(a, names) for a in n.args])
             for n in b.nodes]
    return inputs, nodes, names


def splice_before(rng: np.random.Generator, case: Case, b: _Builder, chain: Markov,
                  steps: int) -> tuple[Case, dict[str, Any] | None]:
    """A meta-keeping real chain in place of one floating input of the motif."""
    cands = [x for x in case.inputs if x.dtype in FLOAT_DTYPES and x.shape]
    if not cands or steps == 0:
        return case, None
    x = cands[int(rng.integers(len(cands)))]
    meta = Meta(tuple(x.shape), x.dtype)
    b.inputs.append(dataclasses.replace(x, name="s0"))
    ref, _ = _walk(rng, b, chain, "s0", meta, [], steps, keep_meta=True)
    if not b.nodes:
        return case, None
    inputs, nodes, names = _prefixed(b, "p", "s", keep=x.name)
    last = _rename(ref, names)
    body = [dataclasses.replace(n, args=[last if a == x.name else a for a in n.args])
            for n in case.nodes]
    new_inputs = [i for y in case.inputs for i in (inputs if y.name == x.name else [y])]
    return (dataclasses.replace(case, inputs=new_inputs, nodes=[*nodes, *body],
                                outputs=[last if o == x.name else o for o in case.outputs]),
            {"on": x.name, "ops": [n.op for n in nodes]})


def splice_after(rng: np.random.Generator, case: Case, b: _Builder, chain: Markov,
                 steps: int) -> tuple[Case, dict[str, Any] | None]:
    """A real chain continuing from one of the motif's outputs (it replaces that output)."""
    if steps == 0:
        return case, None
    out = case.outputs[int(rng.integers(len(case.outputs)))]
    base, idx = split_ref(out)
    metas = infer(case)
    meta = metas[base][idx or 0]
    history = [n.op for n in case.nodes][-3:]
    # The walk starts from a placeholder: the builder's own ids (n0..) may be the motif's.
    ref, extra = _walk(rng, b, chain, _FROM, meta, history, steps, keep_meta=False)
    if not b.nodes:
        return case, None
    names = {_FROM: out, **{x.name: f"t{i}" for i, x in enumerate(b.inputs)}}
    names.update({n.id: f"a{i}" for i, n in enumerate(b.nodes)})
    dyn = [0] if any(x.dynamic == [0] for x in case.inputs) else []
    inputs = [dataclasses.replace(x, name=names[x.name], dynamic=dyn if x.shape else [])
              for x in b.inputs]
    nodes = [dataclasses.replace(n, id=names[n.id], args=[_rename(a, names) for a in n.args])
             for n in b.nodes]
    outputs = [_rename(ref, names) if o == out else o for o in case.outputs]
    outputs += [_rename(e, names) for e in extra]
    return (dataclasses.replace(case, inputs=[*case.inputs, *inputs],
                                nodes=[*case.nodes, *nodes], outputs=outputs),
            {"from": out, "ops": [n.op for n in nodes]})


@sampler("motif-splice")
def spliced_case(seed: int, vocab: Sequence[str] | None = None,
                 cfg: GenConfig | None = None) -> Case:
    """The motif Case `seed`, with a real chain before and/or after it."""
    cfg = cfg or GenConfig()
    case = motif_case(seed, vocab, cfg)
    rng = np_rng(seed, "generate", "splice")
    before, after = int(rng.integers(0, MAX_BEFORE + 1)), int(rng.integers(0, MAX_AFTER + 1))
    if before == after == 0:
        after = 1
    path = str(cfg.seeds or default_seeds())
    chain = _markov(path, vocab_tuple(vocab))
    attrs = mined_attrs(_load(path), cfg.nondefault)
    case, pre = splice_before(rng, case, _Builder(rng, cfg, [], [], attrs), chain, before)
    case, post = splice_after(rng, case, _Builder(rng, cfg, [], [], attrs), chain, after)
    return dataclasses.replace(case, origin={**case.origin, "sampler": "motif-splice",
                                             "splice": {"before": pre, "after": post},
                                             "ngram": case.ops})

"""Samplers: seed -> Case. Every draw comes from a generator seeded by the Case seed, so the
same seed always yields a byte-identical Case.

`random` (the control arm) chains operators drawn uniformly from the catalogue vocabulary;
shapes are kept consistent by each operator's shape rule (the lowering run on meta tensors),
and attribute values are drawn from the entry's domains with a configurable share of
non-default and edge values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer import ops
from fuzzer.case import Case, Input, Node
from fuzzer.ops.spec import Meta, Operand, OpSpec
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, GenerationError, sampler
from fuzzer.seeds import load_seeds


def _start_meta(rng: np.random.Generator, spec: OpSpec, cfg: GenConfig) -> Meta:
    lo, hi = spec.ranks
    low = max(lo, 1) if hi >= 1 else 0
    rank = int(rng.integers(low, max(min(hi, 4), low) + 1))  # rank 5 only where required
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


AttrFn = Callable[[np.random.Generator, OpSpec, list[Meta]], dict[str, Any]]
Pick = Callable[[np.random.Generator, Meta | None, list[str]], Iterable[str]]


@dataclass
class _Builder:
    rng: np.random.Generator
    cfg: GenConfig
    inputs: list[Input]
    nodes: list[Node]
    attrs_fn: AttrFn | None = None

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
            attrs = (self.attrs_fn(self.rng, spec, [meta]) if self.attrs_fn else
                     spec.sample_attrs(self.rng, [meta], self.cfg.nondefault))
            extra: list[Operand] = spec.operands(self.rng, meta, attrs) if spec.operands else []
            metas = [meta] + [o.meta for o in extra]
            try:
                out = spec.infer(metas, {**spec.defaults(), **attrs})
            except Exception:
                continue
            if any(0 in m.shape for m in out) or any(math.prod(m.shape) > 1 << 16 for m in out):
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


def chain_case(seed: int, pick: Pick, cfg: GenConfig, sampler: str,
               attrs_fn: AttrFn | None = None, origin: dict[str, Any] | None = None) -> Case:
    """Build a chain: `pick(rng, current_meta, ops_so_far)` proposes operator names in order
    of preference; the first that fits the current tensor is applied. The chain length is
    drawn the same way for every sampler, so the arms differ only in which operators follow
    which (and with which attributes)."""
    rng = np_rng(seed, "generate", sampler)
    length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    b = _Builder(rng, cfg, [], [], attrs_fn)
    outputs: list[str] = []
    ref, meta = "", None
    for _ in range(length):
        placed = False
        for name in pick(rng, meta, [n.op for n in b.nodes]):
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
        b.inputs = [dataclasses.replace(x, dynamic=[0] if x.shape else []) for x in b.inputs]
    return Case(seed=seed, inputs=b.inputs, nodes=b.nodes, outputs=outputs,
                origin={"sampler": sampler, "ngram": [n.op for n in b.nodes], "parent": None,
                        **(origin or {})})


def vocabulary(names: Sequence[str] | None = None) -> list[str]:
    return list(vocab_tuple(names))


def vocab_tuple(names: Sequence[str] | None = None) -> tuple[str, ...]:
    """`vocabulary` as the samplers key their caches on (computed once a vocabulary)."""
    return _vocabulary(tuple(names) if names else None)


# Every Case of a campaign asks for the same vocabulary: sorting and checking the catalogue's
# names each time was ~0.15 ms of drawing a real-arm Case. The catalogue is fixed at import.
@functools.lru_cache(maxsize=32)
def _vocabulary(names: tuple[str, ...] | None) -> tuple[str, ...]:
    vocab = sorted(names) if names else sorted(ops.REGISTRY)
    for n in vocab:
        ops.get(n)  # unknown names fail here, with the name (a failure is not cached)
    return tuple(vocab)


@sampler("random")
def random_case(seed: int, vocab: Sequence[str] | None = None,
                cfg: GenConfig | None = None) -> Case:
    """The control arm: operators uniform over the vocabulary — by default the same one the
    real arm walks (mined operators the catalogue has), so the arms differ only in order."""
    cfg = cfg or GenConfig()
    names = vocab_tuple(vocab) if vocab or cfg.vocabulary == "catalogue" else \
        _random_vocab(str(cfg.seeds or default_seeds()))

    def pick(rng: np.random.Generator, meta: Meta | None, history: list[str]) -> Iterator[str]:
        order = rng.permutation(len(names))  # drawn whole: the stream does not depend on
        return (names[i] for i in order)  # how many the caller tries (usually the first)

    return chain_case(seed, pick, cfg, "random")


@functools.lru_cache(maxsize=4)
def _random_vocab(path: str) -> tuple[str, ...]:
    """The real arm's vocabulary when seeds exist; the whole catalogue otherwise."""
    if not (Path(path) / "ngrams.json").is_file():
        return vocab_tuple(None)
    return tuple(sorted(_markov(path, vocab_tuple(None)).start))


# -- the real arm: walks of the mined n-gram graph -------------------------------------------
class Markov:
    """Next-operator counts from the mined n-grams, restricted to the vocabulary: order up to
    3 (a 4-gram's first three ops predict its fourth), backing off to shorter prefixes."""

    def __init__(self, seeds: Any, vocab: Sequence[str]) -> None:
        allowed = set(vocab)
        self.start: dict[str, int] = {}
        self.next: dict[tuple[str, ...], dict[str, int]] = {}
        for n, table in seeds.ngrams.items():
            for mined, (count, _archs) in table.items():
                chain = tuple(ops.canonical(o) for o in mined)  # traced aliases -> catalogue
                if not all(op in allowed for op in chain):
                    continue
                if n == 1:
                    self.start[chain[0]] = self.start.get(chain[0], 0) + count
                else:
                    nxt = self.next.setdefault(chain[:-1], {})
                    nxt[chain[-1]] = nxt.get(chain[-1], 0) + count
        if not self.start:
            raise GenerationError("no mined operator is in the vocabulary")

        self._keys: dict[tuple[str, ...], tuple[list[str], np.ndarray]] = {}

    def _prefix(self, history: list[str]) -> tuple[str, ...] | None:
        """The longest suffix of `history` with mined successors; () is the start."""
        for k in (3, 2, 1):
            if len(history) >= k and tuple(history[-k:]) in self.next:
                return tuple(history[-k:])
        return () if not history else None

    def _successors(self, key: tuple[str, ...]) -> dict[str, int]:
        return self.next[key] if key else self.start

    def counts(self, history: list[str]) -> dict[str, int]:
        key = self._prefix(history)
        return {} if key is None else self._successors(key)

    def order(self, rng: np.random.Generator, history: list[str]) -> list[str]:
        """`weighted_order` of the successors of `history`, their sorted names and log counts
        computed once a prefix (they were a tenth of drawing a real-arm Case)."""
        key = self._prefix(history)
        if key is None:
            return []
        if key not in self._keys:
            self._keys[key] = _order_keys(self._successors(key))
        return _gumbel_order(rng, *self._keys[key])


def weighted_order(rng: np.random.Generator, counts: dict[str, int]) -> list[str]:
    """Sampling without replacement proportional to counts (Gumbel top-k)."""
    return _gumbel_order(rng, *_order_keys(counts))


def _order_keys(counts: dict[str, int]) -> tuple[list[str], np.ndarray]:
    names = sorted(counts)
    return names, np.log(np.array([counts[n] for n in names], dtype=np.float64))


def _gumbel_order(rng: np.random.Generator, names: list[str], logs: np.ndarray) -> list[str]:
    if not names:
        return []
    drawn = logs + rng.gumbel(size=len(names))
    return [names[i] for i in np.argsort(-drawn, kind="stable")]


def mined_attrs(seeds: Any, nondefault: float) -> AttrFn:
    """Attribute values as real architectures use them: drawn from the mined distribution of
    the same schema argument, except for a `nondefault` share drawn from the catalogue's
    non-default and edge values (where real models never go, converters break)."""
    def draw(rng: np.random.Generator, spec: OpSpec, metas: list[Meta]) -> dict[str, Any]:
        out = {}
        for a in spec.args:
            observed = seeds.arg_table(spec.name, a.name)
            if observed and rng.random() >= nondefault:
                encoded, cdf = observed
                out[a.name] = json.loads(encoded[int(cdf.searchsorted(rng.random(), "right"))])
            else:
                out[a.name] = a.sample(rng, metas, nondefault)
        return out
    return draw


@functools.lru_cache(maxsize=1)
def default_seeds() -> Path:
    return Path(__file__).resolve().parent.parent / "seeds"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Any:
    p = Path(path)
    if not (p / "ngrams.json").is_file():
        raise GenerationError(f"{p}: no mined seeds here (run `convfuzz mine --out {p}`)")
    return load_seeds(p)


@sampler("real")
def real_case(seed: int, vocab: Sequence[str] | None = None,
              cfg: GenConfig | None = None) -> Case:
    """The real arm: a walk of the mined n-gram graph with mined attribute values."""
    cfg = cfg or GenConfig()
    seeds = _load(str(cfg.seeds or default_seeds()))
    chain = _markov(str(cfg.seeds or default_seeds()), vocab_tuple(vocab))

    def pick(rng: np.random.Generator, meta: Meta | None, history: list[str]) -> list[str]:
        return chain.order(rng, history)

    return chain_case(seed, pick, cfg, "real", mined_attrs(seeds, cfg.nondefault))


@functools.lru_cache(maxsize=8)
def _markov(path: str, vocab: tuple[str, ...]) -> Markov:
    return Markov(_load(path), vocab)


def preload() -> None:
    """Load the default seeds' vocabulary and n-gram model into this process's caches. The
    sandbox's forkserver does (fuzzer/warm.py): every worker forked from it starts with them
    instead of loading them again after each recycle (~0.4 s, ~5% of a TorchScript worker's
    life at the default quota)."""
    path = str(default_seeds())
    with contextlib.suppress(GenerationError, OSError, ValueError):
        _random_vocab(path)
        _markov(path, vocab_tuple(None))


@sampler("mixed")
def mixed_case(seed: int, vocab: Sequence[str] | None = None,
               cfg: GenConfig | None = None) -> Case:
    """Half real, half random, decided by the Case seed."""
    arm = real_case if np_rng(seed, "arm").random() < 0.5 else random_case
    return arm(seed, vocab, cfg)

"""The `motif` sampler: mined motifs (fuzzer/motifs.py) as Cases, exactly and as near misses.

An exact Case is a motif's traced instance — its operators, argument slots, constants,
parameters and shared inputs — at new sizes that keep the instance's relations: each size is
changed on its own (doubled, halved, one more), with the attributes that equal it (or its
half) changed alike, and kept only when every node's output shape is the old one under the same
change. A `near_miss` share of the Cases then changes exactly one precondition a rewriter's
pattern checks (`NEAR_MISSES`: an axis, keepdim, a constant, where the epsilon is added, a
dtype, a broadcast shape, a dynamic dimension): a fusion that still fires there is the classic
rewriter bug. Every draw comes from the Case seed; the near miss draws from its own stream, so
seed s gives the same motif at the same sizes with and without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, Case, CaseError, Const, Input, Node, split_ref
from fuzzer.model import infer
from fuzzer.motifs import Motif, load_motifs, sizes_of
from fuzzer.ops.spec import Meta
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, GenerationError, sampler

_SIZE_ATTRS = ("size", "shape", "start", "end", "out_features", "split_size")
SEEDS = Path(__file__).resolve().parent.parent / "seeds"  # the repo's, as the real arm's
_MAX_SIZE = 64  # sizes stay small: a motif Case should cost what a chain Case costs
NAMED_SHARE = 0.85  # of the draws: named blocks (see _pool)


@functools.lru_cache(maxsize=4)
def _motifs(path: str) -> tuple[Motif, ...]:
    p = Path(path) / "motifs.json"
    if not p.is_file():
        raise GenerationError(f"{p}: no mined motifs (run `convfuzz mine --out {path}`)")
    _, motifs = load_motifs(p)
    return tuple(motifs)


@functools.lru_cache(maxsize=16)
def _pool(path: str, vocab: tuple[str, ...] | None) -> tuple[tuple[Motif, ...], np.ndarray]:
    """The motifs whose operators are in the vocabulary (and that the catalogue still has),
    with the cumulative weights they are drawn by. A `NAMED_SHARE` of the draws goes to the
    named blocks (the ones fusions are written for), split evenly between the block names
    (else rms_norm and swiglu, in 120 architectures, would crowd out gelu_tanh and attention
    written out, in 7-11), and within a name by architectures times operators: the larger
    instances hold the whole block (the weight multiply after an RMSNorm, the bias after a
    projection) that a fusion's pattern ends with. The rest goes to the unnamed motifs by
    their number of architectures (mask plumbing like add -> unsqueeze is in 300)."""
    allowed = set(vocab) if vocab else set(ops.REGISTRY)
    pool = tuple(m for m in _motifs(path) if set(m.ops) <= allowed)
    if not pool:
        raise GenerationError("no mined motif is in the vocabulary")
    names = sorted({n for m in pool for n in m.name})
    w = np.zeros(len(pool), dtype=np.float64)
    unnamed = np.array([0.0 if m.name else len(m.archs) for m in pool])
    share = NAMED_SHARE if names and unnamed.sum() else (1.0 if names else 0.0)
    for name in names:
        within = np.array([len(m.archs) * len(m.ops) if name in m.name else 0.0
                           for m in pool])
        w += share / len(names) * within / within.sum()
    if unnamed.sum():
        w += (1.0 - share) * unnamed / unnamed.sum()
    return pool, (w / w.sum()).cumsum()


def instance_case(m: Motif, seed: int) -> Case:
    """The motif's traced instance as a Case (no resizing, no near miss)."""
    inst = m.instance
    outputs = inst["outputs"] or [inst["nodes"][-1]["id"]]
    return Case(seed=seed,
                inputs=[Input(x["name"], list(x["shape"]), x["dtype"],
                              _input_values(inst, x)) for x in inst["inputs"]],
                nodes=[Node(n["id"], n["op"], list(n["args"]), dict(n["attrs"]))
                       for n in inst["nodes"]],
                outputs=list(outputs),
                consts=[Const(c["name"], list(c["shape"]), c["dtype"], c.get("value"),
                              dict(c["values"]) if c.get("values") else None,
                              bool(c.get("scalar", False))) for c in inst["consts"]],
                origin={"sampler": "motif", "motif": m.key, "motif_name": list(m.name),
                        "ngram": [n["op"] for n in inst["nodes"]], "parent": None})


def as_parameters(case: Case) -> tuple[Case, list[str]]:
    """Rank-1 floating inputs become parameters (initializers): in the models they are weights
    and biases (a norm's gamma and beta, a projection's bias) that the trace reached through
    an op outside the mined region, so the miner saw an input. Fusions demand them constant
    (`is_constant_with_specified_dimension` in onnxruntime.transformers, initializers in ONNX
    Runtime's C++ fusions): as graph inputs, a LayerNorm or SkipLayerNorm never fuses."""
    weights = [x for x in case.inputs if len(x.shape) == 1 and x.dtype in FLOAT_DTYPES
               and not x.dynamic]
    if not weights or len(weights) == len(case.inputs):
        return case, []  # a Case needs an input
    names = {x.name for x in weights}
    return dataclasses.replace(
        case, inputs=[x for x in case.inputs if x.name not in names],
        consts=[*case.consts, *(Const(x.name, list(x.shape), x.dtype, None, dict(x.values))
                                for x in weights)]), sorted(names)


def _input_values(inst: dict[str, Any], x: dict[str, Any]) -> dict[str, Any]:
    """The value distribution the first operator reading `x` prefers (positive for rsqrt
    and log, in range for asin...), as the chain samplers draw a chain's first input."""
    if x["dtype"] in FLOAT_DTYPES:
        for n in inst["nodes"]:
            if n["args"] and n["args"][0] == x["name"]:
                if isinstance(n["attrs"].get("exponent"), int):
                    break  # x ** 2 (RMSNorm) takes any sign
                pref = ops.get(n["op"]).values
                if pref is not None:
                    return dict(pref)
    return dict(x["values"])


# -- resizing within the same relations -------------------------------------------------------
def _remap(v: Any, old: int, new: int, exact: bool = True, halves: bool = True) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, list)):
        return v
    if isinstance(v, list):
        return [_remap(x, old, new, exact, halves) for x in v]
    if exact and v == old:
        return new
    if halves and old % 2 == 0 and new % 2 == 0 and v == old // 2:
        return new // 2
    return v


def _resized(case: Case, old: int, new: int, exact: bool, halves: bool) -> Case:
    def shape(sh: list[int]) -> list[int]:
        return [new if s == old else s for s in sh]
    return dataclasses.replace(
        case,
        inputs=[dataclasses.replace(x, shape=shape(x.shape)) for x in case.inputs],
        consts=[dataclasses.replace(k, shape=shape(k.shape)) for k in case.consts],
        nodes=[dataclasses.replace(n, attrs={k: _remap(v, old, new, exact, halves)
                                             if k in _SIZE_ATTRS else v
                                             for k, v in n.attrs.items()})
               for n in case.nodes])


def _set_attr(case: Case, i: int, key: str, value: Any) -> Case:
    nodes = list(case.nodes)
    nodes[i] = dataclasses.replace(nodes[i], attrs={**nodes[i].attrs, key: value})
    return dataclasses.replace(case, nodes=nodes)


def _with(case: Case, name: str, **changes: Any) -> Case:
    """The input or constant `name` with some fields replaced."""
    return dataclasses.replace(
        case, inputs=[dataclasses.replace(x, **changes) if x.name == name else x
                      for x in case.inputs],
        consts=[dataclasses.replace(k, **changes) if k.name == name else k
                for k in case.consts])


def consistent(before: dict[str, list[Meta]], after: dict[str, list[Meta]], old: int,
               new: int) -> bool:
    """Every value keeps its rank and dtype, and each of its sizes is the old one or the old
    one read through the change (`old` as `new`, its half as the new half): a size that only
    equalled `old` by chance (a sequence as long as half a head) may stay."""
    for k, metas in before.items():
        for a, b in zip(metas, after[k], strict=True):
            if a.dtype != b.dtype or len(a.shape) != len(b.shape):
                return False
            if any(y != x and y != _remap(x, old, new) for x, y in zip(a.shape, b.shape,
                                                                       strict=True)):
                return False
    return True


# Which attribute values move with a size: those equal to it and to its half; only those
# equal to it; only its halves (an attribute equal to two sizes' relations is ambiguous).
_VARIANTS = ((True, True), (True, False), (False, True))


def resize(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, int]]:
    """New sizes within the instance's relations (see the module doc); the map applied. A
    new size keeps its rank among the motif's sizes and meets none of the others (nor their
    halves or doubles)."""
    metas = infer(case)
    applied: dict[str, int] = {}
    sizes = sizes_of(fragment_of(case))
    for i, old in enumerate(sizes):
        if rng.random() < 0.5:
            continue
        lo = sizes[i - 1] if i else 1
        hi = sizes[i + 1] if i + 1 < len(sizes) else _MAX_SIZE + 1
        others = [s for s in sizes if s != old]
        taken = set(others) | {s // 2 for s in others} | {2 * s for s in others}
        cands = [s for s in (2 * old, old // 2 if old % 2 == 0 else old + 1, old + 2)
                 if lo < s < hi and s >= 2 and s not in taken]
        if not cands:
            continue
        new = cands[int(rng.integers(len(cands)))]
        for exact, halves in _VARIANTS:
            cand = _resized(case, old, new, exact, halves)
            try:
                after = infer(cand)
            except CaseError:
                continue
            if consistent(metas, after, old, new):
                case, metas, applied[str(old)] = cand, after, new
                sizes[i] = new
                break
    return case, applied


def fragment_of(case: Case) -> dict[str, Any]:
    """A Case in the form motifs are keyed by (fuzzer.motifs.motif_key)."""
    d = case.to_dict()
    return {"inputs": d["inputs"], "consts": d.get("consts", []), "nodes": d["nodes"],
            "outputs": d["outputs"]}


# -- near misses: one precondition changed ---------------------------------------------------
NearMiss = Callable[[np.random.Generator, Case], tuple[Case, dict[str, Any]] | None]
NEAR_MISSES: dict[str, NearMiss] = {}


def near_miss(name: str) -> Callable[[NearMiss], NearMiss]:
    def deco(fn: NearMiss) -> NearMiss:
        NEAR_MISSES[name] = fn
        return fn
    return deco


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))] if items else None


def _rank_of(case: Case, ref: str) -> int:
    base, idx = split_ref(ref)
    return len(infer(case)[base][idx or 0].shape)


@near_miss("axis")
def _axis(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """Another axis for a reduction, softmax, concatenation, slice or transpose."""
    sites = [(i, k) for i, n in enumerate(case.nodes) for k in ("dim", "dim0", "dim1")
             if k in n.attrs and n.attrs[k] is not None]
    site = _pick(rng, sites)
    if site is None:
        return None
    i, k = site
    old = case.nodes[i].attrs[k]
    rank = _rank_of(case, case.nodes[i].args[0])
    axes = [d for d in range(-rank, 0)]
    if isinstance(old, list):
        cands: list[Any] = [[d] for d in axes if [d] != old and [d + rank] != old]
    else:
        cands = [d for d in axes if d != old and d + rank != old]
    new = _pick(rng, cands)
    if new is None:
        return None
    return _set_attr(case, i, k, new), {"kind": "axis", "at": case.nodes[i].id, "attr": k,
                                        "from": old, "to": new}


@near_miss("keepdim")
def _keepdim(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    sites = [i for i, n in enumerate(case.nodes) if isinstance(n.attrs.get("keepdim"), bool)]
    i = _pick(rng, sites)
    if i is None:
        return None
    old = case.nodes[i].attrs["keepdim"]
    return _set_attr(case, i, "keepdim", not old), {"kind": "keepdim", "at": case.nodes[i].id,
                                                    "from": old, "to": not old}


def _other_value(rng: np.random.Generator, v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1 if v != 2 else 3
    if v == 0:
        return 1e-6
    return float(v * _pick(rng, (10.0, 0.1, 1.0625, -1.0)))


@near_miss("constant")
def _constant(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """Another value of one scalar constant (eps, 0.5, 0.044715...) or pow's exponent."""
    sites: list[tuple[str, Any]] = [("const", c.name) for c in case.consts if c.scalar]
    sites += [("exponent", i) for i, n in enumerate(case.nodes) if "exponent" in n.attrs]
    site = _pick(rng, sites)
    if site is None:
        return None
    if site[0] == "const":
        k = next(x for x in case.consts if x.name == site[1])
        new = _other_value(rng, k.value)
        return _with(case, k.name, value=new), {"kind": "constant", "at": k.name,
                                                "from": k.value, "to": new}
    n = case.nodes[site[1]]
    old = n.attrs["exponent"]
    new = _other_value(rng, old)
    return _set_attr(case, site[1], "exponent", new), {"kind": "constant", "at": n.id,
                                                       "attr": "exponent", "from": old,
                                                       "to": new}


@near_miss("eps_placement")
def _eps_placement(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """`f(x + eps)` becomes `f(x) + eps` (rsqrt(var + eps) -> rsqrt(var) + eps): the add of a
    scalar constant moves past its one consumer, a one-input op."""
    scalars = {c.name for c in case.consts if c.scalar}
    readers: dict[str, list[int]] = {}
    for i, n in enumerate(case.nodes):
        for a in n.args:
            readers.setdefault(split_ref(a)[0], []).append(i)
    sites = [i for i, n in enumerate(case.nodes)
             if n.op == "aten::add" and len(n.args) == 2 and n.args[1] in scalars
             and len(readers.get(n.id, [])) == 1 and n.id not in case.outputs
             and len(case.nodes[readers[n.id][0]].args) == 1]
    i = _pick(rng, sites)
    if i is None:
        return None
    j = readers[case.nodes[i].id][0]
    add, f = case.nodes[i], case.nodes[j]
    f2 = dataclasses.replace(f, args=[add.args[0]])
    add2 = dataclasses.replace(add, args=[f.id, add.args[1]])
    nodes = []
    for k, n in enumerate(case.nodes):
        if k == i:
            nodes.append(f2)  # definition before use (ids need no order)
        elif k == j:
            nodes.append(add2)
        else:  # f's readers now read the add
            args = [add.id if a == f.id else a for a in n.args]
            nodes.append(n if args == n.args else dataclasses.replace(n, args=args))
    c = dataclasses.replace(case, nodes=nodes,
                            outputs=[add.id if o == f.id else o for o in case.outputs])
    return c, {"kind": "eps_placement", "at": add.id, "after": f.id}


@near_miss("dtype")
def _dtype(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """Another floating dtype for the block (every floating input and parameter: one of
    them alone would mostly make a mixed-dtype matmul torch rejects), or for a cast's
    target."""
    floats = {x.dtype for x in [*case.inputs, *case.consts]
              if not getattr(x, "scalar", False) and x.dtype in FLOAT_DTYPES}
    sites: list[Any] = ["block"] if len(floats) == 1 else []
    sites += [i for i, n in enumerate(case.nodes)
              if n.op == "aten::to" and n.attrs.get("dtype") in FLOAT_DTYPES]
    site = _pick(rng, sites)
    if site is None:
        return None
    if site == "block":
        old = next(iter(floats))
        new = _pick(rng, [d for d in FLOAT_DTYPES if d != old])
        c = dataclasses.replace(
            case, inputs=[dataclasses.replace(x, dtype=new) if x.dtype == old else x
                          for x in case.inputs],
            consts=[dataclasses.replace(k, dtype=new) if k.dtype == old and not k.scalar
                    else k for k in case.consts])
        return c, {"kind": "dtype", "at": "block", "from": old, "to": new}
    n = case.nodes[site]
    old = n.attrs["dtype"]
    new = _pick(rng, [d for d in FLOAT_DTYPES if d != old])
    return _set_attr(case, site, "dtype", new), {"kind": "dtype", "at": n.id, "from": old,
                                                 "to": new}


@near_miss("broadcast")
def _broadcast(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """One dim of one input or parameter becomes 1 (it broadcasts where it matched)."""
    sites = [(x.name, d) for x in [*case.inputs, *case.consts] if not getattr(x, "scalar", False)
             for d, s in enumerate(x.shape) if s > 1]
    site = _pick(rng, sites)
    if site is None:
        return None
    x = next(v for v in [*case.inputs, *case.consts] if v.name == site[0])
    new = [1 if d == site[1] else s for d, s in enumerate(x.shape)]
    return _with(case, x.name, shape=new), {"kind": "broadcast", "at": x.name,
                                            "from": list(x.shape), "to": new}


@near_miss("dynamic")
def _dynamic(rng: np.random.Generator, case: Case) -> tuple[Case, dict[str, Any]] | None:
    """Dim 0 of every input exported as dynamic (the pattern must hold at any size)."""
    if any(x.dynamic for x in case.inputs) or not any(x.shape for x in case.inputs):
        return None
    c = _dynamic_dim0(case)
    return c, {"kind": "dynamic", "at": [x.name for x in c.inputs if x.dynamic], "dim": 0}


def _dynamic_dim0(case: Case) -> Case:
    return dataclasses.replace(case, inputs=[dataclasses.replace(x, dynamic=[0] if x.shape
                                                                 else []) for x in case.inputs])


def apply_near_miss(rng: np.random.Generator, case: Case,
                    kinds: Sequence[str] | None = None) -> tuple[Case, dict[str, Any]] | None:
    """One near miss whose Case the shape rules accept (kinds tried in a drawn order)."""
    names = list(kinds or sorted(NEAR_MISSES))
    for k in rng.permutation(len(names)):
        try:
            got = NEAR_MISSES[names[int(k)]](rng, case)
            if got is not None:
                infer(got[0])
                return got
        except (CaseError, KeyError, ValueError, IndexError):
            continue
    return None


# -- the sampler ------------------------------------------------------------------------------
@sampler("motif")
def motif_case(seed: int, vocab: Sequence[str] | None = None,
               cfg: GenConfig | None = None) -> Case:
    """A mined motif, drawn by its number of architectures, at new sizes; a `cfg.near_miss`
    share of them with one precondition changed."""
    cfg = cfg or GenConfig()
    path = str(cfg.seeds or SEEDS)
    pool, cdf = _pool(path, tuple(sorted(vocab)) if vocab else None)
    rng = np_rng(seed, "generate", "motif")
    m = pool[min(int(cdf.searchsorted(rng.random(), "right")), len(pool) - 1)]
    case, params = as_parameters(instance_case(m, seed))
    try:
        case, sizes = resize(rng, case)
    except CaseError:
        sizes = {}
    near = np_rng(seed, "generate", "motif", "near")
    miss = None
    if cfg.near_miss and near.random() < cfg.near_miss:
        got = apply_near_miss(near, case)
        if got is not None:
            case, miss = got
    elif cfg.dynamic and near.random() < cfg.dynamic:
        case = _dynamic_dim0(case)
    case = dataclasses.replace(case, origin={**case.origin, "sizes": sizes, "near_miss": miss,
                                             "params": params,
                                             "ngram": case.ops})
    return case


def preload() -> None:
    """Load the default motifs into this process's caches (see generate.preload)."""
    with contextlib.suppress(GenerationError, OSError, ValueError):
        _pool(str(SEEDS), None)



"""The `mutate` sampler: small edits of corpus Cases. A finding's neighbourhood (another
argument value, dtype, size or dynamic dim) is where its siblings hide.

Mutations are a registry of small functions; each returns a changed copy or None. A mutant is
kept only if the catalogue's shape rules accept it; every draw comes from the Case seed."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, Case, CaseError, split_ref
from fuzzer.edit import edit_inputs, input_with, map_inputs, replace, set_attr
from fuzzer.model import infer
from fuzzer.rng import np_rng
from fuzzer.sampling import GenConfig, GenerationError, sampler

Mutation = Callable[[np.random.Generator, Case], Case | None]
MUTATIONS: dict[str, Mutation] = {}


def mutation(name: str) -> Callable[[Mutation], Mutation]:
    def deco(fn: Mutation) -> Mutation:
        MUTATIONS[name] = fn
        return fn
    return deco


@mutation("argument")
def _argument(rng: np.random.Generator, case: Case) -> Case | None:
    """Another value of one keyword argument, from the entry's non-default and edge values."""
    metas = infer(case)
    choices = [(i, a) for i, n in enumerate(case.nodes) for a in ops.get(n.op).args]
    if not choices:
        return None
    i, arg = choices[int(rng.integers(len(choices)))]
    node = case.nodes[i]
    ins = [metas[split_ref(r)[0]][split_ref(r)[1] or 0] for r in node.args]
    current = {**ops.get(node.op).defaults(), **node.attrs}.get(arg.name)
    cands = [v for v in [arg.default, *arg.candidates(ins)] if not ops.same_value(v, current)]
    if not cands:
        return None
    return set_attr(case, node.id, arg.name, cands[int(rng.integers(len(cands)))])


@mutation("dtype")
def _dtype(rng: np.random.Generator, case: Case) -> Case | None:
    """Another floating dtype for one floating input (half types are where exporters slip)."""
    floats = [i for i, x in enumerate(case.inputs) if x.dtype in FLOAT_DTYPES]
    if not floats:
        return None
    x = case.inputs[floats[int(rng.integers(len(floats)))]]
    dtype = [d for d in FLOAT_DTYPES if d != x.dtype][int(rng.integers(len(FLOAT_DTYPES) - 1))]
    return edit_inputs(case, [x.name], dtype=dtype)


@mutation("size")
def _size(rng: np.random.Generator, case: Case) -> Case | None:
    """Change one size everywhere it occurs (inputs that must agree keep agreeing)."""
    sizes = sorted({s for x in case.inputs for s in x.shape})
    if not sizes:
        return None
    old = sizes[int(rng.integers(len(sizes)))]
    new = [s for s in (1, old - 1, old + 1, 2 * old) if s >= 1 and s != old]
    pick = new[int(rng.integers(len(new)))]
    return map_inputs(case, lambda x: input_with(x, shape=[pick if s == old else s
                                                            for s in x.shape]))


@mutation("dynamic")
def _dynamic(rng: np.random.Generator, case: Case) -> Case | None:
    """Export the batch dim as dynamic (or stop doing so)."""
    on = not any(x.dynamic for x in case.inputs)
    return map_inputs(case, lambda x: input_with(x, dynamic=[0] if on and x.shape else []))


def corpus_cases(root: Path) -> list[Case]:
    """The minimized and original Cases of every corpus finding (parents for mutation)."""
    cases = []
    for p in sorted(root.glob("*/*.json")):
        if p.name in ("case.json", "original.json"):
            try:
                cases.append(Case.from_json(p.read_text()))
            except CaseError:
                continue  # an operator this catalogue no longer has: not a parent
    return cases


@functools.lru_cache(maxsize=4)
def _parents(root: str) -> tuple[Case, ...]:
    cases = corpus_cases(Path(root))
    if not cases:
        raise GenerationError(f"{root}: no corpus Cases to mutate")
    return tuple(cases)


def default_corpus() -> Path:
    return Path(__file__).resolve().parent.parent / "corpus"


@sampler("mutate")
def mutate_case(seed: int, vocab: Sequence[str] | None = None,
                cfg: GenConfig | None = None, tries: int = 24) -> Case:
    """One to three mutations of a corpus Case drawn by the seed, checked by shape rules."""
    cfg = cfg or GenConfig()
    parents = _parents(str(default_corpus()))
    rng = np_rng(seed, "mutate")
    allowed = set(vocab) if vocab else None
    pool = [p for p in parents if allowed is None or set(p.ops) <= allowed] or list(parents)
    parent = pool[int(rng.integers(len(pool)))]
    names = sorted(MUTATIONS)
    case, applied = parent, []
    for _ in range(tries):
        if len(applied) >= 1 + int(rng.integers(3)):
            break
        name = names[int(rng.integers(len(names)))]
        if name == "dynamic" and name in applied:
            continue  # a second toggle would undo the first
        try:
            cand = MUTATIONS[name](rng, case)
            if cand is None:
                continue
            infer(cand)  # shapes must still fit
        except (CaseError, KeyError, ValueError, IndexError):
            continue
        case, applied = cand, [*applied, name]
    # Fresh weights and inputs as well as the edits.
    return replace(case, seed=seed, origin={"sampler": "mutate", "ngram": case.ops,
                                            "parent": parent.hash, "mutations": applied})

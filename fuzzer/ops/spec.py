"""The declarative operator entry and its registry.

One `OpSpec` per canonical ATen name: which inputs it takes (dtype and rank domains), every
keyword argument with its domain (default, non-default and edge values), the parameters it
owns, the torch lowering, and the source template used in repro scripts. The shape rule is,
by default, the lowering itself run on meta tensors: exact for every op torch can run on
'meta', and free of a second, hand-written copy of torch's semantics that could drift.
(Sandboxed workers try the lowering on CPU zeros first — the same answers, faster; see
`eager_shapes`.)
"""

from __future__ import annotations

import copy
import json
import math
import string
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fuzzer.values import TORCH_DTYPES

FLOAT = ("float32", "float64", "float16", "bfloat16")
FLOAT32 = ("float32", "float64")  # ops whose CPU kernels or exports lack half types
INT = ("int8", "uint8", "int16", "int32", "int64")
SIGNED = ("int8", "int16", "int32", "int64")
NUM = FLOAT + INT
ALL = (*NUM, "bool")


@dataclass(frozen=True)
class Meta:
    """What generation and shape rules know of a tensor: shape and dtype, no values."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Operand:
    """An extra tensor input the generator must create (a new graph input)."""

    meta: Meta
    values: dict[str, Any] = field(default_factory=lambda: {"dist": "normal", "scale": 1.0})


# -- argument domains -----------------------------------------------------------------------
def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type: torch tells apart what Python calls equal (an int exponent
    keeps an integer dtype, a float one promotes), so 2 is not the default 2.0, nor True 1."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_value, a, b))
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Arg:
    """A keyword argument: its default, non-default candidates and edge values. `pick` may
    compute candidates from the input metas (e.g. a dim must be < rank)."""

    name: str
    default: Any
    values: tuple[Any, ...] = ()
    edges: tuple[Any, ...] = ()
    pick: Callable[[list[Meta]], Sequence[Any]] | None = None
    # "value" renders with repr; "dtype" names a torch dtype ("float16") and renders as
    # torch.float16, so templates stay valid PyTorch while Cases stay plain JSON.
    kind: str = "value"
    doc: str = ""

    def candidates(self, metas: list[Meta]) -> list[Any]:
        vals = list(self.pick(metas)) if self.pick else list(self.values)
        return ([v for v in vals + list(self.edges) if not same_value(v, self.default)]
                or [self.default])

    def sample(self, rng: np.random.Generator, metas: list[Meta], nondefault: float) -> Any:
        if rng.random() >= nondefault:
            return self.default
        cands = self.candidates(metas)
        return cands[int(rng.integers(len(cands)))]


def dim_arg(name: str = "dim", default: Any = -1, allow_none: bool = False) -> Arg:
    def pick(metas: list[Meta]) -> list[Any]:
        r = max(metas[0].rank, 1)
        vals: list[Any] = list(range(-r, r))
        return [*vals, None] if allow_none else vals
    return Arg(name, default, pick=pick)


def dims_arg(name: str = "dim", default: Any = None) -> Arg:
    def pick(metas: list[Meta]) -> list[Any]:
        r = metas[0].rank
        out: list[Any] = [[d] for d in range(r)] + [[-1]]
        if r >= 2:
            out += [[0, r - 1], list(range(1, r)), [-2, -1]]
        return out
    return Arg(name, default, pick=pick)


def flag(name: str, default: bool = False) -> Arg:
    return Arg(name, default, values=(not default,))


def dtype_arg(name: str = "dtype", default: str | None = None,
              values: tuple[str | None, ...] = ("float64", "float32")) -> Arg:
    """An optional `dtype=` keyword (sum, softmax, cumsum...), rendered as torch.<dtype>."""
    return Arg(name, default, values, kind="dtype")


def tdtype(name: str | None) -> torch.dtype | None:
    """The torch dtype a dtype-kind attribute names (None stays None)."""
    return None if name is None else TORCH_DTYPES[name]


# -- the entry --------------------------------------------------------------------------------
Lowering = Callable[..., Any]
ParamRule = Callable[[dict[str, Any], list[Meta]], dict[str, tuple[tuple[int, ...], str]]]
OperandRule = Callable[[np.random.Generator, Meta, dict[str, Any]], list[Operand]]
TieRule = Callable[[list[torch.Tensor], dict[str, Any], torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class OpSpec:
    name: str
    family: str
    fn: Lowering
    template: str
    dtypes: tuple[str, ...] = FLOAT
    ranks: tuple[int, int] = (0, 5)
    args: tuple[Arg, ...] = ()
    params: ParamRule | None = None
    operands: OperandRule | None = None  # extra tensor inputs beyond the chained one
    ties: dict[int, TieRule] = field(default_factory=dict)  # output index -> value selector
    n_outputs: int = 1
    values: dict[str, Any] | None = None  # preferred value distribution of input 0
    accepts: Callable[[Meta], bool] | None = None  # extra constraint on input 0
    shape: Callable[[list[Meta], dict[str, Any]], list[Meta]] | None = None
    # Dim along which the op leaves output order unspecified for these attrs (topk with
    # sorted=False): the oracle compares such outputs order-free, generation keeps them terminal.
    unordered: Callable[[dict[str, Any]], int | None] | None = None
    # Checks meta execution cannot make (some meta kernels validate less than CPU ones).
    constraint: Callable[[dict[str, Any], list[Meta]], bool] | None = None
    doc: str = ""
    # The ATen overload whose schema this entry mirrors (`torch.ops.aten.<name>.<overload>`)
    # and the Python callable it lowers to: the catalogue test holds the entry's keyword
    # arguments to either signature, so a forgotten argument fails.
    overload: str = "default"
    python: str | None = None
    # attrs -> the attrs the lowering effectively uses, for rendering the template (e.g.
    # interpolate ignores scale_factor once size is given).
    canon: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def accepts_meta(self, m: Meta) -> bool:
        lo, hi = self.ranks
        if m.dtype not in self.dtypes or not lo <= m.rank <= hi:
            return False
        return self.accepts(m) if self.accepts else True

    def defaults(self) -> dict[str, Any]:
        return {a.name: a.default for a in self.args}

    def sample_attrs(self, rng: np.random.Generator, metas: list[Meta],
                     nondefault: float) -> dict[str, Any]:
        return {a.name: a.sample(rng, metas, nondefault) for a in self.args}

    def param_shapes(self, attrs: dict[str, Any],
                     metas: list[Meta]) -> dict[str, tuple[tuple[int, ...], str]]:
        return self.params(attrs, metas) if self.params else {}

    def call(self, tensors: Sequence[torch.Tensor], attrs: dict[str, Any],
             params: dict[str, torch.Tensor]) -> Any:
        return self.fn(*tensors, **attrs, **params)

    def render(self, args: Sequence[str], attrs: dict[str, Any],
               params: dict[str, str] | None = None) -> str:
        """The template as source code: tensor inputs by the given names, attributes as
        literals, parameters as the given expressions (absent optional ones as None).
        `{xs}` renders every tensor input, comma-separated; `{name:kw}` renders
        `, name=value`, or nothing when the value is None (for torch functions whose Python
        binding rejects an explicit None); `{param:clone}` renders `expr.clone()` (or None),
        for lowerings that clone a parameter an op would update in place."""
        a = {**self.defaults(), **attrs}
        if self.canon is not None:
            a = self.canon(a)
        kinds = {x.name: x.kind for x in self.args}
        inputs = {f"x{i}": name for i, name in enumerate(args)} | {"xs": ", ".join(args)}
        out = []
        for literal, f, spec, _ in string.Formatter().parse(self.template):
            out.append(literal)
            if f is None:
                continue
            if f in inputs:
                text = inputs[f]
            elif f in a:
                v = a[f]
                text = (("None" if v is None else f"torch.{v}") if kinds.get(f) == "dtype"
                        else literal_src(v))
                if spec == "kw":
                    text = "" if v is None else f", {f}={text}"
            else:
                text = (params or {}).get(f, "None")
                if spec == "clone" and text != "None":
                    text += ".clone()"
            out.append(text)
        return "".join(out)

    def infer(self, metas: list[Meta], attrs: dict[str, Any]) -> list[Meta]:
        """Output metas, by running the lowering on meta tensors (or the explicit rule; in a
        worker, on CPU zeros first).
        Memoized: meta dispatch costs ~0.2 ms a node, and a worker that generates a Case
        infers every node again when it materializes it. Rejections are memoized too, as
        the error to raise again (a copy of the same type and text): mined attribute values
        that do not fit are drawn again and again, and a rejection raises twice (CPU, then
        meta), ~47 us. Running out of memory is not: it says how full the process was."""
        key = (self.name, tuple(metas), json.dumps(attrs, sort_keys=True, default=repr))
        with _MEMO_LOCK:
            hit = _MEMO.get(key)
            if hit is not None:
                _MEMO.move_to_end(key)
        if isinstance(hit, Exception):
            raise copy.copy(hit)
        if hit is not None:
            return list(hit)
        try:
            out = self._infer(metas, attrs)
        except Exception as e:
            _remember(key, _bare(e))
            raise
        _remember(key, tuple(out))
        return out

    def _infer(self, metas: list[Meta], attrs: dict[str, Any]) -> list[Meta]:
        if self.constraint is not None and not self.constraint(attrs, metas):
            raise ValueError(f"{self.name}: attributes violate the operator's constraint")
        if self.shape is not None:
            return self.shape(metas, attrs)
        with warnings.catch_warnings():  # torch's performance hints are noise while sampling
            warnings.simplefilter("ignore")
            if _EAGER_FIRST[0]:
                try:
                    return self._run_on(metas, attrs, "cpu")
                except Exception:
                    pass  # meta decides (e.g. an integer division of zeros raises on CPU)
            return self._run_on(metas, attrs, "meta")

    def _run_on(self, metas: list[Meta], attrs: dict[str, Any], device: str) -> list[Meta]:
        # CPU kernels read their inputs, so those are zeros; meta tensors have no values.
        make = torch.zeros if device == "cpu" else torch.empty
        ts = [make(m.shape, dtype=TORCH_DTYPES[m.dtype], device=device) for m in metas]
        ps = {k: make(s, dtype=TORCH_DTYPES[d], device=device)
              for k, (s, d) in self.param_shapes(attrs, metas).items()}
        out = self.call(ts, attrs, ps)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        res = []
        for o in outs:
            if not isinstance(o, torch.Tensor):
                raise TypeError(f"{self.name} returned a non-tensor {type(o).__name__}")
            res.append(Meta(tuple(o.shape), _dtype_name(o.dtype)))
        return res


def literal_src(v: Any) -> str:
    """repr, except non-finite floats (repr gives `inf`/`nan`, which are not Python)."""
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(literal_src(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    return repr(v)


def _dtype_name(dt: torch.dtype) -> str:
    for k, v in TORCH_DTYPES.items():
        if v == dt:
            return k
    raise TypeError(f"unsupported dtype {dt}")


REGISTRY: dict[str, OpSpec] = {}


def _remember(key: tuple[str, tuple[Meta, ...], str],
              value: tuple[Meta, ...] | Exception | None) -> None:
    if value is None:
        return
    with _MEMO_LOCK:
        _MEMO[key] = value
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)


def _bare(e: Exception) -> Exception | None:
    """`e` without its traceback or chained causes (which hold the frames, tensors and all),
    or None where a copy would not be the same error (an exception type that cannot be
    rebuilt from its args) or where it is no property of the op (out of memory)."""
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "allocate" in str(e):
        return None
    try:
        c = copy.copy(e)
    except Exception:
        return None
    if type(c) is not type(e) or str(c) != str(e):
        return None
    c.__traceback__ = c.__cause__ = c.__context__ = None
    return c


# Shape inferences (output metas, or the error a rejection raises), least recently used
# first. A pure function of (op, metas, attrs), so safe to share.
_MEMO: OrderedDict[tuple[str, tuple[Meta, ...], str], tuple[Meta, ...] | Exception] = \
    OrderedDict()
_MEMO_LOCK = threading.Lock()
_MEMO_SIZE = 8192
# Worker processes only (fuzzer/worker.py): run the lowering on CPU zeros first and ask meta
# only when that raises. Meta dispatch runs torch's Python decompositions (clamp ~0.8 ms,
# bicubic upsampling ~35 ms) and was ~80% of generating a Case; CPU kernels on these small
# tensors are ~7x cheaper in all. Where the CPU kernel accepts, the answer is meta's (tests/
# test_eager_shapes.py: the same seeds give byte-identical Cases either way). Never in the
# driver: a CPU kernel on an arbitrary shrink candidate could crash or allocate there.
_EAGER_FIRST = [False]


def eager_shapes(on: bool) -> None:
    """Let shape inference run lowerings on CPU zeros before meta (sandboxed workers only)."""
    _EAGER_FIRST[0] = on


def op(name: str, family: str, template: str, **kw: Any) -> Callable[[Lowering], Lowering]:
    """Register the decorated lowering as the catalogue entry `name`."""
    if not name.startswith("aten::"):
        raise ValueError(f"catalogue names are canonical ATen names, got {name!r}")

    def deco(fn: Lowering) -> Lowering:
        if name in REGISTRY:
            raise ValueError(f"operator {name} registered twice")
        REGISTRY[name] = OpSpec(name=name, family=family, fn=fn, template=template,
                                doc=(fn.__doc__ or "").strip(), **kw)
        return fn
    return deco


# -- helpers shared by families -----------------------------------------------------------
def same(rng: np.random.Generator, m: Meta, attrs: dict[str, Any]) -> list[Operand]:
    """A second operand of the same shape and dtype (binary elementwise ops)."""
    return [Operand(m)]


def fan_in_scale(shape: tuple[int, ...]) -> float:
    if not shape:  # a scalar parameter (e.g. a loss weight of a rank-0 input)
        return 1.0
    return 1.0 / math.sqrt(max(1, int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]))


@dataclass(frozen=True)
class GatherTies:
    """Index outputs are judged by the input values they select, so ties cannot fail. Plain
    data (which attrs hold the dim and keepdim) so repro scripts can spell the same rule."""

    dim_key: str = "dim"
    keepdim_key: str | None = "keepdim"  # None: the index has the input's rank already

    def __call__(self, inputs: list[torch.Tensor], attrs: dict[str, Any],
                 idx: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        dim = attrs.get(self.dim_key)
        if dim is None:
            return x.reshape(-1)[idx.reshape(-1).long()]
        idx = idx.long()
        if self.keepdim_key is not None and not attrs.get(self.keepdim_key, False) and \
                x.dim() > 0:
            idx = idx.unsqueeze(dim)
        if x.dim() == 0:
            return x
        return torch.gather(x, dim, idx)


def gather_ties(dim_key: str = "dim", keepdim_key: str | None = "keepdim") -> TieRule:
    return GatherTies(dim_key, keepdim_key)

"""The TensorFlow catalogue: one declarative entry per `tf::` operator.

An entry is the shared `OpSpec`: input dtype/rank domains, keyword arguments with their
domains, the parameters it owns (weights: variables, never captured constants), extra
operands, and a *template* — the TF source of the call (`tf.nn.conv2d({x0}, {filters}, ...)`).
The template is the single source of the operator's meaning: the lowering evaluates it inside
the Case's tf.function, and the repro script prints it. Shape rules are written against
numpy (the driver never imports TensorFlow); tests/test_tf.py holds every entry's rule to TF
itself, running the op in TF on the same attributes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fuzzer.ops.spec import Arg, GatherTies, Meta, Operand, OpSpec, flag

PREFIX = "tf::"
F = ("float32", "float64")
I32 = ("int32", "int64")
NUM = F + I32
POS = {"dist": "positive", "low": 0.1, "high": 4.0}
REGISTRY: dict[str, OpSpec] = {}

Rule = Callable[[list[Meta], dict[str, Any]], list[Meta]]


# -- lowering: the template, evaluated in TF ---------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _compiled(src: str) -> Any:
    return compile(src, "<tf::template>", "eval")


def namespace(src: str) -> dict[str, Any]:
    """What a template may name: tf, and keras when it uses it (imported on use)."""
    from fuzzer.tf.env import keras, tf  # worker processes only

    ns: dict[str, Any] = {"tf": tf()}
    if "keras." in src:
        ns["keras"] = keras()
    return ns


def _lowering(full: str) -> Callable[..., Any]:
    def lower(*xs: Any, **kw: Any) -> Any:
        spec = REGISTRY[full]
        names = {a.name for a in spec.args}
        attrs = {k: v for k, v in kw.items() if k in names}
        params = {k: v for k, v in kw.items() if k not in names}
        src = spec.render([f"x{i}" for i in range(len(xs))], attrs,
                          {p: f"p_{p}" for p in params})
        local = {f"x{i}": x for i, x in enumerate(xs)} | {f"p_{p}": v for p, v in params.items()}
        return eval(_compiled(src), namespace(src), local)
    return lower


def op(name: str, family: str, template: str, shape: Rule, **kw: Any) -> None:
    full = PREFIX + name
    if full in REGISTRY:
        raise ValueError(f"operator {full} registered twice")
    kw.setdefault("dtypes", F)
    kw.setdefault("ranks", (1, 4))
    kw["args"] = tuple(kw.get("args", ()))
    REGISTRY[full] = OpSpec(name=full, family=family, fn=_lowering(full), template=template,
                            shape=shape, doc=kw.pop("doc", template), **kw)


def vocabulary() -> list[str]:
    return sorted(REGISTRY)


# -- shape rules (numpy on zeros, or formulas) -------------------------------------------------
def np_rule(fn: Callable[..., Any], dtype: str | Callable[[list[Meta], dict[str, Any]], str]
            | None = None) -> Rule:
    """The shape of `fn` run by numpy on zeros of the inputs' shapes; the dtype is the first
    input's unless given (numpy promotes where TF does not)."""
    def rule(metas: list[Meta], attrs: dict[str, Any]) -> list[Meta]:
        arrs = [np.zeros(m.shape, dtype=np.dtype(m.dtype)) for m in metas]
        out = fn(*arrs, **attrs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        dt = dtype(metas, attrs) if callable(dtype) else (dtype or metas[0].dtype)
        return [Meta(tuple(int(s) for s in np.shape(o)), dt) for o in outs]
    return rule


def same(metas: list[Meta], attrs: dict[str, Any]) -> list[Meta]:
    return [metas[0]]


def bcast(dtype: str | None = None) -> Rule:
    def rule(metas: list[Meta], attrs: dict[str, Any]) -> list[Meta]:
        shape = np.broadcast_shapes(*(m.shape for m in metas))
        return [Meta(tuple(shape), dtype or metas[0].dtype)]
    return rule


def _axis(a: Any, rank: int) -> int:
    if not -rank <= a < rank:
        raise ValueError(f"axis {a} out of range for rank {rank}")
    return a % rank


def axis_arg(name: str = "axis", default: Any = -1) -> Arg:
    return Arg(name, default, pick=lambda ms: list(range(-ms[0].rank, ms[0].rank)))


def axes_arg(name: str = "axis") -> Arg:
    def pick(ms: list[Meta]) -> list[Any]:
        r = ms[0].rank
        out: list[Any] = [[d] for d in range(r)] + [[-1]]
        if r >= 3:
            out += [[1, 2], list(range(1, r))]
        return out
    return Arg(name, None, pick=pick)


def same_operand(rng: Any, m: Meta, attrs: dict[str, Any]) -> list[Operand]:
    return [Operand(m)]


def positive_operand(rng: Any, m: Meta, attrs: dict[str, Any]) -> list[Operand]:
    return [Operand(m, POS)]


# -- activations -------------------------------------------------------------------------------
for _n, _t in [("relu", "tf.nn.relu"), ("relu6", "tf.nn.relu6"), ("elu", "tf.nn.elu"),
               ("selu", "tf.nn.selu"), ("sigmoid", "tf.math.sigmoid"), ("tanh", "tf.math.tanh"),
               ("softplus", "tf.math.softplus"), ("softsign", "tf.nn.softsign"),
               ("silu", "tf.nn.silu"), ("log_sigmoid", "tf.math.log_sigmoid"),
               ("hard_sigmoid", "keras.activations.hard_sigmoid"),
               ("hard_silu", "keras.activations.hard_silu"), ("mish", "keras.activations.mish"),
               ("keras_relu6", "keras.activations.relu6")]:
    op(_n, "activation", f"{_t}({{x0}})", same)
op("gelu", "activation", "tf.nn.gelu({x0}, approximate={approximate})", same,
   args=[flag("approximate", False)])
op("keras_gelu", "activation", "keras.activations.gelu({x0}, approximate={approximate})", same,
   args=[flag("approximate", True)])
op("leaky_relu", "activation", "tf.nn.leaky_relu({x0}, alpha={alpha})", same,
   args=[Arg("alpha", 0.2, (0.01, 0.3), edges=(0.0, 1.0, -0.5))])
op("softmax", "activation", "tf.nn.softmax({x0}, axis={axis})", same, args=[axis_arg()])
op("log_softmax", "activation", "tf.nn.log_softmax({x0}, axis={axis})", same,
   args=[axis_arg()])
op("crelu", "activation", "tf.nn.crelu({x0}, axis={axis})",
   np_rule(lambda x, axis: np.concatenate([x, x], axis=axis)), args=[axis_arg()])

# -- elementwise -------------------------------------------------------------------------------
for _n in ("abs", "negative", "square", "sign", "exp", "sin", "cos", "erf", "erfc", "floor",
           "ceil", "round", "expm1", "atan", "asinh", "reciprocal_no_nan"):
    op(_n, "elementwise", f"tf.math.{_n}({{x0}})", same,
       dtypes=NUM if _n in ("abs", "negative", "square", "sign") else F)
for _n in ("log", "sqrt", "rsqrt", "reciprocal", "log1p", "lgamma"):
    op(_n, "elementwise", f"tf.math.{_n}({{x0}})", same, values=POS)
for _n in ("add", "subtract", "multiply", "maximum", "minimum", "squared_difference"):
    op(_n, "elementwise", f"tf.math.{_n}({{x0}}, {{x1}})", bcast(), dtypes=NUM,
       operands=same_operand)
for _n in ("divide", "divide_no_nan", "atan2", "floormod"):
    op(_n, "elementwise", f"tf.math.{_n}({{x0}}, {{x1}})", bcast(), operands=positive_operand)
op("floordiv", "elementwise", "tf.math.floordiv({x0}, {x1})", bcast(),
   operands=positive_operand)
op("pow", "elementwise", "tf.math.pow({x0}, {x1})", bcast(), values=POS,
   operands=same_operand)
op("greater", "elementwise", "tf.math.greater({x0}, {x1})", bcast("bool"), dtypes=NUM,
   operands=same_operand)
op("where_positive", "elementwise", "tf.where({x0} > 0, {x0}, {x1})", bcast(),
   operands=same_operand)
op("clip_by_value", "elementwise", "tf.clip_by_value({x0}, {lo}, {hi})", same,
   args=[Arg("lo", -1.0, (-0.5, 0.0)), Arg("hi", 1.0, (0.5, 6.0))])
op("cast", "cast", "tf.cast({x0}, {dtype})", np_rule(lambda x, dtype: x,
                                                       lambda ms, a: a["dtype"]),
   dtypes=NUM, args=[Arg("dtype", "float32", ("float64", "int32", "int64"))])
op("scale_shift", "elementwise", "{x0} * {scale} + {shift}", same,
   args=[Arg("scale", 2.0, (0.5, -1.0)), Arg("shift", 1e-6, (0.0, 3.0))],
   doc="x * c + d with Python floats, as model code writes it")

# -- reductions --------------------------------------------------------------------------------
for _n in ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod",
           "reduce_logsumexp", "reduce_variance", "reduce_std", "reduce_euclidean_norm"):
    _np = {"reduce_sum": np.sum, "reduce_mean": np.mean, "reduce_max": np.max,
           "reduce_min": np.min, "reduce_prod": np.prod, "reduce_logsumexp": np.sum,
           "reduce_variance": np.var, "reduce_std": np.std,
           "reduce_euclidean_norm": np.sum}[_n]
    op(_n, "reduction", f"tf.math.{_n}({{x0}}, axis={{axis}}, keepdims={{keepdims}})",
       np_rule(lambda x, axis, keepdims, f=_np: f(x, axis=None if axis is None else
                                                  tuple(axis), keepdims=keepdims)),
       dtypes=NUM if _n in ("reduce_sum", "reduce_max", "reduce_min") else F,
       args=[axes_arg(), flag("keepdims")])
for _n in ("argmax", "argmin"):
    op(_n, "reduction", f"tf.math.{_n}({{x0}}, axis={{axis}})",
       np_rule(lambda x, axis: np.argmax(x, axis=axis), "int64"), dtypes=NUM,
       args=[axis_arg("axis", 0)], ties={0: GatherTies("axis", "keepdims")})
op("cumsum", "reduction", "tf.math.cumsum({x0}, axis={axis}, exclusive={exclusive}, "
   "reverse={reverse})", same, dtypes=NUM,
   args=[axis_arg("axis", 0), flag("exclusive"), flag("reverse")])
op("l2_normalize", "norm", "tf.math.l2_normalize({x0}, axis={axis}, epsilon={epsilon})", same,
   args=[axis_arg(), Arg("epsilon", 1e-12, (1e-6,))])
op("moments", "norm", "tf.nn.moments({x0}, axes={axis}, keepdims={keepdims})",
   np_rule(lambda x, axis, keepdims: [np.mean(x, axis=tuple(axis), keepdims=keepdims)] * 2),
   args=[Arg("axis", [-1], pick=lambda ms: [[d] for d in range(ms[0].rank)]
             + ([[1, 2]] if ms[0].rank >= 3 else [])), flag("keepdims")],
   n_outputs=2)
op("top_k_values", "reduction", "tf.math.top_k({x0}, k={k}, sorted=True).values",
   np_rule(lambda x, k: np.sort(x, axis=-1)[..., :k] if k <= x.shape[-1] else
           np.take(x, [x.shape[-1]], axis=-1)),
   args=[Arg("k", 1, (2, 3))])


# -- shape and layout --------------------------------------------------------------------------
def _reshapes(ms: list[Meta]) -> list[Any]:
    s = ms[0].shape
    out: list[Any] = [[-1]]
    if len(s) >= 2:
        out += [[s[0], -1], [*s[:-2], s[-2] * s[-1]], [-1, s[-1]]]
    if len(s) >= 1 and s[-1] % 2 == 0:
        out += [[*s[:-1], 2, s[-1] // 2]]
    return out


op("reshape", "shape", "tf.reshape({x0}, {shape})",
   np_rule(lambda x, shape: np.reshape(x, shape)), dtypes=NUM,
   args=[Arg("shape", [-1], pick=_reshapes)])


def _perms(ms: list[Meta]) -> list[Any]:
    r = ms[0].rank
    out: list[Any] = [list(reversed(range(r)))]
    if r >= 2:
        out += [[*range(r - 2), r - 1, r - 2]]
    if r >= 3:
        out += [[0, *range(2, r), 1], [0, r - 1, *range(1, r - 1)]]
    return out


op("transpose", "shape", "tf.transpose({x0}, perm={perm})",
   np_rule(lambda x, perm: np.transpose(x, perm)), dtypes=NUM, ranks=(2, 4),
   args=[Arg("perm", None, pick=_perms)])
op("expand_dims", "shape", "tf.expand_dims({x0}, axis={axis})",
   np_rule(lambda x, axis: np.expand_dims(x, axis)), dtypes=NUM, ranks=(0, 3),
   args=[Arg("axis", 0, pick=lambda ms: list(range(-ms[0].rank - 1, ms[0].rank + 1)))])
op("squeeze", "shape", "tf.squeeze({x0}, axis={axis})",
   np_rule(lambda x, axis: np.squeeze(x, axis=None if axis is None else tuple(axis))),
   dtypes=NUM, args=[Arg("axis", None, pick=lambda ms: [[i] for i, s in
                                                         enumerate(ms[0].shape) if s == 1])],
   accepts=lambda m: 1 in m.shape)
op("concat", "shape", "tf.concat([{x0}, {x1}], axis={axis})",
   np_rule(lambda x, y, axis: np.concatenate([x, y], axis=axis)), dtypes=NUM,
   args=[axis_arg()], operands=same_operand)
op("stack", "shape", "tf.stack([{x0}, {x1}], axis={axis})",
   np_rule(lambda x, y, axis: np.stack([x, y], axis=axis)), dtypes=NUM, ranks=(0, 3),
   args=[Arg("axis", 0, pick=lambda ms: list(range(-ms[0].rank - 1, ms[0].rank + 1)))],
   operands=same_operand)


def _split(x: np.ndarray, num: int, axis: int) -> list[np.ndarray]:
    if x.shape[_axis(axis, x.ndim)] % num:
        raise ValueError("the axis does not divide evenly")
    return list(np.split(x, num, axis=axis))


op("split", "shape", "tf.split({x0}, {num}, axis={axis})", np_rule(_split), dtypes=NUM,
   args=[Arg("num", 2, (3,)), axis_arg()], n_outputs=2)
op("unstack", "shape", "tf.unstack({x0}, axis={axis})",
   np_rule(lambda x, axis: [np.take(x, i, axis=axis) for i in range(x.shape[axis])]),
   dtypes=NUM, ranks=(1, 4), args=[axis_arg("axis", 0)],
   accepts=lambda m: m.rank >= 1 and m.shape[0] <= 4)


def _tiles(ms: list[Meta]) -> list[Any]:
    r = ms[0].rank
    return [[2] + [1] * (r - 1), [1] * (r - 1) + [3], [2] * r] if r else [[]]


op("tile", "shape", "tf.tile({x0}, {multiples})",
   np_rule(lambda x, multiples: np.tile(x, multiples)), dtypes=NUM,
   args=[Arg("multiples", None, pick=_tiles)])


def _pads(ms: list[Meta]) -> list[Any]:
    r = ms[0].rank
    return [[[0, 0]] * (r - 1) + [[1, 1]], [[0, 0]] * (r - 1) + [[0, 2]],
            [[0, 0]] * max(r - 2, 0) + [[1, 2], [2, 1]][-min(r, 2):]]


def _pad(x: np.ndarray, paddings: list[list[int]], mode: str, constant_values: float) -> Any:
    for (a, b), s in zip(paddings, x.shape, strict=True):
        if (mode == "REFLECT" and max(a, b) >= s) or (mode == "SYMMETRIC" and max(a, b) > s):
            raise ValueError(f"{mode} padding {a, b} too large for size {s}")
    return np.pad(x, paddings)


op("pad", "shape", "tf.pad({x0}, {paddings}, mode={mode}, constant_values={constant_values})",
   np_rule(_pad), args=[Arg("paddings", None, pick=_pads),
                        Arg("mode", "CONSTANT", ("REFLECT", "SYMMETRIC")),
                        Arg("constant_values", 0.0, (1.5,))])
op("reverse", "shape", "tf.reverse({x0}, axis={axis})",
   np_rule(lambda x, axis: np.flip(x, axis)), dtypes=NUM,
   args=[Arg("axis", [-1], pick=lambda ms: [[d] for d in range(ms[0].rank)] + [[0, -1]])])


def _slice(x: np.ndarray, start: int, stop: Any, step: int) -> np.ndarray:
    return x[..., start:stop:step]


op("slice_last", "indexing", "{x0}[..., {start}:{stop}:{step}]", np_rule(_slice), dtypes=NUM,
   args=[Arg("start", 0, (1, -2)), Arg("stop", None, (-1, 2)), Arg("step", 1, (2, -1))],
   doc="x[..., a:b:c]: Python slicing lowers to StridedSlice")


def _gather_ops(rng: Any, m: Meta, attrs: dict[str, Any]) -> list[Operand]:
    n = m.shape[_axis(attrs.get("axis", 0), m.rank)] if m.rank else 1
    return [Operand(Meta((int(rng.integers(1, 5)),), "int32"),
                    {"dist": "int", "low": 0, "high": max(n - 1, 0)})]


op("gather", "indexing", "tf.gather({x0}, {x1}, axis={axis})",
   np_rule(lambda x, i, axis: np.take(x, i.astype(np.int64), axis=axis)), dtypes=NUM,
   args=[axis_arg("axis", 0)], operands=_gather_ops)
op("one_hot", "indexing", "tf.one_hot(tf.cast({x0}, tf.int32), {depth})",
   np_rule(lambda x, depth: np.zeros((*x.shape, depth)), "float32"), dtypes=I32, ranks=(1, 3),
   args=[Arg("depth", 8, (4, 10))], values={"dist": "int", "low": 0, "high": 7})
op("broadcast_to", "shape", "tf.broadcast_to({x0}, {shape})",
   np_rule(lambda x, shape: np.broadcast_to(x, shape)), dtypes=NUM, ranks=(1, 3),
   args=[Arg("shape", None, pick=lambda ms: [[2, *ms[0].shape], [3, *ms[0].shape]])])


# -- convolution and pooling (NHWC) ------------------------------------------------------------
def _out(size: int, k: int, s: int, d: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // s)
    eff = (k - 1) * d + 1
    if size < eff:
        raise ValueError("window larger than the input")
    return (size - eff) // s + 1


def conv_rule(metas: list[Meta], a: dict[str, Any]) -> list[Meta]:
    n, h, w, _ = metas[0].shape
    kh, kw = a["kernel"]
    s, d = a["strides"], a["dilations"]
    if s > 1 and d > 1:
        raise ValueError("strides > 1 with dilations > 1 is not supported on CPU")
    return [Meta((n, _out(h, kh, s, d, a["padding"]), _out(w, kw, s, d, a["padding"]),
                  a.get("out_channels", metas[0].shape[3] * a.get("multiplier", 1))),
                 metas[0].dtype)]


CONV_ARGS = [Arg("kernel", [3, 3], ([1, 1], [2, 2], [3, 1], [5, 5])),
             Arg("strides", 1, (2,)), Arg("padding", "SAME", ("VALID",)),
             Arg("dilations", 1, (2,))]
op("conv2d", "conv", "tf.nn.conv2d({x0}, {filters}, strides={strides}, padding={padding}, "
   "dilations={dilations})", conv_rule, ranks=(4, 4),
   args=[*CONV_ARGS, Arg("out_channels", 4, (8, 1))],
   params=lambda a, ms: {"filters": ((*a["kernel"], ms[0].shape[3], a["out_channels"]),
                                     ms[0].dtype)})
op("depthwise_conv2d", "conv", "tf.nn.depthwise_conv2d({x0}, {filters}, strides=[1, {strides}, "
   "{strides}, 1], padding={padding}, dilations=[{dilations}, {dilations}])", conv_rule,
   ranks=(4, 4), args=[*CONV_ARGS, Arg("multiplier", 1, (2,))],
   params=lambda a, ms: {"filters": ((*a["kernel"], ms[0].shape[3], a["multiplier"]),
                                     ms[0].dtype)})
op("conv2d_bias", "conv", "tf.nn.bias_add(tf.nn.conv2d({x0}, {filters}, strides={strides}, "
   "padding={padding}, dilations={dilations}), {bias})", conv_rule, ranks=(4, 4),
   args=[*CONV_ARGS, Arg("out_channels", 4, (8,))],
   params=lambda a, ms: {"filters": ((*a["kernel"], ms[0].shape[3], a["out_channels"]),
                                     ms[0].dtype), "bias": ((a["out_channels"],), ms[0].dtype)},
   doc="Keras Conv2D with use_bias: conv2d + BiasAdd (tf2onnx fuses them)")


def conv1d_rule(metas: list[Meta], a: dict[str, Any]) -> list[Meta]:
    n, w, _ = metas[0].shape
    return [Meta((n, _out(w, a["kernel"], a["stride"], 1, a["padding"]), a["out_channels"]),
                 metas[0].dtype)]


op("conv1d", "conv", "tf.nn.conv1d({x0}, {filters}, stride={stride}, padding={padding})",
   conv1d_rule, ranks=(3, 3),
   args=[Arg("kernel", 3, (1, 5)), Arg("stride", 1, (2,)), Arg("padding", "SAME", ("VALID",)),
         Arg("out_channels", 4, (8,))],
   params=lambda a, ms: {"filters": ((a["kernel"], ms[0].shape[2], a["out_channels"]),
                                     ms[0].dtype)})


def convt_rule(metas: list[Meta], a: dict[str, Any]) -> list[Meta]:
    n, h, w, _ = metas[0].shape
    k, s = a["kernel"], a["strides"]
    size = (lambda x: x * s) if a["padding"] == "same" else (lambda x: x * s + max(k - s, 0))
    return [Meta((n, size(h), size(w), a["out_channels"]), metas[0].dtype)]


op("conv_transpose", "conv", "keras.ops.conv_transpose({x0}, {filters}, strides={strides}, "
   "padding={padding})", convt_rule, ranks=(4, 4),
   args=[Arg("kernel", 3, (2, 4)), Arg("strides", 2, (1,)), Arg("padding", "same", ("valid",)),
         Arg("out_channels", 4, (8,))],
   params=lambda a, ms: {"filters": ((a["kernel"], a["kernel"], a["out_channels"],
                                     ms[0].shape[3]), ms[0].dtype)},
   doc="Keras Conv2DTranspose's op")


def pool_rule(metas: list[Meta], a: dict[str, Any]) -> list[Meta]:
    n, h, w, c = metas[0].shape
    k, s = a["ksize"], a["strides"]
    return [Meta((n, _out(h, k, s, 1, a["padding"]), _out(w, k, s, 1, a["padding"]), c),
                 metas[0].dtype)]


POOL_ARGS = [Arg("ksize", 2, (3, 1)), Arg("strides", 2, (1, 3)),
             Arg("padding", "VALID", ("SAME",))]
op("max_pool2d", "pool", "tf.nn.max_pool2d({x0}, ksize={ksize}, strides={strides}, "
   "padding={padding})", pool_rule, ranks=(4, 4), args=POOL_ARGS)
op("avg_pool2d", "pool", "tf.nn.avg_pool2d({x0}, ksize={ksize}, strides={strides}, "
   "padding={padding})", pool_rule, ranks=(4, 4), args=POOL_ARGS)
op("global_avg_pool", "pool", "tf.reduce_mean({x0}, axis=[1, 2], keepdims={keepdims})",
   np_rule(lambda x, keepdims: np.mean(x, axis=(1, 2), keepdims=keepdims)), ranks=(4, 4),
   args=[flag("keepdims")], doc="Keras GlobalAveragePooling2D")


def _resize_rule(metas: list[Meta], a: dict[str, Any]) -> list[Meta]:
    n, _, _, c = metas[0].shape
    dt = metas[0].dtype if a["method"] == "nearest" else "float32"
    return [Meta((n, *a["size"], c), dt)]


op("resize", "resize", "tf.image.resize({x0}, {size}, method={method})", _resize_rule,
   ranks=(4, 4), args=[Arg("size", [8, 8], ([4, 4], [5, 7], [16, 16])),
                       Arg("method", "bilinear", ("nearest", "bicubic", "area"))])


def _blocks(metas: list[Meta], a: dict[str, Any], up: bool) -> list[Meta]:
    n, h, w, c = metas[0].shape
    b = a["block_size"]
    if up:
        if c % (b * b):
            raise ValueError("channels not divisible by block_size**2")
        return [Meta((n, h * b, w * b, c // (b * b)), metas[0].dtype)]
    if h % b or w % b:
        raise ValueError("spatial size not divisible by block_size")
    return [Meta((n, h // b, w // b, c * b * b), metas[0].dtype)]


op("depth_to_space", "shape", "tf.nn.depth_to_space({x0}, {block_size})",
   lambda ms, a: _blocks(ms, a, True), ranks=(4, 4), args=[Arg("block_size", 2)])
op("space_to_depth", "shape", "tf.nn.space_to_depth({x0}, {block_size})",
   lambda ms, a: _blocks(ms, a, False), ranks=(4, 4), args=[Arg("block_size", 2)])


# -- normalization -----------------------------------------------------------------------------
def _channels(a: dict[str, Any], ms: list[Meta], names: Sequence[str]) -> dict[str, Any]:
    c = ms[0].shape[-1]
    return {k: ((c,), ms[0].dtype) for k in names}


op("batch_normalization", "norm", "tf.nn.batch_normalization({x0}, {running_mean}, "
   "{running_var}, {bias}, {weight}, {epsilon})", same, ranks=(2, 4),
   args=[Arg("epsilon", 1e-3, (1e-5,))],
   params=lambda a, ms: _channels(a, ms, ("running_mean", "running_var", "bias", "weight")),
   doc="Keras BatchNormalization at inference: moving statistics over the last axis")
op("fused_batch_norm", "norm", "tf.compat.v1.nn.fused_batch_norm({x0}, {weight}, {bias}, "
   "mean={running_mean}, variance={running_var}, epsilon={epsilon}, is_training=False)[0]",
   same, ranks=(4, 4), dtypes=("float32",), args=[Arg("epsilon", 1e-3, (1e-5,))],
   params=lambda a, ms: _channels(a, ms, ("running_mean", "running_var", "bias", "weight")))
op("layer_normalization", "norm", "keras.ops.layer_normalization({x0}, {weight}, {bias}, "
   "axis=-1, epsilon={epsilon})", same, ranks=(2, 4), args=[Arg("epsilon", 1e-3, (1e-6,))],
   params=lambda a, ms: _channels(a, ms, ("weight", "bias")),
   doc="Keras LayerNormalization's op")
op("layer_norm_moments", "norm", "tf.nn.batch_normalization({x0}, *tf.nn.moments({x0}, axes=[-1], "
   "keepdims=True), {bias}, {weight}, {epsilon})", same, ranks=(2, 4),
   args=[Arg("epsilon", 1e-3, (1e-6,))],
   params=lambda a, ms: _channels(a, ms, ("weight", "bias")),
   doc="layer norm as tf.keras 2 wrote it: moments, then batch_normalization")
op("rms_normalization", "norm", "keras.ops.rms_normalization({x0}, {weight}, axis=-1, "
   "epsilon={epsilon})", same, ranks=(2, 4), args=[Arg("epsilon", 1e-6, (1e-3,))],
   params=lambda a, ms: _channels(a, ms, ("weight",)))


# -- linear algebra and attention --------------------------------------------------------------
def _mm(x: np.ndarray, y: np.ndarray, transpose_b: bool) -> np.ndarray:
    return np.matmul(x, np.swapaxes(y, -1, -2) if transpose_b else y)


op("dense", "linalg", "tf.matmul({x0}, {kernel}) + {bias}",
   np_rule(lambda x, units: np.zeros((*x.shape[:-1], units))), ranks=(2, 4),
   args=[Arg("units", 8, (4, 16))],
   params=lambda a, ms: {"kernel": ((ms[0].shape[-1], a["units"]), ms[0].dtype),
                         "bias": ((a["units"],), ms[0].dtype)},
   doc="Keras Dense: a kernel variable and a bias")
op("matmul", "linalg", "tf.linalg.matmul({x0}, {x1}, transpose_b={transpose_b})",
   np_rule(_mm), ranks=(2, 4), dtypes=NUM, args=[flag("transpose_b", True)],
   operands=same_operand, doc="x @ y^T of two activations (attention scores)")


def _einsums(ms: list[Meta]) -> list[Any]:
    r = ms[0].rank
    return {2: ["ij->ji", "ij->i", "ij->"], 3: ["bij->bji", "bij->bj", "bij->b"],
            4: ["bhij->bihj", "bhij->bhj", "bhij->bh"]}.get(r, ["i->i"])


def _einsum(x: np.ndarray, equation: str) -> np.ndarray:
    return np.einsum(equation, x)


op("einsum", "linalg", "tf.einsum({equation}, {x0})", np_rule(_einsum), ranks=(1, 4),
   args=[Arg("equation", None, pick=_einsums)])
op("dot_product_attention", "attention", "keras.ops.dot_product_attention({x0}, {x1}, {x2}, "
   "is_causal={is_causal})", same, ranks=(4, 4),
   args=[flag("is_causal")], operands=lambda rng, m, a: [Operand(m), Operand(m)],
   doc="keras.ops.dot_product_attention on (batch, seq, heads, dim)")
op("attention_scores", "attention", "tf.nn.softmax(tf.matmul({x0}, {x1}, transpose_b=True) "
   "* {scale}, axis=-1)", np_rule(lambda x, y, scale: _mm(x, y, True)), ranks=(2, 4),
   args=[Arg("scale", 0.125, (0.5, 1.0))], operands=same_operand,
   doc="softmax(q k^T * scale), as attention layers write it")

"""Mine TF n-grams from real Keras architectures built without weights (`weights=None`: nothing
is downloaded): Keras applications at a small input size and a Keras 3 transformer encoder
block. Each is traced as a tf.function; its graph's operators are mapped to `tf::` catalogue
names (variable reads, identities and shape plumbing are transparent), and chains of 1..4
operators along data-flow paths are counted with the architectures they occur in — the same
seeds format as the PyTorch miner's (fuzzer/seeds.py), so the `real` sampler walks them.

    python -m fuzzer.tf.mine --out seeds/tf

Runs in its own process (it imports TensorFlow); never in a campaign's driver.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fuzzer.seeds import FORMAT, MAX_N
from fuzzer.tf.catalogue import REGISTRY

# TF graph operator -> catalogue name. Ops not here are transparent (their inputs flow
# through) when they only pass data along, or end a path otherwise.
RAW: dict[str, str] = {
    "Conv2D": "tf::conv2d", "DepthwiseConv2dNative": "tf::depthwise_conv2d",
    "Conv2DBackpropInput": "tf::conv_transpose", "MatMul": "tf::dense",
    "BatchMatMulV2": "tf::matmul", "Einsum": "tf::einsum",
    "FusedBatchNormV3": "tf::fused_batch_norm", "Relu": "tf::relu", "Relu6": "tf::relu6",
    "Elu": "tf::elu", "Selu": "tf::selu", "LeakyRelu": "tf::leaky_relu",
    "Sigmoid": "tf::sigmoid", "Tanh": "tf::tanh", "Softplus": "tf::softplus",
    "Softsign": "tf::softsign", "Softmax": "tf::softmax", "LogSoftmax": "tf::log_softmax",
    "AddV2": "tf::add", "Add": "tf::add", "Sub": "tf::subtract", "Mul": "tf::multiply",
    "RealDiv": "tf::divide", "Maximum": "tf::maximum", "Minimum": "tf::minimum",
    "SquaredDifference": "tf::squared_difference", "Pow": "tf::pow", "Rsqrt": "tf::rsqrt",
    "Sqrt": "tf::sqrt", "Square": "tf::square", "Exp": "tf::exp", "Log": "tf::log",
    "Erf": "tf::erf", "Erfc": "tf::erfc", "Neg": "tf::negative", "Abs": "tf::abs",
    "Mean": "tf::reduce_mean", "Sum": "tf::reduce_sum", "Max": "tf::reduce_max",
    "Min": "tf::reduce_min", "Prod": "tf::reduce_prod", "ArgMax": "tf::argmax",
    "MaxPool": "tf::max_pool2d", "AvgPool": "tf::avg_pool2d", "ConcatV2": "tf::concat",
    "Pack": "tf::stack", "Split": "tf::split", "Unpack": "tf::unstack",
    "Reshape": "tf::reshape", "Transpose": "tf::transpose", "ExpandDims": "tf::expand_dims",
    "Squeeze": "tf::squeeze", "Tile": "tf::tile", "Pad": "tf::pad", "PadV2": "tf::pad",
    "MirrorPad": "tf::pad", "StridedSlice": "tf::slice_last", "GatherV2": "tf::gather",
    "Cast": "tf::cast", "ResizeBilinear": "tf::resize", "ResizeNearestNeighbor": "tf::resize",
    "ResizeBicubic": "tf::resize", "DepthToSpace": "tf::depth_to_space",
    "SpaceToDepth": "tf::space_to_depth", "ClipByValue": "tf::clip_by_value",
    "Greater": "tf::greater", "SelectV2": "tf::where_positive", "OneHot": "tf::one_hot",
    "Floor": "tf::floor", "Round": "tf::round", "Cumsum": "tf::cumsum",
    "BroadcastTo": "tf::broadcast_to",
}
# Data passes through these unchanged (a variable read feeds weights, not data).
TRANSPARENT = {"Identity", "IdentityN"}
# A catalogue entry that is two TF ops: the first absorbs the second when it feeds it.
ABSORB = {("tf::conv2d", "BiasAdd"): "tf::conv2d_bias", ("tf::dense", "BiasAdd"): "tf::dense"}


def _apps() -> dict[str, Callable[[], Any]]:
    from fuzzer.tf.env import keras  # on use: this command's own process only

    k = keras()
    small = {"input_shape": (64, 64, 3), "weights": None, "classes": 10}
    apps: dict[str, Callable[[], Any]] = {
        f"keras:{name}": (lambda name=name, kw=kw: getattr(k.applications, name)(**kw))
        for name, kw in [
            ("MobileNetV2", small), ("MobileNetV3Small", small), ("MobileNet", small),
            ("ResNet50", small), ("ResNet50V2", small), ("EfficientNetB0", small),
            ("EfficientNetV2B0", small), ("DenseNet121", small), ("ConvNeXtTiny", small),
            ("NASNetMobile", small), ("Xception", {**small, "input_shape": (71, 71, 3)}),
            ("InceptionV3", {**small, "input_shape": (75, 75, 3)}),
            ("VGG16", {**small, "input_shape": (32, 32, 3)})]}
    apps["keras:TransformerEncoder"] = _encoder
    return apps


def _encoder() -> Any:
    """A Keras 3 transformer encoder block as keras-hub builds one (pre-norm, GELU MLP)."""
    from fuzzer.tf.env import keras  # on use: this command's own process only

    k = keras()
    x = k.Input((16, 32))
    h = k.layers.LayerNormalization(epsilon=1e-6)(x)
    h = k.layers.MultiHeadAttention(num_heads=4, key_dim=8)(h, h)
    x = k.layers.Add()([x, h])
    h = k.layers.LayerNormalization(epsilon=1e-6)(x)
    h = k.layers.Dense(64, activation="gelu")(h)
    h = k.layers.Dense(32)(h)
    out = k.layers.Softmax()(k.layers.Add()([x, h]))
    return k.Model(x, out)


def graph_chains(model: Any) -> list[list[str]]:
    """Every chain of 1..MAX_N mapped operators along the traced graph's data flow."""
    from fuzzer.tf.env import tf  # on use: this command's own process only

    t = tf()
    spec = [t.TensorSpec([1, *i.shape[1:]], i.dtype) for i in model.inputs]
    graph = t.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False)
                       ).get_concrete_function(*spec).graph
    name: dict[str, str] = {}
    preds: dict[str, set[str]] = defaultdict(set)
    for o in graph.get_operations():
        ins = {i.op.name for i in o.inputs}
        if o.type in RAW:
            name[o.name] = RAW[o.type]
        elif o.type in TRANSPARENT or o.type == "BiasAdd":
            name[o.name] = ""  # data flows through
            for i in ins:  # conv2d + BiasAdd: the producer becomes the fused entry
                if (name.get(i), o.type) in ABSORB:
                    name[i] = ABSORB[(name[i], o.type)]
        else:
            continue  # a source (placeholder, variable read, constant) or an unmapped op
        preds[o.name] = ins

    # Collapse transparent ops: each mapped op's mapped predecessors.
    def mapped_preds(n: str, seen: set[str]) -> set[str]:
        out: set[str] = set()
        for p in preds.get(n, ()):
            if p in seen or p not in name:
                continue
            if name[p]:
                out.add(p)
            else:
                out |= mapped_preds(p, seen | {p})
        return out

    real = [n for n in name if name[n] in REGISTRY]
    back = {n: mapped_preds(n, {n}) & set(real) for n in real}
    chains: list[list[str]] = []

    def extend(path: list[str]) -> None:
        chains.append([name[p] for p in path])
        if len(path) < MAX_N:
            for p in back[path[0]]:
                extend([p, *path])

    for n in real:
        extend([n])
    return chains


def mine(out: Path) -> dict[str, Any]:
    t0 = time.time()
    counts: dict[int, Counter[tuple[str, ...]]] = defaultdict(Counter)
    where: dict[tuple[str, ...], set[int]] = defaultdict(set)
    archs: list[str] = []
    failed: dict[str, str] = {}
    for arch, build in _apps().items():
        try:
            chains = graph_chains(build())
        except Exception as e:  # an application that does not build at this size
            failed[arch] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            continue
        archs.append(arch)
        for c in chains:
            counts[len(c)][tuple(c)] += 1
            where[tuple(c)].add(len(archs) - 1)
    out.mkdir(parents=True, exist_ok=True)
    ngrams = {str(n): [{"ops": list(k), "count": v, "archs": sorted(where[k])}
                       for k, v in sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))]
              for n, table in sorted(counts.items())}
    (out / "ngrams.json").write_text(json.dumps(
        {"format": FORMAT, "max_n": MAX_N, "archs": archs, "ngrams": ngrams}))
    ops = {op: {"archs": sorted({archs[i] for k in counts[1] if k == (op,)
                                 for i in where[k]}), "args": {}}
           for (op,) in counts[1]}
    (out / "ops.json").write_text(json.dumps({"format": FORMAT, "ops": ops}, indent=1))
    (out / "archs.json").write_text(json.dumps({"format": FORMAT, "archs": [
        {"name": a, "source": "keras"} for a in archs]}, indent=1))
    from fuzzer.tf.env import tf  # on use: this command's own process only

    meta = {"command": f"python -m fuzzer.tf.mine --out {out}", "format": FORMAT,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tensorflow": tf().__version__, "seconds": round(time.time() - t0, 1),
            "counts": {"ok": len(archs), "failed": len(failed),
                       "ngrams": {n: len(t) for n, t in counts.items()},
                       "distinct_ops": len(counts[1])},
            "failed": failed,
            "trace": "tf.function(model).get_concrete_function(TensorSpec[1, ...]) graph ops "
                     "mapped by fuzzer.tf.mine.RAW; weights=None, nothing downloaded"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("seeds/tf"))
    meta = mine(p.parse_args(argv).out)
    print(json.dumps(meta["counts"]), "failed:", ", ".join(meta["failed"]) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

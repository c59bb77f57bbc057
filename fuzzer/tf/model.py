"""The TensorFlow materializer and reference: Case -> a TF model whose parameters are
tf.Variables and whose graph is a tf.function with a named TensorSpec input signature (what
tf2onnx converts), and TF eager's fp32 and fp64 answers for the oracle.

Weights and inputs are drawn exactly as the PyTorch frontend draws them (fuzzer.model: keyed by
Case seed, node id and parameter name), so a shrink edit leaves the other values unchanged.
Worker processes only: this module imports TensorFlow on use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, Case, CaseError
from fuzzer.compare import Reference
from fuzzer.model import _init, _pick, const_scalar, infer, make_inputs
from fuzzer.ops.spec import Meta
from fuzzer.rng import np_rng, torch_rng
from fuzzer.tf.env import tf
from fuzzer.values import draw
from fuzzer.verdict import first_line


def _wide(dtype: str, fp64: bool) -> str:
    return "float64" if fp64 and dtype in FLOAT_DTYPES else dtype


def param_arrays(case: Case, metas: dict[str, list[Meta]]) -> list[dict[str, np.ndarray]]:
    """Every node's parameters as numpy arrays (name -> array), in node order."""
    out = []
    for n in case.nodes:
        spec = ops.get(n.op)
        attrs = {**spec.defaults(), **n.attrs}
        arrays = {}
        for pname, (shape, dtype) in spec.param_shapes(attrs, [_pick(metas, a)
                                                              for a in n.args]).items():
            t = _init(spec, pname, shape, torch_rng(case.seed, n.id, pname))
            arrays[pname] = t.numpy().astype(dtype)
        out.append(arrays)
    return out


def const_array(case: Case, name: str) -> Any:
    c = next(c for c in case.consts if c.name == name)
    if c.scalar:
        return const_scalar(c)
    if c.values is not None:
        return draw(np_rng(case.seed, "const", c.name), c.shape, c.dtype, c.values).numpy()
    return np.asarray(c.value, dtype=c.dtype).reshape(c.shape)


class TfModel:
    """The Case in TensorFlow. `function` is the tf.function a converter takes (with
    `signature`); `run_all` runs the same operators eagerly, keeping every value."""

    def __init__(self, case: Case, metas: dict[str, list[Meta]], fp64: bool = False) -> None:
        t = tf()
        self.case = case
        self.specs = [ops.get(n.op) for n in case.nodes]
        self.attrs = [{**s.defaults(), **n.attrs} for s, n in zip(self.specs, case.nodes,
                                                                 strict=True)]
        self.variables: dict[str, Any] = {}
        self.params: list[dict[str, Any]] = []
        for n, arrays in zip(case.nodes, param_arrays(case, metas), strict=True):
            mine = {}
            for pname, arr in arrays.items():
                name = f"{n.id}_{pname}"
                arr = arr.astype(_wide(str(arr.dtype), fp64))
                self.variables[name] = mine[pname] = t.Variable(arr, name=name, trainable=False)
            self.params.append(mine)
        self.consts: dict[str, Any] = {}
        for c in case.consts:
            v = const_array(case, c.name)
            self.consts[c.name] = v if c.scalar else t.constant(v.astype(_wide(c.dtype, fp64)))
        self.signature = [t.TensorSpec(x.shape, _wide(x.dtype, fp64), name=x.name)
                          for x in case.inputs]
        self.function = t.function(self.forward, input_signature=self.signature,
                                   autograph=False)

    def run_all(self, *inputs: Any) -> dict[str, list[Any]]:
        env: dict[str, list[Any]] = {x.name: [v] for x, v in zip(self.case.inputs, inputs,
                                                                  strict=True)}
        env.update((k, [v]) for k, v in self.consts.items())
        for spec, n, attrs, params in zip(self.specs, self.case.nodes, self.attrs, self.params,
                                          strict=True):
            out = spec.call([_pick(env, a) for a in n.args], attrs, params)
            env[n.id] = list(out) if isinstance(out, (tuple, list)) else [out]
        return env

    def outputs(self, env: dict[str, list[Any]]) -> list[Any]:
        return [_pick(env, o) for o in self.case.outputs]

    def forward(self, *inputs: Any) -> tuple[Any, ...]:
        return tuple(self.outputs(self.run_all(*inputs)))


def _torch(v: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(v))


def materialize(case: Case, fp64: bool = False) -> tuple[TfModel, list[torch.Tensor]]:
    """The TF model and the Case's inputs (torch tensors, as every runtime is fed)."""
    model = TfModel(case, infer(case), fp64)
    inputs = make_inputs(case)
    if fp64:
        inputs = [x.double() if x.is_floating_point() else x for x in inputs]
    return model, inputs


def reference(case: Case) -> Reference:
    """TF eager's fp32 answers (and, when a comparison asks, fp64's), as torch tensors."""
    from fuzzer.oracle import Invalid  # on use: the oracle loads frontends, not the other way

    t = tf()
    try:
        model, inputs = materialize(case)
        env = model.run_all(*(t.constant(x.numpy()) for x in inputs))
    except CaseError as e:
        raise Invalid(str(e)) from e
    except Exception as e:  # TF eager rejects the Case: invalid, never a finding
        raise Invalid(f"{type(e).__name__}: {first_line(str(e))}") from e
    tenv = {k: [_torch(v) for v in vs] for k, vs in env.items()}

    def baseline() -> list[torch.Tensor] | None:
        try:
            m64, in64 = materialize(case, fp64=True)
            return [_torch(v) for v in m64.forward(*(t.constant(x.numpy()) for x in in64))]
        except Exception:
            return None  # an op without a float64 kernel: judged against fp32 alone

    return Reference(model, inputs, [_pick(tenv, o) for o in case.outputs], tenv, baseline)

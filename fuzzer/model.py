"""Materializer: Case -> torch module + inputs, deterministically.

Weights are drawn from a generator keyed by (Case seed, node id, parameter name) and inputs by
(Case seed, input name): deleting or editing one node leaves every other value unchanged,
which is what lets the shrinker compare a candidate with its parent.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from fuzzer import ops
from fuzzer.case import FLOAT_DTYPES, Case, CaseError, Const, split_ref
from fuzzer.ops.spec import Meta, OpSpec, fan_in_scale
from fuzzer.rng import np_rng, torch_rng
from fuzzer.values import TORCH_DTYPES, draw


class ShapeError(CaseError):
    """The Case's nodes do not fit together (a shape rule rejected them)."""


def infer(case: Case) -> dict[str, list[Meta]]:
    """Metas of every value (inputs and node outputs), by the catalogue's shape rules."""
    env: dict[str, list[Meta]] = {x.name: [Meta(tuple(x.shape), x.dtype)] for x in case.inputs}
    # A scalar constant is a 0-d tensor to the shape rules: the same promotion as a Python
    # number (a dimensionless operand never widens a tensor's dtype within its kind).
    env.update((c.name, [Meta(tuple(c.shape), c.dtype)]) for c in case.consts)
    for n in case.nodes:
        spec = ops.get(n.op)
        metas = [_pick(env, a) for a in n.args]
        attrs = {**spec.defaults(), **n.attrs}
        try:
            env[n.id] = spec.infer(metas, attrs)
        except Exception as e:  # the shape rule is torch itself: any error means "does not fit"
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ShapeError(f"node {n.id} ({n.op}): {msg}") from None
    return env


def _pick(env: dict[str, list[Any]], ref: str) -> Any:
    base, idx = split_ref(ref)
    vals = env[base]
    if idx is None:
        return vals[0]
    if idx >= len(vals):
        raise CaseError(f"reference {ref!r}: {base} has {len(vals)} output(s)")
    return vals[idx]


def _init(spec: OpSpec, name: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    # Scales that keep chained values in a useful range (neither vanishing nor exploding).
    if name == "running_var":
        return torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    if name == "running_mean" or name == "bias":
        return torch.randn(shape, generator=g, dtype=torch.float64) * 0.1
    if spec.family == "norm" and name == "weight":
        return 1.0 + torch.randn(shape, generator=g, dtype=torch.float64) * 0.1
    return torch.randn(shape, generator=g, dtype=torch.float64) * fan_in_scale(shape)


class CaseModule(torch.nn.Module):
    """Executes the Case's nodes in order. Parameters live in buffers named `<node>_<param>`
    so both exporters embed them as initializers."""

    def __init__(self, case: Case, metas: dict[str, list[Meta]]) -> None:
        super().__init__()
        self.case = case
        self.specs = [ops.get(n.op) for n in case.nodes]
        self.attrs = [{**s.defaults(), **n.attrs} for s, n in zip(self.specs, case.nodes,
                                                                 strict=True)]
        self.scalars: dict[str, Any] = {}
        self.const_names: dict[str, str] = {}
        for c in case.consts:
            if c.scalar:
                self.scalars[c.name] = const_scalar(c)
            else:
                self.register_buffer(f"const_{c.name}", const_tensor(case.seed, c))
                self.const_names[c.name] = f"const_{c.name}"
        self.param_names: list[dict[str, str]] = []
        for spec, n, attrs in zip(self.specs, case.nodes, self.attrs, strict=True):
            in_metas = [_pick(metas, a) for a in n.args]
            names = {}
            for pname, (shape, dtype) in spec.param_shapes(attrs, in_metas).items():
                g = torch_rng(case.seed, n.id, pname)
                t = _init(spec, pname, shape, g).to(TORCH_DTYPES[dtype])
                self.register_buffer(f"{n.id}_{pname}", t)
                names[pname] = f"{n.id}_{pname}"
            self.param_names.append(names)

    def run_all(self, *inputs: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        # bfloat16 travels as float32 across the model boundary (numpy and ONNX Runtime's
        # Python API have no bfloat16); inside, the Case's dtype is restored.
        env: dict[str, list[torch.Tensor]] = {
            x.name: [t.to(torch.bfloat16) if x.dtype == "bfloat16" else t]
            for x, t in zip(self.case.inputs, inputs, strict=True)}
        env.update((k, [v]) for k, v in self.scalars.items())
        env.update((k, [getattr(self, v)]) for k, v in self.const_names.items())
        for spec, n, attrs, pn in zip(self.specs, self.case.nodes, self.attrs,
                                      self.param_names, strict=True):
            args = [_pick(env, a) for a in n.args]
            params = {k: getattr(self, v) for k, v in pn.items()}
            out = spec.call(args, attrs, params)
            env[n.id] = list(out) if isinstance(out, (tuple, list)) else [out]
        return env

    def outputs(self, env: dict[str, list[torch.Tensor]]) -> list[torch.Tensor]:
        outs = (_pick(env, o) for o in self.case.outputs)
        return [o.float() if o.dtype == torch.bfloat16 else o for o in outs]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.outputs(self.run_all(*inputs)))


def const_scalar(c: Const) -> Any:
    """A scalar constant as the Python number a model's source would hold."""
    kind = bool if c.dtype == "bool" else float if c.dtype in FLOAT_DTYPES else int
    return kind(c.value)


def const_tensor(seed: int, c: Const) -> torch.Tensor:
    if c.values is not None:
        return draw(np_rng(seed, "const", c.name), c.shape, c.dtype, c.values)
    return torch.tensor(c.value, dtype=TORCH_DTYPES[c.dtype]).reshape(c.shape)


def make_inputs(case: Case) -> list[torch.Tensor]:
    ts = [draw(np_rng(case.seed, "input", x.name), x.shape, x.dtype, x.values)
          for x in case.inputs]
    return [t.float() if t.dtype == torch.bfloat16 else t for t in ts]


def materialize(case: Case) -> tuple[CaseModule, list[torch.Tensor]]:
    metas = infer(case)
    module = CaseModule(case, metas).eval()
    return module, make_inputs(case)


def to_fp64(module: CaseModule, inputs: list[torch.Tensor]) -> tuple[CaseModule,
                                                                   list[torch.Tensor]]:
    """The fp64 baseline: the same model with every floating tensor in double precision."""
    m64 = copy.deepcopy(module)
    for name, buf in list(m64.named_buffers()):
        if buf.is_floating_point():
            setattr(m64, name, buf.to(torch.float64))
    return m64, [t.to(torch.float64) if t.is_floating_point() else t for t in inputs]

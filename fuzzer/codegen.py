"""Case -> plain, readable PyTorch source: the model as a `nn.Module` built from the catalogue's
templates, its parameters and inputs as literals. Used by repro scripts, which must run with
torch, onnx, onnxruntime and numpy alone."""

from __future__ import annotations

import numpy as np
import torch

from fuzzer import ops
from fuzzer.case import Case, split_ref
from fuzzer.model import materialize
from fuzzer.ops.spec import literal_src
from fuzzer.values import DTYPE_NAMES

MAX_LITERAL = 20_000  # elements; minimized Cases are far below this


def tensor_literal(t: torch.Tensor) -> str:
    """Exact source for a tensor: floats print with enough digits to round-trip."""
    if t.numel() > MAX_LITERAL:
        raise ValueError(f"tensor of {t.numel()} elements is too large to print")
    dtype = DTYPE_NAMES[t.dtype]
    if t.numel() == 0:  # numpy prints [] for any empty array: its shape would be lost
        return f"torch.empty({list(t.shape)}, dtype=torch.{dtype})"
    if t.dtype == torch.bfloat16:
        body = np.array2string(t.float().numpy(), separator=", ", threshold=MAX_LITERAL + 1,
                               floatmode="unique", max_line_width=96)
    elif t.dtype.is_floating_point:
        body = np.array2string(t.numpy(), separator=", ", threshold=MAX_LITERAL + 1,
                               floatmode="unique", max_line_width=96)
    elif t.dtype == torch.bool:
        body = np.array2string(t.numpy(), separator=", ", threshold=MAX_LITERAL + 1,
                               max_line_width=96)
    else:
        body = np.array2string(t.numpy(), separator=", ", threshold=MAX_LITERAL + 1,
                               max_line_width=96)
    body = body.replace("nan", "float('nan')").replace("inf", "float('inf')")
    if t.dim() == 0:
        body = body.strip()
    return f"torch.tensor({body}, dtype=torch.{dtype})"


def _ref(name: str) -> str:
    base, idx = split_ref(name)
    return base if idx is None else f"{base}[{idx}]"


def model_source(case: Case, class_name: str = "Model") -> str:
    module, _ = materialize(case)
    lines = [f"class {class_name}(torch.nn.Module):",
             "    def __init__(self) -> None:", "        super().__init__()"]
    for name, buf in module.named_buffers():
        lines.append(f"        self.register_buffer({name!r}, {_indent(tensor_literal(buf))})")
    if len(lines) == 3:
        lines.append("        pass")
    args = ", ".join(x.name for x in case.inputs)
    lines += ["", f"    def forward(self, {args}):"]
    for x in case.inputs:
        if x.dtype == "bfloat16":  # bf16 crosses the model boundary as float32 (see model.py)
            lines.append(f"        {x.name} = {x.name}.to(torch.bfloat16)")
    for c in case.consts:  # constants as the model's source holds them: literals, buffers
        lines.append(f"        {c.name} = " + (literal_src(module.scalars[c.name]) if c.scalar
                                                 else f"self.{module.const_names[c.name]}"))
    for n, names in zip(case.nodes, module.param_names, strict=True):
        spec = ops.get(n.op)
        params = {k: f"self.{v}" for k, v in names.items()}
        lines.append(f"        {n.id} = {spec.render([_ref(a) for a in n.args], n.attrs, params)}")
    outs = [_ref(o) for o in case.outputs]
    fixed = [f"{o}.float() if {o}.dtype == torch.bfloat16 else {o}" for o in outs]
    if any(x.dtype == "bfloat16" for x in case.inputs) or any(
            a.get("dtype") == "bfloat16" for a in (n.attrs for n in case.nodes)):
        outs = [f"({f})" for f in fixed]
    lines.append(f"        return {', '.join(outs)}{',' if len(outs) == 1 else ''}")
    return "\n".join(lines) + "\n"


def inputs_source(case: Case) -> str:
    _, inputs = materialize(case)
    body = ",\n        ".join(_indent(tensor_literal(t), 8) for t in inputs)
    return f"def make_inputs():\n    return (\n        {body},\n    )\n"


def drawn_inputs(case: Case) -> list[str]:
    """Each input as a short expression: a float input drawn from a normal distribution as
    `torch.randn` (under a seed the caller sets), any other as its exact literal. For repros
    whose defect does not depend on the values (a shape, a refused model, a crash)."""
    _, inputs = materialize(case)
    out = []
    for x, t in zip(case.inputs, inputs, strict=True):
        if t.is_floating_point() and x.values.get("dist") == "normal":
            scale = float(x.values.get("scale", 1.0))
            out.append(f"torch.randn({list(t.shape)}, dtype=torch.{DTYPE_NAMES[t.dtype]})"
                       + ("" if scale == 1.0 else f" * {scale!r}"))
        else:
            out.append(" ".join(tensor_literal(t).split()))
    return out


def _indent(text: str, n: int = 12) -> str:
    return text.replace("\n", "\n" + " " * n)

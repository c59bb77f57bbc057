"""Blame to the function: which torchlib function, or which step of torch.onnx, made the ONNX
nodes a dynamo finding is about.

The exporter keeps its own records: every ONNX node carries the FX node it came from
(`pkg.torch.onnx.fx_node` metadata), and torch.onnx's dispatcher (`_dispatching.dispatch`)
picks one torchlib function per FX node. We export the Case once with the dispatcher observed
(the real exporter, the real registry), take the node the error names (or the Case's last
operator's nodes when it names none), and read the function, its source location
(`inspect`) and the input types it declares. An input whose dtype the chosen function does
not declare means the dispatcher emitted it anyway ("The first implementation is used"): the
defect is the dispatcher's, with the torchlib function as the instance. For wrong outputs the
exporter's stages are compared: the FX graph (`ExportedProgram.module()`) against eager, and
the ONNX graph's declared output against the FX graph's.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from fuzzer.case import Case

DTYPE_NOT_ENFORCED = "dtype not enforced"
NODE_NAME = re.compile(r"node name: ([^)\s]+)\)")
FX_NAME = re.compile(r"^%(\S+) :")
# A project's tracker, by the file a function lives in.
TRACKERS = (("onnxscript/", "onnxscript"), ("torch/onnx/", "pytorch"), ("torch/", "pytorch"),
            ("onnxruntime/", "onnxruntime"), ("onnx/", "onnx"))


@dataclass(frozen=True)
class Blame:
    component: str  # onnxscript torchlib | torch.onnx | ...
    function: str  # aten_squeeze_dim, _dispatching.dispatch, ...
    source: str  # package-relative file:line
    tracker: str  # onnxscript | pytorch | onnxruntime | onnx
    kind: str  # the kind of defect, "" when not classified here
    fx_target: str = ""  # aten.squeeze.dim
    onnx_node: str = ""
    torchlib: str = ""  # the torchlib function that emitted the nodes (also for dispatcher)
    evidence: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def where(fn: Any) -> tuple[str, str]:
    """(package-relative file:line, tracker) of a function."""
    f = inspect.unwrap(getattr(fn, "function", fn))
    path = inspect.getsourcefile(f) or "?"
    line = inspect.getsourcelines(f)[1]
    rel = path.split("site-packages/")[-1]
    tracker = next((t for prefix, t in TRACKERS if rel.startswith(prefix)), "pytorch")
    return f"{rel}:{line}", tracker


@dataclass
class Dispatched:
    fx_name: str
    target: str
    function: Any
    undeclared: list[str]  # "self: int64 (declares FLOAT16 | FLOAT | ...)"


def _undeclared(node: Any, fn: Any) -> list[str]:
    """The tensor inputs whose dtype the torchlib function's signature does not declare."""
    # private torch.onnx module: read only when a finding is blamed
    from torch.onnx._internal.exporter import _core

    sig = getattr(fn, "op_signature", None)
    schema = getattr(node.target, "_schema", None)
    if sig is None or schema is None:
        return []
    bound: dict[str, Any] = dict(node.kwargs)
    for a, v in zip(schema.arguments, node.args, strict=False):
        bound[a.name] = v
    out = []
    for p in sig.params:
        tc = getattr(p, "type_constraint", None)
        v = bound.get(p.name)
        vals = [getattr(x, "meta", {}).get("val") for x in (
            v if isinstance(v, list | tuple) else [v]) if x is not None]
        if tc is None:
            continue
        allowed = {t.dtype for t in tc.allowed_types}  # a sequence type names its elements'
        for val in vals:
            if not isinstance(val, torch.Tensor):
                continue
            dt = _core.torch_dtype_to_onnx_dtype(val.dtype)
            if dt not in allowed:
                names = " | ".join(sorted(t.name for t in allowed))
                out.append(f"{p.name}: {dt.name} (declares {names})")
                break
    return out


@contextmanager
def observed_dispatch() -> Iterator[list[Dispatched]]:
    """Record what torch.onnx's dispatcher picks for every FX node during an export."""
    # private torch.onnx module: read only when a finding is blamed
    from torch.onnx._internal.exporter import _core, _dispatching

    records: list[Dispatched] = []
    original = _dispatching.dispatch

    def spy(node: Any, registry: Any) -> Any:
        fn, msg = original(node, registry)
        if fn is not None:
            records.append(Dispatched(node.name, str(node.target), fn, _undeclared(node, fn)))
        return fn, msg

    _core._dispatching.dispatch = spy
    try:
        yield records
    finally:
        _core._dispatching.dispatch = original


def _export(case: Case, optimize: bool) -> tuple[Any, list[Dispatched], Any, list[Any]]:
    # private torch.onnx module: read only when a finding is blamed
    from fuzzer.model import materialize
    from fuzzer.targets.exporters import quiet

    module, inputs = materialize(case)
    with observed_dispatch() as records, quiet():
        prog = torch.onnx.export(module, tuple(inputs), dynamo=True, optimize=False,
                                 verbose=False)
    if optimize:
        with quiet():
            prog.optimize()
    return prog, records, module, inputs


def _fx_name(node: Any) -> str:
    meta = {m.key: m.value for m in node.metadata_props}
    m = FX_NAME.match(meta.get("pkg.torch.onnx.fx_node", ""))
    return m.group(1) if m else ""


def _pick(case: Case, proto: Any, records: list[Dispatched], error: str
          ) -> tuple[Dispatched | None, str]:
    """The dispatch record behind the node the error names; else the Case's last operator's."""
    named = NODE_NAME.search(error or "")
    if named:
        for n in proto.graph.node:
            if n.name == named.group(1):
                fx = _fx_name(n)
                hit = next((r for r in records if r.fx_name == fx), None)
                if hit is not None:
                    return hit, n.name
    last = case.ops[-1].split("::")[-1] if case.ops else ""
    mine = [r for r in records if r.target.split(".")[1:2] == [last]]
    return (mine or records or [None])[-1], ""


def _output_stage(prog: Any, module: Any, inputs: list[Any]) -> str:
    """Where an output's dtype/shape first differs from eager: '' when FX and ONNX agree."""
    with torch.no_grad():
        eager = module(*inputs)
        fx = prog.exported_program.module()(*inputs)
    eager = eager if isinstance(eager, tuple | list) else (eager,)
    fx = fx if isinstance(fx, tuple | list) else (fx,)
    # private torch.onnx module: read only when a finding is blamed
    from torch.onnx._internal.exporter import _core

    for i, (e, f, o) in enumerate(zip(eager, fx, prog.model.graph.outputs, strict=False)):
        if (e.dtype, tuple(e.shape)) != (f.dtype, tuple(f.shape)):
            return f"fx: output {i} is {f.dtype} {list(f.shape)} in the FX graph, eager " \
                   f"{e.dtype} {list(e.shape)}"
        want = _core.torch_dtype_to_onnx_dtype(f.dtype)
        if o.dtype is not None and o.dtype != want:
            return f"onnx: output {i} is {f.dtype} in the FX graph, {o.dtype.name} in the " \
                   f"ONNX graph"
    return ""


def blame_dynamo(case: Case, error: str = "", optimize: bool = True) -> Blame | None:
    """Name the function behind a dynamo finding (None when the export itself fails)."""
    try:
        prog, records, module, inputs = _export(case, optimize)
    except Exception:  # an export failure names its own function in the traceback
        return None
    stage = _output_stage(prog, module, inputs)
    if stage.startswith("onnx:"):
        # private torch.onnx module: read only when a finding is blamed
        from torch.onnx._internal.exporter import _core, _fx_passes

        ep = prog.exported_program
        returned = [str(a) for a in ep.graph.output_node().args[0]]
        named = [getattr(o.arg, "name", "") for o in ep.graph_signature.output_specs]
        if returned != named:  # a pass rewrote the graph, not the signature the ONNX uses
            src, tracker = where(_fx_passes.insert_type_promotion_nodes)
            return Blame("torch.onnx", "_fx_passes.insert_type_promotion_nodes", src, tracker,
                         "graph signature left stale", evidence=f"{stage[6:]}: the FX graph "
                         f"returns {returned}, its graph signature (which the ONNX graph's "
                         f"outputs follow) still names {named}")
        src, tracker = where(_core._exported_program_to_onnx_program)
        return Blame("torch.onnx", "_core._exported_program_to_onnx_program", src, tracker,
                     "graph output differs from the FX graph", evidence=stage[6:])
    if stage.startswith("fx:"):
        src, tracker = where(torch.export.export)
        return Blame("torch.export", "torch.export.export", src, tracker,
                     "FX graph differs from eager", evidence=stage[4:])
    rec, node = _pick(case, prog.model_proto, records, error)
    if rec is None:
        return None
    fn = getattr(rec.function, "function", rec.function)
    src, tracker = where(rec.function)
    name = fn.__name__
    if rec.undeclared:
        # private torch.onnx module: read only when a finding is blamed
        from torch.onnx._internal.exporter import _dispatching

        dsrc, dtracker = where(_dispatching.dispatch)
        return Blame("torch.onnx", "_dispatching.dispatch", dsrc, dtracker, DTYPE_NOT_ENFORCED,
                     rec.target, node, f"{src}: {name}",
                     f"{name} declares other types: " + "; ".join(rec.undeclared))
    component = "onnxscript torchlib" if tracker == "onnxscript" else "torch.onnx"
    return Blame(component, name, src, tracker, "", rec.target, node, f"{src}: {name}")


def blame_torchscript(case: Case, opset: int) -> Blame | None:
    """The TorchScript exporter's symbolic function for the Case's last operator."""
    # private torch.onnx module: read only when a finding is blamed
    import torch.onnx.utils  # noqa: F401  (registers the symbolic functions)
    from torch.onnx._internal.torchscript_exporter import registration

    op = case.ops[-1] if case.ops else ""
    group = registration.registry.get_function_group(op)
    fn = group.get(opset) if group is not None else None
    if fn is None:
        return None
    src, tracker = where(fn)
    module = fn.__module__.rsplit(".", 1)[-1]
    name = fn.__qualname__.replace(".<locals>", "")
    return Blame("torch.onnx (TorchScript)", f"{module}.{name}", src, tracker, "",
                 op, torchlib="")

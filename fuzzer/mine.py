"""Mine operator sequences from real architectures into `seeds/`.

Each architecture (see `fuzzer.mine_sources.SOURCES`) is built from its config alone, traced with
`torch.export.export(strict=False)` at the functional ATen level (falling back to
`torch.jit.trace`) inside a worker process with a timeout, and turned into a networkx DiGraph
of operator calls. From the graphs we write:

- `ngrams.json`: operator chains of n = 1..4 nodes along data-flow paths, with counts and the
  architectures they occur in;
- `ops.json`: per operator, the observed values of every non-tensor argument (by ATen schema
  name) and the ranks/shapes/dtypes of its tensor arguments and outputs;
- `archs.json`: every architecture attempted, with how it was traced or why it failed;
- `meta.json`: versions, date and command (the only file that changes between identical runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import operator
import os
import platform
import re
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import networkx as nx

os.environ["HF_HUB_OFFLINE"] = "1"  # never download, even by accident

MAX_N = 4
TIMEOUT_S = 120.0
RECYCLE_AFTER = 40  # fresh worker every so often: torch/transformers caches only grow
MAX_SHAPES = 12
MAX_VALUES = 48
FORMAT = 1

# Data-free bookkeeping ops: asserts and shape queries carry no tensor data between operators.
_PLUMBING = {"aten::_assert_tensor_metadata", "aten::_assert_async", "aten::_assert_scalar",
             "aten::sym_constrain_range", "aten::sym_constrain_range_for_size", "aten::size",
             "aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "aten::sym_size",
             "aten::sym_numel", "aten::sym_stride", "aten::dim", "aten::numel",
             "aten::_set_grad_enabled"}
_INLINED_HOPS = {"wrap_with_set_grad_enabled", "wrap_with_autocast"}


# ---------------------------------------------------------------------------- graph extraction

def _canon(name: str) -> tuple[str, bool]:
    """Canonical `aten::<packet>` name (in-place `add_` folds into `add`) and whether it is ATen."""
    if name.startswith("aten::"):
        base = name[6:]
        if base.endswith("_") and not base.endswith("__"):
            base = base[:-1]
        return "aten::" + base, True
    return name, False


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)  # dtype, device, layout, memory_format, enums


def _tensor_rec(t: Any) -> list[Any] | None:
    import torch

    if isinstance(t, torch.Tensor):
        return [str(t.dtype).removeprefix("torch."), [int(s) for s in t.shape]]
    return None


@dataclass
class _Graph:
    """Operator nodes (plain dicts) and data-flow edges; picklable across the worker pipe."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: set[tuple[int, int]] = field(default_factory=set)

    def add(self, op: str, is_aten: bool, args: dict[str, Any], tensors: dict[str, Any],
            outs: list[Any], preds: Iterable[int]) -> int:
        i = len(self.nodes)
        self.nodes.append({"op": op, "aten": is_aten, "args": args, "tensors": tensors,
                           "outs": outs})
        self.edges.update((p, i) for p in preds)
        return i


def _export_graph(gm: Any) -> _Graph:
    g = _Graph()
    _walk_fx(gm, g, {})
    return g


def _walk_fx(gm: Any, g: _Graph, env: dict[Any, Any]) -> list[Any]:
    """Add gm's operator calls to g; env maps fx nodes to producer ids (or per-item lists)."""
    import torch
    from torch.fx import Node

    def srcs(x: Any) -> set[int]:
        out: set[int] = set()
        for n in _fx_nodes(x):
            v = env.get(n, ())
            out |= set(_flat(v))
        return out

    result: list[Any] = []
    for node in gm.graph.nodes:
        if node.op == "output":
            result = [sorted(srcs(a)) for a in node.args[0]] if isinstance(
                node.args[0], (list, tuple)) else [sorted(srcs(node.args[0]))]
            continue
        if node.op != "call_function":
            continue
        tgt = node.target
        if tgt is operator.getitem:
            base, idx = node.args
            v = env.get(base, ())
            env[node] = v[idx] if isinstance(v, list) and v and isinstance(v[0], list) else v
            continue
        if isinstance(tgt, torch._ops.HigherOrderOperator) and tgt.__name__ in _INLINED_HOPS:
            sub_i = next(i for i, a in enumerate(node.args)
                         if isinstance(a, Node) and a.op == "get_attr")
            sub = getattr(gm, node.args[sub_i].target)
            phs = [n for n in sub.graph.nodes if n.op == "placeholder"]
            sub_env = {ph: sorted(srcs(a)) for ph, a in zip(phs, node.args[sub_i + 1:],
                                                             strict=False)}
            env[node] = _walk_fx(sub, g, sub_env)
            continue
        if isinstance(tgt, torch._ops.OpOverload):
            op, is_aten = _canon(tgt._schema.name)
            schema_args = tgt._schema.arguments
        else:
            op = "higher_order::" + tgt.__name__ if isinstance(
                tgt, torch._ops.HigherOrderOperator) else _pyname(tgt)
            is_aten, schema_args = False, []
        if op in _PLUMBING:
            continue
        args, tensors = _fx_args(node, schema_args)
        val = node.meta.get("val")
        vals = val if isinstance(val, (list, tuple)) else [val]
        outs = [r for r in (_tensor_rec(v) for v in vals) if r is not None]
        env[node] = [g.add(op, is_aten, args, tensors, outs, srcs((node.args, node.kwargs)))]
    return result


def _pyname(tgt: Any) -> str:
    mod = getattr(tgt, "__module__", None) or "python"
    return f"{mod.replace('_operator', 'operator')}.{getattr(tgt, '__name__', str(tgt))}"


def _fx_nodes(x: Any) -> Iterable[Any]:
    from torch.fx import Node

    if isinstance(x, Node):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _fx_nodes(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _fx_nodes(y)


def _flat(v: Any) -> Iterable[int]:
    if isinstance(v, int):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _flat(x)


def _fx_args(node: Any, schema_args: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Non-tensor argument values and tensor records, keyed by schema argument name."""
    from torch.fx import Node

    given: dict[str, Any] = dict(node.kwargs)
    names = [a.name for a in schema_args]
    for i, a in enumerate(node.args):
        given[names[i] if i < len(names) else f"arg{i}"] = a
    for a in schema_args:  # omitted arguments take their schema default
        if a.name not in given and a.has_default_value():
            given[a.name] = a.default_value
    args: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    for name, v in given.items():
        if isinstance(v, Node) or (isinstance(v, (list, tuple)) and any(
                isinstance(x, Node) for x in v)):
            items = v if isinstance(v, (list, tuple)) else [v]
            recs = [_tensor_rec(x.meta.get("val")) if isinstance(x, Node) else None
                    for x in items]
            if any(r is not None for r in recs):
                tensors[name] = recs if isinstance(v, (list, tuple)) else recs[0]
                continue
            args[name] = _jsonable([_sym(x) for x in items] if isinstance(v, (list, tuple))
                                   else _sym(v))
        else:
            args[name] = _jsonable(v)
    return args, tensors


def _sym(x: Any) -> Any:
    from torch.fx import Node

    return x.meta.get("val", "sym") if isinstance(x, Node) else x


def _jit_graph(graph: Any) -> _Graph:
    """The same extraction over a TorchScript (jit.trace) graph, with aten::<op> node kinds."""
    import torch

    g = _Graph()
    srcs: dict[Any, set[int]] = {}
    consts: dict[Any, Any] = {}
    items: dict[Any, list[Any]] = {}
    for node in graph.nodes():
        kind = node.kind()
        ins, outs = list(node.inputs()), list(node.outputs())
        if kind == "prim::Constant":
            consts[outs[0]] = outs[0].toIValue() if outs[0].type().kind() != "FunctionType" \
                else None
            continue
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            items[outs[0]] = ins
            srcs[outs[0]] = set().union(*(srcs.get(v, set()) for v in ins))
            if all(v in consts for v in ins):
                consts[outs[0]] = [consts[v] for v in ins]
            continue
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            parts = items.get(ins[0])
            for k, o in enumerate(outs):
                srcs[o] = srcs.get(parts[k], set()) if parts else srcs.get(ins[0], set())
            continue
        if kind in ("prim::TupleIndex", "prim::GetAttr", "prim::NumToTensor") or kind in \
                _PLUMBING:
            continue
        op, is_aten = _canon(kind)
        try:
            names = [a.name for a in torch._C.parse_schema(node.schema()).arguments]
        except RuntimeError:
            names = []
        args: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        preds: set[int] = set()
        for i, v in enumerate(ins):
            name = names[i] if i < len(names) else f"arg{i}"
            preds |= srcs.get(v, set())
            if v in consts:
                args[name] = _jsonable(consts[v])
            elif isinstance(v.type(), torch._C.TensorType):
                tensors[name] = _jit_tensor(v)
            elif v in items:
                tensors[name] = [_jit_tensor(x) for x in items[v]]
        recs = [_jit_tensor(o) for o in outs if isinstance(o.type(), torch._C.TensorType)]
        i_new = g.add(op, is_aten, args, tensors, [r for r in recs if r], preds)
        for o in outs:
            srcs[o] = {i_new}
    return g


def _jit_tensor(v: Any) -> list[Any] | None:
    t = v.type()
    try:
        dtype, sizes = t.dtype(), t.sizes()
    except (RuntimeError, AttributeError):
        return None
    if dtype is None or sizes is None:
        return None
    return [str(dtype).removeprefix("torch."), list(sizes)]


# ---------------------------------------------------------------------------- worker

def _error_line(e: BaseException) -> str:
    line = next((s for s in str(e).splitlines() if s.strip()), "")
    line = re.sub(r"0x[0-9a-fA-F]+", "0x?", line)  # addresses would break determinism
    return f"{type(e).__name__}: {line}"[:300]


def _trace_one(source: str, name: str) -> dict[str, Any]:
    """Build, check in eager, export (or jit.trace) one architecture; runs in the worker."""
    import torch

    from fuzzer.mine_sources import SOURCES

    rec: dict[str, Any] = {"name": name, "source": source, "status": "failed", "method": None,
                           "errors": {}}
    tried = 0
    try:
        for cand in SOURCES[source].build(name):
            if isinstance(cand, Exception):
                rec["errors"].setdefault("build", _error_line(cand))
                continue
            rec.update(modality=cand.modality, structure=cand.structure, config=cand.config,
                       inputs={k: _tensor_rec(v) for k, v in cand.inputs.items()})
            try:
                with torch.no_grad():
                    cand.model(**cand.inputs)
            except Exception as e:
                rec["errors"].setdefault("eager", _error_line(e))
                continue
            rec["errors"].pop("eager", None)
            tried += 1
            try:
                ep = torch.export.export(cand.model, (), kwargs=cand.inputs, strict=False)
                graph, rec["method"], rec["status"] = _export_graph(ep.graph_module), \
                    "export", "ok"
            except Exception as e:
                rec["errors"]["export"] = _error_line(e)
                try:
                    tr = torch.jit.trace(cand.model, example_kwarg_inputs=cand.inputs,
                                         strict=False, check_trace=False)
                    graph, rec["method"], rec["status"] = _jit_graph(tr.inlined_graph), \
                        "jit.trace", "fallback"
                except Exception as e2:
                    rec["errors"]["jit.trace"] = _error_line(e2)
                    if tried < 2:
                        continue
                    break
            rec["graph"] = graph
            break
    except Exception as e:
        rec["errors"].setdefault("build", _error_line(e))
        rec["errors"]["where"] = traceback.extract_tb(e.__traceback__)[-1].name
    return rec


def _worker(conn: Connection) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # one core each: the machine is shared
    while True:
        job = conn.recv()
        if job is None:
            return
        # Weight init draws from torch's global RNG; scope a fixed seed so runs are identical.
        with torch.random.fork_rng():
            torch.manual_seed(0)
            conn.send(_trace_one(*job))


class _Pool:
    """One worker process at a time, replaced when it times out, dies or has aged."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None
        self.jobs = 0

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.jobs = 0

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.send(None)
            self.proc.join(5)
        except (OSError, BrokenPipeError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def run(self, source: str, name: str) -> dict[str, Any]:
        if self.proc is None or self.jobs >= RECYCLE_AFTER:
            self.stop()
            self._start()
        self.jobs += 1
        self.conn.send((source, name))
        fail = {"name": name, "source": source, "status": "failed", "method": None}
        try:
            if self.conn.poll(self.timeout):
                return self.conn.recv()
            err = f"Timeout: no result after {self.timeout:.0f} s"
        except EOFError:
            self.proc.join(5)
            err = f"WorkerDied: exit code {self.proc.exitcode}"
        self.proc.kill()
        self.proc.join()
        self.proc = None
        return fail | {"errors": {"worker": err}}

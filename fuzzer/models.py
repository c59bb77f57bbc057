"""A whole mined architecture through the oracle: what `convfuzz models` runs in a worker.

An architecture (a row of `seeds/archs.json` that traced) is built exactly as mining built it
(`fuzzer.mine_sources`: the same source, the same tiny config overrides, random weights drawn
under seed 0, the same dummy inputs, never a download), run in torch eager twice at fp32 (a
model whose two runs differ is nondeterministic: nothing to hold a converter to) and once at
fp64, exported with a target, run, and judged by `fuzzer.oracle.judge` — the same rules as a
Case (dtype-aware tolerance against the fp64 baseline, NaN/Inf positions, exact integer
outputs except where fp32 and fp64 torch disagree, attribution by the reference evaluator).

The oracle reads a Case for the inputs' names and the outputs; an architecture's Case view
(`arch_case`) has both and no nodes: the module is the architecture itself, not materialized
from nodes, so per-operator rules that need the producing node (index ties) do not apply to its
outputs (hidden states and logits; an index output is compared exactly).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import torch

from fuzzer.case import Case, Input
from fuzzer.compare import Reference, close
from fuzzer.verdict import Outcome, Stage, Symptom, Verdict, first_line

os.environ["HF_HUB_OFFLINE"] = "1"  # never download, even by accident
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# Verdict classes of the summary, in its column order.
CLASSES = ("correct", "wrong_values", "invalid_model", "crash", "unsupported", "build_failed",
           "harness_error")
FAILING = ("wrong_values", "invalid_model", "crash")
WRONG_OUTPUT = (Symptom.WRONG_VALUES, Symptom.WRONG_SHAPE, Symptom.WRONG_DTYPE,
                Symptom.NAN_INF_MISMATCH)


def verdict_class(v: Verdict) -> str:
    """The summary column of an architecture's verdict: `wrong_values` is every comparison
    failure (values, shapes, dtypes, NaN/Inf), `crash` every other failure of the target
    (crash, hang, process death, out of memory); an architecture torch cannot build or run is
    `build_failed`, never a converter's failure."""
    if v.outcome == Outcome.PASS:
        return "correct"
    if v.outcome == Outcome.INVALID:
        return "build_failed"
    if v.outcome == Outcome.UNSUPPORTED:
        return "unsupported"
    if v.outcome == Outcome.HARNESS:
        return "harness_error"
    # By symptom, not stage: blame moves a comparison failure a rewrite caused to the
    # graph_optimization stage, and it is still a model computing the wrong thing.
    if v.stage == Stage.COMPARISON or v.symptom in WRONG_OUTPUT:
        return "wrong_values"
    if v.symptom == Symptom.INVALID_MODEL:
        return "invalid_model"
    return "crash"


@dataclass(frozen=True)
class Arch:
    """One mined architecture, as archs.json recorded it."""

    name: str  # "transformers:bert"
    source: str
    model_type: str
    modality: str
    structure: str
    config: dict[str, Any]
    inputs: dict[str, list[Any]]  # input name -> [dtype, shape]
    method: str  # how mining traced it: export or jit.trace

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Arch:
        source, _, model_type = rec["name"].partition(":")
        return cls(rec["name"], rec.get("source", source), model_type,
                   rec.get("modality") or "other", rec.get("structure") or "",
                   rec.get("config") or {}, rec.get("inputs") or {}, rec.get("method") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "modality": self.modality,
                "structure": self.structure, "config": self.config, "inputs": self.inputs,
                "method": self.method}


@dataclass
class Built:
    """The architecture ready to judge: its Case view and torch's answers (`ref.module`, the
    module with positional inputs and a flat tuple out, is never exported itself: each
    target gets a copy)."""

    case: Case
    ref: Reference


class BuildFailed(Exception):
    """The architecture does not build or run in torch eager as mining recorded it."""


def _records(x: dict[str, Any]) -> Any:
    # JSON round trip: tuples become lists, as they are in archs.json.
    import json

    return json.loads(json.dumps(x, default=str))


def build_module(arch: Arch) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The candidate mining traced: the first of the source's candidates with the recorded
    config overrides and input shapes that runs in eager. Weights are drawn under seed 0 in a
    forked RNG, as the miner's worker draws them."""
    # on use: only the worker builds architectures (transformers is an optional extra)
    from fuzzer.mine_sources import SOURCES, _Flat
    from fuzzer.opgraph import tensor_rec

    if arch.source not in SOURCES:
        raise BuildFailed(f"unknown mining source {arch.source!r}")
    why = SOURCES[arch.source].unavailable()
    if why:
        raise BuildFailed(why)
    errors: list[str] = []
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for cand in SOURCES[arch.source].build(arch.model_type):
            if isinstance(cand, Exception):
                errors.append(f"build: {type(cand).__name__}: {first_line(str(cand))}")
                continue
            got = _records({k: tensor_rec(v) for k, v in cand.inputs.items()})
            if got != arch.inputs or _records(cand.config) != arch.config:
                continue
            try:
                with torch.no_grad():
                    cand.model(**cand.inputs)
            except Exception as e:
                errors.append(f"eager: {type(e).__name__}: {first_line(str(e))}")
                continue
            return _Flat(cand.model, list(cand.inputs)).eval(), cand.inputs
    # Every distinct reason: with another transformers than mining's, the recorded candidate
    # may fail where mining's did not, and a later (milder) one fail differently.
    raise BuildFailed("; ".join(dict.fromkeys(errors))[:600] if errors else
                      "no candidate with the config and inputs mining recorded")


def arch_case(arch: Arch, inputs: dict[str, torch.Tensor], n_outputs: int) -> Case:
    """The Case view of an architecture (see the module doc): its inputs, `n_outputs`
    outputs, no nodes. Never materialized; the oracle takes the module as it is."""
    ins = [Input(k, list(t.shape), str(t.dtype).removeprefix("torch."),
                 {"dist": "fixed", "seed": 0}) for k, t in inputs.items()]
    return Case(seed=0, inputs=ins, nodes=[], outputs=[f"out{i}" for i in range(n_outputs)],
                origin={"sampler": "architecture", "architecture": arch.name})


def _fp64(module: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor] | None:
    try:
        m64 = copy.deepcopy(module).double()
        in64 = [t.double() if t.is_floating_point() else t for t in inputs]
        with torch.no_grad():
            return list(m64(*in64))
    except Exception:
        return None  # some models insist on float32 internally: judged against fp32 alone


def build(arch: Arch) -> Built:
    """Build, run twice at fp32 and once at fp64; raises BuildFailed with the reason."""
    try:
        module, named = build_module(arch)
        inputs = list(named.values())
        with torch.no_grad():
            out32 = list(module(*inputs))
            again = list(module(*inputs))
    except BuildFailed:
        raise
    except Exception as e:
        raise BuildFailed(f"{type(e).__name__}: {first_line(str(e))}") from e
    if not out32:
        raise BuildFailed("the model returns no tensor")
    if not close([t.numpy() for t in out32], [t.numpy() for t in again]):
        raise BuildFailed("torch eager is nondeterministic: two runs on the same inputs differ")
    out64 = _fp64(module, inputs)
    case = arch_case(arch, named, len(out32))
    env = {f"out{i}": [t] for i, t in enumerate(out32)}
    return Built(case, Reference(module, inputs, out32, env, lambda: out64))


def judge(arch: Arch, target: str, built: Built | None = None,
          on_stage: Any = None) -> Verdict:
    """One architecture on one target (builds it unless `built` is given); never raises for
    anything the architecture or the target does."""
    # on use: the oracle pulls in onnx and onnxruntime
    from fuzzer import oracle

    if built is None:
        try:
            built = build(arch)
        except BuildFailed as e:
            return build_failed(target, str(e))
    # A fresh copy per target: an export can leave state behind in a transformers model
    # (donut-swin exported by TorchScript first then failed torch.export's data-dependent
    # guard in the dynamo exporter; exported first, it passes).
    ref = built.ref
    fresh = Reference(copy.deepcopy(ref.module), ref.inputs, ref.out32, ref.env, ref.baseline)
    v = oracle.judge(built.case, target, fresh, on_stage=on_stage)
    v.evidence["architecture"] = arch.name
    return v


def build_failed(target: str, why: str) -> Verdict:
    detail = why if why.startswith(("build:", "eager:")) else f"build: {why}"
    return Verdict(target, Outcome.INVALID, Stage.EAGER, Symptom.CRASH, detail=first_line(detail),
                   error=why)


def run_in_worker(worker: Any, arch: dict[str, Any], target: str) -> Verdict:
    """The sandbox task (`fuzzer.protocol.RunTask`): judge `arch` on `target` in the worker,
    the built architecture kept for its next target. A death while building or in eager is
    torch's (stage eager: `build_failed`), never the target's."""
    a = Arch.from_record(arch)
    key = f"arch:{a.name}"
    if key not in worker.refs:
        for k in [k for k in worker.refs if k.startswith("arch:")]:
            del worker.refs[k]  # one architecture at a time: they are megabytes each
        worker.on_stage(Stage.EAGER.value)
        try:
            worker.refs[key] = build(a)
        except BuildFailed as e:
            worker.refs[key] = str(e)
    built = worker.refs[key]
    if isinstance(built, str):
        return build_failed(target, built)
    return judge(a, target, built, on_stage=worker.on_stage)

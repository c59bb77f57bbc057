"""Optimization coverage: which named fusions and rewrite rules fired on a Case.

Rewriters (fuzzer/targets/rewriters.py) and ONNX Runtime above `disabled` note what fired in
`Artifact.notes["fired"]` per component; the oracle stores it on the verdict as
`evidence["fusions"]`, names of the form `project:name` (e.g.
`onnxruntime:SimplifiedLayerNormalization`, `onnxscript.ort_fusions:rms_normalization`).
Coverage is "k of K known" against `known()`. A fusion that fires after one exporter and not
after the other on the same Case is a `missed_fusion`: a performance finding, kept apart from
the correctness findings.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from fuzzer import targets
from fuzzer.targets import rewriters, runtimes
from fuzzer.targets.rules import default_rules, optimizer_switches, rule_names

ORT = "onnxruntime"


def project(component: Any) -> str | None:
    """The coverage namespace of a component: its rewriter project; ONNX Runtime above
    `disabled`; None for components that rewrite nothing by name."""
    if component.settings.get("rewriter"):
        return str(component.settings["rewriter"])
    if component.kind == "runtime" and component.name.startswith("ort-"):
        return ORT
    return None


def coverage_project(component: Any) -> str | None:
    """project(), or for an exporter whose optimizer fires a rewriter's rules (the dynamo
    exporter runs onnxscript's default rules) that rewriter: counted for coverage only."""
    return project(component) or component.settings.get("optimizer_rules")


def fired(target: Any, notes: Mapping[str, Any]) -> dict[str, int]:
    """`project:name -> count` of the fusions/rules that fired along the chain."""
    per = notes.get("fired") or {}
    out: dict[str, int] = {}
    for comp in target.components:
        proj = coverage_project(comp)
        for name, n in (per.get(comp.name) or {}).items():
            if proj:
                key = f"{proj}:{name}"
                out[key] = out.get(key, 0) + int(n)
    return out


def switches(notes: Mapping[str, Any], target: Any = None) -> dict[str, list[str]]:
    """Per component, the names blame may switch off: the ones it says (`switches`), else
    the ones that fired; for the dynamo exporter's optimizer, constant folding and the rules
    that fired (every rule it has when what fired was not recorded)."""
    fired = notes.get("fired") or {}
    out = {c: sorted(names) for c, names in fired.items()}
    out.update(notes.get("switches") or {})
    for comp in target.components if target is not None else ():
        if comp.without is not None and comp.kind == "exporter":
            out[comp.name] = optimizer_switches(fired.get(comp.name))
    return out


def has_rewriter(target: Any) -> bool:
    return any(project(c) for c in target.components)


@functools.lru_cache(maxsize=1)
def known() -> tuple[str, ...]:
    """Every fusion/rule name coverage can report (K in "k of K known")."""
    names = [f"{ORT}:{t}" for t in runtimes.ORT_FUSED]
    names += [f"onnxruntime.transformers:{t}" for t in rewriters.TRANSFORMER_OPS]
    names += [f"onnxscript.ort_fusions:{t}" for t in rewriters.ORT_FUSIONS]
    # onnxscript absent or changed: its rules are simply not counted
    with contextlib.suppress(Exception):
        names += [f"onnxscript.rewriter:{n}" for n in rule_names(default_rules())]
    return tuple(names)


# Names that remove, fold or re-lay-out operators without combining computations: the generic
# cleanups (identity and no-op elimination, cast and reshape collapsing, a chain of the same
# op merged into one, pad/bias normalization, layout changes) and gemm_to_matmul_add, which
# splits a Gemm. Everything else known is a *fusion*: several operators computed by one fused
# or contrib op (LayerNorm, SkipLayerNorm, Gelu/FastGelu, BiasGelu, attention, rotary,
# RMSNorm, FusedMatMul, MatMul+Add -> Gemm, BatchNorm into Conv, Min+Max -> Clip, slices ->
# Split). Coverage reports both, apart: a cleanup fires on almost any chain.
_CLEANUP_PREFIXES = ("onnxscript.rewriter:no_op:", "onnxscript.rewriter:broadcast_to_matmul:",
                     "onnxscript.rewriter:cast_constant_of_shape:",
                     "onnxscript.rewriter:collapse_slices:",
                     "onnxscript.rewriter:FuseSuccessive", "onnxscript.rewriter:Cast",
                     "onnxscript.rewriter:RemoveOptionalBias",
                     "onnxscript.rewriter:NormalizePadFormat")
_CLEANUPS = frozenset({
    "onnxscript.rewriter:MaterializeReshapeShape", "onnxscript.rewriter:ExpandIdentity",
    "onnxscript.rewriter:Flatten2Reshape", "onnxscript.rewriter:ReshapeReshape",
    "onnxscript.rewriter:TransposeIdentity", "onnxscript.rewriter:TransposeTranspose",
    "onnxscript.rewriter:UnsqueezeUnsqueeze", "onnxscript.rewriter:SqueezeReshape1d",
    "onnxscript.rewriter:ScatterAllDynamic", "onnxscript.rewriter:ScatterAllStatic",
    "onnxscript.ort_fusions:gemm_to_matmul_add",
    f"{ORT}:NhwcMaxPool", f"{ORT}:ReorderInput", f"{ORT}:ReorderOutput",
    "onnxruntime.transformers:NhwcConv"})


def kind(name: str) -> str:
    """`fusion` or `cleanup` for a `project:name` (see _CLEANUPS); a count suffix (#2) is
    the same rule's kind."""
    base = name.split("#", 1)[0]
    if base in _CLEANUPS or base.startswith(_CLEANUP_PREFIXES):
        return "cleanup"
    return "fusion"


def split_kinds(names: Iterable[str]) -> dict[str, list[str]]:
    """Names grouped as {"fusion": [...], "cleanup": [...]}, each sorted."""
    out: dict[str, list[str]] = {"fusion": [], "cleanup": []}
    for n in sorted(set(names)):
        out[kind(n)].append(n)
    return out


def verdict_fusions(v: Any) -> dict[str, int]:
    """The fusions a verdict (object or dict) records."""
    ev = v.evidence if hasattr(v, "evidence") else (v.get("evidence") or {})
    return dict(ev.get("fusions") or {})


def summary(fusion_sets: Iterable[Iterable[str]]) -> dict[str, Any]:
    """k of K over many verdicts: which known names fired at least once, and any unknown."""
    seen: set[str] = set()
    for s in fusion_sets:
        seen.update(s)
    k = known()
    return {"fired": sorted(seen), "k": len(seen & set(k)), "K": len(k),
            "other": sorted(seen - set(k))}


def _suffix(target: str) -> str:
    return target.split("/", 1)[1] if "/" in target else ""


@functools.lru_cache(maxsize=64)
def _suffix_projects(suffix: str) -> frozenset[str]:
    """The coverage projects of a chain's passes and runtime (`suffix`: the chain without
    its exporter)."""
    out = set()
    for name in suffix.split("/") if suffix else ():
        with contextlib.suppress(Exception):  # a name this install cannot resolve: none
            proj = project(targets.resolve(name))
            if proj:
                out.add(proj)
    return frozenset(out)


def missed(verdicts: Iterable[Any]) -> list[dict[str, Any]]:
    """Missed fusions on one Case: a name that fired on one target and not on another that
    differs from it only in its exporter (same passes, same runtime). Both verdicts must have
    run the whole chain (pass, or failed only at comparison), else nothing is said."""
    by_suffix: dict[str, list[Any]] = {}
    for v in verdicts:
        d = v.to_dict() if hasattr(v, "to_dict") else v
        if d["outcome"] == "pass" or d.get("stage") == "comparison":
            by_suffix.setdefault(_suffix(d["target"]), []).append(d)
    out = []
    for suffix, group in by_suffix.items():
        # Only what the shared passes and runtime fire compares: the dynamo exporter's own
        # optimizer has no counterpart after TorchScript unless a pass runs those rules.
        shared = _suffix_projects(suffix)
        for a in group:
            for b in group:
                if a is b:
                    continue
                # The other chain may hold the fused op already (its exporter wrote it):
                # then nothing was missed.
                held = set(b.get("evidence", {}).get("fused_present") or [])
                for name in sorted(set(verdict_fusions(a)) - set(verdict_fusions(b))):
                    if name.split(":", 1)[0] in shared and name.split(":", 1)[1] not in held:
                        out.append({"fusion": name, "fired_on": a["target"],
                                    "missed_on": b["target"]})
    return out

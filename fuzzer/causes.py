"""Root causes: findings grouped by the function at fault and the kind of defect, and triaged
before anything is filed.

A finding's blame (fuzzer/provenance.py) is stored in its finding.json. Findings with the same
function and kind of defect are one cause, filed once with its instances listed. Before
filing, a cause is checked against (a) the dynamo exporter, for TorchScript findings (a bug
only the deprecated exporter has is kept, low priority, not reported by default), (b) the
limitations the software under test declares (torchlib's declared input types), and (c) the
committed list of known upstream issues (`corpus/known_issues.json`: references and the rule
that matches a finding), so a known or documented case is labelled instead of reported.
`corpus/causes.json` holds what a curator wrote about a cause: its title, the kind of defect,
whether to file it and why; and, under "blames", a finding's blame written by hand where the
computed one is too coarse (a converter's lowering named down to its source line), which
`corpus blame` stores instead of computing it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzer.corpus import CORPUS, Entry
from fuzzer.verdict import Outcome, Verdict

KNOWN_FILE = CORPUS / "known_issues.json"
CAUSES_FILE = CORPUS / "causes.json"
NEW, KNOWN, DOCUMENTED, TORCHSCRIPT_ONLY = "new", "known", "documented", "torchscript-only"
TORCHSCRIPT_COMPONENT = "torch.onnx (TorchScript)"  # provenance.blame_torchscript's component
WHY = {TORCHSCRIPT_ONLY: "Only the deprecated TorchScript exporter has it: the dynamo exporter "
       "passes the same Case (kept, low priority).",
       KNOWN: "Known upstream: see the linked issues.",
       DOCUMENTED: "A limitation the software under test documents."}


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else {}


def blame_of(e: Entry) -> dict[str, Any]:
    """The finding's blame: component, function, source, tracker, kind (computed once by
    `convfuzz corpus blame`, stored in finding.json)."""
    # on use: provenance imports torch, grouping causes needs it only to blame afresh
    from fuzzer import provenance

    v = e.verdict
    other = _other_converter(e) or _rewriter(e) or _crashed_rewriter(e)
    if other:
        return other
    if v.attribution.value == "runtime":
        runtime = e.target.split("/")[-1]
        return {"component": "onnxruntime" if runtime.startswith("ort") else runtime,
                "function": f"{runtime} kernel for {e.case.ops[-1]}", "source": "",
                "tracker": "onnxruntime", "kind": v.symptom.value if v.symptom else ""}
    if e.target.startswith("dynamo"):
        b = provenance.blame_dynamo(e.case, v.shown_error if v.error else v.shown_detail)
    else:
        opset = int(e.target.split("/")[0].split("-")[1])
        b = provenance.blame_torchscript(e.case, opset)
    return b.to_dict() if b is not None else {}


def _other_converter(e: Entry) -> dict[str, Any]:
    """OpenVINO, ExecuTorch, LiteRT and tf2onnx findings: blamed on that converter (its
    lowering of the last operator, or its runtime's kernel), filed on its own tracker. {} for
    torch.onnx and ONNX Runtime findings, and for a target this install cannot resolve."""
    # on use: fuzzer.targets imports every component module (torch, onnxruntime...)
    from fuzzer.targets import TargetError, parse
    from fuzzer.targets.registry import FAMILIES

    try:
        target = parse(e.target)
    except TargetError:
        return {}
    v = e.verdict
    runtime = v.attribution.value == "runtime" or (
        v.stage is not None and v.stage.value.startswith("runtime"))
    comp = target.runtime if v.attribution.value == "runtime" else target.exporter
    if comp.family not in ("openvino", "executorch", "litert", "tf2onnx"):
        return {}
    what = "kernel" if runtime else "lowering"
    return {"component": comp.family, "function": f"{comp.name} {what} of {e.case.ops[-1]}",
            "source": "", "tracker": FAMILIES[comp.family].tracker,
            "kind": v.symptom.value if v.symptom else ""}


def _crashed_rewriter(e: Entry) -> dict[str, Any]:
    """A rewriter that raised while rewriting: the function it raised in (the innermost frame
    of its own code, recorded by the pass), on its project's tracker; the kind names the
    exception, so two crashes in one function with different causes stay apart from a
    fusion of the same function that breaks the model later. {} for other findings."""
    at = e.verdict.evidence.get("raised_in") or {}
    if e.verdict.attribution.value != "optimizer" or not at.get("function"):
        return {}
    project = ("onnxruntime.transformers" if at["source"].startswith("onnxruntime/")
               else "onnxscript")
    return {"component": project, "function": at["function"], "source": at["source"],
            "tracker": project.split(".")[0], "kind": f"raises {at.get('raises', '')}".strip(),
            "evidence": f"raised in {at['function']} ({at['source']})"}


def _rewriter(e: Entry) -> dict[str, Any]:
    """A failure blamed on a rewriter (the oracle named the fusion or rule whose step makes
    the model fail): the function that decides to rewrite, from rewriters.FAULTS, with its
    source and tracker. {} for other findings."""
    blamed = e.verdict.evidence.get("blame") or {}
    if e.verdict.attribution.value != "optimizer" or not blamed.get("project"):
        return {}
    # on use: fuzzer.targets imports every component module (torch, onnxruntime...)
    from fuzzer import provenance
    from fuzzer.targets.rewriters import NATIVE_FAULTS, fault_function

    rule = blamed.get("rule") or blamed.get("step", "")
    project = blamed["project"]
    fired = [k.split(":", 1)[1] for k in e.verdict.evidence.get("fusions") or {}
             if k.startswith(project + ":")]
    fn, name = fault_function(project, rule, fired)
    src, tracker = provenance.where(fn) if fn is not None else (
        NATIVE_FAULTS.get((project, rule), ("", ""))[1], "")
    return {"component": blamed["project"], "function": name, "source": src,
            "tracker": tracker or blamed["project"].split(".")[0], "kind": (
                e.verdict.symptom.value if e.verdict.symptom else ""),
            "evidence": f"blame: {blamed.get('component')} step {blamed.get('step')!r} "
                        f"(after {blamed.get('after')}; {blamed.get('calls', '')}"
                        + (f"; not runnable alone: {', '.join(blamed['unjudged'])}"
                           if blamed.get("unjudged") else "") + ")"}


def key(meta: dict[str, Any]) -> str:
    """The cause a finding belongs to: its function and kind of defect (the symptom when the
    blame did not classify it)."""
    b = meta.get("blame") or {}
    kind = b.get("kind") or meta["verdict"].get("symptom") or ""
    return f"{b.get('function') or meta['target']}|{kind}"


def known_for(e: Entry, known: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The known-issue record whose rule matches the finding: all of ops (the Case contains
    them), symptom, exporter family and the blamed function, where the rule states them."""
    function = (e.meta.get("blame") or {}).get("function")
    for k in known if known is not None else _json(KNOWN_FILE).get("issues", []):
        m = k["match"]
        if m.get("function", function) != function:
            continue
        if all(op in e.case.ops for op in m.get("ops", [])) and m.get(
                "symptom", e.verdict.symptom and e.verdict.symptom.value) == (
                e.verdict.symptom and e.verdict.symptom.value) and e.target.startswith(
                m.get("exporter", "")):
            return k
    return None


@dataclass
class Cause:
    key: str
    blame: dict[str, Any]
    instances: list[Entry] = field(default_factory=list)
    curated: dict[str, Any] = field(default_factory=dict)
    known: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return str(self.curated.get("slug") or self.instances[0].id)

    @property
    def title(self) -> str:
        return str(self.curated.get("title") or f"{self.blame.get('function', '?')}: "
                   f"{self.key.split('|')[1]}")

    @property
    def label(self) -> str:
        if self.known:
            return KNOWN
        # Only an exporter defect can be the deprecated exporter's alone: a rewriter or
        # runtime defect behind it is theirs, whatever graph dynamo happens to write.
        component = self.blame.get("component", "")
        if (not component or TORCHSCRIPT_COMPONENT in component) and all(
                e.meta.get("dynamo_check") == "pass" for e in self.instances):
            return TORCHSCRIPT_ONLY
        return str(self.curated.get("status") or NEW)

    @property
    def file(self) -> bool:
        """File it? Only new causes, unless the curator says otherwise."""
        return bool(self.curated.get("file", self.label == NEW))

    @property
    def upstream(self) -> list[str]:
        refs = [r for k in self.known for r in k["refs"]]
        return list(dict.fromkeys(refs + list(self.curated.get("upstream", []))))

    def row(self) -> dict[str, Any]:
        return {"cause": self.slug, "title": self.title,
                "component": self.blame.get("component", ""),
                "function": self.blame.get("function", ""),
                "tracker": self.blame.get("tracker", ""), "label": self.label,
                "file": self.file, "why": self.curated.get("why") or WHY.get(self.label, ""),
                "upstream": self.upstream, "instances": [e.id for e in self.instances]}


def group(entries: list[Entry], root: Path = CORPUS) -> list[Cause]:
    curated = _json(root / "causes.json").get("causes", {})
    known = _json(root / "known_issues.json").get("issues", [])
    causes: dict[str, Cause] = {}
    for e in entries:
        k = key(e.meta)
        c = causes.setdefault(k, Cause(k, e.meta.get("blame") or {}, curated=curated.get(k, {})))
        c.instances.append(e)
        hit = known_for(e, known)
        if hit is not None and hit not in c.known:
            c.known.append(hit)
    return sorted(causes.values(), key=lambda c: (not c.file, c.label, c.slug))


def dynamo_check(e: Entry, run: Callable[[Any, str], Verdict]) -> str:
    """For a TorchScript finding: does the dynamo exporter pass the same Case? pass | fail."""
    if not e.target.startswith("torchscript"):
        return ""
    v = run(e.case, "dynamo/" + e.target.split("/", 1)[1])
    return "pass" if v.outcome in (Outcome.PASS, Outcome.UNSUPPORTED) else "fail"


def curated_blames(root: Path = CORPUS) -> dict[str, dict[str, Any]]:
    """The blames a curator wrote by hand, by corpus folder (causes.json "blames")."""
    return dict(_json(root / "causes.json").get("blames", {}))


def annotate(e: Entry, run: Callable[[Any, str], Verdict] | None,
             curated: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Compute and store the finding's blame (and dynamo check) in its finding.json; a blame
    `curated` for it (by folder) is stored as written instead."""
    if e.where is None:
        raise ValueError(f"{e.id}: no folder to write to")
    meta = dict(e.meta)
    meta["blame"] = dict(curated[e.id]) if curated and e.id in curated else blame_of(e)
    if run is not None and e.target.startswith("torchscript"):
        meta["dynamo_check"] = dynamo_check(e, run)
    (e.where / "finding.json").write_text(json.dumps(meta, indent=2, sort_keys=True,
                                                     default=str) + "\n")
    e.meta = meta
    return meta

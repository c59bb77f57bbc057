"""The taxonomy (stage x symptom, after Jajal et al.), the Verdict and the Signature."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Stage(str, Enum):
    EAGER = "eager"  # torch eager itself failed: the Case is invalid, never a finding
    TRACE = "trace"
    NODE_CONVERSION = "node_conversion"
    GRAPH_OPTIMIZATION = "graph_optimization"
    VALIDATION = "validation"
    RUNTIME_LOAD = "runtime_load"
    RUNTIME_RUN = "runtime_run"
    COMPARISON = "comparison"


class Symptom(str, Enum):
    CRASH = "crash"
    UNSUPPORTED = "unsupported"
    INVALID_MODEL = "invalid_model"
    WRONG_VALUES = "wrong_values"
    WRONG_SHAPE = "wrong_shape"
    WRONG_DTYPE = "wrong_dtype"
    NAN_INF_MISMATCH = "nan_inf_mismatch"
    HANG = "hang"
    PROCESS_DEATH = "process_death"
    OUT_OF_MEMORY = "out_of_memory"


class Outcome(str, Enum):
    PASS = "pass"
    BUG = "bug"  # a finding: worth shrinking and reporting
    UNSUPPORTED = "unsupported"  # an honest "not implemented": counted, never reported
    INVALID = "invalid"  # the Case fails in torch eager: not the converter's business
    HARNESS = "harness_error"  # convfuzz itself failed: a bug to fix here, never a finding


class Attribution(str, Enum):
    CONVERTER = "converter"
    RUNTIME = "runtime"
    OPTIMIZER = "optimizer"
    UNKNOWN = "unknown"
    NONE = "none"


@dataclass
class Verdict:
    target: str
    outcome: Outcome
    stage: Stage | None = None
    symptom: Symptom | None = None
    attribution: Attribution = Attribution.NONE
    detail: str = ""  # one line for tables
    error: str = ""  # full error text (for reports)
    evidence: dict[str, Any] = field(default_factory=dict)  # numbers behind the call
    seconds: float = 0.0
    # The inputs' shapes when the failure was found at another size of a dynamic dim than
    # the traced one (None: at the Case's own shapes). detail/error are the failure's own
    # text; shown_detail/shown_error lead it with these shapes.
    shapes: tuple[tuple[int, ...], ...] | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.BUG

    @property
    def key(self) -> str:
        """stage/symptom, or the outcome for pass/invalid."""
        if self.stage is None or self.symptom is None:
            return self.outcome.value
        return f"{self.stage.value}/{self.symptom.value}"

    @property
    def where(self) -> str:
        """How the text a user reads begins: the other shapes, or nothing."""
        return "" if self.shapes is None else f"{AT_SHAPES} {_listed(self.shapes)}: "

    @property
    def shown_detail(self) -> str:
        return self.where + self.detail

    @property
    def shown_error(self) -> str:
        return self.where + self.error

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `evidence` is shared, not copied (it is JSON already)."""
        return {"target": self.target, "outcome": self.outcome.value,
                "stage": self.stage.value if self.stage else None,
                "symptom": self.symptom.value if self.symptom else None,
                "attribution": self.attribution.value, "detail": self.detail,
                "error": self.error, "evidence": self.evidence, "seconds": self.seconds,
                # only when set: every other verdict's JSON is as it always was
                **({} if self.shapes is None else {"shapes": _listed(self.shapes)})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        shapes, detail, error = _shapes_of(d)
        return cls(target=d["target"], outcome=Outcome(d["outcome"]),
                   stage=Stage(d["stage"]) if d.get("stage") else None,
                   symptom=Symptom(d["symptom"]) if d.get("symptom") else None,
                   attribution=Attribution(d.get("attribution") or "none"),
                   detail=detail, error=error, evidence=d.get("evidence") or {},
                   seconds=d.get("seconds", 0.0), shapes=shapes)


# How a failure found at another size of a dynamic dim is told, the shapes following.
AT_SHAPES = "at input shape(s)"


def _listed(shapes: tuple[tuple[int, ...], ...]) -> list[list[int]]:
    return [list(s) for s in shapes]


def as_shapes(shapes: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(n) for n in s) for s in shapes)


def _shapes_of(d: dict[str, Any]) -> tuple[tuple[tuple[int, ...], ...] | None, str, str]:
    """(shapes, detail, error) of a verdict's JSON. One written before the shapes had a
    field of their own (stores, finding folders and corpus entries of then) kept them in
    evidence["shapes"] and led both texts with them: that lead, rendered from the evidence
    and matched exactly, is taken off again (nothing is parsed)."""
    detail, error = d.get("detail", ""), d.get("error", "")
    if d.get("shapes") is not None:
        return as_shapes(d["shapes"]), detail, error
    old = (d.get("evidence") or {}).get("shapes")
    if not isinstance(old, list):
        return None, detail, error
    lead = f"{AT_SHAPES} {old}: "
    if not (detail.startswith(lead) and error.startswith(lead)):
        return None, detail, error
    return as_shapes(old), detail[len(lead):], error[len(lead):]


# -- error normalization and signatures -----------------------------------------------------
_NORMALIZERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(/[\w.\-]+)+(:\d+)?"), "<path>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<name>"),
    (re.compile(r"\b(n\d+|x\d*|args?_\d+|val_\d+|node_\w+|_?v_?\d+)\b"), "<id>"),
    (re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def first_line(text: str, limit: int = 240) -> str:
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return ""


def normalize_error(text: str) -> str:
    """Numbers, names and paths stripped: two runs of the same bug normalize alike."""
    s = first_line(text, 400)
    for pat, rep in _NORMALIZERS:
        s = pat.sub(rep, s)
    return s.strip()[:200]


def target_family(target: str) -> str:
    """`torchscript-17/ort-all` -> `torchscript/ort`: opsets and levels do not split bugs."""
    parts = []
    for p in target.split("/"):
        parts.append(re.split(r"-(?=\d|all|disabled|basic|extended|noopt|opt)", p)[0])
    return "/".join(parts)


_LISTS = re.compile(r"\[[^\[\]]*\]|\([^()]*\)")


def error_class(v: Verdict) -> str:
    """The normalized error without the graph context the exporter appends; for comparison
    failures also without index lists and parenthesized numbers, which change with every
    shape the shrinker tries (and with every Case of the same bug)."""
    # TorchScript appends "[Caused by the value '...' defined in (<graph>)" to the first line.
    # Other shapes (if any) are named but not listed: the list counts the Case's inputs,
    # which change as the shrinker deletes nodes, so a runtime failure there kept every node
    # (386 'findings' of one Split bug in a `--dynamic 1.0` campaign); and listed, its
    # length moved where normalize_error cuts the text.
    where = "" if v.shapes is None else f"{AT_SHAPES}: "
    text = normalize_error(where + (v.error or v.detail)).split("[Caused by")[0].strip()
    if v.stage == Stage.COMPARISON:
        # Innermost first, until none is left: a nested list would otherwise keep "[, ]",
        # whose commas count its items.
        while True:
            stripped = _LISTS.sub("", text)
            if stripped == text:
                break
            text = stripped
    return text


_PAST_EXPORT = (Stage.RUNTIME_LOAD, Stage.RUNTIME_RUN, Stage.COMPARISON)


def failure_key(v: Verdict) -> tuple[str, str, str, str]:
    """What makes two failures the same failure: the shrinker keeps a candidate only when
    its key is unchanged, and dedup hashes it with the operator set. A runtime-stage failure
    attributed to the exporter names no runtime (`dynamo/*`): every runtime that runs the
    model shows it, and it is one finding, not one per runtime."""
    family = target_family(v.target)
    if v.attribution == Attribution.CONVERTER and v.stage in _PAST_EXPORT and "/" in family:
        family = family.rsplit("/", 1)[0] + "/*"
    return (family, v.stage.value if v.stage else "", v.symptom.value if v.symptom else "",
            error_class(v))


def signature(v: Verdict, ops: list[str]) -> str:
    """The Signature: the failure key (target family + stage + symptom + error class) and
    the operator set of the Case; a finding's id is the signature of its minimized Case."""
    family, stage, symptom, error = failure_key(v)
    # normalize_error again: error_class output is stable under it, and finding ids stay
    # what they were when the class was normalized on the way in.
    parts = [family, stage, symptom, normalize_error(error), ",".join(sorted(set(ops)))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

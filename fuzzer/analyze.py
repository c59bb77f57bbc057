"""Statistics over campaign stores: do Cases built from real operator sequences fail more often
than random ones, and which operator n-grams go with failure?

Units. A *Case* is the unit of the arm comparison and of n-gram enrichment (its verdicts on
several targets are not independent); a *verdict* is the unit of the per-target tables. Cases
that are invalid in torch eager or only met harness errors are left out of every denominator.
Raw Cases are the generated ones: shrink products (a parent, other than `mutate`) are not, so
the minimized failures are analysed apart. The sampler arm is read from the Case's origin.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from fuzzer import arch_analysis
from fuzzer.dataflow import case_graph, case_ngrams
from fuzzer.rows import EVALUATED, Campaign, CaseRow, Finding, StoreInfo, VRow, load
from fuzzer.seeds import MAX_N as MINED_N
from fuzzer.seeds import load_seeds as read_seeds
from fuzzer.statistics import (
    bh,
    chi2_if_fits,
    fisher,
    mantel_haenszel,
    newcombe,
    wilson,
)
from fuzzer.storage import StoreError
from fuzzer.verdict import Stage, Symptom, Verdict, first_line, signature, target_family

ARMS = ("real", "random")  # the compared arms; other samplers are reported, never tested
MAX_N = 3
# Symptom classes of issue 8; a verdict is in at most one of them.
CLASSES: dict[str, tuple[str, ...]] = {
    "wrong values": ("wrong_values", "wrong_shape", "wrong_dtype", "nan_inf_mismatch"),
    "crash": ("crash", "process_death", "hang", "out_of_memory"),
    "invalid model": ("invalid_model",),
}
ANY = "any failure"
UNSUPPORTED = "unsupported"
CLASS_ORDER = (ANY, *CLASSES, UNSUPPORTED)


def ngrams(case: dict[str, Any], max_n: int = MAX_N) -> set[tuple[str, ...]]:
    """Operator n-grams (1..max_n) along data-flow edges (the shared definition)."""
    return case_ngrams(case, max_n)


def chains(case: dict[str, Any], limit: int = 64) -> list[tuple[str, ...]]:
    """The maximal data-flow paths of a Case (source node to sink node) as operator names."""
    g = case_graph(case)
    ops = nx.get_node_attributes(g, "op")
    out: list[tuple[str, ...]] = []

    def walk(node: str, names: tuple[str, ...]) -> None:
        if len(out) >= limit:
            return
        succ = list(g.successors(node))
        if not succ:
            out.append(names)
        for s in succ:
            walk(s, (*names, ops[s]))

    for node in g.nodes:
        if g.in_degree(node) == 0:
            walk(node, (ops[node],))
    return sorted(set(out))


# ---------------------------------------------------------------------------- analyses

def verdict_class(v: VRow) -> str | None:
    """The symptom class of one verdict: a CLASSES key, 'unsupported', 'pass', 'other' (a bug
    outside the named classes) or None (not evaluated)."""
    if v.outcome == "pass":
        return "pass"
    if v.outcome == "unsupported" or v.symptom == "unsupported":
        return UNSUPPORTED
    if v.outcome != "bug":
        return None
    return next((c for c, syms in CLASSES.items() if v.symptom in syms), "other")


def case_classes(c: CaseRow, target: str | None = None) -> set[str]:
    vs = [c.verdicts[target]] if target is not None else list(c.verdicts.values())
    classes = {k for k in (verdict_class(v) for v in vs) if k}
    if any(v.outcome == "bug" for v in vs):
        classes.add(ANY)
    return classes


@dataclass
class Rate:
    arm: str
    target: str  # "all" = Case level over every target
    cls: str
    k: int
    n: int
    lo: float
    hi: float

    @property
    def p(self) -> float:
        return self.k / self.n if self.n else math.nan


@dataclass
class Comparison:
    target: str
    cls: str
    real: Rate
    random: Rate
    diff: float
    diff_lo: float
    diff_hi: float
    odds_ratio: float
    p: float


def _rates(units: dict[str, list[set[str]]], target: str) -> list[Rate]:
    out = []
    for arm, sets in sorted(units.items()):
        for cls in CLASS_ORDER:
            k = sum(cls in s for s in sets)
            out.append(Rate(arm, target, cls, k, len(sets), *wilson(k, len(sets))))
    return out


def arm_rates(cases: list[CaseRow]) -> tuple[list[Rate], list[Comparison]]:
    """Failure rates per arm (Case level, then per target) and the real-vs-random tests."""
    raw = [c for c in cases if c.raw]
    units: dict[str, dict[str, list[set[str]]]] = defaultdict(lambda: defaultdict(list))
    for c in raw:
        if c.evaluated:
            units["all"][c.sampler].append(case_classes(c))
        for t, v in c.verdicts.items():
            if v.outcome in EVALUATED:
                units[t][c.sampler].append(case_classes(c, t))
    rates: list[Rate] = []
    comps: list[Comparison] = []
    for target in sorted(units, key=lambda t: (t != "all", t)):
        rs = _rates(units[target], target)
        rates += rs
        by = {(r.arm, r.cls): r for r in rs}
        for cls in CLASS_ORDER:
            a, b = by.get(("real", cls)), by.get(("random", cls))
            if a is None or b is None or a.n == 0 or b.n == 0:
                continue
            odds, p = fisher(a.k, a.n - a.k, b.k, b.n - b.k)
            comps.append(Comparison(target, cls, a, b, *newcombe(a.k, a.n, b.k, b.n), odds, p))
    return rates, comps


def exclusive_class(c: CaseRow) -> str:
    """One class per Case for the arm x class chi-square (a bug outranks unsupported)."""
    cl = case_classes(c)
    return next((k for k in (*CLASSES, "other", UNSUPPORTED) if k in cl), "pass")


def arm_chi2(cases: list[CaseRow]) -> dict[str, Any] | None:
    cols = [*CLASSES, "other", UNSUPPORTED, "pass"]
    rows = []
    for arm in ARMS:
        cnt = Counter(exclusive_class(c) for c in cases
                      if c.raw and c.evaluated and c.sampler == arm)
        rows.append([cnt[k] for k in cols])
    res = chi2_if_fits(rows)
    return None if res is None else {**res, "columns": cols, "table": rows}


def length_adjusted(cases: list[CaseRow]) -> dict[str, Any] | None:
    strata: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in cases:
        if c.raw and c.evaluated and c.sampler in ARMS:
            i = (0 if c.sampler == "real" else 2) + (0 if c.failed else 1)
            strata[len(c.case.get("nodes", []))][i] += 1
    return mantel_haenszel(tuple(t) for t in strata.values())  # type: ignore[misc]


def _compare(label: str, cases: list[CaseRow]) -> Comparison | None:
    rs = {arm: [c.failed for c in cases if c.sampler == arm] for arm in ARMS}
    if not all(rs.values()):
        return None
    real, rand = (Rate(arm, label, ANY, sum(v), len(v), *wilson(sum(v), len(v)))
                  for arm, v in rs.items())
    odds, p = fisher(real.k, real.n - real.k, rand.k, rand.n - rand.k)
    return Comparison(label, ANY, real, rand, *newcombe(real.k, real.n, rand.k, rand.n),
                      odds, p)


def sensitivity(cases: list[CaseRow]) -> list[Comparison]:
    """The primary comparison on two subsets that remove what the arms may differ in besides
    sequences: the operators they draw (Cases made only of operators both arms drew) and the
    share the converter refuses outright (Cases some target accepted: a refused Case cannot
    fail, so many `unsupported` verdicts lower an arm's failure rate)."""
    ev = [c for c in cases if c.raw and c.evaluated and c.sampler in ARMS]
    vocab = [{n["op"] for c in ev if c.sampler == arm for n in c.case["nodes"]} for arm in ARMS]
    shared = vocab[0] & vocab[1]
    out = [_compare(f"shared ops only ({len(shared)})",
                    [c for c in ev if {n["op"] for n in c.case["nodes"]} <= shared]),
           _compare("accepted Cases only", [c for c in ev if c.failed or c.passed])]
    return [c for c in out if c is not None]


@dataclass
class Enriched:
    ngram: tuple[str, ...]
    fail_with: int
    fail_without: int
    pass_with: int
    pass_without: int
    odds_ratio: float
    p: float
    q: float = math.nan
    archs: int | None = None  # mined architectures containing the n-gram (with --seeds)

    @property
    def label(self) -> str:
        return " → ".join(o.removeprefix("aten::") for o in self.ngram)


def enrichment(failing: Sequence[set[tuple[str, ...]]], passing: Sequence[set[tuple[str, ...]]],
               min_support: int = 3) -> list[Enriched]:
    """Fisher's exact test per n-gram (present/absent x failing/passing), BH over all tested.

    N-grams in fewer than `min_support` units are not tested: the filter ignores the outcome,
    so it keeps the FDR control valid while sparing tests that could never reach significance.
    """
    nf, np_ = len(failing), len(passing)
    if nf == 0 or np_ == 0:
        return []
    fc: Counter[tuple[str, ...]] = Counter(g for s in failing for g in s)
    pc: Counter[tuple[str, ...]] = Counter(g for s in passing for g in s)
    out = []
    for g in sorted(set(fc) | set(pc)):
        a, c = fc[g], pc[g]
        if a + c < min_support:
            continue
        odds, p = fisher(a, nf - a, c, np_ - c)
        out.append(Enriched(g, a, nf - a, c, np_ - c, odds, p))
    for e, q in zip(out, bh([e.p for e in out]), strict=True):
        e.q = q
    return sorted(out, key=lambda e: (e.p, -e.odds_ratio, e.ngram))


@dataclass
class Exposure:
    chain: str
    signature: str
    count: int
    target: str
    symptom: str | None
    arms: list[str]
    archs: int | None  # None: longer than any mined n-gram
    examples: list[str]


def exposure(findings: list[Finding], seeds: Any) -> list[Exposure]:
    """In how many mined architectures does each minimized failure's chain occur? A Case with
    several paths occurs where all of them do (a necessary condition, not a subgraph match)."""
    out = []
    for f in findings:
        paths = chains(f.case)
        label = " | ".join(" → ".join(o.removeprefix("aten::") for o in p) for p in paths)
        if not paths or any(len(p) > MINED_N for p in paths):
            out.append(Exposure(label, f.signature, f.count, f.target, f.symptom, f.arms,
                                None, []))
            continue
        archs = set(seeds.archs_containing(paths[0]))
        for p in paths[1:]:
            archs &= set(seeds.archs_containing(p))
        out.append(Exposure(label, f.signature, f.count, f.target, f.symptom, f.arms,
                            len(archs), sorted(archs)[:3]))
    return sorted(out, key=lambda e: (-(e.archs or 0), -e.count, e.chain))


def load_seeds(path: Path) -> Any:
    try:
        return read_seeds(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{path}: not a seeds directory ({e})") from None


# The paper's figures (Jajal et al., ISSTA 2024; 100 fixed torch.onnx issues) and the closest
# of our categories. Ours are where a failure surfaced; theirs, where the fix went.
PAPER_SYMPTOMS = (("crash", "56%", CLASSES["crash"]),
                  ("wrong code", "32.5%", CLASSES["wrong values"]),
                  ("(no paper category) invalid model", "—", CLASSES["invalid model"]))
PAPER_STAGES = (("node transformation", "74%", ("node_conversion",)),
                ("graph optimization", "9.5%", ("graph_optimization",)),
                ("tracer", "5.5%", ("trace",)),
                ("validation", "1.5%", ("validation",)),
                ("(no paper category) runtime / comparison", "—",
                 ("runtime_load", "runtime_run", "comparison")))


@dataclass
class Taxonomy:
    stages: list[str]
    symptoms: list[str]
    counts: list[list[int]]  # raw verdicts, stages x symptoms (bugs and unsupported)
    distinct: int  # distinct failures (signatures or findings) behind the shares
    unsupported: int  # distinct refusals (about one per refused operator)
    unit: str
    # (paper label, paper share, our k, our share of bugs, our share counting unsupported)
    symptom_shares: list[tuple[str, str, int, float, float]]
    stage_shares: list[tuple[str, str, int, float, float]]


def _refusal_key(v: VRow) -> str:
    """One key per refused operator: signatures would split a refusal by the whole Case's
    operator set, and normalize_error would merge all refusals (it strips quoted names)."""
    said = Verdict.from_dict(v.raw)
    text = first_line(said.shown_error if said.error else said.shown_detail)
    text = re.sub(r"\d+", "<n>", re.sub(r"'/[^']*'", "<node>", text))
    return f"{target_family(v.target)}|{v.stage}|{text}"


def taxonomy(camp: Campaign) -> Taxonomy:
    cells: Counter[tuple[str, str]] = Counter()
    sigs: dict[str, tuple[str, str, str]] = {}
    for c in camp.cases:
        if not c.raw:
            continue
        for v in c.verdicts.values():
            if v.outcome in ("bug", "unsupported") and v.stage and v.symptom:
                cells[v.stage, v.symptom] += 1
                sig = (_refusal_key(v) if v.outcome == "unsupported" else
                       signature(Verdict.from_dict(v.raw), [n["op"] for n in c.case["nodes"]]))
                sigs.setdefault(sig, (v.outcome, v.stage, v.symptom))
    unit = ("distinct signatures of unminimized failures (the whole Case's operator set "
            "splits them: an upper bound on distinct bugs)")
    if camp.findings:  # refusals are never findings: keep them from the raw verdicts
        unit = "minimized failures (findings)"
        sigs = {**{k: t for k, t in sigs.items() if t[0] == "unsupported"},
                **{f"finding:{f.signature or i}": ("bug", f.stage or "", f.symptom or "")
                   for i, f in enumerate(camp.findings)}}
    stages = sorted({s for s, _ in cells}, key=_stage_order)
    symptoms = sorted({y for _, y in cells}, key=_symptom_order)
    bugs = [(st, sy) for o, st, sy in sigs.values() if o == "bug"]
    # As an issue tracker would see them: "not supported" errors are crashes.
    with_unsup = bugs + [(st, "crash") for o, st, _ in sigs.values() if o == "unsupported"]

    def shares(rows: Sequence[tuple[str, str, tuple[str, ...]]], idx: int
               ) -> list[tuple[str, str, int, float, float]]:
        out = []
        for label, paper, keys in rows:
            k = sum(b[idx] in keys for b in bugs)
            k_u = sum(b[idx] in keys for b in with_unsup)
            out.append((label, paper, k, k / len(bugs) if bugs else math.nan,
                        k_u / len(with_unsup) if with_unsup else math.nan))
        return out

    return Taxonomy(stages, symptoms, [[cells[s, y] for y in symptoms] for s in stages],
                    len(bugs), len(with_unsup) - len(bugs), unit, shares(PAPER_SYMPTOMS, 1),
                    shares(PAPER_STAGES, 0))


def _stage_order(s: str) -> tuple[int, str]:
    order = [x.value for x in Stage]
    return (order.index(s) if s in order else len(order), s)


def _symptom_order(s: str) -> tuple[int, str]:
    order = [x.value for x in Symptom]
    return (order.index(s) if s in order else len(order), s)


# ---------------------------------------------------------------------------- the report

@dataclass
class Report:
    stores: list[StoreInfo]
    arms: dict[str, dict[str, Any]]
    rates: list[Rate]
    comparisons: list[Comparison]
    chi2: dict[str, Any] | None
    length_adjusted: dict[str, Any] | None
    sensitivity: list[Comparison]  # the primary test on confound-free subsets
    enrich_raw: list[Enriched]
    enrich_min: list[Enriched] | None  # None: the stores hold no minimized failures
    exposure: list[Exposure] | None  # None: no seeds or no minimized failures
    findings_by_arm: dict[str, int] | None  # distinct minimized failures by reproducing arms
    taxonomy: Taxonomy
    notes: list[str]
    files: dict[str, str] = field(default_factory=dict)
    # whole architectures (`convfuzz models` verdicts in the stores); None: none there
    archs: arch_analysis.ArchAnalysis | None = None

    @property
    def primary(self) -> Comparison | None:
        """The pre-specified test: any failure, Case level, real vs random."""
        return next((c for c in self.comparisons if c.target == "all" and c.cls == ANY), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("enrich_raw", "enrich_min"):
            for row, e in zip(d[key] or [], getattr(self, key) or [], strict=True):
                row["label"] = e.label
        return _clean(d)


def _clean(x: Any) -> Any:
    """JSON without NaN/Infinity (which strict parsers refuse)."""
    if isinstance(x, float):
        return None if math.isnan(x) else ("inf" if math.isinf(x) else x)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def compute(stores: list[Path], seeds: Path | None = None, min_support: int = 3) -> Report:
    """Compute every statistic of issue 8 over `stores` (writing is analysis_report's)."""
    camp = load(stores)
    seed_db = load_seeds(seeds) if seeds is not None else None
    notes: list[str] = []
    raw = [c for c in camp.cases if c.raw]
    arms: dict[str, dict[str, Any]] = {}
    for arm in sorted({c.sampler for c in raw}):
        mine = [c for c in raw if c.sampler == arm]
        ev = [c for c in mine if c.evaluated]
        arms[arm] = {"cases": len(mine), "evaluated": len(ev),
                     "excluded": len(mine) - len(ev),
                     "ops": len({n["op"] for c in ev for n in c.case.get("nodes", [])}),
                     "mean_nodes": float(np.mean([len(c.case.get("nodes", [])) for c in ev]))
                     if ev else math.nan,
                     "targets": sorted({t for c in mine for t in c.verdicts}),
                     # optimization coverage (fuzzer/fusions.py): named fusions/rules fired
                     "fusions": sorted({f for c in ev for v in c.verdicts.values()
                                        for f in (v.raw.get("evidence") or {}).get("fusions")
                                        or {}})}
    if all(a in arms for a in ARMS):
        real, rand = arms["real"], arms["random"]
        if real["targets"] != rand["targets"]:
            notes.append("The arms ran on different targets: compare them per target, not "
                         "pooled.")
        if abs(real["ops"] - rand["ops"]) > 0.2 * max(real["ops"], rand["ops"], 1):
            notes.append(f"The arms drew different vocabularies (real {real['ops']} operators, "
                         f"random {rand['ops']}): read the `shared ops only` row beside the "
                         "primary test.")
    rates, comps = arm_rates(camp.cases)
    failing = [ngrams(c.case) for c in raw if c.failed]
    passing = [ngrams(c.case) for c in raw if c.passed]
    enrich_raw = enrichment(failing, passing, min_support)
    enrich_min = expo = by_arm = None
    if camp.findings:
        by_arm = dict(Counter(" + ".join(f.arms) or "unlinked" for f in camp.findings))
        enrich_min = enrichment([ngrams(f.case) for f in camp.findings], passing, min_support)
        if seed_db is not None:
            expo = exposure(camp.findings, seed_db)
    if seed_db is not None:
        for e in [*enrich_raw, *(enrich_min or [])]:
            e.archs = len(seed_db.archs_containing(e.ngram))
    archs = arch_analysis.compute(stores)
    if archs is not None and seed_db is not None:
        archs.enrich = enrichment(*arch_analysis.sequence_sets(archs, seed_db), min_support)
    return Report(camp.stores, arms, rates, comps, arm_chi2(camp.cases),
                  length_adjusted(camp.cases), sensitivity(camp.cases), enrich_raw,
                  enrich_min, expo, by_arm, taxonomy(camp), notes, archs=archs)

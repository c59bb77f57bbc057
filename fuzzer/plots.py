"""Figures (PNG) and the written report (markdown + HTML) of `convfuzz analyze`.

Figures use matplotlib's object API on the Agg canvas, never pyplot, so no global figure or
backend state is touched (the CLI and the tests may run them in any process).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from fuzzer.analyze import (
    ANY,
    ARMS,
    CLASS_ORDER,
    Comparison,
    Enriched,
    Rate,
    Report,
    Taxonomy,
)

ARM_COLORS = {"real": "#d95f02", "random": "#1b9e77", "mutate": "#7570b3"}
Q = 0.05
TOP = 15
EXPOSURE_ROWS = 40


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(ax: Any, rates: Sequence[Rate], groups: Sequence[str], key: str) -> None:
    order = list(ARM_COLORS)
    arms = sorted({r.arm for r in rates}, key=lambda a: (order.index(a) if a in order else 9, a))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        by = {getattr(r, key): r for r in rates if r.arm == arm}
        xs, ps, lo, hi = [], [], [], []
        for j, g in enumerate(groups):
            r = by.get(g)
            if r is None or r.n == 0:
                continue
            xs.append(j + (i - (len(arms) - 1) / 2) * width)
            ps.append(100 * r.p)
            lo.append(max(0.0, 100 * (r.p - r.lo)))
            hi.append(max(0.0, 100 * (r.hi - r.p)))
        ax.bar(xs, ps, width, yerr=[lo, hi], capsize=3, label=arm,
               color=ARM_COLORS.get(arm, "0.6"))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("% failing (95% Wilson CI)")
    ax.legend(fontsize=8)


def rates(rs: Sequence[Rate], path: Path) -> Path:
    """Failure rate per symptom class and arm (Case level), and per target (any failure)."""

    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    pooled = [r for r in rs if r.target == "all"]
    if pooled:
        _bars(left, pooled, CLASS_ORDER, "cls")
        left.set_title("Cases failing, by symptom class (any target)", fontsize=10)
    else:
        _empty(left, "no evaluated Cases")
    per = [r for r in rs if r.target != "all" and r.cls == ANY]
    if per:
        _bars(right, per, sorted({r.target for r in per}), "target")
        right.set_title("verdicts failing, per target", fontsize=10)
    else:
        _empty(right, "no per-target verdicts")
    return _save(fig, path)


def enriched(e: Enriched) -> bool:
    """More frequent among failing units than among passing ones."""
    nf, np_ = e.fail_with + e.fail_without, e.pass_with + e.pass_without
    return e.fail_with * np_ > e.pass_with * nf


def enrichment(rows: Sequence[Enriched], path: Path, title: str) -> Path:
    """Signed -log10(q) of the most significant n-grams (right: enriched in failures)."""
    top = list(rows[:TOP])
    fig = Figure(figsize=(8, 0.9 + 0.32 * max(4, len(top))))
    ax = fig.subplots()
    if not top:
        _empty(ax, "no n-gram with enough support to test")
    else:
        vals = [(1 if enriched(e) else -1) * -math.log10(max(e.q, 1e-300)) for e in top]
        colors = ["0.7" if e.q >= Q else ("#d62728" if v > 0 else "#1f77b4")
                  for e, v in zip(top, vals, strict=True)]
        ys = range(len(top))[::-1]
        ax.barh(list(ys), vals, color=colors)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([e.label for e in top], fontsize=8)
        cut = -math.log10(Q)
        for x in (cut, -cut):
            ax.axvline(x, ls="--", lw=0.8, color="0.3")
        ax.axvline(0, lw=0.8, color="black")
        ax.set_xlabel("−log10(q), signed: > 0 enriched in failures, < 0 depleted "
                      f"(dashed: q = {Q})")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def taxonomy(t: Taxonomy, path: Path) -> Path:
    """Stage x symptom heatmap of raw verdicts (bugs and unsupported)."""
    fig = Figure(figsize=(1.6 + 1.1 * max(3, len(t.symptoms)), 1.4 + 0.55 * max(3, len(t.stages))))
    ax = fig.subplots()
    if not t.counts:
        _empty(ax, "no failing or unsupported verdicts")
    else:
        # A power norm: unsupported verdicts often outnumber bugs a hundredfold.
        vmax = max(max(r) for r in t.counts) or 1
        norm = PowerNorm(0.4, vmin=0, vmax=vmax)
        im = ax.imshow(t.counts, cmap="Reds", aspect="auto", norm=norm)
        for i, row in enumerate(t.counts):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                        color="white" if norm(n) > 0.6 else "black")
        ax.set_xticks(range(len(t.symptoms)))
        ax.set_xticklabels(t.symptoms, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(t.stages)))
        ax.set_yticklabels(t.stages, fontsize=8)
        fig.colorbar(im, ax=ax, label="verdicts")
    ax.set_title("stage × symptom (raw verdicts)", fontsize=10)
    return _save(fig, path)


# ---------------------------------------------------------------------------- formatting

def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or math.isnan(x):
        return "—"
    return "∞" if math.isinf(x) else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    return "—" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")


def pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.1f}%"


def rate_cell(r: Rate) -> str:
    return "—" if r.n == 0 else f"{r.k}/{r.n} = {pct(r.p)} [{pct(r.lo)}, {pct(r.hi)}]"


def conclusion(rep: Report, alpha: float = 0.05) -> str:
    """What the primary test says, in one paragraph, whichever way it falls."""
    c = rep.primary
    if c is None:
        return ("No conclusion: the stores do not hold evaluated Cases of both the `real` and "
                "the `random` arm.")
    text = (f"Real-sequence Cases failed on some target in {pct(c.real.p)} "
            f"({c.real.k}/{c.real.n}), random ones in {pct(c.random.p)} "
            f"({c.random.k}/{c.random.n}): a difference of {100 * c.diff:+.1f} points (95% CI "
            f"{100 * c.diff_lo:+.1f} to {100 * c.diff_hi:+.1f}), Fisher's exact p = "
            f"{fmt_p(c.p)}. ")
    if c.p < alpha:
        text += (f"At α = {alpha} real sequences fail significantly "
                 f"{'more' if c.diff > 0 else 'less'} often than random ones.")
    else:
        text += (f"At α = {alpha} this is no evidence that real sequences fail at a different "
                 "rate than random ones.")
    la = rep.length_adjusted
    if la is not None:
        text += (f" With chain length held fixed (Cochran–Mantel–Haenszel over {la['strata']} "
                 f"lengths): odds ratio {fmt(la['odds_ratio'])}, p = {fmt_p(la['p'])}.")
    for m in rep.sensitivity:
        text += (f" {m.target[0].upper()}{m.target[1:]}: real {pct(m.real.p)} "
                 f"({m.real.k}/{m.real.n}), random {pct(m.random.p)} ({m.random.k}/"
                 f"{m.random.n}), p = {fmt_p(m.p)}.")
    return text


# ---------------------------------------------------------------------------- the report

Block = tuple[Any, ...]  # ("h", level, text) | ("p", text) | ("table", head, rows) | ("img", ...)


def _comparison_rows(comps: Sequence[Comparison]) -> list[list[str]]:
    return [[c.target, c.cls, rate_cell(c.real), rate_cell(c.random),
             f"{100 * c.diff:+.1f} [{100 * c.diff_lo:+.1f}, {100 * c.diff_hi:+.1f}]",
             fmt(c.odds_ratio), fmt_p(c.p)] for c in comps]


def _enrich_table(rows: Sequence[Enriched], with_archs: bool) -> Block:
    head = ["n-gram", "failing with", "passing with", "odds ratio", "p", "q (BH)"]
    head += ["mined archs"] if with_archs else []
    body = []
    for e in rows[:20]:
        nf, np_ = e.fail_with + e.fail_without, e.pass_with + e.pass_without
        r = [e.label, f"{e.fail_with}/{nf}", f"{e.pass_with}/{np_}", fmt(e.odds_ratio),
             fmt_p(e.p), fmt_p(e.q) + (" *" if e.q < Q else "")]
        body.append(r + ([str(e.archs) if e.archs is not None else "—"] if with_archs else []))
    return ("table", head, body)


def _enrich_blocks(rows: list[Enriched], img: str, units: str, with_archs: bool
                   ) -> list[Block]:
    if not rows:
        return [("p", f"No n-gram reached the support needed to test ({units}).")]
    sig = [e for e in rows if e.q < Q]
    up = sum(enriched(e) for e in sig)
    e0 = rows[0]
    nf, np_ = e0.fail_with + e0.fail_without, e0.pass_with + e0.pass_without
    return [("p", f"{len(rows)} n-grams tested over {nf} {units} and {np_} passing raw Cases; "
                  f"{len(sig)} at q < {Q} ({up} enriched in failures, {len(sig) - up} "
                  "depleted). Two-sided Fisher's exact test per n-gram, Benjamini–Hochberg "
                  "over all n-grams tested. The 20 smallest p-values:"),
            ("img", img, "n-gram enrichment"), _enrich_table(rows, with_archs)]


def _arch_blocks(rep: Report) -> list[Block]:
    """Whole architectures (`convfuzz models`) beside the synthetic Cases."""
    a = rep.archs
    b: list[Block] = [("h", 2, "Whole architectures (convfuzz models)")]
    if a is None:
        b.append(("p", "No architecture verdicts in these stores (`convfuzz models`)."))
        return b
    cls = ("correct", "wrong_values", "invalid_model", "crash", "unsupported", "build_failed")
    b += [("p", "Mined architectures built from their tiny configs, converted whole and judged "
                "by the oracle. Failing = wrong values + invalid model + crash, of those torch "
                "built (95% Wilson interval); the paper found ~8% of HuggingFace models "
                "behaving incorrectly after conversion."),
          ("table", ["target", *cls, "failing / built"],
           [[t.target, *(str(t.counts.get(c, 0)) for c in cls),
             f"{t.failing}/{t.built} = {pct(t.share)} [{pct(t.lo)}, {pct(t.hi)}]"]
            for t in a.targets])]
    if a.failures:
        b.append(("table", ["architecture", "target", "class", "stage/symptom", "detail"],
                  [[f["arch"], f["target"], f["class"], f["key"], f["detail"]]
                   for f in a.failures[:EXPOSURE_ROWS]]))
    b.append(("h", 3, "Sequence hypothesis at architecture level"))
    if not a.enrich:
        b.append(("p", f"{len(a.failing)} failing and {len(a.passing)} passing "
                       "architectures: no n-gram reached the support to test (or no seeds)."))
        return b
    sig = [e for e in a.enrich if e.q < Q]
    up = sum(enriched(e) for e in sig)
    b += [("p", f"Do failing architectures share operator sequences that passing ones "
                f"lack? {len(a.failing)} architectures failing on some target against "
                f"{len(a.passing)} converted correctly by every target; their mined "
                f"n-grams (1–3 operators along data flow): {len(a.enrich)} tested, "
                f"{len(sig)} at q < {Q} ({up} enriched in failing architectures). "
                "Fisher's exact test per n-gram, Benjamini–Hochberg. The 20 smallest "
                "p-values:"),
          _enrich_table(a.enrich, False)]
    return b


def blocks(rep: Report, note: str | None, seeds: Path | None) -> list[Block]:

    t = rep.taxonomy
    b: list[Block] = [("h", 1, "convfuzz analysis")]
    if note:
        b.append(("p", note))
    b += [("h", 2, "Conclusion"), ("p", conclusion(rep)),
          ("p", "The primary test (any failure, Case level, real vs random) was fixed in "
                "advance; every other p-value below is exploratory and unadjusted across "
                "classes and targets.")]
    b += [("p", f"Note: {n}") for n in rep.notes]
    b += [("h", 2, "Stores and budget"),
          ("table", ["store", "cases", "verdicts", "wall clock (first→last Case)", "seed",
                     "sampler", "targets", "minimized failures"],
           [[s.path, str(s.cases), str(s.verdicts), f"{s.span_s / 60:.1f} min",
             str(s.config.get("seed", "—")),
             str(s.config.get("source") or s.config.get("sampler") or "—"),
             ", ".join(s.config.get("targets") or []) or "—",
             "no findings table" if s.findings is None else str(s.findings)]
            for s in rep.stores]),
          ("h", 2, "Arms"),
          ("table", ["arm", "Cases", "evaluated", "left out (eager-invalid / harness only)",
                     "mean nodes", "distinct ops", "targets", "fusions/rules fired"],
           [[a, str(d["cases"]), str(d["evaluated"]), str(d["excluded"]), fmt(d["mean_nodes"]),
             str(d["ops"]), ", ".join(d["targets"]), str(len(d.get("fusions") or []))]
            for a, d in rep.arms.items()]),
          ("h", 2, "Failure rates"),
          ("p", "A Case fails a class when a verdict on some target is in it; per-target rows "
                "count verdicts. Classes: wrong values = wrong_values/wrong_shape/wrong_dtype/"
                "nan_inf_mismatch; crash = crash/process_death/hang/out_of_memory; invalid "
                "model; unsupported (an honest \"not implemented\", never a bug). 95% Wilson "
                "intervals; the difference with Newcombe's interval; two-sided Fisher's exact "
                "test."),
          ("img", rep.files.get("rates", ""), "failure rates")]
    if rep.comparisons:
        b.append(("table", ["target", "class", "real", "random", "difference (points)",
                            "odds ratio", "p"],
                  _comparison_rows([*rep.comparisons, *rep.sensitivity])))
        b.append(("p", "The last rows repeat the primary test on subsets: `shared ops only` "
                       "keeps Cases made of operators both arms drew (separating sequences "
                       "from operators); `accepted Cases only` drops Cases every target "
                       "refused as unsupported (a refused Case cannot fail)."))
    others = [r for r in rep.rates if r.arm not in ARMS and r.target == "all"]
    if others:
        b.append(("table", ["arm (not tested)", "class", "rate"],
                  [[r.arm, r.cls, rate_cell(r)] for r in others]))
    if rep.chi2:
        b.append(("p", f"Arm × class (one class per Case: {', '.join(rep.chi2['columns'])}): "
                       f"χ² = {rep.chi2['chi2']:.2f}, dof {rep.chi2['dof']}, "
                       f"p = {fmt_p(rep.chi2['p'])}."))
    else:
        b.append(("p", "Arm × class chi-square: not applicable (expected counts too small, or "
                       "an arm missing); read the per-class Fisher tests."))
    with_archs = seeds is not None
    b += [("h", 2, "N-gram enrichment: raw Cases"),
          ("p", "N-grams (1–3 operators) follow data-flow edges of each Case. Failing = some "
                "verdict is a bug; passing = no bug and at least one pass.")]
    b += _enrich_blocks(rep.enrich_raw, rep.files.get("enrichment", ""), "failing raw Cases",
                        with_archs)
    b.append(("h", 2, "N-gram enrichment: minimized failures"))
    if rep.enrich_min is None:
        b.append(("p", "No minimized failures in this store."))
    else:
        if rep.findings_by_arm:
            b.append(("p", "Distinct minimized failures, by the arms whose Cases reproduce "
                           "them: " + "; ".join(f"{k}: {n}" for k, n in
                                                sorted(rep.findings_by_arm.items())) + "."))
        b.append(("p", "Each minimized failure counts once, against the passing raw Cases. "
                       "Minimized Cases are shorter than the background, so read this as a "
                       "ranking rather than as effect sizes."))
        b += _enrich_blocks(rep.enrich_min, rep.files.get("enrichment_min", ""),
                            "minimized failures", with_archs)
    b.append(("h", 2, "Real-world exposure of minimized failures"))
    if rep.enrich_min is None:
        b.append(("p", "No minimized failures in this store."))
    elif rep.exposure is None:
        b.append(("p", "No mined seeds given (`--seeds seeds/`)."))
    else:
        hit = [e for e in rep.exposure if e.archs]
        by_len: dict[int, list[int]] = {}
        for e in rep.exposure:
            n_ops = max(len(c.split(" → ")) for c in e.chain.split(" | "))
            by_len.setdefault(n_ops, [0, 0])[0] += bool(e.archs)
            by_len[n_ops][1] += 1
        top = EXPOSURE_ROWS
        b += [("p", f"{len(hit)} of {len(rep.exposure)} minimized failures are chains that "
                    "occur in mined real architectures (along data-flow paths; a Case with "
                    "several paths counts where all occur). By longest path: "
                    + "; ".join(f"{n} operator{'s' * (n > 1)}: {k} of {m}"
                                for n, (k, m) in sorted(by_len.items()))
                    + ". A single operator occurring somewhere says little about exposure; "
                    "chains of two or more say more."
                    + (f" The {top} most exposed (all in report.json):"
                       if len(rep.exposure) > top else "")),
              ("table", ["chain", "target", "symptom", "found by", "occurrences", "mined archs",
                         "examples"],
               [[e.chain, e.target, e.symptom or "—", ", ".join(e.arms), str(e.count),
                 "longer than mined n-grams" if e.archs is None else str(e.archs),
                 ", ".join(e.examples)] for e in rep.exposure[:top]])]
    b += _arch_blocks(rep)
    b += [("h", 2, "Taxonomy (stage × symptom)"),
          ("img", rep.files.get("taxonomy", ""), "stage x symptom"),
          ("table", ["stage", *t.symptoms],
           [[s, *map(str, row)] for s, row in zip(t.stages, t.counts, strict=True)]),
          ("p", f"**Different populations.** The paper's shares come from 100 closed, fixed "
                f"torch.onnx issues (Jajal et al., ISSTA 2024), located where the fix went. "
                f"Ours are {t.distinct} {t.unit} of this campaign (plus {t.unsupported} "
                "distinct refusals as unsupported, about one per operator), located at the "
                "stage where the failure surfaced. The last column counts \"not supported\" "
                "refusals as crashes, as an issue tracker would."),
          ("table", ["symptom", "paper (torch.onnx issues)", "campaign (k)", "campaign share",
                     "campaign, unsupported as crash"],
           [[lab, paper, str(k), pct(s), pct(su)] for lab, paper, k, s, su in t.symptom_shares]),
          ("table", ["location / stage", "paper (torch.onnx issues)", "campaign (k)",
                     "campaign share", "campaign, with unsupported"],
           [[lab, paper, str(k), pct(s), pct(su)] for lab, paper, k, s, su in t.stage_shares])]
    return b


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(bs: Sequence[Block], img_dir: Path, rel_to: Path) -> str:
    out = []
    for blk in bs:
        kind = blk[0]
        if kind == "h":
            out.append(f"{'#' * blk[1]} {blk[2]}")
        elif kind == "p":
            out.append(blk[1])
        elif kind == "img" and blk[1]:
            rel = os.path.relpath(img_dir / Path(blk[1]).name, rel_to)
            out.append(f"![{blk[2]}]({Path(rel).as_posix()})")
        elif kind == "table":
            lines = ["| " + " | ".join(map(_md_cell, blk[1])) + " |",
                     "|" + "---|" * len(blk[1])]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in blk[2]]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _inline(s: str) -> str:
    """Escape, then the two markdown marks the report uses: **bold** and `code`."""
    parts = html.escape(s).split("**")
    s = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(bs: Sequence[Block]) -> str:
    out = ["<!doctype html><meta charset='utf-8'><title>convfuzz analysis</title><style>"
           "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
           "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;"
           "padding:2px 6px}img{max-width:100%}</style>"]
    for blk in bs:
        kind = blk[0]
        if kind == "h":
            out.append(f"<h{blk[1]}>{_inline(blk[2])}</h{blk[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline(blk[1])}</p>")
        elif kind == "img" and blk[1]:
            out.append(f"<img src='{html.escape(Path(blk[1]).name)}' "
                       f"alt='{html.escape(blk[2])}'>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in blk[1])
                       + "</tr>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r)
                                           + "</tr>" for r in blk[2]) + "</table>")
    return "\n".join(out) + "\n"


def write_report(rep: Report, out: Path, md_copy: Path | None, note: str | None,
                 seeds: Path | None) -> dict[str, str]:
    bs = blocks(rep, note, seeds)
    files = {"markdown": out / "report.md", "html": out / "report.html",
             "json": out / "report.json"}
    files["markdown"].write_text(markdown(bs, out, out))
    files["html"].write_text(to_html(bs))
    data = {**rep.to_dict(), "conclusion": conclusion(rep)}
    files["json"].write_text(json.dumps(data, ensure_ascii=False) + "\n")
    if md_copy is not None:
        md_copy.parent.mkdir(parents=True, exist_ok=True)
        md_copy.write_text(markdown(bs, out, md_copy.parent))
        files["markdown_copy"] = md_copy
    return {k: str(v) for k, v in files.items()}

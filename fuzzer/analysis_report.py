"""`convfuzz analyze` end to end: compute the statistics (analyze.py), draw them and write the
report (plots.py). Kept apart so that the statistics never import their presentation."""

from __future__ import annotations

from pathlib import Path

from fuzzer import plots
from fuzzer.analyze import Report, compute


def analyze(stores: list[Path], out: Path, seeds: Path | None = None,
            min_support: int = 3, markdown: Path | None = None, note: str | None = None,
            figures: bool = True) -> Report:
    """Compute every statistic of issue 8 over `stores`; write plots (unless `figures` is
    false), report.md, report.html and report.json into `out` (and the markdown also to
    `markdown`, links made relative)."""
    rep = compute(stores, seeds, min_support)
    out.mkdir(parents=True, exist_ok=True)
    if figures:
        rep.files["rates"] = str(plots.rates(rep.rates, out / "rates.png"))
        rep.files["enrichment"] = str(plots.enrichment(
            rep.enrich_raw, out / "enrichment.png", "n-grams in failing vs passing raw Cases"))
        if rep.enrich_min is not None:
            rep.files["enrichment_min"] = str(plots.enrichment(
                rep.enrich_min, out / "enrichment_min.png",
                "n-grams in minimized failures vs passing raw Cases"))
        rep.files["taxonomy"] = str(plots.taxonomy(rep.taxonomy, out / "taxonomy.png"))
    rep.files.update(plots.write_report(rep, out, markdown, note, seeds))
    return rep

"""Case study: the rate-cut and Trump trades in 2023–2024 news, beside IWM−SPY.

    python scripts/case_study_2024.py [--work .cache/case_study] [--out docs]

Ingests the 2023-01…2024-12 articles of ../shared/data/news (IBD's daily "The Big Picture"
column, Barron's and CNN), tags them (themes and entities) with the committed model, loads the
daily prices of ../shared/data/prices (dividend-adjusted closes where available), builds the
narrative index, aligns every theme with its proxies, and writes docs/case-study-2024.md with
its charts and the workbook. Every step is the library's own, as the CLI would run it; the
corpus lives in the work folder, outside git. Re-running reuses what is already ingested and
tagged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from narratives.align import align
from narratives.classifier import MODEL_DIR, ThemeModel
from narratives.entities import EntityLinker
from narratives.export import export_xlsx
from narratives.index import build_index, read_index
from narratives.ingest import ingest
from narratives.kb import load_kb
from narratives.market import load_prices
from narratives.mentions import link_corpus, top_entities
from narratives.store import Corpus
from narratives.tag import tag

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SOURCES = ("ibd_the_big_picture.jsonl", "barrons_barrons_weekly.jsonl", "cnn_2024-07.jsonl")
FIRST, LAST = "2023-01-01", "2025-01-01"
FOCUS = ("rate_cut_trade", "trump_trade")


def select_articles(work: Path) -> dict[str, int]:
    """The 2023–2024 articles of each source, as JSONL the ingester reads."""
    counts = {}
    for name in SOURCES:
        kept = []
        with (SHARED / "news" / name).open(encoding="utf-8") as lines:
            for line in lines:
                article = json.loads(line)
                if FIRST <= str(article.get("published", ""))[:10] < LAST:
                    article.pop("links", None)
                    kept.append(json.dumps(article, ensure_ascii=False))
        (work / name).write_text("\n".join(kept) + "\n", encoding="utf-8")
        counts[name] = len(kept)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "case_study")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"{SHARED} is absent: the case study needs the shared news and prices")
        return 1
    args.work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        timings[name] = round(time.monotonic() - started, 1)
        print(f"{name}: {timings[name]}s", flush=True)

    t = time.monotonic()
    selected = select_articles(args.work)
    corpus = Corpus(args.work / "case_study.db")
    ingested = ingest(corpus, [str(args.work / n) for n in SOURCES], progress=False)
    step("ingest", t)
    t = time.monotonic()
    model = ThemeModel.load(MODEL_DIR)
    tagging = tag(corpus, model, progress=True)
    step("tag themes", t)
    t = time.monotonic()
    linking = link_corpus(corpus, EntityLinker(load_kb(built=None)), progress=True)
    step("link entities", t)
    t = time.monotonic()
    adjusted = SHARED / "prices" / "stocks_daily_adjusted"
    prices = load_prices(
        corpus, [adjusted, SHARED / "prices" / "etf_daily" / "BTC_USD.csv"], replace=True
    )
    step("prices", t)
    t = time.monotonic()
    index = build_index(corpus, half_life=4)
    step("index", t)
    t = time.monotonic()
    charts = args.out / "case_study"
    if charts.exists():
        shutil.rmtree(charts)
    alignment = align(corpus, model.themes, charts=charts)
    step("align", t)
    t = time.monotonic()
    workbook = export_xlsx(corpus, args.work / "case_study_2024.xlsx")
    step("export", t)
    snapshot = render_chart_sheet(
        workbook.path, args.out / "case_study", "Trump trade: index vs IWM"
    )
    # A re-run only does new work; the report keeps the timings of the run that did it all.
    saved = args.work / "timings.json"
    if tagging.articles or not saved.exists():
        saved.write_text(json.dumps(timings))
    timings = json.loads(saved.read_text())
    report = write_report(
        corpus, args.out / "case-study-2024.md", selected, ingested, tagging, linking, prices,
        index, alignment, workbook, timings, snapshot,
    )  # fmt: skip
    print(f"wrote {report}")
    return 0


def render_chart_sheet(workbook: Path, out: Path, title: str) -> Path | None:
    """The workbook through LibreOffice (headless, to PDF then PNG): the page showing `title`."""
    if not (shutil.which("soffice") and shutil.which("pdftotext") and shutil.which("pdftoppm")):
        print("LibreOffice or poppler-utils missing: no workbook snapshot")
        return None
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_workbook import check_workbook

    with tempfile.TemporaryDirectory() as tmp:
        rendering = check_workbook(workbook, Path(tmp), pngs=False)
        for page in range(1, rendering.pages + 1):
            text = subprocess.run(
                ["pdftotext", "-f", str(page), "-l", str(page), str(rendering.pdf), "-"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            if title in text:
                target = out / "workbook_chart_sheet"
                subprocess.run(
                    ["pdftoppm", "-f", str(page), "-l", str(page), "-r", "80", "-png",
                     "-singlefile", str(rendering.pdf), str(target)],
                    check=True,
                )  # fmt: skip
                return target.with_suffix(".png")
    return None


def write_report(corpus, path, selected, ingested, tagging, linking, prices, index, alignment,
                 workbook, timings, snapshot) -> Path:  # fmt: skip
    per_publisher = corpus.db.execute(
        "SELECT publisher, COUNT(*) FROM articles GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    paragraphs = corpus.count("paragraphs")
    mentions = corpus.count("mentions")
    weekly = read_index(corpus, freq="W")
    monthly = read_index(corpus, freq="M")
    lines = [
        "# Case study: narratives in 2023–2024 news",
        "",
        "Made by `python scripts/case_study_2024.py` (needs `../shared/data`). Every number below "
        "comes from that run; nothing is edited by hand.",
        "",
        "## The data",
        "",
        "| source | articles 2023–2024 |",
        "|---|---:|",
        *[f"| {name} | {n:,} |" for name, n in selected.items()],
        "",
        "The corpus holds "
        + ", ".join(f"{n:,} {publisher}" for publisher, n in per_publisher)
        + f" articles ({paragraphs:,} paragraphs, all tagged; {mentions:,} entity mentions). "
        "CNN's file repeats many texts and gives every row the same URL, so the ingester keeps "
        "one article per distinct story (keyed by source id and content). Prices: "
        f"{', '.join(sorted(prices.tickers))} (dividend-adjusted closes, 2020-07…2025-04; "
        "bitcoin from the daily file). Timings of the full run on this 2-core machine: "
        + ", ".join(f"{k} {v}s" for k, v in timings.items())
        + ".",
        "",
        "The sources are uneven: IBD's column runs every trading day of both years, CNN covers "
        "only 2024-07-16…08-01 (all sections, most not about markets) and Barron's only "
        "2024-11…12. The index averages publishers' standardised shares, so CNN's burst of "
        "volume does not swamp IBD, but the weeks those sources cover rest on more voices.",
        "",
        "## Where the narratives peak",
        "",
    ]
    for theme in FOCUS:
        rows = weekly[weekly["theme"] == theme].dropna(subset=["value"])
        top = rows.nlargest(5, "value")
        lines += [
            f"**{theme}**, five loudest weeks (weekly index, mean 100):",
            "",
            "| week of | index | smoothed | articles carrying | articles |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {r.period} | {r.value:.0f} | {r.smoothed:.0f} | {r.carrying} | {r.articles} |"
                for r in top.itertuples()
            ],
            "",
        ]
        names = top_entities(corpus, theme, since=FIRST, until=LAST, limit=8)
        lines.append(
            "Names most often in its articles: "
            + ", ".join(f"{n.ticker or n.name} ({n.articles})" for n in names)
            + "."
        )
        lines.append("")
    lines += [
        "Monthly index of both:",
        "",
        "| month | " + " | ".join(FOCUS) + " |",
        "|---|" + "---:|" * len(FOCUS),
    ]
    pivot = monthly[monthly["theme"].isin(FOCUS)].pivot(
        index="period", columns="theme", values="value"
    )
    for period, row in pivot.iterrows():
        lines.append(f"| {period[:7]} | " + " | ".join(_fmt(row.get(t)) for t in FOCUS) + " |")
    lines += ["", "## Alignment with returns", ""]
    lines += [
        "Lead–lag: correlation of the daily index's change with returns `lag` sessions later "
        "(lag > 0: the narrative moves first). Granger: F-tests at 1–5 lags both ways, "
        "Benjamini–Hochberg across all "
        f"{sum(len(p.granger) for p in alignment.pairs)} tests of the run. Event study: mean "
        "cumulative return 5 sessions after top-decile index days, 95% interval.",
        "",
        "| theme | asset | sessions | best lag | r | r at lag +1 | CAR +5 after spikes | "
        "Granger significant (q < 0.05) |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for pair in alignment.pairs:
        lag, corr = pair.best_lag
        at1 = pair.leadlag.set_index("lag")["correlation"].get(1)
        events = pair.events.set_index("offset")
        car = (
            f"{events.loc[5, 'mean_car']:+.2%} [{events.loc[5, 'ci_low']:+.2%}, "
            f"{events.loc[5, 'ci_high']:+.2%}], n={int(events.loc[5, 'events'])}"
            if 5 in events.index
            else "-"
        )
        significant = [
            f"{r.direction} {r.lags}"
            for r in pair.granger.itertuples()
            if getattr(r, "significant", 0)
        ]
        lines.append(
            f"| {pair.theme} | {pair.asset} | {pair.sessions} | {lag:+d} | {corr:+.2f} | "
            f"{_fmt(at1, '+.2f')} | {car} | {', '.join(significant) or 'none'} |"
        )
    where = str(corpus.path) if hasattr(corpus, "path") else ""
    lines += [f"- skipped {s.replace(where, 'the case-study corpus')}" for s in alignment.skipped]
    lines += ["", "## What the data shows", "", *reading(alignment, weekly)]
    lines += ["", "## Charts", ""]
    for chart in alignment.charts:
        if any(theme in chart.name for theme in FOCUS):
            lines += [f"![{chart.stem}](case_study/{chart.name})", ""]
    lines += [
        "## Workbook",
        "",
        f"`narratives export` wrote {len(workbook.sheets)} sheets and {workbook.charts} native "
        f"charts to {workbook.path.name} (kept out of git, in the work folder).",
        "",
    ]
    if snapshot:
        lines += [
            "One chart sheet as LibreOffice renders it (headless, converted to PDF, page to PNG):",
            "",
            f"![workbook chart sheet](case_study/{snapshot.name})",
            "",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reading(alignment, weekly) -> list[str]:
    """Plain statements computed from the results, so the report cannot overstate them."""
    pairs = alignment.pairs
    significant = [
        f"{p.theme}/{p.asset} {r.direction} at {r.lags} lags"
        for p in pairs
        for r in p.granger.itertuples()
        if getattr(r, "significant", 0)
    ]
    strongest = max(pairs, key=lambda p: abs(p.best_lag[1]))
    lag, corr = strongest.best_lag
    clear = []
    for p in pairs:
        events = p.events.set_index("offset")
        if 5 in events.index and (events.loc[5, "ci_low"] > 0 or events.loc[5, "ci_high"] < 0):
            clear.append(f"{p.theme}/{p.asset} ({events.loc[5, 'mean_car']:+.2%})")
    lines = [
        f"- Granger tests surviving Benjamini–Hochberg (q < 0.05): "
        f"{', '.join(significant) if significant else 'none'} of "
        f"{sum(len(p.granger) for p in pairs)}.",
        f"- The strongest lead–lag correlation of any pair is r = {corr:+.2f} "
        f"({strongest.theme}/{strongest.asset} at lag {lag:+d}); every |r| is at most "
        f"{max(abs(p.best_lag[1]) for p in pairs):.2f}, the size chance alone gives over 21 "
        "lags and ~500 sessions.",
        f"- Event studies whose 5-session interval excludes zero: "
        f"{', '.join(clear) if clear else 'none'} of {len(pairs)} (chance alone gives about "
        f"{0.05 * len(pairs):.1f}; the intervals ignore overlapping events and autocorrelation, "
        "so read them as descriptive).",
    ]
    for theme in FOCUS:
        rows = weekly[(weekly["theme"] == theme)].dropna(subset=["value"])
        top = rows.nlargest(2, "value")
        lines.append(
            f"- {theme} is loudest in the weeks of "
            + " and ".join(f"{r.period} ({r.value:.0f})" for r in top.itertuples())
            + "."
        )
    return lines


def _fmt(value: object, spec: str = ".0f") -> str:
    if value is None or pd.isna(value):
        return "–"
    return format(float(value), spec)


if __name__ == "__main__":
    sys.exit(main())

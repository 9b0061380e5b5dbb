"""The spreadsheet and CSV export: sheets, charts, gaps, formula-safe text, missing tables."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from narratives.export import EXCEL_CELL_CHARS, ExportError, csv_cell, export_csv, export_xlsx
from narratives.mentions import MENTIONS_SCHEMA
from narratives.records import Article, DateSource, Obtained
from narratives.store import Corpus
from narratives.tag import TAG_SCHEMA

from conftest import load_script

THEMES = {
    "rate_cut_trade": ("Rate-cut trade", ["IWM−SPY", "TLT"]),
    "ai_bubble": ("AI bubble", ["NVDA"]),
}
EVIL_TITLE = '=HYPERLINK("http://evil")'
EVIL_PUBLISHER = "@SUM(1+1)"
EVIL_PARAGRAPH = "+cmd|' /C calc'!A0 says rates will fall"
EVIL_ENTITY = "-Evil Corp"
ALIGNMENT_SCHEMA = """
CREATE TABLE alignment_leadlag (theme TEXT, asset TEXT, lag INTEGER, correlation REAL, n INTEGER);
CREATE TABLE alignment_granger (theme TEXT, asset TEXT, direction TEXT, lags INTEGER,
    f_stat REAL, p_value REAL, q_value REAL, significant INTEGER);
CREATE TABLE alignment_events (theme TEXT, asset TEXT, offset INTEGER, mean_car REAL,
    ci_low REAL, ci_high REAL, events INTEGER);
CREATE TABLE alignment_series (theme TEXT, asset TEXT, date TEXT, value REAL, cum_return REAL)
"""
INDEX_SCHEMA = """
CREATE TABLE narrative_index (
    theme TEXT NOT NULL, freq TEXT NOT NULL, period TEXT NOT NULL, articles INTEGER NOT NULL,
    carrying INTEGER NOT NULL, share REAL, value REAL, smoothed REAL, sources INTEGER NOT NULL,
    PRIMARY KEY (theme, freq, period));
CREATE TABLE index_meta (key TEXT PRIMARY KEY, value TEXT)
"""


def sessions(count: int, start: date = date(2024, 1, 2)) -> list[date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def build_corpus(
    path: Path,
    *,
    days: int = 250,
    alignment: bool = True,
    mentions: bool = True,
    index: bool = True,
) -> Corpus:
    """A corpus as `narratives index` and `align` leave it, with synthetic but realistic data."""
    rng = np.random.default_rng(7)
    corpus = Corpus(path)
    corpus.apply_schema(TAG_SCHEMA)
    for theme, (name, proxies) in THEMES.items():
        corpus.db.execute(
            "INSERT INTO themes VALUES (?, ?, ?, 'trained', 0.5, ?)",
            [theme, name, f"Stories about the {name.lower()}.", json.dumps(proxies)],
        )
    calendar = sessions(days)
    _articles(corpus, calendar)
    if mentions:
        _mentions(corpus)
    if index:
        _index(corpus, calendar, rng)
    if alignment:
        _alignment(corpus, calendar, rng)
    return corpus


def _articles(corpus: Corpus, calendar: list[date]) -> None:
    for i, day in enumerate(calendar[::5]):
        evidence = "x" * 40_000 if i == 1 else f"Paragraph {i} on rate cuts and AI capex."
        title = EVIL_TITLE if i == 0 else f"Markets story {i}"
        text = f"{EVIL_PARAGRAPH if i == 0 else evidence}\n\nA second paragraph, number {i}."
        published = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
        corpus.save(
            Article(
                title=title,
                text=text,
                published=published,
                date_source=DateSource.ARTICLE,
                fetched_at=published,
                obtained=Obtained.PAGE,
                source="test",
                url=f"https://news.example/{i}",
                publisher=EVIL_PUBLISHER if i == 0 else "Example News",
            )
        )
    for (article_id,) in corpus.db.execute("SELECT id FROM articles").fetchall():
        for k, theme in enumerate(THEMES):
            carries = int((article_id + k) % 2 == 0 or article_id == 1)
            corpus.db.execute(
                "INSERT INTO article_themes VALUES (?, ?, ?, ?, 1, 2)",
                [article_id, theme, 0.9 if carries else 0.1, carries],
            )
            corpus.db.execute(
                "INSERT INTO theme_evidence VALUES (?, ?, 1, 0, ?)",
                [article_id, theme, 0.9 if carries else 0.1],
            )


def _mentions(corpus: Corpus) -> None:
    corpus.apply_schema(MENTIONS_SCHEMA)
    entities = [("nvda", "company", "NVIDIA", "NVDA"), ("evil", "company", EVIL_ENTITY, None)]
    for entity in entities:
        corpus.db.execute(
            "INSERT INTO entities VALUES (?, ?, ?, ?, NULL, NULL, 'kb', NULL)", entity
        )
    for (article_id,) in corpus.db.execute("SELECT id FROM articles").fetchall():
        for start, entity in enumerate(["nvda", "nvda", "evil"] if article_id % 3 else ["evil"]):
            corpus.db.execute(
                "INSERT INTO mentions VALUES (?, 0, ?, ?, 'x', ?, 0.9, NULL, NULL)",
                [article_id, start, start + 1, entity],
            )


def _index(corpus: Corpus, calendar: list[date], rng: np.random.Generator) -> None:
    corpus.apply_schema(INDEX_SCHEMA)
    rows = []
    for theme in THEMES:
        level = 100 + np.cumsum(rng.normal(0, 2, len(calendar)))
        for i, day in enumerate(calendar):
            gap = i % 37 == 10  # a day without articles: no value, not a zero
            value = None if gap else float(level[i])
            smoothed = None if gap else float(level[max(0, i - 3) : i + 1].mean())
            articles = 0 if gap else 20 + i % 7
            rows.append((theme, "D", day.isoformat(), articles, 0 if gap else 5, 0.2, value,
                         smoothed, 3))  # fmt: skip
        for week in sorted({d - timedelta(days=d.weekday()) for d in calendar}):
            rows.append((theme, "W", week.isoformat(), 120, 30, 0.25, 100.0, 100.0, 3))
    corpus.db.conn.executemany(
        "INSERT INTO narrative_index VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
    )
    corpus.db.conn.executemany(
        "INSERT INTO index_meta VALUES (?, ?)",
        [("method", "Probability-weighted share of articles, scaled to mean 100."),
         ("half_life", "5"), ("sources", "3"), ("built_at", "2025-01-01T00:00:00Z")],
    )  # fmt: skip


def _alignment(corpus: Corpus, calendar: list[date], rng: np.random.Generator) -> None:
    corpus.apply_schema(ALIGNMENT_SCHEMA)
    pairs = [(theme, asset) for theme, (_, proxies) in THEMES.items() for asset in proxies]
    ins = corpus.db.conn.executemany
    for theme, asset in pairs:
        ins(
            "INSERT INTO alignment_leadlag VALUES (?, ?, ?, ?, ?)",
            [(theme, asset, lag, float(rng.normal(0, 0.1)), 240) for lag in range(-5, 6)],
        )
        ins(
            "INSERT INTO alignment_granger VALUES (?, ?, ?, 5, ?, ?, ?, ?)",
            [
                (theme, asset, "index→returns", 4.2, 0.001, 0.004, 1),
                (theme, asset, "returns→index", 0.9, 0.48, 0.61, 0),
            ],
        )
        ins(
            "INSERT INTO alignment_events VALUES (?, ?, ?, ?, ?, ?, 25)",
            [(theme, asset, o, -0.002 * o, -0.01 * abs(o) - 0.01, 0.01) for o in range(-5, 11)],
        )
        level = 100 + np.cumsum(rng.normal(0, 2, len(calendar)))
        cum = np.cumprod(1 + rng.normal(0.0005, 0.01, len(calendar))) - 1
        ins(
            "INSERT INTO alignment_series VALUES (?, ?, ?, ?, ?)",
            [
                (theme, asset, day.isoformat(), None if i % 37 == 10 else float(level[i]),
                 float(cum[i]))
                for i, day in enumerate(calendar)
            ],
        )  # fmt: skip


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    with build_corpus(tmp_path / "corpus.db") as c:
        yield c


def read_workbook(path: Path):
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl reads workbooks back in tests")
    return openpyxl.load_workbook(path)


@pytest.fixture
def workbook(corpus: Corpus, tmp_path: Path):
    export_xlsx(corpus, tmp_path / "out.xlsx")
    return read_workbook(tmp_path / "out.xlsx")


def test_workbook_has_every_sheet_and_a_chart_sheet_per_theme_and_proxy(
    corpus: Corpus, tmp_path: Path
) -> None:
    summary = export_xlsx(corpus, tmp_path / "out.xlsx")
    book = read_workbook(tmp_path / "out.xlsx")
    expected = ["About", "Index daily", "Index weekly", "Lead-lag", "Granger", "Events",
                "Top entities", "Articles"]  # fmt: skip
    assert book.sheetnames[: len(expected)] == expected
    charts = [s.title for s in book.chartsheets]
    assert charts == ["ai_bubble vs NVDA", "rate_cut_trade vs IWM−SPY", "rate_cut_trade vs TLT"]
    assert summary.charts == 3
    assert book["Chart data"].sheet_state == "hidden"
    assert summary.sheets["Index daily"] == 250
    assert summary.sheets["Articles"] == 50
    assert summary.skipped == []


def test_index_sheet_has_real_dates_and_gaps_stay_empty(workbook) -> None:
    sheet = workbook["Index daily"]
    header = [c.value for c in sheet[1]]
    assert header == ["period", "ai_bubble value", "ai_bubble smoothed", "ai_bubble carrying",
                      "rate_cut_trade value", "rate_cut_trade smoothed",
                      "rate_cut_trade carrying", "articles"]  # fmt: skip
    first = sheet["A2"]
    assert first.value == datetime(2024, 1, 2) and first.number_format == "yyyy-mm-dd"
    gap = [c.value for c in sheet[2 + 10]]  # the first day without articles: session 10
    assert gap == [datetime(2024, 1, 16), None, None, 0, None, None, 0, 0]
    assert isinstance(sheet["B13"].value, float)
    assert sheet.freeze_panes == "B2"
    assert sheet.auto_filter.ref == "A1:H251"


def test_corpus_text_that_looks_like_a_formula_stays_text(workbook) -> None:
    articles = workbook["Articles"]
    header = [c.value for c in articles[1]]
    last = articles.max_row  # the first article is the oldest: newest first puts it last
    row = {h: articles.cell(row=last, column=i + 1) for i, h in enumerate(header)}
    assert row["title"].value == EVIL_TITLE and row["title"].data_type == "s"
    assert row["source"].value == EVIL_PUBLISHER and row["source"].data_type == "s"
    evidence = row["rate_cut_trade evidence"]
    assert evidence.value == EVIL_PARAGRAPH and evidence.data_type == "s"
    names = [c for c in workbook["Top entities"]["D"] if c.value == EVIL_ENTITY]
    assert names and all(c.data_type == "s" for c in names)
    for sheet in workbook.worksheets:
        assert not [c for r in sheet.iter_rows() for c in r if c.data_type == "f"], sheet.title


def test_urls_are_hyperlinks_that_show_the_url_as_text(workbook) -> None:
    articles = workbook["Articles"]
    cell = articles.cell(row=articles.max_row, column=4)
    assert cell.value == "https://news.example/0" and cell.data_type == "s"
    assert cell.hyperlink.target == "https://news.example/0"


def test_articles_are_newest_first_and_long_evidence_is_clipped(workbook) -> None:
    articles = workbook["Articles"]
    dates = [c.value for c in articles["A"][1:]]
    assert dates == sorted(dates, reverse=True)
    long = [c.value for r in articles.iter_rows() for c in r if len(str(c.value)) > 1000]
    assert long and len(long[0]) == EXCEL_CELL_CHARS and long[0].endswith("…")


def test_about_sheet_describes_method_and_themes(workbook) -> None:
    values = [c.value for row in workbook["About"].iter_rows() for c in row if c.value]
    assert "Probability-weighted share of articles, scaled to mean 100." in values
    assert "Rate-cut trade" in values and "IWM−SPY, TLT" in values
    assert "Lead-lag" in values


def test_chart_is_a_dual_axis_dated_line_with_gaps(corpus: Corpus, tmp_path: Path) -> None:
    export_xlsx(corpus, tmp_path / "out.xlsx")
    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:
        chart = z.read("xl/charts/chart1.xml").decode()
    # XlsxWriter leaves out dispBlanksAs for "gap", which Excel and LibreOffice then assume.
    assert re.findall(r'<c:dispBlanksAs val="(\w+)"', chart) in ([], ["gap"])
    assert "<c:dateAx>" in chart and chart.count("<c:valAx>") == 2
    assert chart.count("<c:ser>") == 2 and 'formatCode="0%"' in chart
    assert "AI bubble: index vs NVDA cumulative return" in chart


def test_lead_lag_sheet_is_lags_by_theme_and_asset(workbook) -> None:
    sheet = workbook["Lead-lag"]
    assert sheet["A1"].value == "lag" and sheet["B1"].value == "ai_bubble / NVDA (n=240)"
    assert [c.value for c in sheet["A"][1:]] == list(range(-5, 6))


def test_top_entities_are_ranked_per_theme_and_month(workbook) -> None:
    sheet = workbook["Top entities"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert {r[1] for r in rows} >= {"2024-01", "2024-06"}
    january = [r for r in rows if r[0] == "rate_cut_trade" and r[1] == "2024-01"]
    assert [r[2] for r in january] == list(range(1, len(january) + 1))
    # January: articles 1, 2 and 4 carry the theme; each names NVIDIA twice, the other once
    assert january[0][3:] == ["NVIDIA", "NVDA", "company", 3, 6]
    assert january[1][3:] == [EVIL_ENTITY, None, "company", 3, 3]


def test_export_without_alignment_or_mentions_skips_them_and_says_so(tmp_path: Path) -> None:
    with build_corpus(tmp_path / "c.db", alignment=False, mentions=False, days=30) as corpus:
        summary = export_xlsx(corpus, tmp_path / "out.xlsx")
        files = export_csv(corpus, tmp_path / "csv")
    book = read_workbook(tmp_path / "out.xlsx")
    assert book.sheetnames == ["About", "Index daily", "Index weekly", "Articles"]
    assert summary.charts == 0
    assert any("alignment_leadlag" in s for s in summary.skipped)
    assert any("mentions" in s for s in summary.skipped)
    assert any("alignment_series" in s for s in summary.skipped)
    assert set(files.sheets) == {"index_daily.csv", "index_weekly.csv", "articles.csv",
                                 "themes.csv"}  # fmt: skip


def test_export_without_an_index_asks_to_run_index_first(tmp_path: Path) -> None:
    with build_corpus(tmp_path / "c.db", index=False, days=10) as corpus:
        with pytest.raises(ExportError, match="run `narratives index` first"):
            export_xlsx(corpus, tmp_path / "out.xlsx")
        with pytest.raises(ExportError, match="run `narratives index` first"):
            export_csv(corpus, tmp_path / "csv")


def test_unknown_theme_is_an_error_that_lists_the_indexed_themes(corpus, tmp_path) -> None:
    with pytest.raises(ExportError, match="indexed themes: ai_bubble, rate_cut_trade"):
        export_xlsx(corpus, tmp_path / "out.xlsx", themes=["moon_shot"])


def test_themes_and_dates_narrow_the_export(corpus: Corpus, tmp_path: Path) -> None:
    summary = export_xlsx(
        corpus, tmp_path / "out.xlsx", themes=["ai_bubble"], since="2024-03-01", until="2024-04-01"
    )
    book = read_workbook(tmp_path / "out.xlsx")
    periods = [c.value for c in book["Index daily"]["A"][1:]]
    assert periods[0] == datetime(2024, 3, 1) and periods[-1] == datetime(2024, 3, 29)
    assert "rate_cut_trade value" not in [c.value for c in book["Index daily"][1]]
    assert [s.title for s in book.chartsheets] == ["ai_bubble vs NVDA"]
    assert {c.value for c in book["Top entities"]["B"][1:]} == {"2024-03"}
    assert summary.sheets["Articles"] == len([c for c in book["Articles"]["A"][1:]])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-Evil Corp", "'-Evil Corp"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.25", "-0.25"),
        ("+3e-5", "+3e-5"),
        (-0.25, -0.25),
        ("plain text", "plain text"),
        (None, None),
    ],
)
def test_csv_cell_quotes_formula_text_but_not_numbers(value: object, expected: object) -> None:
    assert csv_cell(value) == expected


def test_csv_files_are_utf8_with_bom_and_formula_safe(corpus: Corpus, tmp_path: Path) -> None:
    summary = export_csv(corpus, tmp_path / "csv")
    names = {"index_daily.csv", "index_weekly.csv", "leadlag.csv", "granger.csv", "events.csv",
             "top_entities.csv", "articles.csv", "themes.csv"}  # fmt: skip
    assert names <= set(summary.sheets)
    raw = (tmp_path / "csv" / "articles.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "csv" / "articles.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    evil = rows[-1]
    assert evil["title"] == "'" + EVIL_TITLE and evil["source"] == "'" + EVIL_PUBLISHER
    assert evil["rate_cut_trade evidence"] == "'" + EVIL_PARAGRAPH
    with open(tmp_path / "csv" / "events.csv", encoding="utf-8-sig", newline="") as f:
        events = list(csv.DictReader(f))
    assert float(events[-1]["mean_car"]) < 0 and not events[-1]["mean_car"].startswith("'")
    with open(tmp_path / "csv" / "leadlag.csv", encoding="utf-8-sig", newline="") as f:
        assert next(csv.reader(f)) == ["theme", "asset", "lag", "correlation", "n"]
    with open(tmp_path / "csv" / "index_daily.csv", encoding="utf-8-sig", newline="") as f:
        daily = list(csv.DictReader(f))
    assert len(daily) == 250 and daily[10]["ai_bubble value"] == ""
    assert not math.isnan(float(daily[0]["ai_bubble value"]))


def test_workbook_opens_in_libreoffice(corpus: Corpus, tmp_path: Path) -> None:
    if not shutil.which("soffice"):
        pytest.skip("LibreOffice (soffice) is not on PATH: apt-get install libreoffice-calc")
    export_xlsx(corpus, tmp_path / "out.xlsx", themes=["ai_bubble"], since="2024-06-01")
    check = load_script("check_workbook")
    result = check.check_workbook(tmp_path / "out.xlsx", tmp_path / "pages", pngs=False)
    assert result.pdf.exists() and result.pages >= 2


def test_chart_sheet_names_are_legal_and_unique(corpus: Corpus, tmp_path: Path) -> None:
    for asset in ["A_VERY_LONG_SPREAD_LABEL−SPY/X", "A_VERY_LONG_SPREAD_LABEL−SPY/Y"]:
        corpus.db.execute(
            "INSERT INTO alignment_series VALUES ('rate_cut_trade', ?, '2024-01-02', 100, 0)",
            [asset],
        )
    summary = export_xlsx(corpus, tmp_path / "out.xlsx")
    names = [s.title for s in read_workbook(tmp_path / "out.xlsx").chartsheets]
    assert summary.charts == len(names) == 5 and len(set(names)) == 5
    assert all(len(n) <= 31 and "/" not in n for n in names)


def test_each_chart_plots_its_own_theme_and_proxy(corpus: Corpus, tmp_path: Path) -> None:
    export_xlsx(corpus, tmp_path / "out.xlsx")
    data = read_workbook(tmp_path / "out.xlsx")["Chart data"]
    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:
        charts = [z.read(f"xl/charts/chart{i}.xml").decode() for i in (1, 2, 3)]
    for chart, (name, asset) in zip(
        charts,
        [("AI bubble", "NVDA"), ("Rate-cut trade", "IWM−SPY"), ("Rate-cut trade", "TLT")],
        strict=True,
    ):
        assert f"{name}: index vs {asset} cumulative return" in chart
        names = re.findall(r"<c:tx><c:strRef><c:f>'Chart data'!\$(\w+)\$1</c:f>", chart)
        assert [data[f"{col}1"].value for col in names] == [
            f"{name} index (10-session mean)",
            f"{asset} cumulative return",
        ]
        values = re.findall(r"<c:val><c:numRef><c:f>'Chart data'!\$(\w+)\$2:\$\w+\$251", chart)
        assert values == names
        assert data[f"{values[1]}2"].value is not None


def test_unwritable_workbook_path_is_an_export_error(corpus: Corpus, tmp_path: Path) -> None:
    (tmp_path / "taken.xlsx").mkdir()
    with pytest.raises(ExportError, match="Cannot write"):
        export_xlsx(corpus, tmp_path / "taken.xlsx")

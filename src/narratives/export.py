"""Exporting narrative indices, alignment results, top entities and articles to Excel and CSV."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import xlsxwriter
from xlsxwriter.exceptions import XlsxFileError
from xlsxwriter.worksheet import Worksheet

from narratives import __version__
from narratives.dates import iso, utc_now
from narratives.errors import NarrativesError
from narratives.mentions import top_entities
from narratives.store import Corpus
from narratives.text import clip

TREND_SESSIONS = 10  # the charts' index is its mean over this many sessions
EXCEL_CELL_CHARS = 32_767
EXCEL_URL_CHARS = 2_079
EXCEL_LINKS = 65_530  # hyperlinks per worksheet
EXCEL_ROWS = 1_048_576
# A spreadsheet reads a cell starting with these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
FREQ_SHEETS = {
    "D": ("Index daily", "index_daily.csv"),
    "W": ("Index weekly", "index_weekly.csv"),
    "M": ("Index monthly", "index_monthly.csv"),
}
NUM_FORMATS = {"date": "yyyy-mm-dd", "int": "0", "index": "0.0", "num": "0.000", "pct": "0.0%"}
NUM_FORMATS["p"] = "General"  # p-values run to 1e-9: fixed decimals would show 0.000


class ExportError(NarrativesError):
    """The corpus holds nothing to export yet, or the export cannot be written."""


@dataclass
class ExportSummary:
    """What an export wrote: sheets (or CSV files) with their data rows, charts, and what not."""

    path: Path
    sheets: dict[str, int] = field(default_factory=dict)
    charts: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text, url, or a key of NUM_FORMATS
    width: int = 50  # the widest the column grows in the workbook


def columns(*specs: str | Column) -> list[Column]:
    """Columns from "name" or "name:kind" specs (or Column objects, passed through)."""
    return [s if isinstance(s, Column) else Column(*s.split(":")) for s in specs]


@dataclass
class Table:
    """One exported table: a sheet in the workbook and a file in the CSV directory."""

    sheet: str
    filename: str
    about: str  # its line in the About sheet
    columns: list[Column]
    rows: list[tuple]
    highlight: str | None = None  # a yes/no column whose "yes" rows are highlighted


@dataclass(frozen=True)
class Selection:
    """Which themes and which dates [since, until) an export covers."""

    themes: list[str]
    names: dict[str, str]
    since: str | None
    until: str | None

    def where(self, theme: str, day: str | None = None) -> tuple[str, list[object]]:
        """SQL conditions, each after an AND, keeping `theme` selected and `day` in bounds."""
        sql = f" AND {theme} IN ({','.join('?' for _ in self.themes)})"
        params: list[object] = list(self.themes)
        if day and self.since:
            sql, params = f"{sql} AND {day} >= ?", [*params, self.since]
        if day and self.until:
            sql, params = f"{sql} AND {day} < ?", [*params, self.until]
        return sql, params


# -- reading -------------------------------------------------------------------------------------


def select(
    corpus: Corpus,
    themes: Sequence[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
) -> Selection:
    """The export's themes and dates, checked against the narrative index."""
    db = corpus.db
    if not db["narrative_index"].exists() or not db["narrative_index"].count:
        raise ExportError(f"No narrative index in {corpus.path} — run `narratives index` first")
    indexed = [r[0] for r in db.execute("SELECT DISTINCT theme FROM narrative_index ORDER BY 1")]
    names = dict(
        db.execute("SELECT id, name FROM themes").fetchall() if db["themes"].exists() else []
    )
    chosen = list(dict.fromkeys(themes)) if themes else indexed
    if unknown := [t for t in chosen if t not in indexed]:
        raise ExportError(
            f"No index for theme(s) {', '.join(unknown)}; indexed themes: {', '.join(indexed)}"
        )
    return Selection(
        themes=chosen,
        names={t: names.get(t) or t for t in chosen},
        since=str(since)[:10] if since else None,
        until=str(until)[:10] if until else None,
    )


def index_table(corpus: Corpus, sel: Selection, freq: str) -> Table | None:
    """The index at one frequency: a row per period, value/smoothed/carrying per theme."""
    where, params = sel.where("theme", "period")
    found = corpus.db.execute(
        "SELECT period, theme, value, smoothed, carrying, articles FROM narrative_index "
        f"WHERE freq = ?{where} ORDER BY period",
        [freq, *params],
    ).fetchall()
    if not found:
        return None
    by_period: dict[str, dict[str, tuple]] = {}
    volume: dict[str, int] = {}
    for period, theme, value, smoothed, carrying, articles in found:
        by_period.setdefault(period, {})[theme] = (value, smoothed, carrying)
        volume[period] = max(volume.get(period, 0), articles)
    per_theme = [s for t in sel.themes for s in (f"{t} value:index", f"{t} smoothed:index",
                                                 f"{t} carrying:int")]  # fmt: skip
    gap = (None, None, None)
    rows = [
        (period, *(v for t in sel.themes for v in values.get(t, gap)), volume[period])
        for period, values in by_period.items()
    ]
    sheet, filename = FREQ_SHEETS[freq]
    about = (
        f"The {sheet.split()[1]} index per theme (mean 100; empty = no articles that period), "
        "its smoothed value, articles carrying the theme, and all articles (volume)."
    )
    return Table(sheet, filename, about, columns("period:date", *per_theme, "articles:int"), rows)


def themes_table(corpus: Corpus, sel: Selection) -> Table:
    rows: list[tuple] = []
    if corpus.db["themes"].exists():
        sql = "SELECT id, name, description, method, threshold, proxies FROM themes"
        found = {r[0]: r for r in corpus.db.execute(sql)}
        for *head, proxies in (found[t] for t in sel.themes if t in found):
            rows.append((*head, ", ".join(json.loads(proxies or "[]"))))
    specs = columns("id", "name", "description", "method", "threshold:num", "proxies")
    return Table("Themes", "themes.csv", "What each theme means and how it is scored.", specs, rows)


def _alignment(corpus: Corpus, sel: Selection, table: str, sql: str) -> list[tuple] | None:
    """Rows of an alignment table for the selected themes, or None when `align` has not run."""
    if not corpus.db[table].exists():
        return None
    where, params = sel.where("theme")
    sql = sql.format(table=table, where=f"WHERE 1 = 1{where}")
    return corpus.db.execute(sql, params).fetchall()


def leadlag_table(corpus: Corpus, sel: Selection, *, pivot: bool) -> Table | None:
    """Lead–lag correlations: long for programs, or lag rows × theme/asset columns to read."""
    sql = "SELECT theme, asset, lag, correlation, n FROM {table} {where} ORDER BY theme, asset, lag"
    if (rows := _alignment(corpus, sel, "alignment_leadlag", sql)) is None:
        return None
    about = (
        "Correlation of daily index changes with returns `lag` sessions later "
        "(lag > 0: the index leads; lag < 0: returns lead)."
    )
    if not pivot:
        specs = columns("theme", "asset", "lag:int", "correlation:num", "n:int")
        return Table("Lead-lag", "leadlag.csv", about, specs, rows)
    pairs = list(dict.fromkeys((theme, asset) for theme, asset, *_ in rows))
    cells = {(theme, asset, lag): corr for theme, asset, lag, corr, _ in rows}
    n = {pair: max(r[4] or 0 for r in rows if r[:2] == pair) for pair in pairs}
    specs = [Column(f"{t} / {a} (n={n[(t, a)]})", "num", 24) for t, a in pairs]
    lags = sorted({r[2] for r in rows})
    pivoted = [(lag, *(cells.get((t, a, lag)) for t, a in pairs)) for lag in lags]
    return Table("Lead-lag", "leadlag.csv", about, columns("lag:int", *specs), pivoted)


def granger_table(corpus: Corpus, sel: Selection) -> Table | None:
    sql = (
        "SELECT theme, asset, direction, lags, f_stat, p_value, q_value, "
        "CASE WHEN significant THEN 'yes' ELSE 'no' END FROM {table} {where} "
        "ORDER BY theme, asset, direction, lags"
    )
    if (rows := _alignment(corpus, sel, "alignment_granger", sql)) is None:
        return None
    specs = columns("theme", "asset", "direction", "lags:int", "f_stat:num", "p_value:p",
                    "q_value:p", "significant")  # fmt: skip
    about = "Granger causality tests both ways; q_value is Benjamini–Hochberg adjusted."
    return Table("Granger", "granger.csv", about, specs, rows, highlight="significant")


def events_table(corpus: Corpus, sel: Selection) -> Table | None:
    sql = (
        "SELECT theme, asset, offset, mean_car, ci_low, ci_high, events FROM {table} {where} "
        "ORDER BY theme, asset, offset"
    )
    if (rows := _alignment(corpus, sel, "alignment_events", sql)) is None:
        return None
    specs = columns("theme", "asset", "offset:int", "mean_car:pct", "ci_low:pct", "ci_high:pct",
                    "events:int")  # fmt: skip
    about = "Event study: mean cumulative return (with its interval) around top-decile index days."
    return Table("Events", "events.csv", about, specs, rows)


def entities_table(corpus: Corpus, sel: Selection, top: int) -> Table | None:
    """The `top` entities named in articles carrying each theme, per calendar month."""
    if not all(corpus.db[t].exists() for t in ("entities", "mentions", "article_themes")):
        return None
    where, params = sel.where("t.theme", "a.published")
    months = corpus.db.execute(
        "SELECT DISTINCT substr(a.published, 1, 7) FROM articles a JOIN article_themes t "
        f"ON t.article_id = a.id WHERE t.carries = 1{where} ORDER BY 1",
        params,
    ).fetchall()
    rows = []
    for theme in sel.themes:
        for (month,) in months:
            since, until = f"{month}-01", _next_month(month)
            since, until = max(since, sel.since or since), min(until, sel.until or until)
            found = top_entities(corpus, theme, since=since, until=until, limit=top)
            for rank, e in enumerate(found, start=1):
                rows.append((theme, month, rank, e.name, e.ticker, e.kind, e.articles, e.mentions))
    specs = columns("theme", "month", "rank:int", "name", "ticker", "kind", "articles:int",
                    "mentions:int")  # fmt: skip
    about = f"The {top} entities most named in articles carrying each theme, per month."
    return Table("Top entities", "top_entities.csv", about, specs, rows)


def articles_table(corpus: Corpus, sel: Selection) -> Table | None:
    """Articles carrying a selected theme, newest first, with scores and the top evidence."""
    db = corpus.db
    if not db["article_themes"].exists():
        return None
    where, params = sel.where("t.theme", "a.published")
    chosen = (
        "SELECT DISTINCT a.id FROM articles a JOIN article_themes t ON t.article_id = a.id "
        f"WHERE t.carries = 1{where}"
    )
    theme_in, themes = sel.where("t.theme")
    articles = db.execute(
        "SELECT id, substr(published, 1, 10), coalesce(publisher, site, source), title, url "
        f"FROM articles WHERE id IN ({chosen}) ORDER BY published DESC, id DESC",
        params,
    ).fetchall()
    sql = "SELECT t.article_id, t.theme, t.score FROM article_themes t WHERE t.article_id IN "
    scores = _pairs(db.execute(f"{sql}({chosen}){theme_in}", [*params, *themes]))
    evidence = {}
    if db["theme_evidence"].exists():
        sql = (
            "SELECT e.article_id, e.theme, p.text FROM theme_evidence e "
            "JOIN article_themes t ON t.article_id = e.article_id AND t.theme = e.theme "
            "JOIN paragraphs p ON p.article_id = e.article_id AND p.position = e.position "
            f"WHERE e.rank = 1 AND t.carries = 1 AND e.article_id IN ({chosen}){theme_in}"
        )
        evidence = _pairs(db.execute(sql, [*params, *themes]))
    rows = [
        (*row[1:], *(scores.get((row[0], t)) for t in sel.themes),
         *(evidence.get((row[0], t)) for t in sel.themes))
        for row in articles
    ]  # fmt: skip
    specs = columns(
        "date:date", Column("source", width=24), Column("title", width=80),
        Column("url", "url", 40),
        *(Column(f"{t} score", "num", 12) for t in sel.themes),
        *(Column(f"{t} evidence", width=80) for t in sel.themes),
    )  # fmt: skip
    about = "Articles carrying a theme, newest first: scores per theme and the strongest paragraph."
    return Table("Articles", "articles.csv", about, specs, rows)


def series(corpus: Corpus, sel: Selection) -> dict[tuple[str, str], list[tuple]]:
    """Per theme and proxy, the sessions' (date, daily index, cumulative return) for charts."""
    if not corpus.db["alignment_series"].exists():
        return {}
    where, params = sel.where("theme", "date")
    found: dict[tuple[str, str], list[tuple]] = {}
    for theme, asset, *point in corpus.db.execute(
        "SELECT theme, asset, date, value, cum_return FROM alignment_series "
        f"WHERE 1 = 1{where} ORDER BY theme, asset, date",
        params,
    ):
        found.setdefault((theme, asset), []).append(tuple(point))
    # Daily values of a sparse corpus are spikes; the chart shows their 10-session mean (of the
    # sessions with news, at least 3), as the PNG charts of `align` do.
    for key, points in found.items():
        window: list[float | None] = []
        smoothed = []
        for day, value, cum in points:
            window = [*window, value][-TREND_SESSIONS:]
            recent = [v for v in window if v is not None]
            mean = sum(recent) / len(recent) if len(recent) >= 3 else None
            smoothed.append((day, mean, cum))
        found[key] = smoothed
    return found


def _tables(
    corpus: Corpus, sel: Selection, top: int, summary: ExportSummary, *, pivot: bool
) -> list[Table]:
    """Every table of the export, in sheet order; what is absent is noted in the summary."""
    tables = [t for freq in FREQ_SHEETS if (t := index_table(corpus, sel, freq))]
    for what, needs, build in [
        ("lead-lag", "alignment_leadlag", lambda: leadlag_table(corpus, sel, pivot=pivot)),
        ("Granger tests", "alignment_granger", lambda: granger_table(corpus, sel)),
        ("event study", "alignment_events", lambda: events_table(corpus, sel)),
        ("top entities", "mentions", lambda: entities_table(corpus, sel, top)),
        ("articles", "article_themes", lambda: articles_table(corpus, sel)),
    ]:
        if (table := build()) is None:
            summary.skipped.append(f"{what}: no {needs} table in the corpus")
        else:
            tables.append(table)
    return tables


# -- writing -------------------------------------------------------------------------------------


def export_xlsx(
    corpus: Corpus,
    path: str | Path,
    *,
    themes: Sequence[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    top: int = 10,
) -> ExportSummary:
    """Write the workbook: About, the indices, alignment, top entities, articles and charts."""
    sel = select(corpus, themes, since, until)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(path, sheets={"About": 0})  # written last: it lists the others
    # Corpus text is written with write_string anyway; these options guard any write() too.
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    book = xlsxwriter.Workbook(str(path), options)
    writer = _Workbook(book)
    about = book.add_worksheet("About")
    contents = []
    # Lead–lag reads best pivoted in a workbook; programs want the long form in CSV.
    for table in _tables(corpus, sel, top, summary, pivot=True):
        summary.sheets[table.sheet] = writer.table(table, summary)
        contents.append((table.sheet, table.about))
    summary.charts = writer.charts(sel, series(corpus, sel), summary)
    if summary.charts:
        contents.append(("<theme> vs <asset>", "Charts: daily index against the proxy's return."))
    elif not corpus.db["alignment_series"].exists():
        summary.skipped.append("charts: no alignment_series table in the corpus")
    else:
        summary.skipped.append("charts: alignment_series has no rows for these themes and dates")
    summary.sheets["About"] = writer.about(about, corpus, sel, contents)
    try:
        book.close()
    except (OSError, XlsxFileError) as exc:
        raise ExportError(f"Cannot write {path}: {exc} (is it open in another program?)") from exc
    return summary


def export_csv(
    corpus: Corpus,
    directory: str | Path,
    *,
    themes: Sequence[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    top: int = 10,
) -> ExportSummary:
    """Write the tables as CSV files in `directory`, UTF-8 with the BOM Excel needs."""
    sel = select(corpus, themes, since, until)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(directory)
    for table in [*_tables(corpus, sel, top, summary, pivot=False), themes_table(corpus, sel)]:
        with open(directory / table.filename, "w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([csv_cell(c.name) for c in table.columns])
            writer.writerows([csv_cell(v) for v in row] for row in table.rows)
        summary.sheets[table.filename] = len(table.rows)
    return summary


def csv_cell(value: object) -> object:
    """A value safe to open in a spreadsheet: text that would be a formula gets a `'` first."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Workbook:
    """Writes tables, the About sheet and charts into one workbook, sharing its formats."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        self.used: set[str] = {"about"}
        self.formats = {kind: book.add_format({"num_format": f}) for kind, f in NUM_FORMATS.items()}
        self.header = book.add_format({"bold": True, "bottom": 1, "bg_color": "#DDEBF7"})
        self.bold = book.add_format({"bold": True})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.link = book.add_format({"font_color": "blue", "underline": 1})
        self.good = book.add_format({"bg_color": "#E2EFDA", "bold": True})

    def name(self, wanted: str) -> str:
        """A unique legal sheet name: 31 characters, none of []:*?/\\."""
        base = _SHEET_BAD.sub("-", wanted).strip("'")[:31]
        name, n = base, 2
        while name.lower() in self.used:
            name, n = f"{base[: 31 - len(str(n)) - 3]} ({n})", n + 1
        self.used.add(name.lower())
        return name

    def table(self, table: Table, summary: ExportSummary) -> int:
        ws = self.book.add_worksheet(self.name(table.sheet))
        rows = table.rows
        if len(rows) >= EXCEL_ROWS:
            summary.skipped.append(f"{table.sheet}: only the first {EXCEL_ROWS - 1} of {len(rows)}")
            rows = rows[: EXCEL_ROWS - 1]
        for col, column in enumerate(table.columns):
            ws.set_column(col, col, _width(column, rows, col))
        self.rows(ws, 0, table.columns, rows)
        last = len(table.columns) - 1
        ws.freeze_panes(1, 1)
        _print_setup(ws)
        ws.repeat_rows(0)
        ws.print_area(0, 0, len(rows), last)  # long text spilling right is not another page
        if rows:
            ws.autofilter(0, 0, len(rows), last)
        if table.highlight and rows:
            names = [c.name for c in table.columns]
            where = xlsxwriter.utility.xl_col_to_name(names.index(table.highlight))
            rule = {"type": "formula", "criteria": f'=${where}2="yes"', "format": self.good}
            ws.conditional_format(1, 0, len(rows), last, rule)
        if table.sheet == "Lead-lag" and rows:
            ws.conditional_format(1, 1, len(rows), last, _diverging(rows))
        return len(rows)

    def rows(
        self, ws: Worksheet, top: int, specs: list[Column], rows: list[tuple], left: int = 0
    ) -> None:
        """A header row at (`top`, `left`) and the rows under it; at most EXCEL_LINKS links."""
        for col, column in enumerate(specs, start=left):
            ws.write_string(top, col, _fit(column.name), self.header)
        links = 0
        for r, row in enumerate(rows, start=top + 1):
            for col, (column, value) in enumerate(zip(specs, row, strict=True), start=left):
                links += self.cell(ws, r, col, column.kind, value, links < EXCEL_LINKS)

    def cell(
        self, ws: Worksheet, row: int, col: int, kind: str, value: object, may_link: bool = False
    ) -> int:
        """Write one value by its column's kind; corpus text always as a string. 1 if a link."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return 0  # an empty cell, not 0: a gap stays a gap
        if kind == "date" and (day := _date(value)):
            ws.write_datetime(row, col, day, self.formats["date"])
        elif kind in NUM_FORMATS and isinstance(value, int | float):
            ws.write_number(row, col, value, self.formats[kind])
        elif kind == "url" and may_link and _linkable(value):
            ws.write_url(row, col, value, self.link, string=_fit(value))
            return 1
        else:
            ws.write_string(row, col, _fit(str(value)))
        return 0

    def about(
        self, ws: Worksheet, corpus: Corpus, sel: Selection, contents: list[tuple[str, str]]
    ) -> int:
        for first, last, width in [(0, 0, 24), (1, 1, 100), (2, 5, 30)]:
            ws.set_column(first, last, width)
        _print_setup(ws)
        ws.write_string(0, 0, "Narrative indices from financial news", self.title)
        lines = [
            ("What", "Narrative indices built from a news corpus and set beside asset returns."),
            ("Built", iso(utc_now())),
            ("narratives", __version__),
            ("Corpus", str(corpus.path)),
            ("Themes", ", ".join(sel.themes)),
            ("Dates", f"from {sel.since or 'the start'} until {sel.until or 'the end'}"),
        ]
        if corpus.db["index_meta"].exists():
            lines += corpus.db.execute("SELECT key, value FROM index_meta ORDER BY key").fetchall()
        lines += [("", ""), ("Sheet", "What it holds"), *contents]
        for r, (key, value) in enumerate(lines, start=2):
            text = _fit(str(value or ""))
            ws.write_string(r, 0, _fit(str(key)), self.bold)
            ws.write_string(r, 1, text, self.bold if key == "Sheet" else self.wrap)
            if len(text) > 100:  # wrapped text needs a taller row; not every reader sizes it
                ws.set_row(r, 15 * min(math.ceil(len(text) / 100), 27))
        themes = themes_table(corpus, sel)
        ws.write_string(len(lines) + 3, 0, "Themes", self.title)
        self.rows(ws, len(lines) + 4, themes.columns, themes.rows)
        return len(themes.rows)

    def charts(self, sel: Selection, data: dict, summary: ExportSummary) -> int:
        """One chart sheet per theme and proxy; their data sit in a hidden `Chart data` sheet."""
        if not data:
            return 0
        helper = self.book.add_worksheet(self.name("Chart data"))
        for i, ((theme, asset), points) in enumerate(data.items()):
            c, last, name = 4 * i, len(points), sel.names.get(theme, theme)
            helper.set_column(c, c + 2, 14)
            specs = columns(
                "date:date",
                f"{name} index (10-session mean):index",
                f"{asset} cumulative return:pct",
            )
            self.rows(helper, 0, specs, points, left=c)
            chart = self.book.add_chart({"type": "line"})
            for k, color, more in [(1, "#1F4E79", {}), (2, "#C55A11", {"y2_axis": True})]:
                chart.add_series({
                    "name": [helper.name, 0, c + k],
                    "categories": [helper.name, 1, c, last, c],
                    "values": [helper.name, 1, c + k, last, c + k],
                    "line": {"color": color, "width": 1.5}, **more,
                })  # fmt: skip
            chart.set_title({"name": f"{name}: index vs {asset} cumulative return"})
            chart.set_x_axis({"date_axis": True, "num_format": "yyyy-mm", **_ticks(points)})
            chart.set_y_axis({"name": "Index (mean 100)", "num_format": "0", **_span(points)})
            chart.set_y2_axis({"name": f"{asset} cumulative return", "num_format": "0%"})
            chart.set_legend({"position": "bottom"})
            chart.show_blanks_as("gap")
            sheet = self.book.add_chartsheet(self.name(f"{theme} vs {asset}"))
            sheet.set_chart(chart)
            sheet.set_landscape()
            summary.sheets[sheet.name] = last
        helper.hide()
        summary.sheets[helper.name] = max(len(p) for p in data.values())
        return len(data)


def _fit(text: str) -> str:
    """Text clipped to what one Excel cell holds."""
    return clip(text, EXCEL_CELL_CHARS)


def _pairs(rows: Iterable[tuple]) -> dict[tuple, object]:
    return {(a, b): c for a, b, c in rows}


def _linkable(value: object) -> bool:
    url = str(value)
    return url.lower().startswith(("http://", "https://")) and len(url) <= EXCEL_URL_CHARS


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _width(column: Column, rows: list[tuple], col: int) -> int:
    if column.kind == "date":
        return 12
    sample = [len(str(row[col])) for row in rows[:200] if row[col] is not None]
    if column.kind in NUM_FORMATS:
        sample = [min(n, 10) for n in sample]
    return max(min(len(column.name), 40), min(column.width, max(sample, default=0))) + 2


def _diverging(rows: list[tuple]) -> dict[str, object]:
    """A red–white–blue scale centred on zero, as wide as the strongest correlation."""
    values = [abs(v) for row in rows for v in row[1:] if isinstance(v, int | float)]
    bound = max(values, default=1.0) or 1.0
    return {
        "type": "3_color_scale",
        "min_type": "num", "min_value": -bound, "min_color": "#F8696B",
        "mid_type": "num", "mid_value": 0, "mid_color": "#FFFFFF",
        "max_type": "num", "max_value": bound, "max_color": "#5A8AC6",
    }  # fmt: skip


def _ticks(points: list[tuple]) -> dict[str, object]:
    """Month ticks, spaced so a long history shows about a dozen labels."""
    first, last = _date(points[0][0]), _date(points[-1][0])
    if not first or not last:
        return {}
    months = (last.year - first.year) * 12 + last.month - first.month
    return {"major_unit": max(1, math.ceil(months / 12)), "major_unit_type": "months"}


def _span(points: list[tuple]) -> dict[str, object]:
    """Index axis bounds around the data: a line near 100 is flat on an axis from 0."""
    values = [v for _, v, _ in points if isinstance(v, int | float) and math.isfinite(v)]
    if not values:
        return {}
    pad = (max(values) - min(values)) * 0.05 or 5
    low, high = math.floor((min(values) - pad) / 10), math.ceil((max(values) + pad) / 10)
    return {"min": low * 10, "max": high * 10}


def _print_setup(ws: Worksheet) -> None:
    """Printed (or rendered to PDF), a sheet is landscape and one page wide."""
    ws.set_landscape()
    ws.fit_to_pages(1, 0)


def _next_month(month: str) -> str:
    year, m = int(month[:4]), int(month[5:7])
    return f"{year + m // 12:04d}-{m % 12 + 1:02d}-01"

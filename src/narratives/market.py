"""Daily asset prices: load CSVs or fetch them, and read closes, returns and trading sessions.

Series are float pandas Series on a tz-naive DatetimeIndex named "date" (midnight of each
session date), sorted ascending; `sessions` and `session_of` deal in `datetime.date`, which
`pd.Timestamp(d)` or `pd.to_datetime(list_of_dates)` turn into index keys.
"""

from __future__ import annotations

import csv
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from narratives.dates import new_york_time
from narratives.errors import NarrativesError
from narratives.store import Corpus

if TYPE_CHECKING:
    import pandas as pd

PRICES_SCHEMA = """
CREATE TABLE IF NOT EXISTS prices (
    ticker TEXT NOT NULL,
    date TEXT NOT NULL,
    close REAL NOT NULL,
    adjusted INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (ticker, date)
);
"""

MARKET_CLOSE = time(16, 0)  # news at or after the close counts for the next session
HOW_TO_LOAD = "load some with `narratives prices load FILE.csv` or `narratives prices fetch TICKER`"
MAX_EXAMPLES = 10
_MINUS = ("−", "–")  # a Unicode minus or an en dash always means a spread
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_UPSERT = (
    "INSERT INTO prices (ticker, date, close, adjusted, source) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(ticker, date) DO UPDATE SET close = excluded.close, "
    "adjusted = excluded.adjusted, source = excluded.source "
    "WHERE close != excluded.close OR adjusted != excluded.adjusted OR source != excluded.source"
)

Download = Callable[[str, date | None, date | None], "pd.DataFrame"]
DateLike = date | str
_Row = tuple[str, str, float, int]  # ticker, date, close, adjusted


class PricesError(NarrativesError):
    """Prices cannot be read, fetched or found; the message says how to get them."""


@dataclass
class TickerLoad:
    rows: int = 0  # rows read and upserted
    changed: int = 0  # rows that were new or differed from the stored row
    first: str | None = None
    last: str | None = None


@dataclass
class PriceLoadSummary:
    """What one `load_prices` or `fetch_prices` call read and wrote."""

    files: list[str] = field(default_factory=list)
    tickers: dict[str, TickerLoad] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    examples: list[str] = field(default_factory=list)  # the first skipped rows, with where
    failed: dict[str, str] = field(default_factory=dict)  # ticker -> why its fetch failed
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tickers.values())

    @property
    def changed(self) -> int:
        return sum(t.changed for t in self.tickers.values())

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "changed": self.changed, **asdict(self)}


@dataclass(frozen=True)
class TickerCoverage:
    ticker: str
    rows: int
    first: str
    last: str
    adjusted: bool  # every row holds an adjusted close


def normalize_ticker(raw: str) -> str:
    """The stored spelling of a ticker: upper case, no spaces, `_` read as `-` (BTC_USD)."""
    return "".join(raw.split()).upper().replace("_", "-")


# -- loading and fetching ---------------------------------------------------------------------


def load_prices(
    corpus: Corpus, paths: Iterable[str | Path], *, replace: bool = False
) -> PriceLoadSummary:
    """Upsert daily closes from CSV files, or from every `*.csv` in a directory (sorted).

    Yahoo-style files (Date, Close, optional Adj Close …) take the ticker from the file name;
    long-form files have date, ticker and close columns (optional adj_close). An adjusted
    close is preferred when given. Bad rows are skipped and counted. Each file is written in
    one transaction and replaces stored rows of the same (ticker, date): reloading is a no-op.
    With `replace`, every stored row of a ticker the file holds is dropped first.
    """
    files: list[Path] = []
    for raw in [paths] if isinstance(paths, str | Path) else paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.csv"))
            if not found:
                raise PricesError(f"{path} holds no .csv files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise PricesError(f"no price file or directory at {path}")
    corpus.apply_schema(PRICES_SCHEMA)
    summary = PriceLoadSummary()
    for path in files:
        try:
            rows = _read_csv(path, summary)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise PricesError(f"{path} is not a readable UTF-8 CSV file: {exc}") from exc
        _write(corpus, rows, str(path), summary, replace=replace)
        summary.files.append(str(path))
    return summary


def fetch_prices(
    corpus: Corpus,
    tickers: Iterable[str],
    *,
    since: DateLike | None = None,
    until: DateLike | None = None,
    download: Download | None = None,
    replace: bool = False,
) -> PriceLoadSummary:
    """Download daily closes for `tickers` (with yfinance unless `download` is given); upsert.

    `download(ticker, since, until)` gets inclusive dates (or None) and returns a DataFrame
    indexed by date with a `Close` and perhaps an `Adj Close` column. A ticker whose download
    fails or comes back empty is recorded in `summary.failed` and the others carry on.
    With `replace`, a ticker's stored rows are dropped before its download is written.
    """
    first, last = _day(since), _day(until)
    source = "yfinance" if download is None else getattr(download, "__name__", "download")
    fetch = download or _yfinance_download()
    corpus.apply_schema(PRICES_SCHEMA)
    summary = PriceLoadSummary()
    low, high = str(first or "0000-00-00"), str(last or "9999-99-99")
    for ticker in dict.fromkeys(normalize_ticker(t) for t in tickers):
        try:
            rows = _frame_rows(ticker, fetch(ticker, first, last), summary)
        except Exception as exc:  # a third-party client: any failure is this ticker's alone
            summary.failed[ticker] = f"{type(exc).__name__}: {exc}"
            continue
        rows = [r for r in rows if low <= r[1] <= high]
        if rows:
            _write(corpus, rows, source, summary, replace=replace)
        else:
            summary.failed[ticker] = "no prices came back (a misspelt or delisted ticker?)"
    return summary


def _yfinance_download() -> Download:
    try:
        import yfinance  # optional: only fetching needs it
    except ImportError as exc:
        raise PricesError(
            "fetching prices needs yfinance: pip install 'narratives[prices]' (or load CSV "
            "files instead)"
        ) from exc

    def download(ticker: str, since: date | None, until: date | None) -> pd.DataFrame:
        end = until + timedelta(days=1) if until else None  # yfinance's `end` is exclusive
        return yfinance.Ticker(ticker).history(
            start=since, end=end, auto_adjust=False, actions=False
        )

    return download


def _read_csv(path: Path, summary: PriceLoadSummary) -> list[_Row]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        columns = {_column(name): i for i, name in enumerate(header)}
        date_at, close_at, adj_at = (columns.get(c) for c in ("date", "close", "adj close"))
        ticker_at = columns.get("ticker", columns.get("symbol"))
        if date_at is None or (close_at is None and adj_at is None):
            raise PricesError(
                f"{path}: not a price file I can read (its columns: {', '.join(header) or 'none'})"
                ". It needs either Date and Close (Yahoo style, optional Adj Close; the ticker "
                "comes from the file name, as in SPY.csv) or date, ticker and close (long form, "
                "optional adj_close)"
            )
        file_ticker = normalize_ticker(path.stem)
        rows: list[_Row] = []
        for line, record in enumerate(reader, start=2):
            if any(cell.strip() for cell in record):
                ticker = _cell(record, ticker_at) if ticker_at is not None else file_ticker
                cells = (_cell(record, at) for at in (date_at, close_at, adj_at))
                rows += _parse_row(normalize_ticker(ticker), *cells, f"{path}:{line}", summary)
    return rows


def _cell(record: list[str], at: int | None) -> str:
    return record[at].strip() if at is not None and at < len(record) else ""


def _frame_rows(ticker: str, frame: pd.DataFrame, summary: PriceLoadSummary) -> list[_Row]:
    import pandas as pd

    if frame is None or len(frame) == 0:
        return []
    if isinstance(frame.columns, pd.MultiIndex):  # yf.download's (field, ticker) columns
        keep = next(i for i, names in enumerate(frame.columns.levels) if "Close" in names)
        frame = frame.droplevel([i for i in range(frame.columns.nlevels) if i != keep], axis=1)
    columns = {_column(str(c)): c for c in frame.columns}
    if "close" not in columns and "adj close" not in columns:
        found = ", ".join(str(c) for c in frame.columns)
        raise PricesError(f"the download for {ticker} has no Close column (it has {found})")
    blank = [None] * len(frame)
    dates = frame[columns["date"]] if "date" in columns else frame.index
    close = frame[columns["close"]] if "close" in columns else blank
    adj = frame[columns["adj close"]] if "adj close" in columns else blank
    rows: list[_Row] = []
    for n, cells in enumerate(zip(dates, close, adj, strict=True), start=1):
        rows += _parse_row(ticker, *cells, f"{ticker} row {n}", summary)
    return rows


def _parse_row(
    ticker: str, raw_date: Any, close: Any, adj: Any, where: str, summary: PriceLoadSummary
) -> list[_Row]:
    """The row as a one-item list, or an empty list after counting why it was skipped."""
    day = _session_date(raw_date)
    adjusted = not _blank(adj)
    raw = adj if adjusted else close
    try:
        value = float(str(raw).replace(",", ""))
    except ValueError:
        value = math.nan
    if not ticker:
        summary.skip("no ticker", where)
    elif day is None:
        summary.skip("unparsable date", f"{where} ({raw_date!r})")
    elif not math.isfinite(value):
        summary.skip("non-numeric close", f"{where} ({raw!r})")
    elif value <= 0:
        summary.skip("non-positive close", f"{where} ({raw!r})")
    else:
        return [(ticker, day.isoformat(), value, int(adjusted))]
    return []


def _session_date(raw: Any) -> date | None:
    """The date as written: a timestamp's own wall-clock date, never shifted to UTC."""
    if isinstance(raw, datetime):  # pandas Timestamps too; NaT is the one unequal to itself
        return raw.date() if raw == raw else None
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    try:
        if match := _US_DATE.match(text):  # 01/02/2024 is month first, as US sources write
            month, day, year = (int(g) for g in match.groups())
            return date(year, month, day)
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


def _blank(value: Any) -> bool:
    return value is None or str(value).strip().lower() in ("", "nan", "nat", "none", "<na>")


def _write(
    corpus: Corpus, rows: list[_Row], source: str, summary: PriceLoadSummary, *, replace: bool
) -> None:
    by_ticker: dict[str, dict[str, _Row]] = {}
    for row in rows:
        by_ticker.setdefault(row[0], {})[row[1]] = row  # a repeated date: the later row wins
    conn = corpus.db.conn
    with corpus.transaction():
        for ticker, dated in by_ticker.items():
            load = summary.tickers.setdefault(ticker, TickerLoad())
            if replace:
                conn.execute("DELETE FROM prices WHERE ticker = ?", [ticker])
            before = conn.total_changes
            conn.executemany(_UPSERT, [(*row, source) for row in dated.values()])
            load.changed += conn.total_changes - before
            load.rows += len(dated)
            load.first = min(load.first or "9999", *dated)
            load.last = max(load.last or "0000", *dated)
            kinds = conn.execute(
                "SELECT count(DISTINCT adjusted) FROM prices WHERE ticker = ?", [ticker]
            ).fetchone()[0]
            warning = (
                f"{ticker} now mixes adjusted and unadjusted closes, so its returns jump where "
                "the sources meet; load it again from one kind of source with replace=True"
            )
            if kinds > 1 and warning not in summary.warnings:
                summary.warnings.append(warning)


def _column(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").replace(".", "").split())


# -- reading series ---------------------------------------------------------------------------


def tickers(corpus: Corpus) -> list[str]:
    """The tickers with prices in the corpus, sorted."""
    if not corpus.db["prices"].exists():
        return []
    return [r[0] for r in corpus.db.execute("SELECT DISTINCT ticker FROM prices ORDER BY 1")]


def coverage(corpus: Corpus) -> list[TickerCoverage]:
    """Rows and first and last date per ticker, for a status listing."""
    if not corpus.db["prices"].exists():
        return []
    rows = corpus.db.execute(
        "SELECT ticker, count(*), min(date), max(date), min(adjusted) FROM prices "
        "GROUP BY ticker ORDER BY ticker"
    ).fetchall()
    return [TickerCoverage(t, n, first, last, bool(adj)) for t, n, first, last, adj in rows]


def closes(
    corpus: Corpus, ticker: str, *, since: DateLike | None = None, until: DateLike | None = None
) -> pd.Series:
    """Daily closes of `ticker` between inclusive dates, named by the ticker."""
    import pandas as pd

    ticker = _known(corpus, ticker)
    first, last = _day(since), _day(until)
    rows = corpus.db.execute(
        "SELECT date, close FROM prices WHERE ticker = ? AND date >= ? AND date <= ? ORDER BY date",
        [ticker, str(first or "0000-00-00"), str(last or "9999-99-99")],
    ).fetchall()
    index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], format="%Y-%m-%d"), name="date")
    return pd.Series([r[1] for r in rows], index=index, name=ticker, dtype="float64")


def returns(
    corpus: Corpus,
    ticker: str,
    *,
    log: bool = False,
    since: DateLike | None = None,
    until: DateLike | None = None,
    sessions: Sequence[date] | None = None,
) -> pd.Series:
    """Close-to-close returns (simple, or log when `log`), dated by the session they end on.

    The first session has no return and is dropped; a return dated `since` is kept. With
    `sessions`, closes on other dates are dropped first, so a 24/7 asset such as BTC-USD gets
    a Friday-to-Monday return on Monday, as a stock does.
    """
    return _returns(_closes_frame(corpus, [ticker], until, sessions), log, since).iloc[:, 0]


def spread_returns(
    corpus: Corpus,
    asset: str,
    benchmark: str,
    *,
    log: bool = False,
    since: DateLike | None = None,
    until: DateLike | None = None,
    sessions: Sequence[date] | None = None,
) -> pd.Series:
    """Returns of `asset` minus returns of `benchmark`, named "ASSET-BENCHMARK" (IWM-SPY).

    Both returns span the same sessions: only dates on which both have a close are used.
    """
    frame = _closes_frame(corpus, [asset, benchmark], until, sessions)
    both = _returns(frame, log, since)
    return (both.iloc[:, 0] - both.iloc[:, 1]).rename(f"{frame.columns[0]}-{frame.columns[1]}")


def asset_returns(
    corpus: Corpus,
    label: str,
    *,
    log: bool = False,
    since: DateLike | None = None,
    until: DateLike | None = None,
    sessions: Sequence[date] | None = None,
) -> pd.Series:
    """Returns for a label: a ticker ("IWM", "BTC-USD") or a spread ("IWM-SPY", "IWM−SPY")."""
    asset, benchmark = parse_label(label, tickers(corpus))
    options: dict[str, Any] = {"log": log, "since": since, "until": until, "sessions": sessions}
    if benchmark is None:
        return returns(corpus, asset, **options)
    return spread_returns(corpus, asset, benchmark, **options)


def parse_label(label: str, known: Sequence[str]) -> tuple[str, str | None]:
    """Split an asset label into (asset, benchmark or None), given the tickers loaded.

    A hyphen belongs to the ticker when the whole label is a loaded ticker (BTC-USD) and
    splits a spread otherwise (IWM-SPY, BTC-USD-SPY); a Unicode minus or en dash always splits.
    """
    for minus in _MINUS:
        if minus in label:
            asset, benchmark = label.split(minus, 1)
            return normalize_ticker(asset), normalize_ticker(benchmark)
    whole = normalize_ticker(label)
    if whole in known:
        return whole, None
    splits = [(whole[:at], whole[at + 1 :]) for at, char in enumerate(whole) if char == "-"]
    # Both sides loaded, else one side loaded (so `closes` names the missing one), else as is.
    for wanted in (2, 1):
        for asset, benchmark in splits:
            if asset and benchmark and (asset in known) + (benchmark in known) == wanted:
                return asset, benchmark
    return whole, None


def _closes_frame(
    corpus: Corpus, names: list[str], until: DateLike | None, sessions: Sequence[date] | None
) -> pd.DataFrame:
    import pandas as pd

    frame = pd.concat([closes(corpus, n, until=until) for n in names], axis=1, join="inner")
    if sessions is not None:
        frame = frame[frame.index.isin(pd.to_datetime(list(sessions)))]
    return frame


def _returns(frame: pd.DataFrame, log: bool, since: DateLike | None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    result = (np.log(frame).diff() if log else frame.pct_change()).iloc[1:]
    first = _day(since)
    return result[result.index >= pd.Timestamp(first)] if first else result


def _known(corpus: Corpus, ticker: str) -> str:
    ticker = normalize_ticker(ticker)
    held = tickers(corpus)
    if ticker not in held:
        have = f"it has {', '.join(held)}" if held else "it has no prices at all"
        raise PricesError(f"no prices for {ticker} in {corpus.path} ({have}); {HOW_TO_LOAD}")
    return ticker


def _day(value: DateLike | None) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise PricesError(f"{value!r} is not a date: write it as YYYY-MM-DD") from exc


# -- sessions: which trading day a piece of news counts for -----------------------------------


def sessions(corpus: Corpus, *, reference: str = "SPY") -> list[date]:
    """The trading sessions: the dates `reference` has prices for, sorted.

    When it has none, every weekday (Mon–Fri, holidays included) from the first to the last
    date of any ticker.
    """
    if not tickers(corpus):
        raise PricesError(f"no prices in {corpus.path} to take sessions from; {HOW_TO_LOAD}")
    rows = corpus.db.execute(
        "SELECT date FROM prices WHERE ticker = ? ORDER BY date", [normalize_ticker(reference)]
    ).fetchall()
    if rows:
        return [date.fromisoformat(r[0]) for r in rows]
    first, last = corpus.db.execute("SELECT min(date), max(date) FROM prices").fetchone()
    start = date.fromisoformat(first)
    span = (date.fromisoformat(last) - start).days + 1
    days = (start + timedelta(days=n) for n in range(span))
    return [day for day in days if day.weekday() < 5]


def session_of(published: datetime | str, sessions: Sequence[date]) -> date | None:
    """The session a news item counts for; None before the first or after the last session.

    The timestamp (naive ones are UTC, as the corpus stores them) is read in New York time:
    news before the 16:00 close of a session counts for it; news after the close, on a weekend
    or a holiday counts for the next session. Early (13:00) closes are not modelled.
    """
    local = new_york_time(published)
    day = local.date()
    if not sessions or day < sessions[0]:
        return None
    at = bisect_left(sessions, day)
    if at < len(sessions) and sessions[at] == day and local.time() >= MARKET_CLOSE:
        at += 1
    return sessions[at] if at < len(sessions) else None

"""The narrative index: how loud each narrative is per day, week or month, built like the EPU index.

Method (Baker, Bloom and Davis's Economic Policy Uncertainty index, applied to narratives):

1. Per source (publisher) and period, the probability-weighted share of that source's tagged
   articles carrying the theme: the sum of the articles' theme scores over their count. A
   source that publishes more does not count more.
2. Each source's share series is divided by its standard deviation over the sample, so a
   source that writes about a theme in every article and one that rarely does weigh alike.
3. The scaled series are averaged across the sources that published in the period.
4. The average is rescaled to a mean of 100 over the sample.

Periods in which no source published are gaps (NULL), never zeros. Days are New York calendar
days. Per (theme, source, day) counts are kept in `index_counts` and refreshed only for the days
that newly tagged articles touch, so a re-run after a day of news reads a day of news.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from narratives.dates import iso, new_york_time, utc_now
from narratives.errors import NarrativesError
from narratives.store import Corpus

FREQS = ("D", "W", "M")
METHOD = (
    "EPU-style: per source and period the probability-weighted share of the source's tagged "
    "articles carrying the theme; each source's series divided by its standard deviation over "
    "the sample; averaged across the sources publishing in the period; rescaled to mean 100. "
    "Periods without articles are gaps. Days are New York calendar days; weeks start on Monday."
)

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS article_days (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS article_days_day ON article_days(day);
CREATE TABLE IF NOT EXISTS index_counts (
    theme TEXT NOT NULL,
    source TEXT NOT NULL,
    day TEXT NOT NULL,
    articles INTEGER NOT NULL,
    weight REAL NOT NULL,
    carrying INTEGER NOT NULL,
    PRIMARY KEY (theme, source, day)
);
CREATE TABLE IF NOT EXISTS narrative_index (
    theme TEXT NOT NULL,
    freq TEXT NOT NULL,
    period TEXT NOT NULL,
    articles INTEGER NOT NULL,
    carrying INTEGER NOT NULL,
    share REAL,
    value REAL,
    smoothed REAL,
    sources INTEGER NOT NULL,
    PRIMARY KEY (theme, freq, period)
);
CREATE TABLE IF NOT EXISTS index_meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
"""


class NarrativeIndexError(NarrativesError):
    """The corpus cannot give an index (nothing tagged, an unknown theme or source)."""


@dataclass
class IndexSummary:
    themes: list[str]
    freqs: list[str]
    periods: dict[str, int]  # freq → periods written
    refreshed_days: int  # days whose counts were recomputed this run
    articles: int  # tagged articles in the selection
    sources: list[str]
    peak_freq: str = "W"
    seconds: float = 0.0
    peaks: dict[str, tuple[str, float]] = field(default_factory=dict)  # theme → (period, value)


def refresh_counts(corpus: Corpus) -> int:
    """Bring `index_counts` up to date with `article_themes`; returns the days recomputed."""
    corpus.apply_schema(INDEX_SCHEMA)
    if not corpus.db["article_themes"].exists():
        raise NarrativeIndexError("no theme scores in this corpus: run `narratives tag` first")
    db = corpus.db
    through = _meta(corpus, "counts_through") or ""
    changed = db.execute(
        "SELECT a.id, a.published, COALESCE(a.publisher, a.site, a.source) FROM articles a "
        "JOIN tagged t ON t.article_id = a.id "
        "LEFT JOIN article_days d ON d.article_id = a.id "
        "WHERE t.tagged_at > ? OR d.article_id IS NULL",
        [through],
    ).fetchall()
    # Days that lost articles (deleted or re-dated) must be recomputed too.
    gone = db.execute(
        "SELECT d.day FROM article_days d LEFT JOIN tagged t ON t.article_id = d.article_id "
        "WHERE t.article_id IS NULL"
    ).fetchall()
    days = {row[0] for row in gone}
    with corpus.transaction():
        db.execute(
            "DELETE FROM article_days WHERE article_id NOT IN (SELECT article_id FROM tagged)"
        )
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS refresh_articles (article_id INTEGER PRIMARY KEY)"
        )
        db.execute("DELETE FROM refresh_articles")
        db.conn.executemany(
            "INSERT INTO refresh_articles (article_id) VALUES (?)", [(r[0],) for r in changed]
        )
        # The days these articles sat on before (their date may have changed) and sit on now.
        days.update(
            r[0]
            for r in db.execute(
                "SELECT DISTINCT day FROM article_days "
                "WHERE article_id IN (SELECT article_id FROM refresh_articles)"
            )
        )
        rows = [(i, new_york_day(p), s or "unknown") for i, p, s in changed]
        days.update(r[1] for r in rows)
        db.conn.executemany(
            "INSERT OR REPLACE INTO article_days (article_id, day, source) VALUES (?, ?, ?)", rows
        )
        if days:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS refresh_days (day TEXT PRIMARY KEY)")
            db.execute("DELETE FROM refresh_days")
            db.conn.executemany("INSERT INTO refresh_days (day) VALUES (?)", [(d,) for d in days])
            db.execute("DELETE FROM index_counts WHERE day IN (SELECT day FROM refresh_days)")
            db.execute(
                "INSERT INTO index_counts (theme, source, day, articles, weight, carrying) "
                "SELECT t.theme, d.source, d.day, COUNT(*), SUM(t.score), SUM(t.carries) "
                "FROM article_days d JOIN article_themes t ON t.article_id = d.article_id "
                "WHERE d.day IN (SELECT day FROM refresh_days) GROUP BY t.theme, d.source, d.day"
            )
        latest = db.execute("SELECT MAX(tagged_at) FROM tagged").fetchone()[0] or ""
        _set_meta(corpus, "counts_through", latest)
    return len(days)


def build_index(
    corpus: Corpus,
    *,
    freqs: Sequence[str] = FREQS,
    since: date | None = None,
    until: date | None = None,
    sources: Sequence[str] = (),
    half_life: float | None = None,
) -> IndexSummary:
    """Refresh the counts, then rewrite `narrative_index` for since ≤ day < until."""
    started = time.monotonic()
    unknown = [f for f in freqs if f not in FREQS]
    if unknown:
        raise NarrativeIndexError(
            f"unknown frequency {unknown[0]!r}: use D (daily), W (weekly) or M"
        )
    if half_life is not None and half_life <= 0:
        raise NarrativeIndexError("the half-life must be a positive number of periods")
    refreshed = refresh_counts(corpus)
    counts = read_counts(corpus, since=since, until=until, sources=sources)
    if counts.empty:
        raise NarrativeIndexError(
            "no tagged articles in the selection: run `narratives tag`, or widen --since/--until"
            + (f"/--source (known: {', '.join(known_sources(corpus))})" if sources else "")
        )
    themes = sorted(counts["theme"].unique())
    summary = IndexSummary(
        themes=themes,
        freqs=list(freqs),
        periods={},
        refreshed_days=refreshed,
        articles=int(counts.groupby(["source", "day"])["articles"].max().sum()),
        sources=sorted(counts["source"].unique()),
        peak_freq="W" if "W" in freqs else freqs[0],
    )
    with corpus.transaction():
        for freq in freqs:
            corpus.db.execute("DELETE FROM narrative_index WHERE freq = ?", [freq])
            frame = narrative_index(counts, freq, half_life=half_life)
            corpus.db.conn.executemany(
                "INSERT INTO narrative_index (theme, freq, period, articles, carrying, share, "
                "value, smoothed, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.theme,
                        freq,
                        r.period,
                        int(r.articles),
                        int(r.carrying),
                        sql_number(r.share),
                        sql_number(r.value),
                        sql_number(r.smoothed),
                        int(r.sources),
                    )
                    for r in frame.itertuples(index=False)
                ],
            )
            summary.periods[freq] = int(frame["period"].nunique())
            if freq == summary.peak_freq:
                for theme, group in frame.dropna(subset=["value"]).groupby("theme"):
                    top = group.loc[group["value"].idxmax()]
                    summary.peaks[str(theme)] = (str(top["period"]), float(top["value"]))
        for key, value in {
            "method": METHOD,
            "half_life": "" if half_life is None else str(half_life),
            "since": since.isoformat() if since else "",
            "until": until.isoformat() if until else "",
            "sources": ", ".join(summary.sources),
            "built_at": iso(utc_now()),
        }.items():
            _set_meta(corpus, key, value)
    summary.seconds = time.monotonic() - started
    return summary


def read_counts(
    corpus: Corpus,
    *,
    since: date | None = None,
    until: date | None = None,
    sources: Sequence[str] = (),
) -> pd.DataFrame:
    where, params = ["1 = 1"], []
    if since:
        where.append("day >= ?")
        params.append(since.isoformat())
    if until:
        where.append("day < ?")
        params.append(until.isoformat())
    if sources:
        where.append(f"source IN ({','.join('?' * len(sources))})")
        params.extend(sources)
    return pd.read_sql_query(
        "SELECT theme, source, day, articles, weight, carrying FROM index_counts "
        f"WHERE {' AND '.join(where)}",
        corpus.db.conn,
        params=params,
    )


def narrative_index(
    counts: pd.DataFrame, freq: str = "D", *, half_life: float | None = None
) -> pd.DataFrame:
    """The index from per (theme, source, day) counts: one row per theme and period.

    Every period from the first to the last day of the sample appears; periods without
    articles have NaN value (a gap).
    """
    counts = counts.copy()
    counts["period"] = period_start(pd.to_datetime(counts["day"]), freq)
    grouped = counts.groupby(["theme", "source", "period"], as_index=False)[
        ["articles", "weight", "carrying"]
    ].sum()
    grouped["share"] = grouped["weight"] / grouped["articles"]
    spread = grouped.groupby(["theme", "source"])["share"].transform(lambda s: s.std(ddof=0))
    # A source whose share never moves carries no signal about the theme's loudness: its scaled
    # share is 1 when it always writes about it and 0 when it never does.
    grouped["scaled"] = np.where(
        spread > 0, grouped["share"] / spread.where(spread > 0, 1), (grouped["share"] > 0) * 1.0
    )
    per_period = grouped.groupby(["theme", "period"]).agg(
        scaled=("scaled", "mean"),
        articles=("articles", "sum"),
        weight=("weight", "sum"),
        carrying=("carrying", "sum"),
        sources=("source", "nunique"),
    )
    first, last = counts["period"].min(), counts["period"].max()
    calendar = pd.date_range(first, last, freq={"D": "D", "W": "W-MON", "M": "MS"}[freq])
    frames = []
    for theme in sorted(counts["theme"].unique()):
        theme_rows = per_period.loc[theme].reindex(calendar)
        mean = theme_rows["scaled"].mean()
        value = theme_rows["scaled"] * (100.0 / mean) if mean and mean > 0 else theme_rows["scaled"]
        frame = pd.DataFrame(
            {
                "theme": theme,
                "period": [d.date().isoformat() for d in calendar],
                "articles": theme_rows["articles"].fillna(0).astype(int).to_numpy(),
                "carrying": theme_rows["carrying"].fillna(0).astype(int).to_numpy(),
                "share": (theme_rows["weight"] / theme_rows["articles"]).to_numpy(),
                "value": value.to_numpy(),
                "sources": theme_rows["sources"].fillna(0).astype(int).to_numpy(),
            }
        )
        frame["smoothed"] = smooth(frame["value"], half_life) if half_life else np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def smooth(values: pd.Series, half_life: float) -> pd.Series:
    """Exponentially decaying average with the given half-life in periods; gaps stay gaps."""
    smoothed = values.ewm(halflife=half_life, ignore_na=True).mean()
    return smoothed.where(values.notna())


def period_start(days: pd.Series, freq: str) -> pd.Series:
    if freq == "D":
        return days
    if freq == "W":
        return days - pd.to_timedelta(days.dt.weekday, unit="D")
    return days.dt.to_period("M").dt.start_time


def new_york_day(published: str) -> str:
    """The New York calendar day of a stored (UTC, ISO 8601) publication time."""
    return new_york_time(published).date().isoformat()


def read_index(corpus: Corpus, theme: str | None = None, freq: str = "D") -> pd.DataFrame:
    """The stored index rows for one frequency (and theme), oldest first."""
    if not corpus.db["narrative_index"].exists():
        raise NarrativeIndexError("no narrative index in this corpus: run `narratives index` first")
    where, params = "freq = ?", [freq]
    if theme:
        where += " AND theme = ?"
        params.append(theme)
    frame = pd.read_sql_query(
        f"SELECT * FROM narrative_index WHERE {where} ORDER BY theme, period",
        corpus.db.conn,
        params=params,
    )
    if theme and frame.empty:
        themes = [r[0] for r in corpus.db.execute("SELECT DISTINCT theme FROM narrative_index")]
        raise NarrativeIndexError(
            f"no index for theme {theme!r}; the index has {', '.join(themes)}"
        )
    return frame


def entity_series(
    corpus: Corpus, entity: str, *, theme: str | None = None, freq: str = "W"
) -> pd.DataFrame:
    """Theme intensity among the articles that mention one entity (an id, ticker or name).

    Per period: the articles mentioning it, how many carry each theme, and their mean theme
    score. Periods without a mention are left out.
    """
    if not corpus.db["mentions"].exists():
        raise NarrativeIndexError("no entity mentions in this corpus: run `narratives tag` first")
    row = corpus.db.execute(
        "SELECT id, name FROM entities WHERE id = ? OR ticker = ? OR name = ? "
        "ORDER BY (id = ?) DESC, (ticker = ?) DESC LIMIT 1",
        [entity, entity, entity, entity, entity],
    ).fetchone()
    if row is None:
        raise NarrativeIndexError(
            f"no entity {entity!r} in this corpus's mentions (try an id like stock:TSLA, a "
            "ticker, or a name as `narratives kb lookup` shows it)"
        )
    params: list[object] = [row[0]]
    theme_filter = ""
    if theme:
        theme_filter = "AND t.theme = ?"
        params.append(theme)
    frame = pd.read_sql_query(
        "SELECT d.day, t.theme, t.score, t.carries FROM "
        "(SELECT DISTINCT article_id FROM mentions WHERE entity_id = ?) m "
        "JOIN article_days d ON d.article_id = m.article_id "
        f"JOIN article_themes t ON t.article_id = m.article_id {theme_filter}",
        corpus.db.conn,
        params=params,
    )
    if frame.empty:
        return pd.DataFrame(columns=["period", "theme", "articles", "carrying", "mean_score"])
    frame["period"] = period_start(pd.to_datetime(frame["day"]), freq).dt.date.astype(str)
    out = (
        frame.groupby(["period", "theme"])
        .agg(articles=("score", "size"), carrying=("carries", "sum"), mean_score=("score", "mean"))
        .reset_index()
    )
    out["entity"] = row[1]
    return out


def known_sources(corpus: Corpus) -> list[str]:
    if not corpus.db["article_days"].exists():
        return []
    return [r[0] for r in corpus.db.execute("SELECT DISTINCT source FROM article_days ORDER BY 1")]


def _meta(corpus: Corpus, key: str) -> str | None:
    row = corpus.db.execute("SELECT value FROM index_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def _set_meta(corpus: Corpus, key: str, value: str) -> None:
    corpus.db.execute(
        "INSERT INTO index_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def sql_number(value: object, digits: int = 6) -> float | None:
    """A value for a REAL column: rounded, and NULL for None or NaN (a gap, not a zero)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else round(number, digits)

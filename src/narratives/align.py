"""Alignment: narrative indices beside asset returns — lead–lag, Granger tests and event studies.

News counts for the trading session it can move: an article published after the 4 p.m. New
York close, or on a day the asset does not trade, counts for the next session. Per theme and
proxy asset (from the themes file, or given), on the sessions the asset trades:

- lead–lag: the correlation of the index's session-to-session change with returns `lag`
  sessions later (lag > 0: the narrative leads prices; lag < 0: prices lead the narrative);
- Granger tests in both directions (statsmodels, F-test on the sum of squared residuals), with
  the Benjamini–Hochberg correction across every test run together;
- an event study: the mean cumulative return around narrative spikes (sessions in the top
  decile of the index), with 95% confidence intervals across events.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from narratives import market
from narratives.errors import NarrativesError
from narratives.index import narrative_index, sql_number
from narratives.store import Corpus
from narratives.themes import Theme

ALIGN_SCHEMA = """
CREATE TABLE IF NOT EXISTS alignment_leadlag (
    theme TEXT NOT NULL, asset TEXT NOT NULL, lag INTEGER NOT NULL, correlation REAL, n INTEGER,
    PRIMARY KEY (theme, asset, lag)
);
CREATE TABLE IF NOT EXISTS alignment_granger (
    theme TEXT NOT NULL, asset TEXT NOT NULL, direction TEXT NOT NULL, lags INTEGER NOT NULL,
    f_stat REAL, p_value REAL, q_value REAL, significant INTEGER,
    PRIMARY KEY (theme, asset, direction, lags)
);
CREATE TABLE IF NOT EXISTS alignment_events (
    theme TEXT NOT NULL, asset TEXT NOT NULL, "offset" INTEGER NOT NULL, mean_car REAL,
    ci_low REAL, ci_high REAL, events INTEGER,
    PRIMARY KEY (theme, asset, "offset")
);
CREATE TABLE IF NOT EXISTS alignment_series (
    theme TEXT NOT NULL, asset TEXT NOT NULL, date TEXT NOT NULL, value REAL, cum_return REAL,
    PRIMARY KEY (theme, asset, date)
);
"""
INDEX_TO_RETURNS = "index→returns"
RETURNS_TO_INDEX = "returns→index"


class AlignError(NarrativesError):
    """Alignment cannot run: no index, no prices for a proxy, too few sessions."""


@dataclass
class PairResult:
    """One theme beside one asset."""

    theme: str
    asset: str
    sessions: int
    leadlag: pd.DataFrame  # lag, correlation, n
    granger: pd.DataFrame  # direction, lags, f_stat, p_value (q_value added across pairs)
    events: pd.DataFrame  # offset, mean_car, ci_low, ci_high, events
    series: pd.DataFrame  # date, value, cum_return

    @property
    def best_lag(self) -> tuple[int, float]:
        """The lag with the strongest correlation (by absolute value) and that correlation."""
        rows = self.leadlag.dropna(subset=["correlation"])
        if rows.empty:
            return 0, float("nan")
        top = rows.loc[rows["correlation"].abs().idxmax()]
        return int(top["lag"]), float(top["correlation"])


@dataclass
class AlignSummary:
    pairs: list[PairResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "theme/asset: why"
    charts: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def align(
    corpus: Corpus,
    themes: Sequence[Theme],
    *,
    assets: Sequence[str] = (),
    max_lag: int = 10,
    granger_lags: int = 5,
    window: tuple[int, int] = (-5, 10),
    charts: Path | None = None,
) -> AlignSummary:
    """Align each theme with its proxies (or with `assets` when given) and store the results."""
    started = time.monotonic()
    if not corpus.db["article_days"].exists():
        raise AlignError("no narrative index in this corpus: run `narratives index` first")
    corpus.apply_schema(ALIGN_SCHEMA)
    summary = AlignSummary()
    known = market.tickers(corpus)
    for theme in themes:
        labels = list(assets) or [p.label for p in theme.proxies]
        if not labels:
            summary.skipped.append(f"{theme.id}: no proxy assets (add proxies or pass --asset)")
            continue
        for label in labels:
            try:
                returns = market.asset_returns(corpus, label)
            except market.PricesError as exc:
                summary.skipped.append(f"{theme.id}/{label}: {exc}")
                continue
            returns.index = pd.to_datetime(returns.index)
            index = session_index(corpus, theme.id, returns.index)
            # Only the sessions the corpus covers: prices often reach years beyond the news.
            covered = index.dropna().index
            if len(covered):
                keep = (returns.index >= covered.min()) & (returns.index <= covered.max())
                returns, index = returns[keep], index[keep]
            if index.notna().sum() < 2 * granger_lags + 10:
                summary.skipped.append(
                    f"{theme.id}/{label}: {int(index.notna().sum())} sessions with news beside "
                    "prices, too few to align"
                )
                continue
            summary.pairs.append(
                align_pair(
                    theme.id, label, index, returns, max_lag=max_lag,
                    granger_lags=granger_lags, window=window,
                    spread=market.parse_label(label, known)[1] is not None,
                )
            )  # fmt: skip
    correct_granger(summary.pairs)
    _store(corpus, summary.pairs)
    if charts is not None:
        summary.charts = [draw_chart(pair, themes, charts) for pair in summary.pairs]
    summary.seconds = time.monotonic() - started
    return summary


def session_index(corpus: Corpus, theme: str, sessions: pd.DatetimeIndex) -> pd.Series:
    """The theme's index per session: articles after the close or on closed days roll forward."""
    rows = corpus.db.execute(
        "SELECT a.published, d.source, t.score, t.carries FROM article_themes t "
        "JOIN article_days d ON d.article_id = t.article_id "
        "JOIN articles a ON a.id = t.article_id WHERE t.theme = ?",
        [theme],
    ).fetchall()
    days = [s.date() for s in sessions]
    counted = []
    for published, source, score, carries in rows:
        session = market.session_of(published, days)
        if session is not None:
            counted.append((theme, source, session.isoformat(), 1, score, carries))
    if not counted:
        return pd.Series(np.nan, index=sessions)
    counts = pd.DataFrame(
        counted, columns=["theme", "source", "day", "articles", "weight", "carrying"]
    )
    counts = counts.groupby(["theme", "source", "day"], as_index=False).sum()
    frame = narrative_index(counts, "D")
    values = pd.Series(frame["value"].to_numpy(), index=pd.to_datetime(frame["period"]))
    return values.reindex(sessions)


def align_pair(
    theme: str,
    asset: str,
    index: pd.Series,
    returns: pd.Series,
    *,
    max_lag: int = 10,
    granger_lags: int = 5,
    window: tuple[int, int] = (-5, 10),
    spread: bool = False,
) -> PairResult:
    """Lead–lag, Granger and event study for one index and one return series (same sessions).

    The cumulative return compounds an asset's returns; a spread's (asset minus benchmark) are
    summed, as holding one long and one short leg rebalanced daily would earn.
    """
    frame = pd.DataFrame({"value": index, "ret": returns}).sort_index()
    change = frame["value"].diff()
    leadlag = lead_lag(change, frame["ret"], max_lag)
    granger = granger_both_ways(change, frame["ret"], granger_lags)
    events = event_study(frame["value"], frame["ret"], window)
    cum = frame["ret"].cumsum() if spread else (1 + frame["ret"].fillna(0)).cumprod() - 1
    series = pd.DataFrame(
        {"date": frame.index.date.astype(str), "value": frame["value"], "cum_return": cum}
    )
    return PairResult(theme, asset, len(frame), leadlag, granger, events, series)


def lead_lag(change: pd.Series, returns: pd.Series, max_lag: int) -> pd.DataFrame:
    """corr(change_t, return_{t+lag}) for lag in −max_lag…max_lag, on pairs where both exist."""
    rows = []
    for lag in range(-max_lag, max_lag + 1):
        later = returns.shift(-lag)
        both = pd.concat([change, later], axis=1).dropna()
        n = len(both)
        corr = float(both.iloc[:, 0].corr(both.iloc[:, 1])) if n > 2 else float("nan")
        rows.append({"lag": lag, "correlation": corr, "n": n})
    return pd.DataFrame(rows)


def granger_both_ways(change: pd.Series, returns: pd.Series, lags: int) -> pd.DataFrame:
    """F-tests that index changes help predict returns, and the reverse, for 1…lags lags."""
    from statsmodels.tsa.stattools import grangercausalitytests

    both = pd.concat([returns.rename("ret"), change.rename("change")], axis=1).dropna()
    rows = []
    if len(both) < 3 * lags + 5:
        return pd.DataFrame(rows, columns=["direction", "lags", "f_stat", "p_value"])
    for direction, columns in (
        (INDEX_TO_RETURNS, ["ret", "change"]),
        (RETURNS_TO_INDEX, ["change", "ret"]),
    ):
        # statsmodels prints its tables unless told not to, and warns that it may stop asking.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            tests = grangercausalitytests(both[columns].to_numpy(), maxlag=lags, verbose=False)
        for lag, (result, _) in tests.items():
            f_stat, p_value = result["ssr_ftest"][0], result["ssr_ftest"][1]
            rows.append({"direction": direction, "lags": lag, "f_stat": f_stat, "p_value": p_value})
    return pd.DataFrame(rows)


def correct_granger(pairs: Sequence[PairResult], alpha: float = 0.05) -> None:
    """Benjamini–Hochberg q-values across every Granger test of the run."""
    from statsmodels.stats.multitest import multipletests

    p_values = [p for pair in pairs for p in pair.granger.get("p_value", pd.Series()).tolist()]
    if not p_values:
        return
    reject, q_values, _, _ = multipletests(p_values, alpha=alpha, method="fdr_bh")
    at = 0
    for pair in pairs:
        n = len(pair.granger)
        if n:
            pair.granger["q_value"] = q_values[at : at + n]
            pair.granger["significant"] = reject[at : at + n].astype(int)
        at += n


def event_study(
    value: pd.Series, returns: pd.Series, window: tuple[int, int] = (-5, 10), top: float = 0.9
) -> pd.DataFrame:
    """Mean cumulative return around top-decile sessions of the index, with 95% intervals.

    The cumulative return at offset k is measured from the event session's close: the sum of
    returns over sessions 1…k after it, and minus the returns from k+1 up to the event for k < 0,
    so every path passes through 0 at the event.
    """
    from scipy import stats

    ret = returns.to_numpy(dtype=float)
    level = value.to_numpy(dtype=float)
    known = ~np.isnan(level)
    if known.sum() < 10:
        return pd.DataFrame(columns=["offset", "mean_car", "ci_low", "ci_high", "events"])
    threshold = np.nanquantile(level, top)
    first, last = window
    events = [
        i
        for i in np.flatnonzero(known & (level >= threshold))
        if i + first >= 1 and i + last < len(ret)
    ]
    rows = []
    for offset in range(first, last + 1):
        paths = []
        for i in events:
            if offset >= 0:
                segment = ret[i + 1 : i + offset + 1]
                paths.append(np.nansum(segment))
            else:
                paths.append(-np.nansum(ret[i + offset + 1 : i + 1]))
        n = len(paths)
        mean = float(np.mean(paths)) if n else float("nan")
        if n > 1:
            half = stats.t.ppf(0.975, n - 1) * float(np.std(paths, ddof=1)) / math.sqrt(n)
        else:
            half = float("nan")
        rows.append(
            {
                "offset": offset,
                "mean_car": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
                "events": n,
            }
        )
    return pd.DataFrame(rows)


def _store(corpus: Corpus, pairs: Sequence[PairResult]) -> None:
    db = corpus.db
    with corpus.transaction():
        for pair in pairs:
            key = [pair.theme, pair.asset]
            for table in ("leadlag", "granger", "events", "series"):
                db.execute(f"DELETE FROM alignment_{table} WHERE theme = ? AND asset = ?", key)
            db.conn.executemany(
                "INSERT INTO alignment_leadlag VALUES (?, ?, ?, ?, ?)",
                [
                    (*key, int(r.lag), sql_number(r.correlation, 8), int(r.n))
                    for r in pair.leadlag.itertuples()
                ],
            )
            db.conn.executemany(
                "INSERT INTO alignment_granger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *key,
                        r.direction,
                        int(r.lags),
                        sql_number(r.f_stat, 8),
                        sql_number(r.p_value, 8),
                        sql_number(getattr(r, "q_value", None), 8),
                        int(getattr(r, "significant", 0)),
                    )
                    for r in pair.granger.itertuples()
                ],
            )
            db.conn.executemany(
                "INSERT INTO alignment_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *key,
                        int(r.offset),
                        sql_number(r.mean_car, 8),
                        sql_number(r.ci_low, 8),
                        sql_number(r.ci_high, 8),
                        int(r.events),
                    )
                    for r in pair.events.itertuples()
                ],
            )
            db.conn.executemany(
                "INSERT INTO alignment_series VALUES (?, ?, ?, ?, ?)",
                [
                    (*key, r.date, sql_number(r.value, 8), sql_number(r.cum_return, 8))
                    for r in pair.series.itertuples()
                ],
            )


def draw_chart(pair: PairResult, themes: Sequence[Theme], directory: Path) -> Path:
    """A PNG of the theme's index (left axis) and the asset's cumulative return (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {t.id: t.name for t in themes}
    directory.mkdir(parents=True, exist_ok=True)
    series = pair.series
    dates = pd.to_datetime(series["date"])
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6.5), gridspec_kw={"height_ratios": [2.2, 1]}, constrained_layout=True
    )
    # Daily values are noisy and gappy: dots for the sessions, a 10-session mean for the trend.
    top.scatter(dates, series["value"], s=6, color="#9dc3e6", label="index (session)")
    trend = series["value"].rolling(10, min_periods=3).mean()
    top.plot(dates, trend, color="#1f4e79", linewidth=1.6, label="index, 10-session mean")
    top.set_ylabel("index (mean 100)")
    right = top.twinx()
    right.plot(dates, series["cum_return"] * 100, color="#c55a11", linewidth=1.4, label=pair.asset)
    right.set_ylabel(f"{pair.asset} cumulative return (%)")
    top.set_title(f"{names.get(pair.theme, pair.theme)}: index vs {pair.asset}")
    handles = top.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    top.legend(handles, [h.get_label() for h in handles], loc="upper left", frameon=False)
    lag, corr = pair.best_lag
    bottom.bar(pair.leadlag["lag"], pair.leadlag["correlation"], color="#7f7f7f")
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_xlabel("lag in sessions (> 0: the narrative leads returns)")
    bottom.set_ylabel("correlation")
    bottom.set_title(f"lead–lag: strongest at lag {lag:+d} (r = {corr:.2f})", fontsize=10)
    slug = f"{pair.theme}_{pair.asset}".replace("−", "-minus-").replace("/", "_")
    path = directory / f"{slug}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

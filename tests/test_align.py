"""Alignment with returns: a synthetic corpus with known truth, and the plumbing around it."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from narratives.align import align, event_study, lead_lag
from narratives.index import build_index
from narratives.market import load_prices, session_of
from narratives.store import Corpus
from test_index import add_article

from conftest import load_script

LEAD = 3  # sessions by which the synthetic narrative leads the synthetic returns
synthetic = load_script("synthetic_alignment")
THEME = synthetic.THEME


def synthetic_corpus(path, *, shuffle: bool) -> Corpus:
    return synthetic.synthetic_corpus(path, lead=LEAD, shuffle=shuffle)


def test_alignment_recovers_the_lead_and_its_sign(tmp_path):
    corpus = synthetic_corpus(tmp_path / "lead.db", shuffle=False)
    summary = align(corpus, [THEME], charts=tmp_path / "charts")
    (pair,) = summary.pairs
    lag, corr = pair.best_lag
    assert (lag, corr > 0) == (LEAD, True)
    forward = pair.granger[pair.granger["direction"] == "index→returns"]
    assert forward[forward["lags"] >= LEAD]["significant"].all()
    assert summary.charts[0].exists() and summary.charts[0].stat().st_size > 10_000
    stored = corpus.db.execute(
        "SELECT lag FROM alignment_leadlag ORDER BY abs(correlation) DESC LIMIT 1"
    ).fetchone()
    assert stored == (LEAD,)


def test_alignment_finds_nothing_on_a_shuffled_control(tmp_path):
    corpus = synthetic_corpus(tmp_path / "control.db", shuffle=True)
    (pair,) = align(corpus, [THEME]).pairs
    assert pair.leadlag["correlation"].abs().max() < 0.2
    assert not pair.granger["significant"].any()


def test_news_after_the_close_or_on_a_weekend_counts_for_the_next_session():
    sessions = [date(2024, 7, 12), date(2024, 7, 15), date(2024, 7, 16)]  # Fri, Mon, Tue
    assert session_of("2024-07-12T19:00:00Z", sessions) == date(2024, 7, 12)  # 3 p.m. New York
    assert session_of("2024-07-12T20:30:00Z", sessions) == date(2024, 7, 15)  # after the close
    assert session_of("2024-07-13T15:00:00Z", sessions) == date(2024, 7, 15)  # Saturday


def test_lead_lag_sign_convention():
    rng = np.random.default_rng(3)
    change = pd.Series(rng.normal(size=200))
    returns = change.shift(2).fillna(0)  # returns follow the narrative two sessions later
    table = lead_lag(change, returns, 5).set_index("lag")["correlation"]
    assert table.idxmax() == 2 and table[2] > 0.99


def test_event_study_paths_pass_through_zero_at_the_event():
    value = pd.Series([1.0] * 30 + [9.0] + [1.0] * 30)
    returns = pd.Series([0.0] * 31 + [0.01] * 30)
    events = event_study(value, returns, (-3, 3), top=0.99).set_index("offset")
    assert events.loc[0, "mean_car"] == 0
    assert events.loc[3, "mean_car"] == pytest.approx(0.03)
    assert events.loc[-3, "mean_car"] == 0


def test_missing_prices_are_reported_not_fatal(tmp_path):
    corpus = Corpus(tmp_path / "c.db")
    for n in range(5):
        day = date(2024, 1, 2) + timedelta(days=n)
        add_article(corpus, n + 1, f"{day}T15:00:00Z", "A", {"synthetic": 0.5})
    build_index(corpus, freqs=["D"])
    summary = align(corpus, [THEME])
    assert summary.pairs == [] and "SYN" in summary.skipped[0]


def test_cumulative_return_compounds_a_hyphenated_ticker_and_sums_a_spread(tmp_path):
    corpus = synthetic_corpus(tmp_path / "c.db", shuffle=False)
    closes = corpus.db.execute("SELECT date, close FROM prices WHERE ticker = 'SYN'").fetchall()
    csv = tmp_path / "more.csv"
    csv.write_text(
        "date,ticker,close\n" + "".join(f"{d},BTC-USD,{c}\n{d},FLAT,100\n" for d, c in closes)
    )
    load_prices(corpus, [csv])
    pairs = {p.asset: p for p in align(corpus, [THEME], assets=["BTC-USD", "BTC-USD−FLAT"]).pairs}
    returns = pairs["BTC-USD"].series.set_index("date")
    first, last = closes[0][1], closes[-1][1]
    assert returns["cum_return"].iloc[-1] == pytest.approx(last / first - 1, rel=1e-6)
    spread = pairs["BTC-USD−FLAT"].series
    assert spread["cum_return"].iloc[-1] == pytest.approx(
        sum(b / a - 1 for (_, a), (_, b) in pairwise(closes)), rel=1e-6
    )

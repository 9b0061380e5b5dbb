"""Prices: loading CSVs, fetching through a fake download, returns, spreads and sessions."""

from __future__ import annotations

import math
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from narratives import market
from narratives.market import PricesError
from narratives.store import Corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    with Corpus(tmp_path / "c.db") as opened:
        yield opened


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def stored(corpus: Corpus, ticker: str) -> list[tuple]:
    return corpus.db.execute(
        "SELECT date, close, adjusted FROM prices WHERE ticker = ? ORDER BY date", [ticker]
    ).fetchall()


def load_closes(corpus: Corpus, tmp_path: Path, table: dict[str, list[tuple[str, float]]]) -> None:
    lines = ["date,ticker,close"]
    lines += [f"{day},{ticker},{close}" for ticker, rows in table.items() for day, close in rows]
    market.load_prices(corpus, [write(tmp_path / "long.csv", "\n".join(lines))])


# -- loading ----------------------------------------------------------------------------------


def test_yahoo_csv_takes_ticker_from_file_name_and_prefers_adj_close(corpus, tmp_path):
    path = write(
        tmp_path / "SPY.csv",
        """
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100,101,99,100.5,98.5,1000
2024-01-03,100,101,99,101.0,,1000
""",
    )
    summary = market.load_prices(corpus, [path])
    assert stored(corpus, "SPY") == [("2024-01-02", 98.5, 1), ("2024-01-03", 101.0, 0)]
    assert summary.tickers["SPY"].rows == 2
    assert (summary.tickers["SPY"].first, summary.tickers["SPY"].last) == (
        "2024-01-02",
        "2024-01-03",
    )
    assert summary.files == [str(path)]
    source = corpus.db.execute("SELECT DISTINCT source FROM prices").fetchone()[0]
    assert source == str(path)


def test_yahoo_csv_without_adj_close_stores_unadjusted_close(corpus, tmp_path):
    market.load_prices(corpus, [write(tmp_path / "qqq.csv", "Date,Close\n2024-01-02,400.25")])
    assert stored(corpus, "QQQ") == [("2024-01-02", 400.25, 0)]


def test_file_names_with_underscore_or_lower_case_become_hyphenated_upper_tickers(corpus, tmp_path):
    write(tmp_path / "BTC_USD.csv", "Date,Close\n2024-01-06,44000")
    write(tmp_path / "eth-usd.csv", "date,close\n2024-01-06,2200")
    market.load_prices(corpus, [tmp_path / "BTC_USD.csv", str(tmp_path / "eth-usd.csv")])
    assert market.tickers(corpus) == ["BTC-USD", "ETH-USD"]


def test_long_form_reads_columns_in_any_order_and_adj_close(corpus, tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        """
Close,Ticker,Adj_Close,DATE
10,iwm,9.5,2024-01-02
20,SPY,,2024-01-02
""",
    )
    summary = market.load_prices(corpus, [path])
    assert stored(corpus, "IWM") == [("2024-01-02", 9.5, 1)]
    assert stored(corpus, "SPY") == [("2024-01-02", 20.0, 0)]
    assert sorted(summary.tickers) == ["IWM", "SPY"]


def test_bad_rows_are_skipped_and_counted_without_stopping_the_file(corpus, tmp_path):
    path = write(
        tmp_path / "SPY.csv",
        """
Date,Close
2024-01-02,100
not a date,101
2024-13-45,101
2024-01-03,null
2024-01-04,0
2024-01-05,-3
2024-01-08,
,
2024-01-09,102
""",
    )
    summary = market.load_prices(corpus, [path])
    assert [row[0] for row in stored(corpus, "SPY")] == ["2024-01-02", "2024-01-09"]
    assert summary.skipped == {
        "unparsable date": 2,
        "non-numeric close": 2,
        "non-positive close": 2,
    }
    assert summary.examples[0] == f"{path}:3 ('not a date'): unparsable date"


def test_dates_as_iso_timestamps_with_offsets_or_us_slashes_keep_their_written_date(
    corpus, tmp_path
):
    path = write(
        tmp_path / "SPY.csv",
        """
Date,Close
2024-01-02,1
2024-01-03 00:00:00-05:00,2
2020-07-27 04:00:00+00:00,3
01/04/2024,4
2024-01-05T00:00:00Z,5
""",
    )
    market.load_prices(corpus, [path])
    assert [row[0] for row in stored(corpus, "SPY")] == [
        "2020-07-27",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]


def test_unrecognised_header_raises_error_naming_the_file_and_the_columns_it_needs(
    corpus, tmp_path
):
    path = write(tmp_path / "weird.csv", "when,price\n2024-01-02,1")
    with pytest.raises(PricesError) as caught:
        market.load_prices(corpus, [path])
    message = str(caught.value)
    assert str(path) in message and "when, price" in message
    assert "Date and Close" in message and "date, ticker and close" in message


def test_reloading_the_same_file_changes_nothing(corpus, tmp_path):
    path = write(tmp_path / "SPY.csv", "Date,Close\n2024-01-02,100\n2024-01-03,101")
    first = market.load_prices(corpus, [path])
    again = market.load_prices(corpus, [path])
    assert (first.rows, first.changed) == (2, 2)
    assert (again.rows, again.changed) == (2, 0)
    assert corpus.count("prices") == 2


def test_a_newer_file_replaces_overlapping_dates_and_keeps_the_rest(corpus, tmp_path):
    market.load_prices(
        corpus, [write(tmp_path / "old/SPY.csv", "Date,Close\n2024-01-02,100\n2024-01-03,101")]
    )
    newer = write(tmp_path / "new/SPY.csv", "Date,Close\n2024-01-03,111\n2024-01-04,112")
    summary = market.load_prices(corpus, [newer])
    assert [row[:2] for row in stored(corpus, "SPY")] == [
        ("2024-01-02", 100.0),
        ("2024-01-03", 111.0),
        ("2024-01-04", 112.0),
    ]
    assert summary.changed == 2


def test_a_directory_loads_every_csv_in_name_order(corpus, tmp_path):
    write(tmp_path / "prices/SPY.csv", "Date,Close\n2024-01-02,100")
    write(tmp_path / "prices/IWM.csv", "Date,Close\n2024-01-02,50")
    write(tmp_path / "prices/notes.txt", "not prices")
    summary = market.load_prices(corpus, [tmp_path / "prices"])
    assert [Path(f).name for f in summary.files] == ["IWM.csv", "SPY.csv"]
    assert market.tickers(corpus) == ["IWM", "SPY"]


def test_missing_path_or_directory_without_csv_raises(corpus, tmp_path):
    with pytest.raises(PricesError, match="no price file or directory"):
        market.load_prices(corpus, [tmp_path / "absent.csv"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PricesError, match=r"holds no \.csv files"):
        market.load_prices(corpus, [tmp_path / "empty"])


def test_mixing_adjusted_and_unadjusted_closes_warns_and_replace_clears_the_mix(corpus, tmp_path):
    market.load_prices(corpus, [write(tmp_path / "a/SPY.csv", "Date,Close\n2024-01-02,100")])
    adjusted = write(tmp_path / "b/SPY.csv", "Date,Close,Adj Close\n2024-01-03,101,99")
    summary = market.load_prices(corpus, [adjusted])
    assert len(summary.warnings) == 1 and "SPY now mixes adjusted" in summary.warnings[0]
    assert market.coverage(corpus)[0].adjusted is False
    replaced = market.load_prices(corpus, [adjusted], replace=True)
    assert replaced.warnings == [] and replaced.changed == 1
    assert stored(corpus, "SPY") == [("2024-01-03", 99.0, 1)]
    assert market.coverage(corpus)[0].adjusted is True


# -- fetching ---------------------------------------------------------------------------------


def fake_frame(days: list[str], closes: list[float], adj: list[float] | None = None):
    index = pd.DatetimeIndex(pd.to_datetime(days)).tz_localize("America/New_York")
    columns = {"Open": closes, "Close": closes}
    if adj is not None:
        columns["Adj Close"] = adj
    return pd.DataFrame(columns, index=index)


def test_fetch_upserts_what_download_returns_within_the_dates_asked(corpus):
    calls = []

    def fake_download(ticker, since, until):
        calls.append((ticker, since, until))
        days = ["2024-01-02", "2024-01-03", "2024-01-04"]
        return fake_frame(days, [10.0, 11.0, 12.0], [9.0, 10.0, 11.0])

    summary = market.fetch_prices(
        corpus, ["spy", "SPY"], since="2024-01-02", until="2024-01-03", download=fake_download
    )
    assert calls == [("SPY", date(2024, 1, 2), date(2024, 1, 3))]
    assert stored(corpus, "SPY") == [("2024-01-02", 9.0, 1), ("2024-01-03", 10.0, 1)]
    assert summary.tickers["SPY"].rows == 2
    assert corpus.db.execute("SELECT DISTINCT source FROM prices").fetchone()[0] == "fake_download"
    again = market.fetch_prices(
        corpus, ["SPY"], since="2024-01-02", until="2024-01-03", download=fake_download
    )
    assert again.changed == 0


def test_fetch_records_failed_and_empty_tickers_and_carries_on(corpus):
    def download(ticker, since, until):
        if ticker == "BAD":
            raise ConnectionError("network down")
        if ticker == "GONE":
            return pd.DataFrame()
        return fake_frame(["2024-01-02"], [5.0])

    summary = market.fetch_prices(corpus, ["BAD", "GONE", "IWM"], download=download)
    assert summary.failed["BAD"] == "ConnectionError: network down"
    assert "no prices came back" in summary.failed["GONE"]
    assert stored(corpus, "IWM") == [("2024-01-02", 5.0, 0)]


def test_fetch_reads_multiindex_columns_like_yfinance_download(corpus):
    def download(ticker, since, until):
        frame = fake_frame(["2024-01-02"], [5.0], [4.5])
        frame.columns = pd.MultiIndex.from_product([frame.columns, [ticker]])
        return frame

    market.fetch_prices(corpus, ["GLD"], download=download)
    assert stored(corpus, "GLD") == [("2024-01-02", 4.5, 1)]


def test_fetch_without_yfinance_says_how_to_install_it(corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    with pytest.raises(PricesError, match=r"pip install 'narratives\[prices\]'"):
        market.fetch_prices(corpus, ["SPY"])


# -- series -----------------------------------------------------------------------------------


def test_closes_are_a_sorted_series_on_a_datetime_index_limited_by_dates(corpus, tmp_path):
    load_closes(
        corpus, tmp_path, {"SPY": [("2024-01-04", 3), ("2024-01-02", 1), ("2024-01-03", 2)]}
    )
    series = market.closes(corpus, "spy", since="2024-01-03")
    assert isinstance(series.index, pd.DatetimeIndex) and series.index.name == "date"
    assert series.name == "SPY"
    assert series.to_dict() == {pd.Timestamp("2024-01-03"): 2.0, pd.Timestamp("2024-01-04"): 3.0}
    assert list(market.closes(corpus, "SPY", until=date(2024, 1, 2))) == [1.0]


def test_simple_and_log_returns_drop_the_first_session(corpus, tmp_path):
    load_closes(
        corpus, tmp_path, {"SPY": [("2024-01-02", 100), ("2024-01-03", 110), ("2024-01-04", 99)]}
    )
    simple = market.returns(corpus, "SPY")
    assert list(simple.index) == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-04")]
    assert simple.tolist() == pytest.approx([0.10, -0.10])
    logged = market.returns(corpus, "SPY", log=True)
    assert logged.tolist() == pytest.approx([math.log(1.1), math.log(0.9)])


def test_returns_since_a_date_keep_the_return_on_that_date(corpus, tmp_path):
    load_closes(
        corpus, tmp_path, {"SPY": [("2024-01-02", 100), ("2024-01-03", 110), ("2024-01-04", 99)]}
    )
    later = market.returns(corpus, "SPY", since="2024-01-03")
    assert later.tolist() == pytest.approx([0.10, -0.10])


def test_spread_returns_subtract_benchmark_on_the_sessions_both_have(corpus, tmp_path):
    load_closes(
        corpus,
        tmp_path,
        {
            "IWM": [("2024-01-02", 50), ("2024-01-03", 55), ("2024-01-05", 44)],
            "SPY": [
                ("2024-01-02", 100),
                ("2024-01-03", 101),
                ("2024-01-04", 1),
                ("2024-01-05", 99.99),
            ],
        },
    )
    spread = market.spread_returns(corpus, "IWM", "SPY")
    assert spread.name == "IWM-SPY"
    assert list(spread.index) == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-05")]
    # 01-05 spans 01-03 → 01-05 for both: IWM -20%, SPY -1%.
    assert spread.tolist() == pytest.approx([0.10 - 0.01, -0.20 - (-0.01)])


def test_asset_returns_reads_tickers_hyphen_spreads_and_unicode_minus(corpus, tmp_path):
    rows = [("2024-01-02", 100), ("2024-01-03", 110)]
    load_closes(
        corpus,
        tmp_path,
        {"IWM": rows, "SPY": [("2024-01-02", 100), ("2024-01-03", 105)], "BTC-USD": rows},
    )
    assert market.asset_returns(corpus, "iwm").tolist() == pytest.approx([0.10])
    unicode = market.asset_returns(corpus, "IWM−SPY")
    assert unicode.name == "IWM-SPY" and unicode.tolist() == pytest.approx([0.05])
    assert market.asset_returns(corpus, "IWM - SPY").tolist() == pytest.approx([0.05])
    assert market.asset_returns(corpus, "BTC-USD").name == "BTC-USD"
    assert market.asset_returns(corpus, "BTC-USD-SPY").tolist() == pytest.approx([0.05])


def test_unknown_ticker_error_lists_the_loaded_tickers_and_how_to_load(corpus, tmp_path):
    load_closes(corpus, tmp_path, {"SPY": [("2024-01-02", 100)]})
    with pytest.raises(PricesError) as caught:
        market.asset_returns(corpus, "XYZ-SPY")
    message = str(caught.value)
    assert "no prices for XYZ" in message and "it has SPY" in message
    assert "narratives prices load" in message


def test_a_corpus_without_prices_says_how_to_load_them(corpus):
    with pytest.raises(PricesError, match="it has no prices at all"):
        market.returns(corpus, "SPY")
    with pytest.raises(PricesError, match="narratives prices load"):
        market.sessions(corpus)


def test_returns_on_sessions_give_a_24_7_asset_a_weekend_spanning_monday_return(corpus, tmp_path):
    load_closes(
        corpus,
        tmp_path,
        {
            "SPY": [("2024-01-05", 100), ("2024-01-08", 100)],
            "BTC-USD": [
                ("2024-01-05", 100),
                ("2024-01-06", 200),
                ("2024-01-07", 50),
                ("2024-01-08", 120),
            ],
        },
    )
    weekly = market.returns(corpus, "BTC-USD", sessions=market.sessions(corpus))
    assert weekly.to_dict() == {pd.Timestamp("2024-01-08"): pytest.approx(0.20)}


# -- sessions ---------------------------------------------------------------------------------


def test_sessions_are_the_reference_tickers_dates(corpus, tmp_path):
    load_closes(
        corpus,
        tmp_path,
        {"SPY": [("2024-01-03", 1), ("2024-01-02", 1)], "BTC-USD": [("2024-01-06", 1)]},
    )
    assert market.sessions(corpus) == [date(2024, 1, 2), date(2024, 1, 3)]


def test_sessions_fall_back_to_weekdays_when_the_reference_has_no_prices(corpus, tmp_path):
    load_closes(corpus, tmp_path, {"BTC-USD": [("2024-01-05", 1), ("2024-01-09", 1)]})
    assert market.sessions(corpus) == [date(2024, 1, 5), date(2024, 1, 8), date(2024, 1, 9)]


# Fri 2024-03-08; DST starts Sun 03-10; Mon 03-11; Tue 03-12 … then a holiday gap over
# Good Friday 2024-03-29 (Thu 03-28 → Mon 04-01). July 4th 2024 is a Thursday.
SESSIONS = [
    date(2024, 3, 8),
    date(2024, 3, 11),
    date(2024, 3, 12),
    date(2024, 3, 28),
    date(2024, 4, 1),
    date(2024, 7, 3),
    date(2024, 7, 5),
]


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2024-03-08T20:59:00Z", date(2024, 3, 8)),  # 15:59 EST: before the close
        ("2024-03-08T21:00:00Z", date(2024, 3, 11)),  # 16:00 EST: at the close, next session
        ("2024-03-08T23:30:00-05:00", date(2024, 3, 11)),  # evening: next session
        ("2024-03-09T15:00:00Z", date(2024, 3, 11)),  # Saturday
        ("2024-03-10T12:00:00+00:00", date(2024, 3, 11)),  # Sunday, the day DST starts
        ("2024-03-11T19:59:00Z", date(2024, 3, 11)),  # 15:59 EDT: before the close
        ("2024-03-11T20:00:00Z", date(2024, 3, 12)),  # 16:00 EDT: after the close
        ("2024-03-12T03:30:00Z", date(2024, 3, 12)),  # 23:30 EDT Monday evening → Tuesday
        ("2024-03-13T14:00:00Z", date(2024, 3, 28)),  # a gap in the sessions: the next one
        ("2024-03-29T14:00:00Z", date(2024, 4, 1)),  # Good Friday holiday
        ("2024-07-04T15:00:00Z", date(2024, 7, 5)),  # Independence Day
        ("2024-07-05T19:00:00Z", date(2024, 7, 5)),  # last session, 15:00 EDT
        ("2024-07-05T20:30:00Z", None),  # after the last close: beyond the sessions
        ("2024-03-01T15:00:00Z", None),  # before the first session
        ("2024-03-08 20:00:00", date(2024, 3, 8)),  # naive means UTC: 15:00 EST
        (datetime(2024, 3, 11, 21, 0, tzinfo=UTC), date(2024, 3, 12)),
    ],
)
def test_session_of_maps_news_to_the_session_it_can_move(published, expected):
    assert market.session_of(published, SESSIONS) == expected


def test_session_of_with_no_sessions_is_none():
    assert market.session_of("2024-03-08T15:00:00Z", []) is None


def test_a_binary_file_raises_a_prices_error_not_a_decode_error(corpus, tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_bytes(b"Date,Close\n2024-01-02,\xff\xfe\x00100\n")
    with pytest.raises(PricesError, match="not a readable UTF-8 CSV"):
        market.load_prices(corpus, [path])


def test_summary_as_dict_reports_totals_and_per_ticker_spans(corpus, tmp_path):
    path = write(tmp_path / "SPY.csv", "Date,Close\n2024-01-02,100\n2024-01-03,x")
    report = market.load_prices(corpus, [path]).as_dict()
    assert report["rows"] == 1 and report["changed"] == 1
    assert report["tickers"] == {
        "SPY": {"rows": 1, "changed": 1, "first": "2024-01-02", "last": "2024-01-02"}
    }
    assert report["skipped"] == {"non-numeric close": 1}

"""URL canonicalisation, date parsing and text hygiene: the rules dedup and the index rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from narratives.dates import iso, parse_date
from narratives.errors import DateError
from narratives.text import clean_text, content_hash, html_to_text, split_paragraphs
from narratives.urls import canonicalize, is_http_url, same_site, url_key

BASE = "https://www.example-news.com/2024/07/15/small-caps-rally.html"


@pytest.mark.parametrize(
    "variant",
    [
        BASE + "?utm_source=rss&utm_medium=feed&utm_campaign=markets",
        BASE + "?mod=home-page",
        BASE + "?ref=twitter&fbclid=abc123",
        BASE + "#comments",
        "https://WWW.Example-News.com:443/2024/07/15/small-caps-rally.html",
    ],
)
def test_canonicalize_drops_tracking_params_fragments_and_default_port(variant):
    assert canonicalize(variant) == BASE


def test_canonicalize_keeps_meaningful_query_sorted():
    url = "https://example.com/article?page=2&id=77&utm_source=x"
    assert canonicalize(url) == "https://example.com/article?id=77&page=2"


def test_canonicalize_drops_credentials():
    assert canonicalize("https://user:secret@example.com/a") == "https://example.com/a"


@pytest.mark.parametrize(
    "variant",
    [
        "http://example-news.com/2024/07/15/small-caps-rally.html",
        "https://m.example-news.com/2024/07/15/small-caps-rally.html",
        "https://amp.example-news.com/2024/07/15/small-caps-rally.html",
        "https://www.example-news.com/amp/2024/07/15/small-caps-rally.html",
        "https://www.example-news.com/2024/07/15/small-caps-rally.amp.html",
        "https://www.example-news.com/2024/07/15/small-caps-rally.html?outputType=amp",
        "https://www.example-news.com/2024/07/15/small-caps-rally.html?amp",
    ],
)
def test_amp_mobile_and_scheme_variants_share_one_key(variant):
    assert url_key(variant) == url_key(BASE)


def test_different_articles_have_different_keys():
    assert url_key(BASE) != url_key(BASE.replace("small-caps", "big-caps"))
    assert url_key("https://a.com/x?id=1") != url_key("https://a.com/x?id=2")


def test_trailing_amp_path_segment_is_dropped():
    assert url_key("https://news.example.com/markets/story/amp/") == url_key(
        "https://news.example.com/markets/story"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/x", True),
        ("http://example.com", True),
        ("ftp://example.com/x", False),
        ("file:///etc/passwd", False),
        ("javascript:alert(1)", False),
        ("example.com/x", False),
    ],
)
def test_only_absolute_http_urls_count(url, ok):
    assert is_http_url(url) is ok


def test_same_site_ignores_www_and_mobile_prefixes():
    assert same_site("https://www.a.com/x", "https://m.a.com/y")
    assert not same_site("https://a.com/x", "https://b.com/x")


NOW = datetime(2024, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-07-16T20:59:18", "2024-07-16T20:59:18Z"),  # naive is read as UTC
        ("2024-07-16T16:59:18-04:00", "2024-07-16T20:59:18Z"),
        ("Mon, 15 Jul 2024 10:00:00 EDT", "2024-07-15T14:00:00Z"),
        ("Mon, 29 Jul 2019 13:55 GMT", "2019-07-29T13:55:00Z"),
        ("July 15, 2024 4:30 PM ET", "2024-07-15T20:30:00Z"),
        ("2024-01-05 09:30 PST", "2024-01-05T17:30:00Z"),
        ("1721160000", "2024-07-16T20:00:00Z"),  # epoch seconds
        ("1721160000000", "2024-07-16T20:00:00Z"),  # epoch milliseconds
    ],
)
def test_parse_date_normalises_to_utc(raw, expected):
    assert iso(parse_date(raw, now=NOW)) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("2031-01-01T00:00:00Z", "future"),
        ("1970-01-01T00:00:00Z", "before 1990"),
        ("0", "unparseable"),
        ("not a date at all", "unparseable"),
        ("", "no date"),
    ],
)
def test_parse_date_rejects_implausible_dates_with_a_reason(raw, why):
    with pytest.raises(DateError, match=why):
        parse_date(raw, now=NOW)


def test_a_date_a_few_hours_ahead_is_tolerated():
    assert parse_date("2024-12-31T20:00:00Z", now=NOW)


def test_clean_text_removes_invisible_characters_and_normalises_paragraphs():
    raw = "First\u200b paragraph\u00a0here.\r\n\r\n\r\nSecond   one.\n\n"
    assert clean_text(raw) == "First paragraph here.\n\nSecond one."


def test_clean_text_treats_single_newlines_as_paragraphs_when_no_blank_lines():
    assert clean_text("One.\nTwo.\nThree.") == "One.\n\nTwo.\n\nThree."


def test_html_to_text_unescapes_double_escaped_summaries():
    assert html_to_text("The S&amp;amp;P 500 &lt;b&gt;rose&lt;/b&gt;") == "The S&P 500 rose"
    assert html_to_text("<p>One</p><p>Two</p>") == "One\n\nTwo"


def test_split_paragraphs_positions_match_label_paragraph_ids():
    text = "A\n\n\n\nB\n\nC"
    assert split_paragraphs(text) == [(0, "A"), (2, "B"), (3, "C")]


def test_content_hash_ignores_case_spacing_punctuation_and_zero_width():
    a = "Small caps rallied — again.\n\nTraders cheered."
    b = "small caps rallied again\u200b Traders   cheered"
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(a.replace("again", "anew"))

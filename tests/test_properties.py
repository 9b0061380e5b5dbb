"""Property tests: URL canonicalisation, date parsing and ticker patterns hold for any input.

Hypothesis writes the inputs; the examples pinned with `@example` are the ones that broke the
code once, so they keep running even when the random search does not happen to find them again.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from narratives.dates import EARLIEST, FUTURE_TOLERANCE, parse_date
from narratives.entities import EXCHANGES, NOT_TICKERS, EntityLinker, load_spacy
from narratives.errors import DateError
from narratives.kb import Entity, KnowledgeBase
from narratives.urls import (
    DEFAULT_PORTS,
    TRACKING_PARAMS,
    canonicalize,
    host_of,
    is_http_url,
    is_tracking_param,
    same_site,
    url_key,
)

# Modest runs: this file is part of the normal suite and must stay fast (about 20 s of CPU).
PROPERTY = settings(max_examples=150, deadline=None)
FUZZ = settings(max_examples=300, deadline=None)  # cheap tests of arbitrary input: search wider
FEW = settings(max_examples=100, deadline=None)  # each example runs the spaCy pipeline

# ---------------------------------------------------------------------------------------------
# URL strategies

TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "trk_", "at_")
# Names that select an article, and are neither tracking nor AMP parameters.
REAL_PARAMS = ("id", "page", "q", "story", "p", "s", "section", "article_id", "v", "date")
MOBILE_PREFIXES = ("", "www.", "m.", "mobile.", "amp.")


@st.composite
def any_case(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A drawn text with each letter upper- or lower-case: hosts and schemes ignore case."""
    text = draw(texts)
    # One integer, not a boolean per letter: far fewer draws, and it shrinks to lower case.
    mask = draw(st.integers(0, 2 ** len(text) - 1))
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(text))


LOWER_DIGITS = string.ascii_lowercase + string.digits
# A host label that is not itself a mobile/AMP prefix, so "www." + host is a variant of host.
LABELS = st.text(LOWER_DIGITS + "-", min_size=1, max_size=10).filter(
    lambda label: (
        label[0] != "-"
        and label[-1] != "-"
        and label not in ("www", "m", "mobile", "amp")
        and not label.startswith("amp-")
    )
)
HOSTS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABELS, min_size=1, max_size=3),
    st.sampled_from(["com", "net", "io", "co.uk", "com.au"]),
)
SEGMENTS = st.text(string.ascii_letters + string.digits + "_~-", min_size=1, max_size=12).filter(
    lambda s: s.lower() != "amp"  # a path segment "amp" marks the AMP rendering: see AMP tests
)
# Values written percent-encoded in every way a page may link them, including raw bytes that
# are not UTF-8 (legacy Latin-1 search links: `?q=M%FCnchen`).
VALUES = st.one_of(
    st.text(max_size=12).map(lambda v: quote(v, safe="")),
    st.binary(max_size=6).map(lambda v: quote(v, safe="")),
    st.text(string.ascii_letters + string.digits + "._~-", max_size=10),
)
TRACKING_NAMES = st.one_of(
    any_case(st.sampled_from(sorted(TRACKING_PARAMS))),
    st.builds(
        lambda prefix, rest: prefix + rest,
        any_case(st.sampled_from(TRACKING_PREFIXES)),
        st.text(LOWER_DIGITS + "_", max_size=8),
    ),
)


class Param(NamedTuple):
    name: str
    value: str  # already percent-encoded
    tracking: bool


class Url(NamedTuple):
    """A URL as pieces, so a test can write the same article several ways."""

    scheme: str
    userinfo: str
    prefix: str  # www./m./mobile./amp. or ""
    host: str  # as written: any case
    port: int | None
    segments: tuple[str, ...]
    suffix: str  # "", "/", ".html"
    params: tuple[Param, ...]
    fragment: str

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments) + self.suffix if self.segments else "/"

    def text(self, **changes: object) -> str:
        u = self._replace(**changes)
        port = f":{u.port}" if u.port is not None else ""
        query = "&".join(f"{p.name}={p.value}" if p.value else p.name for p in u.params)
        return (
            f"{u.scheme}://{u.userinfo}{u.prefix}{u.host}{port}{u.path}"
            + (f"?{query}" if query else "")
            + (f"#{u.fragment}" if u.fragment else "")
        )

    @property
    def real(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.tracking)


@st.composite
def urls(draw: st.DrawFn) -> Url:
    scheme = draw(st.sampled_from(["http", "https"]))
    real = draw(
        st.lists(st.builds(Param, st.sampled_from(REAL_PARAMS), VALUES, st.just(False)), max_size=4)
    )
    tracking = draw(st.lists(st.builds(Param, TRACKING_NAMES, VALUES, st.just(True)), max_size=4))
    return Url(
        scheme=draw(any_case(st.just(scheme))),
        userinfo=draw(st.sampled_from(["", "reader@", "reader:s3cret@"])),
        prefix=draw(any_case(st.sampled_from(MOBILE_PREFIXES))),
        host=draw(any_case(HOSTS)),
        port=draw(st.none() | st.just(DEFAULT_PORTS[scheme]) | st.integers(1, 65535)),
        segments=tuple(draw(st.lists(SEGMENTS, max_size=4))),
        suffix=draw(st.sampled_from(["", "/", ".html"])),
        params=tuple(draw(st.permutations(real + tracking))),
        fragment=draw(st.sampled_from(["", "comments", "top", "section-2", "amp"])),
    )


def junk_urls() -> st.SearchStrategy[str]:
    """Text shaped like a URL but broken where parsers trip: ports, brackets, schemes."""
    junk_port = st.one_of(
        st.integers(65536, 10**8).map(str), st.from_regex(r"[a-z+\-]{1,4}[0-9]*", fullmatch=True)
    )
    return st.one_of(
        st.builds(lambda h, p, rest: f"http://{h}:{p}/{rest}", HOSTS, junk_port, st.text()),
        st.builds(lambda h, rest: f"https://[{h}/{rest}", st.text(max_size=8), st.text()),
        st.builds(lambda h: f"http://[{h}]/", st.sampled_from(["::1", "2001:db8::7", "v1.x"])),
        st.builds(
            lambda s, rest: f"{s}:{rest}", st.sampled_from(["http", "ftp", "", "x"]), st.text()
        ),
    )


# Surrogates too: JSON input may carry a lone "\ud800" that no encoding accepts.
ANY_TEXT = st.one_of(st.text(), st.text(st.characters(exclude_categories=())), junk_urls())

URL_EXAMPLES = (
    "http://a:99999/",
    "http://a:xyz/",
    "http://[::1/",
    "http://[::1]:8080/x?b=1",
    "https://example.com/search?q=M%FCnchen",
)


def with_examples(*texts: str) -> Callable[[Callable], Callable]:
    def decorate(test: Callable) -> Callable:
        for text in reversed(texts):
            test = example(text)(test)
        return test

    return decorate


# ---------------------------------------------------------------------------------------------
# URL properties


@FUZZ
@given(st.one_of(urls().map(Url.text), ANY_TEXT))
@with_examples(*URL_EXAMPLES)
def test_url_functions_never_raise_on_any_text(text: str) -> None:
    """Feeds and pages hand us anything: each URL function returns, never raises."""
    assert isinstance(is_http_url(text), bool)
    assert isinstance(canonicalize(text), str)
    assert isinstance(url_key(text), str)
    assert isinstance(same_site(text, "https://example.com/"), bool)
    assert isinstance(host_of(text), str)


@PROPERTY
@given(st.one_of(urls().map(Url.text), ANY_TEXT))
@with_examples(*URL_EXAMPLES)
def test_canonicalize_is_idempotent(text: str) -> None:
    once = canonicalize(text)
    assert canonicalize(once) == once


@PROPERTY
@given(st.one_of(urls().map(Url.text), ANY_TEXT))
@with_examples(*URL_EXAMPLES)
def test_url_key_of_the_canonical_url_is_the_url_key(text: str) -> None:
    assert url_key(canonicalize(text)) == url_key(text)


@PROPERTY
@given(urls(), st.randoms(use_true_random=False))
def test_tracking_params_fragment_and_param_order_never_change_canonical_url(
    url: Url, rnd: random.Random
) -> None:
    """Only the parameters that select the article count, in any order, with any fragment."""
    shuffled = list(url.real)
    rnd.shuffle(shuffled)
    bare = url.text(params=tuple(shuffled), fragment="")
    assert canonicalize(url.text()) == canonicalize(bare)
    assert url_key(url.text()) == url_key(bare)


@PROPERTY
@given(st.one_of(urls().map(Url.text), ANY_TEXT))
@with_examples(*URL_EXAMPLES)
def test_no_tracking_param_survives_canonicalize(text: str) -> None:
    """Unless the text is no URL urllib can split: then it comes back as written."""
    try:
        query = urlsplit(canonicalize(text)).query
    except ValueError:
        assert canonicalize(text) == text.strip()
        return
    assert not [k for k, _ in parse_qsl(query, keep_blank_values=True) if is_tracking_param(k)]


@PROPERTY
@given(urls())
def test_canonical_url_has_lower_case_host_no_credentials_default_port_or_fragment(
    url: Url,
) -> None:
    parts = urlsplit(canonicalize(url.text()))
    assert parts.scheme == url.scheme.lower()
    assert parts.netloc == parts.netloc.lower()
    assert parts.hostname == (url.prefix + url.host).lower()
    assert "@" not in parts.netloc
    default = DEFAULT_PORTS[url.scheme.lower()]
    assert parts.port == (None if url.port in (None, default) else url.port)
    assert parts.fragment == ""
    assert parts.path == url.path  # paths are case-sensitive: kept exactly as written


@PROPERTY
@given(urls())
def test_host_of_is_the_lower_case_host_without_www(url: Url) -> None:
    assert host_of(url.text()) == (url.prefix + url.host).lower().removeprefix("www.")


@PROPERTY
@given(urls())
def test_canonicalize_keeps_every_real_param_value_byte_for_byte(url: Url) -> None:
    """Dropping tracking must not alter the rest: `q=%FC` and `q=%FE` are different pages."""

    def decoded(query: str) -> list[tuple[str, bytes]]:
        pairs = [piece.partition("=") for piece in query.split("&") if piece]
        return sorted((k, unquote_to_bytes(v.replace("+", " "))) for k, _, v in pairs)

    expected = sorted((p.name, unquote_to_bytes(p.value)) for p in url.real)
    assert decoded(urlsplit(canonicalize(url.text())).query) == expected


@PROPERTY
@given(
    urls(),
    st.sampled_from(["http", "HTTPS", "https"]),
    any_case(st.sampled_from(MOBILE_PREFIXES)),
)
def test_scheme_and_www_mobile_variants_share_url_key_and_site(
    url: Url, scheme: str, prefix: str
) -> None:
    port = None if url.port in DEFAULT_PORTS.values() else url.port  # :80 is not default for https
    variant = url.text(scheme=scheme, prefix=prefix, port=port)
    original = url.text(port=port)
    assert url_key(variant) == url_key(original)
    assert same_site(variant, original)


@PROPERTY
@given(urls(), st.sampled_from(["lead", "trail", "TRAIL/", "dot", "param", "output"]))
def test_amp_renderings_share_url_key(url: Url, how: str) -> None:
    """/amp/…, …/amp, ….amp.html, ?amp and ?outputType=amp are the article's AMP copy."""
    assume(url.segments or how not in ("lead", "dot"))  # "/amp.html" is no AMP marker
    plain = url.text(suffix=".html" if how == "dot" else url.suffix)
    if how == "lead":
        amp = url.text(segments=("amp", *url.segments))
    elif how in ("trail", "TRAIL/"):  # ".../story/amp" and ".../story/AMP/" for ".../story"
        plain = url.text(suffix="")
        segment, slash = ("amp", "") if how == "trail" else ("AMP", "/")
        amp = url.text(segments=(*url.segments, segment), suffix=slash)
    elif how == "dot":
        amp = url.text(suffix=".amp.html")
    else:
        extra = Param("amp", "", False) if how == "param" else Param("outputType", "amp", False)
        amp = url.text(params=(*url.params, extra))
    assert url_key(amp) == url_key(plain)


@PROPERTY
@given(urls(), SEGMENTS, SEGMENTS, VALUES, VALUES)
def test_different_articles_keep_different_keys(
    url: Url, seg_a: str, seg_b: str, val_a: str, val_b: str
) -> None:
    """Normalising must not merge two articles: another path or parameter value is another key."""
    if seg_a != seg_b:
        a = url.text(segments=(*url.segments, seg_a))
        b = url.text(segments=(*url.segments, seg_b))
        assert url_key(a) != url_key(b)
    if unquote_to_bytes(val_a) != unquote_to_bytes(val_b):
        a = url.text(params=(*url.params, Param("id", val_a, False)))
        b = url.text(params=(*url.params, Param("id", val_b, False)))
        assert url_key(a) != url_key(b)
        assert canonicalize(a) != canonicalize(b)


@PROPERTY
@given(urls())
def test_generated_urls_are_http_urls_and_stay_so_when_canonical(url: Url) -> None:
    assert is_http_url(url.text())
    assert is_http_url(canonicalize(url.text()))


@PROPERTY
@given(ANY_TEXT)
@with_examples(*URL_EXAMPLES)
def test_what_is_http_url_accepts_has_a_readable_port_and_stays_accepted(text: str) -> None:
    """The crawler opens what `is_http_url` accepts: its port must parse, before and after."""
    if is_http_url(text):
        urlsplit(text.strip()).port  # noqa: B018 -- raises ValueError for a port it cannot read
        assert is_http_url(canonicalize(text))


@PROPERTY
@given(
    HOSTS,
    st.one_of(st.integers(65536, 10**9).map(str), st.from_regex(r"[a-z]{1,5}", fullmatch=True)),
)
def test_invalid_port_is_not_an_http_url_and_is_kept_as_written(host: str, port: str) -> None:
    url = f"https://{host}:{port}/story?utm_source=x&id=1"
    assert not is_http_url(url)
    assert canonicalize(url) == f"https://{host}:{port}/story?id=1"


@PROPERTY
@given(st.one_of(TRACKING_NAMES, any_case(st.sampled_from(REAL_PARAMS))))
def test_is_tracking_param_ignores_case_and_knows_prefixes(name: str) -> None:
    expected = name.lower() in TRACKING_PARAMS or name.lower().startswith(TRACKING_PREFIXES)
    assert is_tracking_param(name) is expected
    assert is_tracking_param(name.upper()) is expected


@PROPERTY
@given(st.one_of(urls().map(Url.text), ANY_TEXT), st.one_of(urls().map(Url.text), ANY_TEXT))
def test_same_site_is_reflexive_and_symmetric(a: str, b: str) -> None:
    assert same_site(a, a)
    assert same_site(a, b) == same_site(b, a)


# ---------------------------------------------------------------------------------------------
# Date strategies and properties

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# Naive wall times that, in any offset within ±14 h, land in [1990, NOW].
WALL_TIMES = st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2025, 6, 29))
MOMENTS = st.builds(lambda wall, tz: wall.replace(tzinfo=tz), WALL_TIMES, OFFSETS)

DATE_WORDS = st.sampled_from(
    [
        "Mon,", "Feb", "February", "30", "31", "29", "2024", "0001", "9999", "1989", "1990",
        "10:00", "24:00", "23:59:60", "PM", "ET", "EDT", "UTC", "GMT", "Z", "+25:00", "-2400",
        "+1400", "T", "-", "/", ".", ":", "1e10", "99999999999999", "-1721160000", "1721160000",
        "٣١", "0", "00", "12", "of", "at",
    ]
)  # fmt: skip
# Text built from date-like pieces reaches dateutil's odd corners far sooner than st.text().
DATEISH = st.lists(DATE_WORDS, min_size=1, max_size=7).flatmap(
    lambda words: st.sampled_from([" ", "", "-", "T"]).map(lambda sep: sep.join(words))
)

DATE_EXAMPLES = (
    "2024-07-15T10:00:00+25:00",  # an offset datetime cannot hold: ValueError
    "Mon, 15 Jul 2024 10:00:00 +9999",
    "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC: OverflowError
    "9999-12-31T23:59:59-01:00",  # after datetime.max in UTC
    "Feb 30 2024",
    "0:0",
)


def _utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


@PROPERTY
@given(MOMENTS, st.sampled_from(["auto", "seconds", "milliseconds", "minutes"]), st.booleans())
def test_iso_8601_round_trips_to_the_same_instant(
    moment: datetime, timespec: str, zulu: bool
) -> None:
    text = moment.isoformat(timespec=timespec)
    if zulu and moment.utcoffset() == timedelta(0):
        text = text.replace("+00:00", "Z")
    expected = {
        "auto": moment,
        "milliseconds": moment.replace(microsecond=moment.microsecond // 1000 * 1000),
        "seconds": moment.replace(microsecond=0),
        "minutes": moment.replace(second=0, microsecond=0),
    }[timespec]
    parsed = parse_date(text, now=NOW)
    assert _utc(parsed)
    assert parsed == expected


@PROPERTY
@given(MOMENTS, st.booleans())
def test_rfc_822_round_trips_to_the_second(moment: datetime, gmt: bool) -> None:
    if gmt:
        moment = moment.astimezone(UTC)
    text = format_datetime(moment, usegmt=gmt)  # "Mon, 15 Jul 2024 14:30:00 -0400" or "… GMT"
    parsed = parse_date(text, now=NOW)
    assert _utc(parsed)
    assert parsed == moment.replace(microsecond=0)


@PROPERTY
@given(WALL_TIMES, st.sampled_from(["ET", "EST", "EDT"]))
def test_new_york_wall_times_written_with_et_are_new_york_time(wall: datetime, zone: str) -> None:
    """US newsrooms write "4:30 PM ET" year-round; the zone name follows the calendar."""
    local = wall.replace(tzinfo=NEW_YORK, microsecond=0)
    # Times the DST change skips or repeats have no single reading: not what this is about.
    assume(local.astimezone(UTC) == local.replace(fold=1).astimezone(UTC))
    assume(
        local.astimezone(UTC).astimezone(NEW_YORK).replace(tzinfo=None)
        == wall.replace(microsecond=0)
    )
    text = local.strftime("%B %d, %Y %I:%M:%S %p ") + zone
    assert parse_date(text, now=NOW) == local.astimezone(UTC)


@PROPERTY
@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 6, 30)))
def test_epoch_seconds_and_milliseconds_round_trip(wall: datetime) -> None:
    moment = wall.replace(tzinfo=UTC)
    millis = _epoch_ms(moment)
    seconds = millis // 1000
    to_the_ms = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_date(str(seconds), now=NOW) == moment.replace(microsecond=0)
    assert parse_date(str(millis), now=NOW) == to_the_ms
    assert parse_date(f"{seconds}.{millis % 1000:03d}", now=NOW) == to_the_ms


def _epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


@FUZZ
@given(st.one_of(st.text(), DATEISH))
@with_examples(*DATE_EXAMPLES)
def test_any_text_gives_a_plausible_utc_datetime_or_a_date_error(text: str) -> None:
    """dateutil's ValueError, OverflowError and TypeError all surface as DateError."""
    try:
        parsed = parse_date(text, now=NOW)
    except DateError:
        return
    assert _utc(parsed)
    assert EARLIEST <= parsed <= NOW + FUTURE_TOLERANCE


@PROPERTY
@given(
    st.one_of(st.integers(1, 1989), st.integers(NOW.year + 1, 9999)),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["iso", "iso-offset", "rfc", "words"]),
)
def test_years_outside_1990_to_now_are_date_errors(
    year: int, month: int, day: int, form: str
) -> None:
    moment = datetime(year, month, day, 12, tzinfo=UTC)
    text = {
        "iso": f"{year:04d}-{month:02d}-{day:02d}",
        "iso-offset": f"{year:04d}-{month:02d}-{day:02d}T23:30:00+01:00",
        "rfc": format_datetime(moment),
        "words": f"{moment:%B} {day}, {year:04d}",
    }[form]
    with pytest.raises(DateError):
        parse_date(text, now=NOW)


@pytest.mark.parametrize(
    "raw",
    [
        "Mon, 01 Jan 0001 00:00:00 +0000",  # Go's zero time, as undated Hugo posts carry it
        "Mon, 01 Jan 0001 00:00:00 UTC",
        "January 1, 0001",
        "Jul 15 0024",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "Feb 30 2024",
        "-1721160000",
    ],
)
def test_zero_padded_and_absurd_years_are_date_errors(raw: str) -> None:
    """dateutil reads "0001" after a month name as the two-digit year 01, that is 2001."""
    with pytest.raises(DateError):
        parse_date(raw, now=NOW)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mon, 15 Jul 2024 10:00:00 -0000", datetime(2024, 7, 15, 10, tzinfo=UTC)),
        ("July 15, 2024 0030", datetime(2024, 7, 15, 0, 30, tzinfo=UTC)),
        ("2024-07-15 10:00:00.0012", datetime(2024, 7, 15, 10, 0, 0, 1200, tzinfo=UTC)),
    ],
)
def test_zeros_that_are_offsets_times_or_fractions_still_parse(
    raw: str, expected: datetime
) -> None:
    assert parse_date(raw, now=NOW) == expected


LIMIT = NOW + FUTURE_TOLERANCE
LIMIT_S, EARLIEST_S = int(LIMIT.timestamp()), int(EARLIEST.timestamp())


@PROPERTY
@given(
    st.one_of(
        st.integers(-(10**13), -(10**8)),  # negative epochs, as a sign error writes them
        st.integers(10**8, EARLIEST_S - 1),  # seconds before 1990
        st.integers(10**11 + 1, EARLIEST_S * 1000 - 1),  # milliseconds before 1990
        st.integers(LIMIT_S + 1, 10**11),  # seconds past tomorrow
        st.integers(LIMIT_S * 1000 + 1000, 10**20),  # milliseconds past tomorrow, and beyond
    )
)
@example(-1721160000)
@example(99999999999999)
def test_epochs_outside_1990_to_now_are_date_errors(epoch: int) -> None:
    """Numbers of 9+ digits read as epochs; outside 1990..tomorrow they are DateError."""
    with pytest.raises(DateError):
        parse_date(str(epoch), now=NOW)


@PROPERTY
@given(
    st.sampled_from([(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (2, 29)]),
    st.integers(1990, 2024).filter(lambda y: y % 4 != 0),
    st.sampled_from(["{y}-{m:02d}-{d:02d}", "{mon} {d} {y}", "{d} {mon} {y}", "{mon} {d}, {y}"]),
)
def test_impossible_calendar_days_are_date_errors(
    month_day: tuple[int, int], year: int, pattern: str
) -> None:
    """Feb 30 is no day at all; it must not roll over into March."""
    month, day = month_day
    mon = datetime(2001, month, 1).strftime("%b")
    with pytest.raises(DateError):
        parse_date(pattern.format(y=year, m=month, d=day, mon=mon), now=NOW)


@PROPERTY
@given(st.integers(0, 23), st.integers(0, 59), MOMENTS.map(lambda m: m.astimezone(UTC)))
@example(0, 0, datetime(2024, 12, 31, tzinfo=UTC))
def test_a_time_without_a_date_is_read_on_the_day_of_now(
    hour: int, minute: int, now: datetime
) -> None:
    """The `now=` argument is the parser's clock: results must not depend on the wall clock."""
    parsed = parse_date(f"{hour}:{minute:02d}", now=now)
    assert parsed == now.replace(hour=hour, minute=minute, second=0, microsecond=0)


@PROPERTY
@given(MOMENTS)
def test_a_naive_now_is_read_as_utc(moment: datetime) -> None:
    naive_now = NOW.replace(tzinfo=None)
    assert parse_date(moment.isoformat(), now=naive_now) == parse_date(moment.isoformat(), now=NOW)


@PROPERTY
@given(st.one_of(MOMENTS, WALL_TIMES))
def test_datetime_input_is_the_same_instant_in_utc(moment: datetime) -> None:
    """Naive datetimes are UTC, as the corpus stores them; aware ones keep their instant."""
    parsed = parse_date(moment, now=NOW)
    assert _utc(parsed)
    assert parsed == (moment if moment.tzinfo else moment.replace(tzinfo=UTC))


# ---------------------------------------------------------------------------------------------
# Ticker patterns

# Tickers that are also words in NOT_TICKERS are real listings: Agilent (A), Gartner (IT),
# Energy Transfer (ET), Philip Morris (PM), C3.ai (AI). Written explicitly they must link.
TICKER_KB = [
    Entity(id="stock:AAPL", kind="company", name="Apple", ticker="AAPL"),
    Entity(id="stock:TSLA", kind="company", name="Tesla", ticker="TSLA"),
    Entity(id="stock:NVDA", kind="company", name="Nvidia", ticker="NVDA"),
    Entity(id="stock:JPM", kind="company", name="JPMorgan Chase", ticker="JPM"),
    Entity(id="stock:BRK.B", kind="company", name="Berkshire Hathaway", ticker="BRK.B"),
    Entity(id="stock:A", kind="company", name="Agilent", ticker="A"),
    Entity(id="stock:IT", kind="company", name="Gartner", ticker="IT"),
    Entity(id="stock:ET", kind="company", name="Energy Transfer", ticker="ET"),
    Entity(id="stock:PM", kind="company", name="Philip Morris", ticker="PM"),
    Entity(id="stock:AI", kind="company", name="C3.ai", ticker="AI"),
    Entity(id="crypto:BTC", kind="crypto", name="bitcoin", ticker="BTC"),
]
# Ways a symbol is written in prose; BRK.B's share class appears with ".", "/" and "-".
SYMBOL_FORMS = {
    e.id: [e.ticker] if e.ticker != "BRK.B" else ["BRK.B", "BRK/B", "BRK-B"] for e in TICKER_KB
}
EXCHANGE_NAMES = EXCHANGES.split("|")
PROSE_WORDS = [
    "Shares", "shares", "rose", "fell", "the", "market", "said", "on", "Monday", "Stocks",
    "investors", "while", "and", "2.1%", "after", "earnings", "Inc.", "of", "The", "In",
    "Analysts", "expect", "a", "rally", "—", "“quote”", "rates", "cut", "in", "September",
]  # fmt: skip
PROSE = st.lists(st.sampled_from(PROSE_WORDS + sorted(NOT_TICKERS)), max_size=8).map(" ".join)
# Fragments that trip the ticker regexes: cashtags, parentheses, exchanges, quote lines.
FRAGMENTS = st.sampled_from(
    ["$", "(", ")", ":", "NYSE", "Nasdaq: ", ".", "/", "-", "+1.5%", ", ", " ", "\n", "\n\n",
     "AAPL", "BRK", "B", "IT", "CEO", "Apple", "Gartner", "$TSLA", "(NYSE: IT)", "’s", "Inc."]
)  # fmt: skip
MARKETISH = st.lists(st.one_of(FRAGMENTS, st.text(max_size=4)), max_size=15).map("".join)
CONTEXT = st.one_of(PROSE, st.text(max_size=40))  # what stands around a ticker: anything


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    """The real spaCy pipeline, loaded once for the module."""
    kb = KnowledgeBase()
    kb.extend(TICKER_KB)
    return EntityLinker(kb, nlp=load_spacy())


def _entity_forms() -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(
        [(entity_id, form) for entity_id, forms in SYMBOL_FORMS.items() for form in forms]
    )


@FEW
@given(
    _entity_forms(),
    CONTEXT,
    CONTEXT,
    st.sampled_from([" ", "(", "“", "\n"]),
    st.sampled_from([" ", ".", ",", ")", "!", "'s", ""]),
)
def test_a_known_cashtag_is_always_found_at_its_offsets(
    linker: EntityLinker,
    found: tuple[str, str],
    before: str,
    after: str,
    opener: str,
    closer: str,
) -> None:
    """$TSLA, $IT, $BRK.B, $BRK/B and $BRK-B link to the listing, with `text[start:end]` exact."""
    entity_id, symbol = found
    head = f"{before}{opener}" if before else ""
    text = f"{head}${symbol}{closer} {after}"
    mentions = linker.link_text(text)
    hits = [m for m in mentions if m.entity_id == entity_id and m.start == len(head)]
    assert hits, mentions
    assert hits[0].text == f"${symbol}" == text[hits[0].start : hits[0].end]


@FEW
@given(
    _entity_forms(),
    st.sampled_from(EXCHANGE_NAMES),
    st.sampled_from([": ", ":", " : "]),
    CONTEXT,
    CONTEXT,
)
@example(("stock:IT", "IT"), "NYSE", ": ", "Shares", "rose")
@example(("stock:IT", "IT"), "NYSE", ": ", "Information Technology", "")  # initials spell IT
def test_an_exchange_qualified_symbol_is_always_found_at_its_offsets(
    linker: EntityLinker,
    found: tuple[str, str],
    exchange: str,
    colon: str,
    before: str,
    after: str,
) -> None:
    """Gartner's "(NYSE: IT)" links though IT is also a word: an exchange makes it a ticker."""
    entity_id, symbol = found
    head = f"{before} ({exchange}{colon}"
    text = f"{head}{symbol}) {after}"
    mentions = linker.link_text(text)
    hits = [m for m in mentions if m.entity_id == entity_id and m.start == len(head)]
    assert hits, mentions
    assert hits[0].text == symbol == text[hits[0].start : hits[0].end]
    at = len(f"{before} (")  # "Nasdaq" here is the exchange, never the index
    assert not [m for m in mentions if m.start <= at < m.end]


@FEW
@given(PROSE, st.sampled_from(sorted(NOT_TICKERS)), PROSE)
def test_a_bare_not_ticker_word_is_never_linked(
    linker: EntityLinker, before: str, word: str, after: str
) -> None:
    """CEO, IT, AI, ET written as words are not tickers, even when a listing uses them."""
    text = f"{before} {word} {after}"
    assert not [m for m in linker.link_text(text) if m.text in NOT_TICKERS]


@PROPERTY
@given(st.one_of(st.text(), MARKETISH))
@example("$BRK-B.")
@example("(NYSE: )")
@example("$\n\n$A")
def test_the_linker_never_crashes_and_offsets_stay_inside_the_text(
    linker: EntityLinker, text: str
) -> None:
    for m in linker.link_text(text):
        assert 0 <= m.start < m.end <= len(text)
        assert text[m.start : m.end] == m.text

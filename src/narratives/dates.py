"""Parse publishers' date strings into UTC timestamps and reject implausible ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser
from dateutil import tz

from narratives.errors import DateError

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
# The market's clock: trading sessions and news days are New York's.
NEW_YORK = ZoneInfo("America/New_York")
# Publishers' clocks and time zones run ahead of ours by up to a day; more than that is wrong.
FUTURE_TOLERANCE = timedelta(days=1)

# US newsrooms write zone abbreviations that dateutil does not know by itself.
_ZONES = {
    "ET": tz.gettz("America/New_York"),
    "EST": tz.gettz("America/New_York"),
    "EDT": tz.gettz("America/New_York"),
    "CT": tz.gettz("America/Chicago"),
    "CST": tz.gettz("America/Chicago"),
    "CDT": tz.gettz("America/Chicago"),
    "MT": tz.gettz("America/Denver"),
    "MST": tz.gettz("America/Denver"),
    "MDT": tz.gettz("America/Denver"),
    "PT": tz.gettz("America/Los_Angeles"),
    "PST": tz.gettz("America/Los_Angeles"),
    "PDT": tz.gettz("America/Los_Angeles"),
    "GMT": UTC,
    "UTC": UTC,
    "Z": UTC,
    "BST": tz.gettz("Europe/London"),
    "CET": tz.gettz("Europe/Paris"),
    "CEST": tz.gettz("Europe/Paris"),
    "IST": tz.gettz("Asia/Kolkata"),
    "AEST": tz.gettz("Australia/Sydney"),
    "AEDT": tz.gettz("Australia/Sydney"),
    "JST": tz.gettz("Asia/Tokyo"),
}

_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")
# A short bare number ("12", "-1", "2024") is no date: dateutil would read it as a day, or a
# year, of the month `now` is in. (Six and eight digits are YYMMDD and YYYYMMDD.)
_BARE_NUMBER = re.compile(r"^[+-]?\d{1,5}$")
# A zero-padded year: dateutil reads "0001" after a month name as the two-digit year 01, so
# Go's zero time, "Mon, 01 Jan 0001 00:00:00 +0000" (undated posts in Hugo feeds), became 2001.
# Not after a sign, colon or dot: "-0000" and "+0030" are offsets, ".0012" a fraction.
# Unless a real year is there too: then "0030" in "July 15, 2024 0030" is the time.
_PADDED_YEAR = re.compile(r"(?<![\w.:+])(?<![\d\s]-)(?<!^-)00\d\d(?![\w:])")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_date(raw: str | datetime | None, *, now: datetime | None = None) -> datetime:
    """Parse `raw` into an aware UTC datetime, or raise `DateError` saying why not.

    Naive timestamps are read as UTC. Dates before 1990 or more than a day in the future are
    rejected: they are parsing accidents (epoch zero, two-digit years) or publisher errors.
    `now` (naive means UTC; default the clock) sets that limit and the date of a bare time.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DateError("no date given")
    now = _aware(now or datetime.now(UTC))
    try:
        parsed = raw if isinstance(raw, datetime) else _parse_text(raw, now)
        # Inside the try: an offset of a day or more (+25:00) only fails when it is used, and
        # year 1 or 9999 moved to UTC falls off the calendar (OverflowError).
        parsed = _aware(parsed).astimezone(UTC)
    except (ValueError, OverflowError, TypeError) as exc:
        raise DateError(f"unparseable date {raw!r}") from exc
    check_plausible(parsed, now=now)
    return parsed


def _parse_text(raw: str, now: datetime) -> datetime:
    text = " ".join(raw.split())
    if _EPOCH.match(text):
        seconds = float(text)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, tz=UTC)
    if _BARE_NUMBER.match(text):
        raise DateError(f"unparseable date {raw!r}: a bare number is not a date")
    if _ISO.match(text):
        try:  # the common case, 30x faster than dateutil
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    if (padded := _PADDED_YEAR.search(text)) and not _YEAR.search(text):
        raise DateError(f"year {padded.group()} in {raw!r} is before 1990")
    # What the text leaves out (the date of "10:00 ET") comes from `now`, not from the machine's
    # clock and time zone, so a given `now` always gives the same answer.
    default = now.astimezone(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    return dateutil_parser.parse(text, default=default, tzinfos=_ZONES)


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are UTC, as the corpus stores them."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment


def check_plausible(moment: datetime, *, now: datetime | None = None) -> None:
    """Raise `DateError` when `moment` is before 1990 or later than tomorrow."""
    now = _aware(now or datetime.now(UTC))
    if moment < EARLIEST:
        raise DateError(f"date {iso(moment)} is before 1990")
    if moment > now + FUTURE_TOLERANCE:
        raise DateError(f"date {iso(moment)} is in the future")


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a `Z`, to the second: the one date format stored in the corpus."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_york_time(published: datetime | str) -> datetime:
    """A publication time in New York; naive times are UTC, as the corpus stores them."""
    if isinstance(published, str):
        try:
            published = datetime.fromisoformat(published.strip())
        except ValueError:
            published = parse_date(published)
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return published.astimezone(NEW_YORK)

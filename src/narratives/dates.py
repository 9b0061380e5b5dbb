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
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_date(raw: str | datetime | None, *, now: datetime | None = None) -> datetime:
    """Parse `raw` into an aware UTC datetime, or raise `DateError` saying why not.

    Naive timestamps are read as UTC. Dates before 1990 or more than a day in the future are
    rejected: they are parsing accidents (epoch zero, two-digit years) or publisher errors.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DateError("no date given")
    if isinstance(raw, datetime):
        parsed = raw
    else:
        text = " ".join(raw.split())
        try:
            if _EPOCH.match(text):
                seconds = float(text)
                parsed = datetime.fromtimestamp(
                    seconds / 1000 if seconds > 1e11 else seconds, tz=UTC
                )
            elif _ISO.match(text):
                try:  # the common case, 30x faster than dateutil
                    parsed = datetime.fromisoformat(text)
                except ValueError:
                    parsed = dateutil_parser.parse(text, tzinfos=_ZONES)
            else:
                parsed = dateutil_parser.parse(text, tzinfos=_ZONES)
        except (ValueError, OverflowError, TypeError) as exc:
            raise DateError(f"unparseable date {raw!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    check_plausible(parsed, now=now)
    return parsed


def check_plausible(moment: datetime, *, now: datetime | None = None) -> None:
    """Raise `DateError` when `moment` is before 1990 or later than tomorrow."""
    now = now or datetime.now(UTC)
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

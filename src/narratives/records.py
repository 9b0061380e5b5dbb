"""Records that cross stage boundaries: an article as ingested, and what became of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from narratives.errors import NarrativesError


class Obtained(StrEnum):
    """How an article's text was obtained, best first."""

    PAGE = "page"  # fetched and extracted from the publisher's page
    FILE = "file"  # read from a local file (HTML, text, JSONL)
    FEED_SUMMARY = "feed_summary"  # only the feed entry's summary: page unreachable or paywalled


class DateSource(StrEnum):
    """Where an article's published date came from."""

    ARTICLE = "article"  # the page, file or record itself
    FEED = "feed"  # the feed entry, because the article gave none (or an implausible one)
    FETCHED = "fetched"  # nothing usable: the time it was fetched or read


class Outcome(StrEnum):
    """What saving an article did to the corpus."""

    NEW = "new"
    UPDATED = "updated"  # same URL or id, changed text
    DUPLICATE = "duplicate"  # same text already stored under another URL or id
    UNCHANGED = "unchanged"  # seen before, nothing new


@dataclass
class Article:
    """One article as a source delivered it, before it is stored."""

    title: str
    text: str  # paragraphs separated by one blank line
    published: datetime  # aware, UTC
    date_source: DateSource
    fetched_at: datetime
    obtained: Obtained
    source: str  # feed URL, page URL or file path it came from
    url: str | None = None  # canonical URL; None for local items that have none
    published_raw: str | None = None
    author: str | None = None
    publisher: str | None = None
    site: str | None = None
    language: str | None = None
    source_id: str | None = None  # the source's own id (JSONL id, feed guid)
    feed_url: str | None = None  # the polled feed that brought it
    page_status: str = "ok"  # why a feed summary stands in for the page, when it does
    aliases: list[str] = field(default_factory=list)  # other URLs that lead to this article


def text_records(lines: Iterable[str], error: type[NarrativesError]) -> Iterator[dict]:
    """The `{"id": ..., "text": "..."}` objects of JSONL lines (blank lines skipped).

    The first line that is not JSON, or has no string `text`, raises `error` naming the line:
    the commands reading these files (`classify`, `entities`) promise output in input order,
    which a skipped line would break.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise error(f'line {number}: expected {{"id": ..., "text": "..."}}, got {line[:80]!r}')
        yield record

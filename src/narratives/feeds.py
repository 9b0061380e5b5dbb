"""RSS/Atom: parse feed bytes into entries, and read the feeds file that lists what to poll."""

from __future__ import annotations

import logging
import re
from calendar import timegm
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import feedparser

from narratives.datafiles import read_toml_tables
from narratives.errors import FeedsFileError, SourceError
from narratives.text import clean_line, html_to_text
from narratives.urls import canonicalize, is_http_url

log = logging.getLogger(__name__)

DEFAULT_FEEDS = "default"  # `--feeds default` names the feeds file shipped with the package
# A feed's root element, after any XML declaration, processing instructions, comments, doctype
# (with its internal subset: feedparser ignores the entities declared there).
_FEED_START = re.compile(
    rb"^\s*(?:(?:<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)\s*)*"
    rb"<(rss|feed|rdf:RDF)\b",
    re.S,
)
FEED_CONTENT_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        "application/feed+json",
    }
)


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, with the summary kept as plain text."""

    link: str | None
    title: str | None
    summary: str | None
    published_raw: str | None
    published: datetime | None  # feedparser's own reading of the date, UTC
    author: str | None
    guid: str | None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    entries: list[FeedEntry]
    warning: str | None  # feedparser's "bozo" complaint when the feed is malformed but usable


@dataclass(frozen=True)
class FeedSource:
    """A feed to poll, as listed in a feeds file."""

    name: str
    url: str
    tags: tuple[str, ...] = ()


def looks_like_feed(data: bytes, content_type: str | None = None) -> bool:
    """Sniff whether a response is a feed rather than an HTML page."""
    if content_type and content_type.lower() in FEED_CONTENT_TYPES - {
        "application/xml",
        "text/xml",
    }:
        return True
    head = data[:2048].lstrip(b"\xef\xbb\xbf")
    return bool(_FEED_START.match(head))


def parse_feed(
    data: bytes, *, base_url: str | None = None, content_type: str | None = None
) -> ParsedFeed:
    """Parse feed bytes; raise `SourceError` when they hold no feed at all.

    A malformed feed that still yields entries is accepted with its problem in `warning`
    (feedparser's bozo flag): real feeds are often slightly broken.
    """
    # Bytes, never a URL: feedparser must not fetch anything itself.
    headers = {"content-type": content_type or "application/xml"}
    if base_url:
        headers["content-location"] = base_url
    parsed = feedparser.parse(data, response_headers=headers)
    warning = None
    if parsed.get("bozo"):
        warning = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    if not parsed.entries and (warning or not parsed.get("version")):
        raise SourceError(f"not a readable RSS/Atom feed ({warning or 'no entries'})")
    if warning:
        log.info("feed %s is malformed but readable: %s", base_url or "", warning)
    entries = [_entry(e) for e in parsed.entries]
    feed = parsed.get("feed", {})
    return ParsedFeed(
        title=clean_line(feed.get("title")),
        link=feed.get("link"),
        entries=entries,
        warning=warning,
    )


def _entry(raw: feedparser.FeedParserDict) -> FeedEntry:
    link = raw.get("link")
    if not (link and is_http_url(link)):
        # Some feeds put the permalink only in the guid.
        guid = raw.get("id")
        link = guid if guid and is_http_url(guid) else None
    summary = raw.get("summary") or ""
    contents = raw.get("content") or []
    # content:encoded often carries the whole article; prefer it when it is longer.
    for content in contents:
        value = content.get("value") or ""
        if len(value) > len(summary):
            summary = value
    # dict.get, not the FeedParserDict's: its updated→published aliasing is deprecated and noisy.
    parsed_time = dict.get(raw, "published_parsed") or dict.get(raw, "updated_parsed")
    published = None
    if parsed_time:
        try:
            published = datetime.fromtimestamp(timegm(parsed_time), tz=UTC)
        except (OverflowError, ValueError, OSError):
            published = None
    authors = [a.get("name") for a in raw.get("authors", []) if a.get("name")]
    return FeedEntry(
        link=canonicalize(link) if link else None,
        title=clean_line(html_to_text(raw.get("title") or "")) or None,
        summary=html_to_text(summary) or None,
        published_raw=dict.get(raw, "published") or dict.get(raw, "updated"),
        published=published,
        author=clean_line("; ".join(authors) or raw.get("author")),
        guid=raw.get("id"),
    )


def default_feeds_path() -> Path:
    return Path(str(resources.files("narratives") / "data" / "feeds.toml"))


def load_feeds_file(path: str | Path) -> list[FeedSource]:
    """Read a feeds file (TOML: `[[feed]]` tables with `name`, `url`, optional `tags`).

    `path` may be the word "default" for the feeds file shipped with narratives.
    """
    path = default_feeds_path() if str(path) == DEFAULT_FEEDS else Path(path)
    tables = read_toml_tables(
        path,
        "feed",
        what="feeds file",
        error=FeedsFileError,
        empty='lists no feeds: add [[feed]] tables with name = "…" and url = "https://…"',
    )
    feeds: list[FeedSource] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, start=1):
        name, url, tags = table.get("name"), table.get("url"), table.get("tags", [])
        where = f"{path}, feed #{number}"
        if not isinstance(name, str) or not name.strip():
            raise FeedsFileError(f"{where}: missing name")
        if not isinstance(url, str) or not is_http_url(url):
            raise FeedsFileError(f"{where} ({name}): url must be an http(s) URL, got {url!r}")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise FeedsFileError(f"{where} ({name}): tags must be a list of strings")
        unknown = set(table) - {"name", "url", "tags"}
        if unknown:
            raise FeedsFileError(f"{where} ({name}): unknown keys {sorted(unknown)}")
        if url in seen:
            raise FeedsFileError(f"{where} ({name}): {url} is listed twice")
        seen.add(url)
        feeds.append(FeedSource(name=name.strip(), url=url, tags=tuple(tags)))
    return feeds

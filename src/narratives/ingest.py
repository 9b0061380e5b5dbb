"""Ingestion: turn feeds, page URLs and local files into stored articles, one bad item at a time."""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tqdm import tqdm

from narratives.dates import FUTURE_TOLERANCE, parse_date, utc_now
from narratives.errors import (
    DateError,
    ExtractionError,
    FetchError,
    NarrativesError,
    SourceError,
)
from narratives.extract import ExtractedPage, extract_page, looks_like_teaser
from narratives.feeds import FeedEntry, FeedSource, load_feeds_file, looks_like_feed, parse_feed
from narratives.fetch import Fetcher, FetchPolicy, Response, inflate
from narratives.records import Article, DateSource, Obtained, Outcome
from narratives.store import Corpus, TextDigest
from narratives.text import clean_line, clean_text, clip
from narratives.urls import canonicalize, host_of, is_http_url, same_site
from narratives.warc import (
    WARC_SUFFIXES,
    WarcResponse,
    WarcSkip,
    host_matches,
    iter_warc,
    load_hosts,
    normalize_host,
)
from narratives.workers import die_with

log = logging.getLogger(__name__)

HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz")
FEED_SUFFIXES = (".xml", ".rss", ".atom")
TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
FEEDS_FILE_SUFFIXES = (".toml",)
SUPPORTED_SUFFIXES = (
    *HTML_SUFFIXES,
    *FEED_SUFFIXES,
    *TEXT_SUFFIXES,
    *JSONL_SUFFIXES,
    *WARC_SUFFIXES,
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})
# Page failures worth another try on the next poll; others (404, paywall, robots) are final.
RETRY_PAGE_STATUSES = frozenset(
    {"not_fetched", "timeout", "connection", "http_5xx", "rate_limited", "dns"}
)
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
MAX_FILE_BYTES = 50 * 1024 * 1024
BATCH = 500
PARALLEL_LINES = 2_000  # JSONL files this long are prepared in worker processes
MAX_PREPARE_WORKERS = 3  # the writer is the bottleneck past this
_T = TypeVar("_T")


@dataclass
class IngestSummary:
    """What a run did: outcomes per article, failures by reason, summaries kept by reason."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    summaries: Counter[str] = field(default_factory=Counter)
    date_fallbacks: Counter[str] = field(default_factory=Counter)
    skipped_before_since: int = 0
    skipped_after_until: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # WARC records holding no page, by why
    feeds_polled: int = 0
    feeds_not_modified: int = 0
    sources: int = 0
    seconds: float = 0.0

    @property
    def new(self) -> int:
        return self.outcomes[Outcome.NEW]

    @property
    def updated(self) -> int:
        return self.outcomes[Outcome.UPDATED]

    @property
    def duplicates(self) -> int:
        return self.outcomes[Outcome.DUPLICATE]

    @property
    def unchanged(self) -> int:
        return self.outcomes[Outcome.UNCHANGED]

    @property
    def total_failed(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "unchanged": self.unchanged,
            "failed": self.total_failed,
            "failed_by_reason": dict(self.failed),
            "stored_as_summary": dict(self.summaries),
            "date_fallbacks": dict(self.date_fallbacks),
            "skipped_before_since": self.skipped_before_since,
            "skipped_after_until": self.skipped_after_until,
            "skipped": dict(self.skipped),
            "feeds_polled": self.feeds_polled,
            "feeds_not_modified": self.feeds_not_modified,
            "sources": self.sources,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class IngestOptions:
    fetch_links: bool = False  # fetch the pages of entries in local feed files
    since: datetime | None = None  # skip articles published before this
    until: datetime | None = None  # skip articles published after this (a midnight: that day)
    hosts: frozenset[str] = frozenset()  # WARC input: keep only pages of these hosts (and subs)
    workers: int = 4  # pages fetched at once (each host still gets per_host_concurrency)
    progress: bool = True
    policy: FetchPolicy = field(default_factory=FetchPolicy)

    @property
    def until_end(self) -> datetime | None:
        """The last moment `until` lets through: a bare date (midnight) includes its whole day."""
        until = self.until
        if until is None:
            return None
        if until == until.replace(hour=0, minute=0, second=0, microsecond=0):
            return until + timedelta(days=1) - timedelta(microseconds=1)
        return until

    def too_late(self, published: datetime) -> bool:
        end = self.until_end
        return end is not None and published > end


@dataclass(frozen=True)
class _EntryOrigin:
    """Where a batch of feed entries came from, and what to call their publisher."""

    source: str
    publisher: str | None  # the feed's name in a feeds file
    feed_title: str | None
    feed_url: str | None


@dataclass
class _PageResult:
    entry: FeedEntry
    page: ExtractedPage | None = None
    response_url: str | None = None
    redirects: list[str] = field(default_factory=list)
    failure: str | None = None  # reason the page could not stand in for the entry
    detail: str = ""
    fetched_at: datetime = field(default_factory=utc_now)


def ingest(
    db: Corpus | str | Path,
    sources: Sequence[str],
    *,
    feeds: str | Path | None = None,
    fetch_links: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    hosts: Iterable[str] = (),
    host_file: str | Path | None = None,
    policy: FetchPolicy | None = None,
    workers: int = 4,
    progress: bool = True,
    fetcher: Fetcher | None = None,
) -> IngestSummary:
    """Ingest `sources` (feed or page URLs, files, directories, feeds files, WARCs) into `db`.

    `feeds` names a feeds file (or "default" for the shipped one) whose feeds are polled too.
    `since` and `until` keep articles published in that range, from every source; an `until`
    at midnight includes that whole day. `hosts` and the hosts listed in `host_file` (one a
    line, `#` comments) keep only pages of those hosts or their subdomains from WARC files;
    other sources are not filtered by host.
    Returns counts of what happened; failures are recorded in `ingest_errors`, never raised,
    except when there is nothing at all to ingest, the host file is unusable, or another ingest
    is running on the same corpus (`CorpusBusy`).
    """
    wanted = [normalize_host(host) for host in hosts]
    if host_file is not None:
        wanted += load_hosts(host_file)
    options = IngestOptions(
        fetch_links=fetch_links,
        since=since,
        until=until,
        hosts=frozenset(wanted),
        workers=workers,
        progress=progress,
        policy=policy or FetchPolicy(),
    )
    corpus = db if isinstance(db, Corpus) else Corpus(db)
    try:
        with corpus.exclusive("ingest"), Ingestor(corpus, options, fetcher=fetcher) as ingestor:
            return ingestor.run(list(sources), feeds=feeds)
    finally:
        if corpus is not db:
            corpus.close()


class Ingestor:
    """One ingest run over one corpus; sources are dispatched by what they turn out to be."""

    def __init__(
        self, corpus: Corpus, options: IngestOptions, *, fetcher: Fetcher | None = None
    ) -> None:
        self.corpus = corpus
        self.options = options
        self._fetcher = fetcher
        self._owns_fetcher = fetcher is None
        self.summary = IngestSummary()
        self.run_id: int | None = None
        self._publishers: dict[str, str | None] = {}

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fetcher is not None and self._owns_fetcher:
            self._fetcher.close()

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(self.options.policy)
        return self._fetcher

    def run(self, sources: list[str], *, feeds: str | Path | None = None) -> IngestSummary:
        started = time.monotonic()
        feed_list = load_feeds_file(feeds) if feeds is not None else []
        if not sources and not feed_list:
            raise SourceError("nothing to ingest: give a URL, file or directory, or --feeds")
        labels = [*sources, *(f.url for f in feed_list)]
        self.run_id = self.corpus.start_run(labels)
        try:
            for source in sources:
                self.summary.sources += 1
                self._guard(source, lambda s=source: self.ingest_source(s))
            for feed in feed_list:
                self.summary.sources += 1
                self._guard(feed.url, lambda f=feed: self.ingest_feed_url(f.url, feed=f))
        finally:
            self.summary.seconds = time.monotonic() - started
            counts = {str(k): v for k, v in self.summary.outcomes.items()}
            counts["failed"] = self.summary.total_failed
            self.corpus.finish_run(self.run_id, counts)
        return self.summary

    def _guard(self, source: str, work: Any) -> None:
        """Run one source; a failure of the whole source is recorded, and the run goes on."""
        try:
            work()
        except FetchError as exc:
            self.fail(source, exc.reason, str(exc))
        except NarrativesError as exc:
            self.fail(source, _reason_of(exc), str(exc))
        except OSError as exc:
            self.fail(source, "unreadable", f"{type(exc).__name__}: {exc}")

    # -- bookkeeping -------------------------------------------------------------------------

    def fail(self, source: str, reason: str, detail: str, *, item: str | None = None) -> None:
        log.warning("%s%s: %s", source, f" [{item}]" if item else "", detail)
        self.summary.failed[reason] += 1
        self.corpus.record_error(source, reason, detail, item=item, run_id=self.run_id)

    def store(self, article: Article, digest: TextDigest | None = None) -> Outcome | None:
        if article.publisher is None:
            article.publisher = self._known_publisher(article.site) or article.site
        if self.options.since and article.published < self.options.since:
            self.summary.skipped_before_since += 1
            return None
        if self.options.too_late(article.published):
            self.summary.skipped_after_until += 1
            return None
        outcome = self.corpus.save(article, digest)
        self.summary.outcomes[outcome] += 1
        if article.date_source != DateSource.ARTICLE:
            self.summary.date_fallbacks[str(article.date_source)] += 1
        if article.obtained == Obtained.FEED_SUMMARY and outcome in (
            Outcome.NEW,
            Outcome.UPDATED,
        ):
            self.summary.summaries[article.page_status] += 1
        return outcome

    def _known_publisher(self, site: str | None) -> str | None:
        """The publisher name most articles of `site` already carry in the corpus."""
        if not site:
            return None
        if site not in self._publishers:
            row = self.corpus.db.execute(
                "SELECT publisher FROM articles WHERE site = ? AND publisher IS NOT NULL "
                "AND publisher != site GROUP BY publisher ORDER BY count(*) DESC LIMIT 1",
                [site],
            ).fetchone()
            self._publishers[site] = row[0] if row else None
        return self._publishers[site]

    def _progress(
        self, total: int | None, description: str, unit: str, *, scale: bool = False
    ) -> tqdm:
        return tqdm(
            total=total,
            desc=clip(description, 40, keep_end=True),
            unit=unit,
            unit_scale=scale,
            disable=not self.options.progress or None,
            leave=False,
            dynamic_ncols=True,
        )

    # -- dispatch ----------------------------------------------------------------------------

    def ingest_source(self, source: str) -> None:
        if is_http_url(source):
            self.ingest_url(source)
            return
        if "://" in source:
            raise SourceError(f"{source}: only http(s) URLs and local paths can be ingested")
        path = Path(source).expanduser()
        if path.is_dir():
            self.ingest_directory(path)
        elif path.is_file():
            self.ingest_file(path)
        else:
            raise SourceError(f"{source}: no such file or directory")

    def ingest_directory(self, directory: Path) -> None:
        files = sorted(
            p
            for p in directory.rglob("*")
            if p.is_file() and p.name.lower().endswith(SUPPORTED_SUFFIXES)
        )
        if not files:
            raise SourceError(
                f"{directory}: no ingestible files (looked for {', '.join(SUPPORTED_SUFFIXES)})"
            )
        with self._progress(len(files), str(directory), "file") as bar:
            for path in files:
                self._guard(str(path), lambda p=path: self.ingest_file(p))
                bar.update()

    def ingest_file(self, path: Path) -> None:
        name = path.name.lower()
        if name.endswith(JSONL_SUFFIXES):
            self.ingest_jsonl(path)
        elif name.endswith(HTML_SUFFIXES):
            self.ingest_html_file(path)
        elif name.endswith(WARC_SUFFIXES):
            self.ingest_warc(path)
        elif name.endswith(FEED_SUFFIXES):
            self.ingest_feed_file(path)
        elif name.endswith(TEXT_SUFFIXES):
            self.ingest_text_file(path)
        elif name.endswith(FEEDS_FILE_SUFFIXES):
            for feed in load_feeds_file(path):
                self._guard(feed.url, lambda f=feed: self.ingest_feed_url(f.url, feed=f))
        else:
            raise SourceError(
                f"{path}: unsupported file type; narratives reads "
                f"{', '.join((*SUPPORTED_SUFFIXES, *FEEDS_FILE_SUFFIXES))} files"
            )

    # -- the web -----------------------------------------------------------------------------

    def ingest_url(self, url: str) -> None:
        """A URL on the command line: a feed if its bytes say so, else an article page."""
        state = self.corpus.feed_state(canonicalize(url))
        response = self.fetcher.get(
            url,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        if response.not_modified or looks_like_feed(response.body, response.content_type):
            self._handle_feed_response(canonicalize(url), response, feed=None)
            return
        fetched_at = utc_now()
        page = self._extract_response(response)
        article = article_from_page(
            page, response=response, entry=None, fetched_at=fetched_at, source=url
        )
        self.store(article)

    def ingest_feed_url(self, url: str, *, feed: FeedSource | None = None) -> None:
        url = canonicalize(url)
        state = self.corpus.feed_state(url)
        try:
            response = self.fetcher.get(
                url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
                accept=FEED_ACCEPT,
            )
        except FetchError as exc:
            self.corpus.record_poll(
                url,
                status=exc.reason,
                name=feed.name if feed else None,
                tags=feed.tags if feed else None,
                error=str(exc),
            )
            raise
        self._handle_feed_response(url, response, feed=feed)

    def _handle_feed_response(
        self, url: str, response: Response, *, feed: FeedSource | None
    ) -> None:
        self.summary.feeds_polled += 1
        name, tags = (feed.name, feed.tags) if feed else (None, None)
        if response.not_modified:
            self.summary.feeds_not_modified += 1
            self.corpus.record_poll(url, status="304", name=name, tags=tags, entries=0)
            return
        try:
            parsed = parse_feed(response.body, base_url=url, content_type=response.content_type)
        except SourceError as exc:
            self.corpus.record_poll(url, status="unparseable", name=name, tags=tags, error=str(exc))
            raise SourceError(f"{url}: {exc}") from exc
        self.corpus.record_poll(
            url,
            status=str(response.status),
            name=name,
            title=parsed.title,
            tags=tags,
            etag=response.etag,
            last_modified=response.last_modified,
            error=parsed.warning,
            entries=len(parsed.entries),
        )
        self.ingest_entries(
            parsed.entries, source=url, publisher=name, feed_title=parsed.title, feed_url=url
        )

    def ingest_entries(
        self,
        entries: list[FeedEntry],
        *,
        source: str,
        publisher: str | None,
        feed_title: str | None = None,
        feed_url: str | None = None,
        fetch_pages: bool = True,
    ) -> None:
        """Store a feed's entries, fetching each page unless it is already stored in full.

        `publisher` is the feed's name from a feeds file; without one, articles take the name
        their page gives, else the one already used for their site, else the feed's title.
        """
        origin = _EntryOrigin(source, publisher, feed_title, feed_url)
        unique: dict[str, FeedEntry] = {}
        for entry in entries:
            unique.setdefault(entry.link or entry.guid or _entry_identity(entry), entry)
        to_fetch: list[FeedEntry] = []
        summaries: list[_PageResult] = []
        since = self.options.since
        for entry in unique.values():
            if since and entry.published and entry.published < since:
                self.summary.skipped_before_since += 1  # decided before fetching its page
            elif entry.published and self.options.too_late(entry.published):
                self.summary.skipped_after_until += 1
            elif not entry.link:
                summaries.append(_PageResult(entry, failure="no_link"))
            elif not fetch_pages:
                summaries.append(_PageResult(entry, failure="not_fetched"))
            elif self._needs_fetch(entry.link):
                to_fetch.append(entry)
            else:
                self.summary.outcomes[Outcome.UNCHANGED] += 1
        with self._progress(len(to_fetch) + len(summaries), source, "article") as bar:
            for result in self._fetch_pages(to_fetch):
                self._store_entry(result, origin)
                bar.update()
            with self.corpus.transaction():
                for result in summaries:
                    self._store_entry(result, origin)
                    bar.update()

    def _needs_fetch(self, link: str) -> bool:
        stored = self.corpus.find_by_url(link)
        return stored is None or (
            stored.obtained == Obtained.FEED_SUMMARY and stored.page_status in RETRY_PAGE_STATUSES
        )

    def _fetch_pages(self, entries: list[FeedEntry]) -> Iterator[_PageResult]:
        if not entries:
            return
        workers = max(1, min(self.options.workers, len(entries)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
            yield from pool.map(self._fetch_page, entries)

    def _fetch_page(self, entry: FeedEntry) -> _PageResult:
        assert entry.link is not None
        try:
            response = self.fetcher.get(entry.link, accept="text/html,application/xhtml+xml")
            page = self._extract_response(response)
        except FetchError as exc:
            return _PageResult(entry, failure=exc.reason, detail=str(exc))
        except NarrativesError as exc:
            return _PageResult(entry, failure=_reason_of(exc), detail=str(exc))
        if looks_like_teaser(page, entry.summary):
            return _PageResult(entry, failure="paywall", detail="page is a teaser or paywall")
        return _PageResult(
            entry, page=page, response_url=response.url, redirects=response.redirects
        )

    def _extract_response(self, response: Response) -> ExtractedPage:
        if response.content_type not in HTML_TYPES and not response.content_type.startswith(
            "text/"
        ):
            raise ExtractionError(f"{response.url} is {response.content_type}, not an HTML page")
        return extract_page(response.body, url=response.url, declared_charset=response.charset)

    def _store_entry(self, result: _PageResult, origin: _EntryOrigin) -> None:
        source = origin.source
        entry = result.entry
        item = entry.link or entry.guid or entry.title
        try:
            if result.page is not None:
                article = article_from_page(
                    result.page,
                    response=None,
                    response_url=result.response_url,
                    redirects=result.redirects,
                    entry=entry,
                    fetched_at=result.fetched_at,
                    source=source,
                    publisher=origin.publisher,
                )
            else:
                if result.failure not in ("not_fetched", "no_link"):
                    self.corpus.record_error(
                        source,
                        result.failure or "page_failed",
                        f"kept the feed summary: {result.detail}",
                        item=item,
                        run_id=self.run_id,
                    )
                article = article_from_entry(
                    entry,
                    fetched_at=result.fetched_at,
                    source=source,
                    publisher=origin.publisher,
                    page_status=result.failure or "not_fetched",
                )
            article.feed_url = origin.feed_url
            if article.publisher is None:
                article.publisher = self._known_publisher(article.site) or origin.feed_title
        except NarrativesError as exc:
            self.fail(source, _reason_of(exc), str(exc), item=item)
            return
        self.store(article)

    # -- local files -------------------------------------------------------------------------

    def ingest_feed_file(self, path: Path) -> None:
        data = _read_bytes(path)
        parsed = parse_feed(data, base_url=None)
        if parsed.warning:
            # A polled feed keeps this in `feeds.last_error`; a file has only the errors table.
            self.corpus.record_error(
                str(path),
                "malformed_feed",
                f"read {len(parsed.entries)} entries from a malformed feed ({parsed.warning}); "
                "entries past the damage may be missing: fix the XML and ingest it again",
                run_id=self.run_id,
            )
        self.ingest_entries(
            parsed.entries,
            source=str(path),
            publisher=None,
            feed_title=parsed.title,
            fetch_pages=self.options.fetch_links,
        )

    def ingest_html_file(self, path: Path) -> None:
        fetched_at = utc_now()
        page = extract_page(_read_bytes(path))
        url = page.canonical_url if page.canonical_url and is_http_url(page.canonical_url) else None
        article = article_from_page(
            page,
            response=None,
            response_url=url,
            entry=None,
            fetched_at=fetched_at,
            source=str(path),
            obtained=Obtained.FILE,
        )
        self.store(article)

    def ingest_warc(self, path: Path) -> None:
        """A web archive (e.g. a Common Crawl CC-NEWS file), streamed record by record.

        Each archived HTTP 200 HTML response is extracted and stored like a fetched page, with
        the WARC-Date as its fetch time (so also its date when the page gives none). Other
        records are counted in `summary.skipped` by why; a corrupt or truncated file raises
        `WarcError` once the records before the damage are stored.
        """
        source = str(path)
        hosts = self.options.hosts
        with self._progress(path.stat().st_size, source, "B", scale=True) as bar:
            records = iter_warc(
                path,
                want_url=(lambda url: host_matches(url, hosts)) if hosts else None,
                max_body=self.options.policy.max_decompressed_bytes,
                progress=lambda position: bar.update(position - bar.n),
            )
            with closing(records):
                for record in records:
                    if isinstance(record, WarcSkip):
                        self.summary.skipped[record.reason] += 1
                    else:
                        self._ingest_warc_response(record, source)

    def _ingest_warc_response(self, record: WarcResponse, source: str) -> None:
        fetched_at = record.warc_date or utc_now()
        since = self.options.since
        if since and fetched_at + FUTURE_TOLERANCE < since:
            # Archived before `since`: it cannot have been published after it.
            self.summary.skipped_before_since += 1
            return
        response = Response(
            url=record.url,
            status=record.status,
            # As bytes: httpx refuses non-ASCII str headers, which archived responses do carry.
            headers=httpx.Headers(
                [
                    (k.encode("utf-8", "replace"), v.encode("utf-8", "replace"))
                    for k, v in record.headers
                ]
            ),
            body=record.body,
        )
        try:
            page = self._extract_response(response)
            article = article_from_page(
                page, response=response, entry=None, fetched_at=fetched_at, source=source
            )
        except NarrativesError as exc:
            self.fail(source, _reason_of(exc), str(exc), item=record.url)
            return
        if (
            article.date_source == DateSource.ARTICLE
            and article.published > fetched_at + FUTURE_TOLERANCE
        ):
            # A date past the crawl is as implausible as one past "now" is for a fresh fetch.
            log.info("%s: published %s is after its crawl", record.url, article.published)
            article.published, article.date_source = fetched_at, DateSource.FETCHED
        self.store(article)

    def ingest_text_file(self, path: Path) -> None:
        raw = _read_bytes(path).decode("utf-8-sig", errors="replace")
        lines = raw.strip().splitlines()
        title = clean_line(lines[0]) if lines else None
        text = clean_text("\n".join(lines[1:]))
        if not title or not text:
            raise SourceError(f"{path}: a .txt article needs a title line followed by its text")
        now = utc_now()
        self.store(
            Article(
                title=title,
                text=text,
                published=now,
                date_source=DateSource.FETCHED,
                fetched_at=now,
                obtained=Obtained.FILE,
                source=str(path),
            )
        )

    def ingest_jsonl(self, path: Path) -> None:
        """One article per line in the news-file schema; a bad line is an error, not a stop.

        Big files are parsed, cleaned and hashed in worker processes while this one writes,
        a batch per transaction, in file order.
        """
        data = _read_bytes(path)
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        # Split as bytes, at \n, \r\n and \r only: str.splitlines() also breaks at U+2028 and
        # U+0085, which JSON allows unescaped inside strings, and would cut a record in two.
        lines = data.splitlines()
        fetched_at = utc_now()
        batches = [
            (str(path), fetched_at, start + 1, lines[start : start + BATCH])
            for start in range(0, len(lines), BATCH)
        ]
        with (
            self._progress(len(lines), str(path), "line") as bar,
            _parallel_map(_prepare_records, batches, parallel=len(lines) >= PARALLEL_LINES) as done,
        ):
            for prepared in done:
                with self.corpus.transaction():
                    for number, article, digest, error in prepared:
                        item = f"line {number}"
                        if error is not None:
                            self.fail(str(path), error[0], error[1], item=item)
                        elif article is not None:
                            self._note_bad_date(article, str(path), item)
                            self.store(article, digest)
                bar.update(len(prepared))

    def _note_bad_date(self, article: Article, source: str, item: str) -> None:
        if article.date_source != DateSource.ARTICLE and article.published_raw:
            self.corpus.record_error(
                source,
                "date_rejected",
                f"published {article.published_raw!r} unusable; used {article.date_source} time",
                item=item,
                run_id=self.run_id,
            )


# -- building articles ------------------------------------------------------------------------


_Prepared = tuple[int, Article | None, TextDigest | None, tuple[str, str] | None]


def _prepare_records(
    source: str, fetched_at: datetime, first: int, lines: list[bytes]
) -> list[_Prepared]:
    """(line number, article, digest, (reason, detail) of an error) for each line; blank lines
    give neither article nor error. Pure, so it runs in a worker process."""
    out: list[_Prepared] = []
    for number, raw in enumerate(lines, start=first):
        try:
            line = _utf8_line(raw)
            if not line.strip():
                out.append((number, None, None, None))
                continue
            article = article_from_record(
                _json_line(line), source=source, fetched_at=fetched_at, line=number
            )
        except NarrativesError as exc:
            out.append((number, None, None, (_reason_of(exc), str(exc))))
            continue
        out.append((number, article, TextDigest.of(article), None))
    return out


@contextmanager
def _parallel_map(
    function: Callable[..., _T], jobs: list[tuple[Any, ...]], *, parallel: bool
) -> Iterator[Iterator[_T]]:
    """`function(*job)` for each job, results in job order; in worker processes if `parallel`.

    At most two jobs per worker are in flight, so memory stays bounded however many there are.
    """
    workers = min(MAX_PREPARE_WORKERS, (os.cpu_count() or 1) - 1)
    if not parallel or workers < 1 or len(jobs) < 2:
        yield (function(*job) for job in jobs)
        return
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with, initargs=(os.getpid(),)
    )
    with pool:

        def results() -> Iterator[_T]:
            pending: deque[Future[_T]] = deque()
            queued = iter(jobs)
            for job in itertools.islice(queued, 2 * workers):
                pending.append(pool.submit(function, *job))
            while pending:
                result = pending.popleft().result()
                for job in itertools.islice(queued, 1):
                    pending.append(pool.submit(function, *job))
                yield result

        try:
            yield results()
        finally:
            pool.shutdown(cancel_futures=True)


class RecordError(NarrativesError):
    """A JSONL record is malformed."""


def _utf8_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"not valid UTF-8: byte {raw[exc.start]:#04x} at byte {exc.start + 1} of the line; "
            "save the file as UTF-8"
        ) from exc


def _json_line(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise RecordError(f"not usable JSON: {exc}") from exc
    except RecursionError as exc:
        raise RecordError("not usable JSON: arrays or objects nested too deeply") from exc
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "id":
        return str(value)
    if not isinstance(value, str):
        raise RecordError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def article_from_record(
    record: dict[str, Any], *, source: str, fetched_at: datetime, line: int | None = None
) -> Article:
    """An article from a JSONL record (id, source, publisher, published, title, text, url).

    A record with neither `id` nor `url` is known by its file and line number.
    """
    text = clean_text(_field(record, "text") or "")
    if not text:
        raise RecordError("record has no text")
    title = clean_line(_field(record, "title")) or _title_from_text(text)
    url = _field(record, "url")
    url = canonicalize(url) if url and is_http_url(url) else None
    site = clean_line(_field(record, "source")) or (host_of(url) if url else None)
    raw_date = _field(record, "published")
    published, date_source = _choose_date(raw_date, None, fetched_at)
    return Article(
        title=title,
        text=text,
        published=published,
        published_raw=raw_date,
        date_source=date_source,
        fetched_at=fetched_at,
        obtained=Obtained.FILE,
        source=source,
        url=url,
        author=clean_line(_field(record, "author")),
        publisher=clean_line(_field(record, "publisher")) or site,
        site=site,
        language=clean_line(_field(record, "language")),
        source_id=_field(record, "id") or _line_id(url, source, line),
    )


def article_from_page(
    page: ExtractedPage,
    *,
    response: Response | None,
    entry: FeedEntry | None,
    fetched_at: datetime,
    source: str,
    response_url: str | None = None,
    redirects: Iterable[str] = (),
    publisher: str | None = None,
    obtained: Obtained = Obtained.PAGE,
) -> Article:
    """An article from an extracted page; the feed entry fills what the page lacks."""
    final_url = response.url if response else response_url
    redirects = list(response.redirects if response else redirects)
    url = final_url
    # Trust rel=canonical only on the same site: elsewhere it may point at a homepage or a
    # syndication partner.
    if (
        page.canonical_url
        and is_http_url(page.canonical_url)
        and (final_url is None or same_site(page.canonical_url, final_url))
    ):
        url = page.canonical_url
    aliases = [u for u in [final_url, *redirects, entry.link if entry else None] if u]
    published, date_source = _choose_date(
        page.published_raw if page.published else None, entry, fetched_at
    )
    title = clean_line(page.title) or (entry.title if entry else None)
    if not title:
        title = _title_from_text(page.text)
    site = host_of(url) if url else None
    return Article(
        title=title,
        text=clean_text(page.text),
        published=published,
        published_raw=page.published_raw or (entry.published_raw if entry else None),
        date_source=date_source,
        fetched_at=fetched_at,
        obtained=obtained,
        source=source,
        url=canonicalize(url) if url else None,
        author=clean_line(page.author) or (entry.author if entry else None),
        publisher=publisher or clean_line(page.site_name),
        site=site,
        language=page.language,
        source_id=entry.guid if entry else None,
        aliases=[canonicalize(a) for a in aliases],
    )


def article_from_entry(
    entry: FeedEntry,
    *,
    fetched_at: datetime,
    source: str,
    publisher: str | None,
    page_status: str,
) -> Article:
    """An article from a feed entry alone: its summary stands in for the page."""
    text = entry.summary or entry.title
    if not text:
        raise RecordError("feed entry has neither title nor summary")
    published, date_source = _choose_date(None, entry, fetched_at)
    site = host_of(entry.link) if entry.link else None
    return Article(
        title=entry.title or _title_from_text(text),
        text=text,
        published=published,
        published_raw=entry.published_raw,
        date_source=date_source,
        fetched_at=fetched_at,
        obtained=Obtained.FEED_SUMMARY,
        page_status=page_status,
        source=source,
        url=entry.link,
        author=entry.author,
        publisher=publisher,
        site=site,
        # Without link or guid, the file/feed key would merge every such entry into one article.
        source_id=entry.guid or (None if entry.link else _entry_identity(entry)),
    )


def _entry_identity(entry: FeedEntry) -> str:
    """What tells apart feed entries that have neither link nor guid: title and date, else text."""
    if entry.title:
        identity = f"{entry.title}|{entry.published_raw or ''}"
    else:
        identity = f"|{entry.summary or ''}"
    return "entry:" + hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()[:20]


def _choose_date(
    raw: str | None, entry: FeedEntry | None, fetched_at: datetime
) -> tuple[datetime, DateSource]:
    """The article's own date if plausible, else the feed entry's, else the fetch time."""
    if raw:
        try:
            return parse_date(raw), DateSource.ARTICLE
        except DateError as exc:
            log.info("rejected article date: %s", exc)
    if entry is not None:
        for candidate in (entry.published_raw, entry.published):
            if isinstance(candidate, datetime) and not _names_day(entry.published_raw, candidate):
                continue  # feedparser's guess at a date string it could not read
            if candidate:
                try:
                    return parse_date(candidate), DateSource.FEED
                except DateError as exc:
                    log.info("rejected feed date: %s", exc)
    return fetched_at, DateSource.FETCHED


def _names_day(raw: str | None, moment: datetime) -> bool:
    """Whether `raw` holds `moment`'s year and day of the month as numbers (or there is no raw).

    feedparser reads what it cannot parse into some date anyway: "2024-13-45" as 2025-01-01,
    "-1721037600" as a day in June, an offset of +99:00 as four days earlier. Its reading is a
    fallback for formats parse_date does not know, not for ones parse_date refused.
    """
    if not raw:
        return True
    numbers = {int(n) for n in re.findall(r"\d{1,4}", raw)}
    return (moment.year in numbers or moment.year % 100 in numbers) and moment.day in numbers


def _line_id(url: str | None, source: str, line: int | None) -> str | None:
    if url or line is None:
        return None
    return f"{Path(source).resolve()}#L{line}"


def _title_from_text(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    return first if len(first) <= 120 else first[:117].rsplit(" ", 1)[0] + "…"


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES and not path.name.lower().endswith((".jsonl", ".jsonl.gz")):
        raise SourceError(f"{path} is {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte cap")
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = inflate(data, 20 * MAX_FILE_BYTES, what=str(path))
        except FetchError as exc:
            raise SourceError(f"{path}: {exc}") from exc
    return data


def _reason_of(exc: Exception) -> str:
    reasons = {
        "RecordError": "bad_record",
        "ExtractionError": "no_article_text",
        "SourceError": "bad_source",
        "FeedsFileError": "bad_feeds_file",
        "DateError": "bad_date",
        "CorpusError": "corpus",
    }
    return getattr(exc, "reason", None) or reasons.get(type(exc).__name__, "error")

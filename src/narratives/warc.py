"""Read web archives (WARC, e.g. Common Crawl's CC-NEWS) as a stream of archived HTTP responses.

`iter_warc` walks a `.warc` or `.warc.gz` file record by record without loading it into memory.
It yields a `WarcResponse` for every HTTP 200 HTML page and a `WarcSkip`, saying why, for every
other record (requests, metadata, revisits, images, 404s, pages of unwanted hosts). A file that
is cut short or corrupt raises `WarcError` after the records before the damage were yielded.

Host filters (`normalize_host`, `load_hosts`, `host_matches`) live here too; turning pages into
articles is `narratives.ingest`'s job.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime
from io import BufferedIOBase
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataException
from warcio.exceptions import ArchiveLoadFailed
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException
from warcio.utils import BUFF_SIZE

from narratives.dates import parse_date
from narratives.errors import DateError, NarrativesError, SourceError

WARC_SUFFIXES = (".warc", ".warc.gz")
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DEFAULT_MAX_BODY = 25 * 1024 * 1024  # decompressed bytes of one page, as the fetcher allows
_GZIP_MAGIC = b"\x1f\x8b"


class WarcError(NarrativesError):
    """A WARC file is corrupt or truncated; records before the damage were already read."""

    reason = "corrupt_warc"


class WarcResponse(NamedTuple):
    """One archived HTTP 200 HTML response: what a fetch of `url` returned at `warc_date`."""

    url: str  # WARC-Target-URI
    warc_date: datetime | None  # WARC-Date: when the crawler fetched it (None if unusable)
    status: int  # HTTP status code
    headers: list[tuple[str, str]]  # HTTP response headers, in order
    body: bytes  # payload with transfer- and content-encoding undone

    @property
    def content_type(self) -> str:
        """The media type of the Content-Type header, lower-cased, without parameters."""
        return _media_type(_header(self.headers, "content-type"))


class WarcSkip(NamedTuple):
    """A record that holds no page to ingest, and why (a short key for summary counts)."""

    reason: str  # warc_request, warc_revisit, http_404, not_html, other_host, too_large…
    url: str | None


WarcItem = WarcResponse | WarcSkip


def iter_warc(
    path: str | Path,
    *,
    want_url: Callable[[str], bool] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    progress: Callable[[int], None] | None = None,
) -> Generator[WarcItem, None, None]:
    """Yield each record of the WARC file at `path` as a `WarcResponse` or a `WarcSkip`.

    Only `response` records of http(s) URLs with HTTP status 200 and an HTML Content-Type
    (text/html, application/xhtml+xml) become `WarcResponse`s, and only when `want_url`
    (if given) accepts their URL; bodies over `max_body` bytes are skipped as `too_large`.
    Bodies of skipped records are never decoded. Gzip is detected from the bytes, so both
    per-record gzip (the WARC convention) and a wholly gzipped file are read.

    `progress` is called after each record with how many bytes of the file were read so far.
    Raises `WarcError` when the file turns out to be corrupt or cut short, after yielding
    every complete record before the damage.
    """
    path = Path(path)
    with path.open("rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        inner: BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        stream = _GuardedStream(inner, str(path))
        archive = ArchiveIterator(stream)
        records = iter(archive)
        try:
            while (record := _next_record(records, str(path))) is not None:
                item = _read_record(record, want_url, max_body)
                _check_complete(record, str(path))
                if progress is not None:
                    progress(raw.tell())
                yield item
            # warcio ends quietly at a record header cut short: bytes left over are damage.
            if stream.tell() > archive.offset:
                raise WarcError(
                    f"{path} is truncated or corrupt: {stream.tell() - archive.offset:,} bytes "
                    "after the last complete record are not a WARC record"
                )
        finally:
            if compressed:
                inner.close()


def skip_reason(
    record_type: str | None, url: str | None, status: int | None, content_type: str
) -> str | None:
    """Why a record with these properties holds no page to ingest, or None if it holds one."""
    if record_type != "response":
        return f"warc_{record_type or 'unknown'}"
    if not url or urlsplit(url).scheme.lower() not in ("http", "https"):
        return "not_http"
    if status is None:
        return "no_http_status"
    if status != 200:
        return f"http_{status}"
    if content_type not in HTML_MEDIA_TYPES:
        return "not_html"
    return None


# -- host filters -----------------------------------------------------------------------------


def normalize_host(text: str) -> str:
    """`Reuters.com`, `www.reuters.com.` or `https://www.reuters.com/markets` → `reuters.com`.

    A leading `www.` is dropped so that a host copied from an address bar still matches the
    whole site. Raises `SourceError` for something that is not a host name.
    """
    candidate = text.strip()
    try:
        host = urlsplit(candidate if "://" in candidate else f"//{candidate}").hostname or ""
    except ValueError:  # an unbalanced IPv6 bracket
        host = ""
    host = host.rstrip(".")
    if host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]
    if not host or "." not in host or any(ch.isspace() for ch in host):
        raise SourceError(f"{text!r} is not a host name (expected something like reuters.com)")
    return host


def load_hosts(path: str | Path) -> list[str]:
    """Host names from a file: one a line; blank lines and `#` comments are ignored."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read host file {path}: {exc.strerror or exc}") from exc
    hosts = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            hosts.append(normalize_host(entry))
        except SourceError as exc:
            raise SourceError(f"{path}, line {number}: {exc}") from exc
    if not hosts:
        raise SourceError(f"host file {path} lists no hosts")
    return hosts


def host_matches(url: str, hosts: Iterable[str]) -> bool:
    """True when `url`'s host is one of `hosts` (normalized) or a subdomain of one."""
    wanted = hosts if isinstance(hosts, (set, frozenset)) else set(hosts)
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    labels = host.split(".")
    return any(".".join(labels[i:]) in wanted for i in range(len(labels)))


# -- reading records --------------------------------------------------------------------------


class _GuardedStream:
    """The (decompressed) bytes of a WARC file, with damage raised as `WarcError`.

    warcio takes an EOFError for a clean end of file, so a gzip stream cut short would end the
    archive silently; here it becomes an error that warcio lets through.
    """

    def __init__(self, inner: BufferedIOBase, name: str) -> None:
        self._inner = inner
        self._name = name
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        try:
            # read1: one underlying read at a time, so the bytes decoded before a break in the
            # gzip stream are handed on rather than lost with the exception.
            data = self._inner.read1(size)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise WarcError(
                f"{self._name} is truncated or corrupt after {self._offset:,} uncompressed "
                f"bytes ({exc})"
            ) from exc
        self._offset += len(data)
        return data

    def tell(self) -> int:
        return self._offset


def _next_record(records: Iterator[ArcWarcRecord], name: str) -> ArcWarcRecord | None:
    """The next record, None at the end; warcio's parse failures become `WarcError`."""
    try:
        return next(records)
    except StopIteration:
        return None
    except (ArchiveLoadFailed, StatusAndHeadersParserException, ChunkedDataException) as exc:
        raise WarcError(f"{name}: not a readable WARC file ({_first_line(exc)})") from exc
    except (AttributeError, TypeError, ValueError) as exc:
        # warcio trips over a record header that lacks required fields (a cut-short header).
        raise WarcError(f"{name}: a WARC record header is damaged ({_first_line(exc)})") from exc


def _read_record(
    record: ArcWarcRecord, want_url: Callable[[str], bool] | None, max_body: int
) -> WarcItem:
    url = record.rec_headers.get_header("WARC-Target-URI")
    if record.rec_type == "response" and url and want_url is not None and not want_url(url):
        return WarcSkip("other_host", url)
    http = record.http_headers
    status = _status(http.get_statuscode()) if http is not None else None
    content_type = _media_type(http.get_header("Content-Type")) if http is not None else ""
    reason = skip_reason(record.rec_type, url, status, content_type)
    if reason is not None:
        return WarcSkip(reason, url)
    assert url is not None and status is not None and http is not None
    try:
        body = record.content_stream().read(max_body + 1)
    except ChunkedDataException:
        return WarcSkip("bad_chunking", url)
    if len(body) > max_body:
        return WarcSkip("too_large", url)
    return WarcResponse(
        url=url,
        warc_date=_warc_date(record.rec_headers.get_header("WARC-Date")),
        status=status,
        headers=list(http.headers),
        body=body,
    )


def _check_complete(record: ArcWarcRecord, name: str) -> None:
    """Read the rest of a record's block; raise `WarcError` if it ends before its length."""
    stream = record.raw_stream
    if not isinstance(stream, LimitReader):
        raise WarcError(f"{name}: a {record.rec_type or 'WARC'} record has no Content-Length")
    while stream.read(BUFF_SIZE):
        pass
    if stream.limit > 0:
        url = record.rec_headers.get_header("WARC-Target-URI") or record.rec_type
        raise WarcError(
            f"{name} is truncated: the record for {url} ends {stream.limit:,} bytes short"
        )


def _status(code: str | None) -> int | None:
    try:
        return int(code) if code else None
    except ValueError:
        return None


def _warc_date(raw: str | None) -> datetime | None:
    try:
        return parse_date(raw)
    except DateError:
        return None


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]

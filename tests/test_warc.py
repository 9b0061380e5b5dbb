"""Backfill from web archives: WARC files written here with warcio, read by `narratives ingest`."""

from __future__ import annotations

import gzip
import html
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from narratives.cli import cli
from narratives.errors import SourceError
from narratives.ingest import ingest
from narratives.store import Corpus
from narratives.warc import (
    WarcError,
    WarcResponse,
    WarcSkip,
    host_matches,
    iter_warc,
    load_hosts,
    normalize_host,
)

CRAWLED = "2024-07-15T18:05:00Z"  # WARC-Date of every record

FED = [
    "Treasury yields fell for a third straight session on Monday as traders added to bets that "
    "the Federal Reserve will cut interest rates in September, after a softer reading on "
    "consumer prices last week.",
    "The yield on the two-year note, which tracks expectations for monetary policy, slipped "
    "six basis points to 4.45%. Futures markets now price a better than 90% chance of a cut "
    "at the central bank's September meeting, according to the CME FedWatch tool.",
    "“The disinflation story is back on track, and the Fed has room to move,” said Laura "
    "Bennett, chief rates strategist at Harbor Street Capital. “The question now is whether "
    "they cut once or begin a proper easing cycle.”",
    "Fed Chair Jerome Powell is due to testify before Congress later this week, and investors "
    "will parse his remarks for any sign that policymakers are ready to signal a move.",
]
BANKS = [
    "Shares of Société Générale rose 4% in Paris on Monday after the French lender said it "
    "would sell two African subsidiaries and lift its capital ratio above its own target by "
    "the end of the year.",
    "The bank has been under pressure from investors to simplify a sprawling international "
    "network, and analysts said the disposals would free up capital for buybacks next year.",
    "European bank stocks have rallied this year as higher interest rates widened lending "
    "margins, though many strategists expect that tailwind to fade once the European Central "
    "Bank starts cutting rates in earnest.",
]
OIL = [
    "Oil prices slipped on Monday as signs of weaker demand in China offset worries about "
    "supply disruptions in the Middle East, leaving Brent crude on course for a second "
    "weekly decline.",
    "Chinese refinery runs fell for a third month in June, official data showed, while the "
    "economy grew at its slowest pace in five quarters, adding to concerns about fuel "
    "consumption in the world's largest crude importer.",
    "Traders are also watching the Atlantic hurricane season, which forecasters expect to be "
    "unusually active and which could shut offshore production in the Gulf of Mexico.",
]
CHIPS = [
    "Chipmakers led the Nasdaq lower in June as investors took profits on the year's best "
    "performing trade, with the Philadelphia semiconductor index falling more than 3% in a "
    "single session.",
    "The selloff followed a months-long rally fuelled by demand for artificial intelligence "
    "hardware, which pushed valuations for several large chip designers to record highs.",
    "Some fund managers said the pullback was healthy, arguing that earnings growth would "
    "catch up with prices as data center spending continues to climb into next year.",
]

FED_URL = "https://www.reuters.com/markets/us/treasury-yields-fall-fed-cut-bets-2024-07-15/"
BANKS_URL = "https://uk.reuters.com/business/finance/socgen-sells-african-units/"
OIL_URL = "https://www.oilwire.example/news/oil-slips-china-demand"
CHIPS_URL = "https://www.reuters.com/technology/chip-stocks-slide-2024-06-20/"


def page(title: str, paragraphs: list[str], *, published: str | None = None) -> str:
    """A news page: <title>, an optional published-time meta tag, boilerplate, <article>."""
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><title>{html.escape(title)}</title>{meta}</head>
<body>
<header><nav><a href="/">Home</a> <a href="/markets">Markets</a> <a href="/world">World</a></nav>
</header>
<main><article><h1>{html.escape(title)}</h1>
{body}
</article></main>
<footer><p>All quotes delayed a minimum of 15 minutes.</p><a href="/terms">Terms</a></footer>
</body></html>"""


@dataclass
class Archive:
    path: Path
    ends: list[int]  # byte offset after each record


class Writer:
    """Writes the records of a test WARC, remembering where each record ends."""

    def __init__(self, *, gzip: bool) -> None:
        self.gzip = gzip
        self.buffer = io.BytesIO()
        self.writer = WARCWriter(self.buffer, gzip=gzip)
        self.ends: list[int] = []

    def _write(self, record: object) -> None:
        self.writer.write_record(record)
        self.ends.append(self.buffer.tell())

    def warcinfo(self) -> None:
        self._write(
            self.writer.create_warcinfo_record("test.warc.gz", {"software": "narratives tests"})
        )

    def request(self, url: str) -> None:
        host = url.split("/")[2]
        headers = StatusAndHeaders(
            "GET / HTTP/1.1", [("Host", host), ("Accept", "text/html")], is_http_request=True
        )
        self._write(
            self.writer.create_warc_record(
                url,
                "request",
                payload=io.BytesIO(b""),
                http_headers=headers,
                warc_headers_dict={"WARC-Date": CRAWLED},
            )
        )

    def response(
        self,
        url: str,
        body: bytes,
        *,
        status: str = "200 OK",
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        self._write(
            self.writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                http_headers=StatusAndHeaders(status, fields, protocol="HTTP/1.1"),
                warc_headers_dict={"WARC-Date": CRAWLED},
            )
        )

    def raw_response(self, url: str, http: bytes) -> None:
        """A response record around `http` as a server sent it (warcio writes ASCII only)."""
        block = (
            (
                "WARC/1.0\r\nWARC-Type: response\r\n"
                f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\nWARC-Date: {CRAWLED}\r\n"
                f"WARC-Target-URI: {url}\r\nContent-Type: application/http; msgtype=response\r\n"
                f"Content-Length: {len(http)}\r\n\r\n"
            ).encode()
            + http
            + b"\r\n\r\n"
        )
        self.buffer.write(gzip.compress(block) if self.gzip else block)
        self.ends.append(self.buffer.tell())

    def metadata(self, url: str) -> None:
        self._write(
            self.writer.create_warc_record(
                url,
                "metadata",
                payload=io.BytesIO(b"fetchTimeMs: 212\r\n"),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": CRAWLED},
            )
        )

    def revisit(self, url: str) -> None:
        headers = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
        )
        self._write(
            self.writer.create_revisit_record(
                url,
                digest="sha1:B4VVS5KPPOS2PD6S5UX2O2V6RXQVSONH",
                refers_to_uri=url,
                refers_to_date="2024-07-14T10:00:00Z",
                http_headers=headers,
            )
        )

    def save(self, path: Path) -> Archive:
        path.write_bytes(self.buffer.getvalue())
        return Archive(path, self.ends)


def news_warc(path: Path, *, gzip: bool = True) -> Archive:
    """Four articles and everything a crawl file holds besides: the WARC most tests read."""
    w = Writer(gzip=gzip)
    w.warcinfo()
    w.request(FED_URL)
    fed = page("Treasury yields fall as Fed cut bets grow", FED, published="2024-07-15T14:30:00Z")
    w.response(FED_URL, fed.encode("utf-8"))
    w.metadata(FED_URL)
    # No date in the page, and bytes in the charset only the HTTP header names.
    banks = page("SocGen to sell two African units", BANKS)
    w.response(BANKS_URL, banks.encode("iso-8859-1"), content_type="text/html; charset=ISO-8859-1")
    w.response(
        "https://www.reuters.com/pf/resources/images/logo.png",
        b"\x89PNG\r\n\x1a\n" * 8,
        content_type="image/png",
    )
    w.response(
        "https://www.reuters.com/markets/gone/",
        page("Page not found", ["This page has moved."]).encode(),
        status="404 Not Found",
    )
    w.revisit(FED_URL)
    oil = page("Oil slips on China demand worries", OIL, published="2024-07-14T09:00:00Z")
    w.response(OIL_URL, oil.encode(), content_type="application/xhtml+xml")
    chips = page("Chip stocks slide as investors take profits", CHIPS, published="2024-06-20")
    w.response(CHIPS_URL, chips.encode())
    return w.save(path)


ALL_SKIPS = {
    "warc_warcinfo": 1,
    "warc_request": 1,
    "warc_metadata": 1,
    "warc_revisit": 1,
    "not_html": 1,
    "http_404": 1,
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "corpus.db"


def _articles(db: Path) -> dict[str, dict[str, object]]:
    with Corpus(db) as corpus:
        rows = corpus.db.execute(
            "SELECT url, title, text, published, date_source, obtained, site, fetched_at, source "
            "FROM articles"
        ).fetchall()
    keys = ["url", "title", "text", "published", "date_source", "obtained", "site", "fetched_at"]
    return {row[0]: dict(zip([*keys, "source"], row, strict=True)) for row in rows}


def _errors(db: Path) -> list[tuple[str, str | None, str]]:
    with Corpus(db) as corpus:
        return corpus.db.execute("SELECT source, item, reason FROM ingest_errors").fetchall()


# -- ingesting ------------------------------------------------------------------------------------


def test_warc_pages_are_stored_like_fetched_pages(tmp_path, db):
    archive = news_warc(tmp_path / "CC-NEWS-20240715.warc.gz")
    summary = ingest(db, [str(archive.path)], progress=False)

    assert summary.new == 4 and summary.total_failed == 0
    assert summary.skipped == ALL_SKIPS
    assert summary.as_dict()["skipped"] == ALL_SKIPS
    articles = _articles(db)
    assert set(articles) == {FED_URL, BANKS_URL, OIL_URL, CHIPS_URL}

    fed = articles[FED_URL]
    assert fed["title"] == "Treasury yields fall as Fed cut bets grow"
    assert "two-year note" in fed["text"] and "Laura Bennett" in fed["text"]
    assert "All quotes delayed" not in fed["text"]  # boilerplate stays out, as for fetched pages
    assert fed["published"].startswith("2024-07-15T14:30:00")
    assert fed["date_source"] == "article" and fed["obtained"] == "page"
    assert fed["site"] == "reuters.com" and fed["source"] == str(archive.path)
    assert fed["fetched_at"].startswith("2024-07-15T18:05:00")

    banks = articles[BANKS_URL]
    assert banks["title"] == "SocGen to sell two African units"
    assert "Société Générale" in banks["text"]  # decoded by the HTTP header's charset
    # No date on the page: the WARC-Date (when it was crawled) stands in, as a fetch time would.
    assert banks["published"].startswith("2024-07-15T18:05:00")
    assert banks["date_source"] == "fetched"
    assert summary.date_fallbacks == {"fetched": 1}

    assert "Gulf of Mexico" in articles[OIL_URL]["text"]  # application/xhtml+xml is HTML too
    assert articles[CHIPS_URL]["published"].startswith("2024-06-20")


def test_reingesting_the_same_warc_adds_nothing(tmp_path, db):
    archive = news_warc(tmp_path / "news.warc.gz")
    first = ingest(db, [str(archive.path)], progress=False)
    again = ingest(db, [str(archive.path)], progress=False)
    assert first.new == 4
    assert again.new == 0 and again.updated == 0 and again.duplicates == 0
    assert again.unchanged == 4 and again.total_failed == 0
    assert len(_articles(db)) == 4


def test_plain_warcs_are_found_in_directories(tmp_path, db):
    folder = tmp_path / "crawl" / "2024" / "07"
    folder.mkdir(parents=True)
    news_warc(folder / "news.warc", gzip=False)
    summary = ingest(db, [str(tmp_path / "crawl")], progress=False)
    assert summary.new == 4 and summary.skipped == ALL_SKIPS


def test_host_filter_keeps_listed_hosts_and_their_subdomains(tmp_path, db):
    archive = news_warc(tmp_path / "news.warc.gz")
    summary = ingest(db, [str(archive.path)], hosts=["reuters.com"], progress=False)
    assert set(_articles(db)) == {FED_URL, BANKS_URL, CHIPS_URL}  # www. and uk. subdomains
    assert summary.skipped["other_host"] == 1


def test_since_and_until_keep_a_date_range(tmp_path, db):
    archive = news_warc(tmp_path / "news.warc.gz")
    since = datetime(2024, 7, 1, tzinfo=UTC)
    until = datetime(2024, 7, 14, tzinfo=UTC)  # a bare date: all of July 14 is kept
    summary = ingest(db, [str(archive.path)], since=since, until=until, progress=False)
    # OIL was published on July 14; FED on July 15 and BANKS dated by its July 15 crawl are
    # after --until, CHIPS (June 20) before --since.
    assert set(_articles(db)) == {OIL_URL}
    assert summary.skipped_after_until == 2 and summary.skipped_before_since == 1


def test_a_crawl_older_than_since_is_skipped_without_extraction(tmp_path, db):
    archive = news_warc(tmp_path / "news.warc.gz")
    summary = ingest(
        db, [str(archive.path)], since=datetime(2024, 7, 20, tzinfo=UTC), progress=False
    )
    assert summary.new == 0 and summary.skipped_before_since == 4 and summary.total_failed == 0


def test_a_page_date_after_its_crawl_falls_back_to_the_warc_date(tmp_path, db):
    w = Writer(gzip=True)
    w.response(FED_URL, page("Yields fall", FED, published="2024-09-01T12:00:00Z").encode())
    archive = w.save(tmp_path / "news.warc.gz")
    ingest(db, [str(archive.path)], progress=False)
    fed = _articles(db)[FED_URL]
    assert fed["published"].startswith("2024-07-15T18:05:00") and fed["date_source"] == "fetched"


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_non_ascii_http_headers_do_not_trip_a_page_up(tmp_path, db, compress):
    body = page("Treasury yields fall as Fed cut bets grow", FED).encode()
    http = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        + 'Link: </ø>; rel="alternate"; title="Übersicht"\r\n'.encode()
        + b'Content-Disposition: inline; filename="caf\xe9.html"\r\n\r\n'
        + body
    )
    w = Writer(gzip=compress)
    w.raw_response(FED_URL, http)
    archive = w.save(tmp_path / ("raw.warc.gz" if compress else "raw.warc"))
    summary = ingest(db, [str(archive.path)], progress=False)
    assert summary.new == 1 and summary.total_failed == 0
    assert "two-year note" in _articles(db)[FED_URL]["text"]


def test_a_page_without_article_text_is_a_recorded_failure(tmp_path, db):
    w = Writer(gzip=True)
    w.response("https://www.reuters.com/", b"<html><head><title>Reuters</title></head></html>")
    w.response(FED_URL, page("Treasury yields fall as Fed cut bets grow", FED).encode())
    archive = w.save(tmp_path / "news.warc.gz")
    summary = ingest(db, [str(archive.path)], progress=False)
    assert summary.new == 1 and summary.failed == {"no_article_text": 1}
    assert _errors(db) == [(str(archive.path), "https://www.reuters.com/", "no_article_text")]


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_a_truncated_warc_is_a_recorded_failure_that_keeps_earlier_records(tmp_path, db, gzip):
    archive = news_warc(tmp_path / "whole.warc.gz", gzip=gzip)
    # Cut the file in the middle of the last record (CHIPS); everything before it is whole.
    cut = (archive.ends[-2] + archive.ends[-1]) // 2
    broken = tmp_path / ("broken.warc.gz" if gzip else "broken.warc")
    broken.write_bytes(archive.path.read_bytes()[:cut])

    summary = ingest(db, [str(broken)], progress=False)

    assert summary.failed == {"corrupt_warc": 1}
    assert set(_articles(db)) == {FED_URL, BANKS_URL, OIL_URL}
    assert summary.skipped == ALL_SKIPS
    [(source, item, reason)] = _errors(db)
    assert (source, item, reason) == (str(broken), None, "corrupt_warc")


def test_a_file_that_is_not_a_warc_is_a_recorded_failure(tmp_path, db):
    bogus = tmp_path / "bogus.warc"
    bogus.write_text(page("Not an archive", FED), encoding="utf-8")
    summary = ingest(db, [str(bogus)], progress=False)
    assert summary.failed == {"corrupt_warc": 1} and summary.new == 0


# -- the reader and its filters ------------------------------------------------------------------


def test_iter_warc_yields_pages_and_says_why_it_skips_the_rest(tmp_path):
    archive = news_warc(tmp_path / "news.warc.gz")
    positions: list[int] = []
    items = list(iter_warc(archive.path, progress=positions.append))
    pages = [item for item in items if isinstance(item, WarcResponse)]
    skips = [item for item in items if isinstance(item, WarcSkip)]
    assert [p.url for p in pages] == [FED_URL, BANKS_URL, OIL_URL, CHIPS_URL]
    assert pages[0].status == 200 and pages[0].content_type == "text/html"
    assert pages[0].warc_date == datetime(2024, 7, 15, 18, 5, tzinfo=UTC)
    assert pages[0].body.startswith(b"<!DOCTYPE html>")
    assert sorted(s.reason for s in skips) == sorted(ALL_SKIPS)
    assert positions == sorted(positions) and positions[-1] == archive.path.stat().st_size


def test_iter_warc_raises_after_the_records_before_the_damage(tmp_path):
    archive = news_warc(tmp_path / "news.warc.gz")
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(archive.path.read_bytes()[: archive.ends[2] + 20])
    seen = []
    with pytest.raises(WarcError, match="truncated"):
        for item in iter_warc(broken):
            seen.append(item)
    assert [getattr(item, "url", None) for item in seen] == [None, FED_URL, FED_URL]


def test_host_helpers():
    assert normalize_host(" Reuters.com. ") == "reuters.com"
    assert normalize_host("www.reuters.com") == "reuters.com"
    assert normalize_host("https://www.ft.com/markets") == "ft.com"
    with pytest.raises(SourceError):
        normalize_host("not a host")
    hosts = {"reuters.com"}
    assert host_matches("https://www.reuters.com/markets/", hosts)
    assert host_matches("https://reuters.com/", hosts)
    assert host_matches("https://UK.Reuters.com:443/x", hosts)
    assert not host_matches("https://notreuters.com/", hosts)
    assert not host_matches("https://reuters.com.evil.example/", hosts)


def test_host_file_reads_hosts_and_skips_comments(tmp_path):
    listing = tmp_path / "hosts.txt"
    listing.write_text("# wire services\nreuters.com  # Thomson Reuters\n\nwww.ft.com\n")
    assert load_hosts(listing) == ["reuters.com", "ft.com"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SourceError, match="no hosts"):
        load_hosts(empty)


# -- the command line -----------------------------------------------------------------------------


def test_cli_ingests_a_warc_with_host_and_date_filters(tmp_path, db):
    archive = news_warc(tmp_path / "CC-NEWS-20240715.warc.gz")
    args = ["ingest", str(archive.path), "--db", str(db), "--no-progress"]
    result = CliRunner().invoke(cli, [*args, "--host", "reuters.com", "--since", "2024-07-01"])
    assert result.exit_code == 0, result.output
    assert "new               2" in result.output
    assert "WARC records without a page to keep" in result.output
    assert "other_host 1" in result.output
    assert set(_articles(db)) == {FED_URL, BANKS_URL}

    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# publishers to backfill\noilwire.example\n")
    result = CliRunner().invoke(
        cli, [*args, "--host-file", str(hosts), "--until", "2024-07-14", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["new"] == 1 and report["failed"] == 0
    assert report["skipped"]["other_host"] == 5  # the image and the 404 are reuters.com's
    assert set(_articles(db)) == {FED_URL, BANKS_URL, OIL_URL}


def test_cli_rejects_a_bad_until_date(tmp_path, db):
    archive = news_warc(tmp_path / "news.warc.gz")
    result = CliRunner().invoke(
        cli, ["ingest", str(archive.path), "--db", str(db), "--until", "someday"]
    )
    assert result.exit_code == 2 and "not a usable date" in result.output

"""Network faults end as recorded errors, never a hang or a crash; the rest of the run goes on.

Each test is bounded in time. Faults below HTTP (resets, silence, garbage) come from a raw TCP
server; HTTP-level ones from the scripted server in conftest. The older fault tests (slow drip,
429 Retry-After, redirect loops, gzip bombs, huge pages, charsets, DNS) are in
test_ingest_http.py; docs/reliability.md lists all of them.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from narratives.fetch import Fetcher, FetchPolicy
from narratives.ingest import ingest
from narratives.store import Corpus

from conftest import STORY, RecordingSleep, Server, article_page

pytestmark = pytest.mark.timeout(30)

POLICY = FetchPolicy(
    min_delay=0,
    allow_private=True,
    connect_timeout=1.0,
    read_timeout=1.0,
    total_timeout=3.0,
    retries=1,
    backoff=0.01,
    respect_robots=False,
)


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is handled by `behaviour(sock)`."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/story.html"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(behaviour))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[Corpus]:
    with Corpus(tmp_path / "t.db") as c:
        yield c


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def _reset(conn: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def reset_before_answer(conn: socket.socket) -> None:
    _read_request(conn)
    _reset(conn)


def reset_mid_body(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 50000\r\n\r\n")
    conn.sendall(b"<html><body><p>" + b"partial " * 500)
    time.sleep(0.1)
    _reset(conn)


def close_without_answer(conn: socket.socket) -> None:
    _read_request(conn)


def never_answer(conn: socket.socket) -> None:
    _read_request(conn)
    time.sleep(4)


def answer_garbage(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(bytes(range(256)) * 8)


def truncated_body(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9000\r\n\r\n")
    conn.sendall(b"<html><body><p>only part of it</p>")


def headers_forever(conn: socket.socket) -> None:
    """An endless header section, a line every 50 ms: only the total time limit ends it."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(200):
        conn.sendall(f"X-Filler-{i}: {'x' * 20}\r\n".encode())
        time.sleep(0.05)


RAW_FAULTS = {
    "reset before the answer": (reset_before_answer, {"connection"}),
    "reset in the middle of the body": (reset_mid_body, {"connection"}),
    "connection closed without an answer": (close_without_answer, {"connection"}),
    "connection open, no answer": (never_answer, {"timeout"}),
    "not HTTP at all": (answer_garbage, {"connection"}),
    "body shorter than Content-Length": (truncated_body, {"connection"}),
    "endless headers": (headers_forever, {"timeout", "connection"}),
}


@pytest.mark.parametrize("fault", list(RAW_FAULTS))
def test_socket_level_fault_is_a_recorded_error_and_the_run_goes_on(
    fault: str, raw, server: Server, corpus: Corpus
):
    behaviour, reasons = RAW_FAULTS[fault]
    broken = raw(behaviour)
    fine = server.route("/fine.html", article_page("Fine", STORY))
    started = time.monotonic()
    summary = ingest(corpus, [broken.url, fine], policy=POLICY, progress=False)
    assert set(summary.failed) <= reasons and summary.total_failed == 1, summary.failed
    assert summary.new == 1
    assert time.monotonic() - started < 20
    recorded = corpus.db.execute("SELECT source, reason FROM ingest_errors").fetchall()
    assert recorded == [(broken.url, next(iter(summary.failed)))]


def test_connection_refused_is_retried_then_recorded(corpus: Corpus):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    sleep = RecordingSleep()
    with Fetcher(POLICY, sleep=sleep) as fetcher:
        summary = ingest(
            corpus, [f"http://127.0.0.1:{port}/x.html"], fetcher=fetcher, progress=False
        )
    assert summary.failed == {"connection": 1}
    assert len(sleep.waits) == POLICY.retries  # retried with backoff, then given up


def test_429_with_an_http_date_retry_after_is_honoured(server: Server, corpus: Corpus):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=7), usegmt=True)
    url = server.route(
        "/s.html",
        article_page("Later", STORY),
        statuses=[429],
        headers={"Retry-After": when},
    )
    sleep = RecordingSleep()
    with Fetcher(POLICY, sleep=sleep) as fetcher:
        summary = ingest(corpus, [url], fetcher=fetcher, progress=False)
    assert summary.new == 1
    assert any(4 <= w <= 8 for w in sleep.waits), sleep.waits


def test_429_with_a_garbage_retry_after_backs_off_instead(server: Server, corpus: Corpus):
    url = server.route(
        "/s.html", article_page("Later", STORY), statuses=[429], headers={"Retry-After": "soon"}
    )
    sleep = RecordingSleep()
    with Fetcher(POLICY, sleep=sleep) as fetcher:
        summary = ingest(corpus, [url], fetcher=fetcher, progress=False)
    assert summary.new == 1 and sleep.waits and max(sleep.waits) < 1


@pytest.mark.parametrize(
    ("routes", "reason"),
    [
        ({f"/r{i}": f"/r{i + 1}" for i in range(10)}, "too_many_redirects"),
        ({"/r0": "/r0"}, "redirect_loop"),
        ({"/r0": "/r1", "/r1": "/r2", "/r2": "/r0"}, "redirect_loop"),
        ({"/r0": None}, "bad_redirect"),
    ],
    ids=["chain of 10", "to itself", "three-hop loop", "no Location"],
)
def test_bad_redirects_end_as_errors(server: Server, corpus: Corpus, routes, reason):
    for path, target in routes.items():
        headers = {"Location": target} if target else {}
        server.route(path, "", status=302, headers=headers)
    summary = ingest(corpus, [server.url("/r0")], policy=POLICY, progress=False)
    assert summary.failed == {reason: 1}


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (zlib.compress(b"<p>" + b"A" * 40_000_000 + b"</p>", 9), "deflate"),
        (gzip.compress(gzip.compress(b"B" * 40_000_000)), "gzip, gzip"),
    ],
    ids=["deflate bomb", "double gzip bomb"],
)
def test_compression_bombs_are_capped(server: Server, corpus: Corpus, body: bytes, encoding: str):
    policy = FetchPolicy(
        min_delay=0, allow_private=True, respect_robots=False, max_decompressed_bytes=2_000_000
    )
    server.route("/bomb.html", body, headers={"Content-Encoding": encoding})
    summary = ingest(corpus, [server.url("/bomb.html")], policy=policy, progress=False)
    assert summary.failed == {"too_large": 1}


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(b"\x1f\x8b\x08\x00garbage-not-gzip", "gzip"), (b"<p>plain</p>", "br"), (b"x", "zstd")],
    ids=["corrupt gzip", "brotli we did not ask for", "zstd we did not ask for"],
)
def test_undecodable_content_encoding_is_an_error(
    server: Server, corpus: Corpus, body: bytes, encoding: str
):
    server.route("/s.html", body, headers={"Content-Encoding": encoding})
    summary = ingest(corpus, [server.url("/s.html")], policy=POLICY, progress=False)
    assert summary.failed == {"bad_encoding": 1}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(200), "image/jpeg"),
        (bytes(range(256)) * 20, "application/octet-stream"),
        (b"PK\x03\x04" + bytes(100), "application/zip"),
    ],
    ids=["pdf", "png", "jpeg", "octet-stream", "zip"],
)
def test_non_html_content_types_are_refused_not_parsed(
    server: Server, corpus: Corpus, body: bytes, content_type: str
):
    server.route("/file", body, content_type=content_type)
    summary = ingest(corpus, [server.url("/file")], policy=POLICY, progress=False)
    assert summary.total_failed == 1 and corpus.count() == 0, summary.failed


@pytest.mark.parametrize(
    "body",
    [
        bytes(range(256)) * 40,  # binary labelled as HTML
        b"\x00" * 20_000,
        b"<html><body>" + b"\xff\xfe\xfd" * 3000 + b"</body></html>",
    ],
    ids=["binary as html", "NUL bytes as html", "invalid bytes in html"],
)
def test_binary_served_as_html_is_an_error_not_a_crash(server: Server, corpus: Corpus, body: bytes):
    server.route("/s.html", body)
    summary = ingest(corpus, [server.url("/s.html")], policy=POLICY, progress=False)
    assert summary.total_failed == 1 and corpus.count() == 0, summary.failed


def test_invalid_utf8_in_a_utf8_page_is_replaced_and_stored(server: Server, corpus: Corpus):
    paragraphs = [*STORY[:3], "Rates \xff\xfe fell as the \xc3\x28 dollar slid."]
    page = article_page("Bad bytes", STORY[:3]).encode()
    page = page.replace(
        b"</article>", b"<p>Rates \xff\xfe fell as the \xc3\x28 dollar slid.</p></article>"
    )
    server.route("/s.html", page, content_type="text/html; charset=utf-8")
    summary = ingest(corpus, [server.url("/s.html")], policy=POLICY, progress=False)
    assert summary.new == 1, summary.failed
    text = corpus.db.execute("SELECT text FROM articles").fetchone()[0]
    assert "fell as the" in text and "\udcff" not in text  # no surrogates escape into SQLite
    assert len(paragraphs) == 4


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html; charset=x-no-such-charset",
        "text/html; charset=",
        'text/html; charset="utf-16"',  # declared UTF-16, sent UTF-8
        "text/html; charset=utf-8; charset=latin-1",
    ],
)
def test_unknown_or_wrong_declared_charset_still_reads_the_page(
    server: Server, corpus: Corpus, content_type: str
):
    page = article_page("Café society’s rate-cut bets", STORY).encode("utf-8")
    server.route("/s.html", page, content_type=content_type)
    summary = ingest(corpus, [server.url("/s.html")], policy=POLICY, progress=False)
    assert summary.new == 1, summary.failed
    title = corpus.db.execute("SELECT title FROM articles").fetchone()[0]
    assert title == "Café society’s rate-cut bets"


def test_dns_failure_for_a_page_in_a_feed_keeps_its_summary(server: Server, corpus: Corpus):
    from conftest import rss

    feed = server.route(
        "/feed.xml",
        rss([{"link": "http://no-such-host.invalid/a.html", "title": "Gone", "description": "s"}]),
        content_type="application/rss+xml",
    )
    summary = ingest(corpus, [feed], policy=POLICY, progress=False)
    assert corpus.db.execute("SELECT page_status FROM articles").fetchone()[0] == "dns"
    assert summary.outcomes

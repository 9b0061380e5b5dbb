"""Shared fixtures: a scripted HTTP server on 127.0.0.1, page/feed builders, a fast fetch policy."""

from __future__ import annotations

import gzip
import html
import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from narratives.fetch import FetchPolicy

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SHARED_DATA = ROOT / ".." / "shared" / "data"


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py, which is a script folder, not a package."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running so its dataclasses can resolve their own module.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that data is not here."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared evaluation data is not here")
    return path


@dataclass
class Route:
    """What the server answers on one path. `body` may be a callable of the request."""

    body: bytes | Callable[[BaseHTTPRequestHandler], bytes] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0  # seconds before answering
    etag: str | None = None  # answer 304 to a matching If-None-Match
    statuses: list[int] = field(default_factory=list)  # per-request status sequence, then status


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class Server:
    """A local HTTP server whose routes tests script; records every request it sees."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(Seen(self.path, dict(self.headers.items())))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                    return
                if route.delay:
                    time.sleep(route.delay)
                status = route.statuses.pop(0) if route.statuses else route.status
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", None, {"ETag": route.etag})
                    return
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                self._send(status, route.body, route.content_type, headers)

            def _send(
                self,
                status: int,
                body: bytes | Callable[[BaseHTTPRequestHandler], bytes],
                ctype: str | None,
                headers: dict[str, str],
            ) -> None:
                try:
                    self.send_response(status)
                    if ctype:
                        self.send_header("Content-Type", ctype)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if callable(body):
                        # A streaming body writes itself after the headers (slow drips, floods).
                        self.end_headers()
                        self.wfile.write(body(self))
                        return
                    if "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status != 304:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, body: bytes | str | Callable = b"", **kwargs: object) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


class RecordingSleep:
    """Stands in for time.sleep: remembers how long the fetcher wanted to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fast_policy() -> FetchPolicy:
    """No politeness delay, loopback allowed, quick timeouts and backoff: for local servers."""
    return FetchPolicy(
        min_delay=0.0,
        allow_private=True,
        connect_timeout=2.0,
        read_timeout=2.0,
        total_timeout=5.0,
        retries=2,
        backoff=0.01,
    )


def article_page(
    title: str,
    paragraphs: list[str],
    *,
    published: str | None = "2024-07-15T14:30:00-04:00",
    author: str | None = "Dana Whitfield",
    canonical: str | None = None,
    site_name: str = "The Ledger Line",
    charset: str = "utf-8",
    extra_head: str = "",
) -> str:
    """A realistic article page: header/nav/footer boilerplate around the story."""
    meta = [f'<meta charset="{charset}">', f"<title>{html.escape(title)} | {site_name}</title>"]
    if canonical:
        meta.append(f'<link rel="canonical" href="{canonical}">')
    meta.append(f'<meta property="og:site_name" content="{site_name}">')
    meta.append(f'<meta property="og:title" content="{html.escape(title)}">')
    if published:
        meta.append(f'<meta property="article:published_time" content="{published}">')
    if author:
        meta.append(f'<meta name="author" content="{author}">')
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head>{"".join(meta)}{extra_head}</head>
<body>
<header><nav><a href="/">Home</a> <a href="/markets">Markets</a> <a href="/economy">Economy</a>
<a href="/crypto">Crypto</a> <a href="/subscribe">Subscribe</a></nav></header>
<main><article>
<h1>{html.escape(title)}</h1>
<div class="byline">By {author or "Staff"}</div>
{body}
</article>
<aside><h3>Most read</h3><ul><li><a href="/a">Oil slips as inventories build</a></li>
<li><a href="/b">Five dividend stocks for a choppy market</a></li></ul></aside>
</main>
<footer><p>Copyright 2024 {site_name}. All rights reserved.</p>
<a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
</body></html>"""


def rss(items: list[dict[str, str]], *, title: str = "Ledger Line Markets") -> str:
    """An RSS 2.0 feed; each item dict has link, title, description, and optional pubDate/guid."""
    parts = []
    for item in items:
        pub = item.get("pubDate", "Mon, 15 Jul 2024 18:30:00 GMT")
        guid = item.get("guid", item["link"])
        parts.append(
            "<item>"
            f"<title>{html.escape(item['title'])}</title>"
            f"<link>{html.escape(item['link'])}</link>"
            f"<description>{html.escape(item['description'])}</description>"
            f"<pubDate>{pub}</pubDate><guid>{html.escape(guid)}</guid>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://ledgerline.example/</link>"
        f"<description>Markets</description>{''.join(parts)}</channel></rss>"
    )


def rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


# Paragraphs written for these tests, in the style of market wraps.
STORY = [
    "Small-cap stocks extended their rally on Monday as traders added to bets that the Federal "
    "Reserve will begin cutting interest rates in September, pushing the Russell 2000 to its "
    "best five-day run in more than a year.",
    "The iShares Russell 2000 ETF (IWM) climbed 2.1% by midafternoon, while the S&P 500 edged "
    "up 0.3%. Futures markets now price a better than 90% chance of a September cut, according "
    "to the CME FedWatch tool.",
    "“Lower borrowing costs matter far more to smaller companies, which lean on floating-rate "
    "bank debt,” said Priya Natarajan, head of equity strategy at Calder Point Advisors. “That "
    "is the whole trade right now.”",
    "Regional banks and homebuilders, two other groups that tend to benefit from falling rates, "
    "also outperformed. The SPDR S&P Regional Banking ETF (KRE) rose 2.8%.",
    "Not everyone is convinced the rotation will last. Some strategists warned that small caps "
    "have staged several false starts since 2022, each fading once bond yields turned higher "
    "again.",
]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer, 32-wide BERT with MiniLM's tokenizer: fast plumbing tests, no real model."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from narratives.encoder import base_model_path

    path = tmp_path_factory.mktemp("tiny-encoder")
    source = base_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, path / name)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture
def use_tiny_encoder(tiny_encoder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NARRATIVES_ENCODER", str(tiny_encoder))
    return tiny_encoder


# -- processes, ports and corpora shared by the slow end-to-end tests ---------------------------

RUN_CLI = "from narratives.cli import main; main()"  # `narratives` as `python -c`


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(db: Path, log: Path) -> Iterator[str]:
    """`narratives serve` on `db` in its own process, on a free port; yields its base URL.

    Its output goes to `log` (a pipe nobody reads could fill and stall the server) and is
    shown if it fails to start.
    """
    port = free_port()
    command = [sys.executable, "-c", RUN_CLI, "serve", "--db", str(db), "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/-/versions.json", timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = log.read_text(errors="replace")[-4000:]
                pytest.fail(f"narratives serve did not start: {output}")
            time.sleep(0.3)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy of a corpus (SQLite's backup API), even while WAL holds changes."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def record_figures(section: str, figures: dict) -> None:
    """Add `figures` under `section` of $NARRATIVES_RELIABILITY_REPORT, when it is set
    (scripts/reliability_report.py renders them in docs/reliability.md)."""
    target = os.environ.get("NARRATIVES_RELIABILITY_REPORT")
    if not target:
        return
    path = Path(target)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(section, {}).update(figures)
    path.write_text(json.dumps(data, indent=1))

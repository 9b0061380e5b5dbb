"""SSRF: no fetch reaches a local file, loopback, private or link-local address unless allowed.

Every case runs with the default policy (no `allow_private`) and checks two things: the run
records the refusal, and no request ever reaches the local test server. Addresses are checked
after DNS resolution, on the address actually connected to, and on every redirect hop.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from narratives.cli import cli
from narratives.errors import FetchError
from narratives.fetch import Fetcher, FetchPolicy
from narratives.ingest import ingest
from narratives.store import Corpus

from conftest import STORY, Server, article_page, rss

pytestmark = pytest.mark.timeout(30)

# The test server listens on 127.0.0.1: this policy lets exactly that address through, so a
# redirect or a feed entry can lead from it to somewhere else that must still be refused.
ONLY_TEST_SERVER = FetchPolicy(min_delay=0, retries=0, allow_networks=("127.0.0.1/32",))
REFUSED = {"private_address", "bad_scheme", "bad_source", "dns", "bad_url"}

# Non-public destinations written the ways attackers write them.
LITERAL_TARGETS = [
    "http://127.0.0.1/",
    "http://127.1/",  # short form of 127.0.0.1
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hexadecimal
    "http://0177.0.0.1/",  # octal
    "http://0.0.0.0/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT, shared address space
    "http://[fc00::1]/",  # unique local IPv6
    "http://224.0.0.1/",  # multicast
    "http://user:pass@127.0.0.1/",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    with Corpus(tmp_path / "t.db") as c:
        yield c


def _refused(summary) -> bool:
    return summary.total_failed == 1 and set(summary.failed) <= REFUSED


@pytest.mark.parametrize("target", LITERAL_TARGETS)
def test_non_public_addresses_are_refused_by_default(corpus, target):
    summary = ingest(corpus, [target], policy=FetchPolicy(min_delay=0), progress=False)
    assert _refused(summary), summary.failed
    assert corpus.count() == 0


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"])
def test_other_schemes_are_never_fetched(corpus, target):
    summary = ingest(corpus, [target], policy=FetchPolicy(min_delay=0), progress=False)
    assert _refused(summary), summary.failed


def test_the_local_test_server_itself_is_refused_by_default(server: Server, corpus):
    url = server.route("/s.html", article_page("Local", STORY))
    summary = ingest(corpus, [url], policy=FetchPolicy(min_delay=0), progress=False)
    assert summary.failed == {"private_address": 1}
    assert server.requests == []  # not even robots.txt


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://[::1]/",
        "http://127.0.0.2:{port}/s.html",  # loopback, but not the allowed address
        "file:///etc/passwd",
    ],
)
def test_every_redirect_hop_is_checked(server: Server, corpus, location):
    port = server.httpd.server_address[1]
    start = server.route("/go", "", status=302, headers={"Location": location.format(port=port)})
    summary = ingest(corpus, [start], policy=ONLY_TEST_SERVER, progress=False)
    assert _refused(summary), summary.failed
    assert corpus.count() == 0


def test_redirect_from_robots_txt_to_a_private_address_is_refused(server: Server):
    server.route("/robots.txt", "", status=301, headers={"Location": "http://10.1.2.3/robots"})
    page = server.route("/s.html", article_page("Page", STORY))
    with Fetcher(ONLY_TEST_SERVER) as fetcher, pytest.raises(FetchError) as error:
        fetcher.get(page)
    assert error.value.reason == "private_address"
    assert server.hits("/s.html") == 0


def test_feed_entries_pointing_at_private_addresses_keep_only_their_summary(server: Server, corpus):
    feed = server.route(
        "/feed.xml",
        rss(
            [
                {"link": "http://169.254.169.254/latest/", "title": "Meta", "description": "a"},
                {"link": "http://192.168.0.10/intranet", "title": "Intranet", "description": "b"},
                {"link": "file:///etc/passwd", "title": "Passwd", "description": "c"},
            ]
        ),
        content_type="application/rss+xml",
    )
    summary = ingest(corpus, [feed], policy=ONLY_TEST_SERVER, progress=False)
    texts = [row[0] for row in corpus.db.execute("SELECT text FROM articles")]
    assert "root:" not in " ".join(texts)  # /etc/passwd never read
    assert sorted(texts) == ["a", "b", "c"]  # the feed's own summaries are kept
    statuses = dict(corpus.db.execute("SELECT text, page_status FROM articles").fetchall())
    assert statuses == {"a": "private_address", "b": "private_address", "c": "no_link"}
    errors = [r[0] for r in corpus.db.execute("SELECT reason FROM ingest_errors")]
    assert errors == ["private_address", "private_address"]  # a file: link is no link at all
    assert summary.outcomes  # the run went on and stored the three summaries


def _fake_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]
) -> Callable[[], int]:
    """Answer getaddrinfo for test names from `answers` (one list per successive lookup)."""
    real = socket.getaddrinfo
    lookups = {"n": 0}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            lookups["n"] += 1
            queue = answers[host]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 80)) for a in addresses]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lambda: lookups["n"]


def test_dns_rebinding_between_check_and_connect_is_refused(
    server: Server, corpus, monkeypatch: pytest.MonkeyPatch
):
    """The name answers a public address when checked, then the test server's: the connection
    goes to the address checked at connect time, so the private one is refused."""
    port = server.httpd.server_address[1]
    server.route("/s.html", article_page("Rebound", STORY))
    lookups = _fake_dns(monkeypatch, {"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
    policy = FetchPolicy(min_delay=0, retries=0, respect_robots=False)
    summary = ingest(corpus, [f"http://rebind.test:{port}/s.html"], policy=policy, progress=False)
    assert summary.failed == {"private_address": 1}
    assert lookups() >= 2  # checked, then resolved again by the connection itself
    assert server.requests == []


def test_a_name_with_any_private_answer_is_refused(
    server: Server, corpus, monkeypatch: pytest.MonkeyPatch
):
    port = server.httpd.server_address[1]
    server.route("/s.html", article_page("Mixed", STORY))
    _fake_dns(monkeypatch, {"mixed.test": [["93.184.216.34", "127.0.0.1"]]})
    summary = ingest(
        corpus,
        [f"http://mixed.test:{port}/s.html"],
        policy=FetchPolicy(min_delay=0),
        progress=False,
    )
    assert summary.failed == {"private_address": 1}
    assert server.requests == []


def test_a_name_resolving_to_an_allowed_network_is_fetched(
    server: Server, corpus, monkeypatch: pytest.MonkeyPatch
):
    port = server.httpd.server_address[1]
    server.route("/s.html", article_page("Intranet story", STORY))
    _fake_dns(monkeypatch, {"wiki.intranet.test": [["127.0.0.1"]]})
    url = f"http://wiki.intranet.test:{port}/s.html"
    summary = ingest(corpus, [url], policy=ONLY_TEST_SERVER, progress=False)
    assert summary.new == 1 and server.hits("/s.html") == 1


def test_allow_private_and_allow_network_on_the_command_line(server: Server, tmp_path: Path):
    url = server.route("/s.html", article_page("Own network", STORY))
    runner = CliRunner()
    base = ["ingest", url, "--delay", "0", "--no-progress", "--json"]

    refused = runner.invoke(cli, [*base, "--db", str(tmp_path / "a.db")])
    assert '"private_address": 1' in refused.output and server.requests == []
    narrow = runner.invoke(
        cli, [*base, "--db", str(tmp_path / "b.db"), "--allow-network", "10.0.0.0/8"]
    )
    assert '"private_address": 1' in narrow.output and server.requests == []
    allowed = runner.invoke(
        cli, [*base, "--db", str(tmp_path / "c.db"), "--allow-network", "127.0.0.1/32"]
    )
    assert allowed.exit_code == 0 and '"new": 1' in allowed.output, allowed.output
    everything = runner.invoke(cli, [*base, "--db", str(tmp_path / "d.db"), "--allow-private"])
    assert everything.exit_code == 0 and '"new": 1' in everything.output

    bad = runner.invoke(cli, [*base, "--db", str(tmp_path / "e.db"), "--allow-network", "intranet"])
    assert bad.exit_code == 2 and "is not a network" in bad.output

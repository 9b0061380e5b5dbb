"""Ingesting over HTTP from a local server: feeds, pages, politeness and every failure mode."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from narratives.fetch import Fetcher, FetchPolicy
from narratives.ingest import ingest
from narratives.store import Corpus

from conftest import STORY, RecordingSleep, Server, article_page, rss


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    with Corpus(tmp_path / "t.db") as c:
        yield c


def _story(n: int) -> list[str]:
    """Distinct article bodies: the shared story with a numbered closing paragraph."""
    return [*STORY, f"This is dispatch number {n} in a series on the rotation into small caps."]


def _feed_with_pages(server: Server, n: int = 3, *, feed_path: str = "/feed.xml") -> str:
    items = []
    for i in range(n):
        link = server.route(
            f"/markets/story-{i}.html",
            article_page(f"Small caps rally, part {i}", _story(i), canonical=None),
        )
        items.append(
            {"link": link, "title": f"Small caps rally, part {i}", "description": f"Teaser {i}."}
        )
    return server.route(feed_path, rss(items), content_type="application/rss+xml", etag='"v1"')


def _run(corpus: Corpus, sources: list[str], policy: FetchPolicy, **kwargs: object):
    return ingest(corpus, sources, policy=policy, progress=False, **kwargs)


def test_feed_entries_are_fetched_extracted_and_stored(server, corpus, fast_policy):
    feed = _feed_with_pages(server)
    summary = _run(corpus, [feed], fast_policy)
    assert summary.new == 3 and summary.total_failed == 0
    rows = list(corpus.db.query("SELECT * FROM articles ORDER BY title"))
    assert [r["obtained"] for r in rows] == ["page"] * 3
    assert rows[0]["title"] == "Small caps rally, part 0"
    assert rows[0]["published"] == "2024-07-15T18:30:00Z"  # 14:30 EDT from the page
    assert rows[0]["date_source"] == "article"
    assert rows[0]["author"] == "Dana Whitfield"
    assert rows[0]["feed_url"] == feed
    assert "Calder Point Advisors" in rows[0]["text"]
    assert "Most read" not in rows[0]["text"]  # boilerplate left out
    assert corpus.count("paragraphs") >= 3 * len(STORY)
    feed_row = corpus.db["feeds"].get(feed)
    assert feed_row["etag"] == '"v1"' and feed_row["last_status"] == "200"
    assert feed_row["entries_last_poll"] == 3


def test_rerun_uses_conditional_get_and_adds_nothing(server, corpus, fast_policy):
    feed = _feed_with_pages(server)
    _run(corpus, [feed], fast_policy)
    second = _run(corpus, [feed], fast_policy)
    assert second.new == 0 and second.feeds_not_modified == 1
    feed_requests = [r for r in server.requests if r.path == "/feed.xml"]
    assert feed_requests[-1].headers.get("If-None-Match") == '"v1"'
    assert corpus.db["feeds"].get(feed)["last_status"] == "304"
    assert corpus.count() == 3


def test_rerun_without_304_support_does_not_refetch_stored_pages(server, corpus, fast_policy):
    feed = _feed_with_pages(server)
    server.routes["/feed.xml"].etag = None  # a server that ignores validators
    _run(corpus, [feed], fast_policy)
    second = _run(corpus, [feed], fast_policy)
    assert (second.new, second.unchanged) == (0, 3)
    assert server.hits("/markets/story-0.html") == 1
    assert corpus.count() == 3


def test_changed_page_at_same_url_updates_the_article(server, corpus, fast_policy):
    url = server.route("/story.html", article_page("Rate-cut bets lift small caps", _story(1)))
    _run(corpus, [url], fast_policy)
    server.route("/story.html", article_page("Rate-cut bets lift small caps", _story(2)))
    second = _run(corpus, [url], fast_policy)
    assert second.updated == 1 and corpus.count() == 1
    text = corpus.db.execute("SELECT text FROM articles").fetchone()[0]
    assert "dispatch number 2" in text
    hits = corpus.db.execute(
        "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'dispatch AND number AND 2'"
    ).fetchone()[0]
    assert hits == 1  # the full-text index followed the update


def test_robots_disallow_keeps_summary_and_never_fetches_page(server, corpus, fast_policy):
    server.route("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    page = server.route("/private/story.html", article_page("Hidden", _story(1)))
    feed = server.route(
        "/feed.xml",
        rss([{"link": page, "title": "Hidden story", "description": "Only the teaser."}]),
        content_type="application/rss+xml",
    )
    summary = _run(corpus, [feed], fast_policy)
    assert summary.summaries == {"robots_disallowed": 1}
    assert server.hits("/private/story.html") == 0
    row = corpus.db.execute("SELECT obtained, page_status, text FROM articles").fetchone()
    assert row == ("feed_summary", "robots_disallowed", "Only the teaser.")


def test_robots_for_our_user_agent_is_honoured(server, corpus, fast_policy):
    server.route(
        "/robots.txt",
        "User-agent: narratives\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
        content_type="text/plain",
    )
    url = server.route("/story.html", article_page("Blocked", _story(1)))
    summary = _run(corpus, [url], fast_policy)
    assert summary.failed == {"robots_disallowed": 1}
    assert server.hits("/story.html") == 0


@pytest.mark.parametrize(
    ("status", "reason"), [(404, "http_404"), (410, "http_410"), (500, "http_5xx")]
)
def test_failed_page_keeps_feed_summary_with_reason(server, corpus, fast_policy, status, reason):
    page = server.route("/gone.html", "gone", status=status)
    feed = server.route(
        "/feed.xml",
        rss([{"link": page, "title": "Gone", "description": "A summary that survives."}]),
        content_type="application/rss+xml",
    )
    summary = _run(corpus, [feed], fast_policy)
    assert summary.summaries == {reason: 1} and summary.new == 1
    assert corpus.db.execute("SELECT page_status FROM articles").fetchone()[0] == reason
    errors = list(corpus.db.query("SELECT reason, item FROM ingest_errors"))
    assert errors == [{"reason": reason, "item": page}]


def test_server_errors_are_retried_with_backoff(server, corpus, fast_policy):
    url = server.route("/flaky.html", article_page("Flaky", _story(1)), statuses=[503, 502])
    sleep = RecordingSleep()
    with Fetcher(fast_policy, sleep=sleep) as fetcher:
        summary = ingest(corpus, [url], fetcher=fetcher, progress=False)
    assert summary.new == 1
    assert server.hits("/flaky.html") == 3
    assert len([w for w in sleep.waits if w > 0]) == 2


def test_429_retry_after_is_respected(server, corpus, fast_policy):
    url = server.route(
        "/busy.html",
        article_page("Busy", _story(1)),
        statuses=[429],
        headers={"Retry-After": "7"},
    )
    sleep = RecordingSleep()
    with Fetcher(fast_policy, sleep=sleep) as fetcher:
        summary = ingest(corpus, [url], fetcher=fetcher, progress=False)
    assert summary.new == 1
    assert 7.0 in sleep.waits


def test_retry_after_beyond_cap_gives_up_instead_of_stalling(server, corpus, fast_policy):
    url = server.route("/busy.html", "no", status=429, headers={"Retry-After": "86400"})
    sleep = RecordingSleep()
    with Fetcher(fast_policy, sleep=sleep) as fetcher:
        summary = ingest(corpus, [url], fetcher=fetcher, progress=False)
    assert summary.failed == {"rate_limited": 1}
    assert max(sleep.waits, default=0) < fast_policy.max_retry_after


def test_slow_response_times_out_and_run_continues(server, corpus):
    policy = FetchPolicy(min_delay=0, allow_private=True, read_timeout=0.3, retries=0)
    slow = server.route("/slow.html", article_page("Slow", _story(1)), delay=1.0)
    fine = server.route("/fine.html", article_page("Fine", _story(2)))
    summary = _run(corpus, [slow, fine], policy)
    assert summary.failed == {"timeout": 1} and summary.new == 1


def test_slow_drip_body_hits_total_time_limit(server, corpus):
    def drip(handler):
        # Headers promise a long body that then arrives a few bytes at a time.
        import time as _time

        for _ in range(40):
            handler.wfile.write(b"<p>drip</p>")
            handler.wfile.flush()
            _time.sleep(0.05)
        return b""

    server.route("/drip.html", drip, headers={"Content-Length": "100000"})
    policy = FetchPolicy(
        min_delay=0, allow_private=True, read_timeout=1.0, total_timeout=0.5, retries=0
    )
    summary = _run(corpus, [server.url("/drip.html")], policy)
    assert summary.failed == {"timeout": 1}


def test_redirect_is_followed_and_both_urls_lead_to_one_article(server, corpus, fast_policy):
    final = server.route("/2024/07/15/story.html", article_page("Moved", _story(1)))
    old = server.route("/old-story", "", status=301, headers={"Location": "/2024/07/15/story.html"})
    _run(corpus, [old], fast_policy)
    assert corpus.db.execute("SELECT url FROM articles").fetchone()[0] == final
    again = _run(corpus, [final], fast_policy)
    assert again.unchanged == 1 and corpus.count() == 1


def test_redirect_loop_is_an_error_not_a_hang(server, corpus, fast_policy):
    server.route("/a", "", status=302, headers={"Location": "/b"})
    server.route("/b", "", status=302, headers={"Location": "/a"})
    summary = _run(corpus, [server.url("/a")], fast_policy)
    assert summary.failed == {"redirect_loop": 1}


def test_oversized_page_is_refused(server, corpus):
    policy = FetchPolicy(min_delay=0, allow_private=True, max_bytes=20_000)
    big = article_page("Huge", [*_story(1), "filler " * 5000])
    summary = _run(corpus, [server.route("/big.html", big)], policy)
    assert summary.failed == {"too_large": 1}


def test_oversized_page_without_content_length_is_refused(server, corpus):
    policy = FetchPolicy(min_delay=0, allow_private=True, max_bytes=20_000)

    def chunked(handler):
        for _ in range(100):
            handler.wfile.write(b"<p>" + b"x" * 1000 + b"</p>")
        return b""

    server.route("/big.html", chunked, headers={"Content-Length": "999999999"})
    summary = _run(corpus, [server.url("/big.html")], policy)
    assert summary.failed == {"too_large": 1}


def test_gzip_bomb_is_capped_on_decompressed_size(server, corpus):
    policy = FetchPolicy(min_delay=0, allow_private=True, max_decompressed_bytes=1_000_000)
    bomb = gzip.compress(b"<html><body>" + b"A" * 50_000_000 + b"</body></html>")
    assert len(bomb) < 100_000
    server.route("/bomb.html", bomb, headers={"Content-Encoding": "gzip"})
    summary = _run(corpus, [server.url("/bomb.html")], policy)
    assert summary.failed == {"too_large": 1}


def test_gzip_encoded_page_is_decoded(server, corpus, fast_policy):
    body = gzip.compress(article_page("Zipped", _story(1)).encode())
    server.route("/zipped.html", body, headers={"Content-Encoding": "gzip"})
    summary = _run(corpus, [server.url("/zipped.html")], fast_policy)
    assert summary.new == 1
    assert server.requests[-1].headers.get("Accept-Encoding") == "gzip, deflate"


def test_malformed_feed_with_entries_is_read(server, corpus, fast_policy):
    page = server.route("/s.html", article_page("Ok", _story(1)))
    broken = rss([{"link": page, "title": "Ok", "description": "fine"}]).replace(
        "</channel></rss>", "<item><title>unclosed"
    )
    feed = server.route("/broken.xml", broken, content_type="application/rss+xml")
    summary = _run(corpus, [feed], fast_policy)
    assert summary.new == 1
    assert corpus.db["feeds"].get(feed)["last_error"]  # the parser's complaint is kept


def test_feed_url_that_serves_no_feed_is_an_error(server, corpus, fast_policy, tmp_path):
    feeds_file = tmp_path / "feeds.toml"
    url = server.route("/notafeed", "<html><body>No feed here</body></html>")
    feeds_file.write_text(f'[[feed]]\nname = "Bad"\nurl = "{url}"\n')
    summary = _run(corpus, [], fast_policy, feeds=feeds_file)
    assert summary.failed == {"bad_source": 1}
    assert corpus.db["feeds"].get(url)["last_status"] == "unparseable"


def test_feed_from_feeds_file_records_name_and_tags(server, corpus, fast_policy, tmp_path):
    feed = _feed_with_pages(server, 1)
    feeds_file = tmp_path / "feeds.toml"
    feeds_file.write_text(f'[[feed]]\nname = "Ledger"\nurl = "{feed}"\ntags = ["markets"]\n')
    _run(corpus, [], fast_policy, feeds=feeds_file)
    row = corpus.db["feeds"].get(feed)
    assert row["name"] == "Ledger" and row["tags"] == '["markets"]'
    assert corpus.db.execute("SELECT publisher FROM articles").fetchone()[0] == "Ledger"


def test_windows_1252_page_is_decoded(server, corpus, fast_policy):
    page = article_page(
        "Traders’ bets on cuts lift small caps", _story(1), charset="windows-1252"
    ).encode("cp1252")
    server.route("/cp.html", page, content_type="text/html; charset=windows-1252")
    _run(corpus, [server.url("/cp.html")], fast_policy)
    title, text = corpus.db.execute("SELECT title, text FROM articles").fetchone()
    assert title == "Traders’ bets on cuts lift small caps"
    assert "“Lower borrowing costs" in text


def test_wrongly_declared_latin1_page_that_is_utf8_is_decoded(server, corpus, fast_policy):
    page = article_page("Traders’ bets on cuts", _story(1), charset="iso-8859-1").encode("utf-8")
    server.route("/wrong.html", page, content_type="text/html; charset=iso-8859-1")
    _run(corpus, [server.url("/wrong.html")], fast_policy)
    assert corpus.db.execute("SELECT title FROM articles").fetchone()[0] == "Traders’ bets on cuts"


def test_duplicate_entries_and_tracking_variants_store_one_article(server, corpus, fast_policy):
    link = server.route("/story.html", article_page("One story", _story(1)))
    items = [
        {"link": link, "title": "One story", "description": "x"},
        {"link": link, "title": "One story", "description": "x"},
        {"link": link + "?utm_source=rss&utm_medium=feed", "title": "One", "description": "x"},
        {"link": link + "#comments", "title": "One story", "description": "x"},
    ]
    feed = server.route("/feed.xml", rss(items), content_type="application/rss+xml")
    summary = _run(corpus, [feed], fast_policy)
    assert corpus.count() == 1 and summary.new == 1
    assert server.hits("/story.html") == 1


def test_syndicated_copy_under_another_url_is_a_duplicate(server, corpus, fast_policy):
    original = server.route("/orig.html", article_page("Rate-cut trade", _story(7)))
    copy = server.route(
        "/partner/reprint.html", article_page("Rate-cut trade (reprint)", _story(7))
    )
    summary = _run(corpus, [original, copy], fast_policy)
    assert (summary.new, summary.duplicates) == (1, 1)
    again = _run(corpus, [copy], fast_policy)
    assert again.unchanged == 1 and corpus.count() == 1


def test_paywall_teaser_keeps_summary(server, corpus, fast_policy):
    teaser = article_page(
        "Inside the short squeeze",
        ["Shares of heavily shorted retailers jumped.", "Subscribe to continue reading."],
    )
    page = server.route("/paywalled.html", teaser)
    summary_text = (
        "Heavily shorted retailers jumped as short sellers rushed to cover positions, traders "
        "said, in the sharpest squeeze since the meme-stock frenzy of 2021."
    )
    feed = server.route(
        "/feed.xml",
        rss([{"link": page, "title": "Inside the short squeeze", "description": summary_text}]),
        content_type="application/rss+xml",
    )
    summary = _run(corpus, [feed], fast_policy)
    assert summary.summaries == {"paywall": 1}
    assert corpus.db.execute("SELECT text FROM articles").fetchone()[0] == summary_text


def test_non_html_page_keeps_summary(server, corpus, fast_policy):
    pdf = server.route("/report.pdf", b"%PDF-1.7 binary", content_type="application/pdf")
    feed = server.route(
        "/feed.xml",
        rss([{"link": pdf, "title": "Report", "description": "A PDF report."}]),
        content_type="application/rss+xml",
    )
    summary = _run(corpus, [feed], fast_policy)
    assert summary.summaries == {"no_article_text": 1}


def test_per_host_delay_spaces_requests(server, corpus):
    policy = FetchPolicy(min_delay=0.5, allow_private=True)
    sleep = RecordingSleep()
    urls = [server.route(f"/p{i}.html", article_page(f"P{i}", _story(i))) for i in range(3)]
    with Fetcher(policy, sleep=sleep) as fetcher:
        ingest(corpus, urls, fetcher=fetcher, progress=False)
    # robots.txt, then three pages: each waits for the previous slot on the same host.
    assert len([w for w in sleep.waits if w > 0.3]) >= 3


def test_user_agent_identifies_the_crawler(server, corpus, fast_policy):
    url = server.route("/ua.html", article_page("UA", _story(1)))
    _run(corpus, [url], fast_policy)
    assert server.requests[-1].headers["User-Agent"].startswith("narratives/")


@pytest.mark.parametrize("source", ["ftp://example.com/feed.xml", "file:///etc/passwd"])
def test_only_http_urls_are_fetched(corpus, fast_policy, source):
    summary = _run(corpus, [source], fast_policy)
    assert summary.failed == {"bad_source": 1}


def test_private_addresses_are_refused_by_default(server, corpus):
    url = server.route("/s.html", article_page("Local", _story(1)))
    summary = _run(corpus, [url], FetchPolicy(min_delay=0))
    assert summary.failed == {"private_address": 1}
    assert server.hits("/s.html") == 0


def test_dns_failure_is_recorded(corpus, fast_policy):
    summary = _run(corpus, ["http://no-such-host.invalid/feed.xml"], fast_policy)
    assert summary.failed == {"dns": 1}


def test_local_feed_file_with_fetch_links_fetches_pages(server, corpus, fast_policy, tmp_path):
    page = server.route("/s.html", article_page("From a saved feed", _story(1)))
    path = tmp_path / "saved.xml"
    path.write_text(rss([{"link": page, "title": "From a saved feed", "description": "short"}]))
    without = _run(corpus, [str(path)], fast_policy)
    assert without.summaries == {"not_fetched": 1} and server.hits("/s.html") == 0
    with_links = _run(corpus, [str(path)], fast_policy, fetch_links=True)
    assert with_links.updated == 1
    assert corpus.db.execute("SELECT obtained FROM articles").fetchone()[0] == "page"


def test_since_skips_old_feed_entries_before_fetching_their_pages(server, corpus, fast_policy):
    feed = _feed_with_pages(server, 2)  # entries dated 2024-07-15
    summary = _run(corpus, [feed], fast_policy, since=datetime(2024, 8, 1, tzinfo=UTC))
    assert summary.skipped_before_since == 2 and summary.new == 0
    assert server.hits("/markets/story-0.html") == 0

"""Ingesting local files and directories, and the corpus store's dedup and schema guarantees."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from narratives.dates import utc_now
from narratives.ingest import ingest
from narratives.records import Article, DateSource, Obtained, Outcome
from narratives.store import Corpus, CorpusError

from conftest import STORY, article_page, rss

TEXT = "\n\n".join(STORY)


def _record(i: int, **overrides: object) -> dict[str, object]:
    record = {
        "id": f"ledger:{i}",
        "source": "ledgerline.example",
        "publisher": "The Ledger Line",
        "published": f"2024-07-{10 + i:02d}T15:00:00-04:00",
        "title": f"Story {i}",
        "author": "Dana Whitfield",
        "text": TEXT + f"\n\nClosing note number {i}.",
        "url": f"https://ledgerline.example/2024/07/story-{i}",
    }
    record.update(overrides)
    return record


def _write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "corpus.db"


def _rows(db: Path, sql: str) -> list[tuple]:
    with Corpus(db) as corpus:
        return corpus.db.execute(sql).fetchall()


def test_jsonl_is_ingested_with_all_fields(tmp_path, db):
    path = _write_jsonl(tmp_path / "news.jsonl", [_record(1), _record(2)])
    summary = ingest(db, [str(path)], progress=False)
    assert summary.new == 2
    row = _rows(
        db,
        "SELECT url, title, published, published_raw, publisher, site, author, "
        "obtained, source_id, date_source FROM articles ORDER BY id",
    )[0]
    assert row == (
        "https://ledgerline.example/2024/07/story-1",
        "Story 1",
        "2024-07-11T19:00:00Z",
        "2024-07-11T15:00:00-04:00",
        "The Ledger Line",
        "ledgerline.example",
        "Dana Whitfield",
        "file",
        "ledger:1",
        "article",
    )
    assert _rows(db, "SELECT count(*) FROM paragraphs")[0][0] == 2 * (len(STORY) + 1)


def test_jsonl_rerun_adds_nothing(tmp_path, db):
    path = _write_jsonl(tmp_path / "news.jsonl", [_record(i) for i in range(5)])
    ingest(db, [str(path)], progress=False)
    second = ingest(db, [str(path)], progress=False)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 5)
    assert _rows(db, "SELECT count(*) FROM articles")[0][0] == 5


def test_jsonl_record_without_url_is_keyed_by_its_id(tmp_path, db):
    records = [_record(1, url=None), _record(1, url=None, text=TEXT + "\n\nA correction.")]
    path = _write_jsonl(tmp_path / "news.jsonl", records)
    summary = ingest(db, [str(path)], progress=False)
    assert (summary.new, summary.updated) == (1, 1)
    assert "A correction." in _rows(db, "SELECT text FROM articles")[0][0]


def test_same_text_under_another_id_is_a_duplicate_alias(tmp_path, db):
    records = [_record(1, url=None), _record(1, id="ledger:recrawl", url=None)]
    summary = ingest(db, [str(_write_jsonl(tmp_path / "n.jsonl", records))], progress=False)
    assert (summary.new, summary.duplicates) == (1, 1)
    keys = {k for (k,) in _rows(db, "SELECT key FROM article_keys")}
    assert keys == {"id:ledgerline.example:ledger:1", "id:ledgerline.example:ledger:recrawl"}


def test_bad_jsonl_lines_are_recorded_and_the_rest_ingested(tmp_path, db):
    lines = [
        _record(1),
        "{not json",
        "[1, 2, 3]",
        _record(2, text=""),
        _record(3, title=["a", "list"]),
        _record(4, published=20240101),
        _record(5),
    ]
    summary = ingest(db, [str(_write_jsonl(tmp_path / "n.jsonl", lines))], progress=False)
    assert summary.new == 2
    assert summary.failed == {"bad_record": 5}
    items = [i for (i,) in _rows(db, "SELECT item FROM ingest_errors ORDER BY id")]
    assert items == ["line 2", "line 3", "line 4", "line 5", "line 6"]


def test_big_jsonl_prepared_in_workers_stores_exactly_what_one_process_does(tmp_path, monkeypatch):
    """Worker processes parse and hash; the writer keeps file order, errors and dedup alike."""
    from narratives import ingest as ingest_module

    lines: list[object] = []
    for i in range(60):
        lines.append(_record(i, published="2024-07-10T15:00:00Z"))
        if i % 13 == 0:
            lines += ["{not json", ""]
    lines.append(_record(3, url="https://ledgerline.example/copy", id="copy"))  # same text
    path = _write_jsonl(tmp_path / "n.jsonl", lines)
    monkeypatch.setattr(ingest_module, "BATCH", 7)
    results = {}
    for name, parallel_from in (("one", 10**9), ("workers", 10)):
        monkeypatch.setattr(ingest_module, "PARALLEL_LINES", parallel_from)
        db = tmp_path / f"{name}.db"
        summary = ingest(db, [str(path)], progress=False)
        results[name] = (
            summary.as_dict()["new"],
            summary.failed,
            _rows(db, "SELECT id, url, title, text, content_hash, word_count FROM articles"),
            _rows(db, "SELECT key, article_id FROM article_keys ORDER BY key"),
            _rows(db, "SELECT item, reason FROM ingest_errors ORDER BY id"),
        )
    assert results["workers"] == results["one"]
    assert results["one"][0] == 60 and results["one"][1] == {"bad_record": 5}


def test_implausible_dates_fall_back_and_are_marked(tmp_path, db):
    records = [
        _record(1, published="2099-01-01T00:00:00Z"),
        _record(2, published="1987-10-19T16:00:00Z"),
        _record(3, published=None),
    ]
    summary = ingest(db, [str(_write_jsonl(tmp_path / "n.jsonl", records))], progress=False)
    assert summary.new == 3 and summary.date_fallbacks == {"fetched": 3}
    rows = _rows(db, "SELECT date_source, published_raw FROM articles ORDER BY id")
    assert [r[0] for r in rows] == ["fetched"] * 3
    reasons = [r for (r,) in _rows(db, "SELECT reason FROM ingest_errors")]
    assert reasons == ["date_rejected", "date_rejected"]


def test_since_skips_older_articles(tmp_path, db):
    path = _write_jsonl(tmp_path / "n.jsonl", [_record(1), _record(9)])
    since = datetime(2024, 7, 15, tzinfo=UTC)
    summary = ingest(db, [str(path)], since=since, progress=False)
    assert summary.new == 1 and summary.skipped_before_since == 1


def test_txt_file_uses_first_line_as_title(tmp_path, db):
    path = tmp_path / "note.txt"
    path.write_text("Small caps surge on rate-cut bets\n\n" + TEXT, encoding="utf-8")
    ingest(db, [str(path)], progress=False)
    title, date_source, obtained = _rows(db, "SELECT title, date_source, obtained FROM articles")[0]
    assert (title, date_source, obtained) == (
        "Small caps surge on rate-cut bets",
        "fetched",
        "file",
    )


def test_empty_txt_file_is_an_error(tmp_path, db):
    path = tmp_path / "empty.txt"
    path.write_text("Only a title\n", encoding="utf-8")
    summary = ingest(db, [str(path)], progress=False)
    assert summary.failed == {"bad_source": 1}


def test_html_and_gzipped_html_files_are_extracted(tmp_path, db):
    page = article_page("Saved page", STORY, canonical="https://ledgerline.example/saved")
    (tmp_path / "a.html").write_text(page, encoding="utf-8")
    other = article_page("Zipped page", [*STORY, "A different ending."])
    (tmp_path / "b.html.gz").write_bytes(gzip.compress(other.encode()))
    summary = ingest(db, [str(tmp_path / "a.html"), str(tmp_path / "b.html.gz")], progress=False)
    assert summary.new == 2
    rows = _rows(db, "SELECT title, url, obtained, date_source FROM articles ORDER BY title")
    assert rows[0] == ("Saved page", "https://ledgerline.example/saved", "file", "article")
    assert rows[1][0] == "Zipped page" and rows[1][1] is None


def test_feed_file_stores_summaries_without_fetching(tmp_path, db):
    items = [
        {
            "link": f"https://ledgerline.example/s{i}",
            "title": f"Item {i}",
            "description": f"Sum {i}",
        }
        for i in range(4)
    ]
    path = tmp_path / "feed.rss"
    path.write_text(rss(items), encoding="utf-8")
    summary = ingest(db, [str(path)], progress=False)
    assert summary.new == 4 and summary.summaries == {"not_fetched": 4}
    rows = _rows(db, "SELECT obtained, date_source, published FROM articles")
    assert set(rows) == {("feed_summary", "feed", "2024-07-15T18:30:00Z")}


def test_directory_is_read_recursively_skipping_other_files(tmp_path, db):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    _write_jsonl(tmp_path / "a" / "one.jsonl", [_record(1)])
    _write_jsonl(nested / "two.jsonl", [_record(2)])
    (nested / "notes.md").write_text("ignored")
    summary = ingest(db, [str(tmp_path)], progress=False)
    assert summary.new == 2 and summary.total_failed == 0


def test_missing_path_and_unsupported_file_are_errors_not_crashes(tmp_path, db):
    odd = tmp_path / "data.csv"
    odd.write_text("a,b\n")
    good = _write_jsonl(tmp_path / "ok.jsonl", [_record(1)])
    summary = ingest(db, [str(tmp_path / "missing.jsonl"), str(odd), str(good)], progress=False)
    assert summary.new == 1 and summary.failed == {"bad_source": 2}


def _article(text: str, url: str | None, obtained: Obtained = Obtained.PAGE, **kw) -> Article:
    now = utc_now()
    return Article(
        title=kw.pop("title", "A title"),
        text=text,
        published=now,
        date_source=DateSource.ARTICLE,
        fetched_at=now,
        obtained=obtained,
        source="test",
        url=url,
        **kw,
    )


def test_feed_summary_never_replaces_a_full_article(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus:
        assert corpus.save(_article(TEXT, "https://x.example/a")) == Outcome.NEW
        summary = _article("Short teaser.", "https://x.example/a", Obtained.FEED_SUMMARY)
        assert corpus.save(summary) == Outcome.UNCHANGED
        assert corpus.db.execute("SELECT text FROM articles").fetchone()[0] == TEXT


def test_full_page_replaces_an_earlier_summary(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus:
        corpus.save(_article("Short teaser.", "https://x.example/a", Obtained.FEED_SUMMARY))
        assert corpus.save(_article(TEXT, "https://x.example/a")) == Outcome.UPDATED
        assert corpus.count() == 1


def test_short_texts_need_matching_titles_to_count_as_duplicates(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus:
        corpus.save(_article("Markets closed.", "https://x.example/a", title="Holiday"))
        other = _article("Markets closed.", "https://x.example/b", title="Other news")
        assert corpus.save(other) == Outcome.NEW
        same = _article("Markets closed.", "https://x.example/c", title="Holiday")
        assert corpus.save(same) == Outcome.DUPLICATE


def test_corpus_uses_wal_and_full_text_search(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus:
        corpus.save(_article(TEXT, "https://x.example/a", title="Rate cut bets"))
        assert corpus.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        hits = corpus.db.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'borrowing'"
        ).fetchone()[0]
        assert hits == 1


def test_a_failure_inside_a_batch_rolls_back_only_that_article(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus:
        with corpus.transaction():
            corpus.save(_article(TEXT, "https://x.example/a"))
            with pytest.raises(RuntimeError), corpus.transaction():
                corpus.db.execute(
                    "INSERT INTO ingest_errors (at, source, reason) VALUES ('x', 'y', 'z')"
                )
                raise RuntimeError("boom")
        assert corpus.count() == 1 and corpus.count("ingest_errors") == 0


def test_opening_a_non_database_file_says_so(tmp_path):
    path = tmp_path / "not.db"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(CorpusError, match="not a usable SQLite database"):
        Corpus(path)


def test_schema_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "c.db"
    Corpus(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(CorpusError, match="newer narratives"):
        Corpus(path)


def test_feed_only_articles_take_the_publisher_name_already_used_for_their_site(tmp_path, db):
    ingest(db, [str(_write_jsonl(tmp_path / "n.jsonl", [_record(1)]))], progress=False)
    items = [{"link": "https://ledgerline.example/only-in-feed", "title": "T", "description": "S"}]
    path = tmp_path / "feed.rss"
    path.write_text(rss(items, title="Ledger Line: Markets section"), encoding="utf-8")
    ingest(db, [str(path)], progress=False)
    publishers = {p for (p,) in _rows(db, "SELECT publisher FROM articles")}
    assert publishers == {"The Ledger Line"}


def test_feed_only_articles_of_an_unknown_site_take_the_feed_title(tmp_path, db):
    items = [{"link": "https://elsewhere.example/a", "title": "T", "description": "S"}]
    path = tmp_path / "feed.rss"
    path.write_text(rss(items, title="Elsewhere Markets"), encoding="utf-8")
    ingest(db, [str(path)], progress=False)
    assert _rows(db, "SELECT publisher FROM articles") == [("Elsewhere Markets",)]

"""Real third-party news and feeds from ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import pytest

from narratives.ingest import ingest
from narratives.store import Corpus

from conftest import load_script, shared

pytestmark = pytest.mark.shared_data


def test_every_real_feed_file_ingests_without_a_crash():
    rows = load_script("check_shared_feeds").check(shared("feeds"))
    assert len(rows) >= 30
    for row in rows:
        assert row["crash"] is None, row
        assert row["stored"] + row["duplicates"] >= row["distinct"], row


def test_cnbc_feed_file_stores_all_30_entries_as_summaries(tmp_path):
    path = shared("feeds", "publishers", "cnbc_finance_2019-07", "cnbc_finance_a.xml")
    summary = ingest(tmp_path / "c.db", [str(path)], progress=False)
    assert summary.new == 30 and summary.summaries == {"not_fetched": 30}
    with Corpus(tmp_path / "c.db") as corpus:
        dates = corpus.db.execute("SELECT min(published), max(published) FROM articles").fetchone()
    assert dates[0].startswith("2019-07")


@pytest.mark.slow
def test_cnn_month_is_ingested_once_and_rerun_adds_nothing(tmp_path):
    path = shared("news", "cnn_2024-07.jsonl")
    first = ingest(tmp_path / "c.db", [str(path)], progress=False)
    # 2,949 records; re-crawls of one story under new ids carry the same text and are aliases.
    assert first.new + first.duplicates == 2949 and first.total_failed == 0
    assert first.new > 1400
    second = ingest(tmp_path / "c.db", [str(path)], progress=False)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 2949)
    with Corpus(tmp_path / "c.db") as corpus:
        assert corpus.count("article_keys") == 2949

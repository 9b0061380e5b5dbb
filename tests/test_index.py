"""The narrative index: EPU-style construction, gaps, smoothing, incremental refresh, entities."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from narratives.cli import cli
from narratives.index import (
    NarrativeIndexError,
    build_index,
    entity_series,
    narrative_index,
    new_york_day,
    read_index,
    refresh_counts,
)
from narratives.mentions import MENTIONS_SCHEMA
from narratives.store import Corpus
from narratives.tag import TAG_SCHEMA


def add_article(
    corpus: Corpus,
    article_id: int,
    published: str,
    publisher: str,
    scores: dict[str, float],
    *,
    tagged_at: str = "2025-01-01T00:00:00Z",
) -> None:
    """An article as `ingest` + `tag` would leave it, without running either."""
    corpus.apply_schema(TAG_SCHEMA)
    with corpus.transaction():
        corpus.db.execute(
            "INSERT OR REPLACE INTO articles (id, title, text, published, date_source, "
            "fetched_at, updated_at, content_hash, title_hash, word_count, obtained, source, "
            "publisher) VALUES (?, 't', 'x', ?, 'test', '', '', ?, '', 1, 'file', 'test', ?)",
            [article_id, published, f"h{article_id}", publisher],
        )
        corpus.db.execute(
            "INSERT OR REPLACE INTO tagged (article_id, content_hash, model, tagged_at) "
            "VALUES (?, ?, 'm', ?)",
            [article_id, f"h{article_id}", tagged_at],
        )
        for theme, score in scores.items():
            corpus.db.execute(
                "INSERT OR REPLACE INTO article_themes (article_id, theme, score, carries, "
                "paragraphs_over, paragraphs) VALUES (?, ?, ?, ?, 1, 1)",
                [article_id, theme, score, int(score >= 0.5)],
            )


@pytest.fixture
def corpus(tmp_path):
    with Corpus(tmp_path / "c.db") as c:
        yield c


def test_share_is_per_source_so_a_prolific_source_does_not_dominate():
    counts = pd.DataFrame(
        [
            # Big Wire publishes 10 a day and never moves; Small Daily moves.
            ("t", "Big Wire", "2024-01-01", 10, 5.0, 5),
            ("t", "Big Wire", "2024-01-02", 10, 5.0, 5),
            ("t", "Small Daily", "2024-01-01", 1, 0.0, 0),
            ("t", "Small Daily", "2024-01-02", 1, 1.0, 1),
        ],
        columns=["theme", "source", "day", "articles", "weight", "carrying"],
    )
    frame = narrative_index(counts, "D")
    values = frame.set_index("period")["value"]
    assert values.mean() == pytest.approx(100)
    assert values["2024-01-02"] > values["2024-01-01"]  # the moving source moves the index
    assert list(frame["articles"]) == [11, 11]


def test_days_without_articles_are_gaps_not_zeros(corpus):
    add_article(corpus, 1, "2024-03-04T15:00:00Z", "A", {"t": 0.9})
    add_article(corpus, 2, "2024-03-07T15:00:00Z", "A", {"t": 0.1})
    build_index(corpus, freqs=["D"])
    rows = read_index(corpus, "t", "D").set_index("period")
    assert list(rows.index) == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    assert math.isnan(rows.loc["2024-03-05", "value"]) and rows.loc["2024-03-05", "articles"] == 0
    assert rows["value"].dropna().mean() == pytest.approx(100)


def test_days_are_new_york_days():
    assert new_york_day("2024-07-16T02:30:00Z") == "2024-07-15"  # 10:30 p.m. in New York
    assert new_york_day("2024-07-16T14:30:00Z") == "2024-07-16"


def test_weekly_and_monthly_periods_and_smoothing(corpus):
    for day in range(1, 29):
        add_article(corpus, day, f"2024-02-{day:02d}T15:00:00Z", "A", {"t": day / 40})
        add_article(corpus, 100 + day, f"2024-02-{day:02d}T16:00:00Z", "B", {"t": 0.5})
    summary = build_index(corpus, half_life=3)
    assert summary.periods == {"D": 28, "W": 5, "M": 1}
    weekly = read_index(corpus, "t", "W")
    assert weekly["period"].iloc[0] == "2024-01-29"  # weeks start on Monday
    daily = read_index(corpus, "t", "D")
    assert daily["smoothed"].notna().sum() == 28
    # The smoothed series moves less than the raw one.
    assert daily["smoothed"].std() < daily["value"].std()


def test_refresh_recomputes_only_the_days_new_articles_touch(corpus):
    add_article(corpus, 1, "2024-03-04T15:00:00Z", "A", {"t": 0.9})
    add_article(corpus, 2, "2024-03-05T15:00:00Z", "A", {"t": 0.1})
    assert refresh_counts(corpus) == 2
    assert refresh_counts(corpus) == 0
    add_article(
        corpus, 3, "2024-03-05T18:00:00Z", "A", {"t": 0.5}, tagged_at="2025-02-01T00:00:00Z"
    )
    assert refresh_counts(corpus) == 1
    row = corpus.db.execute(
        "SELECT articles, weight FROM index_counts WHERE day = '2024-03-05'"
    ).fetchone()
    assert row[0] == 2 and row[1] == pytest.approx(0.6)


def test_source_and_date_filters_and_clear_errors(corpus):
    add_article(corpus, 1, "2024-03-04T15:00:00Z", "A", {"t": 0.9})
    add_article(corpus, 2, "2024-03-04T15:00:00Z", "B", {"t": 0.2})
    summary = build_index(corpus, freqs=["D"], sources=["B"])
    assert summary.sources == ["B"]
    with pytest.raises(NarrativeIndexError, match="known: A, B"):
        build_index(corpus, sources=["Nope"])
    with pytest.raises(NarrativeIndexError, match="no tagged articles"):
        build_index(corpus, since=date(2025, 1, 1))
    with pytest.raises(NarrativeIndexError, match="frequency"):
        build_index(corpus, freqs=["Q"])


def test_untagged_corpus_says_to_tag_first(tmp_path):
    with Corpus(tmp_path / "c.db") as corpus, pytest.raises(NarrativeIndexError, match="tag"):
        build_index(corpus)


def test_entity_series_counts_articles_mentioning_it(corpus):
    add_article(corpus, 1, "2024-03-04T15:00:00Z", "A", {"t": 0.9})
    add_article(corpus, 2, "2024-03-12T15:00:00Z", "A", {"t": 0.2})
    corpus.apply_schema(MENTIONS_SCHEMA)
    corpus.db.execute(
        "INSERT INTO entities (id, kind, name, ticker, origin) "
        "VALUES ('stock:DJT', 'company', 'Trump Media', 'DJT', 'core')"
    )
    for article_id in (1, 2):
        corpus.db.execute(
            'INSERT INTO mentions (article_id, paragraph, start, "end", text, entity_id, '
            "confidence) VALUES (?, 0, 0, 3, 'DJT', 'stock:DJT', 0.9)",
            [article_id],
        )
    build_index(corpus, freqs=["D"])
    series = entity_series(corpus, "DJT", theme="t", freq="W")
    assert list(series["period"]) == ["2024-03-04", "2024-03-11"]
    assert list(series["carrying"]) == [1, 0]
    with pytest.raises(NarrativeIndexError, match="no entity"):
        entity_series(corpus, "ZZZZ")


def test_index_command(tmp_path):
    db = tmp_path / "c.db"
    with Corpus(db) as corpus:
        for day in range(1, 15):
            add_article(corpus, day, f"2024-02-{day:02d}T15:00:00Z", "A", {"t": day / 20})
    result = CliRunner().invoke(cli, ["index", "--db", str(db), "--freq", "W", "--half-life", "2"])
    assert result.exit_code == 0, result.output
    assert "t" in result.output and "peak" in result.output

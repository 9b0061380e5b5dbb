"""`narratives serve`: Datasette on a small corpus, in process, through Datasette's test client."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from narratives.cli import cli
from narratives.index import INDEX_SCHEMA
from narratives.mentions import MENTIONS_SCHEMA
from narratives.records import Article, DateSource, Obtained
from narratives.serve import VIEWS, build_metadata, ensure_views, load_metadata, make_datasette
from narratives.serve_plugin import IndexPoint, index_svg, render_cell
from narratives.store import Corpus
from narratives.tag import TAG_SCHEMA

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ARTICLES = [
    # title, published, publisher, url, text
    ("Small caps jump on Trump win", "2024-11-06T15:00:00Z", "Harbor", "https://a.example/1",
     "Small caps jumped as traders bet on Trump.\n\nBitcoin rallied too, Jane Doe said."),
    (f"{SCRIPT} Fed cut hopes lift bonds", "2024-11-05T15:00:00Z", "Ledger", "https://b.example/2",
     "Traders priced in a December cut.\n\nBitcoin rose with bonds."),
    ("Rate cut bets build", "2024-10-29T15:00:00Z", "Harbor", "https://a.example/3",
     "Futures now price two cuts by spring.\n\nGold rose."),
    ("A quiet day for stocks", "2024-09-02T15:00:00Z", "Ledger", "https://b.example/4",
     "Stocks drifted in thin trade."),
]  # fmt: skip
# article index (0-based), theme, score, carries
SCORES = [
    (0, "trump_trade", 0.93, 1), (0, "rate_cut_trade", 0.20, 0),
    (1, "trump_trade", 0.71, 1), (1, "rate_cut_trade", 0.81, 1),
    (2, "trump_trade", 0.05, 0), (2, "rate_cut_trade", 0.90, 1),
    (3, "trump_trade", 0.02, 0), (3, "rate_cut_trade", 0.03, 0),
]  # fmt: skip


def build_corpus(path: Path) -> dict[int, int]:
    """A four-article corpus, tagged, linked and indexed by hand; returns row ids by position."""
    ids = {}
    with Corpus(path) as corpus:
        for corpus_schema in (TAG_SCHEMA, MENTIONS_SCHEMA, INDEX_SCHEMA):
            corpus.apply_schema(corpus_schema)
        for n, (title, published, publisher, url, text) in enumerate(ARTICLES):
            when = datetime.fromisoformat(published.replace("Z", "+00:00")).astimezone(UTC)
            corpus.save(
                Article(title=title, text=text, published=when, date_source=DateSource.ARTICLE,
                        fetched_at=when, obtained=Obtained.FILE, source="test.jsonl", url=url,
                        publisher=publisher, source_id=f"t{n}")
            )  # fmt: skip
            ids[n] = corpus.db.execute("SELECT id FROM articles WHERE url = ?", [url]).fetchone()[0]
        db = corpus.db
        db.execute(
            "INSERT INTO themes VALUES ('rate_cut_trade', 'Rate-cut <i>trade</i>', 'Cuts.', "
            "'trained', 0.5, 'IWM-SPY'), ('trump_trade', 'Trump trade', 'Trump.', 'trained', "
            "0.5, 'DJT')"
        )
        for n, theme, score, carries in SCORES:
            db.execute(
                "INSERT INTO article_themes VALUES (?, ?, ?, ?, ?, 2)",
                [ids[n], theme, score, carries, carries],
            )
            db.execute("INSERT INTO theme_evidence VALUES (?, ?, 1, 0, ?)", [ids[n], theme, score])
        db.execute(
            "INSERT INTO entities VALUES ('crypto:BTC', 'crypto', 'Bitcoin', 'BTC', NULL, NULL, "
            "'core', NULL), ('person:jane-doe', 'person', 'Jane Doe', NULL, 'strategist', "
            "'Acme', 'core', NULL)"
        )
        for n, paragraph, text, entity in [
            (0, 1, "Bitcoin", "crypto:BTC"),
            (0, 1, "Jane Doe", "person:jane-doe"),
            (1, 1, "Bitcoin", "crypto:BTC"),
        ]:
            start = 0 if entity == "crypto:BTC" else 20
            db.execute(
                "INSERT INTO mentions VALUES (?, ?, ?, ?, ?, ?, 0.9, NULL, NULL)",
                [ids[n], paragraph, start, start + len(text), text, entity],
            )
        for theme, period, value in [
            ("trump_trade", "2024-10-21", None),
            ("trump_trade", "2024-10-28", 20.0),
            ("trump_trade", "2024-11-04", 180.0),
            ("rate_cut_trade", "2024-10-28", 90.0),
            ("rate_cut_trade", "2024-11-04", 110.0),
        ]:
            db.execute(
                "INSERT INTO narrative_index VALUES (?, 'W', ?, 2, 1, 0.5, ?, NULL, 2)",
                [theme, period, value],
            )
    return ids


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory) -> tuple[Path, dict[int, int]]:
    path = tmp_path_factory.mktemp("serve") / "news.db"
    return path, build_corpus(path)


@pytest.fixture(scope="module")
def datasette(corpus_db):
    return make_datasette(corpus_db[0])


def get(datasette, path: str):
    return asyncio.run(datasette.client.get(path))


def query(datasette, name: str, **params: str) -> list[dict]:
    from urllib.parse import urlencode

    params["_shape"] = "array"
    response = get(datasette, f"/news/{name}.json?{urlencode(params)}")
    assert response.status_code == 200, response.text
    return response.json()


def test_metadata_describes_every_visible_table_and_column(corpus_db, datasette):
    metadata = build_metadata(corpus_db[0])
    tables = metadata["databases"]["news"]["tables"]
    conn = sqlite3.connect(corpus_db[0])
    names = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        if not row[0].startswith("articles_fts_") and not row[0].startswith("sqlite_")
    ]
    for name in names:
        assert name in tables, f"{name} has no metadata"
        if tables[name].get("hidden"):
            continue
        assert tables[name].get("description"), name
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({name})")]
        missing = set(columns) - set(tables[name].get("columns", {}))
        assert not missing, f"{name}: columns without a description: {missing}"
    assert set(VIEWS) <= set(names)
    # Served: the home page says where to start, and the database lists the canned queries.
    home = get(datasette, "/").text
    assert "Start here" in home and "/news/article_overview" in home
    database = get(datasette, "/news").text
    for name in load_metadata()["databases"]["corpus"]["queries"]:
        assert f"/news/{name}" in database


def test_article_overview_reads_themes_and_names_without_json(corpus_db, datasette):
    ids = corpus_db[1]
    response = get(datasette, f"/news/article_overview.json?_shape=array&id={ids[1]}")
    (row,) = response.json()
    assert row["narratives"] == "rate_cut_trade 0.81, trump_trade 0.71"
    assert row["top_narrative"] == "rate_cut_trade"
    assert (row["rate_cut_trade"], row["trump_trade"]) == (0.81, 0.71)
    assert row["entities"] == "Bitcoin"
    assert row["date"] == "2024-11-05" and row["month"] == "2024-11"
    first = get(datasette, f"/news/article_overview.json?_shape=array&id={ids[0]}").json()[0]
    assert first["entities"] == "Bitcoin, Jane Doe"
    scores = query(datasette, "theme_scores", theme="trump_trade", carries="1")
    assert sorted(r["title"] for r in scores) == sorted([ARTICLES[0][0], ARTICLES[1][0]])
    overview = get(datasette, "/news/entity_overview.json?_shape=array&id=crypto:BTC").json()
    assert (overview[0]["articles"], overview[0]["mentions"]) == (2, 2)
    # Facets by publisher, month and theme are on by default.
    page = get(datasette, "/news/theme_scores").text
    assert 'data-column="theme"' in page and 'data-column="month"' in page


def test_views_are_refreshed_only_when_their_definition_changes(corpus_db):
    path = corpus_db[0]
    before = sqlite3.connect(path).execute("PRAGMA schema_version").fetchone()[0]
    assert set(ensure_views(path)) == set(VIEWS)
    assert sqlite3.connect(path).execute("PRAGMA schema_version").fetchone()[0] == before


def test_search_finds_articles_by_title_and_text(datasette):
    for table in ("articles", "article_overview"):
        found = get(datasette, f"/news/{table}.json?_search=december&_shape=array").json()
        assert [r["title"] for r in found] == [ARTICLES[1][0]]
        page = get(datasette, f"/news/{table}?_search=bitcoin").text
        assert "Small caps jump on Trump win" in page
        assert ESCAPED in page and SCRIPT not in page


def test_canned_query_theme_articles_lists_evidence_in_the_date_range(datasette):
    found = query(
        datasette, "theme_articles", theme="rate_cut_trade", since="2024-11-01", until="2024-12-01"
    )
    assert [(r["title"], r["evidence_rank"]) for r in found] == [(ARTICLES[1][0], 1)]
    assert found[0]["evidence"] == "Traders priced in a December cut."
    everything = query(datasette, "theme_articles", theme="rate_cut_trade", since="", until="")
    assert [r["date"] for r in everything] == ["2024-10-29", "2024-11-05"]


def test_canned_query_theme_index_and_its_chart(datasette):
    found = query(datasette, "theme_index", theme="trump_trade", freq="w")
    assert [(r["period"], r["value"]) for r in found] == [
        ("2024-10-21", None),
        ("2024-10-28", 20.0),
        ("2024-11-04", 180.0),
    ]
    assert query(datasette, "theme_index", theme="trump_trade", freq="M") == []
    page = get(datasette, "/news/theme_index?theme=trump_trade&freq=W").text
    assert "<svg" in page and "Trump trade (weekly)" in page


def test_canned_query_theme_entities_ranks_who_rides_a_narrative(datasette):
    found = query(datasette, "theme_entities", theme="trump_trade", since="", until="", kind="")
    assert [(r["name"], r["articles"]) for r in found] == [("Bitcoin", 2), ("Jane Doe", 1)]
    people = query(datasette, "theme_entities", theme="trump_trade", since="", until="",
                   kind="person")  # fmt: skip
    assert [r["name"] for r in people] == ["Jane Doe"]
    later = query(datasette, "theme_entities", theme="trump_trade", since="2024-11-06",
                  until="", kind="")  # fmt: skip
    assert [(r["name"], r["articles"]) for r in later] == [("Bitcoin", 1), ("Jane Doe", 1)]


@pytest.mark.parametrize("entity", ["crypto:BTC", "btc", "bitcoin"])
def test_canned_query_entity_by_id_ticker_or_name(datasette, entity):
    found = query(datasette, "entity", entity=entity)
    assert [r["date"] for r in found] == ["2024-11-06", "2024-11-05"]
    assert found[1]["narratives"] == "rate_cut_trade 0.81, trump_trade 0.71"
    assert found[0]["paragraph"] == "Bitcoin rallied too, Jane Doe said."
    themes = query(datasette, "entity_themes", entity=entity)
    assert [(r["theme"], r["carrying"]) for r in themes] == [
        ("trump_trade", 2),
        ("rate_cut_trade", 1),
    ]


def test_canned_query_this_week_compares_with_the_week_before(datasette):
    found = {r["theme"]: r for r in query(datasette, "this_week", week="")}
    assert found["trump_trade"]["week"] == "2024-11-04"
    trump, cuts = found["trump_trade"], found["rate_cut_trade"]
    assert (trump["this_week"], trump["previous_week"], trump["direction"]) == (2, 0, "rising")
    assert (cuts["this_week"], cuts["previous_week"], cuts["direction"]) == (1, 1, "steady")
    assert trump["new_articles"] == 2
    assert trump["headlines"].startswith("Small caps jump on Trump win | ")
    earlier = {r["theme"]: r for r in query(datasette, "this_week", week="2024-10-30")}
    assert earlier["rate_cut_trade"]["this_week"] == 1
    new = query(datasette, "this_week_articles", week="")
    assert [r["title"] for r in new] == [ARTICLES[0][0], ARTICLES[1][0]]


def test_chart_route_returns_svg_and_escapes(datasette):
    response = get(datasette, "/-/narratives/chart.svg?theme=trump_trade&freq=W")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg") and "<path" in response.text
    # A gap (NULL) breaks the line: the path starts again with a move.
    page = get(datasette, "/-/narratives/chart?theme=rate_cut_trade&freq=W")
    assert page.status_code == 200 and "<svg" in page.text
    assert "Rate-cut &lt;i&gt;trade&lt;/i&gt;" in page.text and "<i>trade</i>" not in page.text
    assert ESCAPED in page.text and SCRIPT not in page.text  # the peak's strongest article
    assert get(datasette, "/-/narratives/chart?theme=nope").status_code == 404
    assert get(datasette, "/-/narratives/chart.svg?theme=nope").status_code == 404


def test_index_svg_breaks_lines_at_gaps_and_escapes_its_title():
    points = [
        IndexPoint("2024-01-01", 50.0, None),
        IndexPoint("2024-01-08", None, None),
        IndexPoint("2024-01-15", 150.0, None),
    ]
    svg = str(index_svg(points, title="<b>x</b>"))
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg
    assert svg.count(" M") + svg.count('"M') == 2  # two segments
    assert "No index" in str(index_svg([], title="t"))


def test_script_title_is_escaped_everywhere(corpus_db, datasette):
    article_id = corpus_db[1][1]
    for path in [
        f"/news/articles/{article_id}",
        "/news/articles",
        "/news/articles?_search=december",
        "/news/article_overview",
        "/news/theme_scores",
        "/news/mention_overview",
        "/news/theme_articles?theme=rate_cut_trade&since=&until=",
        "/news/entity?entity=BTC",
        "/news/this_week?week=",
        "/news/this_week_articles?week=",
        "/-/narratives/chart?theme=rate_cut_trade",
    ]:
        page = get(datasette, path)
        assert page.status_code == 200, path
        assert SCRIPT not in page.text, path
        assert ESCAPED in page.text, path


def test_titles_link_to_http_urls_only(datasette):
    row = {"title": SCRIPT, "url": "https://b.example/2"}
    linked = str(render_cell(row, SCRIPT, "title", "articles", "news", datasette))
    assert linked == f'<a href="https://b.example/2" rel="nofollow noopener">{ESCAPED}</a>'
    row = {"title": "x", "url": "javascript:alert(1)"}
    assert render_cell(row, "x", "title", "articles", "news", datasette) is None
    page = get(datasette, "/news/article_overview").text
    assert '<a href="https://a.example/1" rel="nofollow noopener">Small caps jump' in page


def test_serve_command_refuses_a_missing_corpus(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0
    assert "no corpus at" in str(result.exception) + result.output


def test_shipped_metadata_is_valid_json_compatible_yaml():
    metadata = load_metadata()
    json.dumps(metadata)
    assert metadata["databases"]["corpus"]["queries"]


def test_an_untagged_corpus_serves_its_article_overview(tmp_path):
    """Before `tag` the overview has no narrative columns: its facets must not name them."""
    path = tmp_path / "fresh.db"
    with Corpus(path) as corpus:
        when = datetime(2024, 7, 15, tzinfo=UTC)
        corpus.save(
            Article(title="Small caps rally", text="Small caps rallied on rate-cut bets.",
                    published=when, date_source=DateSource.ARTICLE, fetched_at=when,
                    obtained=Obtained.FILE, source="t.jsonl", url="https://a.example/x")
        )  # fmt: skip
    response = get(make_datasette(path), "/fresh/article_overview.json?_size=5")
    assert response.status_code == 200, response.text
    assert response.json()["rows"][0][4] == "Small caps rally"

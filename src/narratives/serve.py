"""Serve a corpus in Datasette: readable views, shipped metadata, the narratives plugin."""

from __future__ import annotations

import asyncio
import copy
import logging
import sqlite3
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from datasette.app import Datasette
from datasette.plugins import pm

from narratives import serve_plugin
from narratives.errors import NarrativesError

log = logging.getLogger(__name__)

DATASETTE_DATA = resources.files("narratives") / "data" / "datasette"
# The database's key in metadata.yaml, renamed to the served file's stem.
METADATA_DB_KEY = "corpus"
# Long article texts would fill the screen; the row page shows them whole.
SETTINGS = {"truncate_cells_html": 300, "sql_time_limit_ms": 3000, "facet_time_limit_ms": 500}

# A view is created only when the tables it reads exist (an untagged corpus has no themes).
_THEMES_TEXT = (
    "(SELECT group_concat(theme || ' ' || printf('%.2f', score), ', ') FROM "
    "(SELECT theme, score FROM article_themes WHERE article_id = a.id AND carries = 1 "
    "ORDER BY score DESC))"
)
_STATIC_VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "theme_scores": (
        ("article_themes", "theme_evidence", "paragraphs"),
        """SELECT t.theme, substr(a.published, 1, 10) AS date, substr(a.published, 1, 7) AS month,
    a.publisher, a.title, a.url, round(t.score, 3) AS score, t.carries, t.paragraphs_over,
    (SELECT p.text FROM theme_evidence e
     JOIN paragraphs p ON p.article_id = e.article_id AND p.position = e.position
     WHERE e.article_id = t.article_id AND e.theme = t.theme ORDER BY e.rank LIMIT 1) AS evidence,
    t.article_id
FROM article_themes t JOIN articles a ON a.id = t.article_id""",
    ),
    "entity_overview": (
        ("entities", "mentions"),
        """SELECT e.id, e.kind, e.name, e.ticker, e.role, e.affiliation,
    count(DISTINCT m.article_id) AS articles, count(m.article_id) AS mentions,
    min(substr(a.published, 1, 10)) AS first_seen, max(substr(a.published, 1, 10)) AS last_seen,
    e.origin
FROM entities e
LEFT JOIN mentions m ON m.entity_id = e.id
LEFT JOIN articles a ON a.id = m.article_id
GROUP BY e.id""",
    ),
    "mention_overview": (
        ("entities", "mentions"),
        """SELECT substr(a.published, 1, 10) AS date, substr(a.published, 1, 7) AS month,
    a.publisher, a.title, a.url, e.name, e.kind, e.ticker, m.text AS written,
    round(m.confidence, 2) AS confidence, m.entity_id, m.article_id
FROM mentions m
JOIN entities e ON e.id = m.entity_id
JOIN articles a ON a.id = m.article_id""",
    ),
}
VIEWS = ("article_overview", *_STATIC_VIEWS)


class ServeError(NarrativesError):
    """The corpus cannot be served (missing, not SQLite, or the metadata is broken)."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def article_overview_sql(theme_ids: Sequence[str], *, tagged: bool, linked: bool) -> str:
    """One row per article; a score column per theme, so a narrative sorts like any column."""
    columns = [
        "a.id",
        "substr(a.published, 1, 10) AS date",
        "substr(a.published, 1, 7) AS month",
        "a.publisher",
        "a.title",
        "a.url",
    ]
    if tagged:
        columns.append(f"{_THEMES_TEXT} AS narratives")
        columns.append(
            "(SELECT theme FROM article_themes WHERE article_id = a.id AND carries = 1 "
            "ORDER BY score DESC LIMIT 1) AS top_narrative"
        )
        columns.extend(
            "(SELECT round(score, 2) FROM article_themes WHERE article_id = a.id AND theme = "
            f"{_literal(theme)}) AS {_quote(theme)}"
            for theme in theme_ids
        )
    if linked:
        columns.append(
            "(SELECT group_concat(name, ', ') FROM (SELECT e.name, count(*) AS n FROM mentions m "
            "JOIN entities e ON e.id = m.entity_id WHERE m.article_id = a.id "
            "GROUP BY e.id ORDER BY n DESC, e.name LIMIT 12)) AS entities"
        )
    columns.extend(["a.word_count", "a.obtained"])
    return "SELECT " + ",\n    ".join(columns) + "\nFROM articles a"


def ensure_views(db: Path) -> list[str]:
    """Create or refresh the readable views in `db`; returns the views it holds afterwards.

    Runs only when a definition changed (a theme added, a new release), so serving a corpus
    that an ingest is writing costs one read of sqlite_master.
    """
    conn = sqlite3.connect(str(db), timeout=30, isolation_level=None)
    try:
        tables = _tables(conn)
        tagged = {"article_themes", "themes"} <= tables
        linked = {"entities", "mentions"} <= tables
        theme_ids = (
            [row[0] for row in conn.execute("SELECT id FROM themes ORDER BY rowid")]
            if tagged
            else []
        )
        wanted = {"article_overview": article_overview_sql(theme_ids, tagged=tagged, linked=linked)}
        for name, (needs, sql) in _STATIC_VIEWS.items():
            if set(needs) <= tables and "articles" in tables:
                wanted[name] = sql
        current = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
        stale = {
            name: sql
            for name, sql in wanted.items()
            if current.get(name) != f"CREATE VIEW {name} AS {sql}"
        }
        if stale:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for name, sql in stale.items():
                    conn.execute(f"DROP VIEW IF EXISTS {name}")
                    conn.execute(f"CREATE VIEW {name} AS {sql}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return sorted(wanted)
    except sqlite3.OperationalError as exc:
        # A read-only file or a long write lock: serve the tables without the views.
        log.warning("could not create the readable views in %s: %s", db, exc)
        views = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")
        return sorted(set(VIEWS) & {row[0] for row in views})
    except sqlite3.DatabaseError as exc:
        raise ServeError(f"{db} is not a usable SQLite database: {exc}") from exc
    finally:
        conn.close()


def load_metadata() -> dict[str, Any]:
    """The shipped metadata.yaml, with the database still under the `corpus` key."""
    text = (DATASETTE_DATA / "metadata.yaml").read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ServeError(f"the shipped Datasette metadata is not valid YAML: {exc}") from exc


def build_metadata(db: Path) -> dict[str, Any]:
    """Metadata for serving `db`: the shipped file under its database name, themes described."""
    metadata = copy.deepcopy(load_metadata())
    name = db.stem
    databases = metadata["databases"]
    databases[name] = databases.pop(METADATA_DB_KEY)
    overview = databases[name]["tables"]["article_overview"]["columns"]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if "themes" in _tables(conn):
            # The name only: the themes table has the long descriptions.
            for theme, title in conn.execute("SELECT id, name FROM themes"):
                overview.setdefault(theme, f"{title}: the article's score (0-1)")
        # A facet on a column this corpus's view lacks (top_narrative before `tag`) would
        # fail the whole page.
        for table, meta in databases[name]["tables"].items():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")}
            if columns and "facets" in meta:
                # A facet is a column name, or {type: column} ({date: published}).
                meta["facets"] = [
                    f
                    for f in meta["facets"]
                    if (next(iter(f.values())) if isinstance(f, dict) else f) in columns
                ]
    finally:
        conn.close()
    metadata["description_html"] = home_html(name)
    return metadata


def home_html(database: str) -> str:
    """The home page's introduction: where to start, as links (the database name is a file stem)."""
    from markupsafe import Markup, escape

    db = escape(database)
    links = [
        (f"/{db}/article_overview", "Articles", "with their narratives, scores and names; search"),
        (f"/{db}/theme_scores", "Narrative scores", "one row per article and theme"),
        ("/-/narratives/chart", "Narrative index chart", "each theme over time"),
        (f"/{db}/theme_index?theme=&freq=W", "Narrative index numbers", "per theme and week"),
        (f"/{db}/entity_overview", "Entities", "who and what the articles name"),
        (f"/{db}/this_week", "What changed this week", "narratives rising and falling"),
        (f"/{db}/entity?entity=BTC", "Everything about one entity", "e.g. BTC"),
        (f"/{db}#queries", "All canned queries", "articles by theme and date, who rides a theme"),
    ]
    items = Markup("").join(
        Markup('<li><a href="{}">{}</a>: {}</li>').format(Markup(href), text, why)
        for href, text, why in links
    )
    return str(
        Markup(
            "<p>Financial news, the market narratives each article carries and who it names."
            "</p><p><strong>Start here:</strong></p><ul>{}</ul>"
            '<form action="/{}/article_overview" method="get"><p>'
            '<input type="search" name="_search" placeholder="Search articles, e.g. dash for trash"'
            ' size="40"> <input type="submit" value="Search"></p></form>'
        ).format(items, db)
    )


def register_plugin() -> None:
    """Register the narratives Datasette plugin once per process."""
    if not pm.is_registered(serve_plugin):
        pm.register(serve_plugin, name="narratives")


def make_datasette(db: Path) -> Datasette:
    """A Datasette on `db` with the readable views, the metadata and the narratives plugin."""
    db = Path(db)
    if not db.is_file():
        raise ServeError(f"no corpus at {db}: run `narratives ingest` (or `narratives demo`) first")
    ensure_views(db)
    register_plugin()
    return Datasette(
        [str(db)],
        metadata=build_metadata(db),
        template_dir=str(DATASETTE_DATA / "templates"),
        settings=SETTINGS,
    )


def serve(db: Path, *, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve `db` with Datasette until interrupted (read-only: no write plugins)."""
    import uvicorn

    datasette = make_datasette(db)
    asyncio.run(datasette.invoke_startup())
    url = f"http://{host}:{port}/"
    log.info("serving %s at %s", db, url)
    uvicorn.run(datasette.app(), host=host, port=port, log_level="warning", lifespan="on")

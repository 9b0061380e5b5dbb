"""Entity mentions in the corpus: linking articles incrementally, and co-mention queries."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from narratives.dates import iso, utc_now
from narratives.entities import EntityLinker, Mention, load_spacy
from narratives.kb import DEFAULT_BUILT_KB, Entity, load_kb
from narratives.store import ArticleText, Corpus, chunked

CHUNK = 64  # articles linked and written per transaction

MENTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    ticker TEXT,
    role TEXT,
    affiliation TEXT,
    origin TEXT NOT NULL,
    article_id INTEGER REFERENCES articles(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS entities_ticker ON entities(ticker);
CREATE TABLE IF NOT EXISTS mentions (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    confidence REAL NOT NULL,
    role TEXT,
    affiliation TEXT,
    PRIMARY KEY (article_id, paragraph, start)
);
CREATE INDEX IF NOT EXISTS mentions_entity ON mentions(entity_id, article_id);
CREATE TABLE IF NOT EXISTS linked (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    linker TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
"""


@dataclass
class LinkSummary:
    articles: int = 0
    mentions: int = 0
    skipped: int = 0  # already linked by this linker and KB, text unchanged
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    linker: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "articles": self.articles,
            "mentions": self.mentions,
            "already_linked": self.skipped,
            "mentions_by_kind": self.by_kind,
            "seconds": round(self.seconds, 2),
            "linker": self.linker,
        }


@dataclass(frozen=True)
class LinkerSpec:
    """What builds an `EntityLinker`, small enough to hand to another process."""

    kb_files: tuple[Path, ...] = ()
    built_kb: Path | None = DEFAULT_BUILT_KB
    spacy_model: str | None = None

    def build(self, processes: int = 1) -> EntityLinker:
        kb = load_kb(self.kb_files, built=self.built_kb)
        return EntityLinker(kb, nlp=load_spacy(self.spacy_model), processes=processes)


def link_corpus(
    corpus: Corpus, linker: EntityLinker, *, progress: bool = True, bar_position: int = 0
) -> LinkSummary:
    """Link every article not yet linked (or changed, or linked with another KB or pipeline).

    Each chunk of articles is written in one transaction, so an interrupted run loses nothing
    and leaves no article half-linked; a re-run does only what is left.
    """
    with corpus.exclusive("entities"):
        started = time.monotonic()
        corpus.apply_schema(MENTIONS_SCHEMA)
        fingerprint = linker.fingerprint()
        pending = corpus.stale_articles("linked", "linker", fingerprint)
        summary = LinkSummary(linker=fingerprint, skipped=corpus.count("articles") - len(pending))
        by_kind: dict[str, int] = {}
        loaded: deque[ArticleText] = deque()

        def articles() -> Iterator[tuple[str, list[str]]]:
            # Read a chunk at a time, so memory stays flat however many articles are pending.
            for chunk in chunked(pending, CHUNK):
                for article in corpus.article_texts(chunk):
                    loaded.append(article)
                    yield str(article.id), [text for _, text in article.paragraphs]

        def write(batch: list[tuple[int, str, list[Mention]]]) -> None:
            with corpus.transaction():
                for article_id, content_hash, mentions in batch:
                    _write(corpus, article_id, content_hash, mentions, linker, fingerprint)
                    for m in mentions:
                        by_kind[m.kind] = by_kind.get(m.kind, 0) + 1
                    summary.mentions += len(mentions)
            summary.articles += len(batch)

        with tqdm(
            total=len(pending),
            unit="article",
            desc="linking entities",
            disable=not progress or None,
            position=bar_position,
        ) as bar:
            batch: list[tuple[int, str, list[Mention]]] = []
            for mentions in linker.link_articles(articles()):
                article = loaded.popleft()
                batch.append((article.id, article.content_hash, mentions))
                if len(batch) >= CHUNK:
                    write(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                write(batch)
                bar.update(len(batch))
        summary.by_kind = by_kind
        summary.seconds = time.monotonic() - started
        return summary


def _write(
    corpus: Corpus,
    article_id: int,
    content_hash: str,
    mentions: list[Mention],
    linker: EntityLinker,
    fingerprint: str,
) -> None:
    execute, many = corpus.db.execute, corpus.db.conn.executemany
    execute("DELETE FROM mentions WHERE article_id = ?", [article_id])
    execute("DELETE FROM entities WHERE article_id = ?", [article_id])
    entities: dict[str, tuple[object, ...]] = {}
    for m in mentions:
        if m.entity_id in entities:
            continue
        kb_entity = linker.kb.get(m.entity_id)
        local = kb_entity is None
        entity = kb_entity or Entity(id=m.entity_id, kind=m.kind, name=m.name, ticker=m.ticker)
        entities[m.entity_id] = (
            entity.id,
            entity.kind,
            entity.name,
            entity.ticker,
            entity.role or (m.role if local else None),
            entity.affiliation or (m.affiliation if local else None),
            "local" if local else entity.origin,
            # People the KB does not know, and tickers it does not list, belong to the article
            # that named them; KB entities are shared by all articles.
            article_id if local and m.entity_id.startswith("local:") else None,
        )
    for row in entities.values():
        if row[7] is None:
            execute(
                "INSERT INTO entities (id, kind, name, ticker, role, affiliation, origin, "
                "article_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "kind = excluded.kind, name = excluded.name, ticker = excluded.ticker, "
                "role = excluded.role, affiliation = excluded.affiliation, "
                "origin = excluded.origin",
                list(row),
            )
        else:
            execute(
                "INSERT OR REPLACE INTO entities (id, kind, name, ticker, role, affiliation, "
                "origin, article_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                list(row),
            )
    many(
        'INSERT OR REPLACE INTO mentions (article_id, paragraph, start, "end", text, entity_id, '
        "confidence, role, affiliation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                article_id,
                m.paragraph,
                m.start,
                m.end,
                m.text,
                m.entity_id,
                m.confidence,
                m.role,
                m.affiliation,
            )
            for m in mentions
        ],
    )
    execute(
        "INSERT OR REPLACE INTO linked (article_id, content_hash, linker, linked_at) "
        "VALUES (?, ?, ?, ?)",
        [article_id, content_hash, fingerprint, iso(utc_now())],
    )


@dataclass(frozen=True)
class EntityCount:
    entity_id: str
    kind: str
    name: str
    ticker: str | None
    articles: int
    mentions: int


def top_entities(
    corpus: Corpus,
    theme: str,
    *,
    since: str | None = None,
    until: str | None = None,
    kinds: tuple[str, ...] = (),
    limit: int = 20,
) -> list[EntityCount]:
    """The entities most often named in articles carrying `theme` in [since, until)."""
    where = ["t.theme = ?", "t.carries = 1"]
    params: list[object] = [theme]
    if since:
        where.append("a.published >= ?")
        params.append(since)
    if until:
        where.append("a.published < ?")
        params.append(until)
    if kinds:
        where.append(f"e.kind IN ({','.join('?' for _ in kinds)})")
        params.extend(kinds)
    params.append(limit)
    rows = corpus.db.execute(
        "SELECT e.id, e.kind, e.name, e.ticker, COUNT(DISTINCT m.article_id) AS articles, "
        "COUNT(*) AS mentions FROM mentions m "
        "JOIN article_themes t ON t.article_id = m.article_id "
        "JOIN articles a ON a.id = m.article_id "
        "JOIN entities e ON e.id = m.entity_id "
        f"WHERE {' AND '.join(where)} "
        "GROUP BY e.id ORDER BY articles DESC, mentions DESC, e.name LIMIT ?",
        params,
    ).fetchall()
    return [EntityCount(*row) for row in rows]

"""Tagging the corpus: theme scores for every paragraph and article not yet scored by this model."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np
from tqdm import tqdm

from narratives.classifier import ThemeModel
from narratives.dates import iso, utc_now
from narratives.encoder import Passage, set_threads
from narratives.errors import NarrativesError
from narratives.mentions import LinkerSpec, LinkSummary, link_corpus
from narratives.store import Corpus, chunked
from narratives.workers import die_with

# Paragraph probabilities below this are not stored: they are noise and would dominate the table.
STORE_FLOOR = 0.01
EVIDENCE = 3  # paragraphs kept as evidence per article and theme
CHUNK = 128  # articles scored and written per transaction

TAG_SCHEMA = """
CREATE TABLE IF NOT EXISTS themes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    method TEXT NOT NULL,
    threshold REAL NOT NULL,
    proxies TEXT
);
CREATE TABLE IF NOT EXISTS tagged (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    tagged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS paragraph_themes (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    theme TEXT NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (article_id, position, theme)
);
CREATE TABLE IF NOT EXISTS article_themes (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    theme TEXT NOT NULL,
    score REAL NOT NULL,
    carries INTEGER NOT NULL,
    paragraphs_over INTEGER NOT NULL,
    paragraphs INTEGER NOT NULL,
    PRIMARY KEY (article_id, theme)
);
CREATE INDEX IF NOT EXISTS article_themes_theme ON article_themes(theme, carries);
CREATE TABLE IF NOT EXISTS theme_evidence (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    theme TEXT NOT NULL,
    rank INTEGER NOT NULL,
    position INTEGER NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (article_id, theme, rank)
);
"""


@dataclass(frozen=True)
class ArticleThemeScore:
    """How strongly one article carries one theme, and the paragraphs that say so."""

    theme: str
    score: float  # the highest paragraph probability: a theme is in an article if in a paragraph
    carries: bool
    paragraphs_over: int
    paragraphs: int
    evidence: list[tuple[int, float]]  # (paragraph position, probability), strongest first


@dataclass
class TagSummary:
    articles: int = 0
    paragraphs: int = 0
    skipped: int = 0  # already tagged with this model and unchanged since
    carrying: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    model: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "articles": self.articles,
            "paragraphs": self.paragraphs,
            "already_tagged": self.skipped,
            "articles_carrying": self.carrying,
            "seconds": round(self.seconds, 2),
            "model": self.model,
        }


def aggregate(
    probabilities: np.ndarray, positions: Sequence[int], model: ThemeModel
) -> list[ArticleThemeScore]:
    """Article scores from paragraph probabilities (rows: paragraphs, columns: themes).

    The score is the maximum paragraph probability: per the theme contract a narrative is
    carried by paragraphs, so one paragraph that clearly carries it is enough, and an article
    is not diluted by its unrelated paragraphs. Evidence is the strongest paragraphs over the
    threshold (or the single strongest when none is).
    """
    scores = []
    for column, theme_id in enumerate(model.theme_ids):
        column_p = probabilities[:, column]
        threshold = model.threshold(theme_id)
        order = np.argsort(-column_p, kind="stable")
        over = int((column_p >= threshold).sum())
        keep = order[: max(1, min(over, EVIDENCE))]
        scores.append(
            ArticleThemeScore(
                theme=theme_id,
                score=float(column_p.max()) if len(column_p) else 0.0,
                carries=over > 0,
                paragraphs_over=over,
                paragraphs=len(column_p),
                evidence=[(int(positions[i]), float(column_p[i])) for i in keep],
            )
        )
    return scores


def record_themes(corpus: Corpus, model: ThemeModel) -> None:
    """The themes table describes what the scores mean (method, threshold) for browsing."""
    with corpus.transaction():
        corpus.db.execute("DELETE FROM themes")
        for theme in model.themes:
            corpus.db.execute(
                "INSERT INTO themes (id, name, description, method, threshold, proxies) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    theme.id,
                    theme.name,
                    theme.description,
                    model.method(theme.id),
                    model.threshold(theme.id),
                    json.dumps([p.label for p in theme.proxies]),
                ],
            )


def pending_articles(corpus: Corpus, fingerprint: str) -> list[int]:
    """Articles never tagged, changed since, or tagged by another model or themes file."""
    return corpus.stale_articles("tagged", "model", fingerprint)


def tag(
    corpus: Corpus,
    model: ThemeModel,
    *,
    progress: bool = True,
    before_chunk: Callable[[], object] | None = None,
) -> TagSummary:
    """Score every pending article; each chunk is written atomically, so a crash loses no tag.

    `before_chunk` runs before each chunk is scored (`tag_and_link` uses it to give the encoder
    every core once entity linking is done).
    """
    with corpus.exclusive("themes"):
        started = time.monotonic()
        corpus.apply_schema(TAG_SCHEMA)
        record_themes(corpus, model)
        fingerprint = model.fingerprint()
        pending = pending_articles(corpus, fingerprint)
        summary = TagSummary(model=fingerprint)
        summary.skipped = corpus.count("articles") - len(pending)
        carrying = dict.fromkeys(model.theme_ids, 0)
        with tqdm(
            total=len(pending), unit="article", desc="tagging", disable=not progress or None
        ) as bar:
            for chunk in chunked(pending, CHUNK):
                if before_chunk is not None:
                    before_chunk()
                articles = _load(corpus, chunk)
                passages = [p for a in articles for p in a.passages]
                probabilities = model.predict(passages)
                with corpus.transaction():
                    offset = 0
                    for article in articles:
                        rows = probabilities[offset : offset + len(article.passages)]
                        offset += len(article.passages)
                        scores = aggregate(rows, article.positions, model)
                        _write(corpus, article, rows, scores, model, fingerprint)
                        for s in scores:
                            carrying[s.theme] += s.carries
                summary.articles += len(articles)
                summary.paragraphs += len(passages)
                bar.update(len(chunk))
        summary.carrying = carrying
        summary.seconds = time.monotonic() - started
        return summary


@dataclass
class _Article:
    id: int
    content_hash: str
    positions: list[int]
    passages: list[Passage]


def _load(corpus: Corpus, ids: list[int]) -> list[_Article]:
    articles = []
    for stored in corpus.article_texts(ids):
        items = stored.paragraphs or [(0, stored.title)]
        articles.append(
            _Article(
                id=stored.id,
                content_hash=stored.content_hash,
                positions=[p for p, _ in items],
                passages=[
                    Passage(text=text, title=stored.title, published=stored.published)
                    for _, text in items
                ],
            )
        )
    return articles


def _write(
    corpus: Corpus,
    article: _Article,
    probabilities: np.ndarray,
    scores: list[ArticleThemeScore],
    model: ThemeModel,
    fingerprint: str,
) -> None:
    execute, many = corpus.db.execute, corpus.db.conn.executemany
    for table in ("paragraph_themes", "article_themes", "theme_evidence"):
        execute(f"DELETE FROM {table} WHERE article_id = ?", [article.id])
    many(
        "INSERT INTO paragraph_themes (article_id, position, theme, probability) "
        "VALUES (?, ?, ?, ?)",
        [
            (article.id, position, theme_id, round(float(p), 4))
            for position, row in zip(article.positions, probabilities, strict=True)
            for theme_id, p in zip(model.theme_ids, row, strict=True)
            if p >= STORE_FLOOR
        ],
    )
    many(
        "INSERT INTO article_themes (article_id, theme, score, carries, paragraphs_over, "
        "paragraphs) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                article.id,
                s.theme,
                round(s.score, 4),
                int(s.carries),
                s.paragraphs_over,
                s.paragraphs,
            )
            for s in scores
        ],
    )
    many(
        "INSERT INTO theme_evidence (article_id, theme, rank, position, probability) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (article.id, s.theme, rank, position, round(p, 4))
            for s in scores
            for rank, (position, p) in enumerate(s.evidence, start=1)
        ],
    )
    execute(
        "INSERT OR REPLACE INTO tagged (article_id, content_hash, model, tagged_at) "
        "VALUES (?, ?, ?, ?)",
        [article.id, article.content_hash, fingerprint, iso(utc_now())],
    )


# Every table `tag` writes, in a fixed order; the ledgers without their timestamps.
RESULT_QUERIES = {
    "themes": "SELECT * FROM themes ORDER BY id",
    "paragraph_themes": "SELECT * FROM paragraph_themes ORDER BY article_id, position, theme",
    "article_themes": "SELECT * FROM article_themes ORDER BY article_id, theme",
    "theme_evidence": "SELECT * FROM theme_evidence ORDER BY article_id, theme, rank",
    "mentions": "SELECT * FROM mentions ORDER BY article_id, paragraph, start",
    "entities": "SELECT * FROM entities ORDER BY id",
    "tagged": "SELECT article_id, content_hash, model FROM tagged ORDER BY article_id",
    "linked": "SELECT article_id, content_hash, linker FROM linked ORDER BY article_id",
}


def result_rows(db: str | Path) -> dict[str, list[tuple[object, ...]]]:
    """What `tag` wrote, table by table, timestamps aside: two runs (engines, core counts)
    that did the same work compare equal."""
    with Corpus(db) as corpus:
        return {t: corpus.db.execute(sql).fetchall() for t, sql in RESULT_QUERIES.items()}


@dataclass
class LocalRun:
    """What `tag_and_link` did: the model it loaded and each part's summary (None if skipped)."""

    model: ThemeModel | None = None
    themes: TagSummary | None = None
    entities: LinkSummary | None = None


def tag_and_link(
    db: str | Path,
    *,
    load_model: Callable[[], ThemeModel] | None,
    linker: LinkerSpec | None,
    workers: int = 1,
    progress: bool = True,
) -> LocalRun:
    """Score themes (if `load_model`) and link entities (if `linker`) on this machine.

    With both parts and two or more cores, linking runs in its own process at the same time as
    scoring: spaCy on one core, the encoder on the others, then on all of them once linking is
    done. Each part commits per chunk, so the two writers interleave safely under WAL and an
    interrupted run resumes where each left off. With one core, the parts run one after the
    other, linking with `workers` spaCy processes.
    """
    run = LocalRun()
    concurrent = load_model is not None and linker is not None and workers >= 2
    child = receive = None
    if concurrent:
        assert linker is not None
        # Forked before the encoder loads or runs: its thread pool would not survive a fork.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_link_in_process,
            args=(str(db), linker, progress, send, os.getpid()),
            daemon=True,
        )
        child.start()
        send.close()
        set_threads(workers - 1)
    try:
        if load_model is not None:
            run.model = load_model()

            def all_cores_when_linked() -> None:
                if child is not None and not child.is_alive():
                    set_threads(workers)

            with Corpus(db) as corpus:
                run.themes = tag(
                    corpus, run.model, progress=progress, before_chunk=all_cores_when_linked
                )
        if child is not None and receive is not None:
            run.entities = _linked_result(child, receive)
            child = None
        elif linker is not None:
            with Corpus(db) as corpus:
                run.entities = link_corpus(corpus, linker.build(workers), progress=progress)
    finally:
        if child is not None and child.is_alive():
            child.terminate()
            child.join()
    return run


def _link_in_process(
    db: str, linker: LinkerSpec, progress: bool, send: Connection, parent: int
) -> None:
    die_with(parent)
    try:
        with Corpus(db) as corpus:
            summary = link_corpus(corpus, linker.build(1), progress=progress, bar_position=1)
        send.send(("ok", summary))
    except BaseException as exc:  # reported to the parent, which raises it
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


def _linked_result(child: BaseProcess, receive: Connection) -> LinkSummary:
    try:
        status, payload = receive.recv()
    except EOFError:
        child.join()
        raise NarrativesError(
            f"the entity-linking process died (exit code {child.exitcode}); re-run `narratives "
            "tag`: what was linked before is kept"
        ) from None
    child.join()
    if status != "ok":
        raise NarrativesError(f"entity linking failed: {payload}")
    return payload

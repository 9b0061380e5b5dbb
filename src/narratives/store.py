"""The SQLite corpus: schema, idempotent article upserts, feed state, errors and status."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import sqlite_utils

try:
    import fcntl
except ImportError:  # Windows: one job at a time is then the user's to keep
    fcntl = None  # type: ignore[assignment]

from narratives.dates import iso, utc_now
from narratives.errors import NarrativesError
from narratives.records import Article, Obtained, Outcome
from narratives.text import content_hash, split_paragraphs, word_count
from narratives.urls import url_key

log = logging.getLogger(__name__)

DEFAULT_DB = Path("corpus/narratives.db")
SCHEMA_VERSION = 1
# Shorter texts can coincide by chance ("Markets closed.") so they need a matching title too.
MIN_WORDS_FOR_CONTENT_DEDUP = 25
_RANK = {Obtained.PAGE: 2, Obtained.FILE: 2, Obtained.FEED_SUMMARY: 1}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    name TEXT,
    title TEXT,
    tags TEXT,
    etag TEXT,
    last_modified TEXT,
    last_polled TEXT,
    last_status TEXT,
    last_error TEXT,
    entries_last_poll INTEGER
);
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    url TEXT,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    published TEXT NOT NULL,
    published_raw TEXT,
    date_source TEXT NOT NULL,
    author TEXT,
    publisher TEXT,
    site TEXT,
    language TEXT,
    fetched_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    title_hash TEXT NOT NULL,
    word_count INTEGER NOT NULL,
    obtained TEXT NOT NULL,
    page_status TEXT NOT NULL DEFAULT 'ok',
    source TEXT NOT NULL,
    source_id TEXT,
    feed_url TEXT REFERENCES feeds(url)
);
CREATE INDEX IF NOT EXISTS articles_published ON articles(published);
CREATE INDEX IF NOT EXISTS articles_content_hash ON articles(content_hash);
CREATE INDEX IF NOT EXISTS articles_publisher ON articles(publisher);
CREATE TABLE IF NOT EXISTS article_keys (
    key TEXT PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS article_keys_article ON article_keys(article_id);
CREATE TABLE IF NOT EXISTS paragraphs (
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (article_id, position)
);
CREATE TABLE IF NOT EXISTS ingest_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    sources TEXT NOT NULL,
    new INTEGER DEFAULT 0,
    updated INTEGER DEFAULT 0,
    duplicate INTEGER DEFAULT 0,
    unchanged INTEGER DEFAULT 0,
    failed INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ingest_errors (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES ingest_runs(id),
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    item TEXT,
    reason TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS ingest_errors_at ON ingest_errors(at);
"""


@dataclass(frozen=True)
class ArticleText:
    """What the NLP stages read of a stored article."""

    id: int
    title: str
    content_hash: str
    paragraphs: list[tuple[int, str]]  # (position, text), in order
    published: str | None = None  # ISO 8601: the theme model may read its month as context


def chunked(items: list[int], size: int) -> Iterator[list[int]]:
    """`items` in consecutive runs of `size`: the unit a stage reads and commits."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CorpusError(NarrativesError):
    """The corpus database cannot be opened or is not a narratives corpus."""


@dataclass(frozen=True)
class StoredArticle:
    id: int
    content_hash: str
    obtained: str
    page_status: str


@dataclass(frozen=True)
class FeedState:
    url: str
    etag: str | None
    last_modified: str | None
    last_polled: str | None
    last_status: str | None


class CorpusBusy(CorpusError):
    """Another process is already running the same job on this corpus."""


_held: set[Path] = set()  # lock files this process holds (POSIX locks do not see our threads)
_held_guard = threading.Lock()


@contextmanager
def hold_lock(lock_path: Path, job: str, db: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on `lock_path`, released on exit or when we die.

    POSIX record locks (`lockf`) belong to the process: children we fork do not inherit them,
    so a killed run's leftover workers cannot keep the corpus locked.
    """
    lock_path = lock_path.resolve()
    with _held_guard:
        if lock_path in _held:
            raise CorpusBusy(f"this process is already running `{job}` on {db}")
        _held.add(lock_path)
    try:
        with open(lock_path, "a+", encoding="ascii") as handle:
            if fcntl is not None:
                try:
                    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise CorpusBusy(
                        f"another `narratives` process (pid {holder}) is running `{job}` on "
                        f"{db}; wait for it to finish, or stop it, then run again"
                    ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
    finally:
        with _held_guard:
            _held.discard(lock_path)


class Corpus:
    """A narratives corpus in one SQLite file (WAL mode), opened for reading and writing.

    All writes of one batch go through `transaction()`, so a crash never leaves an article
    without its paragraphs or keys.
    """

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self._savepoints = 0
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                self.db.enable_wal()
            # WAL + NORMAL survives a process crash intact; only an OS crash may drop the tail.
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise CorpusError(f"{path} is not a usable SQLite database: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def exclusive(self, job: str) -> Iterator[None]:
        """Run `job` (ingest, tag themes, link entities) on this corpus only once at a time.

        A second run of the same job raises `CorpusBusy` at once instead of doing the same
        work twice; different jobs and readers go on side by side (WAL). The lock is the
        operating system's, so a run that is killed releases it.
        """
        if str(self.path) == ":memory:":
            yield
            return
        with hold_lock(self.path.with_name(f"{self.path.name}.{job}.lock"), job, self.path):
            yield

    def __enter__(self) -> Corpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        version = None
        if self.db["meta"].exists():
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise CorpusError(
                f"{self.path} was written by a newer narratives (schema {version}); upgrade "
                "narratives to read it"
            )
        with self.transaction():
            self.apply_schema(SCHEMA)
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                [str(SCHEMA_VERSION)],
            )
        if not self.db["articles_fts"].exists():
            self.db["articles"].enable_fts(
                ["title", "text"], create_triggers=True, tokenize="porter unicode61"
            )

    def apply_schema(self, script: str) -> None:
        """Run `;`-separated CREATE … IF NOT EXISTS statements as one transaction."""
        with self.transaction():
            for statement in _statements(script):
                self.db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: BEGIN IMMEDIATE … COMMIT, rolled back on any exception.

        Nested inside another transaction it becomes a savepoint, so one bad article in a
        batch rolls back alone.
        """
        conn = self.db.conn
        if conn.in_transaction:
            self._savepoints += 1
            name = f"sp{self._savepoints}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # -- articles ----------------------------------------------------------------------------

    def find(self, keys: list[str]) -> StoredArticle | None:
        """The stored article any of `keys` leads to, if one does."""
        for key in keys:
            row = self.db.execute(
                "SELECT a.id, a.content_hash, a.obtained, a.page_status FROM article_keys k "
                "JOIN articles a ON a.id = k.article_id WHERE k.key = ?",
                [key],
            ).fetchone()
            if row:
                return StoredArticle(*row)
        return None

    def find_by_url(self, url: str) -> StoredArticle | None:
        return self.find([_url_key(url)])

    def save(self, article: Article, digest: TextDigest | None = None) -> Outcome:
        """Insert, update or recognise `article`; never store one story twice.

        Keys are the canonical URL (and aliases) and the source's own id. A known key with the
        same text is unchanged; with changed text it is an update, unless the newcomer is only a
        feed summary of a full article already stored. An unknown key whose text is already
        stored under another URL is a duplicate: the key is remembered as an alias.
        """
        keys = article_keys(article)
        digest, title_digest, words = digest or TextDigest.of(article)
        with self.transaction():
            existing = self.find(keys)
            if existing is None:
                existing = self._find_same_content(digest, title_digest, words)
                if existing is not None:
                    self._add_keys(existing.id, keys)
                    return Outcome.DUPLICATE
                article_id = self._insert(article, digest, title_digest, words)
                self._add_keys(article_id, keys)
                return Outcome.NEW
            self._add_keys(existing.id, keys)
            if existing.content_hash == digest:
                return Outcome.UNCHANGED
            if _RANK[Obtained(existing.obtained)] > _RANK[article.obtained]:
                return Outcome.UNCHANGED
            self._update(existing.id, article, digest, title_digest, words)
            return Outcome.UPDATED

    def _find_same_content(
        self, digest: str, title_digest: str, words: int
    ) -> StoredArticle | None:
        if words >= MIN_WORDS_FOR_CONTENT_DEDUP:
            sql, params = "content_hash = ?", [digest]
        else:
            sql, params = "content_hash = ? AND title_hash = ?", [digest, title_digest]
        row = self.db.execute(
            f"SELECT id, content_hash, obtained, page_status FROM articles WHERE {sql} "
            "ORDER BY id LIMIT 1",
            params,
        ).fetchone()
        return StoredArticle(*row) if row else None

    def _row(
        self, article: Article, digest: str, title_digest: str, words: int
    ) -> dict[str, object]:
        return {
            "url": article.url,
            "title": article.title,
            "text": article.text,
            "published": iso(article.published),
            "published_raw": article.published_raw,
            "date_source": str(article.date_source),
            "author": article.author,
            "publisher": article.publisher,
            "site": article.site,
            "language": article.language,
            "fetched_at": iso(article.fetched_at),
            "updated_at": iso(utc_now()),
            "content_hash": digest,
            "title_hash": title_digest,
            "word_count": words,
            "obtained": str(article.obtained),
            "page_status": article.page_status,
            "source": article.source,
            "source_id": article.source_id,
            "feed_url": article.feed_url,
        }

    def _insert(self, article: Article, digest: str, title_digest: str, words: int) -> int:
        row = self._row(article, digest, title_digest, words)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.db.execute(
            f"INSERT INTO articles ({columns}) VALUES ({marks})", list(row.values())
        )
        article_id = int(cursor.lastrowid)
        self._write_paragraphs(article_id, article.text)
        return article_id

    def _update(
        self, article_id: int, article: Article, digest: str, title_digest: str, words: int
    ) -> None:
        row = self._row(article, digest, title_digest, words)
        assignments = ", ".join(f"{column} = ?" for column in row)
        self.db.execute(
            f"UPDATE articles SET {assignments} WHERE id = ?", [*row.values(), article_id]
        )
        self.db.execute("DELETE FROM paragraphs WHERE article_id = ?", [article_id])
        self._write_paragraphs(article_id, article.text)

    def _write_paragraphs(self, article_id: int, text: str) -> None:
        self.db.conn.executemany(
            "INSERT INTO paragraphs (article_id, position, text) VALUES (?, ?, ?)",
            [(article_id, position, para) for position, para in split_paragraphs(text)],
        )

    def _add_keys(self, article_id: int, keys: list[str]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO article_keys (key, article_id) VALUES (?, ?)",
            [(key, article_id) for key in keys],
        )

    # -- feeds -------------------------------------------------------------------------------

    def feed_state(self, url: str) -> FeedState | None:
        row = self.db.execute(
            "SELECT url, etag, last_modified, last_polled, last_status FROM feeds WHERE url = ?",
            [url],
        ).fetchone()
        return FeedState(*row) if row else None

    def record_poll(
        self,
        url: str,
        *,
        status: str,
        name: str | None = None,
        title: str | None = None,
        tags: tuple[str, ...] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        error: str | None = None,
        entries: int | None = None,
    ) -> None:
        """Upsert a feed's row after polling it; conditional-GET validators only on success."""
        row: dict[str, object] = {
            "url": url,
            "last_polled": iso(utc_now()),
            "last_status": status,
            "last_error": error,
        }
        if name is not None:
            row["name"] = name
        if title is not None:
            row["title"] = title
        if tags is not None:
            row["tags"] = json.dumps(list(tags))
        if etag is not None or last_modified is not None:
            row["etag"] = etag
            row["last_modified"] = last_modified
        if entries is not None:
            row["entries_last_poll"] = entries
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "url")
        with self.transaction():
            self.db.execute(
                f"INSERT INTO feeds ({columns}) VALUES ({marks}) "
                f"ON CONFLICT(url) DO UPDATE SET {updates}",
                list(row.values()),
            )

    # -- runs and errors ---------------------------------------------------------------------

    def start_run(self, sources: list[str]) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO ingest_runs (started_at, sources) VALUES (?, ?)",
                [iso(utc_now()), json.dumps(sources)],
            )
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, counts: dict[str, int]) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE ingest_runs SET finished_at = ?, new = ?, updated = ?, duplicate = ?, "
                "unchanged = ?, failed = ? WHERE id = ?",
                [
                    iso(utc_now()),
                    counts.get("new", 0),
                    counts.get("updated", 0),
                    counts.get("duplicate", 0),
                    counts.get("unchanged", 0),
                    counts.get("failed", 0),
                    run_id,
                ],
            )

    def record_error(
        self,
        source: str,
        reason: str,
        detail: str = "",
        *,
        item: str | None = None,
        run_id: int | None = None,
    ) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO ingest_errors (run_id, at, source, item, reason, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, iso(utc_now()), source, item, reason, detail[:2000]],
            )

    # -- reading -----------------------------------------------------------------------------

    def count(self, table: str = "articles") -> int:
        return self.db[table].count

    def stale_articles(self, ledger: str, by: str, fingerprint: str) -> list[int]:
        """Articles a derived stage still owes work: never done, changed since, or done by another
        version of the stage. `ledger` is the stage's table of (article_id, content_hash, `by`)
        rows — `tagged` by model, `linked` by linker."""
        rows = self.db.execute(
            f"SELECT a.id FROM articles a LEFT JOIN {ledger} l ON l.article_id = a.id "
            f"WHERE l.article_id IS NULL OR l.content_hash != a.content_hash OR l.{by} != ? "
            "ORDER BY a.id",
            [fingerprint],
        ).fetchall()
        return [r[0] for r in rows]

    def article_texts(self, ids: list[int]) -> list[ArticleText]:
        """Title, content hash and paragraphs (in order) of each article in `ids`, in that order."""
        marks = ",".join("?" for _ in ids)
        heads = {
            row[0]: row
            for row in self.db.execute(
                f"SELECT id, title, content_hash, published FROM articles WHERE id IN ({marks})",
                ids,
            ).fetchall()
        }
        paragraphs: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
        for article_id, position, text in self.db.execute(
            f"SELECT article_id, position, text FROM paragraphs WHERE article_id IN ({marks}) "
            "ORDER BY article_id, position",
            ids,
        ).fetchall():
            paragraphs[article_id].append((position, text))
        return [ArticleText(i, heads[i][1], heads[i][2], paragraphs[i], heads[i][3]) for i in ids]

    def status(self, *, errors: int = 10) -> CorpusStatus:
        """Counts by publisher and month, feed polls and recent errors, for `narratives status`."""
        q = self.db.execute
        by_source = q(
            "SELECT coalesce(publisher, site, '(unknown)') AS source, count(*), "
            "min(substr(published, 1, 10)), max(substr(published, 1, 10)) "
            "FROM articles GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        by_month = q(
            "SELECT substr(published, 1, 7) AS month, count(*) FROM articles GROUP BY 1 ORDER BY 1"
        ).fetchall()
        by_obtained = q(
            "SELECT obtained, count(*) FROM articles GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        feeds = q(
            "SELECT coalesce(name, title, url), url, last_polled, last_status, entries_last_poll, "
            "last_error FROM feeds ORDER BY last_polled DESC"
        ).fetchall()
        recent = q(
            "SELECT at, reason, source, coalesce(item, ''), coalesce(detail, '') "
            "FROM ingest_errors ORDER BY id DESC LIMIT ?",
            [errors],
        ).fetchall()
        error_reasons = q(
            "SELECT reason, count(*) FROM ingest_errors GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        return CorpusStatus(
            path=str(self.path),
            articles=self.count("articles"),
            paragraphs=self.count("paragraphs"),
            by_source=[tuple(r) for r in by_source],
            by_month=[tuple(r) for r in by_month],
            by_obtained=[tuple(r) for r in by_obtained],
            feeds=[tuple(r) for r in feeds],
            recent_errors=[tuple(r) for r in recent],
            error_reasons=[tuple(r) for r in error_reasons],
        )


@dataclass(frozen=True)
class CorpusStatus:
    path: str
    articles: int
    paragraphs: int
    by_source: list[tuple]
    by_month: list[tuple]
    by_obtained: list[tuple]
    feeds: list[tuple]
    recent_errors: list[tuple]
    error_reasons: list[tuple]


def _url_key(url: str) -> str:
    return "url:" + url_key(url)


class TextDigest(NamedTuple):
    """What `save` compares and stores about an article's text, computable anywhere.

    Bulk loaders compute it in worker processes, so the writer only writes.
    """

    content_hash: str
    title_hash: str
    words: int

    @classmethod
    def of(cls, article: Article) -> TextDigest:
        return cls(
            content_hash(article.text), content_hash(article.title), word_count(article.text)
        )


def article_keys(article: Article) -> list[str]:
    """Every key under which `article` may be met again: its URLs and its source's own id."""
    keys: list[str] = []
    for url in [article.url, *article.aliases]:
        if url:
            key = _url_key(url)
            if key not in keys:
                keys.append(key)
    if article.source_id:
        keys.append(f"id:{article.site or article.publisher or ''}:{article.source_id}")
    if not keys:
        # A local item with neither URL nor id is known by where it was read.
        keys.append(f"file:{article.source}")
    return keys


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

"""The demo: the whole pipeline on the bundled sample corpus, into a fresh `corpus/demo.db`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from narratives.errors import SourceError
from narratives.ingest import IngestSummary, ingest
from narratives.store import Corpus, CorpusStatus

DEMO_DB = Path("corpus/demo.db")
SAMPLE_DIR = Path("corpus/sample")
# The parts of the sample that are news; its labels and expectations are for evaluation.
SAMPLE_SOURCES = ("articles.jsonl", "pages", "feeds")
DEMO_QUERY = '"dash for trash"'


@dataclass(frozen=True)
class SearchHit:
    published: str
    publisher: str
    title: str


@dataclass(frozen=True)
class DemoReport:
    db: Path
    first_run: IngestSummary
    second_run: IngestSummary
    status: CorpusStatus
    query: str
    hits: list[SearchHit]
    hit_count: int


def find_sample_dir(explicit: str | Path | None = None) -> Path:
    """The sample corpus: `explicit`, else ./corpus/sample, else the one beside the sources."""
    candidates = [Path(explicit)] if explicit else []
    candidates += [SAMPLE_DIR, Path(__file__).resolve().parents[2] / SAMPLE_DIR]
    for candidate in candidates:
        if (candidate / "articles.jsonl").is_file():
            return candidate
    raise SourceError(
        "no sample corpus found (looked for corpus/sample/articles.jsonl here and beside the "
        "sources): run from a clone of narratives, or pass --sample DIR"
    )


def run_demo(
    db: str | Path = DEMO_DB, *, sample: str | Path | None = None, progress: bool = True
) -> DemoReport:
    """Rebuild `db` from the sample corpus, ingest it twice (the second run must add nothing)."""
    sample_dir = find_sample_dir(sample)
    db = Path(db)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Corpus(db) as corpus:
        sources = [str(sample_dir / name) for name in SAMPLE_SOURCES]
        first = ingest(corpus, sources, progress=progress)
        second = ingest(corpus, sources, progress=progress)
        hits = corpus.db.execute(
            "SELECT substr(a.published, 1, 10), coalesce(a.publisher, ''), a.title "
            "FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid "
            "WHERE articles_fts MATCH ? ORDER BY a.published LIMIT 5",
            [DEMO_QUERY],
        ).fetchall()
        hit_count = corpus.db.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", [DEMO_QUERY]
        ).fetchone()[0]
        return DemoReport(
            db=db,
            first_run=first,
            second_run=second,
            status=corpus.status(errors=5),
            query=DEMO_QUERY,
            hits=[SearchHit(*row) for row in hits],
            hit_count=hit_count,
        )

"""The demo: the whole pipeline on the bundled sample corpus, into a fresh `corpus/demo.db`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from narratives.align import AlignSummary, align
from narratives.classifier import MODEL_DIR, ThemeModel
from narratives.entities import EntityLinker
from narratives.errors import SourceError
from narratives.export import ExportSummary, export_xlsx
from narratives.index import IndexSummary, build_index
from narratives.ingest import IngestSummary, ingest
from narratives.kb import load_kb
from narratives.market import PriceLoadSummary, load_prices
from narratives.mentions import EntityCount, LinkSummary, link_corpus, top_entities
from narratives.store import Corpus, CorpusStatus
from narratives.tag import TagSummary, tag

DEMO_DB = Path("corpus/demo.db")
SAMPLE_DIR = Path("corpus/sample")
# The parts of the sample that are news; its labels and expectations are for evaluation.
SAMPLE_SOURCES = ("articles.jsonl", "pages", "feeds")
DEMO_QUERY = '"dash for trash"'
HALF_LIFE = 4  # weeks, for the smoothed weekly index


@dataclass(frozen=True)
class SearchHit:
    published: str
    publisher: str
    title: str


@dataclass(frozen=True)
class Evidence:
    theme: str
    score: float
    published: str
    title: str
    paragraph: str


@dataclass(frozen=True)
class DemoReport:
    db: Path
    first_run: IngestSummary
    second_run: IngestSummary
    status: CorpusStatus
    query: str
    hits: list[SearchHit]
    hit_count: int
    tagging: TagSummary
    retag: TagSummary
    methods: dict[str, str]
    by_month: dict[str, dict[str, int]]  # theme -> month -> articles carrying it
    evidence: list[Evidence]
    linking: LinkSummary
    relink: LinkSummary
    top_entities: dict[str, list[EntityCount]]  # theme -> entities most named beside it
    prices: PriceLoadSummary
    index: IndexSummary
    alignment: AlignSummary
    workbook: ExportSummary


def _find(relative: Path, marker: str, explicit: str | Path | None) -> Path | None:
    """`explicit`, else `relative` here, else `relative` beside the sources: the first holding
    `marker`."""
    candidates = [Path(explicit)] if explicit else []
    candidates += [relative, Path(__file__).resolve().parents[2] / relative]
    return next((c for c in candidates if (c / marker).is_file()), None)


def find_sample_dir(explicit: str | Path | None = None) -> Path:
    """The sample corpus: `explicit`, else ./corpus/sample, else the one beside the sources."""
    found = _find(SAMPLE_DIR, "articles.jsonl", explicit)
    if found:
        return found
    raise SourceError(
        "no sample corpus found (looked for corpus/sample/articles.jsonl here and beside the "
        "sources): run from a clone of narratives, or pass --sample DIR"
    )


def find_model_dir(explicit: str | Path | None = None) -> Path:
    """The theme model: `explicit`, else ./models/themes, else the one beside the sources."""
    # When none is found, ThemeModel.load on the first candidate explains what is missing.
    return _find(MODEL_DIR, "config.json", explicit) or Path(explicit or MODEL_DIR)


def run_demo(
    db: str | Path = DEMO_DB,
    *,
    sample: str | Path | None = None,
    model: str | Path | None = None,
    progress: bool = True,
) -> DemoReport:
    """Rebuild `db` from the sample corpus: ingest twice (the second adds nothing), then tag."""
    sample_dir = find_sample_dir(sample)
    theme_model = ThemeModel.load(find_model_dir(model))
    sample_kb = sample_dir / "kb.toml"
    # The demo links against the shipped KB (plus the sample's fictional companies) only, so
    # its output does not depend on what `kb build` left in this folder.
    linker = EntityLinker(load_kb([sample_kb] if sample_kb.exists() else [], built=None))
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
        tagging = tag(corpus, theme_model, progress=progress)
        retag = tag(corpus, theme_model, progress=progress)
        linking = link_corpus(corpus, linker, progress=progress)
        relink = link_corpus(corpus, linker, progress=progress)
        prices = load_prices(corpus, [sample_dir / "prices.csv"])
        index = build_index(corpus, half_life=HALF_LIFE)
        alignment = align(corpus, theme_model.themes, charts=db.parent / "charts")
        workbook = export_xlsx(corpus, db.with_suffix(".xlsx"))
        return DemoReport(
            db=db,
            first_run=first,
            second_run=second,
            status=corpus.status(errors=5),
            query=DEMO_QUERY,
            hits=[SearchHit(*row) for row in hits],
            hit_count=hit_count,
            tagging=tagging,
            retag=retag,
            methods={t: theme_model.method(t) for t in theme_model.theme_ids},
            by_month=_carrying_by_month(corpus),
            evidence=_strongest_evidence(corpus),
            linking=linking,
            relink=relink,
            top_entities={
                t: top_entities(corpus, t, limit=5, kinds=("company", "fund", "person", "crypto"))
                for t in theme_model.theme_ids
            },
            prices=prices,
            index=index,
            alignment=alignment,
            workbook=workbook,
        )


def _carrying_by_month(corpus: Corpus) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for theme, month, n in corpus.db.execute(
        "SELECT t.theme, substr(a.published, 1, 7), sum(t.carries) FROM article_themes t "
        "JOIN articles a ON a.id = t.article_id GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall():
        table.setdefault(theme, {})[month] = int(n)
    return table


def _strongest_evidence(corpus: Corpus) -> list[Evidence]:
    """For each theme, the article it is strongest in and the paragraph that says so."""
    rows = corpus.db.execute(
        "SELECT e.theme, e.probability, substr(a.published, 1, 10), a.title, p.text "
        "FROM theme_evidence e JOIN articles a ON a.id = e.article_id "
        "JOIN paragraphs p ON p.article_id = e.article_id AND p.position = e.position "
        "WHERE e.rank = 1 AND e.probability = (SELECT max(probability) FROM theme_evidence "
        "WHERE theme = e.theme AND rank = 1) GROUP BY e.theme ORDER BY e.theme"
    ).fetchall()
    return [Evidence(*row) for row in rows]

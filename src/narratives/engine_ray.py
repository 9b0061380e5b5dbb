"""The Ray engine: `narratives tag --engine ray` scores themes and links entities on a Ray cluster.

The work is the local engine's (`tag.tag_and_link`: `tag.tag` and `mentions.link_corpus`), split
differently:

* The driver (this process) is the only one that touches SQLite. It finds the pending articles,
  reads their texts a chunk at a time (`tag.CHUNK` articles, in the local engine's order), puts
  each chunk in Ray's object store, and writes the results back as one writer, chunk by chunk,
  each chunk in one transaction, with the local engines' own `_write` functions.
* Ray Data runs a class-based UDF in an actor pool over those chunks, one chunk per batch. Each
  actor loads the theme model and the entity linker once, in `__init__`, and sends back plain
  data: article ids, probability arrays, theme scores and mentions.
* The theme encoder batches passages by length within what it is given, so its floats depend on
  which passages share a call. A Ray batch is exactly one local chunk, so every chunk goes through
  `ThemeModel.predict` as it does locally, and local and Ray rows are identical. So are the
  fingerprints, and with them the `tagged` and `linked` ledgers: what one engine did is done for
  the other.

Workers need narratives and its model packages installed (MiniLM, spaCy's English pipeline) and
the theme model directory at the path the driver names; the themes and the knowledge base are
read by the driver and shipped to them. See docs/scaling.md.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from narratives import mentions as mentions_stage
from narratives import tag as tag_stage
from narratives.encoder import ENCODER_ENV, PRECISION_ENV
from narratives.entities import SPACY_ENV, EntityLinker, Mention, load_spacy
from narratives.errors import NarrativesError
from narratives.kb import DEFAULT_BUILT_KB, KnowledgeBase, load_kb
from narratives.mentions import MENTIONS_SCHEMA, LinkSummary
from narratives.store import ArticleText, Corpus, chunked
from narratives.tag import TAG_SCHEMA, ArticleThemeScore, TagSummary
from narratives.themes import DEFAULT_THEMES, Theme, load_themes

log = logging.getLogger(__name__)

INSTALL_HINT = "the Ray engine needs `pip install narratives[ray]`"
# Environment the workers must share with the driver for the same scores and fingerprints.
FORWARDED_ENV = (ENCODER_ENV, PRECISION_ENV, SPACY_ENV)
TASKS_PER_ACTOR = 2  # chunks queued on an actor: one running, one ready, so it never idles


class RayEngineError(NarrativesError):
    """Ray is not installed, or the workers cannot do the work as the driver would."""


# -- what travels between the driver and the workers ------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """Everything an actor needs to load the same models as every other actor."""

    model_dir: str | None  # absolute path on the workers; None: no themes
    themes: list[Theme] | None
    precision: str | None  # the encoder's arithmetic; resolved before the actors start
    kb: KnowledgeBase | None  # None: no entities
    spacy_model: str | None
    threads: int = 1


@dataclass
class ModelView:
    """What the driver needs of the theme model to write its rows: no tensors.

    Stands in for `ThemeModel` in `tag.record_themes` and `tag._write`, which read only
    `themes`, `theme_ids`, `method()` and `threshold()`.
    """

    themes: list[Theme]
    theme_ids: list[str]
    methods: dict[str, str]
    thresholds: dict[str, float]
    fingerprint: str
    precision: str

    def method(self, theme_id: str) -> str:
        return self.methods[theme_id]

    def threshold(self, theme_id: str) -> float:
        return self.thresholds[theme_id]


@dataclass
class _LinkerView:
    """Stands in for `EntityLinker` in `mentions._write`, which reads only its `kb`."""

    kb: KnowledgeBase


@dataclass(frozen=True)
class Work:
    """One Ray batch: articles in the order and grouping the local engine would use."""

    ids: list[int]
    themes: bool
    entities: bool


@dataclass
class _TaggedArticle:
    id: int
    content_hash: str
    positions: list[int]
    probabilities: np.ndarray
    scores: list[ArticleThemeScore]


@dataclass
class _Result:
    """What an actor sends back for one chunk: plain data, pickled."""

    index: int
    model: str | None  # fingerprints the actor worked with, checked by the driver
    linker: str | None
    paragraphs: int = 0
    cpu_seconds: float = 0.0  # the actor's CPU time on this chunk
    tagged: list[_TaggedArticle] = field(default_factory=list)
    linked: list[tuple[int, str, list[Mention]]] = field(default_factory=list)


@dataclass
class RaySummary:
    """Both stages' summaries, and how the run was spread."""

    themes: TagSummary | None
    entities: LinkSummary | None
    actors: int = 0
    threads: int = 1
    chunks: int = 0
    precision: str | None = None
    address: str | None = None  # None: a Ray instance started on this machine for this run
    seconds: float = 0.0
    # CPU time the actors spent on chunks (model loading and Ray's own work aside): what a
    # backfill costs per article, whatever else the machines were doing.
    worker_cpu_seconds: float = 0.0
    model: ModelView | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.themes is not None:
            out["themes"] = self.themes.as_dict()
        if self.entities is not None:
            out["entities"] = self.entities.as_dict()
        out["engine"] = {
            "name": "ray",
            "address": self.address or "local",
            "actors": self.actors,
            "threads_per_actor": self.threads,
            "chunks": self.chunks,
            "precision": self.precision,
            "seconds": round(self.seconds, 2),
            "worker_cpu_seconds": round(self.worker_cpu_seconds, 2),
        }
        return out


# -- the workers ------------------------------------------------------------------------------


def _load_theme_model(config: WorkerConfig) -> Any:
    """The one place the theme model is loaded on a worker (and its precision passed on)."""
    from narratives.classifier import ThemeModel

    assert config.model_dir is not None and config.themes is not None
    return ThemeModel.load(config.model_dir, config.themes, precision=config.precision)


def _load_linker(config: WorkerConfig) -> EntityLinker:
    assert config.kb is not None
    # One process: Ray's actors are the parallelism, spaCy's own worker pool would fight them.
    return EntityLinker(config.kb, nlp=load_spacy(config.spacy_model), processes=1)


def describe(config: WorkerConfig) -> tuple[ModelView | None, str | None]:
    """Load the models as an actor would and say what the driver needs to know of them.

    Runs as a one-off Ray task, so `auto` precision is resolved on a worker's CPU (the one that
    will run the encoder) and the fingerprints come from the workers' packages.
    """
    view = None
    if config.model_dir is not None:
        model = _load_theme_model(config)
        view = ModelView(
            themes=model.themes,
            theme_ids=list(model.theme_ids),
            methods={t: model.method(t) for t in model.theme_ids},
            thresholds={t: model.threshold(t) for t in model.theme_ids},
            fingerprint=model.fingerprint(),
            precision=model.precision,
        )
    linker = _load_linker(config).fingerprint() if config.kb is not None else None
    return view, linker


class _Preloaded:
    """Stands in for `Corpus` in `tag._load`: serves article texts the driver already read."""

    def __init__(self, articles: Sequence[ArticleText]) -> None:
        self._articles = {a.id: a for a in articles}

    def article_texts(self, ids: list[int]) -> list[ArticleText]:
        return [self._articles[i] for i in ids]


class ChunkTagger:
    """The Ray Data UDF: one chunk of articles in, its theme scores and mentions out."""

    def __init__(self, config: WorkerConfig) -> None:
        import torch

        torch.set_num_threads(config.threads)
        self.model = _load_theme_model(config) if config.model_dir is not None else None
        self.linker = _load_linker(config) if config.kb is not None else None
        self.model_fingerprint = self.model.fingerprint() if self.model is not None else None
        self.linker_fingerprint = self.linker.fingerprint() if self.linker is not None else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [
            pickle.dumps(self.run(int(index), pickle.loads(payload)), protocol=5)
            for index, payload in zip(batch["index"], batch["payload"], strict=True)
        ]
        return {"index": np.asarray(batch["index"]), "result": np.array(results, dtype=object)}

    def run(self, index: int, item: tuple[Work, list[ArticleText]]) -> _Result:
        started = time.process_time()
        work, articles = item
        result = _Result(index, self.model_fingerprint, self.linker_fingerprint)
        if work.themes:
            self._themes(articles, result)
        if work.entities:
            self._entities(articles, result)
        result.cpu_seconds = time.process_time() - started
        return result

    def _themes(self, texts: list[ArticleText], result: _Result) -> None:
        # Exactly tag.tag's steps for one chunk: the same passages, one predict call.
        model = self.model
        if model is None:
            raise RayEngineError("this actor was started without the theme model")
        articles = tag_stage._load(_Preloaded(texts), [a.id for a in texts])
        passages = [p for a in articles for p in a.passages]
        probabilities = model.predict(passages)
        offset = 0
        for article in articles:
            rows = probabilities[offset : offset + len(article.passages)]
            offset += len(article.passages)
            scores = tag_stage.aggregate(rows, article.positions, model)
            result.tagged.append(
                _TaggedArticle(article.id, article.content_hash, article.positions, rows, scores)
            )
        result.paragraphs = len(passages)

    def _entities(self, texts: list[ArticleText], result: _Result) -> None:
        # As mentions.link_corpus feeds the linker: key str(id), the paragraphs' texts.
        linker = self.linker
        if linker is None:
            raise RayEngineError("this actor was started without the entity linker")
        found = linker.link_articles((str(a.id), [t for _, t in a.paragraphs]) for a in texts)
        for article, mentions in zip(texts, found, strict=True):
            result.linked.append((article.id, article.content_hash, mentions))


# -- the driver -------------------------------------------------------------------------------


def plan_work(theme_ids: list[int], entity_ids: list[int], size: int) -> list[Work]:
    """Chunks of `size` as the local engines would make them, one Ray batch each.

    When both stages owe the same articles (a new corpus, a day's new articles) each chunk does
    both. Otherwise the theme chunks come first, then the entity chunks, so each stage still sees
    its own pending list chunked as locally and writes in the same order.
    """
    if theme_ids == entity_ids:
        return [Work(c, True, True) for c in chunked(theme_ids, size)]
    return [Work(c, True, False) for c in chunked(theme_ids, size)] + [
        Work(c, False, True) for c in chunked(entity_ids, size)
    ]


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayEngineError(INSTALL_HINT) from exc
    return ray


def _forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}


def _absolute(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def _start_ray(ray: Any, address: str | None, cpus: int) -> bool:
    """Connect to `address`, or start a quiet local instance. True when this run started it."""
    if ray.is_initialized():
        return False  # the caller's (a notebook, a test): used as it is, and left running
    env = _forwarded_env()
    options: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, **options)
    return True


def tag_ray(
    corpus: Corpus,
    *,
    model_dir: str | Path,
    themes_file: str | Path = DEFAULT_THEMES,
    kb_files: Sequence[str | Path] = (),
    built_kb: str | Path | None = DEFAULT_BUILT_KB,
    spacy_model: str | None = None,
    themes: bool = True,
    entities: bool = True,
    address: str | None = None,
    actors: int | None = None,
    threads: int = 1,
    precision: str | None = "auto",
    progress: bool = True,
) -> RaySummary:
    """Score themes and link entities in every pending article with a Ray Data actor pool.

    Does what `tag.tag` then `mentions.link_corpus` do, with the same rows, fingerprints and
    ledgers. `address` is a Ray cluster (`auto`, `ray://head:10001`); without it a local Ray
    instance is started on this machine's cores and shut down after. `actors` is the pool size
    (default: the cluster's CPUs over `threads`, at most one per chunk); each actor runs torch on
    `threads` threads and reserves as many CPUs. `precision` is the encoder's (`auto`, `fp32`,
    `bf16`, `bf16-mixed`; `ThemeModel.load`'s default); `auto` is settled once, on a worker,
    and every actor then uses what it settled on. A Ray instance already initialised in this
    process is used as it is. Like the local engine, it refuses to start while another process
    tags the same corpus (`CorpusBusy`).
    """
    ray = _import_ray()
    started = time.monotonic()
    if not (themes or entities):
        return RaySummary(None, None)
    threads = max(1, threads)
    kb = load_kb(kb_files, built=_absolute(built_kb) if built_kb else None) if entities else None
    if precision is None:
        precision = os.environ.get(PRECISION_ENV) or "auto"
    config = WorkerConfig(
        model_dir=_absolute(model_dir) if themes else None,
        themes=load_themes(themes_file) if themes else None,
        precision=precision,
        kb=kb,
        spacy_model=spacy_model or os.environ.get(SPACY_ENV) or None,
        threads=threads,
    )
    with ExitStack() as jobs:  # the local engines' locks: one writer per job and corpus
        for job, wanted in (("themes", themes), ("entities", entities)):
            if wanted:
                jobs.enter_context(corpus.exclusive(job))
        ours = _start_ray(ray, address, max(os.cpu_count() or 1, (actors or 1) * threads))
        try:
            with _data_context(ray):
                return _run(ray, corpus, config, address, actors, progress, started)
        finally:
            if ours:
                ray.shutdown()


@contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data set for this run, and put back after: results in chunk order, no progress bars
    or execution notices of its own (ours counts articles written; its log file keeps them)."""
    context = ray.data.DataContext.get_current()
    options = context.execution_options
    saved = (
        options.preserve_order,
        context.enable_progress_bars,
        getattr(context, "print_on_execution_start", True),  # not in every Ray version
    )
    consoles = [
        h
        for h in logging.getLogger("ray.data").handlers
        if not isinstance(h, logging.FileHandler) and "File" not in type(h).__name__
    ]
    levels = [h.level for h in consoles]
    options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for handler in consoles:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        options.preserve_order, context.enable_progress_bars = saved[:2]
        context.print_on_execution_start = saved[2]
        for handler, level in zip(consoles, levels, strict=True):
            handler.setLevel(level)


def _run(
    ray: Any,
    corpus: Corpus,
    config: WorkerConfig,
    address: str | None,
    actors: int | None,
    progress: bool,
    started: float,
) -> RaySummary:
    env = _forwarded_env()
    runtime_env = {"runtime_env": {"env_vars": env}} if env else {}
    # Settle precision and fingerprints on a worker; the process exits after (max_calls=1), so
    # the models it loaded do not sit in memory beside the actors'.
    describe_task = ray.remote(num_cpus=1, max_calls=1)(_describe_or_error)
    described = ray.get(describe_task.options(**runtime_env).remote(config))
    if isinstance(described, str):
        raise RayEngineError(f"on a Ray worker: {described}")
    view, linker_fingerprint = described
    if view is not None:
        config = replace(config, precision=view.precision)

    theme_summary = entity_summary = None
    theme_pending: list[int] = []
    entity_pending: list[int] = []
    if view is not None:
        corpus.apply_schema(TAG_SCHEMA)
        tag_stage.record_themes(corpus, view)
        theme_pending = tag_stage.pending_articles(corpus, view.fingerprint)
        theme_summary = TagSummary(model=view.fingerprint)
        theme_summary.skipped = corpus.count("articles") - len(theme_pending)
        theme_summary.carrying = dict.fromkeys(view.theme_ids, 0)
    if linker_fingerprint is not None:
        corpus.apply_schema(MENTIONS_SCHEMA)
        entity_pending = corpus.stale_articles("linked", "linker", linker_fingerprint)
        entity_summary = LinkSummary(linker=linker_fingerprint)
        entity_summary.skipped = corpus.count("articles") - len(entity_pending)

    work = plan_work(theme_pending, entity_pending, tag_stage.CHUNK)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    pool = max(1, min(actors or cpus // config.threads, len(work) or 1))
    summary = RaySummary(
        theme_summary,
        entity_summary,
        actors=pool if work else 0,
        threads=config.threads,
        chunks=len(work),
        precision=view.precision if view else None,
        address=address,
        model=view,
    )
    log.info(
        "ray: %d chunk(s) of %d article(s) over %d actor(s) x %d thread(s), precision %s",
        len(work),
        tag_stage.CHUNK,
        summary.actors,
        config.threads,
        summary.precision,
    )
    writer = _Writer(corpus, view, config.kb, linker_fingerprint, summary)
    total = sum(len(w.ids) for w in work)
    with tqdm(
        total=total, unit="article", desc="tagging on ray", disable=not progress or None
    ) as bar:
        if work:
            for result in _results(ray, corpus, work, config, pool, runtime_env):
                bar.update(writer.write(result))
    if entity_summary is not None:
        entity_summary.by_kind = dict(sorted(entity_summary.by_kind.items()))
    summary.seconds = time.monotonic() - started
    for stage in (theme_summary, entity_summary):
        if stage is not None:
            stage.seconds = summary.seconds  # the stages ran side by side
    return summary


def _describe_or_error(config: WorkerConfig) -> tuple[ModelView | None, str | None] | str:
    """`describe`, or the message of a problem the user can fix (a model missing on a worker),
    so the driver reports it without a remote traceback."""
    try:
        return describe(config)
    except NarrativesError as exc:
        return str(exc)


def _results(
    ray: Any,
    corpus: Corpus,
    work: list[Work],
    config: WorkerConfig,
    pool: int,
    runtime_env: dict[str, Any],
) -> Iterator[_Result]:
    """Run the chunks through the actor pool; yield their results in chunk order."""
    import pyarrow as pa

    # One block per chunk, so one Ray batch is exactly one chunk and the pool balances chunks.
    # Texts are read and put a chunk at a time: the driver's memory stays flat; Ray's object
    # store holds (or spills) the rest.
    refs = []
    for index, item in enumerate(work):
        payload = pickle.dumps((item, corpus.article_texts(item.ids)), protocol=5)
        refs.append(ray.put(pa.table({"index": [index], "payload": [payload]})))
    dataset = ray.data.from_arrow_refs(refs).map_batches(
        ChunkTagger,
        fn_constructor_kwargs={"config": config},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            size=pool, max_tasks_in_flight_per_actor=TASKS_PER_ACTOR
        ),
        num_cpus=config.threads,
        **runtime_env,
    )
    # preserve_order already keeps chunk order; the buffer makes the writes' order independent
    # of that setting (entity rows shared by articles are last-writer-wins, as locally).
    waiting: dict[int, _Result] = {}
    following = 0
    for row in dataset.iter_rows():
        result: _Result = pickle.loads(row["result"])
        waiting[result.index] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1
    if waiting or following != len(work):
        raise RayEngineError(f"Ray returned {following} of {len(work)} chunks")


class _Writer:
    """The one writer: each chunk's rows in one transaction, with the local engines' writers."""

    def __init__(
        self,
        corpus: Corpus,
        view: ModelView | None,
        kb: KnowledgeBase | None,
        linker_fingerprint: str | None,
        summary: RaySummary,
    ) -> None:
        self.corpus = corpus
        self.view = view
        self.linker = _LinkerView(kb) if kb is not None else None
        self.linker_fingerprint = linker_fingerprint
        self.summary = summary

    def write(self, result: _Result) -> int:
        """Write one chunk; the number of articles it held."""
        self._check(result)
        themes, entities = self.summary.themes, self.summary.entities
        with self.corpus.transaction():
            for t in result.tagged:
                assert self.view is not None and themes is not None
                article = tag_stage._Article(t.id, t.content_hash, t.positions, [])
                tag_stage._write(
                    self.corpus,
                    article,
                    t.probabilities,
                    t.scores,
                    self.view,
                    self.view.fingerprint,
                )
                for s in t.scores:
                    themes.carrying[s.theme] += s.carries
            for article_id, content_hash, found in result.linked:
                assert self.linker is not None and entities is not None
                mentions_stage._write(
                    self.corpus,
                    article_id,
                    content_hash,
                    found,
                    self.linker,
                    str(self.linker_fingerprint),
                )
                for m in found:
                    entities.by_kind[m.kind] = entities.by_kind.get(m.kind, 0) + 1
                entities.mentions += len(found)
        if themes is not None and result.tagged:
            themes.articles += len(result.tagged)
            themes.paragraphs += result.paragraphs
        if entities is not None:
            entities.articles += len(result.linked)
        self.summary.worker_cpu_seconds += result.cpu_seconds
        return max(len(result.tagged), len(result.linked))

    def _check(self, result: _Result) -> None:
        """Rows go in under the driver's fingerprints only if the worker's models match them."""
        expected = (self.view.fingerprint if self.view else None, self.linker_fingerprint)
        got = (
            result.model if result.tagged else expected[0],
            result.linker if result.linked else expected[1],
        )
        if got != expected:
            raise RayEngineError(
                f"a Ray worker loaded other models than the first one did (model {got[0]} vs "
                f"{expected[0]}, linker {got[1]} vs {expected[1]}): every worker needs the same "
                "narratives, model directory and spaCy pipeline"
            )

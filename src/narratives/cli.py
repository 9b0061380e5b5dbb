"""The `narratives` command line: parses options and calls library functions, nothing more."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import click
from tabulate import tabulate

from narratives import __version__
from narratives.dates import parse_date
from narratives.demo import DEMO_DB, DemoReport, run_demo
from narratives.errors import DateError, NarrativesError
from narratives.feeds import DEFAULT_FEEDS, default_feeds_path, load_feeds_file
from narratives.fetch import FetchPolicy
from narratives.ingest import IngestSummary, ingest
from narratives.store import DEFAULT_DB, Corpus, CorpusStatus
from narratives.text import clip

db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="Corpus database (SQLite).",
)


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
@click.option("--since", type=_Since(), help="Skip articles published before this date.")
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
    help="Allow fetching loopback/private addresses (crawling your own intranet).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def ingest_command(
    sources: tuple[str, ...],
    db: Path,
    feeds_file: str | None,
    fetch_links: bool,
    since: datetime | None,
    delay: float,
    workers: int,
    timeout: float,
    ignore_robots: bool,
    allow_private: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Ingest news from feeds, article URLs, files and directories.

    A SOURCE is an RSS/Atom feed URL, an article URL, a feeds file (.toml), a file
    (.html .htm .html.gz .txt .xml .rss .atom .jsonl) or a directory (read recursively).
    Re-running is safe: known articles are not stored twice, changed ones are updated.

    \b
    Examples:
      narratives ingest https://www.cnbc.com/id/10000664/device/rss/rss.html
      narratives ingest --feeds default
      narratives ingest news/cnn_2024-07.jsonl pages/ --db corpus/research.db
      narratives ingest saved-feed.xml --fetch-links
    """
    policy = FetchPolicy(
        min_delay=delay,
        total_timeout=timeout,
        respect_robots=not ignore_robots,
        allow_private=allow_private,
    )
    summary = ingest(
        db,
        list(sources),
        feeds=feeds_file,
        fetch_links=fetch_links,
        since=since,
        policy=policy,
        workers=workers,
        progress=not no_progress,
    )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        click.echo(format_summary(summary, db))
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
    if not db.exists():
        raise NarrativesError(f"no corpus at {db}: run `narratives ingest` (or `make demo`) first")
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
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo_command(db: Path, sample: Path | None, no_progress: bool) -> None:
    """Run the pipeline on the bundled sample corpus into a fresh demo database.

    \b
    Example:
      narratives demo && narratives status --db corpus/demo.db
    """
    report = run_demo(db, sample=sample, progress=not no_progress)
    click.echo(format_demo(report))


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
        "",
        tabulate([r[:2] for r in status.by_source], headers=["publisher", "articles"]),
        "",
        f"full-text search {report.query}: {report.hit_count} articles, first ones:",
    ]
    lines += [f"  {h.published}  {h.publisher:<22}  {clip(h.title, 60)}" for h in report.hits]
    lines += ["", f"Explore: narratives status --db {report.db}"]
    return "\n".join(lines)


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

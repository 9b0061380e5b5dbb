"""SIGKILL at random moments: the corpus stays whole, and a re-run finishes the job exactly.

`narratives ingest` and `narratives tag` run as real processes (each in its own process group,
so its workers count too) and are killed with SIGKILL at a random moment, over and over. After
every kill the database must pass `PRAGMA integrity_check` and the full-text index's own check,
hold no article twice and nothing half-written, and no process of the killed run may be left
behind. Once every round has run to the end, the corpus must equal an uninterrupted run's.

`NARRATIVES_RELIABILITY_REPORT=path.json` records the figures (scripts/reliability_report.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from narratives.store import Corpus
from narratives.tag import RESULT_QUERIES

from conftest import RUN_CLI, STORY, copy_db, record_figures

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
KB = ROOT / "corpus" / "sample" / "kb.toml"
KILLS = int(os.environ.get("NARRATIVES_CRASH_KILLS", "20"))
# Small chunks for `tag`, so a run commits many times and a kill can land between any two.
TAG_CHUNK = 8
RUN_TAG = (
    "import sys, narratives.tag as t, narratives.mentions as m\n"
    f"t.CHUNK = m.CHUNK = {TAG_CHUNK}\n"
    "from narratives.cli import main\n"
    "main()\n"
)


@dataclass
class CrashRecord:
    """What the kills of one job did: the figures docs/reliability.md reports."""

    job: str
    kills: int = 0
    mid_write: int = 0  # the kill landed after some of the work was written, before the end
    no_progress: int = 0  # killed before this run stored anything new
    after_last_write: int = 0  # killed once everything was written, while it was finishing
    finished_before_kill: int = 0
    rounds: int = 0
    integrity_failures: int = 0
    lost: int = 0
    duplicated: int = 0
    half_written: int = 0
    orphans: int = 0
    differences_from_uninterrupted: int = 0
    seconds: float = 0.0
    delays: list[float] = field(default_factory=list)


def _record(record: CrashRecord) -> None:
    record_figures("crash", {record.job: asdict(record) | {"delays": None}})


def _start(args: list[str], *, script: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script or RUN_CLI, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill reaches every worker
    )


def _kill_group(process: subprocess.Popen) -> bool:
    """SIGKILL the run's leader, then check its workers die by themselves (no orphan writer);
    kill any that do not, and say whether there were any."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    return True


@dataclass
class Timing:
    """An uninterrupted run: how long it took, and how long it spent writing."""

    total: float
    writing: float = 0.0  # from its first write to its last


def _run_to_end(
    args: list[str], *, script: str | None = None, progress: Callable[[], int] | None = None
) -> Timing:
    """Run to the end, noting when `progress()` first and last moved, if given."""
    started = time.monotonic()
    process = _start(args, script=script)
    seen, first, last = 0, None, None
    while progress is not None and process.poll() is None:
        now = progress()
        if now != seen:
            seen, last = now, time.monotonic()
            first = last if first is None else first
        time.sleep(0.02)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode(errors="replace")
    writing = (last - first) if first is not None and last is not None else 0.0
    return Timing(time.monotonic() - started, writing)


def _kill_or_finish(
    args: list[str],
    rng: random.Random,
    timing: Timing,
    record: CrashRecord,
    progress: Callable[[], int],
    total: int,
    script: str | None = None,
) -> bool:
    """Start a run and SIGKILL it at a random moment; True if it finished first.

    A third of the kills come at a moment drawn over a whole run, start-up included; the
    others once this run has written something, at a moment drawn over the time the work left
    takes to write, so that most land between two commits (or inside one).
    """
    before = progress()
    process = _start(args, script=script)
    started = time.monotonic()
    if rng.random() < 1 / 3:
        deadline = started + rng.uniform(0, timing.total)
    else:
        while process.poll() is None and progress() == before:
            time.sleep(0.01)
        left = timing.writing * (total - before) / total
        deadline = time.monotonic() + rng.uniform(0, left)
    record.delays.append(deadline - started)
    try:
        finished = process.wait(timeout=max(0.0, deadline - time.monotonic())) == 0
    except subprocess.TimeoutExpired:
        record.orphans += _kill_group(process)
        record.kills += 1
        after = progress()
        if after == before:
            record.no_progress += 1
        elif after < total:
            record.mid_write += 1
        else:
            record.after_last_write += 1
        return False
    record.finished_before_kill += 1
    return finished


def _integrity(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        problems = [] if problems == ["ok"] else problems
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "articles_fts" in tables:
            try:
                conn.execute("INSERT INTO articles_fts(articles_fts) VALUES('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"full-text index: {exc}")
    return problems


# -- ingest ------------------------------------------------------------------------------------


def _write_articles(path: Path, n: int) -> None:
    """n distinct ~200-word articles; ≥ 2,000 lines, so ingest parses them in worker processes."""
    rng = random.Random(11)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            body = rng.sample(STORY, k=len(STORY))
            body.append(f"Dispatch {i}: desk note {rng.randrange(10**9)} on the small-cap rally.")
            record = {
                "id": f"crash-{i}",
                "url": f"https://news.example.com/2024/07/{1 + i % 28:02d}/story-{i}.html",
                "title": f"Small caps and the rate-cut trade, dispatch {i}",
                "published": f"2024-07-{1 + i % 28:02d}T{i % 24:02d}:15:00Z",
                "source": "example.com",
                "text": "\n\n".join(body),
            }
            out.write(json.dumps(record) + "\n")


ARTICLE_STATE = (
    "SELECT a.url, a.title, a.published, a.content_hash, "
    "(SELECT count(*) FROM paragraphs p WHERE p.article_id = a.id), "
    "(SELECT group_concat(k.key, ' ') FROM (SELECT key FROM article_keys k2 "
    " WHERE k2.article_id = a.id ORDER BY key) k) "
    "FROM articles a ORDER BY a.url"
)


def _ingest_problems(db: Path, expected: dict[str, tuple]) -> tuple[int, int, int]:
    """(duplicated, half-written, unknown) articles in a corpus an ingest was killed in."""
    with sqlite3.connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'articles'").fetchone():
            return 0, 0, 0
        rows = conn.execute(ARTICLE_STATE).fetchall()
    urls = [r[0] for r in rows]
    duplicated = len(urls) - len(set(urls))
    # An article is stored whole or not at all: its paragraphs and keys come with it.
    half = sum(1 for r in rows if r[0] in expected and tuple(r) != expected[r[0]])
    unknown = sum(1 for r in rows if r[0] not in expected)
    return duplicated, half, unknown


def test_ingest_killed_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    source = tmp_path / "news.jsonl"
    _write_articles(source, 2400)
    reference = tmp_path / "reference.db"
    args = ["ingest", str(source), "--db", str(reference), "--no-progress"]
    timing = _run_to_end(args, progress=lambda: _count(reference, "articles"))
    with sqlite3.connect(reference) as conn:
        expected = {r[0]: tuple(r) for r in conn.execute(ARTICLE_STATE)}
    assert len(expected) == 2400

    rng = random.Random(2024)
    record = CrashRecord("ingest")
    started = time.monotonic()
    while record.kills < KILLS:
        record.rounds += 1
        db = tmp_path / f"round-{record.rounds}.db"
        args = ["ingest", str(source), "--db", str(db), "--no-progress"]
        finished = False
        while not finished and record.kills < KILLS:
            finished = _kill_or_finish(
                args, rng, timing, record, lambda db=db: _count(db, "articles"), len(expected)
            )
            problems = _integrity(db) if db.exists() else []
            record.integrity_failures += bool(problems)
            assert not problems, problems
            duplicated, half, unknown = _ingest_problems(db, expected)
            record.duplicated += duplicated
            record.half_written += half
            assert (duplicated, half, unknown) == (0, 0, 0)
        if not finished:
            _run_to_end(args)
        with sqlite3.connect(db) as conn:
            final = {r[0]: tuple(r) for r in conn.execute(ARTICLE_STATE)}
        record.lost += len(set(expected) - set(final))
        record.differences_from_uninterrupted += sum(
            1 for url, row in final.items() if expected.get(url) != row
        )
        assert final == expected
    record.seconds = round(time.monotonic() - started, 1)
    _record(record)
    assert record.orphans == 0
    assert record.mid_write >= KILLS // 4, record  # the kills did land in the middle of writes


def _count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


# -- tag ---------------------------------------------------------------------------------------


def _tag_args(db: Path) -> list[str]:
    # fp32: batch composition after a resume then moves scores by ~1e-7 at most, not by bf16's
    # ~1e-3, so the final comparison can be tight.
    return ["tag", "--db", str(db), "--kb", str(KB), "--precision", "fp32", "--no-progress"]


def _tag_problems(db: Path, themes: int) -> int:
    """Articles whose tags are half-written: scores without a ledger entry or the reverse,
    a theme row missing, mentions without their ledger entry."""
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        problems = 0
        if "tagged" in names:
            problems += conn.execute(
                "SELECT count(*) FROM tagged t WHERE (SELECT count(*) FROM article_themes a "
                "WHERE a.article_id = t.article_id) != ?",
                [themes],
            ).fetchone()[0]
            for table in ("article_themes", "paragraph_themes", "theme_evidence"):
                problems += conn.execute(
                    f"SELECT count(DISTINCT article_id) FROM {table} WHERE article_id NOT IN "
                    "(SELECT article_id FROM tagged)"
                ).fetchone()[0]
        if "linked" in names:
            problems += conn.execute(
                "SELECT count(DISTINCT article_id) FROM mentions WHERE article_id NOT IN "
                "(SELECT article_id FROM linked)"
            ).fetchone()[0]
    return problems


def _progress(db: Path) -> int:
    return _count(db, "tagged") + _count(db, "linked")


def _compare(final: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> int:
    """Rows that differ from the uninterrupted run's; probabilities equal to within 0.001."""

    def close(a: tuple, b: tuple) -> bool:
        return len(a) == len(b) and all(
            abs(x - y) <= 1e-3 if isinstance(x, float) and isinstance(y, float) else x == y
            for x, y in zip(a, b, strict=True)
        )

    differences = 0
    for table in RESULT_QUERIES:
        got, want = final[table], expected[table]
        if table == "paragraph_themes":
            # Rows sit at the storage floor (0.01): one run may keep a 0.0100 the other rounds
            # to 0.0099. Compare the rows clear of it.
            got = [r for r in got if r[-1] > 0.0105]
            want = [r for r in want if r[-1] > 0.0105]
        differences += abs(len(got) - len(want))
        differences += sum(1 for a, b in zip(got, want, strict=False) if not close(a, b))
    return differences


def _results(db: Path) -> dict[str, list[tuple]]:
    with Corpus(db) as corpus:
        return {t: corpus.db.execute(sql).fetchall() for t, sql in RESULT_QUERIES.items()}


def test_tag_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:64]
    (tmp_path / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run_to_end(["ingest", str(tmp_path / "news.jsonl"), "--db", str(base), "--no-progress"])
    reference = tmp_path / "reference.db"
    copy_db(base, reference)
    timing = _run_to_end(
        _tag_args(reference), script=RUN_TAG, progress=lambda: _progress(reference)
    )
    expected = _results(reference)
    themes = len(expected["themes"])
    articles = _count(base, "articles")
    assert len(expected["tagged"]) == articles and len(expected["linked"]) == articles

    rng = random.Random(7)
    record = CrashRecord("tag")
    started = time.monotonic()
    while record.kills < KILLS:
        record.rounds += 1
        db = copy_db(base, tmp_path / f"round-{record.rounds}.db")
        finished = False
        while not finished and record.kills < KILLS:
            finished = _kill_or_finish(
                _tag_args(db),
                rng,
                timing,
                record,
                lambda db=db: _progress(db),
                2 * articles,
                script=RUN_TAG,
            )
            problems = _integrity(db)
            record.integrity_failures += bool(problems)
            assert not problems, problems
            half = _tag_problems(db, themes)
            record.half_written += half
            assert half == 0
        if not finished:
            _run_to_end(_tag_args(db), script=RUN_TAG)
        final = _results(db)
        record.lost += articles - len(final["tagged"]) + articles - len(final["linked"])
        record.differences_from_uninterrupted += _compare(final, expected)
        assert record.lost == 0 and record.differences_from_uninterrupted == 0
    record.seconds = round(time.monotonic() - started, 1)
    _record(record)
    assert record.orphans == 0
    assert record.mid_write >= KILLS // 4, record

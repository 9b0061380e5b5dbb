"""Readers while `ingest` and `tag` write; two runs of one job at once.

The corpus is SQLite in WAL mode: readers (Datasette, notebooks, the sqlite3 shell) never wait
for a writer and never see a half-written batch. Two runs of the same job on one corpus would
do the same work twice, so the second refuses to start with a message saying why; different
jobs (an ingest and a tag) run side by side.

`NARRATIVES_RELIABILITY_REPORT=path.json` records the figures (scripts/reliability_report.py).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from narratives.store import Corpus, CorpusBusy, hold_lock

from conftest import ROOT, RUN_CLI, STORY, record_figures, serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
KB = ROOT / "corpus" / "sample" / "kb.toml"


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _write_articles(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = "\n\n".join([*STORY, f"Dispatch {i} on the small-cap rally and rate cuts."])
            out.write(
                json.dumps(
                    {
                        "id": f"c-{i}",
                        "url": f"https://news.example.com/2024/07/story-{i}.html",
                        "title": f"Rate-cut bets lift small caps, dispatch {i}",
                        "published": f"2024-07-{1 + i % 28:02d}T12:00:00Z",
                        "text": text,
                    }
                )
                + "\n"
            )
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A corpus with a few articles, served by `narratives serve` in its own process."""
    db = tmp_path / "news.db"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:20]
    (tmp_path / "seed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seed = _cli("ingest", str(tmp_path / "seed.jsonl"), "--db", str(db), "--no-progress")
    assert seed.wait(timeout=120) == 0, seed.stderr.read() if seed.stderr else ""
    with serving(db, tmp_path / "serve.log") as base:
        yield db, base


class Readers:
    """Threads querying the corpus over and over, through Datasette and through sqlite3."""

    PAGES = (
        "/news/articles.json?_size=5&_sort_desc=id",
        "/news.json?sql=select+count(*)+from+articles",
        "/news/articles.json?_search=rate&_size=5",
        "/news/article_overview.json?_size=5",
    )

    def __init__(self, db: Path, base: str) -> None:
        self.db, self.base = db, base
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.counts: list[int] = []
        self.slowest = 0.0  # seconds, the slowest answer over HTTP
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._http, daemon=True),
            threading.Thread(target=self._http, daemon=True),
            threading.Thread(target=self._sqlite, daemon=True),
        ]

    def __enter__(self) -> Readers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _http(self) -> None:
        n = 0
        while not self.stop.is_set():
            page = self.PAGES[n % len(self.PAGES)]
            n += 1
            started = time.monotonic()
            try:
                # Both cores are busy writing: an answer may be slow, but it must come.
                with urllib.request.urlopen(self.base + page, timeout=120) as response:
                    body = response.read()
                    self.outcomes[f"http {response.status}"] += 1
                    if b"database is locked" in body:
                        self.failures.append(f"{page}: locked")
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")
                self.outcomes[f"http {exc.code}"] += 1
                self.failures.append(f"{page}: HTTP {exc.code} {text[:200]}")
            except OSError as exc:
                self.failures.append(f"{page}: {exc}")
            self.slowest = max(self.slowest, time.monotonic() - started)

    def _sqlite(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            while not self.stop.is_set():
                try:
                    with conn:  # one read transaction: a consistent snapshot
                        articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
                        paragraphs = conn.execute(
                            "SELECT count(DISTINCT article_id) FROM paragraphs"
                        ).fetchone()[0]
                    self.outcomes["sqlite read"] += 1
                    self.counts.append(articles)
                    if paragraphs != articles:  # a batch is visible whole or not at all
                        self.failures.append(f"{articles} articles, {paragraphs} with paragraphs")
                except sqlite3.OperationalError as exc:
                    self.failures.append(f"sqlite3: {exc}")
                time.sleep(0.01)
        finally:
            conn.close()


def test_readers_never_see_locks_or_half_batches_while_ingest_and_tag_write(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    db, base = served
    source = _write_articles(tmp_path / "more.jsonl", 2500)
    with Readers(db, base) as readers:
        ingest = _cli("ingest", str(source), "--db", str(db), "--no-progress")
        _, err = ingest.communicate(timeout=300)
        assert ingest.returncode == 0, err
        tag = _cli("tag", "--db", str(db), "--kb", str(KB), "--no-progress")
        _, err = tag.communicate(timeout=300)
        assert tag.returncode == 0, err
        time.sleep(0.5)
    reads = sum(readers.outcomes.values())
    record_figures(
        "concurrency",
        {
            "reads_during_writes": reads,
            "read_failures": len(readers.failures),
            "slowest_http_answer_s": round(readers.slowest, 1),
            "reader_outcomes": dict(readers.outcomes),
        },
    )
    assert readers.failures == []
    assert readers.outcomes["http 200"] > 50 and readers.outcomes["sqlite read"] > 50
    assert readers.counts == sorted(readers.counts)  # the count only ever grows
    assert readers.counts[-1] == 2520


def _hold(db: Path, job: str) -> subprocess.Popen:
    """A process that holds `job`'s lock on `db` (as a long run would) until it is killed."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from narratives.store import Corpus\n"
            f"with Corpus({str(db)!r}) as c, c.exclusive({job!r}):\n"
            "    print('held', flush=True); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize(
    ("job", "command"),
    [("ingest", ["ingest", "{source}"]), ("themes", ["tag", "--no-entities"])],
)
def test_a_second_run_of_a_job_exits_at_once_with_a_clear_message(
    tmp_path: Path, job: str, command: list[str]
) -> None:
    db = tmp_path / "news.db"
    source = _write_articles(tmp_path / "news.jsonl", 50)
    Corpus(db).close()
    holder = _hold(db, job)
    args = [a.format(source=source) for a in command]
    second = _cli(*args, "--db", str(db), "--no-progress")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 1
    assert f"another `narratives` process (pid {holder.pid}) is running `{job}` on {db}" in err
    assert "wait for it to finish" in err and "Traceback" not in err
    holder.kill()
    holder.wait()
    again = _cli(*args, "--db", str(db), "--no-progress")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err  # once the first is gone, it simply runs
    record_figures(
        "concurrency", {"second_run": "refused at once with a message naming the first run's pid"}
    )


def test_two_ingests_started_together_store_everything_once(tmp_path: Path) -> None:
    """Whichever takes the corpus first ingests; the other exits with the message, or, if it
    came after, finds everything stored. Never both at once, never a duplicate."""
    db = tmp_path / "news.db"
    source = _write_articles(tmp_path / "news.jsonl", 2500)
    runs = [_cli("ingest", str(source), "--db", str(db), "--no-progress") for _ in range(2)]
    outcomes = []
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0 or "is running `ingest` on" in err, err
        outcomes.append(run.returncode)
    assert 0 in outcomes
    with Corpus(db) as corpus:
        assert corpus.count() == 2500
        urls = corpus.db.execute("SELECT count(DISTINCT url) FROM articles").fetchone()[0]
        assert urls == 2500
        assert corpus.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_ingest_and_tag_at_once_both_finish(tmp_path: Path) -> None:
    """Different jobs share the corpus: their transactions interleave under WAL."""
    db = tmp_path / "news.db"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:40]
    (tmp_path / "seed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seed = _cli("ingest", str(tmp_path / "seed.jsonl"), "--db", str(db), "--no-progress")
    assert seed.wait(timeout=120) == 0
    tag = _cli("tag", "--db", str(db), "--kb", str(KB), "--no-progress")
    ingest = _cli("ingest", str(_write_articles(tmp_path / "more.jsonl", 2500)), "--db", str(db))
    for process in (ingest, tag):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    again = _cli("tag", "--db", str(db), "--kb", str(KB), "--no-progress", "--json")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    with Corpus(db) as corpus:
        assert corpus.count() == 2540
        assert corpus.count("tagged") == 2540 and corpus.count("linked") == 2540


def _locked(db: Path, job: str) -> bool:
    """Whether some process holds `job`'s lock on `db` (tried from a throwaway process)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_try_lock, (str(db), job))


def _try_lock(db: str, job: str) -> bool:
    try:
        with Corpus(db) as corpus, corpus.exclusive(job):
            return False
    except CorpusBusy:
        return True


def test_one_process_cannot_take_a_job_lock_twice(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    busy = pytest.raises(CorpusBusy, match="this process is already running `ingest`")
    with hold_lock(lock, "ingest", tmp_path / "x.db"), busy, hold_lock(lock, "ingest", tmp_path):
        pass
    with hold_lock(lock, "ingest", tmp_path / "x.db"):  # released on exit
        pass


def test_a_killed_holder_releases_its_lock(tmp_path: Path) -> None:
    db = tmp_path / "news.db"
    Corpus(db).close()
    holder = _hold(db, "ingest")
    assert _locked(db, "ingest")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert not _locked(db, "ingest")

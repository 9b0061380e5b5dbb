"""The whole pipeline, stage by stage, beside the raw libraries doing the same work.

    python scripts/bench.py [--sizes 200 2000 20000] [--nlp-max 2000] [--extract-max 1000]
                            [--real 300] [--index-sizes 200 2000 20000 100000]
                            [--out docs/benchmarks]

Corpora: N generated articles of about 800 words (25 paragraphs of ~32 words, the shape of the
seed articles), assembled from the paragraphs of our fictional sample corpus
(corpus/sample/articles.jsonl) with distinct titles, URLs, publishers and 2024 dates; and, when
../shared/data is here, `--real` non-held-out IBD and Barron's articles as they are.

Stages, each beside its raw library on the same input in the same run:
  extraction     narratives' extract_page vs trafilatura.extract, on rendered HTML pages
  load           `ingest` of JSONL (no NLP) vs json.loads + sqlite-utils insert_all
  end-to-end     `narratives ingest` then `narratives tag` (themes + entities) as subprocesses,
                 wall clock from start to exit, model loading included; peak memory of the
                 tag process tree (sum of PSS, and of RSS, sampled every second)
  classification `tag --no-entities` on a copy of the corpus (paragraphs/s, reading and
                 writing the DB included) vs the bare transformers encoder (AutoModel + mean
                 pooling, same precision, length-sorted batches of 64) on the same title +
                 paragraph inputs
  entities       `tag --no-themes` on another copy (words/s, every core) vs spaCy `nlp.pipe`
                 with the same components on the same paragraphs, n_process = cores
                 (each raw library is timed in a fresh interpreter, as cold as `tag` starts)
  index          `build_index` (D, W, M and a smoothed series) on corpora of N tagged articles
                 written directly (scripts/bench_index.py's generator: no model runs)
NLP and extraction stages run up to --nlp-max / --extract-max articles: a 20,000-article
end-to-end run is ~1 hour here and per-article cost is flat in N (the table shows it).
Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from report import write_report  # noqa: E402

SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
SAMPLE_KB = ROOT / "corpus" / "sample" / "kb.toml"
SHARED_NEWS = ROOT / ".." / "shared" / "data" / "news"
REAL_FILES = ("ibd_the_big_picture.jsonl", "barrons_barrons_weekly.jsonl")
CORES = len(os.sched_getaffinity(0))
TARGET_WORDS = 800


# -- corpora ----------------------------------------------------------------------------------


def generate(n: int, seed: int = 7) -> list[dict]:
    """N articles of ~800 words built from the sample corpus's paragraphs."""
    sample = [json.loads(line) for line in SAMPLE.open(encoding="utf-8")]
    paragraphs = [p.strip() for a in sample for p in a["text"].split("\n\n") if p.strip()]
    rng = random.Random(seed)
    start = datetime(2024, 1, 2, 13, 0, tzinfo=UTC)
    articles = []
    for i in range(n):
        base = sample[i % len(sample)]
        body: list[str] = []
        words = 0
        goal = rng.randint(TARGET_WORDS - 100, TARGET_WORDS + 100)
        while words < goal:
            paragraph = rng.choice(paragraphs)
            body.append(paragraph)
            words += len(paragraph.split())
        published = start + timedelta(minutes=(i * 525_600 // max(n, 1)) % 525_600)
        articles.append(
            {
                "id": f"bench-{i}",
                "source": base["source"],
                "publisher": base["publisher"],
                "published": published.isoformat(),
                "title": f"{base['title']} ({i})",
                "author": base.get("author") or "",
                "text": "\n\n".join(body),
                "url": f"https://bench.example/{published:%Y/%m/%d}/story-{i}",
            }
        )
    return articles


def real_articles(limit: int) -> list[dict]:
    """Non-held-out IBD and Barron's articles, alternating files, as published."""
    out: list[dict] = []
    for name in REAL_FILES:
        path = SHARED_NEWS / name
        if not path.is_file():
            return []
        kept = 0
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            if row.get("heldout") or kept >= -(-limit // len(REAL_FILES)):
                continue
            row.pop("links", None)
            row.pop("heldout", None)
            out.append(row)
            kept += 1
    return out[:limit]


def render_page(article: dict) -> str:
    """A news page: navigation, the article with its metadata, related links, a footer."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in article["text"].split("\n\n"))
    nav = "".join(f'<li><a href="/s/{s}">{s.title()}</a></li>' for s in ("markets", "tech", "ai"))
    related = "".join(
        f'<li><a href="/r/{k}">Related story number {k} about markets</a></li>' for k in range(8)
    )
    title = html.escape(article["title"])
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title} | "
        f"{html.escape(article['publisher'])}</title>"
        f"<meta property='og:title' content=\"{title}\">"
        f"<meta property='article:published_time' content='{article['published']}'>"
        f"<script>window.dataLayer = [{{'page': 'article'}}];</script></head><body>"
        f"<header><nav><ul>{nav}</ul></nav><div class='ad'>Advertisement</div></header>"
        f"<main><article><h1>{title}</h1><div class='byline'>By {html.escape(article['author'])}"
        f"</div>{body}</article><aside><h2>Related</h2><ul>{related}</ul></aside></main>"
        "<footer><p>Copyright 2024. All rights reserved. Terms of use. Privacy policy.</p>"
        "</footer></body></html>"
    )


def write_jsonl(path: Path, articles: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(json.dumps(article) + "\n")
    return path


def shape(articles: list[dict]) -> dict:
    paragraphs = [p for a in articles for p in a["text"].split("\n\n") if p.strip()]
    words = sum(len(p.split()) for p in paragraphs)
    return {
        "articles": len(articles),
        "paragraphs": len(paragraphs),
        "words": words,
        "words_per_article": round(words / max(len(articles), 1)),
        "paragraphs_per_article": round(len(paragraphs) / max(len(articles), 1), 1),
    }


# -- stages -----------------------------------------------------------------------------------


def bench_extraction(articles: list[dict]) -> dict:
    import trafilatura

    from narratives.extract import extract_page

    pages = [(a["url"], render_page(a)) for a in articles]
    times = {}
    for name, run in (
        ("trafilatura", lambda url, page: trafilatura.extract(page, url=url)),
        ("narratives", lambda url, page: extract_page(page, url=url)),
        ("trafilatura_again", lambda url, page: trafilatura.extract(page, url=url)),
    ):
        started = time.perf_counter()
        for url, page in pages:
            run(url, page)
        times[name] = time.perf_counter() - started
    raw = min(times["trafilatura"], times["trafilatura_again"])
    return {
        "pages": len(pages),
        "narratives_pages_per_s": round(len(pages) / times["narratives"], 1),
        "trafilatura_pages_per_s": round(len(pages) / raw, 1),
        "ratio": round(raw / times["narratives"], 3),
    }


def bench_load(jsonl: Path, n: int, workdir: Path) -> dict:
    import sqlite_utils

    from narratives.ingest import ingest

    started = time.perf_counter()
    summary = ingest(workdir / "load.db", [str(jsonl)], progress=False)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    db = sqlite_utils.Database(workdir / "raw.db")
    with jsonl.open(encoding="utf-8") as handle:
        db["articles"].insert_all((json.loads(line) for line in handle), pk="id", batch_size=500)
    raw = time.perf_counter() - started
    return {
        "articles": n,
        "stored": summary.new,
        "narratives_articles_per_s": round(n / ours, 1),
        "sqlite_utils_articles_per_s": round(n / raw, 1),
        "ratio": round(raw / ours, 3),
    }


class TreeMemory:
    """Peak summed RSS and PSS of a process and all its descendants, from /proc."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as handle:
                        todo.extend(int(c) for c in handle.read().split())
            except OSError:
                pass
        return pids

    @staticmethod
    def _field(path: str, name: str) -> int:
        try:
            with open(path) as handle:
                for line in handle:
                    if line.startswith(name):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = self._tree()
            rss = sum(self._field(f"/proc/{p}/status", "VmRSS:") for p in pids)
            pss = sum(self._field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def narratives_cli(*args: str) -> tuple[float, str, TreeMemory]:
    command = [str(Path(sys.executable).with_name("narratives")), *args, "--no-progress"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    out, _ = process.communicate()
    elapsed = time.perf_counter() - started
    memory.stop()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, out, memory


def copy_db(source: Path, target: Path) -> Path:
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def tag_args(db: Path, *extra: str) -> list[str]:
    return [
        "tag",
        "--db",
        str(db),
        "--kb",
        str(SAMPLE_KB),
        "--json",
        "--workers",
        str(CORES),
        *extra,
    ]


def bench_end_to_end(jsonl: Path, articles: list[dict], workdir: Path) -> dict:
    """ingest + tag as a user runs them; then each tag part alone, on copies of the corpus."""
    db = workdir / "e2e.db"
    ingest_s, _, _ = narratives_cli("ingest", str(jsonl), "--db", str(db))
    themes_db = copy_db(db, workdir / "themes.db")
    entities_db = copy_db(db, workdir / "entities.db")
    tag_s, out, memory = narratives_cli(*tag_args(db))
    summary = json.loads(out)
    _, out, themes_memory = narratives_cli(*tag_args(themes_db, "--no-entities"))
    themes = json.loads(out)["themes"]
    _, out, entities_memory = narratives_cli(*tag_args(entities_db, "--no-themes"))
    entities = json.loads(out)["entities"]
    n = len(articles)
    stages = summary["themes"]["seconds"]  # linking runs beside it, in its own process
    return {
        "articles": n,
        "ingest_s": round(ingest_s, 2),
        "tag_s": round(tag_s, 2),
        "articles_per_s": round(n / (ingest_s + tag_s), 2),
        "tag_only_articles_per_s": round(n / tag_s, 2),
        "startup_and_tail_s": round(tag_s - stages, 2),
        "themes_alone_s": themes["seconds"],
        "entities_alone_s": entities["seconds"],
        "paragraphs": themes["paragraphs"],
        "mentions": entities["mentions"],
        "peak_rss_mb": round(memory.peak_rss / 2**20),
        "peak_pss_mb": round(memory.peak_pss / 2**20),
        "themes_alone_peak_pss_mb": round(themes_memory.peak_pss / 2**20),
        "entities_alone_peak_pss_mb": round(entities_memory.peak_pss / 2**20),
    }


def passages_of(articles: list[dict]) -> list:
    from narratives.encoder import Passage
    from narratives.text import split_paragraphs

    return [Passage(text, a["title"]) for a in articles for _, text in split_paragraphs(a["text"])]


def in_fresh_process(function: Callable[..., float], *args: object) -> float:
    """Run a raw-library timing in a new interpreter, as cold as `narratives tag` starts: in
    this process the kernels for every tensor shape would already be built by earlier corpora,
    which made the bare encoder look up to ~25% faster than a first run is."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def bench_raw_encoder(articles: list[dict], precision: str) -> float:
    """Seconds for the bare transformers encoder on the same inputs: the raw library."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from narratives.encoder import base_model_path, length_batches, set_threads

    set_threads()
    passages = passages_of(articles)
    path = str(base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    started = time.perf_counter()
    with (
        torch.inference_mode(),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"),
    ):
        for indices in length_batches(passages, 64):
            batch = tokenizer(
                [passages[i].title or "" for i in indices],
                [passages[i].text for i in indices],
                truncation="longest_first",
                max_length=160,
                padding=True,
                return_tensors="pt",
            )
            states = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            _ = (states * mask).sum(1) / mask.sum(1)
    return time.perf_counter() - started


def bench_raw_spacy(articles: list[dict]) -> float:
    """Seconds for spaCy `nlp.pipe` (the linker's components) over the same paragraphs."""
    from narratives.entities import load_spacy
    from narratives.text import split_paragraphs

    nlp = load_spacy(None)
    texts = [text for a in articles for _, text in split_paragraphs(a["text"])]
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=256, n_process=CORES):
        pass
    return time.perf_counter() - started


def bench_index_growth(sizes: list[int], workdir: Path) -> list[dict]:
    import pandas as pd

    from bench_index import fill
    from narratives.index import build_index
    from narratives.store import Corpus
    from narratives.tag import TAG_SCHEMA

    rows = []
    days = pd.date_range("2022-01-01", "2024-12-31", freq="D", tz="UTC")
    for n in sizes:
        with Corpus(workdir / f"index-{n}.db") as corpus:
            corpus.apply_schema(TAG_SCHEMA)
            fill(corpus, 1, n, days, "2025-01-01T00:00:00Z", seed=n)
            started = time.perf_counter()
            build_index(corpus, freqs=("D", "W", "M"), half_life=5)
            first = time.perf_counter() - started
            started = time.perf_counter()
            build_index(corpus, freqs=("D", "W", "M"), half_life=5)
            again = time.perf_counter() - started
        rows.append({"articles": n, "first_s": round(first, 3), "rerun_s": round(again, 3)})
    return rows


def nlp_stage_rows(articles: list[dict], e2e: dict, precision: str) -> dict:
    words = shape(articles)["words"]
    encoder_s = in_fresh_process(bench_raw_encoder, articles, precision)
    spacy_s = in_fresh_process(bench_raw_spacy, articles)
    themes_s, entities_s = e2e["themes_alone_s"], e2e["entities_alone_s"]
    return {
        "classification": {
            "paragraphs": e2e["paragraphs"],
            "narratives_paragraphs_per_s": round(e2e["paragraphs"] / themes_s, 1),
            "encoder_paragraphs_per_s": round(e2e["paragraphs"] / encoder_s, 1),
            "ratio": round(encoder_s / themes_s, 3),
            "precision": precision,
        },
        "entities": {
            "words": words,
            "narratives_words_per_s": round(words / entities_s),
            "spacy_words_per_s": round(words / spacy_s),
            "ratio": round(spacy_s / entities_s, 3),
            "processes": CORES,
        },
        # The raw libraries alone, one after the other on every core, no I/O, no models to
        # load: the reference for the whole NLP work (running them side by side can beat it).
        "raw_ceiling_articles_per_s": round(len(articles) / (encoder_s + spacy_s), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--nlp-max", type=int, default=2000)
    parser.add_argument("--extract-max", type=int, default=1000)
    parser.add_argument("--real", type=int, default=300)
    parser.add_argument("--index-sizes", type=int, nargs="+", default=[200, 2000, 20000, 100000])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args(argv)

    from narratives.encoder import resolve_precision

    precision = resolve_precision(None)
    results: dict = {
        "machine": f"{platform.machine()}, {CORES} cores, Python {platform.python_version()}",
        "precision": precision,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="narratives-bench-") as tmp:
        corpora = [(f"generated {n:,}", generate(n)) for n in args.sizes]
        real = real_articles(args.real)
        if real:
            corpora.append((f"real IBD + Barron's {len(real):,}", real))
        for label, articles in corpora:
            n = len(articles)
            workdir = Path(tmp) / label.replace(" ", "_").replace(",", "").replace("+", "")
            workdir.mkdir()
            jsonl = write_jsonl(workdir / "articles.jsonl", articles)
            run: dict = {"corpus": label, "shape": shape(articles)}
            print(f"[{label}] load", flush=True)
            run["load"] = bench_load(jsonl, n, workdir)
            if n <= args.extract_max or label.startswith("real"):
                print(f"[{label}] extraction", flush=True)
                run["extraction"] = bench_extraction(articles[: args.extract_max])
            if n <= args.nlp_max:
                print(f"[{label}] end-to-end", flush=True)
                run["end_to_end"] = bench_end_to_end(jsonl, articles, workdir)
                print(f"[{label}] raw encoder and spaCy", flush=True)
                run.update(nlp_stage_rows(articles, run["end_to_end"], precision))
            results["runs"].append(run)
            print(json.dumps(run, indent=1), flush=True)
        print("index growth", flush=True)
        results["index"] = bench_index_growth(args.index_sizes, Path(tmp))
    write_report(args.out, results, markdown)
    return 0


def markdown(results: dict) -> str:
    runs = results["runs"]
    lines = [
        "# Benchmarks",
        "",
        f"`python scripts/bench.py` on {results['machine']}; encoder precision "
        f"{results['precision']}; run {results['started']}. Each stage is measured beside the raw "
        "library doing the same work on the same input in the same run; the ratio is ours ÷ raw. "
        "Each raw library is timed in a fresh interpreter, as cold as a `narratives` command "
        "starts (model loading excluded on both sides): timed warm, after earlier corpora had "
        "built its kernels for every tensor shape, the bare encoder ran up to ~25% faster.",
        "",
        "## Corpora",
        "",
        "| corpus | articles | words/article | paragraphs/article |",
        "|---|---:|---:|---:|",
    ]
    for run in runs:
        s = run["shape"]
        lines.append(
            f"| {run['corpus']} | {s['articles']:,} | {s['words_per_article']} | "
            f"{s['paragraphs_per_article']} |"
        )
    lines += [
        "",
        "## End-to-end: `narratives ingest` + `narratives tag` (themes and entities)",
        "",
        "| corpus | ingest s | tag s | **articles/s** | tag alone, articles/s | raw libraries "
        "one after the other, articles/s | peak PSS MB (tag tree) | peak RSS MB (tree, shared "
        "pages counted per process) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        if e := run.get("end_to_end"):
            lines.append(
                f"| {run['corpus']} | {e['ingest_s']} | {e['tag_s']} | **{e['articles_per_s']}** "
                f"| {e['tag_only_articles_per_s']} | {run['raw_ceiling_articles_per_s']} | "
                f"**{e['peak_pss_mb']:,}** | {e['peak_rss_mb']:,} |"
            )
    lines += [
        "",
        "The raw libraries column is the bare encoder, then spaCy `nlp.pipe`, on the same "
        "paragraphs, each alone on every core, with no database, no model loading and nothing "
        "written. `tag` can beat it because it runs linking beside the encoder, which keeps "
        "both cores busier than either library manages alone.",
    ]
    lines += [
        "",
        "## NLP stages beside their raw libraries",
        "",
        "| corpus | classification paragraphs/s | bare encoder | ratio | entities words/s | "
        "spaCy nlp.pipe | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        if (c := run.get("classification")) and (e := run.get("entities")):
            lines.append(
                f"| {run['corpus']} | {c['narratives_paragraphs_per_s']} | "
                f"{c['encoder_paragraphs_per_s']} | **{c['ratio']:.0%}** | "
                f"{e['narratives_words_per_s']:,} | {e['spacy_words_per_s']:,} | "
                f"**{e['ratio']:.0%}** |"
            )
    lines += [
        "",
        "## Loading JSONL (no NLP) and extraction",
        "",
        "| corpus | ingest articles/s | json + sqlite-utils | ratio | extraction pages/s | "
        "trafilatura.extract | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        load, ext = run["load"], run.get("extraction")
        extraction = (
            f"{ext['narratives_pages_per_s']} | {ext['trafilatura_pages_per_s']} | "
            f"{ext['ratio']:.0%}"
            if ext
            else "– | – | –"
        )
        lines.append(
            f"| {run['corpus']} | **{load['narratives_articles_per_s']:,}** | "
            f"{load['sqlite_utils_articles_per_s']:,} | {load['ratio']:.0%} | {extraction} |"
        )
    lines += [
        "",
        "## `narratives index` as the corpus grows",
        "",
        "| tagged articles | first build s | re-run s | µs per article |",
        "|---:|---:|---:|---:|",
    ]
    for row in results["index"]:
        per = row["first_s"] / row["articles"] * 1e6
        lines.append(f"| {row['articles']:,} | {row['first_s']} | {row['rerun_s']} | {per:.0f} |")
    lines += ["", *targets(results), ""]
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    """Each target of the performance issue beside what this run measured."""
    runs = [r for r in results["runs"] if r.get("end_to_end")]
    generated = [r for r in runs if r["corpus"].startswith("generated")]
    big = max(generated or runs, key=lambda r: r["shape"]["articles"], default=None)
    loads = [r["load"] for r in results["runs"] if r["shape"]["articles"] >= 2000]
    index = results["index"]
    rows = []
    if big:
        e = big["end_to_end"]
        rows.append(
            (
                f"end-to-end ingest + tag, {big['corpus']}",
                "≥ 8 articles/s",
                f"{e['articles_per_s']} articles/s (raw libraries one after the other: "
                f"{big['raw_ceiling_articles_per_s']})",
                e["articles_per_s"] >= 8,
            )
        )
        for stage in ("classification", "entities"):
            low = min(runs, key=lambda r: r[stage]["ratio"])
            rows.append(
                (
                    f"{stage} vs its raw library, every corpus",
                    "≥ 85%",
                    f"{big[stage]['ratio']:.0%} on {big['corpus']}; lowest "
                    f"{low[stage]['ratio']:.0%} ({low['corpus']})",
                    low[stage]["ratio"] >= 0.85,
                )
            )
        peak = max(r["end_to_end"]["peak_pss_mb"] for r in runs)
        rows.append(
            (
                "peak memory of `tag` (PSS, whole process tree)",
                "≤ 2.5 GB",
                f"{peak / 1024:.2f} GB",
                peak <= 2560,
            )
        )
    if loads:
        slowest = min(x["narratives_articles_per_s"] for x in loads)
        rows.append(
            (
                "loading JSONL, no NLP (N ≥ 2,000)",
                "≥ 1,000 articles/s",
                f"{slowest:,} articles/s (slowest N)",
                slowest >= 1000,
            )
        )
    largest = max(index, key=lambda r: r["articles"])
    rows.append(
        (
            f"`index` over {largest['articles']:,} tagged articles",
            "≤ 5 s",
            f"{largest['first_s']} s",
            largest["first_s"] <= 5,
        )
    )
    per = [r["first_s"] / r["articles"] for r in sorted(index, key=lambda r: r["articles"])]
    linear = all(b <= a * 1.1 for a, b in itertools.pairwise(per))
    growth = "time per article falls as N grows" if linear else "time per article rises"
    rows.append(("`index` time vs N", "no faster than linear", growth, linear))
    out = ["## Targets", "", "| target | asked | measured | met |", "|---|---|---|---|"]
    out += [f"| {t} | {a} | {m} | {'yes' if ok else '**no**'} |" for t, a, m, ok in rows]
    return out


if __name__ == "__main__":
    sys.exit(main())

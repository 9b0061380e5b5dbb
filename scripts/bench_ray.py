"""`narratives tag` on the local engine beside the Ray engine, on fresh copies of one corpus.

    python scripts/bench_ray.py [--articles 1024] [--rounds 3] [--out docs/bench_ray.json]

Builds a corpus of N articles from corpus/sample/articles.jsonl (the 214 sample articles
repeated, each copy with its own URL, title and a one-phrase edit so none is a duplicate), then
tags fresh copies of it with:

  local       the local engine as `narratives tag` runs it (`tag_and_link`): entity linking in
              its own process beside the encoder, which takes every core once linking is done
  ray_2x1     the Ray engine, a local Ray instance, 2 actors x 1 torch thread
  ray_1x2     the Ray engine, 1 actor x 2 torch threads

each in its own process, timed end to end (model loading and Ray start-up included, as a user
sees it), in rounds that alternate the configurations; medians are reported. The local and Ray
2x1 engines also run on N/2 articles in each round: the difference is the marginal time of N/2
articles with start-up cancelled out, which is what a backfill of millions pays. Each run also
counts the CPU time of the stages' work (the Ray actors' on their chunks; the local process's
and its linking process's, model loading aside), which other jobs on a shared machine disturb
far less than wall time. The cost per million articles comes from both. The rows of every Ray
copy are compared with the local copy's (timestamps aside).

N is a multiple of 4 x tag.CHUNK (512), so the 2 actors get equal shares in both runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
KB = ROOT / "corpus" / "sample" / "kb.toml"
MODEL = ROOT / "models" / "themes"
CONFIGS = {"local": None, "ray_2x1": (2, 1), "ray_1x2": (1, 2)}
# The price assumption for the cost estimate: an on-demand 16-vCPU x86 VM with AMX (AWS
# c7i.4xlarge, us-east-1, Linux) at its list price when this was written. Change it here.
VM = {
    "name": "AWS c7i.4xlarge (16 vCPU, on-demand, us-east-1)",
    "vcpus": 16,
    "usd_per_hour": 0.714,
}
TYPICAL_WORDS = 700  # a wire story, for the scaled estimate


def build_corpus(n: int, db: Path) -> dict[str, float]:
    """N distinct articles made from the sample: the size and shape of the corpus."""
    from narratives.ingest import ingest

    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    rows = []
    for i in range(n):
        record, copy = dict(records[i % len(records)]), i // len(records)
        if copy:
            record["id"] = f"{record['id']}~{copy}"
            record["url"] = f"{record['url'].rstrip('/')}-copy-{copy}"
            record["title"] = f"{record['title']} (edition {copy + 1})"
            record["text"] = f"{record['text']} (Edition {copy + 1}.)"
        rows.append(record)
    source = db.with_suffix(".jsonl")
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ingest(db, [str(source)], progress=False)
    with sqlite3.connect(db) as conn:
        articles, words = conn.execute("SELECT count(*), sum(word_count) FROM articles").fetchone()
        paragraphs = conn.execute("SELECT count(*) FROM paragraphs").fetchone()[0]
    if articles != n:
        raise SystemExit(f"built {articles} articles, not {n}: some were taken as duplicates")
    return {"articles": articles, "paragraphs": paragraphs, "words": words}


def copy_db(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def run_one(config: str, db: Path) -> dict[str, object]:
    """One engine on one corpus copy, in this (fresh) process; timed from before model loading."""
    from narratives.store import Corpus

    started = time.monotonic()
    if CONFIGS[config] is None:
        from narratives.classifier import ThemeModel
        from narratives.mentions import LinkerSpec
        from narratives.tag import tag_and_link

        loading = []

        def load_model() -> ThemeModel:
            cpu = cpu_time()
            model = ThemeModel.load(MODEL)
            loading.append(cpu_time() - cpu)
            return model

        # What `narratives tag` runs: linking in its own process beside the encoder. CPU counts
        # this process's threads and the linking process's (joined at the end), less the theme
        # model's loading, as the Ray engine counts only its actors' work on chunks.
        cpu = cpu_time()
        local = tag_and_link(
            db,
            load_model=load_model,
            linker=LinkerSpec((KB,), None, None),
            workers=os.cpu_count() or 1,
            progress=False,
        )
        themes, entities = local.themes, local.entities
        assert themes is not None and entities is not None
        extra: dict[str, object] = {
            "work_cpu_seconds": round(cpu_time() - cpu - sum(loading), 2),
            "themes_seconds": round(themes.seconds, 2),
            "entities_seconds": round(entities.seconds, 2),
        }
    else:
        with Corpus(db) as corpus:
            from narratives.engine_ray import tag_ray

            actors, threads = CONFIGS[config]
            driver = resource.getrusage(resource.RUSAGE_SELF)
            run = tag_ray(
                corpus,
                model_dir=MODEL,
                kb_files=[KB],
                built_kb=None,
                actors=actors,
                threads=threads,
                precision=None,
                progress=False,
            )
            themes, entities = run.themes, run.entities
            after = resource.getrusage(resource.RUSAGE_SELF)
            driver_cpu = after.ru_utime + after.ru_stime - driver.ru_utime - driver.ru_stime
            extra = {
                "work_cpu_seconds": round(run.worker_cpu_seconds, 2),
                # Everything the driver did: Ray's client side, reading, pickling, writing.
                "driver_cpu_seconds": round(driver_cpu, 2),
                "actors": run.actors,
                "threads": run.threads,
                "chunks": run.chunks,
                "precision": run.precision,
            }
    seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 2),
        "articles": themes.articles,
        "linked": entities.articles,
        "paragraphs": themes.paragraphs,
        "mentions": entities.mentions,
        **extra,
    }


def cpu_time() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(config: str, db: Path) -> dict[str, object]:
    before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--run-one", config, "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["load_before"] = round(before, 2)
    result["load_after"] = round(os.getloadavg()[0], 2)
    result["articles_per_second"] = round(result["articles"] / result["seconds"], 2)
    result["work_cpu_seconds_per_article"] = round(
        result["work_cpu_seconds"] / result["articles"], 4
    )
    print(f"  {config:<8} {db.name:<16} {json.dumps(result)}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_ray.json")
    parser.add_argument("--run-one", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        print(json.dumps(run_one(args.run_one, args.db)))
        return 0

    from narratives.tag import CHUNK, result_rows

    n, half = args.articles, args.articles // 2
    if n % (4 * CHUNK):  # both runs: an even number of whole chunks, so 2 actors share alike
        raise SystemExit(f"--articles should be a multiple of {4 * CHUNK}")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        print(f"building corpora of {n} and {half} articles", flush=True)
        corpus = build_corpus(n, work / "full.db")
        build_corpus(half, work / "half.db")
        halves = ("local", "ray_2x1")  # also run on N/2 articles, for their marginal rates
        runs: dict[str, list[dict[str, object]]] = {
            c: [] for c in [*CONFIGS, *(f"{h}_half" for h in halves)]
        }
        identical = {c: True for c in CONFIGS if c != "local"}
        for round_ in range(args.rounds):  # configurations alternate, so noise hits all alike
            print(f"round {round_ + 1} of {args.rounds}", flush=True)
            for config in CONFIGS:
                runs[config].append(timed(config, copy_db(work / "full.db", work / f"{config}.db")))
            for config in halves:
                half_db = copy_db(work / "half.db", work / f"{config}_half.db")
                runs[f"{config}_half"].append(timed(config, half_db))
            local_rows = result_rows(work / "local.db")
            for config in identical:
                identical[config] &= result_rows(work / f"{config}.db") == local_rows
    # Medians over the rounds; a marginal rate pairs a round's full and half runs of one engine.
    # Start-up is what is left of an end-to-end time.
    median = statistics.median
    seconds = {c: median(r["seconds"] for r in runs[c]) for c in runs}
    cpu_per_article = {
        c: median(r["work_cpu_seconds_per_article"] for r in runs[c]) for c in CONFIGS
    }

    def marginal(config: str) -> float:
        pairs = zip(runs[config], runs[f"{config}_half"], strict=True)
        return median((n - half) / (full["seconds"] - part["seconds"]) for full, part in pairs)

    local_rate, ray_rate = marginal("local"), marginal("ray_2x1")
    local, ray_2x1, ray_1x2 = (seconds[c] for c in CONFIGS)
    local_fixed, ray_fixed = local - n / local_rate, ray_2x1 - n / ray_rate
    break_even = None
    if ray_rate > local_rate:
        break_even = round((ray_fixed - local_fixed) / (1 / local_rate - 1 / ray_rate))
    per_core_wall = ray_rate / 2  # 2 actors x 1 core
    per_core_cpu = 1 / cpu_per_article["ray_2x1"]
    price_per_core_hour = VM["usd_per_hour"] / VM["vcpus"]
    words_per_article = corpus["words"] / corpus["articles"]
    scale = TYPICAL_WORDS / words_per_article
    driver_cpu = median(r["driver_cpu_seconds"] for r in runs["ray_2x1"]) / n

    def cost(per_core: float) -> dict[str, float]:
        core_hours = 1e6 / per_core / 3600
        return {
            "articles_per_second_per_core": round(per_core, 2),
            "core_hours_per_million": round(core_hours, 1),
            "vm_hours_per_million": round(core_hours / VM["vcpus"], 2),
            "usd_per_million": round(core_hours * price_per_core_hour, 2),
            f"usd_per_million_at_{TYPICAL_WORDS}_words": round(
                core_hours * scale * price_per_core_hour, 2
            ),
        }

    report = {
        "corpus": {
            "source": "corpus/sample/articles.jsonl repeated, with distinct URLs, titles, texts",
            **corpus,
            "words_per_article": round(words_per_article, 1),
            "paragraphs_per_article": round(corpus["paragraphs"] / corpus["articles"], 2),
        },
        "rounds": args.rounds,
        "median": {
            c: {
                "seconds": seconds[c],
                "articles_per_second": round(n / seconds[c], 2),
                "work_cpu_seconds_per_article": cpu_per_article[c],
            }
            for c in CONFIGS
        },
        "speedup_vs_local": {
            "ray_2x1": round(local / ray_2x1, 3),
            "ray_1x2": round(local / ray_1x2, 3),
        },
        "identical_rows_to_local": identical,
        "steady_state": {
            "local_articles_per_second": round(local_rate, 2),
            "ray_2x1_articles_per_second": round(ray_rate, 2),
            "ray_2x1_vs_local": round(ray_rate / local_rate, 3),
            "local_startup_seconds": round(local_fixed, 1),
            "ray_2x1_startup_seconds": round(ray_fixed, 1),
            "break_even_articles": break_even,
            "ray_driver_cpu_seconds_per_article": round(driver_cpu, 4),
        },
        "cost_per_million_articles": {
            "assumption": VM,
            "usd_per_core_hour": round(price_per_core_hour, 5),
            "from_worker_cpu_time": cost(per_core_cpu),
            "from_wall_clock": {
                "method": f"ray_2x1 on {n} minus on {half} articles: start-up cancels",
                **cost(per_core_wall),
            },
            "note": "one vCPU runs one actor with 1 thread; CPU time counts the actors' work "
            "on chunks only, wall clock counts everything on this shared machine; the "
            f"{TYPICAL_WORDS}-word figure assumes cost grows with text length",
        },
        "runs": runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; shared with other jobs (see load_before/after)",
        "command": f"python scripts/bench_ray.py --articles {n} --rounds {args.rounds}",
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0 if all(identical.values()) and not math.isnan(per_core_wall) else 1


if __name__ == "__main__":
    sys.exit(main())

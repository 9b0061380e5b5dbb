"""How `narratives index` grows with the corpus: first build and incremental refresh.

    python scripts/bench_index.py [--sizes 1000 10000 100000] [--out docs/bench_index]

Each corpus holds N articles from 8 publishers spread over 3 years, each scored for the 5
default themes, written as `ingest` + `tag` would leave them (no model runs: this measures the
index, not the classifier). For each N: the first `build_index` (all of D, W, M, with a
smoothed series), a second run with nothing new, and a run after one more day of news (0.1% of
N articles) — the daily case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from narratives.index import build_index
from narratives.store import Corpus
from narratives.tag import TAG_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
THEMES = ("rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash", "ai_bubble")
PUBLISHERS = tuple(f"Publisher {n}" for n in range(8))


def fill(corpus: Corpus, first: int, n: int, days: pd.DatetimeIndex, tagged_at: str, seed: int):
    rng = np.random.default_rng(seed)
    ids = range(first, first + n)
    when = days[rng.integers(0, len(days), n)] + pd.to_timedelta(rng.integers(0, 86400, n), "s")
    publisher = rng.integers(0, len(PUBLISHERS), n)
    scores = rng.beta(0.6, 3, (n, len(THEMES)))
    with corpus.transaction():
        corpus.db.conn.executemany(
            "INSERT INTO articles (id, title, text, published, date_source, fetched_at, "
            "updated_at, content_hash, title_hash, word_count, obtained, source, publisher) "
            "VALUES (?, 't', 'x', ?, 'bench', '', '', ?, '', 1, 'file', 'bench', ?)",
            [
                (i, w.strftime("%Y-%m-%dT%H:%M:%SZ"), f"h{i}", PUBLISHERS[p])
                for i, w, p in zip(ids, when, publisher, strict=True)
            ],
        )
        corpus.db.conn.executemany(
            "INSERT INTO tagged (article_id, content_hash, model, tagged_at) VALUES (?, ?, 'm', ?)",
            [(i, f"h{i}", tagged_at) for i in ids],
        )
        corpus.db.conn.executemany(
            "INSERT INTO article_themes (article_id, theme, score, carries, paragraphs_over, "
            "paragraphs) VALUES (?, ?, ?, ?, 1, 10)",
            [
                (i, theme, float(s), int(s >= 0.5))
                for i, row in zip(ids, scores, strict=True)
                for theme, s in zip(THEMES, row, strict=True)
            ],
        )


def timed(corpus: Corpus) -> float:
    started = time.perf_counter()
    build_index(corpus, half_life=4)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_index")
    args = parser.parse_args()
    days = pd.date_range("2022-01-01", "2024-12-31", freq="D")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            corpus = Corpus(Path(tmp) / f"bench_{n}.db")
            corpus.apply_schema(TAG_SCHEMA)
            fill(corpus, 1, n, days, "2025-01-01T00:00:00Z", seed=n)
            first = timed(corpus)
            nothing = timed(corpus)
            fill(corpus, n + 1, max(1, n // 1000), days[-1:], "2025-01-02T00:00:00Z", seed=n + 1)
            one_day = timed(corpus)
            rows.append(
                {"articles": n, "first_build_s": round(first, 3), "rerun_nothing_new_s":
                 round(nothing, 3), "after_one_day_s": round(one_day, 3)}
            )  # fmt: skip
            print(rows[-1], flush=True)
    result = {
        "rows": rows,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "themes": len(THEMES),
        "publishers": len(PUBLISHERS),
        "days": len(days),
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    base = rows[0]
    md = [
        "# Narrative index build time",
        "",
        f"`python scripts/bench_index.py`: N tagged articles, {len(PUBLISHERS)} publishers, "
        f"{len(days):,} days, {len(THEMES)} themes; D, W and M built with a smoothed series; "
        f"{result['machine']}.",
        "",
        "| articles | first build (s) | re-run, nothing new (s) | after one more day (s) | "
        "first build per 1,000 articles (s) |",
        "|---:|---:|---:|---:|---:|",
        *[
            f"| {r['articles']:,} | {r['first_build_s']:.2f} | {r['rerun_nothing_new_s']:.2f} | "
            f"{r['after_one_day_s']:.2f} | {1000 * r['first_build_s'] / r['articles']:.3f} |"
            for r in rows
        ],
        "",
        f"From {base['articles']:,} to {rows[-1]['articles']:,} articles the first build grows "
        f"{rows[-1]['first_build_s'] / base['first_build_s']:.1f}× for "
        f"{rows[-1]['articles'] / base['articles']:.0f}× the articles.",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

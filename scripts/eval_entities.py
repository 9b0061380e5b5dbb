"""Entity linking quality: ticker recall on publisher-linked news, precision on our gold set.

Recall: ../shared/data/news articles (non-held-out only) whose publisher tied a name to a
ticker (`links`). IBD writes "Name (TICK)"; Barron's names the company only. A link counts as
found when a mention covers exactly its span and its entity lists the linked ticker.

Precision: corpus/entities_gold/articles.toml, articles we wrote and annotated by hand. A
predicted mention counts as right when a gold mention overlaps it with the same ticker (tickers)
or the same person (people).

    python scripts/eval_entities.py                 # writes docs/eval_entities.{json,md}
    python scripts/eval_entities.py --ibd-articles 300 --no-built-kb
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from narratives.entities import EntityLinker, split_paragraphs  # noqa: E402
from narratives.entity_eval import read_gold, score_gold  # noqa: E402
from narratives.kb import (  # noqa: E402
    build_kb,
    load_kb,
    read_listings,
    ticker_key,
    write_kb_jsonl,
)

SHARED = ROOT.parent / "shared" / "data"
GOLD = ROOT / "corpus" / "entities_gold" / "articles.toml"
CACHE = ROOT / ".cache"
TARGETS = {"ibd": 0.97, "barrons": 0.85, "ticker_precision": 0.95, "person_precision": 0.90}


def build_shared_kb() -> Path:
    """The KB `narratives kb build` makes from the shared listing files (cached)."""
    out = CACHE / "kb_shared.jsonl"
    files = sorted((SHARED / "tickers").glob("*"))
    if out.exists() and all(out.stat().st_mtime > f.stat().st_mtime for f in files):
        return out
    listings = []
    for f in files:
        listings.extend(read_listings(f.read_bytes(), source=str(f)))
    write_kb_jsonl(build_kb(listings), out)
    return out


def linked_articles(pattern: str, limit: int | None, seed: int = 7) -> list[dict]:
    rows = []
    for path in sorted((SHARED / "news").glob(pattern)):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                article = json.loads(line)
                if not article.get("heldout") and article.get("links"):
                    rows.append(article)
    if limit and len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)
    return rows


def link(linker: EntityLinker, articles: list[dict]) -> list[list[tuple[int, int, set[str]]]]:
    """Per article: (start, end, tickers of the entity) with offsets into the article text."""
    split = [split_paragraphs(a["text"]) for a in articles]
    keyed = [(a["id"], [p for _, p in ps]) for a, ps in zip(articles, split, strict=True)]
    out = []
    for paragraphs, mentions in zip(split, linker.link_articles(keyed), strict=True):
        spans = []
        for m in mentions:
            entity = linker.kb.get(m.entity_id)
            tickers = {ticker_key(t) for t in entity.tickers} if entity else set()
            if m.ticker:
                tickers.add(ticker_key(m.ticker))
            offset = paragraphs[m.paragraph][0]
            spans.append((m.start + offset, m.end + offset, tickers))
        out.append(spans)
    return out


def recall(linker: EntityLinker, articles: list[dict]) -> dict:
    found = overlap = total = 0
    missed: Counter[str] = Counter()
    words = sum(len(a["text"].split()) for a in articles)
    started = time.perf_counter()
    predictions = link(linker, articles)
    seconds = time.perf_counter() - started
    for article, spans in zip(articles, predictions, strict=True):
        for gold in article["links"]:
            total += 1
            key = ticker_key(gold["ticker"])
            exact = any(s == gold["start"] and e == gold["end"] and key in t for s, e, t in spans)
            near = any(s < gold["end"] and gold["start"] < e and key in t for s, e, t in spans)
            found += exact
            overlap += near
            if not exact:
                missed[gold["ticker"]] += 1  # tickers only: no publisher text in docs/
    return {
        "articles": len(articles),
        "links": total,
        "recall": round(found / max(1, total), 4),
        "recall_overlapping_span": round(overlap / max(1, total), 4),
        "words_per_second": round(words / seconds),
        "most_missed_tickers": missed.most_common(25),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ibd-articles", type=int, default=400, help="IBD articles sampled")
    parser.add_argument("--no-built-kb", action="store_true", help="Core KB only.")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval_entities.json")
    args = parser.parse_args()
    results: dict = {"targets": TARGETS}
    nlp = None
    if SHARED.exists():
        built = None if args.no_built_kb else build_shared_kb()
        linker = EntityLinker(load_kb(built=built))
        nlp = linker.nlp
        results["kb_entities"] = len(linker.kb)
        for style, pattern, limit in (
            ("ibd", "ibd_*.jsonl", args.ibd_articles),
            ("barrons", "barrons_*.jsonl", None),
        ):
            r = results[style] = recall(linker, linked_articles(pattern, limit))
            print(
                f"{style:8} recall {r['recall']:.3f} (target {TARGETS[style]}), overlapping "
                f"{r['recall_overlapping_span']:.3f}, {r['links']} links in {r['articles']} "
                f"articles, {r['words_per_second']} words/s"
            )
    else:
        print(f"{SHARED} is absent: recall on publisher links skipped", file=sys.stderr)
    if GOLD.exists():
        core = EntityLinker(load_kb(built=None), nlp=nlp)
        g = results["gold"] = score_gold(core, read_gold(GOLD))
        for kind in ("ticker", "person", "index", "commodity"):
            print(
                f"gold {kind:9} precision {g[kind]['precision']:.3f} "
                f"({g[kind]['correct']}/{g[kind]['predicted']}), recall {g[kind]['recall']:.3f} "
                f"of {g[kind]['gold']} gold mentions"
            )
    if SHARED.exists() and GOLD.exists():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

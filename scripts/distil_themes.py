"""A teacher model's soft scores on unlabelled real paragraphs, for a student to learn from.

    python scripts/distil_themes.py TEACHER_DIR --pool 6000 --out .cache/distil/pool.jsonl
    python scripts/train_themes.py --soft .cache/distil/pool.jsonl --out STUDENT_DIR

The pool is drawn at random (seeded) from paragraphs of non-held-out articles of
../shared/data/news whose article falls on the *train* side of src/narratives/real_labels.py, so
neither the validation nor the test side leaks into the student through its teacher. Paragraphs
under 12 words (none of the labelled ones is shorter), labelled paragraphs and verbatim repeats
are left out. Each output line is {"article_id", "title", "published", "text", "soft": {theme:
probability}}; the run resumes from the lines already written.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from narratives.classifier import ThemeModel
from narratives.encoder import Passage, set_threads
from narratives.real_labels import article_side
from narratives.text import content_hash

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
MIN_WORDS = 12


def labelled_texts() -> set[str]:
    """Hashes of every labelled paragraph text (they are not unlabelled)."""
    hashes = set()
    for path in sorted((SHARED / "labels").glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            hashes.add(content_hash(json.loads(line)["text"].strip()))
    return hashes


def pool(size: int, seed: int) -> list[dict]:
    skip = labelled_texts()
    seen: set[str] = set()
    candidates = []
    for path in sorted((SHARED / "news").glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            article = json.loads(line)
            if article.get("heldout") or article_side(article["id"]) != "train":
                continue
            for text in article["text"].split("\n\n"):
                text = text.strip()
                key = content_hash(text)
                if len(text.split()) < MIN_WORDS or key in skip or key in seen:
                    continue
                seen.add(key)
                candidates.append(
                    {
                        "article_id": article["id"],
                        "title": article.get("title"),
                        "published": article.get("published"),
                        "text": text,
                    }
                )
    print(f"{len(candidates)} candidate paragraphs", file=sys.stderr)
    return random.Random(seed).sample(candidates, min(size, len(candidates)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("--pool", type=int, default=6000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--batch", type=int, default=256, help="paragraphs scored per write")
    args = parser.parse_args(argv)
    set_threads()
    chosen = pool(args.pool, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = sum(1 for _ in args.out.open()) if args.out.is_file() else 0
    model = ThemeModel.load(args.teacher)
    started = time.monotonic()
    with args.out.open("a", encoding="utf-8") as out:
        for start in range(done, len(chosen), args.batch):
            batch = chosen[start : start + args.batch]
            passages = [Passage(r["text"], r["title"], r["published"]) for r in batch]
            for record, row in zip(batch, model.predict(passages), strict=True):
                soft = {t: round(float(p), 4) for t, p in zip(model.theme_ids, row, strict=True)}
                out.write(json.dumps({**record, "soft": soft}) + "\n")
            out.flush()
            rate = (start + len(batch) - done) / (time.monotonic() - started)
            print(f"{start + len(batch)}/{len(chosen)} ({rate:.1f}/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

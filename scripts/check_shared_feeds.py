"""Ingest every real feed file under ../shared/data/feeds and report entries stored per file.

    python scripts/check_shared_feeds.py [FEEDS_DIR] [--json OUT]

Each file goes into its own fresh corpus, so the counts are per file. Exits non-zero when a file
crashes the ingester or stores fewer articles than it has distinct entries.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from narratives.feeds import parse_feed
from narratives.ingest import ingest

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "feeds"


def check(feeds_dir: Path) -> list[dict[str, object]]:
    files = sorted(
        p
        for p in feeds_dir.rglob("*")
        if p.is_file() and p.suffix in (".xml", ".rss", ".atom") and "expected" not in p.parts
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, path in enumerate(files):
            entries = parse_feed(path.read_bytes()).entries
            distinct = len({e.link or e.guid or e.title for e in entries})
            started = time.monotonic()
            try:
                summary = ingest(Path(tmp) / f"{number}.db", [str(path)], progress=False)
                error = None
            except Exception as exc:  # the point of this script is to catch any crash
                summary, error = None, f"{type(exc).__name__}: {exc}"
            rows.append(
                {
                    "file": str(path.relative_to(feeds_dir)),
                    "entries": len(entries),
                    "distinct": distinct,
                    "stored": summary.new if summary else 0,
                    "duplicates": summary.duplicates if summary else 0,
                    "failed": summary.total_failed if summary else None,
                    "seconds": round(time.monotonic() - started, 2),
                    "crash": error,
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("feeds_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    if not args.feeds_dir.is_dir():
        print(f"no feeds at {args.feeds_dir} (../shared/data is not here)", file=sys.stderr)
        return 2
    rows = check(args.feeds_dir)
    print(f"{'file':<52} {'entries':>7} {'stored':>6} {'dups':>5} {'failed':>6} {'secs':>5}")
    for r in rows:
        print(
            f"{r['file']:<52} {r['entries']:>7} {r['stored']:>6} {r['duplicates']:>5} "
            f"{r['failed'] if r['failed'] is not None else 'CRASH':>6} {r['seconds']:>5}"
        )
    total = sum(int(r["stored"]) for r in rows)
    crashes = [r for r in rows if r["crash"]]
    short = [r for r in rows if int(r["stored"]) + int(r["duplicates"]) < int(r["distinct"])]
    print(f"\n{len(rows)} files, {total} articles stored, {len(crashes)} crashes")
    for r in crashes + short:
        print(f"PROBLEM {r['file']}: {r['crash'] or 'stored fewer than distinct entries'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if crashes or short else 0


if __name__ == "__main__":
    sys.exit(main())

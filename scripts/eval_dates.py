"""Check extracted publishing dates, titles and authors on publishers' pages with known answers.

Usage: eval_dates.py [DIR] [--json OUT] [--min-share 0.9]

DIR (default ../shared/data/html/publisher-pages relative to the project root) holds
`<country>/<Publisher>_<YYYY_MM_DD>.html.gz` pages, `<country>/<Publisher>.json` with the expected
fields under keys `V1`, `V1_1`, `V2`, … and `<country>/meta.info` mapping each file to its URL.

Which JSON entry belongs to which file is not written down. The keys are test-case versions added
over time, and the files are named by crawl date, so JSON order follows file-name order; the script
checks that against the pages themselves: an entry whose expected title occurs in exactly one
not-yet-matched page is paired with that page, and only the rest are paired in order. Each row
records which way it was paired.

A date matches when the extracted timestamp and the expected one fall on the same UTC day.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narratives.dates import parse_date
from narratives.errors import DateError, ExtractionError
from narratives.extract import decode_html, extract_page

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "html" / "publisher-pages"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Case:
    page: Path
    url: str | None
    expected: dict[str, Any]
    paired_by: str  # "title" or "order"


def comparable(text: str | None) -> str:
    """Lower-case words only, so quotes, dashes and spacing do not decide a match."""
    return " ".join(_WORD.findall(html.unescape(text or "").lower()))


def load_cases(directory: Path) -> list[Case]:
    """Every page with its expected fields, paired as the module docstring explains."""
    if not directory.is_dir() or not any(directory.glob("*/meta.info")):
        raise FileNotFoundError(
            f"no publisher pages at {directory} (expected <country>/meta.info, "
            "<country>/<Publisher>.json and pages); pass their directory as the first argument"
        )
    cases = []
    for meta_path in sorted(directory.glob("*/meta.info")):
        country = meta_path.parent
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for expected_path in sorted(country.glob("*.json")):
            publisher = expected_path.stem
            entries = list(json.loads(expected_path.read_text(encoding="utf-8")).values())
            pages = sorted(country.glob(f"{publisher}_*.html.gz"))
            for page, entry, paired_by in _pair(entries, pages):
                url = meta.get(page.name, {}).get("url")
                cases.append(Case(page, url, entry, paired_by))
    return cases


def _pair(
    entries: list[dict[str, Any]], pages: list[Path]
) -> Iterator[tuple[Path, dict[str, Any], str]]:
    page_words = {
        page: comparable(decode_html(gzip.decompress(page.read_bytes()))) for page in pages
    }
    by_title: dict[int, Path] = {}
    for index, entry in enumerate(entries):
        title = comparable(entry.get("title"))
        found = [p for p in pages if title and title in page_words[p]]
        if len(found) == 1 and found[0] not in by_title.values():
            by_title[index] = found[0]
    free_pages = iter(p for p in pages if p not in by_title.values())
    for index, entry in enumerate(entries):
        if index in by_title:
            yield by_title[index], entry, "title"
        else:
            page = next(free_pages, None)
            if page is not None:
                yield page, entry, "order"


def _authors_match(expected: list[str], found: str | None) -> bool:
    names = {comparable(name) for name in (found or "").split(";") if name.strip()}
    return names == {comparable(name) for name in expected}


def check_case(case: Case) -> dict[str, Any]:
    expected = case.expected
    row: dict[str, Any] = {
        "page": f"{case.page.parent.name}/{case.page.name}",
        "url": case.url,
        "paired_by": case.paired_by,
        "expected_date": expected.get("publishing_date"),
        "expected_title": expected.get("title"),
    }
    try:
        expected_day = parse_date(expected.get("publishing_date")).date().isoformat()
    except DateError:
        expected_day = None
    row["expected_day"] = expected_day
    try:
        page = extract_page(gzip.decompress(case.page.read_bytes()), url=case.url)
    except ExtractionError as exc:
        row.update(error=str(exc), date_ok=False, title_ok=False, authors_ok=False)
        return row
    found_day = page.published.date().isoformat() if page.published else None
    row.update(
        published_raw=page.published_raw,
        found_day=found_day,
        date_ok=expected_day is not None and found_day == expected_day,
        title=page.title,
        title_ok=comparable(page.title) == comparable(expected.get("title")),
        author=page.author,
        expected_authors=expected.get("authors", []),
        authors_ok=_authors_match(expected.get("authors", []), page.author),
    )
    return row


def evaluate(directory: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Extract every page; return the share of matching days, titles and authors, and each row."""
    rows = [check_case(case) for case in load_cases(directory)]
    total = len(rows)

    def share(key: str) -> float:
        return sum(row[key] for row in rows) / total if total else 0.0

    return {
        "directory": str(directory),
        "pages": total,
        "paired_by_title": sum(row["paired_by"] == "title" for row in rows),
        "date_share": share("date_ok"),
        "title_share": share("title_ok"),
        "authors_share": share("authors_ok"),
        "rows": rows,
    }


def format_report(results: dict[str, Any]) -> str:
    lines = [
        f"{results['pages']} pages from {results['directory']} "
        f"({results['paired_by_title']} paired by title, the rest by order)",
        f"published day (UTC) matches: {results['date_share']:.3f}",
        f"title matches:                {results['title_share']:.3f}",
        f"authors match:                {results['authors_share']:.3f}",
    ]
    misses = [row for row in results["rows"] if not row["date_ok"]]
    if misses:
        lines.append("date misses:")
        for row in misses:
            found = row.get("error") or f"found {row.get('published_raw')!r}"
            lines.append(f"  {row['page']}: expected {row['expected_date']!r}, {found}")
    title_misses = [row for row in results["rows"] if not row["title_ok"]]
    if title_misses:
        lines.append("title misses:")
        for row in title_misses:
            lines.append(f"  {row['page']}: expected {row['expected_title']!r}")
            lines.append(f"  {'':{len(row['page'])}}  found    {row.get('title')!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python scripts/eval_dates.py --min-share 0.9",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--json", type=Path, metavar="OUT", help="write all results here")
    parser.add_argument(
        "--min-share", type=float, help="fail unless this share of pages get the right day"
    )
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.directory)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    if args.min_share is not None and results["date_share"] < args.min_share:
        print(
            f"FAIL: date share {results['date_share']:.3f} is below {args.min_share}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

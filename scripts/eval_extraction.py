"""Score article-body extraction on the article-extraction benchmark, ours beside plain trafilatura.

Usage: eval_extraction.py [DIR] [--json OUT] [--min-f1 0.95]

DIR holds `html/<sha256>.html.gz` and `ground-truth.json` (`{sha256: {articleBody, url}}`);
the default is ../shared/data/html/extraction-benchmark relative to the project root.

Two metrics, both following the benchmark's own evaluate.py: per page, the multiset overlap of
units between prediction and truth gives tp/fp/fn, normalised to sum to 1 so long pages do not
weigh more; precision is averaged over pages with any predicted unit, recall over pages with any
true unit, and F1 is taken from the two averages. The units are single `\\w+` tokens (case kept)
for the token metric and runs of four tokens for the benchmark's shingle metric. A page that fails
to extract counts as an empty prediction.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trafilatura

from narratives.errors import ExtractionError
from narratives.extract import extract_page

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "html" / "extraction-benchmark"
_TOKEN = re.compile(r"\w+")

Counts = tuple[float, float, float]


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text or "")


def overlap_counts(truth: str, prediction: str, n: int = 1) -> Counts:
    """Normalised (tp, fp, fn) of the `n`-token runs of `prediction` against `truth`."""
    true_units = _units(tokenize(truth), n)
    pred_units = _units(tokenize(prediction), n)
    tp = sum((true_units & pred_units).values())
    fp = sum((pred_units - true_units).values())
    fn = sum((true_units - pred_units).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _units(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    # The benchmark counts a text shorter than n tokens as one short unit, not as nothing.
    return Counter(
        tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n]
    )


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def summarise(counts: list[Counts]) -> dict[str, float]:
    """Benchmark-style precision, recall and F1 over pages from their normalised counts."""
    precisions = [_precision(*c) for c in counts if c[0] + c[1] > 0]
    recalls = [_recall(*c) for c in counts if c[0] + c[2] > 0]
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _ours(html: bytes, url: str | None) -> str:
    return extract_page(html, url=url).text


def _plain_trafilatura(html: bytes, url: str | None) -> str:
    # The benchmark's pages are UTF-8; default options, as a user calling trafilatura would.
    return trafilatura.extract(html.decode("utf-8")) or ""


METHODS: dict[str, Callable[[bytes, str | None], str]] = {
    "narratives": _ours,
    "trafilatura": _plain_trafilatura,
}


def load_benchmark(directory: Path) -> list[tuple[str, str | None, str, bytes]]:
    """(page id, url, true body, page bytes) for every page that has ground truth."""
    truth_path = directory / "ground-truth.json"
    if not truth_path.is_file():
        raise FileNotFoundError(
            f"no benchmark at {directory} (expected ground-truth.json and html/*.html.gz); "
            "pass their directory as the first argument"
        )
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    pages = []
    for path in sorted((directory / "html").glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        if key in truth:
            item = truth[key]
            pages.append(
                (
                    key,
                    item.get("url"),
                    item.get("articleBody", ""),
                    gzip.decompress(path.read_bytes()),
                )
            )
    return pages


def evaluate(directory: Path = DEFAULT_DIR) -> dict[str, Any]:
    """Run every method over the benchmark; return metrics per method and per-page scores."""
    pages = load_benchmark(directory)
    results: dict[str, Any] = {"directory": str(directory), "pages": len(pages), "methods": {}}
    for name, method in METHODS.items():
        token_counts, shingle_counts, failures, per_page = [], [], [], {}
        started = time.perf_counter()
        for key, url, truth, html in pages:
            try:
                prediction = method(html, url)
            except ExtractionError as exc:
                failures.append({"page": key, "url": url, "error": str(exc)})
                prediction = ""
            token = overlap_counts(truth, prediction, 1)
            token_counts.append(token)
            shingle_counts.append(overlap_counts(truth, prediction, 4))
            per_page[key] = {
                "url": url,
                "precision": _precision(*token),
                "recall": _recall(*token),
            }
        results["methods"][name] = {
            "token": summarise(token_counts),
            "shingle": summarise(shingle_counts),
            "failures": failures,
            "seconds": round(time.perf_counter() - started, 1),
            "per_page": per_page,
        }
    return results


def format_table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['pages']} pages from {results['directory']}",
        f"{'method':<12} {'token P':>8} {'R':>6} {'F1':>6}   {'shingle P':>9} {'R':>6} {'F1':>6}"
        f"   {'pages':>5} {'failures':>8} {'seconds':>7}",
    ]
    for name, scores in results["methods"].items():
        tok, shi = scores["token"], scores["shingle"]
        lines.append(
            f"{name:<12} {tok['precision']:>8.4f} {tok['recall']:>6.4f} {tok['f1']:>6.4f}"
            f"   {shi['precision']:>9.4f} {shi['recall']:>6.4f} {shi['f1']:>6.4f}"
            f"   {results['pages']:>5} {len(scores['failures']):>8} {scores['seconds']:>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: .venv/bin/python scripts/eval_extraction.py --json /tmp/ext.json "
        "--min-f1 0.95",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--json", type=Path, metavar="OUT", help="write all results here")
    parser.add_argument(
        "--min-f1", type=float, help="fail unless our token F1 reaches this and plain trafilatura's"
    )
    args = parser.parse_args(argv)
    try:
        results = evaluate(args.directory)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    for failure in results["methods"]["narratives"]["failures"]:
        print(f"  failed: {failure['page'][:12]} {failure['url']}: {failure['error']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.min_f1 is not None:
        ours = results["methods"]["narratives"]["token"]["f1"]
        plain = results["methods"]["trafilatura"]["token"]["f1"]
        if ours < args.min_f1 or ours < plain:
            print(
                f"FAIL: token F1 {ours:.4f} is below the floor {args.min_f1} "
                f"or plain trafilatura's {plain:.4f}",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

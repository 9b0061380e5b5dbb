"""The demo end to end, the way `make demo` runs it, on the bundled sample corpus."""

from __future__ import annotations

import json

import pytest

from narratives.cli import format_demo
from narratives.demo import run_demo

from conftest import ROOT

SAMPLE = ROOT / "corpus" / "sample"


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """One demo run shared by the tests: tagging the sample takes about 40 s on 2 cores."""
    return run_demo(tmp_path_factory.mktemp("demo") / "demo.db", sample=SAMPLE, progress=False)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_builds_the_sample_corpus_idempotently(demo_report):
    report = demo_report
    jsonl_articles = sum(1 for _ in (SAMPLE / "articles.jsonl").open(encoding="utf-8"))
    pages = len(list((SAMPLE / "pages").glob("*.html")))
    first, second = report.first_run, report.second_run
    assert first.total_failed == 0
    # Every JSONL article and page, plus the feed entries that exist nowhere else.
    assert first.new == jsonl_articles + pages + sum(first.summaries.values())
    assert sum(first.summaries.values()) >= 1
    assert (second.new, second.updated, second.duplicates) == (0, 0, 0)
    status = report.status
    assert len(status.by_month) >= 6 and len(status.by_source) >= 5
    assert report.hit_count >= 1
    assert report.tagging.articles == status.articles and report.retag.articles == 0
    assert set(report.by_month) == set(report.methods)
    assert report.evidence
    output = format_demo(report)
    assert "re-run   0 new, 0 updated" in output
    assert "articles carrying each narrative" in output


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_rebuilds_from_scratch(demo_report):
    again = run_demo(demo_report.db, sample=SAMPLE, progress=False)
    assert again.first_run.new == again.status.articles == demo_report.status.articles
    assert again.tagging.articles == again.status.articles  # a fresh database is tagged anew


def test_sample_pages_extract_to_their_answer_key(tmp_path):
    """The sample's HTML pages are extracted to the text the generator wrote."""
    from narratives.extract import extract_page

    expected = [
        json.loads(line) for line in (SAMPLE / "pages_expected.jsonl").open(encoding="utf-8")
    ]
    assert expected
    for item in expected:
        page = extract_page((SAMPLE / item["file"]).read_bytes())
        assert page.title == item["title"]
        assert page.text == item["text"], item["file"]

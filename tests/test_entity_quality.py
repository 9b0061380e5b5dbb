"""Entity-linking quality gates: the sample corpus fully linked, and precision on our gold set.

The gold set (corpus/entities_gold/articles.toml) is articles we wrote and annotated by hand;
scripts/eval_entities.py reports the same figures with recall on publisher-linked news.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from narratives.entities import EntityLinker, load_spacy
from narratives.entity_eval import read_gold, score_gold
from narratives.kb import load_kb

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "sample"
GOLD = ROOT / "corpus" / "entities_gold" / "articles.toml"
# Pinned floors: the targets. Raise them when the linker gets better, never lower.
FLOORS = {"ticker": 0.95, "person": 0.90}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


def _surfaces() -> list[tuple[str, str]]:
    """(written form, what it must link to: a ticker or "person:<name>") from the templates."""
    templates = tomllib.loads((ROOT / "scripts" / "sample_templates.toml").read_text())
    wanted = []
    for spec in templates["securities"].values():
        target = spec["symbol"] if spec["kind"] != "index" else f"index:{spec['name']}"
        if spec["kind"] == "crypto":
            target = "BTC"
        for form in (spec["name"], spec["short"], spec["symbol"]):
            if form[:1].isupper() and "ETF" not in form and "fund" not in form:
                wanted.append((form, target))
    for spec in templates["company"]:
        wanted += [(spec["name"], spec["symbol"]), (spec["short"], spec["symbol"])]
        wanted.append((spec["symbol"], spec["symbol"]))
    for line in templates["cast"]["analysts"]:
        name = line.split("|")[0]
        wanted += [(name, f"person:{name}"), (name.split()[-1], f"person:{name}")]
    return wanted


def test_sample_corpus_people_funds_indices_and_tickers_are_all_linked(nlp):
    linker = EntityLinker(load_kb([SAMPLE / "kb.toml"], built=None), nlp=nlp)
    articles = [json.loads(line) for line in (SAMPLE / "articles.jsonl").open()]
    wanted = _surfaces()
    total, missed = 0, []
    for article in articles:
        text = article["text"]
        mentions = linker.link_text(text, key=article["id"])
        for form, target in wanted:
            for match in re.finditer(rf"(?<![\w$]){re.escape(form)}(?![\w:])", text):
                start, end = match.span()
                covering = [m for m in mentions if m.start <= start and end <= m.end]
                if any(covering and c.end - c.start > end - start for c in covering):
                    continue  # part of a longer linked name ("Trump" in "Trump Media")
                total += 1
                ok = any(
                    (target.startswith("person:") and m.kind == "person" and m.name == target[7:])
                    or (target.startswith("index:") and m.kind == "index")
                    or m.ticker == target
                    for m in covering
                )
                if not ok:
                    missed.append(f"{article['id']}: {form!r} → {target}, got {covering}")
    assert total > 1000
    assert not missed, f"{len(missed)} of {total} not linked:\n" + "\n".join(missed[:20])


@pytest.mark.skipif(not GOLD.exists(), reason="no gold set")
def test_precision_on_our_hand_annotated_articles(nlp):
    result = score_gold(EntityLinker(load_kb(built=None), nlp=nlp), read_gold(GOLD))
    report = {k: result[k] for k in FLOORS}
    for kind, floor in FLOORS.items():
        assert result[kind]["predicted"] >= 100, report
        assert result[kind]["precision"] >= floor, (
            f"{kind} precision {result[kind]['precision']} fell below its floor {floor}: "
            + "\n".join(result["wrong"][:20])
        )

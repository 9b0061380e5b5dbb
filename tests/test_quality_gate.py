"""The committed theme model on real paragraphs of unseen articles: pinned floors that fail loudly.

The gate is the test side of src/narratives/real_labels.py: paragraphs of themes_dev.jsonl and
themes_silver.jsonl (labelled by careful reading, ../shared/data/labels) whose articles no
recipe trains or calibrates on. It skips, saying why, where ../shared/data is absent. The
paragraphs we wrote (corpus/labels/written_gate.jsonl) stay as a fast smoke test only: they are
written in the style of our training files, so they measure memorised style, not news.
"""

from __future__ import annotations

import pytest

from narratives.classifier import ThemeModel
from narratives.encoder import Passage
from narratives.real_labels import SPEC_THEMES, load_real_split
from narratives.themes import load_themes
from narratives.training import evaluate, read_labels

from conftest import ROOT, shared

pytestmark = pytest.mark.slow

MODEL = ROOT / "models" / "themes"
SMOKE = ROOT / "corpus" / "labels" / "written_gate.jsonl"
# F1 floors on the real test side (2,619 paragraphs of 1,091 unseen articles), pinned a little
# under what the committed model measured there (models/themes/MODEL_CARD.md, reproduced by
# `python scripts/eval_themes.py`). One paragraph moves a theme's F1 by about 0.01, so the floors
# sit three to four paragraphs' worth under. The committed model (2026-11) was trained on all of
# themes_dev.jsonl, so 500 of these paragraphs are not new to it: its figures flatter it, and a
# model trained by today's recipe (scripts/train_themes.py) never sees any of them.
# Measured 2026-12-04 (F1): rate_cut_trade 0.595, trump_trade 0.494, short_squeeze 0.633,
# dash_for_trash 0.136, macro 0.465. dash_for_trash has no floor of its own (11 positives: one
# paragraph is a third of its score); it counts in the macro floor.
REAL_FLOORS = {
    "rate_cut_trade": 0.55,
    "trump_trade": 0.45,
    "short_squeeze": 0.59,
}
REAL_MACRO_FLOOR = 0.43
# The written smoke set: a change that breaks the model outright falls far under these.
SMOKE_MACRO_FLOOR = 0.70


@pytest.fixture(scope="module")
def model() -> ThemeModel:
    return ThemeModel.load(MODEL)


@pytest.fixture(scope="module")
def real_test():
    labels = shared("labels")
    known = {theme.id for theme in load_themes()}
    return load_real_split(labels.parent, known=known, test_only=True).test


def test_committed_model_is_small_enough_for_git():
    sizes = {p.name: p.stat().st_size for p in MODEL.iterdir()}
    assert sizes["weights.safetensors"] < 5_000_000
    assert "MODEL_CARD.md" in sizes


@pytest.mark.shared_data
@pytest.mark.timeout(600)  # 2,619 paragraphs: about 30 s on 2 idle cores, minutes on busy ones
def test_committed_model_meets_the_real_text_gate(model, real_test):
    evaluation = evaluate(model, real_test)
    failures = [
        f"{theme}: F1 {evaluation.themes[theme].f1:.3f} below floor {floor:.2f}"
        for theme, floor in REAL_FLOORS.items()
        if evaluation.themes[theme].f1 < floor
    ]
    macro = sum(evaluation.themes[t].f1 for t in SPEC_THEMES) / len(SPEC_THEMES)
    if macro < REAL_MACRO_FLOOR:
        failures.append(f"macro-F1 {macro:.3f} below floor {REAL_MACRO_FLOOR:.2f}")
    assert not failures, "theme classifier regressed on real text:\n  " + "\n  ".join(failures)


def test_written_smoke_set_is_still_read(model):
    evaluation = evaluate(model, read_labels([SMOKE], known=set(model.theme_ids)))
    macro = sum(evaluation.themes[t].f1 for t in SPEC_THEMES) / len(SPEC_THEMES)
    assert macro >= SMOKE_MACRO_FLOOR, evaluation.as_dict()


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        (
            "Small caps raced ahead as traders piled into bets that the Fed will cut rates in "
            "September; homebuilders and regional banks led.",
            "rate_cut_trade",
        ),
        (
            "Bank stocks and private-prison operators jumped after the election as investors "
            "bet the president-elect would slash regulation and corporate taxes.",
            "trump_trade",
        ),
        (
            "With more than 30% of the float sold short, the stock's 60% surge forced bears to "
            "buy back shares, feeding the rally.",
            "short_squeeze",
        ),
    ],
)
def test_real_encoder_recognises_plain_cases(model, text, theme):
    (labels,) = model.labels(model.predict([Passage(text, "Markets")]))
    assert theme in labels


def test_real_encoder_does_not_tag_a_plain_fed_decision(model):
    text = "The Federal Reserve held its benchmark rate at 5.25% to 5.5%, as widely expected."
    (labels,) = model.labels(model.predict([Passage(text, "Fed holds rates")]))
    assert "rate_cut_trade" not in labels


def test_shipped_model_has_learned_every_shipped_theme(model):
    # Few-shot themes cost a second encoder pass; the default install should not pay it.
    methods = {t: model.method(t) for t in model.theme_ids}
    assert methods == dict.fromkeys(model.theme_ids, "trained")


def test_a_theme_without_labels_ranks_paragraphs_by_its_examples():
    untrained = ThemeModel.untrained(load_themes())
    assert untrained.method("ai_bubble") == "few-shot"
    column = untrained.theme_ids.index("ai_bubble")
    bubble = Passage(
        "Investors keep paying up for anything with an artificial-intelligence story, and the "
        "biggest chip stocks now trade at multiples last seen at the peak of the dot-com era.",
        "Is the AI rally a bubble?",
    )
    plain = Passage(
        "Crude oil fell 2% after OPEC+ agreed to raise output from next month.", "Oil slips"
    )
    scores = untrained.predict([bubble, plain])[:, column]
    assert scores[0] > scores[1] + 0.2

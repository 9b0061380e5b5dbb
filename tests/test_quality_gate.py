"""The committed theme model on our held-out gate set: pinned floors that fail loudly."""

from __future__ import annotations

import pytest

from narratives.classifier import ThemeModel
from narratives.encoder import Passage
from narratives.training import evaluate, read_labels

from conftest import ROOT

pytestmark = pytest.mark.slow

MODEL = ROOT / "models" / "themes"
GATE = ROOT / "corpus" / "labels" / "written_gate.jsonl"
# F1 floors on corpus/labels/written_gate.jsonl (300 paragraphs we wrote, never trained on):
# pinned a little under what the committed model measured (see models/themes/MODEL_CARD.md), so
# noise does not trip them but a real regression does.
# Measured 2026-11-21 (F1): rate_cut_trade 0.920, trump_trade 0.977, short_squeeze 0.907,
# dash_for_trash 0.857, ai_bubble 0.780, macro 0.888. One paragraph moves a theme's F1 by about
# 0.01-0.02 (0.03 for ai_bubble's 25), so the floors sit 0.05-0.08 under.
FLOORS = {
    "rate_cut_trade": 0.86,
    "trump_trade": 0.92,
    "short_squeeze": 0.85,
    "dash_for_trash": 0.79,
    "ai_bubble": 0.70,
}
MACRO_FLOOR = 0.83


@pytest.fixture(scope="module")
def model() -> ThemeModel:
    return ThemeModel.load(MODEL)


def test_committed_model_is_small_enough_for_git():
    sizes = {p.name: p.stat().st_size for p in MODEL.iterdir()}
    assert sizes["weights.safetensors"] < 5_000_000
    assert "MODEL_CARD.md" in sizes


def test_committed_model_meets_the_quality_gate(model):
    evaluation = evaluate(model, read_labels([GATE], known=set(model.theme_ids)))
    failures = [
        f"{theme}: F1 {evaluation.themes[theme].f1:.3f} below floor {floor:.2f}"
        for theme, floor in FLOORS.items()
        if evaluation.themes[theme].f1 < floor
    ]
    if evaluation.macro_f1 < MACRO_FLOOR:
        failures.append(f"macro-F1 {evaluation.macro_f1:.3f} below floor {MACRO_FLOOR:.2f}")
    assert not failures, "theme classifier regressed on the gate set:\n  " + "\n  ".join(failures)


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
    from narratives.themes import load_themes

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

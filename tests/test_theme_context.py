"""What the classifier reads beside a paragraph (title, month) and the real-label article split."""

from __future__ import annotations

import json

import pytest

from narratives.encoder import Encoder, EncoderError, Passage, context_of, month_of
from narratives.real_labels import TEST_SHARE, VALIDATION_SHARE, article_side, load_real_split
from narratives.training import LabelsError


@pytest.mark.parametrize(
    ("published", "month"),
    [
        ("2016-11-09T14:30:00-05:00", "November 2016"),
        ("2024-07-01", "July 2024"),
        ("2024-13-01", ""),
        ("January 5, 2021", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_month_is_read_only_from_an_iso_date(published, month):
    assert month_of(published) == month


def test_date_context_puts_the_month_before_the_title_and_title_context_ignores_it():
    passage = Passage("Stocks rallied.", "Postelection rally rolls on", "2016-11-10")
    assert context_of(passage, "date+title") == "November 2016. Postelection rally rolls on"
    assert context_of(passage, "title") == "Postelection rally rolls on"
    assert context_of(Passage("x", None, "2016-11-10"), "date+title") == "November 2016"
    assert context_of(Passage("x", "T", "not a date"), "date+title") == "T"


def test_encoder_reads_the_month_only_with_date_context(use_tiny_encoder):
    passage = Passage("Banks jumped.", "Markets", "2016-11-10")
    dated = Encoder(context="date+title", max_length=32).tokenize([passage])
    plain = Encoder(context="title", max_length=32).tokenize([passage])
    decode = Encoder(max_length=32).tokenizer.decode
    assert "november 2016" in decode(dated["input_ids"][0])
    assert "november" not in decode(plain["input_ids"][0])


def test_unknown_context_is_refused(use_tiny_encoder):
    with pytest.raises(EncoderError, match="date\\+title"):
        Encoder(context="month")


def test_article_side_is_stable_and_near_its_shares():
    ids = [f"site:article-{n}" for n in range(20000)]
    sides = [article_side(i) for i in ids]
    assert sides == [article_side(i) for i in ids]
    assert sides.count("test") / len(ids) == pytest.approx(TEST_SHARE, abs=0.01)
    assert sides.count("validation") / len(ids) == pytest.approx(VALIDATION_SHARE, abs=0.01)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_real_split_keeps_articles_whole_and_reposts_off_the_training_side(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    test_id = next(f"a{n}" for n in range(100) if article_side(f"a{n}") == "test")
    train_id = next(f"a{n}" for n in range(100) if article_side(f"a{n}") == "train")
    rows = [
        {"article_id": test_id, "text": "Shorts scrambled to cover.", "labels": ["short_squeeze"]},
        {"article_id": test_id, "text": "Revenue rose.", "labels": []},
        # The same text under another article id (a repost) must not train.
        {"article_id": train_id, "text": "Shorts scrambled to cover.", "labels": []},
        {"article_id": train_id, "text": "Gold rose on cut bets.", "labels": ["rate_cut_trade"]},
    ]
    _write(labels / "themes_dev.jsonl", rows[:2])
    _write(labels / "themes_silver.jsonl", rows[2:])
    known = {"short_squeeze", "rate_cut_trade", "trump_trade", "dash_for_trash"}
    split = load_real_split(tmp_path, known=known)
    assert {e.group for e in split.test} == {test_id}
    assert split.test_origin == ["themes_dev.jsonl", "themes_dev.jsonl"]
    assert [e.passage.text for e in split.train] == ["Gold rose on cut bets."]


def test_real_split_names_missing_label_files(tmp_path):
    with pytest.raises(LabelsError, match=r"themes_dev\.jsonl"):
        load_real_split(tmp_path, known=set())

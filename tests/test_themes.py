"""Themes file, classifier plumbing, training, classify and tag — on a tiny encoder."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from narratives.classifier import (
    ClassifyInputError,
    ModelError,
    ThemeModel,
    classify_jsonl,
)
from narratives.cli import cli
from narratives.encoder import Passage
from narratives.ingest import ingest
from narratives.store import Corpus
from narratives.tag import aggregate, pending_articles, tag
from narratives.themes import ThemesFileError, load_themes
from narratives.training import (
    Evaluation,
    LabelledPassage,
    LabelsError,
    TrainConfig,
    best_threshold,
    fit_platt,
    grouped_split,
    merge_duplicates,
    read_labels,
    read_paragraph_labels,
    score,
    train,
)

from conftest import STORY

# -- themes file ----------------------------------------------------------------------------


def test_shipped_themes_file_has_the_four_spec_themes_and_a_user_theme():
    themes = load_themes()
    ids = [t.id for t in themes]
    assert ids[:4] == ["rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash"]
    assert "ai_bubble" in ids
    rate = themes[0]
    assert len(rate.examples) >= 3 and rate.proxies[0].label == "IWM−SPY"


VALID = """
[[theme]]
id = "soft_landing"
name = "Soft landing"
description = "Prices explained by hopes that inflation falls without a recession."
examples = ["a", "b", "c"]
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "defines no themes"),
        ("[[theme]\nid=", "not valid TOML"),
        (VALID.replace('"soft_landing"', '"Soft Landing"'), "snake_case"),
        (VALID.replace('["a", "b", "c"]', '["a"]'), "at least 3 example"),
        (VALID + 'colour = "red"\n', "unknown keys"),
        (VALID + VALID, "defined twice"),
        (VALID.replace('name = "Soft landing"\n', ""), "name must be"),
        (VALID + 'proxies = [{ ticker = "SPY" }]\n', "needs an asset"),
        (VALID + "examples2 = 1\n", "unknown keys"),
    ],
)
def test_themes_file_mistakes_are_explained(tmp_path, text, message):
    path = tmp_path / "themes.toml"
    path.write_text(text)
    with pytest.raises(ThemesFileError, match=message):
        load_themes(path)


def test_missing_themes_file_is_named(tmp_path):
    with pytest.raises(ThemesFileError, match="no themes file"):
        load_themes(tmp_path / "nope.toml")


# -- thresholds, calibration, splits --------------------------------------------------------


def test_best_threshold_separates_cleanly_separable_scores():
    probabilities = np.concatenate([np.linspace(0.1, 0.3, 20), np.linspace(0.7, 0.9, 20)])
    labels = np.array([0] * 20 + [1] * 20)
    threshold = best_threshold(probabilities, labels)
    assert 0.3 < threshold <= 0.7


def test_best_threshold_follows_the_scores_when_positives_score_low():
    probabilities = np.concatenate([np.linspace(0.02, 0.1, 30), np.linspace(0.2, 0.35, 30)])
    labels = np.array([0] * 30 + [1] * 30)
    assert 0.1 < best_threshold(probabilities, labels) <= 0.2


def test_best_threshold_keeps_even_odds_with_too_few_validation_positives():
    probabilities = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert best_threshold(probabilities, np.array([0, 0, 0, 1, 1, 1])) == 0.5


def test_best_threshold_stays_inside_the_grid_when_everything_is_positive():
    assert 0.05 <= best_threshold(np.array([0.01, 0.02]), np.array([1, 1])) <= 0.95


def test_scores_count_precision_recall_and_macro_over_themes_with_support():
    truth = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    predicted = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    evaluation = score(predicted, truth, ["a", "b", "c"], methods={"a": "trained"})
    a = evaluation.themes["a"]
    assert (a.precision, a.recall, a.support, a.predicted) == (0.5, 0.5, 2, 2)
    assert evaluation.themes["b"].f1 == 1.0
    assert evaluation.themes["c"].support == 0  # no support: left out of the macro average
    assert evaluation.macro_f1 == pytest.approx(0.75)
    again = Evaluation.from_dict(evaluation.as_dict())
    assert again.macro_f1 == pytest.approx(0.75) and again.methods["a"] == "trained"


def test_unjudged_themes_are_neither_positive_nor_negative(tmp_path):
    path = tmp_path / "labels.jsonl"
    lines = [
        {"text": "Old label set.", "labels": ["trump_trade"], "considered": ["trump_trade"]},
        {"text": "Judged for everything.", "labels": []},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    old, new = read_labels([path], known={"trump_trade", "ai_bubble"})
    assert old.judged("trump_trade") and not old.judged("ai_bubble") and new.judged("ai_bubble")
    (defaulted,) = read_labels([path], considered=["trump_trade"])[1:]
    assert not defaulted.judged("ai_bubble")
    truth = np.array([[0], [1], [0]])
    predicted = np.array([[1], [1], [0]])
    unjudged_false_positive = score(predicted, truth, ["x"], judged=np.array([[0], [1], [1]]))
    assert unjudged_false_positive.themes["x"].precision == 1.0
    assert score(predicted, truth, ["x"]).themes["x"].precision == 0.5


def test_platt_calibration_is_monotonic_and_brackets_the_base_rate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    logits = labels * 2.0 - 1.0 + rng.normal(0, 1, 400)
    calibration = fit_platt(logits, labels)
    probabilities = calibration.apply(np.sort(logits))
    assert np.all(np.diff(probabilities) >= 0)
    assert (
        calibration.apply(np.array([-3.0]))[0] < 0.2 < 0.8 < calibration.apply(np.array([3.0]))[0]
    )


def test_platt_without_both_classes_is_identity():
    assert fit_platt(np.array([1.0, 2.0]), np.array([0, 0])).slope == 1.0


def _labelled(n: int, group: str, labels: set[str]) -> LabelledPassage:
    return LabelledPassage(Passage(f"paragraph {n}"), frozenset(labels), group)


def test_grouped_split_keeps_articles_whole_and_rare_themes_on_both_sides():
    examples = []
    for article in range(40):
        labels = {"rare"} if article % 10 == 0 else ({"common"} if article % 2 else set())
        examples += [_labelled(i, f"a{article}", labels) for i in range(3)]
    train_idx, val_idx = grouped_split(examples, 0.2, seed=1)
    train_groups = {examples[i].group for i in train_idx}
    val_groups = {examples[i].group for i in val_idx}
    assert not train_groups & val_groups
    assert sorted(train_idx + val_idx) == list(range(len(examples)))
    for theme in ("rare", "common"):
        assert any(theme in examples[i].labels for i in val_idx)
        assert any(theme in examples[i].labels for i in train_idx)


# -- labels files ---------------------------------------------------------------------------


def test_read_labels_uses_article_id_as_group_and_title_as_context(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(
        json.dumps({"text": "t", "labels": ["short_squeeze"], "title": "T", "article_id": "a1"})
        + "\n"
    )
    (example,) = read_labels([path], known={"short_squeeze"})
    assert example.group == "a1" and example.passage.title == "T"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"labels": []}', "non-empty"),
        ('{"text": "x", "labels": "short_squeeze"}', "list of theme ids"),
        ('{"text": "x", "labels": ["short_sqeeze"]}', "unknown theme ids"),
    ],
)
def test_bad_labels_lines_are_reported_with_their_line(tmp_path, line, message):
    path = tmp_path / "l.jsonl"
    path.write_text('{"text": "fine", "labels": []}\n' + line + "\n")
    with pytest.raises(LabelsError, match=f"l.jsonl:2: .*{message}"):
        read_labels([path], known={"short_squeeze"})


# -- aggregation ----------------------------------------------------------------------------


class _Stub:
    theme_ids = ("a", "b")

    def threshold(self, theme_id: str) -> float:
        return 0.5


def test_article_score_is_the_strongest_paragraph_with_evidence_in_order():
    probabilities = np.array([[0.2, 0.1], [0.9, 0.3], [0.6, 0.2], [0.55, 0.4]])
    a, b = aggregate(probabilities, [0, 2, 3, 5], _Stub())
    assert a.score == pytest.approx(0.9) and a.carries and a.paragraphs_over == 3
    assert [p for p, _ in a.evidence] == [2, 3, 5]
    assert not b.carries and b.evidence == [(5, pytest.approx(0.4))]


# -- training, saving, loading, classify, tag (tiny encoder) --------------------------------

CUT = "Small caps jumped as traders priced in a rate cut in September, lifting lenders."
SQUEEZE = "Shares soared as short sellers scrambled to cover, a squeeze in the most shorted names."
PLAIN = "The company reported quarterly revenue in line with estimates and kept its outlook."


def _tiny_training_set() -> list[LabelledPassage]:
    examples = []
    for i in range(30):
        examples.append(_example(f"{CUT} Note {i}.", {"rate_cut_trade"}, f"c{i}"))
        examples.append(_example(f"{SQUEEZE} Note {i}.", {"short_squeeze"}, f"s{i}"))
        examples.append(_example(f"{PLAIN} Note {i}.", set(), f"p{i}"))
    return examples


def _example(text: str, labels: set[str], group: str) -> LabelledPassage:
    return LabelledPassage(Passage(text, "Markets"), frozenset(labels), group)


@pytest.fixture(scope="module")
def tiny_model(tiny_encoder, tmp_path_factory) -> Iterator[Path]:
    """Trained once per module on the tiny encoder, which stays selected while tests use it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NARRATIVES_ENCODER", str(tiny_encoder))
        config = TrainConfig(epochs=2, batch_size=8, max_length=48, min_positives=10)
        model, evaluation = train(_tiny_training_set(), load_themes(), config=config)
        assert evaluation.paragraphs > 0
        path = tmp_path_factory.mktemp("model")
        model.save(path)
        yield path


def test_trained_model_round_trips_and_marks_unlearned_themes_few_shot(tiny_model):
    model = ThemeModel.load(tiny_model)
    assert model.method("rate_cut_trade") == "trained"
    assert model.method("short_squeeze") == "trained"
    assert model.method("trump_trade") == "few-shot"  # no labels: similarity to its examples
    probabilities = model.predict([Passage(CUT), Passage(PLAIN)])
    assert probabilities.shape == (2, len(load_themes()))
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    config = json.loads((tiny_model / "config.json").read_text())
    assert set(config["thresholds"]) == {"rate_cut_trade", "short_squeeze"}
    assert (tiny_model / "weights.safetensors").stat().st_size < 5_000_000


def test_saved_model_gives_the_same_scores_after_reload(tiny_model):
    first = ThemeModel.load(tiny_model).predict([Passage(SQUEEZE)])
    second = ThemeModel.load(tiny_model).predict([Passage(SQUEEZE)])
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_a_new_theme_in_the_themes_file_is_scored_at_once(tiny_model, tmp_path):
    text = (Path(__file__).parents[1] / "src/narratives/data/themes.toml").read_text()
    path = tmp_path / "themes.toml"
    path.write_text(text + VALID)
    model = ThemeModel.load(tiny_model, path)
    assert model.method("soft_landing") == "few-shot"
    assert model.predict([Passage("anything")]).shape[1] == len(model.theme_ids)


def test_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(ModelError, match="narratives train"):
        ThemeModel.load(tmp_path / "none")


def test_classify_keeps_order_and_ids(tiny_model):
    model = ThemeModel.load(tiny_model)
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate([CUT, PLAIN, SQUEEZE] * 5)]
    out = io.StringIO()
    assert classify_jsonl(model, lines, out.write, batch_size=4) == 15
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in results] == list(range(15))
    assert set(results[0]["themes"]) == set(model.theme_ids)
    assert all(set(r["labels"]) <= set(model.theme_ids) for r in results)
    # trump_trade, dash_for_trash and ai_bubble had no labels: marked as lower-confidence.
    assert results[0]["few_shot"] == ["trump_trade", "dash_for_trash", "ai_bubble"]


def test_classify_reads_the_published_month_when_the_model_was_trained_with_it(tiny_model):
    model = ThemeModel.load(tiny_model)
    model.encoder.context = "date+title"  # as a model trained with --context date+title
    lines = [
        json.dumps({"id": 1, "text": CUT, "title": "Markets"}),
        json.dumps({"id": 2, "text": CUT, "title": "Markets", "published": "2016-11-10"}),
        json.dumps({"id": 3, "text": CUT, "title": "Markets", "published": "2016-11-30T20:00Z"}),
    ]
    out = io.StringIO()
    classify_jsonl(model, lines, out.write)
    undated, dated, same_month = (
        json.loads(line)["themes"] for line in out.getvalue().splitlines()
    )
    assert undated != dated
    assert dated == same_month  # only the month is read


def test_classify_rejects_lines_without_text(tiny_model):
    model = ThemeModel.load(tiny_model)
    with pytest.raises(ClassifyInputError, match="line 2"):
        classify_jsonl(model, ['{"id": 1, "text": "ok"}', '{"id": 2}'], lambda s: None)


def test_classify_command_reads_stdin(tiny_model):
    stdin = json.dumps({"id": "x", "text": CUT}) + "\n"
    result = CliRunner().invoke(cli, ["classify", "-", "--model", str(tiny_model)], input=stdin)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["id"] == "x" and "rate_cut_trade" in line["themes"]


def _small_corpus(tmp_path: Path) -> Path:
    records = [
        {
            "id": f"t:{i}",
            "source": "t.example",
            "publisher": "T",
            "title": f"Story {i}",
            "published": "2024-07-15T12:00:00Z",
            "text": "\n\n".join([*STORY, f"Number {i}."]),
        }
        for i in range(5)
    ]
    source = tmp_path / "news.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    db = tmp_path / "c.db"
    ingest(db, [str(source)], progress=False)
    return db


def test_tag_is_incremental_and_writes_scores_and_evidence(tiny_model, tmp_path):
    db = _small_corpus(tmp_path)
    model = ThemeModel.load(tiny_model)
    with Corpus(db) as corpus:
        first = tag(corpus, model, progress=False)
        assert first.articles == 5 and first.paragraphs == 5 * (len(STORY) + 1)
        second = tag(corpus, model, progress=False)
        assert second.articles == 0 and second.skipped == 5
        n_themes = len(model.theme_ids)
        assert corpus.count("article_themes") == 5 * n_themes
        assert corpus.count("theme_evidence") >= 5 * n_themes
        row = corpus.db.execute(
            "SELECT score, carries FROM article_themes WHERE theme = 'rate_cut_trade' LIMIT 1"
        ).fetchone()
        assert 0 <= row[0] <= 1
        methods = dict(corpus.db.execute("SELECT id, method FROM themes").fetchall())
        assert methods["trump_trade"] == "few-shot"
        # An edited article is scored again; nothing else is.
        corpus.db.execute("UPDATE articles SET content_hash = 'changed' WHERE id = 1")
        assert pending_articles(corpus, model.fingerprint()) == [1]
        third = tag(corpus, model, progress=False)
        assert third.articles == 1


def test_tag_again_after_the_themes_change(tiny_model, tmp_path):
    db = _small_corpus(tmp_path)
    text = (Path(__file__).parents[1] / "src/narratives/data/themes.toml").read_text()
    themes = tmp_path / "themes.toml"
    themes.write_text(text + VALID)
    with Corpus(db) as corpus:
        tag(corpus, ThemeModel.load(tiny_model), progress=False)
        again = tag(corpus, ThemeModel.load(tiny_model, themes), progress=False)
        assert again.articles == 5
        assert (
            corpus.db.execute(
                "SELECT count(*) FROM article_themes WHERE theme = 'soft_landing'"
            ).fetchone()[0]
            == 5
        )


def test_tag_command_prints_a_summary(tiny_model, tmp_path):
    db = _small_corpus(tmp_path)
    runner = CliRunner()
    args = ["tag", "--db", str(db), "--model", str(tiny_model)]
    result = runner.invoke(cli, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Tagged 5 articles" in result.output
    assert "Linked 5 articles" in result.output
    result = runner.invoke(cli, [*args, "--json"])
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["themes"]["articles"] == 0 and summary["entities"]["articles"] == 0


def test_linking_beside_scoring_in_its_own_process_writes_what_one_after_the_other_does(
    tiny_model, tmp_path
):
    from narratives.mentions import LinkerSpec
    from narratives.tag import result_rows, tag_and_link

    spec = LinkerSpec(built_kb=None)
    rows = {}
    for workers in (1, 2):
        (tmp_path / f"w{workers}").mkdir()
        db = _small_corpus(tmp_path / f"w{workers}")

        def run(db: Path = db, workers: int = workers):
            load = partial(ThemeModel.load, tiny_model)
            return tag_and_link(db, load_model=load, linker=spec, workers=workers, progress=False)

        first = run()
        assert first.themes.articles == 5 and first.entities.articles == 5
        rows[workers] = result_rows(db)
        again = run()
        assert again.themes.articles == 0 and again.entities.articles == 0
    assert rows[2] == rows[1]
    assert rows[1]["mentions"]


def test_a_failed_linking_process_is_reported_and_scoring_kept(tiny_model, tmp_path):
    from narratives.errors import NarrativesError
    from narratives.mentions import LinkerSpec
    from narratives.tag import tag_and_link

    db = _small_corpus(tmp_path)
    broken = LinkerSpec(built_kb=None, spacy_model="no_such_spacy_pipeline")
    with pytest.raises(NarrativesError, match="entity linking failed"):
        tag_and_link(
            db,
            load_model=lambda: ThemeModel.load(tiny_model),
            linker=broken,
            workers=2,
            progress=False,
        )
    with Corpus(db) as corpus:
        assert corpus.count("article_themes") > 0  # the scores were committed all the same


def test_train_only_paragraphs_are_never_held_out_for_calibration():
    examples = [_labelled(i, f"real{i}", {"x"} if i % 3 else set()) for i in range(60)]
    written = [
        LabelledPassage(Passage(f"w{i}"), frozenset({"x"}), f"w{i}", validation=False)
        for i in range(60)
    ]
    train_idx, val_idx = grouped_split(examples + written, 0.2, seed=3)
    assert val_idx and all(i < 60 for i in val_idx)
    assert set(range(60, 120)) <= set(train_idx)


def test_train_and_evaluate_commands_end_to_end(use_tiny_encoder, tmp_path):
    labels, written, out = tmp_path / "labels.jsonl", tmp_path / "written.jsonl", tmp_path / "m"
    lines = [
        {"text": f"{text} Note {i}.", "labels": themes, "article_id": f"{key}{i}"}
        for i in range(30)
        for key, text, themes in (
            ("c", CUT, ["rate_cut_trade"]),
            ("s", SQUEEZE, ["short_squeeze"]),
            ("p", PLAIN, []),
        )
    ]
    labels.write_text("".join(json.dumps(line) + "\n" for line in lines))
    written.write_text(json.dumps({"text": CUT, "labels": ["rate_cut_trade"]}) + "\n")
    runner = CliRunner()
    args = ["train", str(labels), "--train-only", str(written), "--epochs", "1"]
    result = runner.invoke(cli, [*args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output
    card = (out / "MODEL_CARD.md").read_text()
    assert str(written) in card and "rate_cut_trade" in card
    result = runner.invoke(cli, ["evaluate", str(labels), "--model", str(out), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["themes"]["short_squeeze"]["support"] == 30
    assert {"macro_f1", "themes"} <= set(scores)


def test_train_command_names_unknown_themes(use_tiny_encoder, tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"text": "Stocks rose.", "labels": ["moon_shot"]}) + "\n")
    result = CliRunner().invoke(cli, ["train", str(labels), "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, LabelsError)  # main() prints it as one line, exit 1
    assert "labels.jsonl:1" in str(result.exception) and "moon_shot" in str(result.exception)
    assert not (tmp_path / "m").exists()


def test_copies_of_a_paragraph_in_two_label_sets_are_merged(tmp_path):
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"id": "n1", "title": "T", "text": "First.\n\nSecond."}) + "\n")
    labels = tmp_path / "labels.jsonl"
    lines = [
        {"pid": "n1#p1", "labels": [], "considered": ["trump_trade"]},
        {"pid": "n1#p1", "labels": ["ai_bubble"], "considered": ["ai_bubble"]},
        {"pid": "n1#p0", "labels": []},
    ]
    labels.write_text("".join(json.dumps(line) + "\n" for line in lines))
    examples = read_paragraph_labels(labels, [news], known={"trump_trade", "ai_bubble"})
    assert len(examples) == 3 and examples[1].passage.title == "T"
    merged = {e.passage.text: e for e in merge_duplicates(examples)}
    second = merged["Second."]
    assert second.labels == {"ai_bubble"} and second.considered == {"trump_trade", "ai_bubble"}
    assert merged["First."].considered is None


# -- encoder precision ------------------------------------------------------------------------


def test_precision_resolves_from_choice_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from narratives import encoder

    monkeypatch.setenv("NARRATIVES_PRECISION", "bf16")
    assert encoder.resolve_precision(None) == "bf16"
    assert encoder.resolve_precision("fp32") == "fp32"  # an explicit choice wins
    monkeypatch.setattr(encoder, "cpu_flags", lambda: {"avx2"})
    assert encoder.resolve_precision("auto") == "fp32"  # emulated bf16 would be slower
    monkeypatch.setattr(encoder, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert encoder.resolve_precision("auto") == "bf16"
    with pytest.raises(encoder.EncoderError, match="not one of"):
        encoder.resolve_precision("int4")


@pytest.mark.parametrize("precision", ["bf16", "bf16-mixed"])
def test_bf16_scores_like_fp32_and_is_fingerprinted_apart(
    monkeypatch: pytest.MonkeyPatch, precision: str
) -> None:
    """The committed model in bf16, whole or under autocast: same labels, probabilities
    within 0.02, a fingerprint of its own."""
    from narratives.classifier import MODEL_DIR, ThemeModel

    monkeypatch.delenv("NARRATIVES_ENCODER", raising=False)  # the module's tiny one may be set

    passages = [
        Passage("Small caps ripped as traders bet the Fed will cut rates in September."),
        Passage("Shares of the meme stock doubled as short sellers scrambled to cover."),
        Passage("The company reported quarterly revenue in line with expectations."),
    ]
    fp32 = ThemeModel.load(MODEL_DIR, precision="fp32")
    bf16 = ThemeModel.load(MODEL_DIR, precision=precision)
    p32, p16 = fp32.predict(passages), bf16.predict(passages)
    assert np.abs(p32 - p16).max() < 0.02
    assert fp32.labels(p32) == bf16.labels(p16)
    assert fp32.fingerprint() != bf16.fingerprint()
    if precision == "bf16":
        assert next(bf16.encoder.transformer.parameters()).dtype == torch.bfloat16
        other = ThemeModel.load(MODEL_DIR, precision="bf16-mixed")
        assert other.fingerprint() not in {fp32.fingerprint(), bf16.fingerprint()}

"""Rebuild the committed theme model (models/themes) from every label we have.

    python scripts/train_themes.py [--out models/themes] [--few-shot ai_bubble ...] [--card-only]

Training data:
  - ../shared/data/labels/themes_dev.jsonl (2,539 paragraphs, when ../shared is here);
  - corpus/labels/shared_labels.jsonl: our labels of other non-held-out paragraphs of
    ../shared/data/news for the four spec themes, stored as paragraph ids and joined with the
    texts here; corpus/labels/shared_labels_ai_bubble.jsonl the same for ai_bubble alone;
  - corpus/labels/written_train.jsonl and written_register.jsonl: paragraphs we wrote.
corpus/labels/written_gate.jsonl is never trained on: it is the CI quality gate, scored here and
written into the model card with the cross-validated figures of docs/eval_themes.json.

Every theme with labels is learned, the example narrative ai_bubble included; --few-shot THEME
drops a theme's labels so it stays on the few-shot path (docs/new_narrative.md compares the two).
Takes about 20 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from narratives.classifier import MODEL_DIR, ThemeModel
from narratives.themes import load_themes
from narratives.training import (
    Evaluation,
    LabelledPassage,
    TrainConfig,
    evaluate,
    merge_duplicates,
    read_labels,
    read_paragraph_labels,
    train,
    write_model_card,
)

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "corpus" / "labels"
SHARED = ROOT / ".." / "shared" / "data"
SPEC_THEMES = ("rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash")
WRITTEN = ("written_train.jsonl", "written_register.jsonl")
GATE = LABELS / "written_gate.jsonl"


def training_data(
    known: set[str], learn: set[str], exclude: frozenset[str] = frozenset()
) -> tuple[list[LabelledPassage], list[str]]:
    """Every label set of the recipe except the files named in `exclude`."""
    sources = [str(LABELS / name) for name in WRITTEN]
    # Written paragraphs read unlike the corpus: they train but never calibrate.
    examples = read_labels(sources, known=known, validation=False)
    dev = SHARED / "labels" / "themes_dev.jsonl"
    if dev.is_file():
        # Both were labelled for the four spec themes only: no evidence about other themes.
        examples += read_labels([dev], known=known, considered=SPEC_THEMES)
        sources.append("../shared/data/labels/themes_dev.jsonl")
        news = sorted((SHARED / "news").glob("*.jsonl"))
        examples += read_paragraph_labels(
            LABELS / "shared_labels.jsonl", news, known=known, considered=SPEC_THEMES
        )
        sources.append("corpus/labels/shared_labels.jsonl (joined with ../shared/data/news)")
        if "shared_labels_ai_bubble.jsonl" not in exclude:
            # Real paragraphs judged for ai_bubble alone (each line says so).
            examples += read_paragraph_labels(
                LABELS / "shared_labels_ai_bubble.jsonl", news, known=known
            )
            sources.append(
                "corpus/labels/shared_labels_ai_bubble.jsonl (joined with ../shared/data/news)"
            )
    else:
        print("../shared/data is absent: training on our written paragraphs only", file=sys.stderr)
    # One copy of each paragraph, and only the themes we mean to learn.
    kept = [replace(e, labels=frozenset(e.labels & learn)) for e in merge_duplicates(examples)]
    return kept, [s.replace(str(ROOT) + "/", "") for s in sources]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / MODEL_DIR)
    parser.add_argument(
        "--few-shot",
        nargs="*",
        default=[],
        metavar="THEME",
        help="themes whose labels are dropped, so the model scores them few-shot",
    )
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        choices=["shared_labels_ai_bubble.jsonl"],
        help="leave out a label set (to measure what it buys)",
    )
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="do not train: rewrite MODEL_CARD.md of the model in --out (e.g. after "
        "scripts/eval_themes.py has written new cross-validated figures)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    themes = load_themes()
    known = {t.id for t in themes}
    unknown = set(args.few_shot) - known
    if unknown:
        parser.error(f"--few-shot names themes the themes file lacks: {sorted(unknown)}")
    learn = known - set(args.few_shot)
    examples, sources = training_data(known, learn, frozenset(args.exclude))
    if args.card_only:
        model = ThemeModel.load(args.out, themes)
        validation = Evaluation.from_dict(model.spec.training["validation"])
    else:
        model, validation = train(examples, themes, config=TrainConfig(epochs=args.epochs))
        model.save(args.out)
    gate = evaluate(model, read_labels([GATE], known=known))
    sections = [
        "## Quality gate (corpus/labels/written_gate.jsonl, never trained on)\n\n"
        "| theme | method | precision | recall | F1 | support |\n|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {t} | {gate.methods[t]} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | "
            f"{m.support} |"
            for t, m in gate.themes.items()
        )
        + f"\n\nMacro-F1 {gate.macro_f1:.3f}. `tests/test_quality_gate.py` pins floors under these."
    ]
    cv = ROOT / "docs" / "eval_themes.json"
    if cv.is_file():
        results = json.loads(cv.read_text())
        rows = "\n".join(
            f"| {t} | {results['keywords']['themes'][t]['f1']:.3f} | "
            f"{results['frozen_encoder']['themes'][t]['f1']:.3f} | "
            f"{m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for t, m in results["classifier"]["themes"].items()
            if t in SPEC_THEMES
        )
        sections.append(
            "## Paragraphs from unseen articles (scripts/eval_themes.py)\n\n"
            f"{results['split']}, {results.get('folds_scored', results['folds'])} of "
            f"{results['folds']} folds scored, {results['paragraphs']} paragraphs; "
            "the same recipe retrained per fold.\n\n"
            "| theme | keywords F1 | frozen MiniLM + LR F1 | precision | recall | F1 | support |\n"
            "|---|---|---|---|---|---|---|\n"
            f"{rows}\n\nMacro-F1 {results['classifier']['macro_f1']:.3f} (keywords "
            f"{results['keywords']['macro_f1']:.3f}, frozen encoder + logistic regression "
            f"{results['frozen_encoder']['macro_f1']:.3f})."
        )
    narrative = ROOT / "docs" / "new_narrative.json"
    if narrative.is_file():
        rows = [r for r in json.loads(narrative.read_text()) if r["model"] == "models/themes"]
        sections.append(
            "## ai_bubble on real text (docs/new_narrative.md)\n\n"
            f"Trained on {model.spec.training['positives'].get('ai_bubble', 0)} positive "
            "paragraphs, 60 of them written by us. Scored on the gate set and on real "
            "paragraphs held apart by article:\n\n"
            "| test | paragraphs | support | precision | recall | F1 | AP | AUC |\n"
            "|---|---|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {r['test']} | {r['paragraphs']} | {r['support']} | {r['precision']:.3f} | "
                f"{r['recall']:.3f} | {r['f1']:.3f} | {r['average_precision']:.3f} | "
                f"{r['roc_auc']:.3f} |"
                for r in rows
            )
            + "\n\nIts probabilities rank real paragraphs usefully; its threshold, chosen on ten "
            "real validation positives, is too high for real text. Treat its labels as "
            "provisional until it has a few hundred real positives."
        )
    write_model_card(args.out, model, validation, sources=sources, extra_sections=sections)
    print(f"model written to {args.out}; gate macro-F1 {gate.macro_f1:.3f}")
    for theme, metrics in gate.themes.items():
        print(f"  {theme:<16} {gate.methods[theme]:<9} F1 {metrics.f1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How a new narrative scores as it goes from few-shot to trained: ai_bubble, side by side.

    python scripts/eval_new_narrative.py MODEL_DIR... [--theme ai_bubble] [--json FILE]

Each model is scored on the theme's paragraphs in two test sets that no model trained on:
  gate   corpus/labels/written_gate.jsonl: paragraphs we wrote (25 ai_bubble positives)
  real   corpus/labels/shared_test_ai_bubble.jsonl: real non-held-out paragraphs of
         ../shared/data/news judged for ai_bubble alone, whole articles kept apart from the
         training labels (needs ../shared/data)
docs/new_narrative.md tells the story these figures come from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from narratives.classifier import ThemeModel
from narratives.training import read_labels, read_paragraph_labels, score

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "corpus" / "labels"
NEWS = ROOT / ".." / "shared" / "data" / "news"


def test_sets(theme: str, known: set[str]) -> dict[str, list]:
    sets = {"gate": read_labels([LABELS / "written_gate.jsonl"], known=known)}
    real = LABELS / f"shared_test_{theme}.jsonl"
    if real.is_file() and NEWS.is_dir():
        sets["real"] = read_paragraph_labels(real, sorted(NEWS.glob("*.jsonl")), known=known)
    else:
        print("real test set skipped: ../shared/data/news is not here", file=sys.stderr)
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL_DIR")
    parser.add_argument("--theme", default="ai_bubble")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    results = []
    for model_dir in args.models:
        model = ThemeModel.load(model_dir)
        if args.theme not in model.theme_ids:
            parser.error(f"{model_dir}: the themes file has no {args.theme!r}")
        column = model.theme_ids.index(args.theme)
        for name, examples in test_sets(args.theme, set(model.theme_ids)).items():
            examples = [e for e in examples if e.judged(args.theme)]
            probabilities = model.predict([e.passage for e in examples])[:, column]
            truth = np.array([args.theme in e.labels for e in examples])
            predicted = probabilities >= model.threshold(args.theme)
            m = score(predicted[:, None], truth[:, None], [args.theme]).themes[args.theme]
            results.append(
                {
                    "model": str(model_dir),
                    "method": model.method(args.theme),
                    "test": name,
                    "paragraphs": len(examples),
                    **m.as_dict(),
                    # The ranking alone, whatever the threshold.
                    "average_precision": round(average_precision_score(truth, probabilities), 4),
                    "roc_auc": round(roc_auc_score(truth, probabilities), 4),
                }
            )
    print("| model | method | test | paragraphs | support | P | R | F1 | AP | AUC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['model']} | {r['method']} | {r['test']} | {r['paragraphs']} | {r['support']} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
            f"| {r['average_precision']:.3f} | {r['roc_auc']:.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

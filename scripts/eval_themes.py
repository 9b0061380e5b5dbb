"""Theme classifier vs a keyword baseline on paragraphs from unseen articles (grouped CV).

    python scripts/eval_themes.py [--folds 5] [--json docs/eval_themes.json]

The labelled set is ../shared/data/labels/themes_dev.jsonl. It is split into K folds by
article (scikit-learn GroupKFold on article_id, deterministic), so no article has paragraphs on
both sides. For each fold the classifier is trained exactly as `narratives train` trains it, on
the other folds plus our own labels (corpus/labels/written_*.jsonl except the gate set, and
corpus/labels/shared_labels.jsonl joined with the non-held-out news texts), and scored on the
fold. The keyword baseline (phrase lists below) scores the same paragraphs in the same run.
Training dominates the run time: about 15 minutes per fold on a 2-core CPU; finished folds are
cached in .cache/ (keyed on the training code and labels), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from narratives.text import content_hash
from narratives.themes import load_themes
from narratives.training import (
    LabelledPassage,
    TrainConfig,
    label_matrix,
    merge_duplicates,
    read_labels,
    read_paragraph_labels,
    score,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
DEV = SHARED / "labels" / "themes_dev.jsonl"
# Paragraphs we wrote and labelled for training (the gate set, written_gate.jsonl, stays out).
WRITTEN_TRAINING = ("written_train.jsonl", "written_register.jsonl")
THEMES = ["rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash"]

# The obvious phrase lists a researcher would start from: the baseline to beat.
KEYWORDS = {
    "rate_cut_trade": [
        "rate cut",
        "rate cuts",
        "rate-cut",
        "cut rates",
        "cutting rates",
        "cut interest rates",
        "fedwatch",
        "dovish",
        "easing",
        "lower rates",
        "lower interest rates",
        "rate reduction",
    ],
    "trump_trade": [
        "trump trade",
        "trump rally",
        "trump bump",
        "trump win",
        "trump victory",
        "trump's win",
        "trump's victory",
        "trump's election",
        "president-elect",
        "republican sweep",
        "red wave",
        "trump 2.0",
        "election win",
    ],
    "short_squeeze": [
        "short squeeze",
        "squeeze",
        "short covering",
        "cover their shorts",
        "heavily shorted",
        "most shorted",
        "most-shorted",
        "short interest",
        "gamma squeeze",
        "short sellers",
        "moass",
    ],
    "dash_for_trash": [
        "dash for trash",
        "junk rally",
        "junk",
        "trash",
        "speculative",
        "speculation",
        "froth",
        "frothy",
        "meme stock",
        "meme stocks",
        "penny stock",
        "unprofitable",
        "low-quality",
        "spac",
        "euphoria",
        "risk appetite",
    ],
}


def keyword_predictions(examples: list[LabelledPassage]) -> np.ndarray:
    patterns = [
        re.compile("|".join(rf"\b{re.escape(k)}\b" for k in KEYWORDS[t]), re.IGNORECASE)
        for t in THEMES
    ]
    return np.array(
        [[bool(p.search(e.passage.text)) for p in patterns] for e in examples], dtype=bool
    )


def own_labels(themes: set[str]) -> list[LabelledPassage]:
    """Our labels beyond the dev set: written paragraphs, and shared paragraphs by id."""
    written = read_labels(
        [ROOT / "corpus" / "labels" / name for name in WRITTEN_TRAINING],
        known=themes,
        validation=False,
    )
    news = sorted((SHARED / "news").glob("*.jsonl"))
    shared = read_paragraph_labels(
        ROOT / "corpus" / "labels" / "shared_labels.jsonl", news, known=themes, considered=THEMES
    )
    ai_bubble = read_paragraph_labels(
        ROOT / "corpus" / "labels" / "shared_labels_ai_bubble.jsonl", news, known=themes
    )
    return merge_duplicates(written + shared + ai_bubble)


def frozen_predictions(
    dev: list[LabelledPassage], extra: list[LabelledPassage], test_sets: list[np.ndarray]
) -> np.ndarray:
    """The cheaper design measured side by side: the frozen encoder + a logistic head per theme.

    Same folds, same extra data, same grouped 15% validation split for the thresholds.
    """
    from sklearn.linear_model import LogisticRegression

    from narratives.encoder import Encoder, set_threads
    from narratives.training import best_threshold, grouped_split

    set_threads()
    encoder = Encoder(max_length=TrainConfig.max_length)
    dev_x = encoder.embed([e.passage for e in dev]).numpy()
    extra_x = encoder.embed([e.passage for e in extra]).numpy()
    dev_y, extra_y = label_matrix(dev, THEMES), label_matrix(extra, THEMES)
    predicted = np.zeros_like(dev_y, dtype=bool)
    for test in test_sets:
        held_out = set(test.tolist())
        keep = [i for i in range(len(dev)) if i not in held_out]
        examples = [dev[i] for i in keep] + extra
        x = np.concatenate([dev_x[keep], extra_x])
        y = np.concatenate([dev_y[keep], extra_y])
        fit_idx, val_idx = grouped_split(examples, 0.15, seed=13)
        for column in range(len(THEMES)):
            head = LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)
            head.fit(x[fit_idx], y[fit_idx, column])
            threshold = best_threshold(head.predict_proba(x[val_idx])[:, 1], y[val_idx, column])
            predicted[test, column] = head.predict_proba(dev_x[test])[:, 1] >= threshold
    return predicted


def grouped_folds(examples: list[LabelledPassage], k: int) -> list[np.ndarray]:
    from sklearn.model_selection import GroupKFold

    groups = [e.group for e in examples]
    return [test for _, test in GroupKFold(n_splits=k).split(examples, groups=groups)]


def evaluate_cv(
    folds: int = 5,
    only: list[int] | None = None,
    epochs: int = 3,
    *,
    fine_tune: bool = True,
    cache: Path | None = None,
) -> dict:
    """Cross-validated scores; each fold's predictions are cached so an interrupted run resumes."""
    themes = load_themes()
    known = {t.id for t in themes}
    dev = read_labels([DEV], known=known, considered=THEMES)
    # A paragraph reposted under another id (Reddit does this) must not leak into training.
    dev_texts = {content_hash(e.passage.text) for e in dev}
    extra = [e for e in own_labels(known) if content_hash(e.passage.text) not in dev_texts]
    test_sets = grouped_folds(dev, folds)
    truth = label_matrix(dev, THEMES)
    model_pred = np.zeros_like(truth, dtype=bool)
    scored = np.zeros(len(dev), dtype=bool)
    per_fold = []
    done = _load_cache(cache, folds, epochs)
    for number, test in enumerate(test_sets):
        if not fine_tune or (only is not None and number not in only):
            continue
        if number in done:
            model_pred[test] = done[number]["predicted"]
            scored[test] = True
            per_fold.append(done[number]["summary"])
            print(f"fold {number}: cached", file=sys.stderr, flush=True)
            continue
        started = time.monotonic()
        held_out = set(test.tolist())
        training = [e for i, e in enumerate(dev) if i not in held_out] + extra
        model, _ = train(training, themes, config=TrainConfig(epochs=epochs, seed=13 + number))
        probabilities = model.predict([dev[i].passage for i in test])
        columns = [model.theme_ids.index(t) for t in THEMES]
        model_pred[test] = probabilities[:, columns] >= model.thresholds[columns]
        scored[test] = True
        fold_eval = score(model_pred[test], truth[test], THEMES)
        per_fold.append(
            {
                "fold": number,
                "macro_f1": round(fold_eval.macro_f1, 4),
                "seconds": round(time.monotonic() - started),
            }
        )
        print(f"fold {number}: macro-F1 {fold_eval.macro_f1:.3f}", file=sys.stderr, flush=True)
        done[number] = {"predicted": model_pred[test], "summary": per_fold[-1]}
        _save_cache(cache, folds, epochs, done)
    if not fine_tune:
        scored[:] = True
    examples = [e for e, s in zip(dev, scored, strict=True) if s]
    ours = score(model_pred[scored], truth[scored], THEMES)
    baseline = score(keyword_predictions(examples), truth[scored], THEMES)
    frozen = frozen_predictions(dev, extra, [t for t in test_sets if scored[t].all()])
    return {
        "paragraphs": int(scored.sum()),
        "articles": len({e.group for e in examples}),
        "folds": folds,
        "folds_scored": len(per_fold) if fine_tune else folds,
        "split": "GroupKFold by article_id over themes_dev.jsonl",
        "extra_training_paragraphs": len(extra),
        "classifier": ours.as_dict() if fine_tune else None,
        "keywords": baseline.as_dict(),
        "frozen_encoder": score(frozen[scored], truth[scored], THEMES).as_dict(),
        "per_fold": per_fold,
    }


def _cache_key(folds: int, epochs: int) -> str:
    """Cached folds count only while the recipe, its code and its labels are unchanged."""
    digest = hashlib.sha256(f"folds={folds} epochs={epochs}".encode())
    package = ROOT / "src" / "narratives"
    inputs = [package / f"{name}.py" for name in ("training", "encoder", "classifier")]
    inputs += [*sorted((ROOT / "corpus" / "labels").glob("*.jsonl")), DEV]
    for path in inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _load_cache(cache: Path | None, folds: int, epochs: int) -> dict[int, dict]:
    if cache is None or not cache.is_file():
        return {}
    saved = json.loads(cache.read_text())
    if saved.get("key") != _cache_key(folds, epochs):
        return {}
    return {
        int(n): {"predicted": np.array(f["predicted"], dtype=bool), "summary": f["summary"]}
        for n, f in saved["folds"].items()
    }


def _save_cache(cache: Path | None, folds: int, epochs: int, done: dict[int, dict]) -> None:
    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "key": _cache_key(folds, epochs),
        "folds": {
            str(n): {"predicted": f["predicted"].astype(int).tolist(), "summary": f["summary"]}
            for n, f in done.items()
        },
    }
    cache.write_text(json.dumps(payload))


def _folds(results: dict) -> str:
    scored = results.get("folds_scored", results["folds"])
    if scored == results["folds"]:
        return f"{results['folds']} folds"
    return f"{scored} of {results['folds']} folds scored"


def format_report(results: dict) -> str:
    methods = [("keywords", "keywords"), ("frozen_encoder", "frozen+LR")]
    if results.get("classifier"):
        methods.append(("classifier", "fine-tuned"))
    lines = [
        f"{results['paragraphs']} paragraphs from {results['articles']} articles, "
        f"{results['split']} ({_folds(results)})",
        "",
        f"{'':<16}" + "".join(f"{label:^22}" for _, label in methods) + f"{'support':>8}",
        f"{'theme':<16}" + "".join(f"{'P':>7}{'R':>7}{'F1':>7} " for _ in methods),
    ]
    for theme in THEMES:
        cells = ""
        for key, _ in methods:
            m = results[key]["themes"][theme]
            cells += f"{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f} "
        support = results[methods[0][0]]["themes"][theme]["support"]
        lines.append(f"{theme:<16}{cells}{support:>8}")
    lines.append(
        f"{'macro-F1':<16}" + "".join(f"{results[key]['macro_f1']:>21.3f} " for key, _ in methods)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", type=int, nargs="*", help="run only these folds (quick look)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--min-macro-f1", type=float, help="exit 1 below this macro-F1")
    parser.add_argument(
        "--baselines-only",
        action="store_true",
        help="only the keyword and frozen-encoder baselines (minutes, not an hour); keeps the "
        "fine-tuned results already in --json",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="retrain every fold; by default folds finished by an earlier run of the same "
        "recipe (same code, labels and settings) are read from .cache/eval_themes_folds.json",
    )
    args = parser.parse_args(argv)
    if not DEV.is_file():
        print(f"no labelled set at {DEV}: ../shared/data is not here", file=sys.stderr)
        return 2
    cache = None if args.fresh else ROOT / ".cache" / "eval_themes_folds.json"
    results = evaluate_cv(
        args.folds, args.only, args.epochs, fine_tune=not args.baselines_only, cache=cache
    )
    if args.baselines_only and args.json and args.json.is_file():
        previous = json.loads(args.json.read_text())
        results["classifier"] = previous.get("classifier")
        results["per_fold"] = previous.get("per_fold", [])
    print(format_report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    scored = results["classifier"] or results["frozen_encoder"]
    if args.min_macro_f1 is not None and scored["macro_f1"] < args.min_macro_f1:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

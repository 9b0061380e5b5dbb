"""Theme models side by side on real paragraphs of unseen articles (the test side).

    python scripts/eval_themes.py [MODEL_DIR[=NAME] ...] [--json docs/eval_themes.json]

The test side is the fifth of the articles of ../shared/data/labels/themes_dev.jsonl and
themes_silver.jsonl that src/narratives/real_labels.py sets apart by a salted hash of the article
id; no recipe trains or calibrates on it. Every model named is scored on the same paragraphs in
the same run, beside the obvious keyword lists. Per model: precision, recall and F1 per theme,
macro-F1 over the four spec themes, paragraphs/s on this machine (title and date as `tag` gives
them, model loaded, bf16 where the CPU has it), and size on disk (trained tensors + encoder).

The committed model of 2026-11 (`models/themes` before this recipe) trained on themes_dev.jsonl,
test-side articles included, so its score over all test paragraphs flatters it; the `silver`
rows (paragraphs of themes_silver.jsonl only, which no earlier model saw) compare it fairly.
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

from narratives.classifier import ThemeModel
from narratives.encoder import set_threads
from narratives.real_labels import SPEC_THEMES, load_real_split
from narratives.themes import load_themes
from narratives.training import LabelledPassage, judged_matrix, label_matrix, score

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
THEMES = list(SPEC_THEMES)

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


CACHE = ROOT / ".cache" / "eval_themes"


def cached_predictions(
    model_dir: Path, examples: list[LabelledPassage], *, fresh: bool = False
) -> tuple[np.ndarray, dict]:
    """model_predictions, kept in .cache/ per model files and test paragraphs: re-running the
    report after adding a model scores only that model (speeds are from the run that scored)."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*")):
        if path.suffix in (".json", ".safetensors"):
            digest.update(path.read_bytes())
    for example in examples:
        digest.update(example.passage.text.encode())
    cache = CACHE / f"{digest.hexdigest()[:20]}.json"
    if cache.is_file() and not fresh:
        saved = json.loads(cache.read_text())
        return np.array(saved["predicted"], dtype=bool), saved["cost"]
    predicted, cost = model_predictions(model_dir, examples)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"predicted": predicted.astype(int).tolist(), "cost": cost}))
    return predicted, cost


def model_predictions(model_dir: Path, examples: list[LabelledPassage]) -> tuple[np.ndarray, dict]:
    """Labels for the four spec themes, and what the model cost (speed, size)."""
    started = time.monotonic()
    model = ThemeModel.load(model_dir)
    loaded = time.monotonic() - started
    passages = [e.passage for e in examples]
    model.predict(passages[:64])  # warm-up: kernel caches, bf16 cast
    started = time.monotonic()
    probabilities = model.predict(passages)
    seconds = time.monotonic() - started
    columns = [model.theme_ids.index(t) for t in THEMES]
    predicted = probabilities[:, columns] >= model.thresholds[columns]
    encoder_bytes = sum(p.stat().st_size for p in model.encoder.path.rglob("*") if p.is_file())
    tensors = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    run = model_dir / "training.json"  # written by scripts/train_themes.py
    trained = json.loads(run.read_text()) if run.is_file() else {}
    cost = {
        "train_minutes": round(trained["seconds"] / 60) if "seconds" in trained else None,
        "real_train_paragraphs": trained.get("real_train_paragraphs"),
        "paragraphs_per_second": round(len(passages) / seconds, 1),
        "load_seconds": round(loaded, 1),
        "precision": model.precision,
        "encoder": model.spec.encoder,
        "context": model.spec.context,
        "size_mb": round((encoder_bytes + tensors) / 1e6, 1),
        "trained_tensors_mb": round(tensors / 1e6, 1),
    }
    return predicted, cost


def evaluate_models(models: list[tuple[str, Path]], *, fresh: bool = False) -> dict:
    set_threads()
    known = {t.id for t in load_themes()}
    split = load_real_split(SHARED, known=known, test_only=True)
    test = split.test
    truth = label_matrix(test, THEMES)
    judged = judged_matrix(test, THEMES)
    subsets = {
        "all": np.ones(len(test), dtype=bool),
        # Paragraphs drawn at random or by broad keywords (no model chose them): closer to
        # what `tag` meets than the test side as a whole, whose hard negatives were chosen
        # where the 2026-11 model scored high.
        "not model-drawn": np.array([not o.endswith("/model") for o in split.test_origin]),
        # Only themes_silver.jsonl: paragraphs no model before this recipe trained on.
        "silver": np.array([o.startswith("themes_silver.jsonl") for o in split.test_origin]),
    }
    runs: dict[str, dict] = {"keywords": {"predicted": keyword_predictions(test), "cost": {}}}
    for name, model_dir in models:
        print(f"scoring {name} ({model_dir}) on {len(test)} paragraphs", file=sys.stderr)
        predicted, cost = cached_predictions(model_dir, test, fresh=fresh)
        runs[name] = {"predicted": predicted, "cost": cost}
    results = {
        "split": "real_labels.article_side: a salted hash of the article id, test side (20%)",
        "paragraphs": len(test),
        "articles": len({e.group for e in test}),
        "subsets": {
            subset: {
                "paragraphs": int(rows.sum()),
                "articles": len({e.group for e, r in zip(test, rows, strict=True) if r}),
                "support": {t: int(truth[rows, i].sum()) for i, t in enumerate(THEMES)},
            }
            for subset, rows in subsets.items()
        },
        "models": {},
    }
    for name, run in runs.items():
        entry = {"cost": run["cost"]}
        for subset, rows in subsets.items():
            entry[subset] = score(
                run["predicted"][rows], truth[rows], THEMES, judged=judged[rows]
            ).as_dict()
        results["models"][name] = entry
    return results


def format_report(results: dict, subset: str = "all") -> str:
    about = results["subsets"][subset]
    lines = [
        f"**{subset}**: {about['paragraphs']} test paragraphs from {about['articles']} unseen "
        "articles; positives " + ", ".join(f"{t} {n}" for t, n in about["support"].items()),
        "",
        "| model | " + " | ".join(THEMES) + " | macro-F1 | paragraphs/s | size MB | "
        "real labels | training min |",
        "|---|" + "---|" * (len(THEMES) + 5),
    ]
    for name, entry in results["models"].items():
        scores = entry[subset]
        cost = entry["cost"]
        cells = " | ".join(f"{scores['themes'][t]['f1']:.3f}" for t in THEMES)
        extra = [
            cost.get(k) if cost.get(k) is not None else "–"
            for k in ("paragraphs_per_second", "size_mb", "real_train_paragraphs", "train_minutes")
        ]
        lines.append(
            f"| {name} | {cells} | **{scores['macro_f1']:.3f}** | "
            + " | ".join(str(x) for x in extra)
            + " |"
        )
    return "\n".join(lines)


CARD_HEADING = "## Real paragraphs of unseen articles (scripts/eval_themes.py)"


def write_card_section(model_dir: Path, name: str, results: dict) -> None:
    """Put this run's test-side scores into the model card, replacing an earlier run's."""
    card = model_dir / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8").split(CARD_HEADING)[0].rstrip()
    entry = results["models"][name]
    rows = "\n".join(
        f"| {t} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} | "
        f"{results['models']['keywords']['all']['themes'][t]['f1']:.3f} |"
        for t, m in entry["all"]["themes"].items()
    )
    section = (
        f"{CARD_HEADING}\n\n{results['paragraphs']} paragraphs of {results['articles']} "
        "articles on the test side of the real labels (src/narratives/real_labels.py), which "
        "no recipe trains or calibrates on.\n\n"
        "| theme | precision | recall | F1 | support | keywords F1 |\n|---|---|---|---|---|---|\n"
        f"{rows}\n\nMacro-F1 {entry['all']['macro_f1']:.3f} (keywords "
        f"{results['models']['keywords']['all']['macro_f1']:.3f}); "
        f"{entry['cost']['paragraphs_per_second']} paragraphs/s on this machine "
        f"({entry['cost']['precision']}). `tests/test_quality_gate.py` pins floors under these.\n"
    )
    card.write_text(f"{text}\n\n{section}", encoding="utf-8")


def parse_model(arg: str) -> tuple[str, Path]:
    path, _, name = arg.partition("=")
    return (name or Path(path).name), Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "models",
        nargs="*",
        type=parse_model,
        metavar="MODEL_DIR[=NAME]",
        default=[("models/themes", ROOT / "models" / "themes")],
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument(
        "--fresh", action="store_true", help="score every model again (default: cached in .cache/)"
    )
    parser.add_argument(
        "--card",
        metavar="NAME",
        help="write the scores of the model called NAME into its MODEL_CARD.md",
    )
    args = parser.parse_args(argv)
    if not (SHARED / "labels").is_dir():
        print(f"no real labels at {SHARED / 'labels'}: ../shared/data is not here", file=sys.stderr)
        return 2
    results = evaluate_models(args.models, fresh=args.fresh)
    report = "\n\n".join(format_report(results, subset) for subset in results["subsets"])
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")
    if args.card:
        write_card_section(dict(args.models)[args.card], args.card, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a theme model on the real labels' train side, calibrate it on their validation side.

    python scripts/train_themes.py --out models/themes [--context date+title]
        [--precision bf16-mixed] [--epochs 3] [--no-written] [--max-train N]

Data (src/narratives/real_labels.py splits every real label by article, once for all recipes):
  - train: the train side of ../shared/data/labels/themes_dev.jsonl and themes_silver.jsonl,
    and of our own labels by pid (corpus/labels/shared_labels*.jsonl, joined with
    ../shared/data/news), plus the paragraphs we wrote (corpus/labels/written_train.jsonl and
    written_register.jsonl), which teach but never calibrate;
  - validation: the validation side, real paragraphs only: Platt scaling and thresholds;
  - test: never read here. scripts/eval_themes.py scores it.
`--max-train N` trains on a random N of the real train paragraphs (the learning curve).
Writes the model, its card, and `training.json` (what the run cost). With $NARRATIVES_ENCODER
pointing at another encoder directory (all-mpnet-base-v2), that encoder is fine-tuned instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

from narratives.classifier import MODEL_DIR, ThemeModel
from narratives.encoder import ENCODERS, Passage
from narratives.real_labels import OUR_FILES, load_real_split, restrict
from narratives.themes import load_themes
from narratives.training import (
    LabelledPassage,
    TrainConfig,
    calibrate,
    merge_duplicates,
    read_labels,
    train,
    write_model_card,
)

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "corpus" / "labels"
SHARED = ROOT / ".." / "shared" / "data"
WRITTEN = ("written_train.jsonl", "written_register.jsonl")


def written_sources() -> list[str]:
    return [f"corpus/labels/{name}" for name in WRITTEN]


def soft_examples(path: Path, learn: set[str]) -> list[LabelledPassage]:
    """Unlabelled paragraphs with a teacher's probabilities as their targets (train only)."""
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        soft = {t: p for t, p in record["soft"].items() if t in learn}
        examples.append(
            LabelledPassage(
                Passage(record["text"], record.get("title"), record.get("published")),
                frozenset(),
                record["article_id"],
                validation=False,
                considered=frozenset(soft),
                soft=tuple(sorted(soft.items())),
            )
        )
    return examples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--context", default="date+title", choices=["title", "date+title"])
    parser.add_argument("--precision", default="bf16-mixed", choices=["fp32", "bf16-mixed"])
    parser.add_argument("--max-length", type=int, default=TrainConfig.max_length)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--no-written", action="store_true", help="real paragraphs only")
    parser.add_argument("--max-train", type=int, help="train on a random N real paragraphs")
    parser.add_argument(
        "--negatives",
        type=float,
        default=1.0,
        help="keep this share of the train paragraphs that carry no theme (all positives stay)",
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="do not train: fit the calibration and thresholds of the model in --out again on "
        "the validation side (after a change to how they are fitted)",
    )
    parser.add_argument(
        "--few-shot",
        nargs="*",
        default=[],
        metavar="THEME",
        help="themes whose labels are dropped, so the model scores them few-shot",
    )
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        choices=sorted(OUR_FILES),
        help="leave out one of our label sets (to measure what it buys)",
    )
    parser.add_argument("--encoder", default="minilm", choices=sorted(ENCODERS))
    parser.add_argument(
        "--soft",
        type=Path,
        help="a teacher's scores on unlabelled paragraphs (scripts/distil_themes.py): trained "
        "on as soft targets beside the labels",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not (SHARED / "labels").is_dir():
        print(f"no real labels at {SHARED / 'labels'}: ../shared/data is not here", file=sys.stderr)
        return 2
    themes = load_themes()
    known = {t.id for t in themes}
    unknown = set(args.few_shot) - known
    if unknown:
        parser.error(f"--few-shot names themes the themes file lacks: {sorted(unknown)}")
    split = load_real_split(SHARED, known=known, our_labels=LABELS, exclude=args.exclude)
    learn = known - set(args.few_shot)
    split.train, split.validation = restrict(split.train, learn), restrict(split.validation, learn)
    real = split.train
    rng = random.Random(args.seed)
    if args.max_train and args.max_train < len(real):
        real = rng.sample(real, args.max_train)
    if args.negatives < 1.0:
        real = [e for e in real if e.labels or rng.random() < args.negatives]
    if args.recalibrate:
        model = ThemeModel.load(args.out, themes)
        validation = calibrate(model, split.validation, seed=args.seed)
        model.save(args.out)
        write_model_card(args.out, model, validation, sources=split.sources + written_sources())
        print(f"{args.out} recalibrated; validation macro-F1 {validation.macro_f1:.3f}")
        return 0
    examples, sources = list(real), list(split.sources)
    if not args.no_written:
        # Written paragraphs read unlike the corpus: they train but never calibrate.
        written = read_labels([LABELS / name for name in WRITTEN], known=known, validation=False)
        examples += restrict(written, learn)
        sources += written_sources()
    examples = merge_duplicates(examples)
    if args.soft:
        soft = soft_examples(args.soft, learn)
        examples += soft
        sources.append(f"{args.soft} ({len(soft)} paragraphs, a teacher's soft scores)")
    config = TrainConfig(
        epochs=args.epochs,
        context=args.context,
        precision=args.precision,
        max_length=args.max_length,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        encoder=ENCODERS[args.encoder],
    )
    started = time.monotonic()
    model, validation = train(examples, themes, config=config, validation=split.validation)
    seconds = time.monotonic() - started
    model.spec.training["real_train_paragraphs"] = len(real)
    model.spec.training["seconds"] = round(seconds)
    model.save(args.out)
    write_model_card(args.out, model, validation, sources=sources)
    cost = {
        "train_paragraphs": len(examples),
        "real_train_paragraphs": len(real),
        "validation_paragraphs": len(split.validation),
        "epochs": args.epochs,
        "seconds": round(seconds),
        "config": config.__dict__,
        "validation_macro_f1": round(validation.macro_f1, 4),
    }
    (args.out / "training.json").write_text(json.dumps(cost, indent=2) + "\n")
    print(
        f"model written to {args.out} in {seconds / 60:.1f} min; validation macro-F1 "
        f"{validation.macro_f1:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

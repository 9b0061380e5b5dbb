"""Real labelled paragraphs, and the one split by article that trains, calibrates and tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from narratives.text import content_hash
from narratives.training import (
    LabelledPassage,
    LabelsError,
    merge_duplicates,
    read_labels,
    read_paragraph_labels,
)

SPEC_THEMES = ("rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash")
# Paragraphs labelled by careful reading under spec/themes.md, in ../shared/data/labels: the
# reference set and the second annotators' set (with the hard negatives the 2026-11 model
# confused). They carry their texts; only they are used to test.
SHARED_FILES = ("themes_dev.jsonl", "themes_silver.jsonl")
# Our own labels of other non-held-out paragraphs, by pid (corpus/labels): they train and
# calibrate, never test, since their labellers were not measured against the reference set.
OUR_FILES = {
    "shared_labels.jsonl": SPEC_THEMES,
    "shared_labels_ai_bubble.jsonl": None,  # each line names what it judged (ai_bubble)
}
# Every article lands on one side by a salted hash of its id: stable as labels are added, the
# same for every recipe, and no article has paragraphs on two sides.
SALT = "narratives/real-split/1"
TEST_SHARE = 0.20
VALIDATION_SHARE = 0.15


def article_side(article_id: str) -> str:
    """ "test", "validation" or "train" for an article id."""
    digest = hashlib.sha256(f"{SALT}:{article_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < TEST_SHARE:
        return "test"
    if position < TEST_SHARE + VALIDATION_SHARE:
        return "validation"
    return "train"


@dataclass
class RealSplit:
    """Real paragraphs by side. `test` holds only paragraphs of the shared label files."""

    train: list[LabelledPassage]
    validation: list[LabelledPassage]
    test: list[LabelledPassage]
    sources: list[str]
    # The shared file each test paragraph came from, and how it was drawn when the file says
    # ("themes_silver.jsonl/model": chosen where the 2026-11 model scored high or was unsure).
    test_origin: list[str]


def load_real_split(
    shared_data: str | Path,
    *,
    known: set[str],
    our_labels: str | Path | None = None,
    test_only: bool = False,
    exclude: Sequence[str] = (),
) -> RealSplit:
    """Read the real labels of `shared_data` (../shared/data) and, from `our_labels`
    (corpus/labels), our labels joined with the news texts (but the files named in `exclude`);
    split them by article.

    A paragraph whose text also sits on the test side (a repost under another id) is dropped
    from training and validation. With `test_only`, only the test side is read (fast: no news
    files), as the quality gate needs.
    """
    labels_dir = Path(shared_data) / "labels"
    missing = [name for name in SHARED_FILES if not (labels_dir / name).is_file()]
    if missing:
        raise LabelsError(f"no real labels at {labels_dir} (missing {', '.join(missing)})")
    sources = [f"../shared/data/labels/{name}" for name in SHARED_FILES]
    sides: dict[str, list[LabelledPassage]] = {"train": [], "validation": [], "test": []}
    origin: dict[str, str] = {}
    for name in SHARED_FILES:
        drawn = _drawn(labels_dir / name)
        for example in read_labels([labels_dir / name], known=known, considered=SPEC_THEMES):
            side = article_side(example.group)
            sides[side].append(example)
            if side == "test":
                key = content_hash(example.passage.text)
                origin.setdefault(key, f"{name}/{drawn[key]}" if drawn.get(key) else name)
    test = merge_duplicates(sides["test"])
    test_origin = [origin[content_hash(e.passage.text)] for e in test]
    if test_only:
        return RealSplit([], [], test, sources, test_origin)
    ours: list[LabelledPassage] = []
    if our_labels is not None:
        news = sorted((Path(shared_data) / "news").glob("*.jsonl"))
        for name, considered in OUR_FILES.items():
            if name in exclude:
                continue
            path = Path(our_labels) / name
            if path.is_file():
                ours += read_paragraph_labels(path, news, known=known, considered=considered)
                sources.append(f"corpus/labels/{name} (joined with ../shared/data/news)")
    for example in ours:
        side = article_side(example.group)
        if side != "test":
            sides[side].append(example)
    tested = {content_hash(e.passage.text) for e in test}
    train, validation = (
        [e for e in merge_duplicates(sides[side]) if content_hash(e.passage.text) not in tested]
        for side in ("train", "validation")
    )
    # A paragraph on both sides (the same text in two articles) stays on the validation side.
    validating = {content_hash(e.passage.text) for e in validation}
    train = [e for e in train if content_hash(e.passage.text) not in validating]
    return RealSplit(train, validation, test, sources, test_origin)


def _drawn(path: Path) -> dict[str, str]:
    """How each paragraph of a label file was drawn, where it says (themes_silver.jsonl:
    "keywords+random", or "model" for the 2026-11 model's high and unsure scores)."""
    drawn = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                drawn[content_hash(record["text"].strip())] = record.get("drawn", "")
    return drawn


def restrict(examples: Sequence[LabelledPassage], themes: set[str]) -> list[LabelledPassage]:
    """The examples with only the labels of `themes` kept."""
    return [replace(e, labels=frozenset(e.labels & themes)) for e in examples]

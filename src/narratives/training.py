"""Training and evaluating the theme classifier from labelled paragraphs."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from narratives.classifier import (
    DEFAULT_FEWSHOT,
    Calibration,
    ModelSpec,
    ThemeModel,
    fewshot_probability,
    similarity_feature,
)
from narratives.encoder import (
    MINILM,
    Encoder,
    Passage,
    encoder_path,
    length_batches,
    resolve_precision,
    set_threads,
)
from narratives.errors import NarrativesError
from narratives.themes import Theme

log = logging.getLogger(__name__)

# A theme needs this many positive paragraphs to get a trained head; fewer stays few-shot.
MIN_POSITIVES = 20
# A theme needs this many validation positives for its calibration and threshold to be fitted.
MIN_CALIBRATION_POSITIVES = 8


class LabelsError(NarrativesError):
    """A labels file is missing or malformed."""


@dataclass(frozen=True)
class LabelledPassage:
    passage: Passage
    labels: frozenset[str]
    group: str  # paragraphs of one article share a group and are never split across sets
    # May be held out to calibrate: written examples, which read unlike the corpus, train only.
    validation: bool = True
    # The themes the labeller judged; None means all. A label set made before a theme existed
    # says nothing about that theme, so its paragraphs are not negatives for it.
    considered: frozenset[str] | None = None
    # A teacher model's probabilities (distillation): the training targets instead of the
    # labels for the themes it scored. Never used to calibrate or to score.
    soft: tuple[tuple[str, float], ...] | None = None

    def judged(self, theme_id: str) -> bool:
        return self.considered is None or theme_id in self.considered or theme_id in self.labels


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 1.5e-3  # LoRA adapters
    head_learning_rate: float = 1e-3
    lora_rank: int = 8
    lora_alpha: float = 16.0
    max_length: int = 160
    validation_share: float = 0.15
    min_positives: int = MIN_POSITIVES
    seed: int = 13
    context: str = "title"  # or "date+title": the article's month is read too
    encoder: str = MINILM  # or encoder.MPNET (installed by `make accurate`)
    # Training arithmetic: fp32, or bf16-mixed (autocast; about 1.35x faster with AVX-512 BF16).
    precision: str = "fp32"


@dataclass
class ThemeMetrics:
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "support": self.support,
            "predicted": self.predicted,
        }


@dataclass
class Evaluation:
    """Per-theme precision/recall/F1 and the macro average over themes with support."""

    themes: dict[str, ThemeMetrics]
    methods: dict[str, str] = field(default_factory=dict)
    paragraphs: int = 0

    @property
    def macro_f1(self) -> float:
        scored = [m.f1 for m in self.themes.values() if m.support]
        return float(np.mean(scored)) if scored else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """The inverse of as_dict (as stored in a model's config.json)."""
        themes, methods = {}, {}
        for theme_id, m in data.get("themes", {}).items():
            themes[theme_id] = ThemeMetrics(
                m["precision"], m["recall"], m["f1"], m["support"], m.get("predicted", 0)
            )
            methods[theme_id] = m.get("method", "")
        return cls(themes, methods, data.get("paragraphs", 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "paragraphs": self.paragraphs,
            "macro_f1": round(self.macro_f1, 4),
            "themes": {
                k: {**m.as_dict(), "method": self.methods.get(k, "")}
                for k, m in self.themes.items()
            },
        }


# -- labels files ---------------------------------------------------------------------------


def read_labels(
    paths: Sequence[str | Path],
    *,
    known: set[str] | None = None,
    validation: bool = True,
    considered: Iterable[str] | None = None,
) -> list[LabelledPassage]:
    """Read `{"text": ..., "labels": [...]}` lines (optional `title`, `article_id`/`group`/`id`,
    and `considered`: the theme ids the labeller judged, when not all of them).

    Unknown theme ids are an error when `known` is given: a typo would silently train nothing.
    With `validation=False` the paragraphs only ever train, never calibrate. `considered` sets
    the judged themes for every line that does not say.
    """
    default_considered = frozenset(considered) if considered is not None else None
    examples: list[LabelledPassage] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise LabelsError(f"no labels file at {path}")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelsError(f"{where}: not valid JSON ({exc.msg})") from exc
            text, labels = record.get("text"), record.get("labels")
            if not isinstance(text, str) or not text.strip():
                raise LabelsError(f'{where}: needs a non-empty "text"')
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise LabelsError(f'{where}: "labels" must be a list of theme ids (may be [])')
            if known is not None and set(labels) - known:
                raise LabelsError(
                    f"{where}: unknown theme ids {sorted(set(labels) - known)}; the themes file "
                    f"defines {sorted(known)}"
                )
            judged = record.get("considered", default_considered)
            if judged is not None and (
                not isinstance(judged, list | frozenset)
                or not all(isinstance(x, str) for x in judged)
            ):
                raise LabelsError(f'{where}: "considered" must be a list of theme ids')
            if known is not None and judged is not None and set(judged) - known:
                raise LabelsError(f"{where}: unknown theme ids {sorted(set(judged) - known)}")
            title = record.get("title") if isinstance(record.get("title"), str) else None
            group = record.get("article_id") or record.get("group") or record.get("id")
            examples.append(
                LabelledPassage(
                    passage=Passage(
                        text=text.strip(), title=title, published=_iso(record.get("published"))
                    ),
                    labels=frozenset(labels),
                    group=str(group) if group is not None else f"{path}:{number}",
                    validation=validation,
                    considered=frozenset(judged) if judged is not None else None,
                )
            )
    if not examples:
        raise LabelsError("the labels files hold no paragraphs")
    return examples


def label_matrix(examples: Sequence[LabelledPassage], theme_ids: Sequence[str]) -> np.ndarray:
    return np.array([[t in e.labels for t in theme_ids] for e in examples], dtype=np.int8)


def target_matrix(examples: Sequence[LabelledPassage], theme_ids: Sequence[str]) -> np.ndarray:
    """Training targets: the labels, or a teacher's probabilities where an example has them."""
    targets = label_matrix(examples, theme_ids).astype(np.float32)
    for row, example in enumerate(examples):
        if example.soft:
            soft = dict(example.soft)
            for column, theme_id in enumerate(theme_ids):
                if theme_id in soft:
                    targets[row, column] = soft[theme_id]
    return targets


def judged_matrix(examples: Sequence[LabelledPassage], theme_ids: Sequence[str]) -> np.ndarray:
    """1 where the example's labeller judged the theme (positive or negative), else 0."""
    return np.array([[e.judged(t) for t in theme_ids] for e in examples], dtype=np.int8)


# -- splitting ------------------------------------------------------------------------------


def grouped_split(
    examples: Sequence[LabelledPassage], share: float, *, seed: int
) -> tuple[list[int], list[int]]:
    """Indices for (train, validation) with whole groups on one side.

    Groups holding a rare theme are spread first, so every theme has positives on both sides.
    """
    groups: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        if example.validation:
            groups.setdefault(example.group, []).append(index)
    counts = Counter(label for e in examples if e.validation for label in e.labels)
    rng = random.Random(seed)
    names = list(groups)
    rng.shuffle(names)

    def rarity(name: str) -> float:
        labels = {label for i in groups[name] for label in examples[i].labels}
        return min((counts[label] for label in labels), default=float("inf"))

    names.sort(key=rarity)
    held_out: list[int] = []
    per_theme = Counter[str]()
    target = share * sum(len(members) for members in groups.values())
    for name in names:
        labels = {label for i in groups[name] for label in examples[i].labels}
        needs = any(per_theme[label] < share * counts[label] for label in labels)
        if len(held_out) < target and (needs or not labels):
            held_out.extend(groups[name])
            per_theme.update(label for i in groups[name] for label in examples[i].labels)
    chosen = set(held_out)
    return [i for i in range(len(examples)) if i not in chosen], sorted(chosen)


# -- training -------------------------------------------------------------------------------


def train(
    examples: Sequence[LabelledPassage],
    themes: list[Theme],
    *,
    config: TrainConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    validation: Sequence[LabelledPassage] | None = None,
) -> tuple[ThemeModel, Evaluation]:
    """Fine-tune LoRA adapters and a multi-label head; calibrate and pick thresholds.

    The model is trained on `examples`, then its logits on validation paragraphs fit one Platt
    scaling per theme and the F1-best threshold, and the few-shot similarity-to-probability
    mapping for themes without enough labels. Validation is `validation` when given (real
    paragraphs split by article, see real_labels), else a grouped share of `examples`. Returns
    the model and its scores on the validation paragraphs.
    """
    config = config or TrainConfig()
    set_threads()
    torch.manual_seed(config.seed)
    theme_ids = [t.id for t in themes]
    known = set(theme_ids)
    stray = {label for e in examples for label in e.labels} - known
    if stray:
        raise LabelsError(f"labels use theme ids the themes file lacks: {sorted(stray)}")
    positives = Counter(label for e in examples for label in e.labels)
    trained = [t for t in theme_ids if positives[t] >= config.min_positives]
    if not trained:
        raise LabelsError(
            f"no theme has {config.min_positives} positive paragraphs to learn from "
            f"(have: {dict(positives)})"
        )
    if validation is None:
        train_idx, val_idx = grouped_split(examples, config.validation_share, seed=config.seed)
        train_set = [examples[i] for i in train_idx]
        val_set = [examples[i] for i in val_idx]
    else:
        train_set, val_set = list(examples), list(validation)

    encoder = Encoder(
        encoder_path(config.encoder), max_length=config.max_length, context=config.context
    )
    encoder.add_lora(config.lora_rank, config.lora_alpha)
    head = nn.Linear(encoder.dimension, len(trained))
    _fit(encoder, head, train_set, trained, config, progress)
    adapter = encoder.lora_state()  # kept for saving: merging folds it into the weights
    encoder.merge_lora()
    if config.precision != "fp32":
        # Calibrate on the logits inference will give on a CPU with bf16 (and spare a large
        # encoder an fp32 pass over the validation side).
        encoder.precision = resolve_precision("auto")

    spec = ModelSpec(
        trained=trained,
        calibration={},
        thresholds={},
        max_length=config.max_length,
        lora_rank=config.lora_rank,
        lora_alpha=config.lora_alpha,
        context=config.context,
        encoder=config.encoder,
    )
    model = ThemeModel(encoder, head.eval(), spec, themes, adapter=adapter)
    spec.training = {
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "paragraphs": len(train_set) + len(val_set),
        "train_paragraphs": len(train_set),
        "validation_paragraphs": len(val_set),
        "positives": {t: positives[t] for t in theme_ids},
        "config": config.__dict__,
    }
    evaluation = calibrate(model, val_set, seed=config.seed)
    return model, evaluation


def calibrate(
    model: ThemeModel, validation: Sequence[LabelledPassage], *, seed: int = 13
) -> Evaluation:
    """Fit each trained theme's Platt scaling and threshold, and the few-shot curve, on
    validation paragraphs; the model's scores there.

    A theme with fewer than MIN_CALIBRATION_POSITIVES validation positives keeps the head's
    own sigmoid and the even-odds threshold: two parameters fitted to a handful of positives
    chase noise (4 ai_bubble positives gave a slope of 0.23 and a theme that never fires).
    """
    spec, trained = model.spec, model.spec.trained
    val_passages = [e.passage for e in validation]
    embeddings = model.encoder.embed(val_passages)
    with torch.inference_mode():
        logits = model.head(embeddings).numpy()
    y_val = label_matrix(validation, trained)
    judged = judged_matrix(validation, trained).astype(bool)
    for column, theme_id in enumerate(trained):
        rows = judged[:, column]
        if y_val[rows, column].sum() < MIN_CALIBRATION_POSITIVES:
            spec.calibration[theme_id] = Calibration()
            spec.thresholds[theme_id] = 0.5
            continue
        spec.calibration[theme_id] = fit_platt(logits[rows, column], y_val[rows, column])
        probabilities = spec.calibration[theme_id].apply(logits[rows, column])
        spec.thresholds[theme_id] = best_threshold(probabilities, y_val[rows, column])
    # The few-shot curve needs the un-tuned encoder's view: a sample of the validation side is
    # enough to fit two numbers, and spares a large encoder a second full pass.
    sample = sorted(random.Random(seed).sample(range(len(validation)), min(len(validation), 1000)))
    spec.fewshot = fit_fewshot(
        model,
        model.base_encoder.embed([val_passages[i] for i in sample]),
        [validation[i] for i in sample],
        trained,
    )
    # Scored from the embeddings already computed: the validation side is encoded once.
    base_embeddings = model.base_encoder.embed(val_passages) if model.has_fewshot else None
    evaluation = evaluate(model, validation, embeddings=(embeddings, base_embeddings))
    spec.training["validation"] = evaluation.as_dict()
    return evaluation


def _fit(
    encoder: Encoder,
    head: nn.Linear,
    examples: Sequence[LabelledPassage],
    theme_ids: list[str],
    config: TrainConfig,
    progress: Callable[[str, int, int], None] | None,
) -> None:
    passages = [e.passage for e in examples]
    targets = torch.tensor(target_matrix(examples, theme_ids), dtype=torch.float32)
    judged = torch.tensor(judged_matrix(examples, theme_ids), dtype=torch.float32)
    positives = targets.sum(dim=0)
    # Square-root class balancing: rare themes weigh more without drowning precision.
    negatives = judged.sum(dim=0) - positives
    pos_weight = (negatives / positives.clamp(min=1)).clamp(min=1.0, max=10.0).sqrt()
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")

    def loss_fn(logits: torch.Tensor, indices: list[int]) -> torch.Tensor:
        # Themes a paragraph's labeller never judged contribute nothing.
        mask = judged[indices]
        return (bce(logits, targets[indices]) * mask).sum() / mask.sum().clamp(min=1.0)

    adapters = [p for p in encoder.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": adapters, "lr": config.learning_rate},
            {"params": head.parameters(), "lr": config.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    batches = (len(passages) + config.batch_size - 1) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=[config.learning_rate, config.head_learning_rate],
        total_steps=config.epochs * batches,
        pct_start=0.1,
    )
    generator = torch.Generator().manual_seed(config.seed)
    mixed = config.precision == "bf16-mixed"
    step = 0
    for epoch in range(config.epochs):
        encoder.train()
        head.train()
        started, total = time.monotonic(), 0.0
        for indices in length_batches(passages, config.batch_size, shuffle=generator):
            batch = encoder.tokenize([passages[i] for i in indices])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
                logits = head(encoder(batch["input_ids"], batch["attention_mask"]))
            loss = loss_fn(logits.float(), indices)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
            step += 1
            if progress:
                progress(f"epoch {epoch + 1}/{config.epochs}", step, config.epochs * batches)
        log.info("epoch %d: loss %.2f in %.0fs", epoch + 1, total, time.monotonic() - started)


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Platt scaling: a one-feature logistic regression of the labels on the logit."""
    from sklearn.linear_model import LogisticRegression

    if labels.sum() == 0 or labels.sum() == len(labels):
        return Calibration()
    regression = LogisticRegression(C=100.0).fit(logits.reshape(-1, 1), labels)
    return Calibration(float(regression.coef_[0, 0]), float(regression.intercept_[0]))


def best_threshold(
    probabilities: np.ndarray, labels: np.ndarray, *, min_positives: int = MIN_CALIBRATION_POSITIVES
) -> float:
    """The probability cut-off with the best smoothed F1 on validation.

    F1 is computed on a 0.10–0.90 grid and averaged over a ±0.05 window before taking the best
    (ties: the middle of the best run), because the raw arg-max over a few dozen positives chases
    noise. With fewer than ``min_positives`` validation positives there is nothing to choose on,
    and the calibrated even-odds cut-off 0.5 is kept.
    """
    if labels.sum() < min_positives:
        return 0.5
    grid = np.round(np.arange(0.10, 0.901, 0.025), 3)
    scores = np.array([_f1(probabilities >= t, labels) for t in grid])
    smoothed = np.convolve(np.pad(scores, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    best = np.flatnonzero(smoothed >= smoothed.max() - 1e-9)
    return float(grid[best[len(best) // 2]])


def fit_fewshot(
    model: ThemeModel,
    embeddings: torch.Tensor,
    examples: Sequence[LabelledPassage],
    trained: list[str],
) -> dict[str, float]:
    """Map similarity-to-examples to a probability, fitted on the themes that have labels.

    The trained themes stand in for new ones: how similar a paragraph is to a theme's examples
    versus whether it carries the theme tells us how to read similarity for any theme.
    `embeddings` are the un-tuned encoder's, as few-shot scoring uses them.
    """
    from sklearn.linear_model import LogisticRegression

    normalised = torch.nn.functional.normalize(embeddings, dim=1)
    features, targets = [], []
    for theme in model.themes:
        if theme.id not in trained:
            continue
        positives, negatives = model.example_embeddings(theme)
        features.append(similarity_feature(normalised, positives, negatives))
        targets.append([theme.id in e.labels for e in examples])
    x = np.concatenate(features).reshape(-1, 1)
    y = np.concatenate(targets).astype(int)
    if y.sum() == 0:
        return dict(DEFAULT_FEWSHOT)
    regression = LogisticRegression(C=100.0).fit(x, y)
    slope, intercept = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    params = {"center": -intercept / slope, "scale": 1.0 / slope, "threshold": 0.5}
    probabilities = fewshot_probability(x[:, 0], params)
    params["threshold"] = best_threshold(probabilities, y)
    return params


# -- evaluation -----------------------------------------------------------------------------


def evaluate(
    model: ThemeModel,
    examples: Sequence[LabelledPassage],
    *,
    embeddings: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> Evaluation:
    """Precision, recall and F1 per theme of `model` on labelled paragraphs (from their tuned
    and un-tuned `embeddings` when they are at hand)."""
    if embeddings is None:
        probabilities = model.predict([e.passage for e in examples])
    else:
        probabilities = model.predict_embeddings(*embeddings)
    predicted = probabilities >= model.thresholds
    truth = label_matrix(examples, model.theme_ids)
    return score(
        predicted,
        truth,
        model.theme_ids,
        methods={t: model.method(t) for t in model.theme_ids},
        judged=judged_matrix(examples, model.theme_ids),
    )


def score(
    predicted: np.ndarray,
    truth: np.ndarray,
    theme_ids: Sequence[str],
    *,
    methods: dict[str, str] | None = None,
    judged: np.ndarray | None = None,
) -> Evaluation:
    """Scores per theme; with `judged`, only rows whose labeller judged the theme count."""
    metrics = {}
    for column, theme_id in enumerate(theme_ids):
        p, t = predicted[:, column].astype(bool), truth[:, column].astype(bool)
        if judged is not None:
            rows = judged[:, column].astype(bool)
            p, t = p[rows], t[rows]
        tp = int((p & t).sum())
        precision = tp / p.sum() if p.sum() else 0.0
        recall = tp / t.sum() if t.sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics[theme_id] = ThemeMetrics(precision, recall, f1, int(t.sum()), int(p.sum()))
    return Evaluation(themes=metrics, methods=methods or {}, paragraphs=len(truth))


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = float((predicted & (truth == 1)).sum())
    denominator = float(predicted.sum() + truth.sum())
    return 2 * tp / denominator if denominator else 0.0


# -- model card -----------------------------------------------------------------------------


def write_model_card(
    model_dir: str | Path,
    model: ThemeModel,
    evaluation: Evaluation,
    *,
    sources: Sequence[str],
    extra_sections: Sequence[str] = (),
) -> Path:
    """models/<name>/MODEL_CARD.md: what the model is, what it learned from, how it scored."""
    spec = model.spec
    training = spec.training
    cfg = training.get("config", {})
    lines = [
        "# Theme classifier model card",
        "",
        f"Trained {training.get('trained_at', '?')} by `narratives train`.",
        "",
        "## What it is",
        f"- Encoder: {spec.encoder}, max {spec.max_length} tokens, input = "
        + (
            "the article's month and title (context) + paragraph."
            if spec.context == "date+title"
            else "article title (context) + paragraph."
        ),
        f"- Training: {cfg.get('epochs', '?')} epochs, batch {cfg.get('batch_size', '?')}, "
        f"learning rate {cfg.get('learning_rate', '?')} (head {cfg.get('head_learning_rate', '?')}"
        f"), {cfg.get('precision', 'fp32')} arithmetic, seed {cfg.get('seed', '?')}"
        + (
            f"; {training['seconds'] / 60:.0f} minutes on 2 cores."
            if "seconds" in training
            else "."
        ),
        f"- Fine-tuning: LoRA adapters (rank {spec.lora_rank}, alpha {spec.lora_alpha:g}) on every "
        "attention and feed-forward projection, plus a linear multi-label head; the adapters are "
        "merged into the encoder at load time, so scoring runs at the bare encoder's speed.",
        "- Probabilities: Platt-scaled per theme on validation paragraphs held apart by "
        "article; each theme's threshold maximises F1 on that split, smoothed over ±0.05 (0.5 "
        "where the split holds fewer than 8 positives).",
        "- Themes without enough labels are scored few-shot: similarity to the examples in the "
        "themes file, mapped to a probability by a curve fitted on the trained themes.",
        "",
        "## Data",
        f"- {training.get('paragraphs', '?')} labelled paragraphs "
        f"({training.get('train_paragraphs', '?')} train, "
        f"{training.get('validation_paragraphs', '?')} validation), from:",
        *[f"  - `{source}`" for source in sources],
        "- Positive paragraphs per theme: "
        + ", ".join(f"{k} {v}" for k, v in training.get("positives", {}).items()),
        "",
        "## Thresholds and calibration",
        "",
        "| theme | method | threshold | Platt slope | Platt intercept |",
        "|---|---|---|---|---|",
    ]
    for theme_id in model.theme_ids:
        c = spec.calibration.get(theme_id)
        lines.append(
            f"| {theme_id} | {model.method(theme_id)} | {model.threshold(theme_id):.3f} | "
            + (f"{c.slope:.3f} | {c.intercept:.3f} |" if c else "– | – |")
        )
    fewshot = spec.fewshot
    lines += [
        "",
        f"Few-shot mapping: p = sigmoid((similarity − {fewshot['center']:.3f}) / "
        f"{fewshot['scale']:.4f}), threshold {fewshot['threshold']:.3f}.",
        "",
        "## Scores on the validation split",
        "",
        "| theme | method | precision | recall | F1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for theme_id, m in evaluation.themes.items():
        lines.append(
            f"| {theme_id} | {evaluation.methods.get(theme_id, '')} | {m.precision:.3f} | "
            f"{m.recall:.3f} | {m.f1:.3f} | {m.support} |"
        )
    lines += ["", f"Macro-F1 {evaluation.macro_f1:.3f} (themes with validation positives).", ""]
    unvalidated = [
        t for t, m in evaluation.themes.items() if not m.support and model.method(t) == "trained"
    ]
    if unvalidated:
        lines += [
            f"No validation positives for {', '.join(unvalidated)}: all of its labels are "
            "train-only (written by us), so its probabilities are the head's uncalibrated "
            "sigmoid and its threshold is 0.5. Judge it by the sections below.",
            "",
        ]
    for section in extra_sections:
        lines += [section.rstrip(), ""]
    path = Path(model_dir) / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def read_paragraph_labels(
    labels_path: str | Path,
    news_paths: Sequence[str | Path],
    *,
    known: set[str] | None = None,
    considered: Iterable[str] | None = None,
) -> list[LabelledPassage]:
    """Labels that point at paragraphs of a JSONL news corpus instead of carrying the text.

    Lines are `{"pid": "<article id>#p<n>", "labels": [...]}` (optional `considered`, as in
    read_labels) with n the index in `text.split("\\n\\n")`; the texts and titles are read
    from `news_paths`. This keeps labels of third-party articles shareable without copying the
    articles.
    """
    wanted: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    path = Path(labels_path)
    if not path.is_file():
        raise LabelsError(f"no labels file at {path}")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        pid = record.get("pid", "")
        article_id, _, position = pid.rpartition("#p")
        if not article_id or not position.isdigit():
            raise LabelsError(f"{path}:{number}: pid must look like '<article id>#p<n>'")
        labels = record.get("labels")
        if not isinstance(labels, list) or (known is not None and set(labels) - known):
            raise LabelsError(f"{path}:{number}: bad labels {labels!r}")
        wanted.setdefault(article_id, []).append((int(position), record))
    examples: list[LabelledPassage] = []
    found = set()
    for news in map(Path, news_paths):
        with news.open(encoding="utf-8") as handle:
            for line in handle:
                article = json.loads(line)
                items = wanted.get(article.get("id"))
                if not items:
                    continue
                found.add(article["id"])
                paragraphs = article["text"].split("\n\n")
                for position, record in items:
                    if position < len(paragraphs) and paragraphs[position].strip():
                        examples.append(
                            LabelledPassage(
                                passage=Passage(
                                    paragraphs[position].strip(),
                                    article.get("title"),
                                    _iso(article.get("published")),
                                ),
                                labels=frozenset(record["labels"]),
                                group=article["id"],
                                considered=_considered(record, considered),
                            )
                        )
    missing = set(wanted) - found
    if missing:
        log.warning("%d labelled articles not found in the news files", len(missing))
    return examples


def _iso(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _considered(record: dict[str, Any], default: Iterable[str] | None) -> frozenset[str] | None:
    judged = record.get("considered", default)
    return frozenset(judged) if judged is not None else None


def merge_duplicates(examples: Sequence[LabelledPassage]) -> list[LabelledPassage]:
    """One example per paragraph text: labels and judged themes of the copies are united.

    The same paragraph can sit in two label sets made for different themes (the four spec
    themes, then a new one); keeping only the first copy would lose the other's judgement.
    """
    from narratives.text import content_hash

    merged: dict[str, LabelledPassage] = {}
    for example in examples:
        key = content_hash(example.passage.text)
        first = merged.get(key)
        if first is None:
            merged[key] = example
            continue
        considered = (
            None
            if first.considered is None or example.considered is None
            else first.considered | example.considered
        )
        merged[key] = replace(
            first,
            labels=first.labels | example.labels,
            considered=considered,
            validation=first.validation and example.validation,
        )
    return list(merged.values())

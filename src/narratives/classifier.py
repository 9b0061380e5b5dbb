"""The theme classifier: calibrated per-theme probabilities for paragraphs, trained or few-shot."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from narratives.encoder import (
    MINILM,
    Encoder,
    EncoderError,
    Passage,
    encoder_path,
    resolve_precision,
)
from narratives.errors import NarrativesError
from narratives.records import text_records
from narratives.themes import DEFAULT_THEMES, Theme, load_themes

MODEL_DIR = Path("models/themes")
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
FORMAT = 1
# How an untrained theme's similarity becomes a probability when no training has fitted it.
DEFAULT_FEWSHOT = {"center": 0.45, "scale": 0.05, "threshold": 0.5}


class ModelError(NarrativesError):
    """The theme model is missing or does not fit the themes or the encoder."""


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of one theme's logit: p = sigmoid(slope · logit + intercept)."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * logits + self.intercept)))


@dataclass
class ModelSpec:
    """Everything about a trained model except its tensors; stored as config.json."""

    trained: list[str]  # theme ids the head has a row for, in row order
    calibration: dict[str, Calibration]
    thresholds: dict[str, float]
    fewshot: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FEWSHOT))
    max_length: int = 160
    lora_rank: int = 8
    lora_alpha: float = 16.0
    encoder: str = MINILM
    training: dict[str, Any] = field(default_factory=dict)
    context: str = "title"  # what the encoder reads before the paragraph (encoder.CONTEXTS)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "encoder": self.encoder,
            "max_length": self.max_length,
            "context": self.context,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
            "trained": self.trained,
            "calibration": {
                k: {"slope": c.slope, "intercept": c.intercept} for k, c in self.calibration.items()
            },
            "thresholds": self.thresholds,
            "fewshot": self.fewshot,
            "training": self.training,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        if data.get("format") != FORMAT:
            raise ModelError(f"model format {data.get('format')} is not {FORMAT}: retrain it")
        return cls(
            trained=list(data["trained"]),
            calibration={k: Calibration(**v) for k, v in data["calibration"].items()},
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
            fewshot=dict(data.get("fewshot", DEFAULT_FEWSHOT)),
            max_length=int(data["max_length"]),
            lora_rank=int(data["lora_rank"]),
            lora_alpha=float(data["lora_alpha"]),
            encoder=data.get("encoder", ""),
            training=data.get("training", {}),
            context=data.get("context", "title"),
        )


# What each precision adds to the fingerprint. bf16-mixed was called bf16 before whole-model
# bf16 existed: corpora it tagged stay current under its new name.
FINGERPRINT_PRECISION = {"bf16": "bf16-weights", "bf16-mixed": "bf16"}


class ThemeModel:
    """Scores passages for every theme of a themes file.

    Themes the model was trained on get their head's logit, Platt-calibrated, and the threshold
    chosen on validation data. Themes it has not learned are scored by similarity to their
    examples (method "few-shot", lower confidence) until `narratives train` learns them.

    Similarity is measured with the un-tuned encoder: fine-tuning folds the embedding space
    around the trained themes, and a new theme's examples stop standing apart in it. So a model
    with few-shot themes runs the encoder twice per batch until they are trained.
    """

    def __init__(
        self,
        encoder: Encoder,
        head: nn.Linear | None,
        spec: ModelSpec,
        themes: list[Theme],
        *,
        adapter: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.encoder = encoder
        self.adapter = adapter or {}  # LoRA tensors, already merged into the encoder
        self.head = head
        self.spec = spec
        self.themes = themes
        self.theme_ids = [t.id for t in themes]
        self._trained_rows = {tid: row for row, tid in enumerate(spec.trained)}
        self._base: Encoder | None = None if self.adapter else encoder
        self._prototypes = {
            t.id: self.example_embeddings(t) for t in themes if t.id not in self._trained_rows
        }

    @property
    def base_encoder(self) -> Encoder:
        """The encoder without the fine-tuning, for few-shot themes (loaded on first use)."""
        if self._base is None:
            self._base = Encoder(
                encoder_path(self.spec.encoder),
                max_length=self.spec.max_length,
                precision=self.precision,
                context=self.spec.context,
            )
        return self._base

    @property
    def precision(self) -> str:
        """`fp32` or `bf16`: the encoder's arithmetic at inference."""
        return self.encoder.precision

    @property
    def has_fewshot(self) -> bool:
        return bool(self._prototypes)

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model_dir: str | Path = MODEL_DIR,
        themes: str | Path | list[Theme] = DEFAULT_THEMES,
        *,
        precision: str | None = "auto",
    ) -> ThemeModel:
        """Load a trained model; with no model directory, every theme is scored few-shot.

        `precision` is the encoder's arithmetic at inference (`auto`, `fp32`, `bf16`; see
        `encoder.resolve_precision`); None reads $NARRATIVES_PRECISION.
        """
        theme_list = themes if isinstance(themes, list) else load_themes(themes)
        model_dir = Path(model_dir)
        config = model_dir / CONFIG
        if not config.is_file():
            raise ModelError(
                f"no theme model at {model_dir}: run `narratives train LABELS.jsonl` first, or "
                "use the one committed in models/themes (run from the repository root)"
            )
        spec = ModelSpec.from_json(json.loads(config.read_text(encoding="utf-8")))
        encoder = Encoder(
            encoder_path(spec.encoder),
            max_length=spec.max_length,
            precision=resolve_precision(precision),
            context=spec.context,
        )
        tensors = _load_tensors(model_dir / WEIGHTS)
        lora = {k: v for k, v in tensors.items() if ".lora_" in k}
        if lora:
            try:
                encoder.load_lora(lora, spec.lora_rank, spec.lora_alpha)
            except EncoderError as exc:
                raise ModelError(f"{model_dir}: {exc}") from exc
        head = nn.Linear(encoder.dimension, len(spec.trained))
        head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
        return cls(encoder, head.eval(), spec, theme_list, adapter=lora)

    @classmethod
    def untrained(cls, themes: list[Theme], *, max_length: int = 160) -> ThemeModel:
        """The bare encoder and every theme few-shot: what a brand-new install can do."""
        spec = ModelSpec(trained=[], calibration={}, thresholds={}, max_length=max_length)
        return cls(Encoder(max_length=max_length), None, spec, themes)

    def save(self, model_dir: str | Path) -> None:
        """Write config.json and the adapter + head tensors (a few MB, fit for git)."""
        from safetensors.torch import save_file

        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in self.adapter.items()}
        if self.head is not None:
            tensors["head.weight"] = self.head.weight.detach().contiguous()
            tensors["head.bias"] = self.head.bias.detach().contiguous()
        save_file(tensors, str(model_dir / WEIGHTS))
        (model_dir / CONFIG).write_text(json.dumps(self.spec.to_json(), indent=2) + "\n")

    # -- scoring -----------------------------------------------------------------------------

    def method(self, theme_id: str) -> str:
        return "trained" if theme_id in self._trained_rows else "few-shot"

    def threshold(self, theme_id: str) -> float:
        if theme_id in self._trained_rows:
            return self.spec.thresholds.get(theme_id, 0.5)
        return self.spec.fewshot.get("threshold", 0.5)

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([self.threshold(t) for t in self.theme_ids])

    def predict(self, passages: Sequence[Passage], *, batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities, one row per passage, one column per theme (themes order)."""
        if not passages:
            return np.zeros((0, len(self.theme_ids)))
        embeddings = self.encoder.embed(passages, batch_size=batch_size)
        base = None
        if self.has_fewshot:
            base = (
                embeddings
                if self.base_encoder is self.encoder
                else self.base_encoder.embed(passages, batch_size=batch_size)
            )
        return self.predict_embeddings(embeddings, base)

    def predict_embeddings(
        self, embeddings: torch.Tensor, base_embeddings: torch.Tensor | None = None
    ) -> np.ndarray:
        """Probabilities from the tuned encoder's embeddings (and the un-tuned one's, needed
        when the model has few-shot themes)."""
        if self.has_fewshot and base_embeddings is None:
            raise ValueError("few-shot themes need the un-tuned encoder's embeddings")
        out = np.zeros((embeddings.shape[0], len(self.theme_ids)))
        logits = None
        if self.head is not None and self.spec.trained:
            with torch.inference_mode():
                logits = self.head(embeddings).numpy()
        for column, theme_id in enumerate(self.theme_ids):
            row = self._trained_rows.get(theme_id)
            if row is not None and logits is not None:
                calibration = self.spec.calibration.get(theme_id, Calibration())
                out[:, column] = calibration.apply(logits[:, row])
            else:
                out[:, column] = self._fewshot(base_embeddings, theme_id)
        return out

    def labels(self, probabilities: np.ndarray) -> list[list[str]]:
        """Theme ids at or over their threshold, per row."""
        over = probabilities >= self.thresholds
        return [[t for t, hit in zip(self.theme_ids, row, strict=True) if hit] for row in over]

    # -- few-shot ----------------------------------------------------------------------------

    def example_embeddings(self, theme: Theme) -> tuple[torch.Tensor, torch.Tensor | None]:
        encoder = self.base_encoder
        positives = _normalise(encoder.embed([Passage(e) for e in theme.examples]))
        negatives = None
        if theme.counter_examples:
            negatives = _normalise(encoder.embed([Passage(e) for e in theme.counter_examples]))
        return positives, negatives

    def _fewshot(self, embeddings: torch.Tensor, theme_id: str) -> np.ndarray:
        positives, negatives = self._prototypes[theme_id]
        return fewshot_probability(
            similarity_feature(_normalise(embeddings), positives, negatives), self.spec.fewshot
        )

    def fingerprint(self) -> str:
        """Identifies the scores this model gives: weights, calibration and theme definitions."""
        digest = hashlib.sha256(json.dumps(self.spec.to_json(), sort_keys=True).encode())
        if self.precision != "fp32":  # bf16 scores differ in the third decimal: not mixed
            digest.update(FINGERPRINT_PRECISION[self.precision].encode())
        for theme in self.themes:
            digest.update(json.dumps([theme.id, theme.examples, theme.counter_examples]).encode())
        return digest.hexdigest()[:16]


def similarity_feature(
    embeddings: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None
) -> np.ndarray:
    """Mean of the two best cosine similarities to the examples, less any closer counter-example.

    Two neighbours, not one, so a single lucky match counts for less.
    """
    sims = embeddings @ positives.T
    k = min(2, sims.shape[1])
    score = sims.topk(k, dim=1).values.mean(dim=1)
    if negatives is not None:
        closest_negative = (embeddings @ negatives.T).max(dim=1).values
        score = score - torch.clamp(closest_negative - score, min=0.0)
    return score.numpy()


def fewshot_probability(feature: np.ndarray, params: dict[str, float]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(feature - params["center"]) / params["scale"]))


def _normalise(embeddings: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(embeddings, dim=1)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelError(f"{path} is missing: the model directory is incomplete, retrain it")
    return load_file(str(path))


class ClassifyInputError(NarrativesError):
    """A line given to `classify` is not a JSON object with a text."""


def classify_jsonl(
    model: ThemeModel,
    lines: Iterable[str],
    write: Callable[[str], object],
    *,
    batch_size: int = 1024,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Classify `{"id", "text"}` lines (optional `"title"`) and write one result line each.

    Output lines are `{"id", "themes": {theme: probability}, "labels": [...]}`, in input order,
    plus `"few_shot": [...]` naming the themes scored by similarity to their examples (lower
    confidence) when the model has any. Lines are read and written a batch at a time, so input
    of any size streams through.
    """
    count = 0
    batch: list[tuple[object, Passage]] = []
    few_shot = [t for t in model.theme_ids if model.method(t) == "few-shot"]
    marks = {"few_shot": few_shot} if few_shot else {}

    def flush() -> None:
        probabilities = model.predict([p for _, p in batch])
        for (record_id, _), row, labels in zip(
            batch, probabilities, model.labels(probabilities), strict=True
        ):
            themes = {t: round(float(p), 4) for t, p in zip(model.theme_ids, row, strict=True)}
            line = {"id": record_id, "themes": themes, "labels": labels, **marks}
            write(json.dumps(line) + "\n")
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    for record in text_records(lines, ClassifyInputError):
        title = record.get("title") if isinstance(record.get("title"), str) else None
        published = record.get("published") if isinstance(record.get("published"), str) else None
        batch.append((record.get("id"), Passage(record["text"], title, published)))
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return count

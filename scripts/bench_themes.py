"""Throughput of `classify` beside the bare encoder on the same paragraphs, in the same run.

    python scripts/bench_themes.py [--paragraphs 2000] [--repeats 5] [--out docs/bench_themes]

Three ways to score the same title + paragraph inputs, each on all cores:
  encoder     transformers AutoModel forward + mean pooling, length-sorted batches of 64: the
              raw library doing the encoder's work and nothing else
  st_encode   sentence-transformers' own `encode` (what most projects would call)
  classify    narratives' `classify_jsonl` end to end: JSON lines in, JSON lines with
              calibrated probabilities and labels out
Runs alternate (encoder, st_encode, classify, encoder, ...) so machine noise hits all alike;
the best of the repeats (5 by default) is reported, and classify as a share of the encoder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from narratives.classifier import MODEL_DIR, ThemeModel, classify_jsonl
from narratives.encoder import Passage, base_model_path, length_batches, set_threads

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "sample" / "articles.jsonl"
SHARED_NEWS = ROOT / ".." / "shared" / "data" / "news" / "ibd_the_big_picture.jsonl"


def load_paragraphs(limit: int) -> tuple[list[Passage], str]:
    """Real market-column paragraphs when ../shared is here, else the bundled sample's."""
    source = SHARED_NEWS if SHARED_NEWS.is_file() else SAMPLE
    passages: list[Passage] = []
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            article = json.loads(line)
            for paragraph in article["text"].split("\n\n"):
                if paragraph.strip():
                    passages.append(Passage(paragraph.strip(), article.get("title")))
            if len(passages) >= limit:
                break
    while len(passages) < limit:  # the sample is small: cycle it
        passages += passages[: limit - len(passages)]
    return passages[:limit], source.name


def bench_encoder(passages: list[Passage], max_length: int) -> float:
    from transformers import AutoModel, AutoTokenizer

    path = str(base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def run() -> None:
        with torch.inference_mode():
            for indices in length_batches(passages, 64):
                batch = tokenizer(
                    [passages[i].title or "" for i in indices],
                    [passages[i].text for i in indices],
                    truncation="longest_first",
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                )
                states = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                _ = (states * mask).sum(1) / mask.sum(1)

    return _timed(run)


def bench_st_encode(passages: list[Passage], max_length: int) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_model_path()), device="cpu")
    model.max_seq_length = max_length
    texts = [[p.title or "", p.text] for p in passages]
    return _timed(lambda: model.encode(texts, batch_size=64, show_progress_bar=False))


def bench_classify(passages: list[Passage], model: ThemeModel) -> float:
    lines = [
        json.dumps({"id": i, "title": p.title, "text": p.text}) for i, p in enumerate(passages)
    ]
    return _timed(lambda: classify_jsonl(model, lines, io.StringIO().write))


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paragraphs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", type=Path, default=ROOT / MODEL_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_themes")
    args = parser.parse_args(argv)
    set_threads()
    passages, source = load_paragraphs(args.paragraphs)
    model = ThemeModel.load(args.model)
    max_length = model.spec.max_length
    bench_classify(passages[:64], model)  # warm-up: first calls allocate
    timings: dict[str, list[float]] = {"encoder": [], "st_encode": [], "classify": []}
    for _ in range(args.repeats):
        timings["encoder"].append(bench_encoder(passages, max_length))
        timings["st_encode"].append(bench_st_encode(passages, max_length))
        timings["classify"].append(bench_classify(passages, model))
    rates = {k: len(passages) / min(v) for k, v in timings.items()}
    ratio = rates["classify"] / rates["encoder"]
    result = {
        "paragraphs": len(passages),
        "source": source,
        "max_length": max_length,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "seconds": {k: [round(x, 2) for x in v] for k, v in timings.items()},
        "paragraphs_per_second": {k: round(v, 1) for k, v in rates.items()},
        "classify_vs_encoder": round(ratio, 3),
    }
    lines = [
        "# Theme classification throughput",
        "",
        f"{len(passages)} title + paragraph inputs from `{source}`, max {max_length} tokens, "
        f"{result['threads']} threads on {result['cores']} cores; best of {args.repeats} "
        "alternating runs. Reproduce: `python scripts/bench_themes.py`.",
        "",
        "| method | paragraphs/s | vs bare encoder |",
        "|---|---|---|",
    ]
    for name in ("encoder", "st_encode", "classify"):
        lines.append(f"| {name} | {rates[name]:.1f} | {rates[name] / rates['encoder']:.0%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

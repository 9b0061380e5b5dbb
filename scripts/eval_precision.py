"""What bfloat16 inference costs in quality and buys in speed, on the labelled paragraphs.

    python scripts/eval_precision.py [--repeats 3] [--out docs/encoder_precision]

Scores the committed model (models/themes) on the same paragraphs with the encoder in float32,
in bfloat16 throughout, and under bfloat16 autocast, and reports per theme F1 for each:
  - test: real paragraphs of unseen articles, the test side of src/narratives/real_labels.py
    (needs ../shared/data);
  - written: corpus/labels/written_gate.jsonl, paragraphs we wrote, never trained on.
It also times each on the test paragraphs (alternating runs, best of --repeats) and
counts how many labels change. Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from narratives.classifier import MODEL_DIR, ThemeModel
from narratives.encoder import cpu_flags, set_threads
from narratives.real_labels import load_real_split
from narratives.themes import load_themes
from narratives.training import LabelledPassage, judged_matrix, label_matrix, read_labels, score

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16", "bf16-mixed")  # the reference first
sys.path.insert(0, str(ROOT / "scripts"))
from report import write_report  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data"
WRITTEN = ROOT / "corpus" / "labels" / "written_gate.jsonl"


def scored(model: ThemeModel, examples: list[LabelledPassage]) -> tuple[dict, np.ndarray]:
    probabilities = model.predict([e.passage for e in examples])
    evaluation = score(
        probabilities >= model.thresholds,
        label_matrix(examples, model.theme_ids),
        model.theme_ids,
        judged=judged_matrix(examples, model.theme_ids),
    )
    return evaluation.as_dict(), probabilities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "encoder_precision")
    args = parser.parse_args(argv)
    set_threads()
    themes = load_themes()
    known = {t.id for t in themes}
    sets: dict[str, list[LabelledPassage]] = {"written": read_labels([WRITTEN], known=known)}
    if (SHARED / "labels").is_dir():
        sets = {"test": load_real_split(SHARED, known=known, test_only=True).test, **sets}
    models = {p: ThemeModel.load(ROOT / MODEL_DIR, themes, precision=p) for p in PRECISIONS}
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "fast_bf16_cpu": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}),
        "sets": {},
    }
    thresholds = models["fp32"].thresholds
    for name, items in sets.items():
        out: dict[str, object] = {"paragraphs": len(items)}
        probabilities = {}
        for precision, model in models.items():
            out[precision], probabilities[precision] = scored(model, items)
        reference = probabilities["fp32"] >= thresholds
        out["label_cells"] = int(reference.size)
        out["against_fp32"] = {
            p: {
                "labels_changed": int(((probabilities[p] >= thresholds) != reference).sum()),
                "max_probability_difference": round(
                    float(np.abs(probabilities[p] - probabilities["fp32"]).max()), 4
                ),
                "macro_f1_change": round(out[p]["macro_f1"] - out["fp32"]["macro_f1"], 4),
            }
            for p in PRECISIONS[1:]
        }
        results["sets"][name] = out
    timing_set = next(iter(sets.values()))
    passages = [e.passage for e in timing_set]
    best = dict.fromkeys(models, float("inf"))
    for model in models.values():
        model.predict(passages[:128])  # warm: shapes' kernels, the one-off bf16 cast
    for _ in range(args.repeats):
        for precision, model in models.items():
            started = time.perf_counter()
            model.predict(passages)
            best[precision] = min(best[precision], time.perf_counter() - started)
    results["paragraphs_per_second"] = {p: round(len(passages) / s, 1) for p, s in best.items()}
    results["speedup"] = {p: round(best["fp32"] / best[p], 2) for p in PRECISIONS[1:]}
    write_report(args.out, results, markdown)
    return 0


def markdown(results: dict) -> str:
    lines = [
        "# Encoder precision: float32, bfloat16 and mixed",
        "",
        "`python scripts/eval_precision.py` scores the committed model on the same labelled "
        "paragraphs three ways: the encoder in float32; in bfloat16 throughout (`bf16`: weights "
        "and activations, embeddings pooled in fp32, head in fp32); and under bfloat16 autocast "
        "(`bf16-mixed`: matrix products in bf16, layer norms and softmax in fp32). "
        f"Machine: {results['machine']}; native bf16 units: "
        f"{', '.join(results['fast_bf16_cpu']) or 'none'}.",
        "",
        "| set | paragraphs | theme | F1 fp32 | F1 bf16 | F1 bf16-mixed |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, out in results["sets"].items():
        for theme, m32 in out["fp32"]["themes"].items():
            f1s = [out[p]["themes"][theme]["f1"] for p in PRECISIONS[1:]]
            cells = " | ".join(f"{f1:.3f} ({f1 - m32['f1']:+.3f})" for f1 in f1s)
            lines.append(f"| {name} | {out['paragraphs']} | {theme} | {m32['f1']:.3f} | {cells} |")
        cells = " | ".join(
            f"**{out[p]['macro_f1']:.3f} ({out['against_fp32'][p]['macro_f1_change']:+.3f})**"
            for p in PRECISIONS[1:]
        )
        lines.append(
            f"| **{name}** | | **macro-F1** | **{out['fp32']['macro_f1']:.3f}** | {cells} |"
        )
    lines += [
        "",
        "| set | precision | labels changed vs fp32 | of | largest probability change |",
        "|---|---|---:|---:|---:|",
    ]
    for name, out in results["sets"].items():
        for p, change in out["against_fp32"].items():
            lines.append(
                f"| {name} | {p} | {change['labels_changed']} | {out['label_cells']} | "
                f"{change['max_probability_difference']:.4f} |"
            )
    pps, speedup = results["paragraphs_per_second"], results["speedup"]
    lines += [
        "",
        "Speed on the same paragraphs (best of alternating runs, after a warm-up): "
        + ", ".join(f"{p} {pps[p]} paragraphs/s" for p in PRECISIONS)
        + "; against fp32: "
        + ", ".join(f"{p} **{speedup[p]}x**" for p in PRECISIONS[1:])
        + ".",
        "",
        "`--precision auto` (the default) picks bf16 only on CPUs with native bf16 units "
        "(AMX or AVX-512 BF16); elsewhere bf16 is emulated and slower, so it stays fp32. "
        "The model fingerprint includes the precision, so a corpus is never scored half one "
        "way, half the other.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

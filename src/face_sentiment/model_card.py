"""The model card shipped beside the model: `models/model_card.json` and `model_card.md`.

The JSON is machine-read (the Pi runner takes `classes` and `preprocessing` from it; CI checks
the committed model against `metrics`); the Markdown renders the same facts for people.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from face_sentiment.paths import models_dir

# Limitations that hold whichever labels the model was trained on.
COMMON_LIMITATIONS = [
    "FER2013 has no per-image demographics. FairFace-model predictions for its images "
    "(Dominguez-Catena et al.) put 71% of faces as White and 44% as aged 20-29 (gender 50/50): "
    "accuracy on under-represented groups is not established by the FER2013 figures.",
    "Accuracy drops on spontaneous expressions, non-frontal faces, occlusion and poor lighting; "
    "webcam accuracy is expected to be well below the dataset figure.",
    "An expression is not an emotion: the model classifies facial configurations, not what a "
    "person feels. Do not use it for decisions about individuals.",
]
LIMITATIONS = [
    "Trained on FER2013: web images of mostly posed or acted expressions, 48x48 grayscale, "
    "labels by a single annotator each (FER+ agrees with only about 63% of them).",
    *COMMON_LIMITATIONS,
    "Disgust has 436 training images (1.5%); its recall is the least reliable.",
]
# The FER+ variant: same images, FER+'s ten-annotator labels instead of FER2013's single ones.
FERPLUS_LIMITATIONS = [
    "Trained on FER2013's images with FER+'s labels (ten crowd annotators per image), on their "
    "vote distributions. 'PrivateTest' accuracy uses this project's majority rule (top vote, no "
    "tie, unknown/not-a-face dropped); published FER+ figures use FER+'s stricter reference "
    "rule (over half of the votes after dropping single votes), reported as its own row.",
    *COMMON_LIMITATIONS,
    "Contempt (162 training images with a FER+ majority) and disgust (175) are the rarest "
    "classes; their recall is the least reliable.",
]
NONDETERMINISTIC_TRAINING = (
    "Trained without TensorFlow op determinism (1.8x faster on CPU): data order, augmentation "
    "and initialisation are seeded, but floating-point reductions are not, so retraining gives "
    "a model that differs by run-to-run noise. The shipped files, and every figure measured "
    "from them, are fixed.")


def limitations(label_set: str, deterministic: bool) -> list[str]:
    """The card's known limitations for a model trained on `label_set`."""
    base = FERPLUS_LIMITATIONS if label_set == "ferplus" else LIMITATIONS
    return base + ([] if deterministic else [NONDETERMINISTIC_TRAINING])


def machine_description() -> dict[str, str]:
    """Where a latency was measured."""
    return {"platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": str(os.cpu_count())}


def write_card(card: dict, folder: Path | None = None) -> Path:
    """Write model_card.json and model_card.md atomically."""
    folder = folder or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("model_card.json", json.dumps(card, indent=2) + "\n"),
                       ("model_card.md", render_markdown(card))):
        staging = folder / f".{name}.tmp"
        staging.write_text(text)
        staging.replace(folder / name)
    return folder / "model_card.json"


def load_card(folder: Path | None = None) -> dict:
    return json.loads(((folder or models_dir()) / "model_card.json").read_text())


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def render_markdown(card: dict) -> str:
    metrics = card["metrics"]
    lines = [
        f"# Model card: {card['name']} ({card['model_file']})",
        "",
        card["description"],
        "",
        "## Model",
        f"- Classes ({card['label_set']}): {', '.join(card['classes'])}",
        f"- Architecture: {card['architecture']}; {card['parameters']:,} parameters, "
        f"{card['multiply_adds'] / 1e6:.1f} M multiply-adds per face",
        f"- Input: {card['preprocessing']['size']}x{card['preprocessing']['size']} grayscale, "
        f"preprocessing `{card['preprocessing']['method']}` "
        "(`face_sentiment.preprocessing`, read from this card by every consumer)",
        f"- File: `{card['model_file']}`, {card['file_size_kb']:.0f} KB, {card['quantization']}",
        "",
        "## Provenance",
        f"- Code commit: `{card['code_commit']}`",
        f"- FER2013 sha256: `{card['data']['fer2013_sha256']}`",
        f"- FER+ sha256: `{card['data'].get('ferplus_sha256')}`",
        f"- Training: `{json.dumps(card['training'])}`",
        f"- Reproduce: `{card['reproduce']}`",
        "",
        "## Metrics",
        "Selection on PublicTest only; PrivateTest reported once. Intervals: 95% bootstrap.",
        "",
        "| set | n | accuracy (95% CI) | macro-F1 | top-2 | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in metrics.items():
        ci = values.get("accuracy_ci", [float("nan")] * 2)
        lines.append(f"| {name} | {values['n']} | {_pct(values['accuracy'])} "
                     f"({_pct(ci[0])} to {_pct(ci[1])}) | {values['macro_f1']:.3f} | "
                     f"{_pct(values['top2_accuracy'])} | {values['ece']:.3f} |")
    lines += ["", "## Variants and latency",
              f"Measured on {card['latency_machine']['processor']} "
              f"({card['latency_machine']['platform']}), "
              f"{card.get('latency_runtime', 'tflite-runtime')}, batch 1.", "",
              "| variant | size KB | PrivateTest accuracy | p50 ms 1 thread | p95 ms 1 thread | "
              "p50 ms 2 threads |", "|---|---|---|---|---|---|"]
    for row in card["variants"]:
        lines.append(f"| {row['variant']} | {row['size_kb']:.0f} | {_pct(row['accuracy'])} | "
                     f"{row['p50_ms_1t']:.3f} | {row['p95_ms_1t']:.3f} | {row['p50_ms_2t']:.3f} |")
    if card.get("runtimes"):
        lines += ["", "Against the `fer` TFLite model, int8, 1 thread, timed side by side on each "
                  "installed runtime:", "",
                  "| runtime | ours p50 ms | fer p50 ms | ours / fer |", "|---|---|---|---|"]
        lines += [f"| {row['runtime']} | {row['p50_ms']:.3f} | {row['fer_p50_ms']:.3f} | "
                  f"{row['ratio_to_fer']:.2f} |" for row in card["runtimes"]]
    if card.get("baseline"):
        lines += ["", "## Baseline", "", f"{card['baseline']}"]
    lines += ["", "## Known limitations", *[f"- {item}" for item in card["limitations"]], ""]
    return "\n".join(lines)

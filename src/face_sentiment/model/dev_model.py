"""Stand-in TFLite expression models for developing and testing the Pi runner (needs TensorFlow).

The runner's contract is `models/face_sentiment_int8.tflite` plus `models/model_card.json`.
Until the trained model is exported, this module writes a model with the same contract: the
project's architecture (`build_model`, random weights unless a trained `.keras` file is given),
converted from a SavedModel (`TFLiteConverter.from_keras_model` crashes with Keras 3 here) with
full-integer int8 quantisation or as float32, and a model card whose `preprocessing` entry is
the default `PreprocessingSpec`. Its predictions are meaningless unless trained weights are
given; the tests use a tiny variant so that building it takes seconds.

Never imported by the runner: it is the only module on the Pi path that needs TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live.classifier import write_self_test
from face_sentiment.model_card import ModelCard
from face_sentiment.paths import write_atomic
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

TINY = {"stem_filters": 4, "stage_filters": (8, 8, 8, 8)}


def _representative_faces(spec: PreprocessingSpec, count: int = 64, seed: int = 0):
    """Calibration inputs: smooth random 'faces' through the real preprocessing."""
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (6, 6)).astype(np.float32)
        smooth = cv2.resize(coarse, (spec.size, spec.size), interpolation=cv2.INTER_LINEAR)
        crops.append(np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8))
    inputs = preprocess_faces(crops, spec)

    def generate():
        for face in inputs:
            yield [face[np.newaxis]]
    return generate


def export_dev_model(out_dir: str | Path, *, quantize: bool = True, tiny: bool = False,
                     keras_path: str | Path | None = None, seed: int = 0) -> Path:
    """Write `<out_dir>/face_sentiment_{int8,float32}.tflite` and `model_card.json`.

    Returns the path of the .tflite file. `keras_path` (a trained `.keras` checkpoint) gives
    real weights; otherwise they are random (seeded).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from face_sentiment.model.architecture import architecture_spec, build_model
    from face_sentiment.model.io import load_trained

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = PreprocessingSpec()
    keras.utils.set_random_seed(seed)
    if keras_path is not None:
        model = load_trained(keras_path)
    else:
        model = build_model(augment=False, seed=seed, **(TINY if tiny else {}))
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative_faces(spec)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
    name = f"face_sentiment_{'int8' if quantize else 'float32'}.tflite"
    model_path = out_dir / name
    write_atomic(model_path, flatbuffer)
    note = ("development stand-in written by face_sentiment.model.dev_model"
            + (f" from {keras_path}" if keras_path else " (random weights)"))
    card = ModelCard(FER2013_CLASSES, spec, name, {"note": note})
    card.with_architecture(architecture_spec(model)).write(out_dir)
    write_self_test(model_path)
    return model_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--float", action="store_true", help="float32 instead of int8")
    parser.add_argument("--tiny", action="store_true", help="tiny network (tests)")
    parser.add_argument("--keras", help="trained .keras checkpoint to convert")
    args = parser.parse_args(argv)
    path = export_dev_model(args.out_dir, quantize=not args.float, tiny=args.tiny,
                            keras_path=args.keras)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

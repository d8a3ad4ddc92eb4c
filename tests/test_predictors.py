"""Predictors: a Keras checkpoint with its run's preprocessing, the TFLite model with its card,
flip test-time augmentation and `load_predictor`'s references and errors.

The Keras checkpoint is the project's network (with its augmentation layers, as training saves
it) at random weights; the TFLite model is dev_model's tiny int8 stand-in (conftest's
`int8_model`, built once per machine and cached in the temp folder: helpers.tiny_model_files).
Both need TensorFlow (those tests are marked); the TTA bookkeeping and `load_predictor`'s
errors do not.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_keras_model
from synthetic import random_faces

from face_sentiment.evaluation.predictors import (
    FlipAveraged,
    KerasPredictor,
    TFLitePredictor,
    load_predictor,
)
from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.live.classifier import ExpressionClassifier
from face_sentiment.live.interpreter import ModelFileError
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces

SCALE = PreprocessingSpec(method="scale")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A training-style checkpoint (augmentation included) with a config.json beside it that
    names a non-default preprocessing."""
    import keras

    from face_sentiment.model.architecture import build_model

    folder = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    build_model(augment=True).save(folder / "best.keras")
    (folder / "config.json").write_text(json.dumps({"run_name": "toy",
                                                    "preprocessing": SCALE.to_dict()}))
    return folder / "best.keras"


@pytest.fixture(scope="module")
def keras_predictor(checkpoint) -> KerasPredictor:
    return KerasPredictor(checkpoint)


# --- Keras -----------------------------------------------------------------------------------

@pytest.mark.tensorflow
def test_keras_predictor_returns_probabilities(keras_predictor):
    probabilities = keras_predictor.predict(random_faces(5))
    assert probabilities.shape == (5, 7)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert keras_predictor.classes == FER2013_CLASSES
    assert keras_predictor.name == f"keras:{keras_predictor.path.parent.name}/best.keras"


@pytest.mark.tensorflow
def test_keras_predictor_drops_augmentation_and_applies_the_runs_preprocessing(
        keras_predictor, checkpoint):
    import keras

    assert keras_predictor.spec == SCALE
    assert "augmentation" not in [layer.name for layer in keras_predictor.model.layers]
    original = keras.models.load_model(checkpoint, compile=False)
    batch = random_faces(4, seed=1)
    expected = original(preprocess_faces(batch, SCALE), training=False).numpy()
    np.testing.assert_allclose(keras_predictor.predict(batch), expected, rtol=1e-5, atol=1e-6)
    # the default preprocessing gives different inputs, hence different outputs
    standardized = original(preprocess_faces(batch), training=False).numpy()
    assert not np.allclose(standardized, expected, atol=1e-4)


@pytest.mark.tensorflow
def test_keras_predictor_explicit_spec_and_missing_config(checkpoint, tmp_path):
    lone = tmp_path / "lone.keras"
    shutil.copyfile(checkpoint, lone)
    with pytest.raises(FileNotFoundError, match="model_card.json or config.json"):
        KerasPredictor(lone)  # never guess the preprocessing
    (tmp_path / "model_card.json").write_text(
        json.dumps({"classes": list(FER2013_CLASSES),
                    "preprocessing": {"method": "histeq", "size": 48}}))
    assert KerasPredictor(lone).spec == PreprocessingSpec(method="histeq")
    clahe = PreprocessingSpec(method="clahe")
    assert KerasPredictor(checkpoint, spec=clahe, batch_size=2).spec == clahe


@pytest.mark.tensorflow
def test_keras_predictor_on_no_faces(keras_predictor):
    assert keras_predictor.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


@pytest.mark.tensorflow
def test_keras_predictor_loads_a_tiny_checkpoint(tmp_path):
    tiny_keras_model(augment=True).save(tmp_path / "tiny.keras")
    (tmp_path / "config.json").write_text(json.dumps({"preprocessing": {"method": "standardize"}}))
    assert KerasPredictor(tmp_path / "tiny.keras").predict(random_faces(2)).shape == (2, 7)


@pytest.mark.tensorflow
def test_keras_predictor_takes_its_classes_from_the_run(tmp_path):
    from face_sentiment.labels import FERPLUS_CLASSES

    tiny_keras_model(augment=True, num_classes=8).save(tmp_path / "ferplus.keras")
    (tmp_path / "config.json").write_text(json.dumps(
        {"label_set": "ferplus", "preprocessing": {"method": "standardize"}}))
    predictor = KerasPredictor(tmp_path / "ferplus.keras")
    assert predictor.classes == FERPLUS_CLASSES
    assert predictor.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 8)
    assert predictor.predict(random_faces(2)).shape == (2, 8)
    # A model card names its classes outright, and wins over the run's config.
    (tmp_path / "model_card.json").write_text(json.dumps(
        {"classes": list(FERPLUS_CLASSES), "preprocessing": {"method": "standardize"}}))
    assert KerasPredictor(tmp_path / "ferplus.keras").classes == FERPLUS_CLASSES


# --- flip test-time augmentation -------------------------------------------------------------

@pytest.mark.tensorflow
def test_flip_averaged_is_the_mean_of_face_and_mirror(keras_predictor):
    batch = random_faces(6, seed=2)
    direct = keras_predictor.predict(batch)
    mirrored = keras_predictor.predict(batch[:, :, ::-1].copy())
    assert not np.allclose(direct, mirrored, atol=1e-4)  # the test can tell them apart
    tta = FlipAveraged(keras_predictor)
    np.testing.assert_allclose(tta.predict(batch), (direct + mirrored) / 2, rtol=1e-5,
                               atol=1e-7)
    assert tta.name == keras_predictor.name + "+flip"
    assert tta.classes == keras_predictor.classes


class RecordingPredictor:
    """Returns the mean pixel of the left and right half of each face as 'probabilities'."""

    name = "recording"
    classes = ("left", "right")

    def __init__(self):
        self.calls = []

    def predict(self, batch):
        self.calls.append(batch.copy())
        left = batch[:, :, :24].mean(axis=(1, 2))
        right = batch[:, :, 24:].mean(axis=(1, 2))
        return np.stack([left, right], axis=1)


def test_flip_averaged_mirrors_left_and_right():
    batch = np.zeros((1, 48, 48), np.uint8)
    batch[:, :, :24] = 200  # bright left half
    inner = RecordingPredictor()
    averaged = FlipAveraged(inner).predict(batch)
    np.testing.assert_array_equal(inner.calls[1], batch[:, :, ::-1])
    np.testing.assert_allclose(averaged, [[100.0, 100.0]])
    np.testing.assert_array_equal(batch[:, :, :24], 200)  # the caller's faces are untouched


# --- TFLite ----------------------------------------------------------------------------------

@pytest.mark.tensorflow
def test_tflite_predictor_with_its_model_card(int8_model):
    predictor = TFLitePredictor(int8_model)
    card = json.loads((int8_model.parent / "model_card.json").read_text())
    assert predictor.classes == tuple(card["classes"]) == FER2013_CLASSES
    assert predictor.name == f"tflite:{int8_model.name}"
    probabilities = predictor.predict(random_faces(7, seed=3))
    assert probabilities.shape == (7, 7) and probabilities.dtype == np.float32
    assert (probabilities >= 0).all()
    # int8 output: steps of 1/256, so the sum is one to within a few steps
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.03)
    reference = ExpressionClassifier(int8_model, verify=False).predict(random_faces(7, seed=3))
    np.testing.assert_array_equal(probabilities, reference)


@pytest.mark.tensorflow
def test_tflite_predictor_chunks_large_batches_consistently(int8_model):
    predictor = TFLitePredictor(int8_model)
    batch = random_faces(530, seed=4)  # 512 + 18
    together = predictor.predict(batch)
    assert together.shape == (530, 7)
    np.testing.assert_allclose(together[505:520], predictor.predict(batch[505:520]), atol=1e-6)
    np.testing.assert_allclose(together[:3], predictor.predict(batch[:3]), atol=1e-6)


@pytest.mark.tensorflow
def test_tflite_predictor_on_no_faces(int8_model):
    empty = TFLitePredictor(int8_model).predict(np.zeros((0, 48, 48), np.uint8))
    assert empty.shape == (0, 7) and empty.dtype == np.float32


@pytest.mark.tensorflow
def test_invoke_per_face_is_the_classifiers_per_face_path(int8_model):
    """The one per-face invoke loop (fer's pipeline and the fer-tflite predictor use it) gives
    the model's raw outputs, one invoke per face, and (0, classes) for no faces."""
    from face_sentiment.live.classifier import quantize
    from face_sentiment.live.interpreter import invoke_per_face, load_interpreter

    classifier = ExpressionClassifier(int8_model, verify=False)
    inputs = classifier.preprocess(random_faces(4, seed=5))
    interpreter = load_interpreter(int8_model)
    detail_in = interpreter.get_input_details()[0]
    scale, zero = interpreter.get_output_details()[0]["quantization"]
    raw = invoke_per_face(interpreter, quantize(inputs, detail_in))
    assert raw.shape == (4, 7) and raw.dtype == np.float32
    expected = np.concatenate([classifier.predict_inputs(inputs[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose((raw - zero) * scale, expected, atol=1e-6)
    assert invoke_per_face(interpreter, quantize(inputs[:0], detail_in)).shape == (0, 7)


@pytest.mark.tensorflow
def test_tflite_predictor_needs_the_model_card(int8_model, tmp_path):
    lone = tmp_path / "lone.tflite"
    shutil.copyfile(int8_model, lone)
    with pytest.raises(ModelFileError, match="model card not found"):
        TFLitePredictor(lone)


# --- load_predictor --------------------------------------------------------------------------

def test_load_predictor_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictor(str(tmp_path / "nowhere.keras"))


@pytest.mark.parametrize("name", ["model.h5", "model.onnx", "weights"])
def test_load_predictor_wrong_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="expected a .keras checkpoint or a .tflite model"):
        load_predictor(str(path))


@pytest.mark.tensorflow
def test_load_predictor_dispatches_on_suffix_and_wraps_for_tta(checkpoint, int8_model):
    keras_one = load_predictor(str(checkpoint))
    assert isinstance(keras_one, KerasPredictor) and keras_one.spec == SCALE
    tflite_one = load_predictor(str(int8_model))
    assert isinstance(tflite_one, TFLitePredictor)
    wrapped = load_predictor(str(int8_model), tta=True)
    assert isinstance(wrapped, FlipAveraged) and isinstance(wrapped.inner, TFLitePredictor)
    assert wrapped.name == f"tflite:{int8_model.name}+flip"


def test_a_relative_model_path_is_found_from_any_folder(project_root, tmp_path, monkeypatch):
    """Profiles name models by paths relative to the project; notebooks run in their folder."""
    from face_sentiment.model_card import resolve_model

    target = project_root / "models" / "photos-cv" / "fold1" / "face_sentiment_int8.tflite"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"model")
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_model("models/photos-cv/fold1/face_sentiment_int8.tflite") == target
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model("models/photos-cv/fold9/face_sentiment_int8.tflite")

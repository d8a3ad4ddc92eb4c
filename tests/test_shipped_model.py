"""The shipped model (models/ of this checkout) against its own model card and real FER2013.

Checks that the committed int8 TFLite model still scores what its card says on the whole of
PrivateTest, that the Keras and TFLite paths (same preprocessing, read from the card) agree,
and that the card's provenance (classes, preprocessing, data hash, commit, size, parameters)
matches the files. Every expected figure comes from the card, none is written here, so the
tests hold when the model is retrained and re-shipped.

Needs models/{face_sentiment_int8.tflite, face_sentiment.keras, model_card.json} and FER2013:
$FER2013_PATH, else data/raw/ of this checkout, else ../shared/datasets/fer2013/fer2013.csv.gz.
They are read at import, before the autouse fixture (conftest.py) points the project at a
temporary tree and unsets $FER2013_PATH.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from face_sentiment.labels import FER2013_CLASSES, SPLITS
from face_sentiment.preprocessing import PreprocessingSpec

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
TFLITE = MODELS / "face_sentiment_int8.tflite"
KERAS = MODELS / "face_sentiment.keras"
CARD = MODELS / "model_card.json"
MAX_MODEL_BYTES = 2 * 1024 * 1024
MAX_ACCURACY_DROP = 0.005  # half an accuracy point below the card's PrivateTest figure
# The preprocessing-parity bar: the Keras path and a TFLite path agree on >= 99%.
# Checked on a float32 TFLite conversion of the shipped Keras model (measured 100%), so any
# disagreement is preprocessing, not quantisation.
MIN_KERAS_TFLITE_AGREEMENT = 0.99
# int8 quantisation alone moves some borderline faces: measured 97.9-98.1% agreement with Keras
# on PrivateTest for this architecture (scratch export, 2026-11-25); one point of margin.
MIN_KERAS_INT8_AGREEMENT = 0.97


def _real_fer2013() -> Path | None:
    from_env = os.environ.get("FER2013_PATH")
    if from_env:
        return Path(from_env)
    for name in ("fer2013.csv", "fer2013.csv.gz", "fer2013.zip", "fer2013"):
        if (ROOT / "data" / "raw" / name).exists():
            return ROOT / "data" / "raw" / name
    shared = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.csv.gz"
    return shared if shared.exists() else None


FER2013 = _real_fer2013()
MISSING_MODELS = [p.name for p in (TFLITE, KERAS, CARD) if not p.is_file()]

pytestmark = pytest.mark.skipif(
    bool(MISSING_MODELS),
    reason=f"no shipped model: models/ lacks {', '.join(MISSING_MODELS)} (`make ship`)")
needs_fer2013 = pytest.mark.skipif(
    FER2013 is None or not FER2013.exists(),
    reason=f"real FER2013 not found ({FER2013 or 'set FER2013_PATH'}): the shipped model is "
           "checked against it")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD.read_text())


@pytest.fixture(scope="module")
def private_test() -> tuple[np.ndarray, np.ndarray]:
    """PrivateTest images and labels, read straight from the source (no cache written)."""
    from face_sentiment.sources import read_fer2013

    raw = read_fer2013(FER2013)
    keep = raw.splits == SPLITS.index("PrivateTest")
    return raw.images[keep], raw.labels[keep].astype(np.int64)


@pytest.fixture(scope="module")
def tflite_probabilities(private_test) -> np.ndarray:
    from face_sentiment.predictors import TFLitePredictor

    return TFLitePredictor(TFLITE).predict(private_test[0])


@pytest.fixture(scope="module")
def keras_probabilities(card, private_test) -> np.ndarray:
    """The Keras path: the shipped float model with the card's preprocessing."""
    from face_sentiment.predictors import KerasPredictor

    spec = PreprocessingSpec.from_dict(card["preprocessing"])
    return KerasPredictor(KERAS, spec=spec).predict(private_test[0])


@pytest.fixture(scope="module")
def keras_model():
    from face_sentiment.export import load_trained

    return load_trained(KERAS)


# --- on real data ----------------------------------------------------------------------------

@needs_fer2013
def test_tflite_model_scores_what_its_card_says_on_private_test(card, private_test,
                                                                 tflite_probabilities):
    images, labels = private_test
    reported = card["metrics"]["PrivateTest"]
    assert reported["n"] == len(labels) == len(tflite_probabilities)
    accuracy = float((tflite_probabilities.argmax(axis=1) == labels).mean())
    assert accuracy >= reported["accuracy"] - MAX_ACCURACY_DROP, (
        f"shipped TFLite model scores {accuracy:.4f} on PrivateTest, card says "
        f"{reported['accuracy']:.4f}")


@needs_fer2013
def test_card_describes_this_model_not_an_older_one(card, private_test, tflite_probabilities):
    """A better model swapped in without a new card fails too: the card is measured on the
    very file shipped, so the figures agree to within the same half point."""
    accuracy = float((tflite_probabilities.argmax(axis=1) == private_test[1]).mean())
    assert accuracy <= card["metrics"]["PrivateTest"]["accuracy"] + MAX_ACCURACY_DROP


@pytest.fixture(scope="module")
def float_tflite_probabilities(card, keras_model, private_test, tmp_path_factory) -> np.ndarray:
    """The TFLite path (model card preprocessing, the Pi's classifier) on a float32 export."""
    from face_sentiment.export import convert
    from face_sentiment.predictors import TFLitePredictor

    folder = tmp_path_factory.mktemp("float-tflite")
    (folder / "face_sentiment_float32.tflite").write_bytes(convert(keras_model, "float32"))
    (folder / "model_card.json").write_text(json.dumps(card))
    return TFLitePredictor(folder / "face_sentiment_float32.tflite").predict(private_test[0])


@needs_fer2013
def test_keras_and_tflite_paths_agree_on_private_test(keras_probabilities,
                                                      float_tflite_probabilities):
    assert keras_probabilities.shape == float_tflite_probabilities.shape
    agreement = float((keras_probabilities.argmax(1)
                       == float_tflite_probabilities.argmax(1)).mean())
    assert agreement >= MIN_KERAS_TFLITE_AGREEMENT, (
        f"Keras and TFLite predict the same class for only {agreement:.2%} of PrivateTest")


@needs_fer2013
def test_keras_and_shipped_int8_agree_on_private_test(keras_probabilities,
                                                      tflite_probabilities):
    agreement = float((keras_probabilities.argmax(1) == tflite_probabilities.argmax(1)).mean())
    assert agreement >= MIN_KERAS_INT8_AGREEMENT, (
        f"Keras and the int8 model agree on only {agreement:.2%} of PrivateTest")


@needs_fer2013
def test_keras_path_scores_what_the_card_says(card, private_test, keras_probabilities):
    reported = card["metrics_keras_float"]["PrivateTest"]["accuracy"]
    accuracy = float((keras_probabilities.argmax(axis=1) == private_test[1]).mean())
    assert accuracy == pytest.approx(reported, abs=MAX_ACCURACY_DROP), (
        f"shipped Keras model scores {accuracy:.4f} on PrivateTest, card says {reported:.4f}")


@needs_fer2013
def test_tflite_and_keras_paths_feed_identical_inputs(card, private_test):
    """Preprocessing parity without quantisation in the way: the Pi path's model input is
    exactly the training definition's, with the card's spec."""
    from face_sentiment.expression import ExpressionClassifier
    from face_sentiment.preprocessing import preprocess_faces

    images = private_test[0][:500]
    classifier = ExpressionClassifier(TFLITE, verify=False)
    expected = preprocess_faces(images, PreprocessingSpec.from_dict(card["preprocessing"]))
    np.testing.assert_array_equal(classifier.preprocess(images), expected)


@needs_fer2013
def test_card_data_hash_is_the_fer2013_in_use(card):
    from face_sentiment.sources import sha256_of

    assert card["data"]["fer2013_sha256"] == sha256_of(FER2013), (
        f"the card's FER2013 hash is not that of {FER2013}")


# --- the card against the files --------------------------------------------------------------

def test_card_classes_and_preprocessing(card):
    assert card["classes"] == list(FER2013_CLASSES)
    spec = PreprocessingSpec.from_dict(card["preprocessing"])
    assert spec.to_dict() == card["preprocessing"]  # complete and nothing unknown in it
    assert spec.size == 48


def test_card_names_the_files_and_their_size(card):
    assert card["model_file"] == TFLITE.name
    assert card["keras_file"] == KERAS.name
    size = TFLITE.stat().st_size
    assert size <= MAX_MODEL_BYTES, f"{TFLITE.name} is {size / 1024:.0f} KB, over 2 MB"
    assert card["file_size_kb"] == pytest.approx(size / 1024, abs=0.01)
    assert TFLITE.read_bytes()[4:8] == b"TFL3"


def test_card_provenance(card):
    assert re.fullmatch(r"[0-9a-f]{7,40}", card["code_commit"]), (
        f"code_commit {card['code_commit']!r} is not a git commit")
    assert re.fullmatch(r"[0-9a-f]{64}", card["data"]["fer2013_sha256"])
    assert card["training"]["preprocessing"] == card["preprocessing"]


def test_card_parameters_and_cost_match_the_keras_model(card, keras_model):
    from face_sentiment.architecture import multiply_adds

    assert card["parameters"] == keras_model.count_params()
    assert card["multiply_adds"] == multiply_adds(keras_model)


def test_tflite_model_interface_matches_the_card(card):
    from face_sentiment.interpreter import load_interpreter

    interpreter = load_interpreter(TFLITE)
    size = card["preprocessing"]["size"]
    detail_in = interpreter.get_input_details()[0]
    detail_out = interpreter.get_output_details()[0]
    assert tuple(detail_in["shape"][1:]) == (size, size, 1)
    assert detail_out["shape"][-1] == len(card["classes"])
    assert detail_in["dtype"] == np.int8 and detail_out["dtype"] == np.int8  # full-integer


def test_card_metrics_are_consistent(card):
    for split in ("PublicTest", "PrivateTest"):
        values = card["metrics"][split]
        assert 0 < values["accuracy"] <= values["top2_accuracy"] <= 1
        low, high = values["accuracy_ci"]
        assert low <= values["accuracy"] <= high

"""The shipped models (models/ of this checkout) against their model cards and real data.

Two models ship: the FER2013 model in models/ and the FER+ variant in models/ferplus/. For
each, checks that the committed int8 TFLite model still scores what its card says on the whole
of PrivateTest (under its own label set), that the Keras and TFLite paths (same preprocessing,
read from the card) agree, and that the card's provenance (classes, preprocessing, data hash,
commit, size, parameters) matches the files. Every expected figure comes from the card, none is
written here, so the tests hold when a model is retrained and re-shipped.

Needs FER2013: $FER2013_PATH, else data/raw/ of this checkout, else
../shared/datasets/fer2013/fer2013.csv.gz; the variant also needs FER+ ($FERPLUS_PATH, else
data/raw/fer2013new.csv, else ../shared/datasets/ferplus/fer2013new.csv). They are located at
import (helpers.real_file), before the autouse fixture (conftest.py) points the project at a
temporary tree and unsets the variables.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import FER2013, FERPLUS, ROOT

from face_sentiment.labels import SPLITS, class_names
from face_sentiment.preprocessing import PreprocessingSpec

# Reads real data and the shipped Keras models; the module's fixtures take about 30 s.
pytestmark = [pytest.mark.real_data, pytest.mark.tensorflow, pytest.mark.slow]

# Each shipped folder and the label set its model must be trained on.
SHIPPED = {"fer2013": ROOT / "models", "ferplus": ROOT / "models" / "ferplus"}
MODEL_FILES = ("face_sentiment_int8.tflite", "face_sentiment.keras", "model_card.json")
MAX_MODEL_BYTES = 2 * 1024 * 1024
MAX_ACCURACY_DROP = 0.005  # half an accuracy point below the card's PrivateTest figure
# The preprocessing-parity bar: the Keras path and a TFLite path agree on >= 99%.
# Checked on a float32 TFLite conversion of the shipped Keras model (measured 100%), so any
# disagreement is preprocessing, not quantisation.
MIN_KERAS_TFLITE_AGREEMENT = 0.99
# int8 quantisation alone moves some borderline faces: measured 97.9-98.1% agreement with Keras
# on PrivateTest for this architecture (scratch export, 2026-11-25); one point of margin.
MIN_KERAS_INT8_AGREEMENT = 0.97


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def label_set(request) -> str:
    """The shipped model under test, by its label set; skipped where it is not shipped."""
    missing = [name for name in MODEL_FILES if not (SHIPPED[request.param] / name).is_file()]
    if missing:
        pytest.skip(f"no shipped {request.param} model: {SHIPPED[request.param]} lacks "
                    f"{', '.join(missing)} (`make ship`)")
    return request.param


@pytest.fixture(scope="module")
def folder(label_set) -> Path:
    return SHIPPED[label_set]


@pytest.fixture(scope="module")
def tflite_path(folder) -> Path:
    return folder / "face_sentiment_int8.tflite"


@pytest.fixture(scope="module")
def card(folder) -> dict:
    return json.loads((folder / "model_card.json").read_text())


@pytest.fixture(scope="module")
def private_test(label_set) -> tuple[np.ndarray, np.ndarray]:
    """PrivateTest images and labels under the model's label set, read straight from the
    sources (no cache written)."""
    from face_sentiment.data.fer2013 import read_fer2013
    from face_sentiment.data.ferplus import read_ferplus

    if FER2013 is None or not FER2013.exists():
        pytest.skip(f"real FER2013 not found ({FER2013 or 'set FER2013_PATH'}): the shipped "
                    "model is checked against it")
    raw = read_fer2013(FER2013)
    labels = raw.labels
    if label_set == "ferplus":
        if FERPLUS is None or not FERPLUS.exists():
            pytest.skip(f"real FER+ not found ({FERPLUS or 'set FERPLUS_PATH'})")
        labels = read_ferplus(FERPLUS, raw.splits, raw.source_format).labels
    keep = (raw.splits == SPLITS.index("PrivateTest")) & (labels >= 0)
    return raw.images[keep], labels[keep].astype(np.int64)


@pytest.fixture(scope="module")
def tflite_probabilities(tflite_path, private_test) -> np.ndarray:
    from face_sentiment.evaluation.predictors import TFLitePredictor

    return TFLitePredictor(tflite_path).predict(private_test[0])


@pytest.fixture(scope="module")
def keras_probabilities(folder, card, private_test) -> np.ndarray:
    """The Keras path: the shipped float model with the card's preprocessing."""
    from face_sentiment.evaluation.predictors import KerasPredictor

    spec = PreprocessingSpec.from_dict(card["preprocessing"])
    return KerasPredictor(folder / card["keras_file"], spec=spec).predict(private_test[0])


@pytest.fixture(scope="module")
def keras_model(folder, card):
    from face_sentiment.model.export import load_trained

    return load_trained(folder / card["keras_file"])


# --- on real data ----------------------------------------------------------------------------

def test_tflite_model_scores_what_its_card_says_on_private_test(card, private_test,
                                                                 tflite_probabilities):
    images, labels = private_test
    reported = card["metrics"]["PrivateTest"]
    assert reported["n"] == len(labels) == len(tflite_probabilities)
    accuracy = float((tflite_probabilities.argmax(axis=1) == labels).mean())
    assert accuracy >= reported["accuracy"] - MAX_ACCURACY_DROP, (
        f"shipped TFLite model scores {accuracy:.4f} on PrivateTest, card says "
        f"{reported['accuracy']:.4f}")


def test_card_describes_this_model_not_an_older_one(card, private_test, tflite_probabilities):
    """A better model swapped in without a new card fails too: the card is measured on the
    very file shipped, so the figures agree to within the same half point."""
    accuracy = float((tflite_probabilities.argmax(axis=1) == private_test[1]).mean())
    assert accuracy <= card["metrics"]["PrivateTest"]["accuracy"] + MAX_ACCURACY_DROP


@pytest.fixture(scope="module")
def float_tflite_probabilities(card, keras_model, private_test, tmp_path_factory) -> np.ndarray:
    """The TFLite path (model card preprocessing, the Pi's classifier) on a float32 export."""
    from face_sentiment.evaluation.predictors import TFLitePredictor
    from face_sentiment.model.export import convert

    folder = tmp_path_factory.mktemp("float-tflite")
    (folder / "face_sentiment_float32.tflite").write_bytes(convert(keras_model, "float32"))
    (folder / "model_card.json").write_text(json.dumps(card))
    return TFLitePredictor(folder / "face_sentiment_float32.tflite").predict(private_test[0])


def test_keras_and_tflite_paths_agree_on_private_test(keras_probabilities,
                                                      float_tflite_probabilities):
    assert keras_probabilities.shape == float_tflite_probabilities.shape
    agreement = float((keras_probabilities.argmax(1)
                       == float_tflite_probabilities.argmax(1)).mean())
    assert agreement >= MIN_KERAS_TFLITE_AGREEMENT, (
        f"Keras and TFLite predict the same class for only {agreement:.2%} of PrivateTest")


def test_keras_and_shipped_int8_agree_on_private_test(keras_probabilities,
                                                      tflite_probabilities):
    agreement = float((keras_probabilities.argmax(1) == tflite_probabilities.argmax(1)).mean())
    assert agreement >= MIN_KERAS_INT8_AGREEMENT, (
        f"Keras and the int8 model agree on only {agreement:.2%} of PrivateTest")


def test_keras_path_scores_what_the_card_says(card, private_test, keras_probabilities):
    reported = card["metrics_keras_float"]["PrivateTest"]["accuracy"]
    accuracy = float((keras_probabilities.argmax(axis=1) == private_test[1]).mean())
    assert accuracy == pytest.approx(reported, abs=MAX_ACCURACY_DROP), (
        f"shipped Keras model scores {accuracy:.4f} on PrivateTest, card says {reported:.4f}")


def test_tflite_and_keras_paths_feed_identical_inputs(card, tflite_path, private_test):
    """Preprocessing parity without quantisation in the way: the Pi path's model input is
    exactly the training definition's, with the card's spec."""
    from face_sentiment.live.classifier import ExpressionClassifier
    from face_sentiment.preprocessing import preprocess_faces

    images = private_test[0][:500]
    classifier = ExpressionClassifier(tflite_path, verify=False)
    expected = preprocess_faces(images, PreprocessingSpec.from_dict(card["preprocessing"]))
    np.testing.assert_array_equal(classifier.preprocess(images), expected)


def test_card_data_hashes_are_the_data_in_use(card, label_set, private_test):
    from face_sentiment.data.fer2013 import sha256_of

    assert card["data"]["fer2013_sha256"] == sha256_of(FER2013), (
        f"the card's FER2013 hash is not that of {FER2013}")
    if label_set == "ferplus":
        assert card["data"]["ferplus_sha256"] == sha256_of(FERPLUS), (
            f"the card's FER+ hash is not that of {FERPLUS}")


# --- the card against the files --------------------------------------------------------------

def test_card_classes_and_preprocessing(card, label_set):
    assert card["label_set"] == label_set == card["training"]["label_set"]
    assert card["classes"] == list(class_names(label_set))
    spec = PreprocessingSpec.from_dict(card["preprocessing"])
    assert spec.to_dict() == card["preprocessing"]  # complete and nothing unknown in it
    assert spec.size == 48


def test_card_names_the_files_and_their_size(card, tflite_path):
    assert [card["model_file"], card["keras_file"], "model_card.json"] == list(MODEL_FILES)
    size = tflite_path.stat().st_size
    assert size <= MAX_MODEL_BYTES, f"{tflite_path.name} is {size / 1024:.0f} KB, over 2 MB"
    assert card["file_size_kb"] == pytest.approx(size / 1024, abs=0.01)
    assert tflite_path.read_bytes()[4:8] == b"TFL3"


def test_card_provenance(card):
    assert re.fullmatch(r"[0-9a-f]{7,40}", card["code_commit"]), (
        f"code_commit {card['code_commit']!r} is not a git commit")
    assert re.fullmatch(r"[0-9a-f]{64}", card["data"]["fer2013_sha256"])
    assert card["training"]["preprocessing"] == card["preprocessing"]


def test_card_parameters_and_cost_match_the_keras_model(card, keras_model):
    from face_sentiment.model.architecture import multiply_adds

    assert card["parameters"] == keras_model.count_params()
    assert card["multiply_adds"] == multiply_adds(keras_model)


def test_card_architecture_entry_is_the_keras_models(card, keras_model):
    """The card's family and arguments (what `load_trained` rebuilds a network from) are
    those of the shipped file."""
    from face_sentiment.model.architecture import architecture_spec

    assert card["architecture_spec"] == architecture_spec(keras_model)


def test_tflite_model_interface_matches_the_card(card, tflite_path):
    from face_sentiment.live.interpreter import load_interpreter

    interpreter = load_interpreter(tflite_path)
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

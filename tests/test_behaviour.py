"""Behavioural tests of the shipped model on FER2013 PrivateTest (CheckList-style).

- Invariance: a horizontal flip and small brightness/gamma changes keep the predicted class.
- Directional: covering the mouth lowers P(happy) on correctly classified happy faces.
- Minimum functionality: per-class recall floors.

Thresholds are the values measured on the shipped model (models/face_sentiment.keras of
2026-12-06, run photos-ensemble-v1, PrivateTest accuracy 0.675, all 3,589 images) minus a margin
of about two binomial standard errors plus 0.05, written beside each test; where a floor set on
an earlier model (accuracy 0.587, 0.639, 0.651, then 0.677) was already higher, it was kept.
They are floors to catch regressions, re-measured (never loosened to pass) when a new model ships.
Needs FER2013 (FER2013_PATH, or data/raw/ of the real checkout) and the shipped model; skips
with the reason otherwise.
"""

import numpy as np
import pytest
from helpers import FER2013_ENV, REAL_MODELS, ROOT

from face_sentiment.evaluation import robustness
from face_sentiment.labels import FER2013_CLASSES

REAL_MODEL = REAL_MODELS / "face_sentiment.keras"
HAS_FER2013 = bool(FER2013_ENV) or any((ROOT / "data" / "raw").glob("fer2013*"))

pytestmark = [pytest.mark.real_data, pytest.mark.tensorflow, pytest.mark.skipif(
    not (REAL_MODEL.exists() and HAS_FER2013),
    reason="needs the shipped model (models/face_sentiment.keras: `make ship`) and FER2013 "
           "(FER2013_PATH or data/raw/fer2013.csv)")]

# Measured -> floor. Flip: 1.000 (the shipped graph averages each face with its mirror image, so
# a flip cannot change its output beyond rounding) -> 0.95; 0.790 for the single network before.
# Brightness x0.8: 0.994, x1.2: 0.965 -> 0.90 (kept). Gamma 0.8: 0.964, 1.25: 0.961 -> 0.90
# (kept). Mouth occlusion lowers P(happy): 0.971 (781 faces) -> 0.92 (kept).
FLIP_FLOOR = 0.95
PHOTOMETRIC_FLOOR = 0.90
MOUTH_FLOOR = 0.92
# Measured PrivateTest recall (support) -> floor.
RECALL_FLOORS = {
    "angry": 0.53,     # 0.595 (491; earlier floor kept)
    "disgust": 0.62,   # 0.691 (55: few images, wide margin; earlier floor kept)
    "fear": 0.35,      # 0.400 (528; earlier floor kept)
    "happy": 0.81,     # 0.889 (879)
    "sad": 0.44,       # 0.525 (594; earlier floor kept)
    "surprise": 0.71,  # 0.796 (416; earlier floor kept)
    "neutral": 0.64,   # 0.730 (626; raised from 0.62)
}


@pytest.fixture(scope="module")
def private_test():
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.predictors import load_predictor

    with pytest.MonkeyPatch.context() as patch:  # the real project tree and its cache
        patch.setenv("FACE_SENTIMENT_ROOT", str(ROOT))
        if FER2013_ENV:
            patch.setenv("FER2013_PATH", FER2013_ENV)
        images, labels = load_dataset().select("PrivateTest")
    predictor = load_predictor(str(REAL_MODEL))
    probabilities = predictor.predict(images)
    return predictor, images, labels, probabilities


def _kept(predictor, perturbed: np.ndarray, probabilities: np.ndarray) -> float:
    return float((predictor.predict(perturbed).argmax(1) == probabilities.argmax(1)).mean())


def test_horizontal_flip_keeps_the_class(private_test):
    predictor, images, _, probabilities = private_test
    assert _kept(predictor, images[:, :, ::-1].copy(), probabilities) >= FLIP_FLOOR


@pytest.mark.parametrize(("name", "level"), [("brightness", 0.8), ("brightness", 1.2),
                                             ("gamma", 0.8), ("gamma", 1.25)])
def test_small_lighting_changes_keep_the_class(private_test, name, level):
    predictor, images, _, probabilities = private_test
    perturbed = robustness.perturb(images, name, level)
    assert _kept(predictor, perturbed, probabilities) >= PHOTOMETRIC_FLOOR


def test_covering_the_mouth_lowers_p_happy(private_test):
    predictor, images, labels, probabilities = private_test
    happy = FER2013_CLASSES.index("happy")
    chosen = (labels == happy) & (probabilities.argmax(1) == happy)
    assert chosen.sum() > 100
    covered = predictor.predict(robustness.occlude_mouth(images[chosen]))
    lowered = float((covered[:, happy] < probabilities[chosen, happy]).mean())
    assert lowered >= MOUTH_FLOOR


@pytest.mark.parametrize("name", FER2013_CLASSES)
def test_per_class_recall_floor(private_test, name):
    _, _, labels, probabilities = private_test
    cls = FER2013_CLASSES.index(name)
    recall = float((probabilities.argmax(1)[labels == cls] == cls).mean())
    assert recall >= RECALL_FLOORS[name], f"{name} recall {recall:.3f}"

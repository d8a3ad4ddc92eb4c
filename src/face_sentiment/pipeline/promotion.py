"""The continual-training promotion rule: a challenger replaces the champion when it helps the
lab's new people without costing FER2013.

PROMOTE only when all three hold (champion and challenger int8, same images):

(a) lab gain: on the batch's held-out people (people whose images trained neither model),
    the one-sided 95% lower bound of the accuracy difference challenger - champion, from a
    bootstrap that resamples whole people (`stats.bootstrap_difference` with clusters), is
    above 0, with at least `min_holdout_people` people (one person's images are one sample);
(b) FER2013 non-inferiority: on PublicTest, the one-sided 95% lower bound of the same
    difference (resampling images) is above -margin (`publictest_margin_points`, default 1.0
    point);
(c) macro-F1 on the held-out people (`stats.macro_f1` over the seven FER2013 classes) is not
    lower.

A one-sided 95% lower bound is the 5th percentile of the bootstrap distribution (the lower end
of a two-sided 90% interval). The challenger's checkpoint is chosen without either set (the
last epoch of a fixed schedule, validated on a FER2013 Training slice): the numbers that decide
are not the numbers that selected. PrivateTest is reported, never decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.paths import atomic_target
from face_sentiment.stats import bootstrap_difference, macro_f1

# Predicted and true classes are indices into FER2013_CLASSES: the explicit class set of the
# macro-F1 (a class absent from the held-out people is left out, not scored zero).
CLASS_INDICES = tuple(range(len(FER2013_CLASSES)))
LAB_GAIN = "lab gain"
FER_NON_INFERIOR = "FER2013 non-inferior"
MACRO_F1 = "lab macro-F1 not lower"
# The evaluate stage's paired predictions, which the decide stage reads (runs/retrain/<batch>/).
PREDICTIONS_FILE = "predictions.npz"


@dataclass(frozen=True)
class PromotionRule:
    """The rule's settings (a profile's `retrain:` section sets them; see RetrainSettings)."""

    margin_points: float = 1.0
    confidence: float = 0.95
    min_holdout_people: int = 2
    resamples: int = 10_000
    seed: int = 0

    def describe(self) -> str:
        level = f"one-sided {100 * self.confidence:g}% lower bound"
        return (f"promote only when (a) on the batch's held-out people the {level} of the "
                f"accuracy difference challenger - champion (bootstrap resampling people, at "
                f"least {self.min_holdout_people} people) is above 0, AND (b) on FER2013 "
                f"PublicTest the {level} of the accuracy difference is above "
                f"-{self.margin_points:g} point(s) (non-inferiority margin), AND (c) macro-F1 "
                "over the 7 FER2013 classes on the held-out people is not lower "
                "(face_sentiment.pipeline.promotion)")


@dataclass(frozen=True)
class Paired:
    """Both models' predicted classes on one labelled set; `people` (one id per image) makes
    the bootstrap resample people."""

    name: str
    labels: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray
    people: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(len(self.labels))

    @property
    def clusters(self) -> int:
        return int(len(np.unique(self.people))) if self.people is not None else self.size


def save_paired(path: Path, paired: dict[str, Paired]) -> Path:
    """Write {role: Paired} (e.g. holdout, fer) to an .npz, atomically."""
    arrays: dict[str, np.ndarray] = {}
    for role, item in paired.items():
        arrays[f"{role}.name"] = np.array(item.name)
        for field in ("labels", "champion", "challenger"):
            arrays[f"{role}.{field}"] = np.asarray(getattr(item, field), np.int64)
        if item.people is not None:
            arrays[f"{role}.people"] = np.asarray(item.people, str)
    with atomic_target(path) as staging:
        with open(staging, "wb") as stream:
            np.savez_compressed(stream, **arrays)
    return path


def load_paired(path: Path) -> dict[str, Paired]:
    """What `save_paired` wrote."""
    with np.load(path) as arrays:
        roles = sorted({key.split(".")[0] for key in arrays.files})
        return {role: Paired(str(arrays[f"{role}.name"]), arrays[f"{role}.labels"],
                             arrays[f"{role}.champion"], arrays[f"{role}.challenger"],
                             arrays[f"{role}.people"] if f"{role}.people" in arrays.files
                             else None)
                for role in roles}


def lower_bound(paired: Paired, rule: PromotionRule) -> tuple[float, float]:
    """(accuracy difference challenger - champion, its one-sided lower bound at
    `rule.confidence`); NaNs for an empty set."""
    if not paired.size:
        return math.nan, math.nan
    labels = np.asarray(paired.labels)
    difference, low, _ = bootstrap_difference(
        np.asarray(paired.champion) == labels, np.asarray(paired.challenger) == labels,
        rule.resamples, confidence=2 * rule.confidence - 1, seed=rule.seed,
        clusters=paired.people)
    return difference, low


def _number(value: float) -> float | None:
    """JSON has no NaN: an undefined value is recorded as null."""
    return None if value is None or math.isnan(value) else float(value)


def lab_gain(holdout: Paired, rule: PromotionRule, by_person: bool) -> dict:
    """Criterion (a)."""
    difference, bound = lower_bound(holdout, rule)
    people = holdout.clusters if by_person else 0
    note = None
    if not by_person:
        note = ("the batch has no person column: its holdout is images, not held-out people, "
                "so it cannot show that the challenger helps new people")
    elif people < rule.min_holdout_people:
        note = (f"held-out people with a face found: {people}, at least "
                f"{rule.min_holdout_people} needed (one person's images are one sample)")
    passed = note is None and bound is not None and not math.isnan(bound) and bound > 0
    return {"criterion": LAB_GAIN, "set": holdout.name, "n": holdout.size, "people": people,
            "measure": "accuracy difference challenger - champion (fraction)",
            "value": _number(difference), "bound": _number(bound),
            "bound_kind": f"one-sided {100 * rule.confidence:g}% lower (bootstrap by person)",
            "threshold": 0.0, "test": "bound > threshold", "passed": bool(passed),
            **({"note": note} if note else {})}


def fer_non_inferior(public: Paired, rule: PromotionRule) -> dict:
    """Criterion (b)."""
    difference, bound = lower_bound(public, rule)
    threshold = -rule.margin_points / 100
    passed = bound is not None and not math.isnan(bound) and bound > threshold
    return {"criterion": FER_NON_INFERIOR, "set": public.name, "n": public.size,
            "measure": "accuracy difference challenger - champion (fraction)",
            "value": _number(difference), "bound": _number(bound),
            "bound_kind": f"one-sided {100 * rule.confidence:g}% lower (bootstrap by image)",
            "threshold": threshold, "margin_points": rule.margin_points,
            "test": "bound > threshold", "passed": bool(passed)}


def lab_macro_f1(holdout: Paired) -> dict:
    """Criterion (c)."""
    champion = macro_f1(holdout.labels, holdout.champion, CLASS_INDICES)
    challenger = macro_f1(holdout.labels, holdout.challenger, CLASS_INDICES)
    difference = challenger - champion
    passed = not math.isnan(difference) and difference >= 0
    return {"criterion": MACRO_F1, "set": holdout.name, "n": holdout.size,
            "measure": "macro-F1 challenger - champion (7 FER2013 classes)",
            "value": _number(difference), "champion": _number(champion),
            "challenger": _number(challenger), "bound": None, "threshold": 0.0,
            "test": "value >= threshold", "passed": bool(passed)}


def criteria(holdout: Paired, public: Paired, rule: PromotionRule, by_person: bool
             ) -> list[dict]:
    """Each criterion with its value, bound, threshold and whether it holds."""
    return [lab_gain(holdout, rule, by_person), fer_non_inferior(public, rule),
            lab_macro_f1(holdout)]

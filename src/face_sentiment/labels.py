"""Label sets: FER2013's seven classes and FER+'s eight (FER2013's order, contempt appended).

Keeping contempt last means indices 0..6 mean the same thing under both label sets, so a
FER2013 model can be scored on FER+ labels by dropping contempt.
"""

from __future__ import annotations

FER2013_CLASSES: tuple[str, ...] = (
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
)
FERPLUS_CLASSES: tuple[str, ...] = FER2013_CLASSES + ("contempt",)

LABEL_SETS: dict[str, tuple[str, ...]] = {"fer2013": FER2013_CLASSES, "ferplus": FERPLUS_CLASSES}

# Splits in the official protocol: train on Training, select on PublicTest, report PrivateTest.
SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")

# FER+ vote columns, in the order of Microsoft's fer2013new.csv.
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)
# Where each FER+ vote column lands in FERPLUS_CLASSES (-1: not an emotion).
FERPLUS_VOTE_TO_CLASS: tuple[int, ...] = (6, 3, 5, 4, 0, 1, 2, 7, -1, -1)


def class_names(label_set: str) -> tuple[str, ...]:
    """Return the class names of a label set ('fer2013' or 'ferplus')."""
    try:
        return LABEL_SETS[label_set]
    except KeyError:
        raise ValueError(
            f"unknown label set {label_set!r}; choose one of {sorted(LABEL_SETS)}"
        ) from None

"""Keras model files in: the one loader for every `.keras` (or `.hdf5`) file the workbench reads.

`load_keras_model` opens a training checkpoint, a kept member, an ensemble graph, a shipped
model or fer's mini-Xception, uncompiled (nothing that loads a file here trains it as saved),
with the custom objects this project's graphs may hold: the `Mirror` view of an ensemble graph
and the augmentation layers of a training checkpoint. `load_trained` gives a checkpoint's
inference graph, rebuilt from the `architecture_spec` of the model card beside the file when
the card has one (`face_sentiment.model.architecture`). TFLite files are opened by
`face_sentiment.live.interpreter` (TensorFlow-free, the Pi's path), which also holds the
per-face invoke loop.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from face_sentiment.model_card import CARD_FILE, ModelCard, ModelFileError


def custom_objects() -> dict[str, type]:
    """The project's Keras classes by the name a saved file records for them."""
    from face_sentiment.model.architecture import Mirror
    from face_sentiment.model.augmentation import RandomBrightnessContrast, RandomErasing

    return {keras.saving.get_registered_name(cls): cls
            for cls in (Mirror, RandomBrightnessContrast, RandomErasing)}


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """A saved Keras model, uncompiled, with the project's custom objects."""
    return keras.models.load_model(path, custom_objects=custom_objects(), compile=False)


def card_architecture(path: str | os.PathLike) -> dict | None:
    """The `architecture_spec` of the model card beside `path` when that card describes this
    very file (its `keras_file` or `model_file`); None otherwise (a training run's checkpoint,
    a card written before the entry existed)."""
    path = Path(path)
    if not path.with_name(CARD_FILE).is_file():
        return None
    try:
        card = ModelCard.beside(path)
    except ModelFileError:
        return None
    if path.name not in (card.get("keras_file"), card.model_file):
        return None
    return card.architecture_spec


def load_trained(path: str | os.PathLike) -> keras.Model:
    """Load a training checkpoint and return the inference graph (no augmentation layers)."""
    from face_sentiment.model.architecture import inference_copy

    return inference_copy(load_keras_model(path), card_architecture(path))

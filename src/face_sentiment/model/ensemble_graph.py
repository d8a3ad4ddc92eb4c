"""One Keras graph that averages several trained networks, for a one-invoke TFLite export.

The Pi runner's "accurate mode" runs an ensemble as one model: every member sees the same
preprocessed face (so members must share their preprocessing), their probabilities are
averaged inside the graph, and optionally the mirrored face too (flip TTA), so one
`invoke()` returns what averaging the members' outputs outside would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import pandas as pd
from keras import layers

from face_sentiment.model.architecture import (
    Mirror,
    inference_copy,
    member_networks,
    views_per_member,
)
from face_sentiment.model.io import load_keras_model
from face_sentiment.paths import file_sha256, write_atomic

if TYPE_CHECKING:
    from face_sentiment.model.config import TrainingConfig

MEMBER_TTA = ("none", "flip")


def averaged_model(members: list[keras.Model], flip: bool = False,
                   weights: list[float] | None = None, name: str = "ensemble") -> keras.Model:
    """A model whose output is the (weighted) mean of `members`' probabilities.

    `members` are trained networks (their augmentation layers are dropped); with `flip`, each
    member also scores the mirrored face and the two are averaged first.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"need one non-negative weight per member, got {weights}")
    networks = [inference_copy(member) for member in members]
    shapes = {tuple(network.input_shape[1:]) for network in networks}
    classes = {network.output_shape[-1] for network in networks}
    if len(shapes) != 1 or len(classes) != 1:
        raise ValueError(f"members must share input shape and classes, got inputs {shapes} "
                         f"and {classes} classes")
    for index, network in enumerate(networks):  # unique names inside one graph
        network.name = f"member_{index}"
    inputs = keras.Input(shapes.pop(), name="face")
    views = [inputs]
    if flip:
        views.append(Mirror(name="mirror")(inputs))
    total = sum(weights)
    outputs = []
    for weight, network in zip(weights, networks, strict=True):
        for view in views:
            outputs.append(layers.Rescaling(weight / total / len(views))(network(view)))
    output = layers.Add(name="probabilities")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, output, name=name)


def member_weights(model: keras.Model) -> list[float]:
    """The members' weights of an ensemble graph, summing to 1 (read off its scaling layers,
    one per member and view, in member order)."""
    scales = [layer.scale for layer in model.layers if isinstance(layer, layers.Rescaling)]
    views = views_per_member(model)
    if len(scales) != views * len(member_networks(model)):
        raise ValueError(f"{model.name} is not an ensemble graph of averaged_model's shape")
    return [float(sum(scales[i:i + views])) for i in range(0, len(scales), views)]


PHOTO_SPLIT_KEYS = ("photo_sets", "photo_folds", "photo_holdout_fold", "seed")


def photo_split(trained: dict) -> dict:
    """The photo split of some training settings (a card's, a run's config.json, a profile's),
    in one form whatever their source: the keys of PHOTO_SPLIT_KEYS, photo_sets as a list."""
    split = {key: trained.get(key) for key in PHOTO_SPLIT_KEYS}
    split["photo_sets"] = list(split["photo_sets"] or [])
    return split


def check_photo_split(config: TrainingConfig, member: Path, trained: dict) -> None:
    """An ensemble profile's photo split (what held-out scoring reads) must be each member's:
    a member that saw other people's photographs would leak them into every held-out figure."""
    if not config.photo_sets and not trained.get("photo_sets"):
        return
    expected = photo_split(config.to_dict())
    found = photo_split(trained)
    if found != expected:
        raise ValueError(f"{member}: trained with photo split {found}, but the ensemble "
                         f"profile states {expected}; state the members' split (their card's "
                         "training settings) in the ensemble profile")


def write_members_history(run: Path, history_files: list[Path | None]) -> None:
    """The members' training histories as one table with a `member` column, run/history.csv
    (what `release.ship` copies beside a shipped model); members without one are skipped."""
    histories = [pd.read_csv(path).assign(member=index)
                 for index, path in enumerate(history_files) if path is not None]
    if histories:
        write_atomic(run / "history.csv", pd.concat(histories).to_csv(index=False))


def build_ensemble_run(config: TrainingConfig, data_sha256: str, run: Path) -> Path:
    """An ensemble profile's "training": average the member .keras files in one graph and save
    it as the run's best.keras (export, evaluate and ship then treat it like any run).

    The run keeps config.json (with each member's file hash), history.csv (the members'
    training curves beside their files, one `member` column) and members.json (each member's
    card, for the shipped card's recipe and compute).
    """
    if config.member_tta not in MEMBER_TTA:
        raise ValueError(f"member_tta must be one of {MEMBER_TTA}, not {config.member_tta!r}")
    files = [Path(member) for member in config.members]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ensemble member not found (members are "
                                    "trained .keras files, e.g. "
                                    "models/teachers/<run>/face_sentiment.keras)")
    networks = [load_keras_model(path) for path in files]
    model = averaged_model(networks, flip=config.member_tta == "flip",
                           name="face_sentiment_ensemble")
    run.mkdir(parents=True, exist_ok=True)
    cards, history_files = [], []
    for index, path in enumerate(files):
        card_file = path.parent / "model_card.json"
        card = json.loads(card_file.read_text()) if card_file.is_file() else {}
        check_photo_split(config, path, card.get("training", {}))
        cards.append({"member": index, "file": str(path), "sha256": file_sha256(path),
                      "card": card})
        history_files.append(next((path.parent / name for name in ("training_history.csv",
                                                                    "history.csv")
                                   if (path.parent / name).is_file()), None))
    write_atomic(run / "config.json", json.dumps(
        {**config.to_dict(), "member_sha256": [c["sha256"] for c in cards],
         "data_sha256": data_sha256}, indent=2))
    write_atomic(run / "members.json", json.dumps(cards, indent=2))
    write_members_history(run, history_files)
    staging = run / ".best.tmp.keras"  # Keras saves only to a name ending in .keras
    try:
        model.save(staging)
        os.replace(staging, run / "best.keras")
    finally:
        staging.unlink(missing_ok=True)
    print(f"ensemble of {len(files)} members (member_tta {config.member_tta}): "
          f"{run / 'best.keras'}")
    return run / "best.keras"

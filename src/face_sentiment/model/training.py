"""Train the expression CNN on FER2013 Training, selecting on PublicTest.

PrivateTest is never touched here: model selection (best epoch, early stopping) reads
PublicTest only. Runs are resumable: `runs/<name>/backup` holds the last finished epoch and a
rerun of the same command continues from it. Everything a run needs to be reproduced is in
`runs/<name>/config.json`; `history.csv` and `train.log` show progress; `energy.json` adds up
the energy of every session (face_sentiment.energy: measured or estimated, and how).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.energy import EnergyMeter, record_session
from face_sentiment.labels import class_names
from face_sentiment.model.architecture import build_model
from face_sentiment.model.camera import training_map as camera_training_map
from face_sentiment.model.config import TrainingConfig  # re-exported: TensorFlow-free home
from face_sentiment.model.distillation import DistillationLoss, hard_label_accuracy, pack_targets
from face_sentiment.model.io import load_keras_model
from face_sentiment.model.weight_averaging import SwapEMAWeightsWithBatchNorm
from face_sentiment.paths import project_root, runs_dir
from face_sentiment.preprocessing import PreprocessingSpec, preprocess_faces, to_gray_square
from face_sentiment.stats import accuracy_interval

# Training faces that give EMA-averaged weights their BatchNorm statistics (weight_averaging).
CALIBRATION_IMAGES = 2048


def model_for(config: TrainingConfig, augment: bool = True) -> keras.Model:
    """The (uncompiled) network a config trains, with or without its augmentation layers."""
    return build_model(num_classes=len(class_names(config.label_set)),
                       stem_filters=config.stem_filters, stem_strides=config.stem_strides,
                       stage_filters=config.stage_filters, dropout=config.dropout,
                       family=config.family, blocks_per_stage=config.blocks_per_stage,
                       augment=augment, seed=config.seed)


def class_weights(labels: np.ndarray, num_classes: int, scheme: str) -> dict[int, float] | None:
    """Per-class loss weights, mean 1 over the training set; 'sqrt' softens inverse frequency."""
    if scheme not in ("none", "sqrt", "balanced"):
        raise ValueError(f"unknown class_weighting {scheme!r}; use none, sqrt or balanced")
    if scheme == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    inverse = counts.sum() / np.maximum(counts, 1.0) / num_classes
    weights = np.sqrt(inverse) if scheme == "sqrt" else inverse
    weights /= (weights * counts).sum() / counts.sum()
    return {i: float(w) for i, w in enumerate(weights)}


def learning_rate_schedule(config: TrainingConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to zero over the remaining epochs."""
    warmup = max(config.warmup_epochs * steps_per_epoch, 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(config.epochs * steps_per_epoch - warmup, 1),
        warmup_target=config.learning_rate, warmup_steps=warmup,
    )


def _limit(arrays: tuple[np.ndarray, ...], limit: int | None, seed: int):
    """The same seeded subset of rows from each array."""
    rows = len(arrays[0])
    if limit is None or limit >= rows:
        return arrays
    keep = np.sort(np.random.default_rng(seed).permutation(rows)[:limit])
    return tuple(array[keep] for array in arrays)


def model_inputs_for(dataset: Fer2013Dataset, split: str, rows: np.ndarray,
                     config: TrainingConfig) -> np.ndarray:
    """Preprocessed faces of these cache rows, from the cache or the processed data."""
    if config.data == "processed":
        from face_sentiment.data.processed import model_inputs
        return model_inputs(dataset, split, rows, config.preprocessing)
    if config.data != "cache":
        raise ValueError(f"unknown training data {config.data!r}; use cache or processed")
    return preprocess_faces(dataset.images[rows], config.preprocessing)


def prepare_split(dataset: Fer2013Dataset, split: str, config: TrainingConfig, limit: int | None):
    rows = dataset.rows(split, config.label_set)
    rows, labels = _limit((rows, dataset.labels_for(config.label_set)[rows].astype(np.int64)),
                          limit, config.seed)
    return model_inputs_for(dataset, split, rows, config), labels


def training_targets(dataset: Fer2013Dataset, config: TrainingConfig,
                     teacher_targets: np.ndarray | None = None, raw: bool = False):
    """Preprocessed Training images, their targets (rows sum to 1) and their labels; with
    `raw`, the cache's uint8 faces at the model's size instead of preprocessed ones (camera
    augmentation degrades and normalises them in the input pipeline).

    With `teacher_targets` (one row per `dataset.select("Training", label_set)` face), the
    targets are packed [hard | teachers] for `DistillationLoss`.
    """
    rows = dataset.rows("Training", config.label_set)
    labels = dataset.labels_for(config.label_set)[rows].astype(np.int64)
    if config.targets == "votes":
        if config.label_set != "ferplus":
            raise ValueError("targets: votes needs label_set: ferplus (FER+ vote counts)")
        targets = dataset.select_vote_targets("Training")
    elif config.targets == "labels":
        targets = np.eye(len(class_names(config.label_set)), dtype=np.float32)[labels]
        if config.votes_weight:
            if config.label_set != "fer2013" or not 0 < config.votes_weight <= 1:
                raise ValueError("votes_weight (0..1] mixes FER+ votes into label_set fer2013")
            votes, voted = dataset.training_vote_mix(config.label_set)
            targets[voted] = ((1 - config.votes_weight) * targets[voted]
                              + config.votes_weight * votes[voted])
    else:
        raise ValueError(f"unknown targets {config.targets!r}; use labels or votes")
    if teacher_targets is not None:
        if len(teacher_targets) != len(labels):
            raise ValueError(f"{len(teacher_targets)} teacher targets for {len(labels)} "
                             "Training faces: compute them on dataset.select('Training')")
        targets = pack_targets(targets, teacher_targets)
    rows, targets, labels = _limit((rows, targets, labels), config.max_train_images,
                                   config.seed)
    if raw:
        faces = dataset.images[rows]
        size = config.preprocessing.size
        if faces.shape[1:] != (size, size):
            faces = np.stack([to_gray_square(face, size) for face in faces])
        return faces, targets, labels
    return model_inputs_for(dataset, "Training", rows, config), targets, labels


def photo_training_faces(config: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The photo sets' training faces (every person fold but the held-out one), uint8 at the
    model's size, and their labels in the label set's classes."""
    from face_sentiment.data.photos import photo_faces

    if not 0 <= config.photo_holdout_fold < config.photo_folds:
        raise ValueError(f"photo_holdout_fold {config.photo_holdout_fold} is not one of "
                         f"the {config.photo_folds} folds")
    classes = class_names(config.label_set)
    faces, labels = [], []
    for name in config.photo_sets:
        photos = photo_faces(name, classes, config.photo_folds, config.seed,
                             config.preprocessing.size)
        fold_faces, fold_labels = photos.fold(config.photo_holdout_fold, keep=False)
        faces.append(fold_faces)
        labels.append(fold_labels)
    return np.concatenate(faces), np.concatenate(labels)


def mix_photographs(inputs: np.ndarray, targets: np.ndarray, labels: np.ndarray,
                    config: TrainingConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FER2013's training inputs with the photo sets' faces appended, the photographs repeated
    (seeded) until they are `photo_share` of the whole, and a loss weight per face: each
    domain's class weighting on its own labels (class_weighting, photo_class_weighting).
    Packed distillation targets (teachers on FER2013's faces, 2 x classes columns) get the
    photographs' labels in both halves: the teachers never saw a photograph, so there they
    only keep FER2013 from being forgotten."""
    if not 0 < config.photo_share < 1:
        raise ValueError(f"photo_share is a fraction (0..1), got {config.photo_share}")
    faces, photo_labels = photo_training_faces(config)
    wanted = round(config.photo_share / (1 - config.photo_share) * len(inputs))
    rng = np.random.default_rng(config.seed)
    order = np.concatenate([np.tile(np.arange(len(faces)), wanted // len(faces)),
                            rng.permutation(len(faces))[: wanted % len(faces)]])
    photo_inputs = preprocess_faces(faces[order], config.preprocessing)
    packed = config.teachers != ()
    num_classes = targets.shape[1] // 2 if packed else targets.shape[1]
    photo_targets = np.eye(num_classes, dtype=targets.dtype)[photo_labels[order]]
    if packed:
        photo_targets = pack_targets(photo_targets, photo_targets)
    weights = np.concatenate([
        domain_weights(labels, num_classes, config.class_weighting),
        domain_weights(photo_labels[order], num_classes, config.photo_class_weighting)])
    return (np.concatenate([inputs, photo_inputs]), np.concatenate([targets, photo_targets]),
            np.concatenate([labels, photo_labels[order]]), weights)


def domain_weights(labels: np.ndarray, num_classes: int, scheme: str) -> np.ndarray:
    """Per-face loss weights of one domain's faces: `class_weights` on its own labels."""
    weights = class_weights(labels, num_classes, scheme)
    if weights is None:
        return np.ones(len(labels), np.float32)
    return np.array([weights[label] for label in labels], np.float32)


class EpochLog(keras.callbacks.Callback):
    """One line per epoch with timing, flushed, for `tail -f runs/<name>/train.log`."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        line = (f"epoch {epoch + 1}: {time.perf_counter() - self.started:.0f} s  "
                + "  ".join(f"{k}={v:.4f}" for k, v in logs.items() if isinstance(v, float)))
        print(line, flush=True)
        with open(self.path, "a") as log:
            log.write(line + "\n")


def training_callbacks(run: Path, config: TrainingConfig,
                       calibration_images: np.ndarray | None = None
                       ) -> list[keras.callbacks.Callback]:
    """Backup (resume), EMA swap, best-by-PublicTest checkpoint, early stopping and logs.

    The backup comes before the EMA swap so that it saves the raw weights a resumed run
    continues from; the checkpoint and early stopping come after it, so they see the averaged
    weights that validation scored. `calibration_images` (un-augmented Training faces) give the
    averaged weights their BatchNorm statistics; needed when `config.ema_momentum` is set.
    """
    averaging = []
    if config.ema_momentum:
        if calibration_images is None:
            raise ValueError("ema_momentum needs calibration_images for the BatchNorm statistics")
        averaging = [SwapEMAWeightsWithBatchNorm(calibration_images)]
    if config.selection not in ("best", "last"):
        raise ValueError(f"selection must be best or last, not {config.selection!r}")
    best = config.selection == "best"
    stopping = [keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                              patience=config.early_stopping_patience)]
    return [
        keras.callbacks.BackupAndRestore(str(run / "backup")),
        *averaging,
        keras.callbacks.ModelCheckpoint(str(run / "best.keras"), monitor="val_accuracy",
                                        save_best_only=best, mode="max"),
        *(stopping if best else []),
        keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        EpochLog(run / "train.log"),
    ]


def _training_inputs(dataset: Fer2013Dataset, config: TrainingConfig,
                     teacher_targets: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """`train`'s Training inputs, targets, labels and per-face loss weights (None: Keras'
    class_weight serves), with the photo sets mixed in; raw faces under camera augmentation."""
    camera = config.camera_augmentation
    if not 0 <= camera <= 1:
        raise ValueError(f"camera_augmentation is a probability (0..1), got {camera}")
    if camera and config.data != "cache":
        raise ValueError("camera_augmentation degrades the raw faces, which only the cache "
                         f"holds: use data: cache (not {config.data!r})")
    x_train, t_train, y_train = training_targets(dataset, config, teacher_targets, raw=camera > 0)
    # Per-face loss weights where Keras' class_weight cannot serve: each domain weighted on its
    # own labels (photo_sets), or packed distillation targets, whose columns are not classes.
    face_weights = None
    if config.photo_sets:
        if camera:
            raise ValueError("photo_sets and camera_augmentation do not combine: the "
                             "photographs are real camera faces already")
        x_train, t_train, y_train, face_weights = mix_photographs(x_train, t_train, y_train,
                                                                  config)
    return x_train, t_train, y_train, face_weights


def _training_dataset(x_train: np.ndarray, t_train: np.ndarray, y_train: np.ndarray,
                      face_weights: np.ndarray | None, config: TrainingConfig, num_classes: int
                      ) -> tuple[tf.data.Dataset, dict[int, float] | None]:
    """The shuffled, batched (camera-degraded) Training pipeline and Keras' class_weight
    (None when per-face weights ride in the dataset)."""
    if face_weights is None:
        slices, weights = (x_train, t_train), class_weights(y_train, num_classes,
                                                            config.class_weighting)
    else:
        slices, weights = (x_train, t_train, face_weights), None
    train_data = (tf.data.Dataset.from_tensor_slices(slices)
                  .shuffle(len(y_train), seed=config.seed, reshuffle_each_iteration=True)
                  .batch(config.batch_size))
    if config.camera_augmentation:
        train_data = train_data.map(camera_training_map(
            config.preprocessing, config.camera_augmentation, config.seed))
    return train_data.prefetch(tf.data.AUTOTUNE), weights


def train(dataset: Fer2013Dataset, config: TrainingConfig, verbose: int = 0,
          teacher_targets: np.ndarray | None = None) -> Path:
    """Train (or resume) a run; return the path of the best model (by PublicTest accuracy).

    A config with `teachers` distils: `teacher_targets` are their probabilities on the
    Training faces (`face_sentiment.evaluation.ensemble.teacher_targets`, which the CLI's
    `train` and `distill` compute and cache in runs/teacher_targets/).
    """
    if config.members:
        from face_sentiment.model.ensemble_graph import build_ensemble_run

        return build_ensemble_run(config, dataset.data_hash, runs_dir() / config.run_name)
    if bool(config.teachers) != (teacher_targets is not None):
        raise ValueError("pass teacher_targets exactly when the config names teachers "
                         f"(teachers: {list(config.teachers)})")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    run = runs_dir() / config.run_name
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(
        {**config.to_dict(), "data_sha256": dataset.data_hash}, indent=2))
    num_classes = len(class_names(config.label_set))
    x_train, t_train, y_train, face_weights = _training_inputs(dataset, config, teacher_targets)
    x_val, y_val = prepare_split(dataset, "PublicTest", config, config.max_val_images)
    v_val = keras.utils.to_categorical(y_val, num_classes)
    if teacher_targets is not None:
        # Validation packs its labels as both halves of the target.
        loss = DistillationLoss(num_classes, config.distill_temperature, config.distill_alpha,
                                config.label_smoothing)
        metric = hard_label_accuracy(num_classes)
        v_val = pack_targets(v_val, v_val)
        if face_weights is None:
            face_weights = domain_weights(y_train, num_classes, config.class_weighting)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        metric = "accuracy"
    train_data, weights = _training_dataset(x_train, t_train, y_train, face_weights, config,
                                            num_classes)
    steps = math.ceil(len(y_train) / config.batch_size)
    model = model_for(config)
    if config.init_model:
        load_weights_from(model, Path(config.init_model))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate_schedule(config, steps),
                                         weight_decay=config.weight_decay,
                                         use_ema=config.ema_momentum is not None,
                                         ema_momentum=config.ema_momentum or 0.99),
        loss=loss, metrics=[metric],
    )
    calibration = None
    if config.ema_momentum:  # only the averaged weights need faces for their statistics
        order = np.random.default_rng(config.seed).permutation(len(x_train))
        calibration = x_train[order[:CALIBRATION_IMAGES]]
        if config.camera_augmentation:  # raw faces: statistics are of clean, preprocessed ones
            calibration = preprocess_faces(calibration, config.preprocessing)
    callbacks = training_callbacks(run, config, calibration)
    # Energy of this session (face_sentiment.energy), added to the run's energy.json even when
    # the session is interrupted: a resumed run's sessions add up, and `ship` puts the total
    # in the model card.
    meter = EnergyMeter(f"training {config.run_name}", codecarbon_interval_s=15.0).start()
    epochs_before = _epochs_logged(run / "history.csv")
    try:
        model.fit(
            train_data,
            validation_data=(x_val, v_val), epochs=config.epochs, class_weight=weights,
            callbacks=callbacks, verbose=verbose,
        )
    finally:
        record_session(run / "energy.json", meter.stop(),
                       epochs=_epochs_logged(run / "history.csv") - epochs_before,
                       training_images=int(len(y_train)))
    return run / "best.keras"


def load_weights_from(model: keras.Model, path: Path) -> None:
    """Copy the weights of the model saved at `path` into `model`, layer by layer, skipping
    the weight-free augmentation layers either may have (a checkpoint has them, a shipped
    inference model does not); a different architecture is an error naming the file."""
    source = load_keras_model(path)
    weights = [w for layer in source.layers if layer.name != "augmentation"
               for w in layer.get_weights()]
    expected = [w.shape for layer in model.layers if layer.name != "augmentation"
                for w in layer.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ValueError(f"{path}: its architecture does not match the profile's network "
                         f"({len(weights)} weight arrays vs {len(expected)}, or other shapes); "
                         "fine-tune a model trained with the same architecture settings")
    target = [layer for layer in model.layers if layer.name != "augmentation"]
    index = 0
    for layer in target:
        count = len(layer.get_weights())
        layer.set_weights(weights[index:index + count])
        index += count


def _epochs_logged(path: Path) -> int:
    """Epochs in a run's history.csv; 0 before the first one (CSVLogger creates it empty, so
    a run that fails in its first epoch must not hide its error behind a parse error)."""
    return len(read_history(path)) if path.exists() and path.stat().st_size else 0


def read_history(path: Path) -> pd.DataFrame:
    """history.csv of a run; a resumed run appends, so keep the last row of each epoch (of each
    member, for an ensemble run's history)."""
    history = pd.read_csv(path)
    key = ["member", "epoch"] if "member" in history else "epoch"
    return history.drop_duplicates(key, keep="last").reset_index(drop=True)


def compare_preprocessing(dataset: Fer2013Dataset, methods: tuple[str, ...], epochs: int,
                          max_train_images: int | None, seed: int = 1234,
                          base: TrainingConfig | None = None) -> pd.DataFrame:
    """Short training runs that differ only in lighting normalisation, scored on PublicTest.

    A screening experiment, not the full training: `base`'s architecture and regularisation
    (a profile's training section; default TrainingConfig()), `epochs` epochs on a fixed subset
    of Training, op determinism on so a rerun gives the same table. The accuracy comes with its
    95% bootstrap interval over PublicTest's images (`_ci_low`, `_ci_high`) and the class the
    run answers most often with its share (a run that answers one class for nearly every face
    has not learnt); each run's per-epoch lines go to its train.log only.
    """
    from face_sentiment.model.io import load_trained

    rows = []
    for method in methods:
        spec = PreprocessingSpec(method=method)
        # No weight averaging: over a screen's few hundred steps an average with momentum
        # 0.999 is still mostly the initial weights (the full profile's 3-epoch screen answered
        # one class for 61% of faces with it, below the majority rate).
        config = replace(base or TrainingConfig(), run_name=f"preprocessing-{method}",
                         epochs=epochs, warmup_epochs=0, early_stopping_patience=epochs,
                         max_train_images=max_train_images, max_val_images=None, seed=seed,
                         deterministic=True, preprocessing=spec, ema_momentum=None)
        run = runs_dir() / config.run_name
        if run.exists():
            shutil.rmtree(run)  # a screening run always starts fresh
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            best = train(dataset, config)
        images, labels = dataset.select("PublicTest")
        predicted = load_trained(best).predict(preprocess_faces(images, spec), batch_size=256,
                                               verbose=0).argmax(axis=1)
        accuracy, low, high = accuracy_interval(predicted == labels, resamples=2000, seed=seed)
        answers = np.bincount(predicted, minlength=len(class_names(config.label_set)))
        rows.append({"method": method, "PublicTest accuracy": accuracy,
                     "PublicTest accuracy_ci_low": low, "PublicTest accuracy_ci_high": high,
                     "commonest answer": class_names(config.label_set)[int(answers.argmax())],
                     "commonest answer share": float(answers.max() / len(predicted)),
                     "train images": max_train_images or int(dataset.split_mask("Training").sum()),
                     "epochs": epochs, "seconds": time.perf_counter() - started})
    return pd.DataFrame(rows).set_index("method")


def screen_verdict(comparison: pd.DataFrame, majority_rate: float) -> tuple[str | None, str]:
    """What a preprocessing screen (`compare_preprocessing`) supports: (the method, or None,
    and the reason in words).

    A run has learnt when the lower end of its PublicTest interval lies above `majority_rate`
    (always answering the commonest class). A method is named only when it has learnt and its
    interval lies above every other method's; otherwise the screen is inconclusive.
    """
    accuracy = comparison["PublicTest accuracy"]
    low, high = comparison["PublicTest accuracy_ci_low"], comparison["PublicTest accuracy_ci_high"]
    learnt = low > majority_rate
    if not learnt.any():
        return None, "no run's accuracy is above the majority-class rate"
    best = accuracy[learnt].idxmax()
    others = high.drop(index=best)
    if len(others) and not (low[best] > others).all():
        rival = others.idxmax()
        return None, (f"{best}'s interval overlaps {rival}'s, so the difference is within "
                      "sampling noise")
    return best, ("its interval lies above the majority-class rate"
                  + (" and above every other method's" if len(others) else ""))


def screen_table(comparison: pd.DataFrame, majority_rate: float) -> pd.DataFrame:
    """A screen's results for a reader, in percent: accuracy with its 95% interval, whether
    that interval lies above the majority-class rate, the run's commonest answer and its share,
    and the run's budget."""
    table = pd.DataFrame({
        "accuracy %": 100 * comparison["PublicTest accuracy"],
        "accuracy %_ci_low": 100 * comparison["PublicTest accuracy_ci_low"],
        "accuracy %_ci_high": 100 * comparison["PublicTest accuracy_ci_high"],
        f"above the majority rate ({100 * majority_rate:.1f}%)": [
            "yes" if low > majority_rate else "no"
            for low in comparison["PublicTest accuracy_ci_low"]],
        "commonest answer": comparison["commonest answer"],
        "its share %": 100 * comparison["commonest answer share"],
    }, index=comparison.index)
    return pd.concat([table, comparison[["train images", "epochs", "seconds"]]],
                     axis=1).rename_axis("PublicTest")


def class_weight_table(labels: np.ndarray, config: TrainingConfig) -> pd.DataFrame:
    """Images and loss weight per class of the label set, as the run trains with them."""
    names = class_names(config.label_set)
    weights = class_weights(labels, len(names), config.class_weighting)
    return pd.DataFrame({"images": np.bincount(labels, minlength=len(names)),
                         "weight": [weights[i] for i in range(len(names))] if weights else 1.0},
                        index=pd.Index(names, name="class"))


# --- tables for notebook 04 ------------------------------------------------------------------

# Settings a reader needs to read a run; the others are shown only where they differ from the
# full profile (TrainingConfig's defaults).
CORE_SETTINGS = ("run_name", "label_set", "epochs", "batch_size", "learning_rate",
                 "warmup_epochs", "weight_decay", "label_smoothing", "class_weighting",
                 "dropout", "ema_momentum", "family", "stage_filters", "seed", "preprocessing",
                 "max_train_images", "max_val_images")


def _setting_text(value) -> object:
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) if value else "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def config_table(config: TrainingConfig) -> pd.DataFrame:
    """A run's settings for a reader: the core ones and any other that differs from the full
    profile, with the full profile's value beside each that differs."""
    def flat(values: TrainingConfig) -> dict:
        return {**values.to_dict(), "preprocessing": values.preprocessing.method}

    ours, full = flat(config), flat(TrainingConfig())
    names = [n for n in ours if n in CORE_SETTINGS or ours[n] != full[n]]
    return pd.DataFrame({
        "this profile": [_setting_text(ours[n]) for n in names],
        "full profile": [_setting_text(full[n]) if ours[n] != full[n] else "" for n in names],
    }, index=pd.Index(names, name="setting"))


def model_size_table(network: keras.Model, card: dict, profile: str) -> pd.DataFrame:
    """The network a profile trains beside the shipped model as its card states it: networks,
    parameters, multiply-adds per face and test-time flip."""
    from face_sentiment.model.architecture import multiply_adds

    members = card.get("training", {}).get("members") or []
    return pd.DataFrame({
        "networks": [1, max(len(members), 1)],
        "parameters": [network.count_params(), card.get("parameters")],
        "multiply-adds (millions)": [multiply_adds(network) / 1e6,
                                     (card.get("multiply_adds") or float("nan")) / 1e6],
        "mirror image averaged": ["no", "yes" if card.get("training", {}).get("member_tta")
                                  == "flip" else "no"],
    }, index=pd.Index([f"one network ({profile} profile)",
                       f"shipped model ({card.get('training', {}).get('run_name', '?')})"],
                      name="model"))


def card_metrics_table(card: dict) -> pd.DataFrame:
    """The shipped model's test figures from its card, in percent: accuracy with its 95%
    interval, macro-F1 and top-2 accuracy per test set (selection used PublicTest only)."""
    rows = {}
    for name, metrics in (card.get("metrics") or {}).items():
        low, high = metrics.get("accuracy_ci", (float("nan"), float("nan")))
        rows[name] = {"images": metrics["n"], "accuracy %": 100 * metrics["accuracy"],
                      "accuracy %_ci_low": 100 * low, "accuracy %_ci_high": 100 * high,
                      "macro-F1 %": 100 * metrics["macro_f1"],
                      "top-2 accuracy %": 100 * metrics["top2_accuracy"]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("test set")


def members_table(card: dict, root: Path | None = None) -> pd.DataFrame:
    """The shipped ensemble's members as its card lists them: the run, the model it was
    fine-tuned from and which epoch it kept (from the member's own card), its epochs, its
    PublicTest accuracy (with the card's test-time augmentation) and its compute."""
    root = root or project_root()
    rows = {}
    for member in (card.get("members") or {}).get("members", []):
        own = root / Path(member["teacher"]).parent / "model_card.json"
        recipe = json.loads(own.read_text()).get("training", {}) if own.exists() else {}
        start = recipe.get("init_model")
        compute = member.get("compute") or {}
        rows[member["run_name"]] = {
            "fine-tuned from": Path(start).parent.name if start else "scratch",
            "epochs": member.get("epochs"), "epoch kept": recipe.get("selection", "?"),
            "PublicTest accuracy %": 100 * member["publictest_accuracy"],
            "wall hours": compute.get("wall_hours"),
            "CPU hours": compute.get("process_cpu_hours"),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("member run")


def history_summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per run (or per member of an ensemble's history): epochs, the best PublicTest epoch and
    accuracy, and the last epoch's PublicTest and Training accuracy, in percent."""
    groups = history.groupby("member") if "member" in history else [("run", history)]
    rows = {}
    for name, curve in groups:
        curve = curve.reset_index(drop=True)
        best = curve["val_accuracy"].idxmax()
        rows[f"member {name}" if name != "run" else "this run"] = {
            "epochs": len(curve), "best epoch": int(curve["epoch"][best]) + 1,
            "best PublicTest %": 100 * curve["val_accuracy"][best],
            "last PublicTest %": 100 * curve["val_accuracy"].iloc[-1],
            "last Training %": 100 * curve["accuracy"].iloc[-1],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")

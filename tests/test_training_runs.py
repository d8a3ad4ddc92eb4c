"""Training runs end to end on the nine-image synthetic FER2013/FER+ sample (one epoch, a tiny
network): what a run leaves in runs/<name>/, FER+ vote-distribution targets, and the
preprocessing screening following a profile's architecture."""

import json

import numpy as np
import pandas as pd
import pytest

from face_sentiment.data.cache import load_dataset
from face_sentiment.model.export import load_trained
from face_sentiment.model.training import (
    TrainingConfig,
    compare_preprocessing,
    train,
    training_callbacks,
)

pytestmark = pytest.mark.tensorflow

TINY_RUN = {"epochs": 1, "batch_size": 2, "warmup_epochs": 0, "stem_filters": 4,
            "stem_strides": 2, "stage_filters": (8, 8, 8, 8)}
# TrainingConfig's defaults are the full run's (weight averaging on, op determinism off); the
# toy runs keep the plain, deterministic training they were written for unless they say so.
PLAIN = {"ema_momentum": None, "deterministic": True}


@pytest.fixture
def dataset(fer2013_csv, ferplus_csv):
    return load_dataset(fer2013_csv, ferplus_csv)


@pytest.mark.slow
def test_a_ferplus_run_trains_on_vote_distributions(dataset, project_root):
    config = TrainingConfig(run_name="ferplus-toy", label_set="ferplus", targets="votes",
                            label_smoothing=0.0, **PLAIN, **TINY_RUN)
    best = train(dataset, config)
    run = project_root / "runs" / "ferplus-toy"
    assert best == run / "best.keras"
    saved = json.loads((run / "config.json").read_text())
    assert saved["targets"] == "votes" and saved["label_set"] == "ferplus"
    assert TrainingConfig.from_dict({k: v for k, v in saved.items() if k != "data_sha256"}) == (
        config)
    assert load_trained(best).output_shape == (None, 8)  # contempt included
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()


@pytest.mark.slow
def test_screening_uses_the_base_architecture_and_varies_only_preprocessing(dataset,
                                                                            project_root):
    base = TrainingConfig(dropout=0.3, deterministic=False, ema_momentum=0.999, **TINY_RUN)
    table = compare_preprocessing(dataset, ("standardize", "clahe"), epochs=1,
                                  max_train_images=None, seed=5, base=base)
    assert list(table.index) == ["standardize", "clahe"]
    assert table["PublicTest accuracy"].between(0, 1).all()
    for method in ("standardize", "clahe"):
        saved = json.loads((project_root / "runs" / f"preprocessing-{method}" /
                            "config.json").read_text())
        assert saved["preprocessing"]["method"] == method
        assert saved["stage_filters"] == [8, 8, 8, 8] and saved["stem_strides"] == 2
        assert saved["dropout"] == 0.3 and saved["seed"] == 5
        assert saved["deterministic"] is True  # a screening rerun gives the same table
        assert saved["ema_momentum"] is None  # a few hundred steps cannot be averaged so


@pytest.mark.slow
def test_an_ema_run_checkpoints_the_averaged_weights(dataset, project_root):
    config = TrainingConfig(run_name="ema-toy", **{**PLAIN, **TINY_RUN, "epochs": 2,
                                                   "ema_momentum": 0.9})
    best = train(dataset, config)
    saved = json.loads((project_root / "runs" / "ema-toy" / "config.json").read_text())
    assert saved["ema_momentum"] == 0.9
    assert load_trained(best).output_shape == (None, 7)
    assert len(pd.read_csv(project_root / "runs" / "ema-toy" / "history.csv")) == 2


@pytest.mark.parametrize("ema_momentum", [None, 0.999])
def test_backup_saves_raw_weights_and_checkpoint_the_averaged_ones(tmp_path, ema_momentum):
    callbacks = training_callbacks(tmp_path, TrainingConfig(ema_momentum=ema_momentum),
                                   np.zeros((4, 48, 48, 1), np.float32))
    kinds = [type(callback).__name__ for callback in callbacks]
    # Callbacks run in list order at each epoch end: the backup before the swap, the checkpoint
    # and early stopping after it.
    expected = ["BackupAndRestore", "SwapEMAWeightsWithBatchNorm", "ModelCheckpoint",
                "EarlyStopping"]
    assert [kind for kind in kinds if kind in expected] == (
        expected if ema_momentum else [kind for kind in expected if "EMA" not in kind])


def test_ema_without_calibration_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match="calibration_images"):
        training_callbacks(tmp_path, TrainingConfig(ema_momentum=0.999))

"""Distillation: the loss against a hand-computed case, packed targets, the FER+ vote mix
(Training rows only) and a distilled run end to end on a slice."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from face_sentiment.data.cache import Fer2013Dataset
from face_sentiment.labels import SPLITS

# The loss, its metric and training import TensorFlow (marked); the FER+ vote mix does not.


@pytest.mark.tensorflow
def test_distillation_loss_matches_a_hand_computed_case():
    from face_sentiment.model.distillation import DistillationLoss, pack_targets

    # Two classes, so every term can be written out. Student p = (0.8, 0.2), label class 0,
    # teachers q = (0.6, 0.4), T = 2, alpha = 0.25, no smoothing.
    p, q, t, alpha = np.array([0.8, 0.2]), np.array([0.6, 0.4]), 2.0, 0.25
    cross_entropy = -math.log(0.8)
    p_t = np.sqrt(p) / np.sqrt(p).sum()  # softmax(log p / 2) = p^(1/2), renormalised
    q_t = np.sqrt(q) / np.sqrt(q).sum()
    kl = float((q_t * np.log(q_t / p_t)).sum())
    expected = alpha * cross_entropy + (1 - alpha) * t * t * kl
    loss = DistillationLoss(2, temperature=t, alpha=alpha)
    packed = pack_targets(np.array([[1.0, 0.0]]), q[None].astype(np.float32))
    got = float(loss(packed, p[None].astype(np.float32)))
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.tensorflow
def test_distillation_loss_is_plain_cross_entropy_at_alpha_one_and_zero_kl_when_equal():
    from face_sentiment.model.distillation import DistillationLoss, pack_targets

    p = np.array([[0.7, 0.2, 0.1]], np.float32)
    hard = np.array([[0.0, 1.0, 0.0]], np.float32)
    assert float(DistillationLoss(3, alpha=1.0)(pack_targets(hard, p), p)) == \
        pytest.approx(-math.log(0.2), rel=1e-5)
    assert float(DistillationLoss(3, alpha=0.0, temperature=3.0)(pack_targets(hard, p), p)) == \
        pytest.approx(0.0, abs=1e-6)


@pytest.mark.tensorflow
def test_label_smoothing_applies_to_the_hard_half_only():
    from face_sentiment.model.distillation import DistillationLoss, pack_targets

    p = np.array([[0.5, 0.5]], np.float32)
    packed = pack_targets(np.array([[1.0, 0.0]], np.float32), p)
    # Smoothed hard target (0.95, 0.05) against p = (0.5, 0.5): CE = log 2 either way.
    assert float(DistillationLoss(2, alpha=1.0, label_smoothing=0.1)(packed, p)) == \
        pytest.approx(math.log(2), rel=1e-5)


@pytest.mark.tensorflow
def test_pack_targets_rejects_mismatched_shapes():
    from face_sentiment.model.distillation import pack_targets

    with pytest.raises(ValueError, match="same shape"):
        pack_targets(np.zeros((3, 7)), np.zeros((3, 8)))


@pytest.mark.tensorflow
def test_hard_label_accuracy_reads_the_hard_half():
    from face_sentiment.model.distillation import hard_label_accuracy

    metric = hard_label_accuracy(2)
    # Hard labels say class 1 for both; teachers say class 0. Predictions: 1, 0.
    packed = np.array([[0, 1, 0.9, 0.1], [0, 1, 0.9, 0.1]], np.float32)
    metric.update_state(packed, np.array([[0.2, 0.8], [0.7, 0.3]], np.float32))
    assert float(metric.result()) == pytest.approx(0.5)
    assert metric.name == "accuracy"


def _dataset_with_votes(seed: int = 0) -> Fer2013Dataset:
    rng = np.random.default_rng(seed)
    rows = 30
    splits = np.repeat(np.arange(len(SPLITS), dtype=np.int8), rows // len(SPLITS))
    votes = rng.integers(0, 6, (rows, 10)).astype(np.int16)
    return Fer2013Dataset(
        images=rng.integers(0, 256, (rows, 48, 48), dtype=np.uint8),
        labels=rng.integers(0, 7, rows).astype(np.int8), splits=splits,
        source_ids=np.array([f"r{i}" for i in range(rows)]),
        features=pd.DataFrame(index=range(rows)), manifest={"source_sha256": "x"},
        ferplus_votes=votes, ferplus_labels=rng.integers(0, 8, rows).astype(np.int8))


def test_vote_mix_uses_training_rows_only():
    dataset = _dataset_with_votes()
    votes, voted = dataset.training_vote_mix()
    training = dataset.split_mask("Training")
    assert len(votes) == training.sum() and voted.all()
    np.testing.assert_allclose(votes.sum(axis=1), 1.0, rtol=1e-6)
    # Scrambling every test row's votes must not change a single training target.
    dataset.ferplus_votes[~training] = np.random.default_rng(1).integers(
        0, 9, ((~training).sum(), 10))
    again, _ = dataset.training_vote_mix()
    np.testing.assert_array_equal(votes, again)


@pytest.mark.tensorflow
def test_votes_weight_mixes_the_label_with_the_training_votes():
    from face_sentiment.model.training import TrainingConfig, training_targets

    dataset = _dataset_with_votes()
    config = TrainingConfig(votes_weight=0.5, preprocessing=TrainingConfig().preprocessing)
    _, targets, labels = training_targets(dataset, config)
    votes, _ = dataset.training_vote_mix()
    np.testing.assert_allclose(targets, 0.5 * np.eye(7)[labels] + 0.5 * votes, rtol=1e-6)
    with pytest.raises(ValueError, match="votes_weight"):
        training_targets(dataset, TrainingConfig(votes_weight=0.5, label_set="ferplus"))


@pytest.mark.tensorflow
def test_training_targets_pack_teacher_targets_in_row_order():
    from face_sentiment.model.training import TrainingConfig, training_targets

    dataset = _dataset_with_votes()
    _, labels = dataset.select("Training")
    teachers = np.full((len(labels), 7), 1 / 7, np.float32)
    _, targets, _ = training_targets(dataset, TrainingConfig(), teachers)
    assert targets.shape == (len(labels), 14)
    np.testing.assert_array_equal(targets[:, 7:], teachers)
    with pytest.raises(ValueError, match="teacher targets"):
        training_targets(dataset, TrainingConfig(), teachers[:-1])


@pytest.mark.slow
@pytest.mark.tensorflow
def test_a_distilled_run_trains_and_checkpoints(tmp_path):
    from face_sentiment.model.training import TrainingConfig, train

    dataset = _dataset_with_votes()
    _, labels = dataset.select("Training")
    teachers = np.random.default_rng(0).dirichlet(np.ones(7), len(labels)).astype(np.float32)
    config = TrainingConfig(run_name="distilled", epochs=1, batch_size=4, ema_momentum=None,
                            stem_filters=4, stage_filters=(4, 4, 4, 4), teachers=("t",))
    with pytest.raises(ValueError, match="teacher_targets"):
        train(dataset, config)
    best = train(dataset, config, teacher_targets=teachers)
    assert best.exists()
    history = pd.read_csv(best.with_name("history.csv"))
    assert {"accuracy", "val_accuracy", "loss"} <= set(history.columns)

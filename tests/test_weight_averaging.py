"""EMA weights get BatchNorm statistics of their own, and training gets the raw ones back."""

import keras
import numpy as np
import pytest
from helpers import tiny_keras_model

from face_sentiment.model.weight_averaging import (
    SwapEMAWeightsWithBatchNorm,
    batch_norm_layers,
    interpolate_weights,
    recompute_batch_norm_statistics,
)

pytestmark = pytest.mark.tensorflow


@pytest.fixture
def model():
    return tiny_keras_model(seed=3, augment=True, stem_strides=2)


@pytest.fixture
def faces():
    return np.random.default_rng(0).normal(size=(16, 48, 48, 1)).astype(np.float32)


def test_statistics_are_those_of_the_clean_faces(model, faces):
    recompute_batch_norm_statistics(model, faces)
    first_norm = batch_norm_layers(model)[0]
    stem = model.get_layer(index=2)  # the stem conv, right after input and augmentation
    activations = np.asarray(stem(faces))  # no augmentation in front of it
    assert np.asarray(first_norm.moving_mean) == pytest.approx(
        activations.mean(axis=(0, 1, 2)), abs=1e-5)
    assert np.asarray(first_norm.moving_variance) == pytest.approx(
        activations.var(axis=(0, 1, 2)), rel=1e-3, abs=1e-5)
    assert first_norm.momentum == 0.99  # put back


def test_swap_in_recalibrates_and_swap_out_restores_raw_weights_and_statistics(model, faces):
    model.compile(optimizer=keras.optimizers.AdamW(use_ema=True), loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    averages = model.optimizer._model_variables_moving_average
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        average.assign(variable * 0.5)  # an average distinct from the raw weights
    raw_weights = [np.asarray(v) for v in model.trainable_variables]
    raw_means = [np.asarray(n.moving_mean) for n in batch_norm_layers(model)]
    swap = SwapEMAWeightsWithBatchNorm(faces)
    swap.set_model(model)

    swap.on_test_begin()
    assert np.asarray(model.trainable_variables[0]) == pytest.approx(raw_weights[0] * 0.5)
    assert not np.allclose(np.asarray(batch_norm_layers(model)[0].moving_mean), raw_means[0])
    swap.on_test_end()
    # Keras swaps by adding and subtracting, so the raw weights come back to rounding.
    for variable, raw in zip(model.trainable_variables, raw_weights, strict=True):
        assert np.asarray(variable) == pytest.approx(raw, abs=1e-6)
    for norm, raw in zip(batch_norm_layers(model), raw_means, strict=True):
        assert np.array_equal(np.asarray(norm.moving_mean), raw)


def test_interpolation_mixes_the_weights_and_recalibrates(faces):
    """WiSE-FT: keep x tuned + (1 - keep) x start for every trainable weight, then BatchNorm
    statistics of the mixed weights on the calibration faces."""
    tuned, start = tiny_keras_model(seed=1), tiny_keras_model(seed=2)
    before = [w.numpy() for w in tuned.trainable_weights]
    interpolate_weights(tuned, start, 0.25, faces)
    for mixed, a, b in zip(tuned.trainable_weights, before, start.trainable_weights,
                           strict=True):
        np.testing.assert_allclose(mixed.numpy(), 0.25 * a + 0.75 * b.numpy(), rtol=1e-6,
                                   atol=1e-7)
    expected = tiny_keras_model(seed=1)
    expected.set_weights(tuned.get_weights())
    recompute_batch_norm_statistics(expected, faces)
    for norm, reference in zip(batch_norm_layers(tuned), batch_norm_layers(expected),
                               strict=True):
        np.testing.assert_allclose(norm.moving_mean.numpy(), reference.moving_mean.numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_interpolation_refuses_another_architecture_or_share(faces):
    with pytest.raises(ValueError, match="differ in architecture"):
        interpolate_weights(tiny_keras_model(seed=1), tiny_keras_model(seed=1, stem_filters=6),
                            0.5, faces)
    with pytest.raises(ValueError, match="within 0..1"):
        interpolate_weights(tiny_keras_model(seed=1), tiny_keras_model(seed=2), 1.5, faces)

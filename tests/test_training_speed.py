"""The training-speed benchmark runs each option and leaves the global precision policy alone."""

from dataclasses import replace

import keras
import pytest

from face_sentiment.model.training import TrainingConfig
from face_sentiment.model.training_speed import (
    FER2013_TRAINING_IMAGES,
    seconds_per_step,
    speed_table,
)
from face_sentiment.profiles import load_profile

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def small_config() -> TrainingConfig:
    return replace(TrainingConfig.from_dict(load_profile("ci")["training"]), batch_size=8)


@pytest.mark.slow
def test_table_has_every_option_scaled_to_an_epoch(small_config):
    table = speed_table(small_config, ("default", "mixed_bfloat16"), steps=2, warmup_steps=1,
                        rounds=2)
    assert list(table.index) == ["default", "mixed_bfloat16"]
    assert (table["ms per step"] > 0).all()
    epoch_steps = -(-FER2013_TRAINING_IMAGES // 8)
    assert table["s per epoch"].tolist() == pytest.approx(
        (table["ms per step"] / 1000 * epoch_steps).tolist())
    assert table.loc["default", "x default"] == pytest.approx(1.0)
    # bfloat16 ran (augmentation included) and the global policy is float32 again.
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_option_is_named(small_config):
    with pytest.raises(ValueError, match="unknown speed option 'fp8'"):
        seconds_per_step(small_config, "fp8")

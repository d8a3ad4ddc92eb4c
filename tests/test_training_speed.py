"""The training-speed benchmark runs each option and leaves the global precision policy alone."""

from dataclasses import replace

import pytest

from face_sentiment.model.config import TrainingConfig
from face_sentiment.model.training_speed import (
    FER2013_TRAINING_IMAGES,
    OPTIONS,
    seconds_per_step,
    speed_table,
)
from face_sentiment.profiles import load_profile

# The benchmark trains with TensorFlow (marked); the command's options are checked without it.


@pytest.fixture(scope="module")
def small_config() -> TrainingConfig:
    return replace(TrainingConfig.from_dict(load_profile("ci")["training"]), batch_size=8)


@pytest.mark.slow
@pytest.mark.tensorflow
def test_table_has_every_option_scaled_to_an_epoch(small_config):
    import keras

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


@pytest.mark.tensorflow  # seconds_per_step imports TensorFlow before it reads the option
def test_unknown_option_is_named(small_config):
    with pytest.raises(ValueError, match="unknown speed option 'fp8'"):
        seconds_per_step(small_config, "fp8")


def test_the_command_offers_the_benchmarks_options_and_refuses_others(capsys):
    from face_sentiment.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train-speed"]).option is None  # None: every option
    assert parser.parse_args(["train-speed", "--option", OPTIONS[-1], "--option",
                              OPTIONS[0]]).option == [OPTIONS[-1], OPTIONS[0]]
    with pytest.raises(SystemExit) as error:
        parser.parse_args(["train-speed", "--option", "fp8"])
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fp8'" in err and all(option in err for option in OPTIONS)

"""How long a training epoch of a profile's network takes here, under the CPU speed options.

The issue asked to measure epoch time before a long CPU run and to try mixed precision and XLA.
Each option trains the profile's network (augmentation included, as in `training.train`) for a
few warm steps on random inputs of the training shape: the time per step does not depend on
pixel values, so no data is read. Figures are printed, not asserted: they belong to the machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from face_sentiment.labels import class_names

if TYPE_CHECKING:  # the CLI imports OPTIONS from here without loading numpy, pandas or TF
    import pandas as pd

    from face_sentiment.model.config import TrainingConfig

FER2013_TRAINING_IMAGES = 28709


@dataclass(frozen=True)
class SpeedOption:
    jit_compile: bool = False
    precision_policy: str = "float32"
    augment: bool = True


SPEED_OPTIONS = {
    "default": SpeedOption(),
    "xla": SpeedOption(jit_compile=True),
    "mixed_bfloat16": SpeedOption(precision_policy="mixed_bfloat16"),
    # Not a way to train: shows how much of the step the augmentation layers cost.
    "no_augmentation": SpeedOption(augment=False),
}
OPTIONS = tuple(SPEED_OPTIONS)


def seconds_per_step(config: TrainingConfig, option: str, steps: int = 30,
                     warmup_steps: int = 5) -> float:
    """Mean wall time of one optimiser step of `config`'s network under `option`."""
    import keras
    import numpy as np
    import tensorflow as tf

    from face_sentiment.model.training import learning_rate_schedule, model_for

    if option not in SPEED_OPTIONS:
        raise ValueError(f"unknown speed option {option!r}; use one of {OPTIONS}")
    settings = SPEED_OPTIONS[option]
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(settings.precision_policy)
    try:
        num_classes = len(class_names(config.label_set))
        model = model_for(config, augment=settings.augment)
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate_schedule(config, steps)),
                      loss="categorical_crossentropy", jit_compile=settings.jit_compile)
        size = config.preprocessing.size
        rng = np.random.default_rng(config.seed)
        images = rng.normal(size=(config.batch_size, size, size, 1)).astype(np.float32)
        targets = np.eye(num_classes, dtype=np.float32)[
            rng.integers(0, num_classes, config.batch_size)]
        batches = tf.data.Dataset.from_tensors((images, targets)).repeat()
        model.fit(batches, epochs=1, steps_per_epoch=warmup_steps, verbose=0)  # traces, compiles
        started = time.perf_counter()
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
        return (time.perf_counter() - started) / steps
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def speed_table(config: TrainingConfig, options: tuple[str, ...] = OPTIONS, steps: int = 30,
                warmup_steps: int = 5, rounds: int = 1) -> pd.DataFrame:
    """ms per step, seconds per FER2013 Training epoch and the ratio to `default`, per option.

    With `rounds` > 1 the options are timed in turn that many times and each keeps its fastest
    round: step times on this shared machine vary by up to 1.5x from one minute to the next.
    """
    epoch_steps = math.ceil(FER2013_TRAINING_IMAGES / config.batch_size)
    fastest = {option: math.inf for option in options}
    for _ in range(rounds):
        for option in options:
            fastest[option] = min(fastest[option],
                                  seconds_per_step(config, option, steps, warmup_steps))
    import pandas as pd

    table = pd.DataFrame([{"option": option, "ms per step": 1000 * step,
                           "s per epoch": step * epoch_steps}
                          for option, step in fastest.items()]).set_index("option")
    if "default" in table.index:
        table["x default"] = table["s per epoch"] / table.loc["default", "s per epoch"]
    return table

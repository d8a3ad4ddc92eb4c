"""Knowledge distillation (Hinton et al. 2015): a student trained on its teachers' soft targets.

The loss mixes the usual cross-entropy with the (label-smoothed) hard target and the KL
divergence from the teachers' probabilities at temperature T, scaled by T^2 so the soft term's
gradients keep their size as T changes:

    alpha * CE(hard, p) + (1 - alpha) * T^2 * KL(softmax(log q / T) || softmax(log p / T))

The student keeps its softmax output (the shipped graph outputs probabilities): softmax is blind
to a constant shift, so softmax(log p / T) equals softmax(z / T) of the student's logits z and
the loss needs no separate logits head. Keras passes one target tensor, so the hard and the
teacher targets travel packed side by side (`pack_targets`), and accuracy reads the hard half.
The teachers' probabilities come from `face_sentiment.evaluation.ensemble.teacher_targets`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def pack_targets(hard: np.ndarray, teachers: np.ndarray) -> np.ndarray:
    """[hard | teachers]: (N, 2K) float32, the layout `DistillationLoss` reads."""
    if hard.shape != teachers.shape:
        raise ValueError(f"hard targets {hard.shape} and teacher targets {teachers.shape} "
                         "must have the same shape (one row per face, one column per class)")
    return np.concatenate([hard, teachers], axis=1).astype(np.float32)


@keras.saving.register_keras_serializable(package="face_sentiment")
class DistillationLoss(keras.losses.Loss):
    """The mixed hard/soft loss above, on packed targets of `num_classes` * 2 columns."""

    def __init__(self, num_classes: int, temperature: float = 2.0, alpha: float = 0.5,
                 label_smoothing: float = 0.0, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got "
                             f"{temperature}, {alpha}")
        self.num_classes, self.temperature, self.alpha = num_classes, temperature, alpha
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        k, t = self.num_classes, self.temperature
        hard, teacher = y_true[:, :k], y_true[:, k:]
        hard = hard * (1.0 - self.label_smoothing) + self.label_smoothing / k
        log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        cross_entropy = -ops.sum(hard * log_p, axis=-1)
        log_p_t = ops.log_softmax(log_p / t, axis=-1)
        log_q_t = ops.log_softmax(ops.log(ops.clip(teacher, 1e-7, 1.0)) / t, axis=-1)
        kl = ops.sum(ops.exp(log_q_t) * (log_q_t - log_p_t), axis=-1)
        return self.alpha * cross_entropy + (1.0 - self.alpha) * t * t * kl

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "temperature": self.temperature, "alpha": self.alpha,
                "label_smoothing": self.label_smoothing}


def hard_label_accuracy(num_classes: int) -> keras.metrics.Metric:
    """Accuracy against the hard half of packed targets, named `accuracy` so that
    checkpointing and early stopping read `val_accuracy` as for any run."""

    def accuracy(y_true, y_pred):
        return ops.cast(ops.argmax(y_true[:, :num_classes], axis=-1)
                        == ops.argmax(y_pred, axis=-1), "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")

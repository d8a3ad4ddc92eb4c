"""Training-time augmentation as Keras layers (inactive at inference and in exported models).

Shifts, zoom, small rotations and horizontal flips for pose; brightness and contrast jitter on
the normalised input for lighting left over after normalisation; random erasing for occlusion
(hands, glasses, hair).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


class RandomErasing(layers.Layer):
    """Zero a random rectangle (2-25% of the image) with probability `rate`, per image."""

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed

    def call(self, images, training=None):
        if not training:
            return images
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        area = tf.random.uniform([batch], 0.02, 0.25, seed=self.seed)
        aspect = tf.exp(tf.random.uniform([batch], -1.0, 1.0, seed=self.seed))
        h = tf.cast(tf.sqrt(area * aspect) * tf.cast(height, tf.float32), tf.int32)
        w = tf.cast(tf.sqrt(area / aspect) * tf.cast(width, tf.float32), tf.int32)
        h, w = tf.clip_by_value(h, 1, height), tf.clip_by_value(w, 1, width)
        top = self._uniform_int(batch, height - h + 1)
        left = self._uniform_int(batch, width - w + 1)
        rows = tf.range(height)[None, :, None]
        cols = tf.range(width)[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < (top + h)[:, None, None])
                  & (cols >= left[:, None, None]) & (cols < (left + w)[:, None, None]))
        apply = tf.random.uniform([batch], seed=self.seed) < self.rate
        mask = tf.cast(inside & apply[:, None, None], images.dtype)[..., None]
        return images * (1.0 - mask)

    def _uniform_int(self, batch, upper):
        """Per-image integers in [0, upper)."""
        draw = tf.random.uniform([batch], seed=self.seed)
        return tf.cast(draw * tf.cast(upper, tf.float32), tf.int32)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class RandomBrightnessContrast(layers.Layer):
    """x * c + b with c ~ U(1-contrast, 1+contrast), b ~ U(-brightness, brightness) per image."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.brightness, self.contrast, self.seed = brightness, contrast, seed

    def call(self, images, training=None):
        if not training:
            return images
        shape = [tf.shape(images)[0], 1, 1, 1]
        scale = tf.random.uniform(shape, 1 - self.contrast, 1 + self.contrast, seed=self.seed)
        shift = tf.random.uniform(shape, -self.brightness, self.brightness, seed=self.seed)
        # Drawn in float32, applied in the input's dtype (bfloat16 under mixed precision).
        return images * tf.cast(scale, images.dtype) + tf.cast(shift, images.dtype)

    def get_config(self):
        return {**super().get_config(), "brightness": self.brightness,
                "contrast": self.contrast, "seed": self.seed}


def augmentation_layers(seed: int = 0) -> keras.Sequential:
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),  # about +-15 degrees
        layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
        RandomBrightnessContrast(seed=seed),
        RandomErasing(seed=seed),
    ], name="augmentation")

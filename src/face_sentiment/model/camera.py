"""Camera-domain augmentation: degrade raw training faces the way a webcam, a phone photo or the
Pi's detector crop degrades them, then normalise their lighting as at inference.

FER2013's faces are web-image crops at 48x48. The faces the workbench meets in use are
detector crops of video frames or photographs: resampled from larger or smaller faces,
blurred by focus or motion, under another exposure curve, with sensor noise, JPEG-compressed.
The network's augmentation layers (model.augmentation) act on the normalised input and cannot
add block artefacts, lost resolution or a gamma curve, so these degradations act on the raw
uint8 faces in the tf.data pipeline, before `preprocessing.normalise_lighting_tf` (the
TensorFlow twin of the one preprocessing definition). They are the robustness curves' own
definitions (`face_sentiment.degradations`), drawn at random levels: each hits a face with
probability `rate` (the profile's `training: {camera_augmentation: RATE}`; 0 is off, and the
training inputs are then exactly the cache's preprocessed faces), in the order a camera applies
them: resolution, blur, exposure, noise, compression.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from face_sentiment import degradations
from face_sentiment.preprocessing import PreprocessingSpec, normalise_lighting_tf

# (degradation, level range drawn uniformly), in camera order. The ranges cover what the
# detector hands the classifier on the shared video and the Taiwan photographs: faces from
# about 20 px up, defocus up to about a pixel, exposure curves either way, JPEG as webcams and
# phones write it. Milder than the robustness curves' ladders, which go on to failure.
CAMERA_DEGRADATIONS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("rescale", (20.0, 47.0)),
    ("blur", (0.3, 1.2)),
    ("gamma", (0.6, 1.6)),
    ("gaussian_noise", (1.0, 6.0)),
    ("jpeg", (30.0, 95.0)),
)


def degrade_faces(faces: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """(N, S, S) uint8 faces, each degradation applied to a face with probability `rate` at a
    level drawn from its range -> new (N, S, S) uint8 faces."""
    out = np.array(faces, dtype=np.uint8, copy=True)
    for name, (low, high) in CAMERA_DEGRADATIONS:
        function = getattr(degradations, name)
        for index in np.flatnonzero(rng.random(len(out)) < rate):
            level = rng.uniform(low, high)
            out[index] = function(out[index:index + 1], level,
                                  seed=int(rng.integers(2**31)))[0]
    return out


def training_map(spec: PreprocessingSpec, rate: float, seed: int = 0):
    """A tf.data map over batches: (raw (B, S, S) uint8 faces, *targets) -> (normalised
    (B, S, S, 1) model inputs, *targets), degraded first by `degrade_faces`. Map it without
    parallel calls: one seeded generator draws every level, so a run's draws repeat."""
    normalise_lighting_tf(np.zeros((1, 1), np.float32), spec)  # refuse equalisation early
    rng = np.random.default_rng(seed)

    def degrade(faces: np.ndarray) -> np.ndarray:
        return degrade_faces(faces, rate, rng) if rate else faces

    def apply(faces, *rest):
        degraded = tf.numpy_function(degrade, [faces], tf.uint8, stateful=True)
        shape = tf.shape(faces)
        flat = tf.reshape(degraded, [shape[0], shape[1] * shape[2]])
        inputs = tf.reshape(normalise_lighting_tf(flat, spec),
                            [shape[0], shape[1], shape[2], 1])
        return (inputs, *rest)

    return apply


def degraded_examples(faces: np.ndarray, variants: int, rate: float = 0.5,
                      seed: int = 0) -> np.ndarray:
    """`variants` degraded copies of each (S, S) uint8 face -> (N, variants, S, S) uint8, for
    looking at (notebook 03) and for tests."""
    rng = np.random.default_rng(seed)
    return np.stack([degrade_faces(np.repeat(face[np.newaxis], variants, axis=0), rate, rng)
                     for face in faces])

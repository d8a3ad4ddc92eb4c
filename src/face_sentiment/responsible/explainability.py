"""Explainability: which pixels drive each prediction, and can we trust the maps?

SHAP attributions (`shap.GradientExplainer`, expected gradients against a background of
Training faces) for the Keras model, shown next to Grad-CAM (gradient-weighted activations of
the last convolution). Class-average maps over aligned faces show which face regions drive
each emotion on average (FER2013 crops share one framing, so pixels line up). The sanity check
of Adebayo et al. (2018): attributions of a model with randomised weights must differ from the
trained model's; a method whose maps survive randomisation explains the image, not the model.
Everything works on the model's preprocessed input (`preprocess_faces` with its spec).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy.stats import spearmanr

from face_sentiment.preprocessing import preprocess_faces


def model_inputs(predictor, faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 faces -> the Keras model's float input (N, 48, 48, 1)."""
    return preprocess_faces(faces, predictor.spec)


def background_inputs(predictor, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """SHAP's background: `count` faces drawn without replacement (seeded), as model input."""
    rng = np.random.default_rng(seed)
    return model_inputs(predictor, faces[rng.choice(len(faces), count, replace=False)])


def shap_values(model: keras.Model, inputs: np.ndarray, background: np.ndarray,
                classes: list[int], samples: int = 50, seed: int = 0) -> np.ndarray:
    """SHAP (expected gradients) of each input for its class in `classes`: (N, 48, 48)."""
    import shap

    explainer = shap.GradientExplainer(model, background)
    values = explainer.shap_values(inputs, nsamples=samples, rseed=seed)
    values = np.asarray(values)  # shap 0.49: (N, H, W, 1, classes)
    return np.stack([values[i, ..., 0, c] for i, c in enumerate(classes)])


def feature_map_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer whose output the global average pooling reads: the last rectified feature
    maps (Selvaraju et al.'s choice), which in a residual net include the skip path."""
    pooling = next(layer for layer in model.layers
                   if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    return next(layer for layer in model.layers if layer.output is pooling.input)


def grad_cam(model: keras.Model, inputs: np.ndarray, classes: list[int]) -> np.ndarray:
    """Grad-CAM maps at input resolution, each scaled to [0, 1]: (N, 48, 48).

    An ensemble graph has no last convolution of its own: its map is the members' maps
    averaged with the members' weights (a mirrored view's map mirrored back first)."""
    from face_sentiment.model.architecture import member_networks, views_per_member

    members = member_networks(model)
    if members:
        from face_sentiment.model.ensemble_graph import member_weights

        total = np.zeros(inputs.shape[:3], np.float32)
        for weight, member in zip(member_weights(model), members, strict=True):
            cam = grad_cam(member, inputs, classes)
            if views_per_member(model) == 2:
                cam = (cam + grad_cam(member, inputs[:, :, ::-1], classes)[:, :, ::-1]) / 2
            total += weight * cam
        return total / np.maximum(total.max(axis=(1, 2), keepdims=True), 1e-12)
    layer = feature_map_layer(model)
    split = keras.Model(model.inputs, [layer.output, model.output])
    x = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        activations, outputs = split(x, training=False)
        chosen = tf.gather(outputs, classes, axis=1, batch_dims=1)
    gradients = tape.gradient(chosen, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))[..., None]
    cam = tf.image.resize(cam, inputs.shape[1:3], method="bilinear")[..., 0].numpy()
    return cam / np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)


def randomised_copy(model: keras.Model, seed: int = 0) -> keras.Model:
    """The same architecture with every weight replaced by Gaussian noise of the same scale
    (full cascading randomisation; BatchNorm variances kept positive)."""
    copy = keras.models.clone_model(model)
    rng = np.random.default_rng(seed)
    weights = []
    for weight in model.get_weights():
        noise = rng.normal(0, max(float(weight.std()), 1e-3), weight.shape)
        weights.append((np.abs(noise) + 1e-3 if (weight > 0).all() else noise).astype(weight.dtype))
    copy.set_weights(weights)
    return copy


def rank_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of |attribution| per image between two sets of maps (NaN where a
    map is flat, e.g. a Grad-CAM that ReLU zeroed: no ranking to compare)."""
    return np.array([spearmanr(np.abs(x).ravel(), np.abs(y).ravel())[0]
                     if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
                     for x, y in zip(a, b, strict=True)])


def pick_examples(faces: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  per_class: int = 1, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` correctly classified faces of every class (seeded), falling
    back to any face of the class when none is correct."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in range(probabilities.shape[1]):
        correct = np.flatnonzero((labels == cls) & (probabilities.argmax(1) == cls))
        pool = correct if len(correct) >= per_class else np.flatnonzero(labels == cls)
        chosen.extend(rng.choice(pool, min(per_class, len(pool)), replace=False))
    return np.array(chosen, int)


def class_average_maps(maps: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Mean attribution map per class (NaN maps for classes without examples)."""
    return np.stack([maps[labels == c].mean(0) if (labels == c).any() else
                     np.full(maps.shape[1:], np.nan) for c in range(count)])


def example_titles(labels: np.ndarray, probabilities: np.ndarray, indices: np.ndarray,
                   names: list[str] | tuple[str, ...]) -> list[str]:
    """'<true class> (<top probability>)' for each chosen face, as the figures title them."""
    return [f"{names[labels[i]]} ({probabilities[i].max():.2f})" for i in indices]


def region_shares(class_maps: np.ndarray, labels: np.ndarray,
                  names: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Where the attribution mass of each class-average map (`class_average_maps`) sits: the
    share of its |attribution| in the upper half of the crop (eyes, brows) and in the lower half
    (mouth, cheeks), with the number of faces (`labels`: the class of each averaged face) behind
    each map. A class without faces (NaN map) or with an all-zero map gets NaN shares."""
    half = class_maps.shape[1] // 2
    magnitude = np.abs(class_maps)
    total = magnitude.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = magnitude[:, :half].sum((1, 2)) / total
    upper = np.where(total > 0, upper, np.nan)
    return pd.DataFrame({"upper_half_share": upper, "lower_half_share": 1 - upper,
                         "faces": np.bincount(labels, minlength=len(names))},
                        index=pd.Index(list(names), name="class"))


def region_share_intervals(maps: np.ndarray, labels: np.ndarray,
                           names: list[str] | tuple[str, ...], resamples: int = 1000,
                           seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """`region_shares`' lower-half share of each class-average map, computed from the per-face
    maps (`maps`, one per face of class `labels`), with a percentile bootstrap interval that
    resamples the class's faces: the region a class relies on is established only when the
    interval is clear of one half (0.5). Classes without faces get NaN."""
    rng = np.random.default_rng(seed)
    half = maps.shape[1] // 2
    tail = (1 - confidence) / 2 * 100

    def lower_share(chosen: np.ndarray) -> float:
        magnitude = np.abs(chosen.mean(0))
        total = magnitude.sum()
        return float(magnitude[half:].sum() / total) if total > 0 else np.nan

    rows = []
    for cls, name in enumerate(names):
        members = maps[labels == cls]
        if not len(members):
            rows.append({"class": name, "faces": 0, "lower_half_share": np.nan,
                         "lower_half_share_ci_low": np.nan, "lower_half_share_ci_high": np.nan})
            continue
        boot = [lower_share(members[rng.integers(0, len(members), len(members))])
                for _ in range(resamples)]
        rows.append({"class": name, "faces": len(members),
                     "lower_half_share": lower_share(members),
                     "lower_half_share_ci_low": float(np.nanpercentile(boot, tail)),
                     "lower_half_share_ci_high": float(np.nanpercentile(boot, 100 - tail))})
    return pd.DataFrame(rows).set_index("class")


def sanity_check(similarity: dict[str, np.ndarray], repeatability: dict[str, np.ndarray | float],
                 resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                 confidence: float = 0.95) -> pd.DataFrame:
    """The randomisation check's verdict per method, from per-face rank correlations.

    `similarity`: method -> trained-vs-randomised correlation per face (`rank_similarity`);
    `repeatability`: method -> how alike two maps of the *trained* model are at all (per face,
    e.g. SHAP with two seeds), or a number for a deterministic method (Grad-CAM: 1). A face
    whose map is flat (NaN, e.g. a randomised Grad-CAM that the ReLU zeroed) has no ranking to
    compare: it is counted in `flat_maps` and left out of the statistics (such a map did not
    survive randomisation). The method passes when trained-vs-randomised is below its
    repeatability face by face: one-sided Wilcoxon signed-rank test, p < `alpha`. Medians come
    with `confidence` percentile bootstrap intervals over faces."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2 * 100

    def median_ci(values: np.ndarray) -> tuple[float, float, float]:
        if not len(values):
            return np.nan, np.nan, np.nan
        boot = np.median(rng.choice(values, (resamples, len(values))), axis=1)
        return (float(np.median(values)), float(np.percentile(boot, tail)),
                float(np.percentile(boot, 100 - tail)))

    rows = []
    for method, values in similarity.items():
        values = np.asarray(values, float)
        reference = repeatability[method]
        paired = np.broadcast_to(np.asarray(reference, float), values.shape)
        kept = np.isfinite(values) & np.isfinite(paired)
        differences = values[kept] - paired[kept]
        p = (float(wilcoxon(differences, alternative="less").pvalue)
             if len(differences) and np.any(differences != 0) else np.nan)
        similar, low, high = median_ci(values[kept])
        if np.ndim(reference):
            repeat, repeat_low, repeat_high = median_ci(paired[kept])
        else:
            repeat = repeat_low = repeat_high = float(reference)
        rows.append({"method": method, "faces": int(kept.sum()),
                     "flat_maps": int((~np.isfinite(values)).sum()),
                     "trained_vs_randomised": similar, "trained_vs_randomised_ci_low": low,
                     "trained_vs_randomised_ci_high": high, "repeatability": repeat,
                     "repeatability_ci_low": repeat_low, "repeatability_ci_high": repeat_high,
                     "wilcoxon_p": p,
                     "verdict": "passes" if p < alpha else "fails"})
    return pd.DataFrame(rows).set_index("method")

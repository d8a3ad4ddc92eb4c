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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib.figure import Figure
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


def _symmetric(ax, image: np.ndarray, title: str) -> None:
    limit = np.nanmax(np.abs(image)) or 1.0
    ax.imshow(image, cmap="bwr", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def plot_explanations(faces: np.ndarray, shap_maps: np.ndarray, cams: np.ndarray,
                      titles: list[str]) -> Figure:
    """Columns: faces; rows: the face, SHAP (red raises the class), Grad-CAM overlay."""
    fig, axes = plt.subplots(3, len(faces), figsize=(1.5 * len(faces), 4.8), squeeze=False)
    for i, face in enumerate(faces):
        axes[0, i].imshow(face, cmap="gray")
        axes[0, i].set_title(titles[i], fontsize=7)
        _symmetric(axes[1, i], shap_maps[i], "SHAP")
        axes[2, i].imshow(face, cmap="gray")
        axes[2, i].imshow(cams[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[2, i].set_title("Grad-CAM", fontsize=7)
        for ax in (axes[0, i], axes[2, i]):
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_class_maps(mean_face: np.ndarray, maps: np.ndarray, names: list[str],
                    title: str) -> Figure:
    """One panel per class: its mean map over the average face."""
    fig, axes = plt.subplots(1, len(names), figsize=(1.6 * len(names), 2.0), squeeze=False)
    for ax, cls_map, name in zip(axes[0], maps, names, strict=True):
        ax.imshow(mean_face, cmap="gray")
        limit = np.nanmax(np.abs(cls_map)) if np.isfinite(cls_map).any() else 1.0
        ax.imshow(cls_map, cmap="bwr", alpha=0.6, vmin=-limit, vmax=limit)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig

"""The expression CNN: a compact VGG-style network for 48x48 grayscale faces.

Sized for a Pi CPU and for training on two CPU cores: the wide layers run at low resolution
(a 3x3 stem, a downsampling to 24x24, then stages at 24, 12, 6 and 3 pixels, two convs each).
The defaults (full resolution stem, stages 32-256) give 1.2 M parameters and 32 M multiply-adds;
`stem_strides=2` downsamples in the stem instead, which with stages 24-192 halves the cost
(0.67 M parameters, 18.5 M multiply-adds) for the latency target.
Every op is int8-friendly (Conv2D with BatchNorm folded in, ReLU, MaxPool, global average
pooling, Dense). Augmentation layers sit in front and are active only in training; the
exported graph is built without them.
"""

from __future__ import annotations

import keras
from keras import layers

from face_sentiment.model.augmentation import augmentation_layers


def _conv_bn_relu(x, filters: int, strides: int = 1):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_model(num_classes: int = 7, input_size: int = 48, stem_filters: int = 16,
                stage_filters: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4,
                stem_strides: int = 1, augment: bool = True, seed: int = 0) -> keras.Model:
    """Return the (uncompiled) expression classifier; outputs softmax probabilities.

    The first stage always runs at half the input size: `stem_strides` picks whether the stem
    (2) or the stage's first conv (1) downsamples.
    """
    if stem_strides not in (1, 2):
        raise ValueError(f"stem_strides must be 1 or 2, not {stem_strides!r}")
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = augmentation_layers(seed)(inputs) if augment else inputs
    x = _conv_bn_relu(x, stem_filters, strides=stem_strides)
    x = _conv_bn_relu(x, stage_filters[0], strides=3 - stem_strides)
    x = _conv_bn_relu(x, stage_filters[0])
    for filters in stage_filters[1:]:
        x = layers.MaxPooling2D()(x)
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="face_sentiment_cnn")


@keras.saving.register_keras_serializable(package="face_sentiment")
class Mirror(layers.Layer):
    """The face mirrored left to right: flip test-time augmentation inside a graph (an ensemble
    graph's second view, `face_sentiment.model.ensemble_graph`); int8-friendly (REVERSE_V2)."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=2)


def member_networks(model: keras.Model) -> list[keras.Model]:
    """The trained networks inside a graph that averages several (an ensemble graph, whose
    `averaged_model` names them member_0, member_1...); [] for a single network."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.Model) and layer.name.startswith("member_")]


def views_per_member(model: keras.Model) -> int:
    """How many views of the face each network sees: 2 with a `Mirror` layer, else 1."""
    return 2 if any(isinstance(layer, Mirror) for layer in model.layers) else 1


def architecture_of(model: keras.Model) -> dict:
    """The `build_model` arguments that reproduce a model's shape (read from its layers)."""
    if member_networks(model):
        raise ValueError(f"{model.name} averages {len(member_networks(model))} networks: read "
                         "each member's architecture (member_networks)")
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    dropout = next(layer.rate for layer in model.layers if isinstance(layer, layers.Dropout))
    return {"num_classes": int(model.output_shape[-1]), "input_size": int(model.input_shape[1]),
            "stem_filters": convs[0].filters, "stem_strides": int(convs[0].strides[0]),
            "stage_filters": tuple(conv.filters for conv in convs[1::2]), "dropout": dropout}


def inference_copy(model: keras.Model) -> keras.Model:
    """Copy of a trained `model` without its augmentation layers, for evaluation and export.

    An ensemble graph is returned as it is: it is built from members' inference copies."""
    if member_networks(model):
        return model
    inference = build_model(augment=False, **architecture_of(model))
    weights = [w for layer in model.layers if layer.name != "augmentation"
               for w in layer.get_weights()]
    inference.set_weights(weights)
    return inference


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds per face of the convolutions and dense layers (the cost that matters)."""
    total, members = 0, member_networks(model)
    for layer in model.layers:
        if layer in members:  # an ensemble graph's member, run once per view
            total += multiply_adds(layer) * views_per_member(model)
        elif isinstance(layer, layers.Conv2D):
            height, width, out_channels = layer.output.shape[1:]
            kernel = layer.kernel.shape  # (kh, kw, in, out)
            total += height * width * kernel[0] * kernel[1] * kernel[2] * out_channels
        elif isinstance(layer, layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def describe(model: keras.Model) -> str:
    """One line for a model card: the `build_model` call of a network, or of each member of an
    ensemble graph with its views."""
    def call(network: keras.Model) -> str:
        arguments = ", ".join(f"{k}={v}" for k, v in architecture_of(network).items())
        return f"face_sentiment.model.architecture.build_model({arguments})"

    members = member_networks(model)
    if not members:
        return f"VGG-style CNN ({call(model)})"
    views = " and its mirror image (flip inside the graph)" if views_per_member(model) == 2 else ""
    return (f"{len(members)} VGG-style CNNs averaged in one graph "
            f"(face_sentiment.model.ensemble_graph), each run on the face{views}: "
            + "; ".join(call(member) for member in members))

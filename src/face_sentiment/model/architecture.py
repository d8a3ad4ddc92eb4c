"""The expression CNNs for 48x48 grayscale faces: a compact VGG-style family and a residual one.

Sized for a Pi CPU and for training on two CPU cores: the wide layers run at low resolution
(a 3x3 stem, a downsampling to 24x24, then stages at 24, 12, 6 and 3 pixels, two convs each).
The defaults (full resolution stem, stages 32-256) give 1.2 M parameters and 32 M multiply-adds;
`stem_strides=2` downsamples in the stem instead, which with stages 24-192 halves the cost
(0.67 M parameters, 18.5 M multiply-adds) for the latency target.
Every op is int8-friendly (Conv2D with BatchNorm folded in, ReLU, MaxPool, global average
pooling, Dense). Augmentation layers sit in front and are active only in training; the
exported graph is built without them.

`family="resnet"` keeps the stem, the stage resolutions and the head but makes each stage
`blocks_per_stage` residual basic blocks (He et al. 2016: two 3x3 convs plus the block's input,
average pooling and a 1x1 projection where the shape changes) and downsamples with strided
convs instead of max pooling: a deeper, narrower net at the same cost (stages 16-128 with two
blocks each: 19.5 M multiply-adds, 0.70 M parameters), the other shape the issue asked to try.
Add and average pooling are int8-friendly too.
"""

from __future__ import annotations

import re

import keras
from keras import layers

from face_sentiment.model.augmentation import augmentation_layers


def _conv_bn_relu(x, filters: int, strides: int = 1):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _residual_block(x, filters: int, strides: int, name: str):
    """A basic block; its convs are named `<name>_conv1/_conv2/_shortcut` (architecture_of
    reads the shape back from those names)."""
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      name=f"{name}_conv1")(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization()(y)
    # The shortcut downsamples by average pooling before its 1x1 projection (ResNet-D, He et
    # al. 2019), not with a strided 1x1 conv: that conv's input gradient corrupts memory under
    # TF 2.16's oneDNN kernels on this CPU (a malloc abort, measured 2026-12-03).
    if strides != 1:
        shortcut = layers.AveragePooling2D(strides, padding="same", name=f"{name}_pool")(shortcut)
    if shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


FAMILIES = ("vgg", "resnet")


def build_model(num_classes: int = 7, input_size: int = 48, stem_filters: int = 16,
                stage_filters: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4,
                stem_strides: int = 1, augment: bool = True, seed: int = 0,
                family: str = "vgg", blocks_per_stage: int = 2) -> keras.Model:
    """Return the (uncompiled) expression classifier; outputs softmax probabilities.

    The first stage always runs at half the input size: `stem_strides` picks whether the stem
    (2) or the stage's first conv (1) downsamples. `family` is vgg (two convs per stage) or
    resnet (`blocks_per_stage` residual blocks per stage).
    """
    if stem_strides not in (1, 2):
        raise ValueError(f"stem_strides must be 1 or 2, not {stem_strides!r}")
    if family not in FAMILIES:
        raise ValueError(f"unknown architecture family {family!r}; use one of {FAMILIES}")
    if family == "resnet" and blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be at least 1, not {blocks_per_stage!r}")
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = augmentation_layers(seed)(inputs) if augment else inputs
    x = _conv_bn_relu(x, stem_filters, strides=stem_strides)
    if family == "resnet":
        for stage, filters in enumerate(stage_filters):
            for block in range(blocks_per_stage):
                strides = (3 - stem_strides if stage == 0 else 2) if block == 0 else 1
                x = _residual_block(x, filters, strides, name=f"stage{stage}_block{block}")
    else:
        x = _conv_bn_relu(x, stage_filters[0], strides=3 - stem_strides)
        x = _conv_bn_relu(x, stage_filters[0])
        for filters in stage_filters[1:]:
            x = layers.MaxPooling2D()(x)
            x = _conv_bn_relu(x, filters)
            x = _conv_bn_relu(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    name = "face_sentiment_cnn" if family == "vgg" else "face_sentiment_resnet"
    return keras.Model(inputs, outputs, name=name)


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
    shape = {"num_classes": int(model.output_shape[-1]), "input_size": int(model.input_shape[1]),
             "stem_filters": convs[0].filters, "stem_strides": int(convs[0].strides[0]),
             "stage_filters": tuple(conv.filters for conv in convs[1::2]), "dropout": dropout,
             "family": "vgg"}
    blocks = [(int(match[1]), conv.filters) for conv in convs
              if (match := re.fullmatch(r"stage\d+_block(\d+)_conv1", conv.name))]
    if blocks:  # the resnet family's named blocks: (block index in its stage, width)
        shape["stage_filters"] = tuple(width for block, width in blocks if block == 0)
        shape["family"] = "resnet"
        shape["blocks_per_stage"] = max(block for block, _ in blocks) + 1
    return shape


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
        shape = architecture_of(network)
        arguments = ", ".join(f"{k}={v!r}" for k, v in shape.items())
        kind = "residual CNN" if shape.get("family") == "resnet" else "VGG-style CNN"
        return f"{kind} (face_sentiment.model.architecture.build_model({arguments}))"

    members = member_networks(model)
    if not members:
        return call(model)
    views = " and its mirror image (flip inside the graph)" if views_per_member(model) == 2 else ""
    if len(members) == 1:
        return f"one {call(members[0])} run on the face{views}, averaged in one graph"
    return (f"{len(members)} networks averaged in one graph "
            f"(face_sentiment.model.ensemble_graph), each run on the face{views}: "
            + "; ".join(call(member) for member in members))

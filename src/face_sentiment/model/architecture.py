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

Each family is a builder registered with `@register_family(name)` and built by
`create_model(name, **arguments)` (as timm's registry does); `architecture_spec` gives a model's
family and arguments for its model card, and `inference_copy` rebuilds a network from that
entry, reading the shape back from the layers (`architecture_of`) only for a card without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


Builder = Callable[..., keras.Model]
# Family name -> builder, filled by `register_family` (timm-style): `create_model` looks a
# family up here, and a model card names its network by the family and its arguments.
_FAMILIES: dict[str, Builder] = {}


def register_family(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder` as the network family `name` for `create_model`."""
    def register(builder: Builder) -> Builder:
        if _FAMILIES.get(name, builder) is not builder:
            raise ValueError(f"architecture family {name!r} is already registered")
        _FAMILIES[name] = builder
        return builder
    return register


def families() -> tuple[str, ...]:
    """The registered family names, in registration order."""
    return tuple(_FAMILIES)


def create_model(family: str, **kwargs) -> keras.Model:
    """The (uncompiled) network of a registered `family`, built with its builder's `kwargs`."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown architecture family {family!r}; use one of {families()}")
    return _FAMILIES[family](**kwargs)


def _stem(input_size: int, stem_filters: int, stem_strides: int, augment: bool, seed: int):
    """The face input, the augmentation layers (training only) and the stem conv."""
    if stem_strides not in (1, 2):
        raise ValueError(f"stem_strides must be 1 or 2, not {stem_strides!r}")
    inputs = keras.Input((input_size, input_size, 1), name="face")
    x = augmentation_layers(seed)(inputs) if augment else inputs
    return inputs, _conv_bn_relu(x, stem_filters, strides=stem_strides)


def _head(inputs, x, num_classes: int, dropout: float, seed: int, name: str) -> keras.Model:
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


@register_family("vgg")
def vgg(num_classes: int = 7, input_size: int = 48, stem_filters: int = 16,
        stage_filters: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4,
        stem_strides: int = 1, augment: bool = True, seed: int = 0) -> keras.Model:
    """Two 3x3 convs per stage, max pooling between stages."""
    inputs, x = _stem(input_size, stem_filters, stem_strides, augment, seed)
    x = _conv_bn_relu(x, stage_filters[0], strides=3 - stem_strides)
    x = _conv_bn_relu(x, stage_filters[0])
    for filters in stage_filters[1:]:
        x = layers.MaxPooling2D()(x)
        x = _conv_bn_relu(x, filters)
        x = _conv_bn_relu(x, filters)
    return _head(inputs, x, num_classes, dropout, seed, "face_sentiment_cnn")


@register_family("resnet")
def resnet(num_classes: int = 7, input_size: int = 48, stem_filters: int = 16,
           stage_filters: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4,
           stem_strides: int = 1, augment: bool = True, seed: int = 0,
           blocks_per_stage: int = 2) -> keras.Model:
    """`blocks_per_stage` residual basic blocks per stage, strided convs between stages."""
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be at least 1, not {blocks_per_stage!r}")
    inputs, x = _stem(input_size, stem_filters, stem_strides, augment, seed)
    for stage, filters in enumerate(stage_filters):
        for block in range(blocks_per_stage):
            strides = (3 - stem_strides if stage == 0 else 2) if block == 0 else 1
            x = _residual_block(x, filters, strides, name=f"stage{stage}_block{block}")
    return _head(inputs, x, num_classes, dropout, seed, "face_sentiment_resnet")


def build_model(num_classes: int = 7, input_size: int = 48, stem_filters: int = 16,
                stage_filters: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4,
                stem_strides: int = 1, augment: bool = True, seed: int = 0,
                family: str = "vgg", blocks_per_stage: int = 2) -> keras.Model:
    """Return the (uncompiled) expression classifier; outputs softmax probabilities.

    The first stage always runs at half the input size: `stem_strides` picks whether the stem
    (2) or the stage's first conv (1) downsamples. `family` is vgg (two convs per stage) or
    resnet (`blocks_per_stage` residual blocks per stage; ignored by vgg, so that a training
    config can always pass it).
    """
    arguments = {"num_classes": num_classes, "input_size": input_size,
                 "stem_filters": stem_filters, "stage_filters": stage_filters,
                 "dropout": dropout, "stem_strides": stem_strides, "augment": augment,
                 "seed": seed}
    if family == "resnet":
        arguments["blocks_per_stage"] = blocks_per_stage
    return create_model(family, **arguments)


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
    """The `build_model` arguments that reproduce a model's shape, read from its layers' types
    and names: the fallback for a model whose card has no `architecture_spec` entry."""
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


def architecture_spec(model: keras.Model) -> dict:
    """A model card's `architecture_spec` entry (JSON-ready): {"family", "arguments"} of a
    network (`create_model(family, **arguments)` rebuilds it), or for an ensemble graph its
    members' entries and how many views of the face each sees."""
    members = member_networks(model)
    if members:
        return {"members": [architecture_spec(member) for member in members],
                "views": views_per_member(model)}
    arguments = architecture_of(model)
    family = arguments.pop("family")
    arguments["stage_filters"] = list(arguments["stage_filters"])
    return {"family": family, "arguments": arguments}


def spec_arguments(spec: dict) -> dict:
    """`build_model` arguments (family included) from one network's `architecture_spec`."""
    if "family" not in spec:
        raise ValueError("an ensemble graph's architecture_spec has no single family: read "
                         "each of its 'members'")
    arguments = dict(spec.get("arguments", {}))
    if "stage_filters" in arguments:  # a JSON list in the card
        arguments["stage_filters"] = tuple(arguments["stage_filters"])
    return {**arguments, "family": spec["family"]}


def inference_copy(model: keras.Model, spec: dict | None = None) -> keras.Model:
    """Copy of a trained `model` without its augmentation layers, for evaluation and export.

    `spec` is the model's card entry (`architecture_spec`); without it the shape is read back
    from the layers. An ensemble graph is returned as it is: it is built from members'
    inference copies."""
    if member_networks(model):
        return model
    shape = spec_arguments(spec) if spec is not None else architecture_of(model)
    family = shape.pop("family")
    inference = create_model(family, augment=False, **shape)
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

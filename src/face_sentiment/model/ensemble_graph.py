"""One Keras graph that averages several trained networks, for a one-invoke TFLite export.

The Pi runner's "accurate mode" runs an ensemble as one model: every member sees the same
preprocessed face (so members must share their preprocessing), their probabilities are
averaged inside the graph, and optionally the mirrored face too (flip TTA), so one
`invoke()` returns what averaging the members' outputs outside would.
"""

from __future__ import annotations

import keras
from keras import layers

from face_sentiment.model.architecture import inference_copy


def averaged_model(members: list[keras.Model], flip: bool = False,
                   weights: list[float] | None = None, name: str = "ensemble") -> keras.Model:
    """A model whose output is the (weighted) mean of `members`' probabilities.

    `members` are trained networks (their augmentation layers are dropped); with `flip`, each
    member also scores the mirrored face and the two are averaged first.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"need one non-negative weight per member, got {weights}")
    networks = [inference_copy(member) for member in members]
    shapes = {tuple(network.input_shape[1:]) for network in networks}
    classes = {network.output_shape[-1] for network in networks}
    if len(shapes) != 1 or len(classes) != 1:
        raise ValueError(f"members must share input shape and classes, got inputs {shapes} "
                         f"and {classes} classes")
    for index, network in enumerate(networks):  # unique names inside one graph
        network.name = f"member_{index}"
    inputs = keras.Input(shapes.pop(), name="face")
    views = [inputs]
    if flip:
        views.append(layers.Lambda(lambda x: keras.ops.flip(x, axis=2), name="mirror")(inputs))
    total = sum(weights)
    outputs = []
    for weight, network in zip(weights, networks, strict=True):
        for view in views:
            outputs.append(layers.Rescaling(weight / total / len(views))(network(view)))
    output = layers.Add(name="probabilities")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(inputs, output, name=name)

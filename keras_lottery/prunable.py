"""Which weights of which Keras layers can be pruned.

One explicit map from layer class to the attribute names of its prunable
weights (kernels; never biases or normalization parameters); a dotted name
reaches into a sublayer (`cell.kernel`, `query_dense.kernel`), and names
the weight's mask `<layer>/<name with "/" for ".">`. A custom layer
becomes prunable either through `register(cls, names)` or by defining a
`get_prunable_weights()` method that returns its prunable variables.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras

_REGISTRY: dict[type, tuple[str, ...]] = {
    keras.layers.Dense: ("kernel",),
    keras.layers.EinsumDense: ("kernel",),
    keras.layers.Conv1D: ("kernel",),
    keras.layers.Conv2D: ("kernel",),
    keras.layers.Conv3D: ("kernel",),
    keras.layers.Conv1DTranspose: ("kernel",),
    keras.layers.Conv2DTranspose: ("kernel",),
    keras.layers.Conv3DTranspose: ("kernel",),
    keras.layers.DepthwiseConv1D: ("kernel",),
    keras.layers.DepthwiseConv2D: ("kernel",),
    keras.layers.SeparableConv1D: ("depthwise_kernel", "pointwise_kernel"),
    keras.layers.SeparableConv2D: ("depthwise_kernel", "pointwise_kernel"),
    keras.layers.Embedding: ("embeddings",),
    # Its query, key, value and output projections (EinsumDense).
    keras.layers.MultiHeadAttention: (
        "query_dense.kernel", "key_dense.kernel", "value_dense.kernel",
        "output_dense.kernel"),
    # Input and recurrent kernels, read by the cell at every time step.
    keras.layers.SimpleRNN: ("cell.kernel", "cell.recurrent_kernel"),
    keras.layers.GRU: ("cell.kernel", "cell.recurrent_kernel"),
    keras.layers.LSTM: ("cell.kernel", "cell.recurrent_kernel"),
    keras.layers.Bidirectional: (
        "forward_layer.cell.kernel", "forward_layer.cell.recurrent_kernel",
        "backward_layer.cell.kernel", "backward_layer.cell.recurrent_kernel"),
}


def register(layer_class: type, weight_names: Sequence[str]) -> None:
    """Makes `layer_class` prunable.

    Args:
        layer_class: a subclass of `keras.layers.Layer`.
        weight_names: attribute names of its prunable weights (after build),
            e.g. `("kernel",)`.

    Raises:
        ValueError: if `layer_class` is not a Keras layer class or
            `weight_names` is empty or not strings.

    Example:
        >>> keras_lottery.register_prunable(MyDense, ["kernel"])
    """
    if not (isinstance(layer_class, type)
            and issubclass(layer_class, keras.layers.Layer)):
        raise ValueError(
            "`layer_class` must be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}"
        )
    if isinstance(weight_names, str):
        weight_names = (weight_names,)
    names = tuple(weight_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            "`weight_names` must be a non-empty sequence of attribute names. "
            f"Received: weight_names={weight_names!r}"
        )
    _REGISTRY[layer_class] = names


def is_prunable(layer: keras.layers.Layer) -> bool:
    """Returns whether `layer` has weights that can be pruned."""
    return (hasattr(layer, "get_prunable_weights")
            or _registered_names(layer) is not None)


def supported() -> list[str]:
    """Returns the names of the layer classes registered as prunable."""
    return sorted(cls.__name__ for cls in _REGISTRY)


def prunable_weights(layer: keras.layers.Layer) -> list[keras.Variable]:
    """Returns the prunable variables of a built `layer`.

    Raises:
        ValueError: if the layer's class is neither registered nor defines
            `get_prunable_weights()`, listing the supported classes.
    """
    if hasattr(layer, "get_prunable_weights"):
        weights = list(layer.get_prunable_weights())
    else:
        names = _registered_names(layer)
        if names is None:
            raise ValueError(
                f"Layer {layer.name!r} of class {type(layer).__name__} has no "
                "prunable weights. Supported layers: "
                f"{', '.join(supported())}; register others with "
                "`keras_lottery.register_prunable` or give them a "
                "`get_prunable_weights()` method. "
                f"Received: layer={type(layer).__name__}"
            )
        weights = [_attribute(layer, name) for name in names]
    for weight in weights:
        if not isinstance(weight, keras.Variable):
            raise ValueError(
                f"The prunable weights of layer {layer.name!r} must be "
                f"keras.Variable objects. Received: {weight!r}"
            )
    return weights


def weight_keys(layer: keras.layers.Layer) -> list[str]:
    """Names of a built layer's prunable weights, aligned with
    `prunable_weights`: the registered name with "/" for ".", or, for a
    `get_prunable_weights()` method, each weight's name (numbered when
    two share one).
    """
    names = None
    if not hasattr(layer, "get_prunable_weights"):
        names = _registered_names(layer)
    if names is not None:
        return [name.replace(".", "/") for name in names]
    keys = []
    for i, weight in enumerate(prunable_weights(layer)):
        keys.append(weight.name if weight.name not in keys
                    else f"{weight.name}_{i}")
    return keys


def _attribute(layer: keras.layers.Layer, name: str):
    """`layer.<name>`, where a dotted name reaches into sublayers."""
    return functools.reduce(getattr, name.split("."), layer)


def _registered_names(layer: keras.layers.Layer) -> tuple[str, ...] | None:
    # Exact class first, then the nearest registered base class.
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None

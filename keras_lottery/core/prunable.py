"""Which weights of which Keras layers can be pruned.

One explicit map from layer class to the attribute names of its prunable
weights (kernels; never biases or normalization parameters); a dotted name
reaches into a sublayer (`cell.kernel`, `query_dense.kernel`), and names
the weight's mask `<layer>/<name with "/" for ".">`. A custom layer
becomes prunable either through `register(cls, names)` or by defining a
`get_prunable_weights()` method that returns its prunable variables.

A composite layer (a KerasHub `TransformerEncoder`, a ViT encoder, any
layer made of sublayers) whose class is neither is prunable through its
sublayers: every sublayer at any depth whose class is prunable lends its
weights, named by the path of sublayer names
(`self_attention/query_dense/kernel`, `transformer_block_1/mlp/dense_1/
kernel`), so a whole block gets its masks without registering anything.
"""

from __future__ import annotations

import dataclasses
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
    """Returns whether `layer` has weights that can be pruned: its class
    is prunable, or it is a composite with a prunable sublayer."""
    return _is_own(layer) or bool(_composite(layer))


def _is_own(layer: keras.layers.Layer) -> bool:
    """Whether `layer`'s class names its own prunable weights."""
    return (hasattr(layer, "get_prunable_weights")
            or _registered_names(layer) is not None)


def _composite(layer: keras.layers.Layer
               ) -> list[tuple[str, keras.layers.Layer]]:
    """`(path, sublayer)` for the prunable sublayers of a composite layer.

    Depth first, in tracking order; a prunable sublayer is not looked
    into (its class names its weights). Empty for a layer whose class is
    prunable itself, and for a model (`wrap` wraps a model's layers).
    """
    if _is_own(layer) or isinstance(layer, keras.Model):
        return []
    found, seen = [], set()

    def walk(parent, prefix):
        for sub in parent._flatten_layers(include_self=False,
                                          recursive=False):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            if _is_own(sub):
                found.append((f"{prefix}{sub.name}", sub))
            else:
                walk(sub, f"{prefix}{sub.name}/")

    walk(layer, "")
    return found


def supported() -> list[str]:
    """Returns the names of the layer classes registered as prunable."""
    return sorted(cls.__name__ for cls in _REGISTRY)


def prunable_weights(layer: keras.layers.Layer) -> list[keras.Variable]:
    """Returns the prunable variables of a built `layer`.

    Raises:
        ValueError: if the layer's class is neither registered nor defines
            `get_prunable_weights()`, listing the supported classes.
    """
    composite = _composite(layer)
    if composite:
        return [w for _, sub in composite for w in prunable_weights(sub)]
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
    composite = _composite(layer)
    if composite:
        keys = []
        for path, sub in composite:
            for key in weight_keys(sub):
                key = f"{path}/{key}"
                keys.append(key if key not in keys else f"{key}_{len(keys)}")
        return keys
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


def owner_path(name: str, layer: keras.layers.Layer,
               variable: keras.Variable) -> str:
    """`name`, or `name/<sublayer path>` for a weight a composite layer's
    sublayer lends: the layer whose units (heads) the weight shares."""
    path, _ = _lender(layer, variable)
    return f"{name}/{path}" if path else name


def _lender(layer: keras.layers.Layer, variable: keras.Variable
            ) -> tuple[str, keras.layers.Layer]:
    """`(path, sublayer)` of the composite layer's sublayer that lends
    `variable`; `("", layer)` for a weight of the layer's own."""
    for path, sub in _composite(layer):
        if any(variable is w for w in prunable_weights(sub)):
            return path, sub
    return "", layer


def _attribute(layer: keras.layers.Layer, name: str):
    """`layer.<name>`, where a dotted name reaches into sublayers."""
    return functools.reduce(getattr, name.split("."), layer)


def _registered_names(layer: keras.layers.Layer) -> tuple[str, ...] | None:
    # Exact class first, then the nearest registered base class.
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            names = _REGISTRY[cls]
            if cls is keras.layers.Embedding and isinstance(getattr(
                    layer, "reverse_embeddings", None), keras.Variable):
                # KerasHub's ReversibleEmbedding with untied weights: its
                # output projection is a weight of its own. (Tied, the
                # projection is the embeddings, masked with them.)
                names = (*names, "reverse_embeddings")
            return names
    return None


# Structured granularities: what a unit of a prunable weight is.
# `neuron` (a Dense output unit) and `filter` (a conv output channel) remove
# a layer's output unit, with its per-unit weights (bias; the gamma and beta
# of a BatchNormalization right after it); `channel` removes a conv input
# channel from every filter; `head` removes an attention head from all four
# kernels of a MultiHeadAttention; `m:n` keeps at most m of every n
# consecutive weights along the input axis (attention kernels too).
OUTPUT_GRANULARITIES = ("neuron", "filter")


@dataclasses.dataclass(frozen=True)
class Structure:
    """How a prunable weight divides into units.

    Attributes:
        granularities: the granularities besides `weight` it supports, of
            "neuron", "filter", "channel", "head" and "m:n".
        unit_axis: the weight's axis of output units (neuron, filter) or
            heads.
        channel_axis: the weight's axis of input channels (channel, m:n).
    """

    granularities: tuple[str, ...] = ()
    unit_axis: int | None = None
    channel_axis: int | None = None


# MultiHeadAttention's kernels and their axis of heads: query, key and value
# are (model, heads, dim), the output (heads, dim, model).
_HEAD_AXES = {"query_dense": 1, "key_dense": 1, "value_dense": 1,
              "output_dense": 0}
_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_TRANSPOSED_CONVS = (keras.layers.Conv1DTranspose,
                     keras.layers.Conv2DTranspose,
                     keras.layers.Conv3DTranspose)


def structure(layer: keras.layers.Layer,
              variable: keras.Variable) -> Structure:
    """Returns how the prunable `variable` of `layer` divides into units.

    Only the kernels of Dense, 2-D EinsumDense and the convolutions (their
    transposes too) have units, and MultiHeadAttention's four kernels have
    heads; every other weight prunes weight by weight. A composite layer's
    weight divides as it does in the sublayer that lends it.
    """
    _, lender = _lender(layer, variable)
    if lender is not layer:
        return structure(lender, variable)
    if isinstance(layer, keras.layers.MultiHeadAttention):
        for name, axis in _HEAD_AXES.items():
            dense = getattr(layer, name, None)
            if dense is not None and variable is getattr(dense, "kernel",
                                                         None):
                # m:n runs along the inputs: the model axis of query, key
                # and value, a head's dim of the output (the fastest of
                # its (heads, dim) inputs, so groups never span heads).
                return Structure(("head", "m:n"), axis, 0 if axis else 1)
        return Structure()
    if variable is not getattr(layer, "kernel", None):
        return Structure()
    # Keras 3's transposed, depthwise and separable convs are not
    # subclasses of Conv1D/2D/3D. A transposed kernel is (..., out, in).
    if isinstance(layer, _TRANSPOSED_CONVS):
        return Structure(("filter", "channel", "m:n"), -2, -1)
    if isinstance(layer, _CONVS):
        return Structure(("filter", "channel", "m:n"), -1, -2)
    if isinstance(layer, keras.layers.Dense):
        return Structure(("neuron", "m:n"), -1, 0)
    if isinstance(layer, keras.layers.EinsumDense) and _is_matmul(layer):
        return Structure(("neuron", "m:n"), -1, 0)
    return Structure()


def unit_weights(layer: keras.layers.Layer,
                 input_shape: tuple | None = None) -> list[keras.Variable]:
    """The per-output-unit weights a unit mask zeroes with its unit.

    A Dense, 2-D EinsumDense or conv layer's bias; a channels-last
    BatchNormalization's gamma and beta (so that a pruned filter before it
    stays exactly 0 after it). Empty for every other layer.

    Args:
        layer: a built layer.
        input_shape: the layer's input shape, to tell whether a
            BatchNormalization normalizes the last axis.
    """
    if isinstance(layer, keras.layers.BatchNormalization):
        # A wrapper built without a shape: the layer's own (axis=3 in
        # keras.applications' ResNet50 is the last axis too).
        input_shape = input_shape or (
            layer.get_build_config() or {}).get("input_shape")
        last = len(input_shape) - 1 if input_shape else None
        if layer.axis not in (-1, last):
            return []
        return [v for v in (layer.gamma, layer.beta) if v is not None]
    bias = getattr(layer, "bias", None)
    kernel = getattr(layer, "kernel", None)
    if (not isinstance(bias, keras.Variable)
            or not isinstance(kernel, keras.Variable)
            or len(bias.shape) != 1):
        return []
    unit_axis = structure(layer, kernel).unit_axis
    if unit_axis is None or kernel.shape[unit_axis] != bias.shape[0]:
        return []
    return [bias]


def _is_matmul(layer: keras.layers.EinsumDense) -> bool:
    """Whether an EinsumDense is `...a,ab->...b`: a Dense in einsum form."""
    inputs, _, output = layer.equation.partition("->")
    _, _, kernel = inputs.partition(",")
    return (len(kernel) == 2 and kernel[0] not in output
            and output.endswith(kernel[1]))

"""Physically smaller tickets: removing dead units from a Keras model.

Structured pruning (whole Dense units, whole conv filters) leaves exact
zeros in a stripped model's weights, but the model computes them all.
`shrink` finds the output channels of Dense and convolution layers that
cannot change the model's outputs and rebuilds the model without them, with
fewer `units` / `filters` and sliced weights, so that it runs faster and
saves smaller. It works on plain Keras models, from exact zeros in weight
values alone: no mask is needed.

A channel is dead when, at every layer that consumes it, either it is
identically zero there or the consumer ignores it (all the consumer's
weights that read it are exactly 0). Zeros are tracked from the producers
(kernel slice 0 on every input that can be nonzero, bias 0 or no bias,
activation(0) == 0) through the layers in `_ELEMENTWISE`,
`_CHANNEL_PRESERVING`, `_MERGES`, BatchNormalization and Flatten. Channels
that meet at an elementwise merge (`Add`, ...) form one channel space and go
together or not at all. A channel that reaches a model output, or any layer
the analysis does not understand, is kept. See docs/SHRINK.md.

Example:
    >>> small = keras_lottery.shrink(model)
    >>> small.get_layer("fc1").units
    75
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import wrapping

# Layers that produce channels: class -> (output axis, input axis) of the
# kernel. Exact classes: a subclass may compute something else.
_PRODUCERS = {
    keras.layers.Dense: (-1, 0),
    keras.layers.Conv1D: (-1, -2),
    keras.layers.Conv2D: (-1, -2),
    keras.layers.Conv3D: (-1, -2),
    keras.layers.Conv1DTranspose: (-2, -1),
    keras.layers.Conv2DTranspose: (-2, -1),
    keras.layers.Conv3DTranspose: (-2, -1),
}
# f(x) elementwise at inference: channel j of the output depends on channel
# j of the input only; a zero channel stays zero iff f(0) == 0.
_ELEMENTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
)
_ACTIVATIONS = (keras.layers.Activation, keras.layers.ReLU,
                keras.layers.LeakyReLU, keras.layers.ELU)
# Activations that mix channels: a layer using one is not elementwise.
_MIXING_ACTIVATIONS = ("softmax", "log_softmax", "glu", "sparsemax")
# Per-channel spatial maps (channels_last only): zero in, zero out.
_CHANNEL_PRESERVING = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
)
# Elementwise merges of same-shaped inputs: zero iff every input is zero;
# their inputs' and output's channels are one channel space.
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)


def shrink(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` without its dead units.

    A Dense unit or convolution filter is removed when it cannot change the
    model's outputs: at every layer that reads it, it is exactly zero or
    read with weights that are all exactly 0. The copy has fewer `units` /
    `filters` in those layers, and their consumers (and the BatchNormalization
    layers in between) have the matching input weights sliced away; it
    computes what `model` computes up to float rounding. A model holding
    `MaskedWrapper` layers is stripped first (`keras_lottery.strip`), so
    pruned weights count as zeros. Channels that reach a layer the analysis
    does not understand stay, with one warning naming the layer.

    Args:
        model: a built Sequential or Functional `keras.Model`, plain or
            made by `keras_lottery.wrap`.

    Returns:
        A new plain model of the same kind (Sequential or Functional), with
        the same layer names and input names.

    Raises:
        ValueError: if `model` is not a Sequential or Functional model, or
            is a Sequential model that is not built.

    Example:
        >>> keras_lottery.prune(model, 0.75, granularity="neuron",
        ...                     granularities={"output": "weight"})
        >>> small = keras_lottery.shrink(model)
        >>> small.get_layer("fc1").units
        75
    """
    graph = _graph_of(model)
    if wrapping.wrapped_layers(model):
        model = wrapping.strip(model)
        graph = _graph_of(model)
    plan = _analyse(graph)
    pairs = []

    def clone(layer):
        config = masking.loadable_config(layer)
        keep = plan.keep_out.get(id(layer))
        if keep is not None:
            key = "units" if isinstance(layer, keras.layers.Dense) else (
                "filters")
            config[key] = int(np.count_nonzero(keep))
        copy = layer.__class__.from_config(config)
        if isinstance(layer, keras.layers.Layer):
            pairs.append((layer, copy))  # not `x + y`: it has no weights
        return copy

    # `_clone` is `keras.models.clone_model` keeping the input names.
    new = wrapping._clone(model, clone)
    for old, copy in pairs:
        copy.set_weights(_sliced_weights(old, plan))
    return new


@dataclasses.dataclass
class _Plan:
    """What `shrink` keeps, by `id(layer)`.

    Attributes:
        keep_out: for producers that lose channels, a bool array over their
            output channels.
        keep_in: for consumers that lose input channels, a bool array over
            the rows of their kernel's input axis (Flatten expanded).
        keep_params: for BatchNormalization layers that lose channels, a
            bool array over their channels.
    """

    keep_out: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    keep_in: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    keep_params: dict[int, np.ndarray] = dataclasses.field(
        default_factory=dict)


# The maths, on arrays.


def keeps_zero(activation: Callable) -> bool:
    """Returns whether `activation(0) == 0` exactly (then a zero channel
    stays zero after it).

    Args:
        activation: an elementwise function of a tensor, e.g.
            `keras.activations.gelu` or a ReLU layer.
    """
    value = keras.ops.convert_to_numpy(activation(np.zeros((1, 2), "float32")))
    return bool(np.all(value == 0))


def producer_zeros(kernel: np.ndarray, bias: np.ndarray | None,
                   input_zeros: np.ndarray, axes: tuple[int, int],
                   activation_keeps_zero: bool) -> np.ndarray:
    """Returns which output channels of a Dense or conv layer are
    identically zero.

    Args:
        kernel: the layer's kernel.
        bias: its bias, or None.
        input_zeros: bool over the kernel's input rows (its `axes[1]`): the
            inputs known to be identically zero; their weights do not
            count.
        axes: (output axis, input axis) of the kernel.
        activation_keeps_zero: whether the activation maps 0 to 0.

    Returns:
        A bool array over the output channels.
    """
    out_axis, in_axis = axes
    live = np.moveaxis(kernel, (out_axis, in_axis), (-1, -2))
    live = live[..., ~input_zeros, :]
    silent = ~np.any(live.reshape(-1, live.shape[-1]) != 0, axis=0)
    if bias is not None:
        silent &= bias == 0
    return silent & activation_keeps_zero


def ignored_rows(kernel: np.ndarray, in_axis: int) -> np.ndarray:
    """Returns which input rows (along `in_axis`) of `kernel` are all 0."""
    rows = np.moveaxis(kernel, in_axis, 0)
    return ~np.any(rows.reshape(rows.shape[0], -1) != 0, axis=1)


def batch_norm_zeros(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                     input_zeros: np.ndarray) -> np.ndarray:
    """Returns which channels of a BatchNormalization's inference output
    (`gamma * (x - mean) / sqrt(var + eps) + beta`) are identically zero.

    Zero when gamma == beta == 0 whatever comes in; or when the input is
    zero, beta == 0 and gamma * mean == 0 (exactly, so no rounding can make
    it nonzero).
    """
    always = (gamma == 0) & (beta == 0)
    return always | (input_zeros & (beta == 0) & ((gamma == 0) | (mean == 0)))


def channel_rows(keep: np.ndarray, repeat: int) -> np.ndarray:
    """Expands a bool array over C channels to the `repeat * C` rows of a
    flattened channels-last map (row p carries channel p % C)."""
    return np.tile(keep, repeat)


def rows_to_channels(rows: np.ndarray, repeat: int) -> np.ndarray:
    """Returns, per channel, whether all of its `repeat` rows are set."""
    return rows.reshape(repeat, -1).all(axis=0)


# The graph walk.


@dataclasses.dataclass
class _Tensor:
    space: int  # its channel space, before union-find
    repeat: int  # the last axis holds `repeat` copies of the channels
    zeros: np.ndarray  # bool per channel: identically zero


class _Spaces:
    """Union-find over channel spaces, with a frozen flag per space."""

    def __init__(self):
        self._parent = []
        self._frozen = []

    def new(self, frozen: bool = False) -> int:
        self._parent.append(len(self._parent))
        self._frozen.append(frozen)
        return len(self._parent) - 1

    def find(self, space: int) -> int:
        while self._parent[space] != space:
            self._parent[space] = self._parent[self._parent[space]]
            space = self._parent[space]
        return space

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self._parent[b] = a
            self._frozen[a] = self._frozen[a] or self._frozen[b]

    def freeze(self, space: int) -> None:
        self._frozen[self.find(space)] = True

    def frozen(self, space: int) -> bool:
        return self._frozen[self.find(space)]


def _graph_of(model) -> keras.Model:
    """The Functional graph of `model` (a Sequential's inner one)."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model. Received: model={model!r}"
        )
    if isinstance(model, keras.Sequential):
        # Private: a built Sequential runs through this Functional model.
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                "`model` must be built (give the Sequential model a "
                f"keras.Input). Received: model={model.name!r}"
            )
        return graph
    if not wrapping._is_functional(model):
        raise ValueError(
            "`shrink` supports Sequential and Functional models. Received: "
            f"model of class {type(model).__name__}"
        )
    return model


def _nodes(graph: keras.Model) -> list:
    """The graph's nodes, inputs first."""
    # Private: Keras 3 exposes no public list of a Functional's nodes.
    by_depth = graph._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True)
            for node in by_depth[depth]]


def _analyse(graph: keras.Model) -> _Plan:
    """Walks the graph, tracking zeros and coupled channels; returns which
    channels go."""
    nodes = _nodes(graph)
    calls = {}
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
    spaces = _Spaces()
    tensors = {}  # id(KerasTensor) -> _Tensor
    producers = []  # (layer, space)
    consumers = []  # (layer, input _Tensor, ignored rows)
    norms = []  # (BatchNormalization layer, space)
    warned = set()

    def freeze(node, layer, why):
        if id(layer) not in warned:
            warned.add(id(layer))
            warnings.warn(
                f"shrink keeps the channels around layer {layer.name!r} "
                f"(class {type(layer).__name__}) dense: {why}.",
                stacklevel=4)
        for t in node.input_tensors:
            spaces.freeze(tensors[id(t)].space)
        for t in node.output_tensors:
            tensors[id(t)] = _Tensor(spaces.new(frozen=True), 1,
                                     np.zeros(t.shape[-1] or 0, bool))

    for node in nodes:
        layer = node.operation
        inputs = [tensors[id(t)] for t in node.input_tensors]
        if isinstance(layer, keras.layers.InputLayer):
            for t in node.output_tensors:
                tensors[id(t)] = _Tensor(spaces.new(frozen=True), 1,
                                         np.zeros(t.shape[-1] or 0, bool))
            continue
        why = _unsupported(layer, node, inputs, calls[id(layer)])
        if why:
            freeze(node, layer, why)
            continue
        (out,) = node.output_tensors
        if type(layer) in _PRODUCERS:
            (x,) = inputs
            axes = _PRODUCERS[type(layer)]
            kernel = keras.ops.convert_to_numpy(layer.kernel.value)
            bias = (keras.ops.convert_to_numpy(layer.bias.value)
                    if layer.use_bias else None)
            consumers.append((layer, x, ignored_rows(kernel, axes[1])))
            # A softmax output reads every unit: its units all stay.
            mixes = _mixes_channels(layer.activation)
            space = spaces.new(frozen=mixes)
            producers.append((layer, space))
            zeros = producer_zeros(
                kernel, bias, channel_rows(x.zeros, x.repeat), axes,
                keeps_zero(layer.activation) and not mixes)
            tensors[id(out)] = _Tensor(space, 1, zeros)
        elif isinstance(layer, keras.layers.BatchNormalization):
            (x,) = inputs
            gamma, beta, mean = _batch_norm_parameters(layer)
            norms.append((layer, x.space))
            tensors[id(out)] = _Tensor(
                x.space, 1, batch_norm_zeros(gamma, beta, mean, x.zeros))
        elif (isinstance(layer, keras.layers.Activation)
              and _mixes_channels(layer.activation)):
            # Softmax and the like read every channel (a zero one too), and
            # every channel of their output depends on all of them.
            (x,) = inputs
            spaces.freeze(x.space)
            tensors[id(out)] = _Tensor(spaces.new(frozen=True), 1,
                                       np.zeros(out.shape[-1], bool))
        elif isinstance(layer, _ELEMENTWISE):
            (x,) = inputs
            # Dropout and noise layers are the identity at inference.
            stays = (keeps_zero(layer) if isinstance(layer, _ACTIVATIONS)
                     else True)
            tensors[id(out)] = _Tensor(x.space, x.repeat, x.zeros & stays)
        elif isinstance(layer, _CHANNEL_PRESERVING):
            (x,) = inputs
            tensors[id(out)] = x
        elif isinstance(layer, keras.layers.Flatten):
            (x,) = inputs
            (t,) = node.input_tensors
            tensors[id(out)] = _Tensor(
                x.space, x.repeat * math.prod(t.shape[1:-1]), x.zeros)
        else:  # a merge
            for x in inputs[1:]:
                spaces.union(inputs[0].space, x.space)
            zeros = np.logical_and.reduce([x.zeros for x in inputs])
            tensors[id(out)] = _Tensor(inputs[0].space, inputs[0].repeat,
                                       zeros)
    for t in graph.outputs:
        spaces.freeze(tensors[id(t)].space)
    return _plan(spaces, producers, consumers, norms)


def _plan(spaces: _Spaces, producers: list, consumers: list,
          norms: list) -> _Plan:
    """Turns the analysis into which channels every layer keeps."""
    # keep[space root]: bool per channel; a channel goes only if every
    # consumer in its space sees it zero or ignores it.
    keep = {}
    for _, x, ignored in consumers:
        root = spaces.find(x.space)
        if spaces.frozen(root):
            continue
        dead = x.zeros | rows_to_channels(ignored, x.repeat)
        keep[root] = keep.get(root, np.zeros_like(dead)) | ~dead
    for kept in keep.values():
        if not kept.any():
            kept[0] = True  # a layer needs a unit; the outputs are constant
    plan = _Plan()
    for layer, space in producers:
        root = spaces.find(space)
        if root in keep and not keep[root].all():
            plan.keep_out[id(layer)] = keep[root]
    for layer, x, _ in consumers:
        root = spaces.find(x.space)
        if root in keep and not keep[root].all():
            plan.keep_in[id(layer)] = channel_rows(keep[root], x.repeat)
    for layer, space in norms:
        root = spaces.find(space)
        if root in keep and not keep[root].all():
            plan.keep_params[id(layer)] = keep[root]
    return plan


def _unsupported(layer, node, inputs: list, calls: int) -> str | None:
    """Why the analysis cannot see through this call of `layer`; None if
    it can."""
    if calls > 1:
        return "it is called more than once"
    if isinstance(layer, keras.Model):
        return "nested models are not analysed"
    if len(node.output_tensors) != 1:
        return "it has several outputs"
    if any(t.shape[-1] is None
           for t in [*node.input_tensors, *node.output_tensors]):
        return "its channel count is not fixed"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return "only channels_last is supported"
    kind = type(layer)
    if kind in _PRODUCERS:
        if getattr(layer, "groups", 1) != 1:
            return "grouped convolutions are not supported"
        if getattr(layer, "lora_enabled", False):
            return "LoRA layers are not supported"
        if getattr(layer, "quantization_mode", None):
            return "quantized layers are not supported"
        return None
    if kind is keras.layers.BatchNormalization:
        if layer.axis not in (-1, len(node.input_tensors[0].shape) - 1):
            return "it normalises another axis than the last"
        if inputs[0].repeat != 1:
            return "it normalises a flattened map per feature"
        return None
    if kind in _ELEMENTWISE:
        return None
    if kind in _CHANNEL_PRESERVING:
        return None if inputs[0].repeat == 1 else (
            "it pools a flattened map")
    if kind is keras.layers.Flatten:
        return None
    if kind in _MERGES:
        shapes = {tuple(t.shape[1:]) for t in node.input_tensors}
        if len(shapes) != 1 or len({x.repeat for x in inputs}) != 1:
            return "its inputs have different shapes (broadcasting)"
        return None
    return "this layer class is not analysed"


def _mixes_channels(activation: Callable) -> bool:
    try:
        name = keras.activations.serialize(activation)
    except ValueError:
        return True  # not a Keras activation: unknown
    if not isinstance(name, str):
        return True  # a custom activation: unknown
    return name in _MIXING_ACTIVATIONS


def _batch_norm_parameters(layer) -> tuple[np.ndarray, ...]:
    """(gamma, beta, moving mean) of a BatchNormalization layer, with the
    ones it lacks (scale=False, center=False) as 1 and 0."""
    size = layer.moving_mean.shape[0]
    gamma = (keras.ops.convert_to_numpy(layer.gamma.value) if layer.scale
             else np.ones(size, np.float32))
    beta = (keras.ops.convert_to_numpy(layer.beta.value) if layer.center
            else np.zeros(size, np.float32))
    return gamma, beta, keras.ops.convert_to_numpy(layer.moving_mean.value)


def _sliced_weights(layer, plan: _Plan) -> list[np.ndarray]:
    """`layer`'s weights with the channels `plan` removes sliced away."""
    weights = layer.get_weights()
    if id(layer) in plan.keep_params:
        keep = plan.keep_params[id(layer)]
        return [w[keep] for w in weights]
    keep_out = plan.keep_out.get(id(layer))
    keep_in = plan.keep_in.get(id(layer))
    if keep_out is None and keep_in is None:
        return weights
    out_axis, in_axis = _PRODUCERS[type(layer)]
    kernel = weights[0]
    if keep_out is not None:
        kernel = np.compress(keep_out, kernel, axis=out_axis)
    if keep_in is not None:
        kernel = np.compress(keep_in, kernel, axis=in_axis)
    sliced = [kernel]
    if layer.use_bias:
        bias = weights[1]
        sliced.append(bias[keep_out] if keep_out is not None else bias)
    return sliced

"""Which channels of a Keras graph go together: the dependency analysis.

One walk over a Functional graph (a Sequential's inner one) finds the
channel spaces of its tensors: the output channels of every Dense and
convolution layer (a *producer*) start a space; layers that carry channels
one by one keep them in their space (activations, pooling, padding,
BatchNormalization, a depthwise convolution, LayerScale, a Reshape that
keeps the last axis); an elementwise merge (`Add`, `Multiply`, ...) makes
its inputs' spaces one (union-find), so a residual channel is one channel
on every branch; a concatenation's output is its inputs' spaces side by
side (segments), so its slices map back to their producers. Channels that
reach a model output, or a layer the walk cannot see through
(LayerNormalization over channels, attention, a nested model, a layer
called twice), are *kept*, with the reason.

`keras_lottery.prune` prunes each space that can lose channels as one
group (its producers' output units, its depthwise channels, its
normalisation parameters); `keras_lottery.shrink` removes the channels
that are dead in a whole space. `groups(model)` shows the groups.

Example:
    >>> for group in dependency.groups(model):
    ...     print(group)
    block_1_project (+3): 8 of 16 channels pruned; BatchNormalization
    block_1_project_BN, ...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import state
from keras_lottery.core import wrapping
from keras_lottery.pruning import zeros_maths

# Layers that produce channels: class -> (output axis, input axis) of the
# kernel. Exact classes: a subclass may compute something else.
PRODUCERS = {
    keras.layers.Dense: (-1, 0),
    keras.layers.Conv1D: (-1, -2),
    keras.layers.Conv2D: (-1, -2),
    keras.layers.Conv3D: (-1, -2),
    keras.layers.Conv1DTranspose: (-2, -1),
    keras.layers.Conv2DTranspose: (-2, -1),
    keras.layers.Conv3DTranspose: (-2, -1),
}
# A depthwise convolution (depth_multiplier 1) filters channel c of its
# input into channel c of its output: its kernel's channel axis is -2.
DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
# f(x) elementwise at inference: channel j of the output depends on channel
# j of the input only; a zero channel stays zero iff f(0) == 0.
ELEMENTWISE = (
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
CHANNEL_PRESERVING = (
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
# Elementwise merges (broadcasting over every axis but the channels):
# their inputs' and output's channels are one channel space. The output is
# zero where every input is, or, for Multiply, where any input is.
MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Multiply,
)
# Why the channels of a model's outputs all stay (its units are classes).
OUTPUT = "a model output"
# Follower kinds: what a layer carrying a space per channel holds of it.
NORM, DEPTHWISE_KERNEL, SCALE, RESHAPE = (
    "normalization", "depthwise", "scale", "reshape")


# The graph walk.


@dataclasses.dataclass
class Tensor:
    """The channels of one tensor of the graph.

    Attributes:
        segments: `(space, size)` side by side along the last axis (one,
            but for a concatenation's output).
        repeat: the last axis holds `repeat` copies of the channels (after
            a Flatten).
        zeros: bool per channel: identically zero (tracked for `shrink`).
    """

    segments: tuple[tuple[int, int], ...]
    repeat: int
    zeros: np.ndarray

    @property
    def channels(self) -> int:
        return sum(size for _, size in self.segments)

    def pieces(self) -> list[tuple[int, slice]]:
        """`(space, slice of this tensor's channels)` per segment."""
        out, start = [], 0
        for space, size in self.segments:
            out.append((space, slice(start, start + size)))
            start += size
        return out


class Spaces:
    """Union-find over channel spaces, with why a space is kept whole."""

    def __init__(self):
        self._parent = []
        self._kept = []

    def new(self, kept: str | None = None) -> int:
        self._parent.append(len(self._parent))
        self._kept.append(kept)
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
            self._kept[a] = self._kept[a] or self._kept[b]

    def keep(self, space: int, why: str) -> bool:
        """Marks the space kept whole; returns whether it was not yet."""
        root = self.find(space)
        if self._kept[root]:
            return False
        self._kept[root] = why
        return True

    def kept(self, space: int) -> str | None:
        """Why the space's channels all stay, or None if they can go."""
        return self._kept[self.find(space)]


@dataclasses.dataclass
class Analysis:
    """What the walk found; layers are the graph's own (maybe wrappers).

    Attributes:
        spaces: the channel spaces.
        producers: `(layer, space)` of every Dense and conv layer.
        consumers: `(layer, input Tensor, ignored rows or None)` of every
            layer whose kernel reads its input's channels (Dense, conv).
        followers: `(layer, Tensor, kind)` of every layer that carries a
            tensor's channels one by one and holds or names them (kind:
            `NORM`, `DEPTHWISE_KERNEL`, `SCALE`, `RESHAPE`).
        blockers: `(layer, why)` of the layers the walk cannot see
            through that kept channels whole that could otherwise go, in
            graph order (a softmax, which reads every channel, is not
            one).
    """

    spaces: Spaces
    producers: list
    consumers: list
    followers: list
    blockers: list


def core(layer):
    """The layer inside a `MaskedWrapper`, else `layer`."""
    return layer.layer if isinstance(layer, masking.MaskedWrapper) else layer


def graph_of(model, verb: str = "groups") -> keras.Model:
    """The Functional graph of `model` (a Sequential's inner one).

    Raises:
        ValueError: naming `verb` for a model that is neither.
    """
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
            f"`{verb}` supports Sequential and Functional models. Received: "
            f"model of class {type(model).__name__}"
        )
    return model


def _nodes(graph: keras.Model) -> list:
    """The graph's nodes, inputs first."""
    # Private: Keras 3 exposes no public list of a Functional's nodes.
    by_depth = graph._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True)
            for node in by_depth[depth]]


def _value(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable.value)


def analyse(graph: keras.Model, zeros: bool = False) -> Analysis:
    """Walks `graph` (see `graph_of`), inputs first.

    Args:
        graph: a Functional model, plain or holding `MaskedWrapper`s.
        zeros: also track which channels are identically zero, from the
            weights' exact zeros (what `shrink` reads).
    """
    nodes = _nodes(graph)
    calls = {}
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
    spaces = Spaces()
    found = Analysis(spaces, [], [], [], [])
    outputs = {id(t) for t in graph.outputs}
    tensors = {}  # id(KerasTensor) -> Tensor

    def fresh(t, why=None, space_zeros=None):
        size = t.shape[-1] or 0
        return Tensor(((spaces.new(why), size),), 1,
                      np.zeros(size, bool) if space_zeros is None
                      else space_zeros)

    def block(node, layer, why, blocker=True):
        changed = False
        for t in node.input_tensors:
            for space, _ in tensors[id(t)].segments:
                changed |= spaces.keep(space, f"{_name(layer)}: {why}")
        if changed and blocker:
            found.blockers.append((layer, why))
        for t in node.output_tensors:
            tensors[id(t)] = fresh(t, f"{_name(layer)}: {why}")

    for node in nodes:
        layer = node.operation
        inner = core(layer)
        inputs = [tensors[id(t)] for t in node.input_tensors]
        if isinstance(inner, keras.layers.InputLayer):
            for t in node.output_tensors:
                tensors[id(t)] = fresh(t, "a model input")
            continue
        why = _unsupported(inner, node, inputs, calls[id(layer)])
        if why:
            block(node, layer, why)
            continue
        (out,) = node.output_tensors
        x = inputs[0] if inputs else None
        if type(inner) in PRODUCERS:
            axes = PRODUCERS[type(inner)]
            mixes = _mixes_channels(inner.activation)
            space = spaces.new(
                OUTPUT if id(out) in outputs else
                f"{_name(layer)}: its activation mixes channels"
                if mixes else None)
            found.producers.append((layer, space))
            out_zeros = np.zeros(out.shape[-1], bool)
            ignored = None
            if zeros:
                kernel = _value(inner.kernel)
                bias = _value(inner.bias) if inner.use_bias else None
                ignored = zeros_maths.ignored_rows(kernel, axes[1])
                out_zeros = zeros_maths.producer_zeros(
                    kernel, bias,
                    zeros_maths.channel_rows(x.zeros, x.repeat), axes,
                    zeros_maths.keeps_zero(inner.activation) and not mixes)
            found.consumers.append((layer, x, ignored))
            tensors[id(out)] = Tensor(((space, out.shape[-1]),), 1,
                                      out_zeros)
        elif isinstance(inner, DEPTHWISE):
            found.followers.append((layer, x, DEPTHWISE_KERNEL))
            out_zeros = x.zeros
            if zeros:
                kernel = _value(inner.kernel)
                per_channel = np.moveaxis(kernel, -2, -1)
                silent = ~np.any(per_channel.reshape(-1, kernel.shape[-2])
                                 != 0, axis=0)
                out_zeros = (x.zeros | silent) & zeros_maths.keeps_zero(
                    inner.activation)
                if inner.use_bias:
                    out_zeros &= _value(inner.bias) == 0
            tensors[id(out)] = Tensor(x.segments, 1, out_zeros)
        elif isinstance(inner, keras.layers.BatchNormalization):
            found.followers.append((layer, x, NORM))
            out_zeros = x.zeros
            if zeros:
                out_zeros = zeros_maths.batch_norm_zeros(
                    *_batch_norm_parameters(inner), x.zeros)
            tensors[id(out)] = Tensor(x.segments, 1, out_zeros)
        elif _is_layer_scale(inner):
            found.followers.append((layer, x, SCALE))
            out_zeros = x.zeros | (_value(inner.gamma) == 0 if zeros
                                   else False)
            tensors[id(out)] = Tensor(x.segments, 1, out_zeros)
        elif isinstance(inner, keras.layers.Reshape):
            found.followers.append((layer, x, RESHAPE))
            tensors[id(out)] = x
        elif (isinstance(inner, keras.layers.Activation)
              and _mixes_channels(inner.activation)):
            # Softmax and the like read every channel (a zero one too), and
            # every channel of their output depends on all of them.
            block(node, layer, "its activation mixes channels",
                  blocker=False)
        elif isinstance(inner, ELEMENTWISE):
            # Dropout and noise layers are the identity at inference.
            stays = (zeros_maths.keeps_zero(inner)
                     if isinstance(inner, _ACTIVATIONS) else True)
            tensors[id(out)] = Tensor(x.segments, x.repeat, x.zeros & stays)
        elif isinstance(inner, CHANNEL_PRESERVING):
            tensors[id(out)] = x
        elif isinstance(inner, keras.layers.Flatten):
            (t,) = node.input_tensors
            tensors[id(out)] = Tensor(
                x.segments, x.repeat * math.prod(t.shape[1:-1]), x.zeros)
        elif isinstance(inner, keras.layers.Concatenate):
            tensors[id(out)] = Tensor(
                tuple(s for x in inputs for s in x.segments), 1,
                np.concatenate([x.zeros for x in inputs]))
        else:  # a merge
            for other in inputs[1:]:
                for (a, _), (b, _) in zip(x.segments, other.segments):
                    spaces.union(a, b)
            reduce = (np.logical_or if isinstance(inner, keras.layers.Multiply)
                      else np.logical_and)
            tensors[id(out)] = Tensor(x.segments, x.repeat, reduce.reduce(
                [x.zeros for x in inputs]))
    for t in graph.outputs:
        for space, _ in tensors[id(t)].segments:
            spaces.keep(space, OUTPUT)
    return found


def _name(layer) -> str:
    return f"layer {layer.name!r} ({type(core(layer)).__name__})"


def _unsupported(layer, node, inputs: list, calls: int) -> str | None:
    """Why the walk cannot see through this call of `layer`; None if it
    can."""
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
    if not isinstance(layer, keras.layers.Layer):
        return "graph operations are not analysed"
    kind = type(layer)
    several = any(len(x.segments) > 1 for x in inputs)
    repeated = any(x.repeat != 1 for x in inputs)
    if kind in PRODUCERS:
        if getattr(layer, "groups", 1) != 1:
            return "grouped convolutions are not supported"
        if getattr(layer, "lora_enabled", False):
            return "LoRA layers are not supported"
        if getattr(layer, "quantization_mode", None):
            return "quantized layers are not supported"
        return None
    if kind in DEPTHWISE:
        if layer.depth_multiplier != 1:
            return "its depth_multiplier is not 1"
        if _mixes_channels(layer.activation):
            return "its activation mixes channels"
        return None
    if kind is keras.layers.BatchNormalization:
        if layer.axis not in (-1, len(node.input_tensors[0].shape) - 1):
            return "it normalises another axis than the last"
        return "it normalises a flattened map per feature" if repeated else (
            None)
    if _is_layer_scale(layer):
        return "it scales a flattened map" if repeated else None
    if kind is keras.layers.Reshape:
        (t,), (out,) = node.input_tensors, node.output_tensors
        if repeated or several or t.shape[-1] != out.shape[-1]:
            return "it reshapes the channel axis"
        return None
    if kind in ELEMENTWISE or kind is keras.layers.Flatten:
        return None
    if kind in CHANNEL_PRESERVING:
        return "it pools a flattened map" if repeated else None
    if kind is keras.layers.Concatenate:
        rank = len(node.output_tensors[0].shape)
        if layer.axis not in (-1, rank - 1):
            return "it concatenates another axis than the channels"
        return "it concatenates flattened maps" if repeated else None
    if kind in MERGES:
        shapes = {tuple(t.shape[1:]) for t in node.input_tensors}
        layouts = {tuple(size for _, size in x.segments) for x in inputs}
        if len(layouts) != 1 or len({x.repeat for x in inputs}) != 1:
            return "its inputs' channels are laid out differently"
        if len(shapes) != 1 and repeated:
            return "its inputs have different shapes (broadcasting)"
        return None
    return "this layer class is not analysed"


def _is_layer_scale(layer) -> bool:
    """keras.applications' ConvNeXt LayerScale: `x * gamma` per channel."""
    kind = type(layer)
    return (kind.__name__ == "LayerScale"
            and kind.__module__.startswith("keras.src.applications")
            and isinstance(getattr(layer, "gamma", None), keras.Variable))


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
    gamma = _value(layer.gamma) if layer.scale else np.ones(size, np.float32)
    beta = _value(layer.beta) if layer.center else np.zeros(size, np.float32)
    return gamma, beta, _value(layer.moving_mean)


# Groups: what `prune` removes together.


@dataclasses.dataclass(frozen=True)
class Group:
    """One channel space: channels that are pruned (and removed) together.

    Attributes:
        name: its first producer's name.
        channels: how many channels it has.
        producers: the layers whose output units they are (Dense, conv).
        followers: the layers that carry them one by one and hold weights
            per channel (BatchNormalization, DepthwiseConv, LayerScale).
        consumers: the layers whose kernels read them (their input rows).
        kept: why no channel of it can go (a model output, a layer that
            cannot follow), or None.
        pruned: how many of its channels are pruned: every producer's
            kernel slice masked (a wrapped model) or exactly 0.
    """

    name: str
    channels: int
    producers: tuple[str, ...]
    followers: tuple[str, ...]
    consumers: tuple[str, ...]
    kept: str | None
    pruned: int

    def __str__(self) -> str:
        state = (f"kept whole ({self.kept})" if self.kept else
                 f"{self.pruned} of {self.channels} channels pruned")
        return (f"{self.name}: {state}; producers "
                f"{', '.join(self.producers)}"
                + (f"; followers {', '.join(self.followers)}"
                   if self.followers else "")
                + (f"; read by {', '.join(self.consumers)}"
                   if self.consumers else ""))


def groups(model: keras.Model) -> list[Group]:
    """The channel groups of `model`, in graph order, with what is pruned.

    Args:
        model: a Sequential or Functional model, plain or made by
            `keras_lottery.wrap`.

    Returns:
        One `Group` per space that Dense or conv layers produce: the
        groups `prune(model, f, granularity="filter")` prunes (those not
        `kept`), and how many channels each has lost.

    Raises:
        ValueError: if `model` is not a Sequential or Functional model.

    Example:
        >>> keras_lottery.prune(model, 0.5, granularity="filter")
        >>> print("\\n".join(map(str, dependency.groups(model))))
    """
    found = analyse(graph_of(model))
    spaces = found.spaces
    by_root = {}
    for layer, space in found.producers:
        by_root.setdefault(spaces.find(space), ([], set(), set()))[0].append(
            layer)

    def add(members, tensor, layer):
        for space, _ in tensor.segments:
            entry = by_root.get(spaces.find(space))
            if entry is not None and layer.name not in entry[members]:
                entry[members].add(layer.name)

    for layer, tensor, kind in found.followers:
        if kind != RESHAPE:
            add(1, tensor, layer)
    for layer, tensor, _ in found.consumers:
        add(2, tensor, layer)
    out = []
    for root, (producers, followers, consumers) in by_root.items():
        alive = np.logical_or.reduce([unit_alive(p) for p in producers])
        out.append(Group(
            producers[0].name, int(alive.size),
            tuple(p.name for p in producers), tuple(sorted(followers)),
            tuple(sorted(consumers)), spaces.kept(root),
            int(alive.size - alive.sum())))
    return out


def unit_alive(layer) -> np.ndarray:
    """Per output unit of a producer: whether its kernel slice keeps an
    entry (its mask's, in a `MaskedWrapper`)."""
    inner = core(layer)
    kernel = _value(inner.kernel)
    if isinstance(layer, masking.MaskedWrapper) and layer.masks:
        kernel = _value(layer.masks[0])
    out_axis, _ = PRODUCERS[type(inner)]
    rows = np.moveaxis(kernel, out_axis, -1)
    return np.any(rows.reshape(-1, rows.shape[-1]) != 0, axis=0)


@dataclasses.dataclass(frozen=True)
class Unit:
    """How a kernel loses its share of a group's channels.

    Attributes:
        group: the group's name (its first producer's).
        axis: the kernel's axis of the group's channels (non-negative).
        granularity: "neuron" (a Dense kernel), else "filter".
    """

    group: str
    axis: int
    granularity: str


def units(model: keras.Model) -> tuple[dict[int, Unit], dict[int, str]]:
    """Which kernels of a wrapped `model` lose channels with a group.

    The kernels of every producer and every depthwise convolution whose
    channels form one space: `prune` scores them together and prunes the
    same channels from all.

    Args:
        model: a Sequential or Functional model holding `MaskedWrapper`s.

    Returns:
        `(members, kept)`: `{id(kernel variable): Unit}` for the kernels
        of groups that can lose channels, and `{id(kernel variable): why}`
        for those of groups kept whole (a group with a producer that has
        no mask is kept too).
    """
    found = analyse(graph_of(model, "prune"))
    spaces = found.spaces
    names = {}
    for layer, space in found.producers:
        names.setdefault(spaces.find(space), layer.name)
        if not (isinstance(layer, masking.MaskedWrapper) and layer.masks):
            spaces.keep(space, f"{_name(layer)}: it has no mask")
    members, kept = {}, {}

    def place(kernel, space, axis, granularity):
        why = spaces.kept(space)
        if why is None and spaces.find(space) not in names:
            why = "no Dense or conv layer produces its channels"
        if why:
            kept[id(kernel)] = why
        else:
            members[id(kernel)] = Unit(names[spaces.find(space)],
                                       axis % len(kernel.shape), granularity)

    for layer, space in found.producers:
        inner = core(layer)
        place(inner.kernel, space, PRODUCERS[type(inner)][0],
              "neuron" if isinstance(inner, keras.layers.Dense)
              else "filter")
    for layer, x, kind in found.followers:
        if kind != DEPTHWISE_KERNEL:
            continue
        kernel = core(layer).kernel
        if len(x.segments) > 1:
            kept[id(kernel)] = (f"{_name(layer)}: it reads a "
                                "concatenation")
        else:
            place(kernel, x.segments[0][0], -2, "filter")
    return members, kept


def dead_units(model: keras.Model, layers) -> dict[str, np.ndarray]:
    """The unit masks that follow pruned groups, `{key: 0/1 array}`.

    For every group that can lose channels and has a producer among
    `layers`, a channel is pruned when every producer's kernel mask is 0
    across it; then its producers' unit masks (their biases) and the unit
    masks of the BatchNormalization layers that carry it (their gamma and
    beta, on the channel's slice) are 0 there, so the channel is exactly 0
    after them.

    Args:
        model: a Sequential or Functional model holding `MaskedWrapper`s.
        layers: names of the layers pruned by neuron or filter.

    Returns:
        `{"<layer>/units": new unit mask}` for the unit masks that lose
        entries (current entries times the channels kept).
    """
    found = analyse(graph_of(model, "prune"))
    spaces = found.spaces
    producers = {}
    for layer, space in found.producers:
        producers.setdefault(spaces.find(space), []).append(layer)
    alive = {}
    for root, members in producers.items():
        if spaces.kept(root) is None and any(
                p.name in layers for p in members) and all(
                isinstance(p, masking.MaskedWrapper) and p.masks
                for p in members):
            alive[root] = np.logical_or.reduce(
                [unit_alive(p) for p in members])
    updates = {}

    def update(layer, tensor):
        mask = getattr(layer, "units_mask", None)
        if mask is None or tuple(mask.shape) != (tensor.channels,):
            return
        keep = np.concatenate([
            alive.get(spaces.find(space), np.ones(size, bool))
            for space, size in tensor.segments])
        if not keep.all():
            updates[f"{layer.name}/{state.UNITS}"] = _value(mask) * keep

    for layer, space in found.producers:
        update(layer, Tensor(((space, int(np.size(unit_alive(layer)))),),
                             1, None))
    for layer, x, kind in found.followers:
        if kind == NORM:
            update(layer, x)
    return updates

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
activation(0) == 0) through the layers `keras_lottery.pruning.dependency`
walks: activations, pooling, padding, BatchNormalization, DepthwiseConv,
LayerScale, Reshape, Flatten, merges and concatenations. Channels that meet
at an elementwise merge (`Add`, `Multiply`, ...) form one channel space and
go together or not at all; a concatenation's slices stay their producers'.
A channel that reaches a model output, or any layer the analysis does not
understand, is kept. A MultiHeadAttention loses its dead heads
(`keras_lottery.pruning.heads`). See docs/SHRINK.md.

Example:
    >>> small = keras_lottery.shrink(model)
    >>> small.get_layer("fc1").units
    75
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import wrapping
from keras_lottery.pruning import block_heads
from keras_lottery.pruning import dependency
from keras_lottery.pruning import heads
from keras_lottery.pruning import zeros_maths

# The zero maths has a module of its own; these names stay here for their
# callers (`keras_lottery.engine.sparse_compute`).
keeps_zero = zeros_maths.keeps_zero
producer_zeros = zeros_maths.producer_zeros
ignored_rows = zeros_maths.ignored_rows
batch_norm_zeros = zeros_maths.batch_norm_zeros
channel_rows = zeros_maths.channel_rows
rows_to_channels = zeros_maths.rows_to_channels


def shrink(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` without its dead units.

    A Dense unit or convolution filter is removed when it cannot change the
    model's outputs: at every layer that reads it, it is exactly zero or
    read with weights that are all exactly 0. The copy has fewer `units` /
    `filters` in those layers; their consumers lose the matching kernel
    rows, and the layers that carry the channel on the way lose it too
    (BatchNormalization, DepthwiseConv, LayerScale, a Reshape's last axis,
    every branch of a residual add, the slice of a concatenation). A
    MultiHeadAttention whose heads are dead (their output kernel rows, or
    their value kernel slice and bias, all 0; `granularity="head"` leaves
    the former) has fewer `num_heads`. It computes what `model` computes
    up to float rounding. A model holding `MaskedWrapper` layers is
    stripped first (`keras_lottery.strip`), so pruned weights count as
    zeros. A composite layer (a KerasHub block) loses the dead heads of
    its attention sublayers (`keras_lottery.pruning.block_heads`).
    Channels that reach a layer the analysis does not understand stay, and
    dead heads that cannot go (a nested model's), with one warning naming
    the layer.

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
        >>> keras_lottery.prune(model, 0.75, granularity="neuron")
        >>> small = keras_lottery.shrink(model)
        >>> small.get_layer("fc1").units
        75
    """
    dependency.graph_of(model, "shrink")
    if wrapping.wrapped_layers(model):
        model = wrapping.strip(model)
    graph = dependency.graph_of(model)
    found = dependency.analyse(graph, zeros=True)
    for layer, why in found.blockers:
        warnings.warn(
            f"shrink keeps the channels around layer {layer.name!r} "
            f"(class {type(layer).__name__}) dense: {why}.", stacklevel=2)
    plan = _plan(found)
    for layer in graph.layers:
        _plan_heads(layer, plan)
    pairs = []

    def clone(layer):
        config = masking.loadable_config(layer)
        for key, value in plan.config.get(id(layer), {}).items():
            config[key] = value
        cls = layer.__class__
        if id(layer) in plan.block_heads:
            cls = block_heads.kept_heads_class(block_heads.base_of(cls))
            config["kept_heads"] = {
                **config.get("kept_heads", {}),
                **{path: int(keep.sum()) for path, (_, keep)
                   in plan.block_heads[id(layer)].items()}}
        copy = cls.from_config(config)
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
        keep_params: for followers that lose channels (BatchNormalization,
            DepthwiseConv, LayerScale), a bool array over their channels.
        config: `{key: value}` to change in a layer's config (`units`,
            `filters`, `projection_dim`, a Reshape's `target_shape`,
            `num_heads`).
        keep_heads: for MultiHeadAttention layers that lose heads, a bool
            array over their heads.
        block_heads: for composite layers whose attention sublayers lose
            heads, `{path: (attention, keep)}` (`heads.composite_heads`).
    """

    keep_out: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    keep_in: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    keep_params: dict[int, np.ndarray] = dataclasses.field(
        default_factory=dict)
    config: dict[int, dict] = dataclasses.field(default_factory=dict)
    keep_heads: dict[int, np.ndarray] = dataclasses.field(
        default_factory=dict)
    block_heads: dict[int, dict] = dataclasses.field(default_factory=dict)


def _plan_heads(layer, plan: _Plan) -> None:
    """Adds the heads a MultiHeadAttention keeps to `plan`, or warns why
    a layer's dead heads stay."""
    # Private: Keras 3 exposes no public list of a layer's calls.
    outputs = max((len(node.output_tensors)
                   for node in layer._inbound_nodes), default=1)
    keep, why = heads.kept_heads(layer, outputs)
    inside, why_inside = heads.composite_heads(layer)
    why = why or why_inside
    if inside:
        plan.block_heads[id(layer)] = inside
    if why:
        warnings.warn(
            f"shrink keeps the attention heads of layer {layer.name!r} "
            f"(class {type(layer).__name__}): {why}.", stacklevel=3)
    if keep is not None:
        plan.keep_heads[id(layer)] = keep
        plan.config[id(layer)] = {"num_heads": int(keep.sum())}


def _plan(found: dependency.Analysis) -> _Plan:
    """Turns the analysis into which channels every layer keeps."""
    spaces = found.spaces
    # keep[space root]: bool per channel; a channel goes only if every
    # consumer in its space sees it zero or ignores it.
    keep = {}
    for _, x, ignored in found.consumers:
        dead = x.zeros | rows_to_channels(ignored, x.repeat)
        for space, where in x.pieces():
            root = spaces.find(space)
            if spaces.kept(root) is None:
                keep[root] = keep.get(root, np.zeros_like(dead[where])) | (
                    ~dead[where])
    for kept in keep.values():
        if not kept.any():
            kept[0] = True  # a layer needs a unit; the outputs are constant

    def kept_channels(tensor):
        """The tensor's channels kept, or None if none goes."""
        parts = [keep.get(spaces.find(space)) for space, _ in tensor.segments]
        if all(p is None or p.all() for p in parts):
            return None
        return np.concatenate([
            np.ones(size, bool) if p is None else p
            for p, (_, size) in zip(parts, tensor.segments)])

    plan = _Plan()
    for layer, space in found.producers:
        kept = keep.get(spaces.find(space))
        if kept is not None and not kept.all():
            plan.keep_out[id(layer)] = kept
            key = "units" if isinstance(layer, keras.layers.Dense) else (
                "filters")
            plan.config.setdefault(id(layer), {})[key] = int(kept.sum())
    for layer, x, _ in found.consumers:
        kept = kept_channels(x)
        if kept is not None:
            plan.keep_in[id(layer)] = channel_rows(kept, x.repeat)
    for layer, x, kind in found.followers:
        kept = kept_channels(x)
        if kept is None:
            continue
        if kind == dependency.RESHAPE:
            shape = list(layer.target_shape)
            shape[-1] = int(kept.sum())
            plan.config[id(layer)] = {"target_shape": tuple(shape)}
            continue
        plan.keep_params[id(layer)] = kept
        if kind == dependency.SCALE:
            plan.config[id(layer)] = {"projection_dim": int(kept.sum())}
    return plan


def _sliced_weights(layer, plan: _Plan) -> list[np.ndarray]:
    """`layer`'s weights with the channels `plan` removes sliced away."""
    if id(layer) in plan.keep_heads:
        return heads.sliced_weights(layer,
                                    [(layer, plan.keep_heads[id(layer)])])
    if id(layer) in plan.block_heads:
        return heads.sliced_weights(
            layer, list(plan.block_heads[id(layer)].values()))
    weights = layer.get_weights()
    if id(layer) in plan.keep_params:
        keep = plan.keep_params[id(layer)]
        if isinstance(layer, dependency.DEPTHWISE):  # kernel (..., C, 1)
            return [np.compress(keep, w, axis=-2 if w.ndim > 1 else 0)
                    for w in weights]
        return [w[keep] for w in weights]
    keep_out = plan.keep_out.get(id(layer))
    keep_in = plan.keep_in.get(id(layer))
    if keep_out is None and keep_in is None:
        return weights
    out_axis, in_axis = dependency.PRODUCERS[type(layer)]
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

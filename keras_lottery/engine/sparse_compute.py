"""Training a ticket on its live weights only: compact and sparse kernels.

A sparse ticket still multiplies by its zeros: at 1.9% of LeNet-300-100's
weights remaining, 98% of a dense step's multiply-adds are by 0, and a
Conv-2 ticket with 20% of its filters pruned for 8 rounds still computes
every filter. For a chain `[Conv2D | MaxPooling2D ...] -> [Flatten] ->
Dense -> ... -> Dense` (LeNet-300-100, the MNIST-1D MLP, Conv-2/4/6),
`ComputeModel` trains the same function on fewer numbers, by one of two
paths:

- `"compact"`: each kernel is cut to its live block (the input rows, or
  input channels, that can be nonzero and are read, the units or filters
  whose output is read by the next layer), a dense matmul or convolution
  on the smaller block; the pruned entries inside the block stay, masked
  as in the engine.
- `"sparse"` (Dense layers only): each kernel is the list of its live
  entries inside that block; a layer gathers its inputs per entry and
  sums them per unit (`tf.math.unsorted_segment_sum`), which XLA compiles.

What is left out cannot change the loss or move under the optimizers here:
a unit nobody reads, or one that outputs exactly 0 (its weights and bias
pruned, `activation(0) == 0`), gets exactly zero gradients in the dense
step too, and a fresh optimizer (one per round) does not move a weight
whose gradient has always been 0. So the losses and the weights equal the
dense step's up to the order of float sums, and pruned weights stay
exactly 0. Models with weight regularizers (their loss reads the left-out
weights) stay dense.

`path="auto"` picks by the fractions of the multiply-adds live and kept
(`choose`), with thresholds measured by `benchmarks/round_time.py` on a
2-core CPU: dense at LeNet-300-100's weight tickets down to 7% remaining,
compact at 3.6%, sparse at 1.9%, compact for tickets whose pruned units
are dead (Conv-2's filter and channel tickets: 1.5x to 12x faster); dense
for Conv-2's weight tickets, whose filters all stay read.

The engine trains each round on the path `train.sparse_compute` picks
(`keras_lottery.engine.training.Trainer`, `Training` here): chosen at the
round's first steps from its masks, a compute model and a fresh optimizer on
its variables; the trained weights go back into the model after every call,
and the optimizer's slots before every checkpoint, so evaluation,
checkpoints, early-bird checks and pruning read the dense model as ever.

Example:
    >>> compute = sparse_compute.ComputeModel(model, "compact")
    >>> logits = compute(images, training=True)  # grads: compute's vars
    >>> compute.store()  # the model's variables get the trained values
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.core import masking
from keras_lottery.pruning import shrinking

PATHS = ("dense", "compact", "sparse")
MODES = ("auto", "off", "compact", "sparse")

# `choose`'s rule, from two runs of `benchmarks/round_time.py` on
# LeNet-300-100 tickets at batch 60, 2-core CPU (docs/BENCHMARKS.md). The
# sparse path won at 1.8% of the multiply-adds live (2.4x, 2.7x over
# dense) and lost at 6.8% (0.9x, 0.8x): ...
SPARSE_BELOW = 0.04
# ... and a live multiply-add costs it 16 to 25 times what one of a
# compact block costs, so a compact block of fewer than 20x the live ones
# is faster (it was at 3.5% live and 65% kept: 1.8x, 1.9x over dense,
# sparse 1.7x, 1.4x).
SPARSE_COST = 20.0
# The compact path won 2.3-4.1x at 9.6-19% of the multiply-adds kept
# (neuron tickets), 1.5-1.9x at 50-65%, and 1.3x and 0.8x at 79-81%.
COMPACT_BELOW = 0.7


@dataclasses.dataclass(frozen=True)
class Layout:
    """What of a chain of Dense and conv layers can change the output.

    Channels are a conv layer's filters and a Dense layer's units; a conv
    kernel is `[height, width, in channels, filters]`.

    Attributes:
        inputs: the input features read, ascending (the input channels
            where the chain starts with a convolution).
        units: per layer, the output units (filters) kept, ascending
            (every unit of the last layer).
        kernel_masks: per layer, the 0/1 mask of its whole kernel.
        repeats: per layer, the kernel rows per input channel: the
            positions of a flattened conv map for the first Dense layer
            after one, else 1.
        positions: per layer, the output positions per example (a conv
            layer's output height x width; 1 for Dense layers).
    """

    inputs: np.ndarray
    units: tuple[np.ndarray, ...]
    kernel_masks: tuple[np.ndarray, ...]
    repeats: tuple[int, ...]
    positions: tuple[int, ...]

    def rows(self, layer: int) -> np.ndarray:
        """The kernel rows (input channels) of `layer` kept: the inputs it
        reads."""
        if layer == 0:
            return self.inputs
        channels = self.units[layer - 1]
        if self.repeats[layer] == 1:
            return channels
        keep = np.zeros(self.kernel_masks[layer - 1].shape[-1], bool)
        keep[channels] = True
        return np.flatnonzero(shrinking.channel_rows(keep,
                                                     self.repeats[layer]))

    def block(self, layer: int) -> np.ndarray:
        """The mask of `layer`'s kept rows and units."""
        return self.kernel_masks[layer][..., self.rows(layer), :][
            ..., self.units[layer]]

    @property
    def convolutional(self) -> bool:
        """Whether the chain has conv layers."""
        return any(m.ndim > 2 for m in self.kernel_masks)

    def _sum(self, size) -> int:
        return sum(size(i) * self.positions[i]
                   for i in range(len(self.units)))

    @property
    def dense_size(self) -> int:
        """Multiply-adds per example of the dense layers."""
        return self._sum(lambda i: self.kernel_masks[i].size)

    @property
    def compact_size(self) -> int:
        """Multiply-adds per example of the kept blocks."""
        return self._sum(lambda i: self.block(i).size)

    @property
    def live_size(self) -> int:
        """Multiply-adds per example by weights that are not pruned."""
        return self._sum(lambda i: int(self.block(i).sum()))


def layout(kernel_masks: Sequence[np.ndarray],
           bias_masks: Sequence[np.ndarray | None],
           keeps_zero: Sequence[bool],
           repeats: Sequence[int] | None = None,
           positions: Sequence[int] | None = None) -> Layout:
    """Finds the inputs and units of a chain that can change its output.

    A unit outputs exactly 0 when its kernel is pruned on every input
    channel that can be nonzero, its bias is pruned (or it has none) and
    its activation maps 0 to 0; max pooling and flattening keep a channel
    of zeros zero. A unit is kept when it can be nonzero and the next layer
    reads it through a weight that is not pruned (every unit of the last
    layer is kept).

    Args:
        kernel_masks: per layer, its kernel's 0/1 mask, `[inputs, units]`
            (Dense) or `[height, width, inputs, units]` (conv).
        bias_masks: per layer, its bias's 0/1 mask (a unit mask), or None
            where the layer has no bias.
        keeps_zero: per layer, whether its activation maps 0 to 0.
        repeats: per layer, kernel rows per input channel (`Layout`);
            default all 1.
        positions: per layer, output positions per example (`Layout`);
            default all 1.

    Returns:
        The `Layout`.
    """
    count = len(kernel_masks)
    repeats = tuple(repeats or (1,) * count)
    masks = [np.asarray(m) != 0 for m in kernel_masks]
    # Which input channel reaches which unit, through any kernel position.
    links = []
    for mask, repeat in zip(masks, repeats):
        link = mask.reshape(-1, *mask.shape[-2:]).any(axis=0)
        links.append(link.reshape(repeat, -1, link.shape[-1]).any(axis=0))
    zeros = np.zeros(links[0].shape[0], bool)  # the inputs can be nonzero
    silent = []
    for link, bias, keeps in zip(links, bias_masks, keeps_zero):
        zeros = shrinking.producer_zeros(
            link, None if bias is None else np.asarray(bias) != 0, zeros,
            (1, 0), keeps)
        silent.append(zeros)
    units = [np.arange(links[-1].shape[1])]
    for layer in range(count - 2, -1, -1):
        read = links[layer + 1][:, units[0]].any(axis=1)
        units.insert(0, np.flatnonzero(read & ~silent[layer]))
    inputs = np.flatnonzero(links[0][:, units[0]].any(axis=1))
    return Layout(inputs, tuple(units),
                  tuple(m.astype(np.float32) for m in masks), repeats,
                  tuple(positions or (1,) * count))


def choose(plan: Layout) -> str:
    """The path `"auto"` takes for `plan`: one of `PATHS`.

    Sparse below `SPARSE_BELOW` of the dense multiply-adds live where it
    beats the compact blocks (`SPARSE_COST`), for Dense chains only; else
    compact below `COMPACT_BELOW` of them kept; else dense.
    """
    live = plan.live_size / plan.dense_size
    kept = plan.compact_size / plan.dense_size
    if (not plan.convolutional and live < SPARSE_BELOW
            and live * SPARSE_COST < kept):
        return "sparse"
    if kept < COMPACT_BELOW:
        return "compact"
    return "dense"


def chain(model: keras.Model) -> list[keras.layers.Layer] | None:
    """The layers of `model`, if it is a chain `[Input] -> [Conv2D |
    MaxPooling2D ...] -> [Flatten] -> Dense -> ... -> Dense` (Flatten
    where convolutions come first; conv layers channels-last, ungrouped)
    without weight regularizers, its Dense and conv layers wrapped or not;
    None otherwise."""
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    try:
        if len(model.inputs) != 1 or len(model.outputs) != 1 or any(
                later.input is not earlier.output
                for earlier, later in zip(layers, layers[1:])):
            return None
    except (AttributeError, ValueError):
        # A subclassed model has no graph of layers to follow.
        return None
    kinds = [_kind(layer) for layer in layers]
    if None in kinds:
        return None
    # c: conv, p: pool, f: Flatten, d: Dense.
    if not re.fullmatch(r"([cp]*c[cp]*f|f)?d+", "".join(kinds)):
        return None
    return layers


def _kind(layer: keras.layers.Layer) -> str | None:
    """One letter for a layer a chain may hold (`chain`), else None."""
    core = _core(layer)
    if layer is not core and not isinstance(layer, masking.MaskedWrapper):
        return None
    if type(core) is keras.layers.Flatten and layer is core:
        return "f"
    if type(core) is keras.layers.MaxPooling2D and layer is core:
        return "p" if core.data_format == "channels_last" else None
    if type(core) not in (keras.layers.Dense, keras.layers.Conv2D) or (
            core.kernel_regularizer or core.bias_regularizer
            or core.activity_regularizer):
        return None
    if type(core) is keras.layers.Dense:
        return "d"
    return "c" if (core.data_format == "channels_last"
                   and core.groups == 1) else None


def _weighted(layers: list[keras.layers.Layer]) -> list[keras.layers.Layer]:
    return [layer for layer in layers
            if type(_core(layer)) in (keras.layers.Dense, keras.layers.Conv2D)]


def model_layout(model: keras.Model) -> Layout | None:
    """`layout` of `model`'s masks, or None where `model` is not a chain
    (`chain`)."""
    layers = chain(model)
    if layers is None:
        return None
    kernels, biases, repeats, positions = [], [], [], []
    for layer in _weighted(layers):
        kernel, bias = _masks(layer)
        kernels.append(kernel.numpy())
        biases.append(None if bias is None else bias.numpy())
        convolutional = kernels[-1].ndim > 2
        positions.append(int(np.prod(layer.output.shape[1:-1]))
                         if convolutional else 1)
        # The first Dense layer after a flattened conv map reads each
        # channel at every position of the map.
        repeats.append(kernels[-1].shape[0] // kernels[-2].shape[-1]
                       if not convolutional and len(kernels) > 1
                       and kernels[-2].ndim > 2 else 1)
    return layout(kernels, biases,
                  [shrinking.keeps_zero(_core(layer).activation)
                   for layer in _weighted(layers)], repeats, positions)


class ComputeModel(tf.Module):
    """The forward pass of a chain's ticket on its live weights only.

    Holds its own trainable variables (the kept blocks, or their live
    entries, and the kept biases), read from `model` when made. Train
    them (a fresh optimizer built on `trainable_variables`), then
    `store()` them into `model` before evaluating, saving or pruning it;
    `load()` reads `model` again (after restoring a checkpoint into it).
    Pruned weights of `model` must be exactly 0 when it is made (the
    engine zeroes them).

    Args:
        model: a model `chain` accepts, usually made by
            `keras_lottery.wrap`.
        path: `"compact"` or `"sparse"` (see the module docstring);
            `"sparse"` for chains of Dense layers only.

    Raises:
        ValueError: for another path, a model that is not a chain, or the
            sparse path for one with convolutions.
    """

    def __init__(self, model: keras.Model, path: str):
        super().__init__(name="sparse_compute")
        if path not in ("compact", "sparse"):
            raise ValueError(
                "`path` must be 'compact' or 'sparse'. "
                f"Received: path={path!r}")
        layers = chain(model)
        if layers is None:
            raise ValueError(
                "ComputeModel needs a chain of layers ([Input] -> [Conv2D |"
                " MaxPooling2D ...] -> [Flatten] -> Dense -> ... -> Dense) "
                f"without regularizers. Received: model={model.name!r}")
        self.path = path
        self.plan = model_layout(model)
        if path == "sparse" and self.plan.convolutional:
            raise ValueError(
                "The sparse path computes chains of Dense layers only: "
                "'compact' trains conv layers on their kept filters. "
                f"Received: path='sparse', model={model.name!r}")
        self._layers = layers
        self._inputs = tf.constant(self.plan.inputs, tf.int32)
        self.kernels, self.biases = [], []
        self._kernel_slots, self._bias_slots = [], []
        self._kernel_masks, self._bias_masks = [], []
        self._entries = []  # sparse: (rows, units) in the kept blocks
        for i, layer in enumerate(_weighted(layers)):
            rows, units = self.plan.rows(i), self.plan.units[i]
            block = self.plan.block(i)
            if path == "compact":
                # Every kernel position (a conv's window) of the block.
                axes = [np.arange(n) for n in block.shape[:-2]]
                index = np.stack(np.meshgrid(*axes, rows, units,
                                             indexing="ij"), -1)
                # A block with nothing pruned needs no gradient mask.
                self._kernel_masks.append(
                    None if block.all() else tf.constant(block))
            else:
                entries = np.nonzero(block)
                index = np.stack([rows[entries[0]], units[entries[1]]], -1)
                self._entries.append(
                    tuple(tf.constant(e, tf.int32) for e in entries))
            core = _core(layer)
            self._kernel_slots.append((core.kernel, tf.constant(
                index.reshape(-1, index.shape[-1]).astype(np.int32))))
            self.kernels.append(tf.Variable(
                tf.zeros(index.shape[:-1]), name=f"{core.name}_kernel"))
            if core.use_bias:
                self._bias_slots.append((core.bias, tf.constant(
                    units[:, None].astype(np.int32))))
                self.biases.append(tf.Variable(
                    tf.zeros(len(units)), name=f"{core.name}_bias"))
                bias_mask = _masks(layer)[1]
                self._bias_masks.append(None if bias_mask is None else (
                    tf.gather(bias_mask, units)))
            else:
                self._bias_slots.append(None)
                self.biases.append(None)
                self._bias_masks.append(None)
        self.load()

    def pairs(self):
        """Yields `(variable, (model variable, index))`: each variable of
        the compute model, in the model's order (each layer's kernel,
        then its bias), with the one it is gathered from and where."""
        for i, kernel in enumerate(self.kernels):
            yield kernel, self._kernel_slots[i]
            if self._bias_slots[i] is not None:
                yield self.biases[i], self._bias_slots[i]

    def load(self) -> None:
        """Reads the kept weights from the model's variables."""
        for mine, (full, index) in self.pairs():
            mine.assign(tf.reshape(tf.gather_nd(full.value, index),
                                   mine.shape))

    def store(self) -> None:
        """Writes the kept weights into the model's variables."""
        for mine, (full, index) in self.pairs():
            full.assign(tf.tensor_scatter_nd_update(
                full.value, index, tf.reshape(mine, [-1])))

    def __call__(self, images: tf.Tensor, training: bool = False
                 ) -> tf.Tensor:
        """The logits of `images`; the gradients of the weights that are
        pruned inside a compact block are multiplied by their masks, as in
        the engine (`keras_lottery.core.masking.masked_gradients`)."""
        del training  # the chain's layers compute the same either way
        x = images
        if not self.plan.convolutional:
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        if len(self.plan.inputs) < self.plan.kernel_masks[0].shape[-2]:
            x = tf.gather(x, self._inputs, axis=-1)
        if self.path == "sparse":
            x = tf.transpose(x)  # [features, batch]: a gather per entry
        i = 0
        for layer in self._layers:
            core = _core(layer)
            if isinstance(core, keras.layers.Flatten):
                if self.plan.convolutional:  # else flat from the start
                    # Channels last: the rows of the next kernel's block.
                    x = tf.reshape(x, [tf.shape(x)[0], -1])
                continue
            if isinstance(core, keras.layers.MaxPooling2D):
                x = core.call(x)  # per channel, whatever their number
                continue
            if self.path == "sparse":
                x = self._sparse(i, x)
            elif isinstance(core, keras.layers.Conv2D):
                x = core.convolution_op(x, self._kernel(i))
            else:
                x = tf.matmul(x, self._kernel(i))
            bias = self.biases[i]
            if bias is not None:
                mask = self._bias_masks[i]
                bias = tf.convert_to_tensor(bias)
                if mask is not None:
                    bias = masking._mask_gradient(bias, mask)
                x = x + (bias[:, None] if self.path == "sparse" else bias)
            x = core.activation(x)
            i += 1
        return tf.transpose(x) if self.path == "sparse" else x

    def _kernel(self, i: int) -> tf.Tensor:
        kernel = tf.convert_to_tensor(self.kernels[i])
        mask = self._kernel_masks[i]
        return kernel if mask is None else masking._mask_gradient(
            kernel, mask)

    def _sparse(self, i: int, x: tf.Tensor) -> tf.Tensor:
        rows, units = self._entries[i]
        products = tf.gather(x, rows) * self.kernels[i][:, None]
        return tf.math.unsorted_segment_sum(
            products, units, len(self.plan.units[i]))


def compute_model(model: keras.Model, mode: str = "auto"
                  ) -> ComputeModel | None:
    """The `ComputeModel` to train `model` with, or None for the dense path.

    Args:
        model: a (wrapped) Keras model.
        mode: `"auto"` (`choose` by the masks; the dense path for models
            that are not chains), `"off"` (always dense), or a path,
            `"compact"` or `"sparse"` (raises for other models).

    Raises:
        ValueError: for an unknown mode, or a path for a model that is not
            a chain (the sparse path: a chain of Dense layers).
    """
    if mode not in MODES:
        raise ValueError(
            f"`mode` must be one of {', '.join(map(repr, MODES))}. "
            f"Received: mode={mode!r}")
    if mode == "off":
        return None
    if mode == "auto":
        plan = model_layout(model)
        mode = "dense" if plan is None else choose(plan)
        if mode == "dense":
            return None
    return ComputeModel(model, mode)


class Training:
    """A round's training on a `ComputeModel`, with its own optimizer.

    The dense model and optimizer stay the round's state of record: the
    compute model and a fresh optimizer on its variables start from them
    (`ComputeModel.load`, and each optimizer slot gathered like its
    weight), and `store` writes the trained weights back, `sync` the
    optimizer's slots and step counter too. Checkpoints of the dense pair
    are then the same whichever path trained, and a round killed on one
    path resumes on any other.

    Args:
        compute: the compute model of `model`'s masks.
        model: the model; its trainable variables must be exactly the
            kernels and biases of its chain, in layer order.
        dense_optimizer: the round's built optimizer of `model`.
        optimizer: a fresh optimizer like `dense_optimizer`, not built.

    Raises:
        ValueError: when the variables or optimizer slots do not pair up
            (a frozen layer, an optimizer with slots of another shape).
    """

    def __init__(self, compute: ComputeModel, model: keras.Model,
                 dense_optimizer: keras.optimizers.Optimizer,
                 optimizer: keras.optimizers.Optimizer,
                 per_example_loss=None):
        self.compute = compute
        self._per_example_loss = per_example_loss or functools.partial(
            keras.losses.sparse_categorical_crossentropy, from_logits=True)
        self.optimizer = optimizer
        pairs = list(compute.pairs())
        if [id(full) for _, (full, _) in pairs] != [
                id(v) for v in model.trainable_variables]:
            raise ValueError(
                "The compute model's variables must be all of the model's "
                "trainable variables (no frozen layer). Received: "
                f"model={model.name!r}")
        self.variables = [mine for mine, _ in pairs]
        optimizer.build(self.variables)
        self._slots = list(_slot_pairs(dense_optimizer, optimizer, pairs))
        self._iterations = (dense_optimizer.iterations, optimizer.iterations)
        self.load()

    def load(self) -> None:
        """Reads the weights, slots and step from the dense pair."""
        self.compute.load()
        for full, mine, index in self._slots:
            mine.assign(tf.reshape(tf.gather_nd(full.value, index),
                                   mine.shape))
        self._iterations[1].assign(self._iterations[0].value)

    def store(self) -> None:
        """Writes the trained weights and the step into the dense pair."""
        self.compute.store()
        self._iterations[0].assign(self._iterations[1].value)

    def sync(self) -> None:
        """`store`, and the optimizer's slots too (before a checkpoint)."""
        self.store()
        for full, mine, index in self._slots:
            full.assign(tf.tensor_scatter_nd_update(
                full.value, index, tf.reshape(mine.value, [-1])))

    def step(self, images: tf.Tensor, labels: tf.Tensor,
             batch_size: int) -> tf.Tensor:
        """One optimizer step on a batch; returns its loss."""
        with tf.GradientTape() as tape:
            logits = self.compute(images, training=True)
            per_example = self._per_example_loss(labels, logits)
            loss = tf.nn.compute_average_loss(per_example,
                                              global_batch_size=batch_size)
        gradients = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        return loss


def training_for(model: keras.Model, mode: str,
                 dense_optimizer: keras.optimizers.Optimizer,
                 make_optimizer, per_example_loss=None) -> Training | None:
    """A round's `Training` on the path `mode` picks, or None for the
    dense step.

    Dense when `compute_model` returns None, and under `"auto"` also when
    the optimizer decays weights (decay moves the weights of units that
    cannot change the output, which the compute model leaves out).

    Args:
        model: the round's model, its masks set and pruned weights 0.
        mode: as for `compute_model`.
        dense_optimizer: the round's optimizer of `model`, built.
        make_optimizer: makes a fresh optimizer like `dense_optimizer`.
        per_example_loss: `(labels, logits) -> (batch,)` losses; None:
            sparse categorical cross-entropy on logits.

    Raises:
        ValueError: as `compute_model`; for a path with an optimizer that
            decays weights.
    """
    decays = bool(getattr(dense_optimizer, "weight_decay", None))
    if decays and mode == "auto":
        return None
    compute = compute_model(model, mode)
    if compute is None:
        return None
    if decays:
        raise ValueError(
            "`train.sparse_compute` must be 'auto' or 'off' with weight "
            "decay: it moves weights the compute paths leave out. "
            f"Received: train.sparse_compute={mode!r}")
    return Training(compute, model, dense_optimizer, make_optimizer(),
                    per_example_loss)


def _slot_pairs(dense: keras.optimizers.Optimizer,
                mine: keras.optimizers.Optimizer, pairs):
    """`(dense slot, compute slot, gather index)` of every optimizer slot.

    Keras optimizers make their variables in the same order for the same
    list of variables: the step counter, the rate, then each variable's
    slots, variable by variable; a slot has its variable's shape.
    """
    dense_slots = [v for v in dense.variables
                   if v is not dense.iterations and "learning_rate"
                   not in v.path]
    my_slots = [v for v in mine.variables
                if v is not mine.iterations and "learning_rate"
                not in v.path]
    per = len(my_slots) // max(len(pairs), 1)
    if len(dense_slots) != len(my_slots) or per * len(pairs) != len(
            my_slots):
        raise ValueError(
            "The optimizer's slots must pair up with the variables. "
            f"Received: optimizer={type(mine).__name__}")
    for i, full, slot in zip(range(len(my_slots)), dense_slots, my_slots):
        variable, (reference, index) = pairs[i // per]
        if (tuple(full.shape) != tuple(reference.shape)
                or tuple(slot.shape) != tuple(variable.shape)):
            raise ValueError(
                "The optimizer's slots must have their variables' shapes. "
                f"Received: optimizer={type(mine).__name__}, slot "
                f"{full.path} of shape {tuple(full.shape)}")
        yield full, slot, index


def _core(layer: keras.layers.Layer) -> keras.layers.Layer:
    return getattr(layer, "layer", layer)


def _masks(layer) -> tuple[tf.Tensor, tf.Tensor | None]:
    """(kernel mask, bias mask or None) of a Dense or conv layer, wrapped
    or not;
    the bias mask is None when the layer has no bias."""
    core = _core(layer)
    masks = {}
    if isinstance(layer, masking.MaskedWrapper):
        masks = {id(v): m for v, m in layer.masked_pairs()}
    kernel = masks.get(id(core.kernel))
    kernel = tf.ones_like(core.kernel.value) if kernel is None else (
        tf.convert_to_tensor(kernel.value))
    if not core.use_bias:
        return kernel, None
    bias = masks.get(id(core.bias))
    bias = tf.ones_like(core.bias.value) if bias is None else (
        tf.convert_to_tensor(bias.value))
    return kernel, bias

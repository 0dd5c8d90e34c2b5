"""What data-driven criteria read: gradients and activations on batches.

`statistics` runs the model over a few training batches (inference mode:
dropout off, normalization on its moving statistics) and returns, per
prunable weight, the gradient of the loss over the batches and, per
masked layer, per-channel statistics of its input and output. The
criteria in `keras_lottery.criteria` turn them into scores.

`weight_statistics` computes what the criteria of pruning at
initialisation read per weight: GraSP's Hessian-gradient product (double
backpropagation) and SynFlow's gradient of the absolute-value network.

Runs eagerly in cross-replica context (outside `strategy.run`), so under
any `tf.distribute` strategy it reads the same variables and gives the
same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.base import faults
from keras_lottery.core import masking
from keras_lottery.core import wrapping

Loss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# GraSP divides the logits by this before the loss (Wang et al.'s code and
# Synaptic-Flow's both use 200): the Hessian of a softened loss.
GRASP_TEMPERATURE = 200.0


@dataclasses.dataclass
class _Channels:
    """Running per-channel sums over examples and positions."""

    squares: np.ndarray | None = None
    absolutes: np.ndarray | None = None
    zeros: np.ndarray | None = None
    count: int = 0
    shape: tuple[int, ...] | None = None  # of the entries, if not 1-D

    def add(self, values: np.ndarray, axis: int) -> None:
        values = np.moveaxis(np.asarray(values, np.float64), axis, -1)
        values = values.reshape(-1, values.shape[-1])
        sums = (np.square(values).sum(0), np.abs(values).sum(0),
                (values == 0).sum(0).astype(np.float64))
        if self.squares is None:
            self.squares, self.absolutes, self.zeros = sums
        else:
            self.squares += sums[0]
            self.absolutes += sums[1]
            self.zeros += sums[2]
        self.count += values.shape[0]

    def add_trailing(self, values: np.ndarray, axes: int) -> None:
        """Adds `values` per entry of their last `axes` axes together."""
        self.shape = values.shape[-axes:]
        self.add(np.reshape(values, (-1, int(np.prod(self.shape)))), -1)

    def summary(self, prefix: str) -> dict[str, np.ndarray]:
        count = max(self.count, 1)
        shape = self.shape or self.squares.shape
        return {
            f"{prefix}_norm": np.sqrt(self.squares).reshape(shape),
            f"{prefix}_mean_abs": (self.absolutes / count).reshape(shape),
            f"{prefix}_zero_fraction": (self.zeros / count).reshape(shape),
        }


def statistics(
    model: keras.Model,
    needs: frozenset[str],
    data: Iterable,
    loss: Loss | None = None,
) -> tuple[dict[int, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Gradients and activation statistics over `data`.

    Args:
        model: a wrapped model that outputs logits (or what `loss` takes).
        needs: some of "gradients" and "activations".
        data: `(inputs, labels)` batches: a list, a generator, or a batched
            `tf.data.Dataset`; or `(x, y)` arrays, as `model.fit` takes
            them. Every batch is used.
        loss: `loss(labels, outputs) -> scalar`; by default the mean sparse
            categorical cross-entropy of logits.

    Returns:
        `(gradients, layers)`: `{id(variable): the gradient of the loss
        over all the batches' examples together}` for every masked weight
        (empty without "gradients"), and `{layer name: {"input_norm",
        ...}}` (see `keras_lottery.criteria.WeightData`) for every masked
        layer (empty without "activations").

    Raises:
        ValueError: if `data` yields no batch, or something other than
            `(inputs, labels)` pairs.
    """
    variables = _masked_variables(model)
    names = {w.name for w in wrapping.wrapped_layers(model) if w.masks}
    loss = loss or _logits_loss()
    gradients = ({id(v): np.zeros(v.shape) for v in variables}
                 if "gradients" in needs else {})
    inputs, outputs = {}, {}

    def record(wrapper, x, y):
        if wrapper.name not in names or not (
                tf.is_tensor(x) and tf.is_tensor(y)):
            return
        axis = 1 if getattr(wrapper.layer, "data_format", None) == (
            "channels_first") else -1
        inputs.setdefault(wrapper.name, _Channels()).add(x, axis)
        outputs.setdefault(wrapper.name, _Channels()).add(y, axis)

    examples = _concatenated(data)
    recorder = record if "activations" in needs else None
    lent = _lent_kernels(model) if recorder else []
    # One pass over all the batches together: a tenth of the eager calls
    # of a pass per batch, for the same statistics (the gradient of the
    # mean loss over every example is that of the batches' mean losses,
    # averaged).
    x, labels = examples
    # Differentiates with respect to each weight's value, read once: a
    # mirrored variable has no gradient handle outside `strategy.run`,
    # and its value is the same on every replica.
    values = [tf.convert_to_tensor(v.value) for v in variables]
    with masking.recording(recorder), _recording_inputs(lent, inputs), (
            tf.GradientTape()) as tape, (
            keras.StatelessScope(list(zip(variables, values)))):
        tape.watch(values)
        value = loss(labels, model(x, training=False))
    faults.point("scored")
    if gradients:
        for variable, gradient in zip(variables,
                                      tape.gradient(value, values)):
            if gradient is not None:  # a weight the loss skips
                gradients[id(variable)] += _numpy(gradient)
    layers = {
        name: {**inputs[name].summary("input"),
               **outputs[name].summary("output")}
        for name in outputs
    }
    layers.update({key: inputs[key].summary("input")
                   for key, _, _ in lent if key in inputs})
    return gradients, layers


def sublayer_key(wrapper, variable) -> str:
    """Where `statistics` puts the input statistics of a kernel that a
    sublayer of `wrapper`'s layer holds (an attention projection, a Dense
    layer inside a composite block): its inputs are not the layer's."""
    return f"{wrapper.name}:{variable.path}"


def _lent_kernels(model: keras.Model) -> list[tuple]:
    """`(key, sublayer, kernel)` of every masked kernel a sublayer holds."""
    found = []
    for wrapper in wrapping.wrapped_layers(model):
        for variable in wrapper.masked_variables:
            for sub in wrapper.layer._flatten_layers(include_self=False):
                if getattr(sub, "kernel", None) is variable:
                    found.append((sublayer_key(wrapper, variable), sub,
                                  variable))
                    break
    return found


def _input_axes(sublayer) -> int:
    """How many trailing axes of the sublayer's input its kernel's leading
    axes contract: 2 for an attention output projection's (heads, dim)
    (EinsumDense "abcd,cde->abe"), else 1 (the channels)."""
    equation = getattr(sublayer, "equation", None)
    if not isinstance(equation, str) or "->" not in equation:
        return 1
    operands, output = equation.split("->")
    source, kernel = operands.split(",")
    contracted = [a for a in kernel if a in source and a not in output]
    k = len(contracted)
    if k and kernel[:k] == "".join(contracted) == source[-k:]:
        return k
    return 1


@contextlib.contextmanager
def _recording_inputs(lent: list[tuple], inputs: dict) -> Iterator[None]:
    """Within this context, each sublayer of `lent` adds its calls' inputs
    to `inputs[key]`, per entry of its kernel's input axes."""
    patched = []
    try:
        for key, sub, _ in lent:
            axes = _input_axes(sub)

            def call(*args, _call=sub.call, _key=key, _axes=axes, **kwargs):
                x = args[0] if args else kwargs.get("inputs")
                if tf.is_tensor(x):
                    inputs.setdefault(_key, _Channels()).add_trailing(
                        _numpy(x), _axes)
                return _call(*args, **kwargs)

            object.__setattr__(sub, "call", call)
            patched.append(sub)
        yield
    finally:
        for sub in patched:
            sub.__dict__.pop("call", None)


def weight_statistics(
    model: keras.Model,
    needs: frozenset[str],
    data: Iterable | None = None,
    loss: Loss | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """GraSP's and SynFlow's per-weight statistics.

    Args:
        model: a wrapped model that outputs logits (or what `loss` takes).
        needs: some of "hessian_gradient" (reads `data`) and "synflow"
            (reads no data).
        data: `(inputs, labels)` batches, as for `statistics`.
        loss: as for `statistics`.

    Returns:
        `{id(variable): {"hessian_gradient": Hg, "synflow_gradient":
        dR/dw}}` for every masked weight, with the keys `needs` asks for.

    Raises:
        ValueError: for bad `data` (see `statistics`), or, for "synflow",
            a model whose input shape is unknown.
    """
    variables = _masked_variables(model)
    found = {id(v): {} for v in variables}
    loss = loss or _logits_loss()
    if "hessian_gradient" in needs:
        x, labels = _concatenated(data)
        values = [tf.convert_to_tensor(v.value) for v in variables]
        with keras.StatelessScope(list(zip(variables, values))), (
                tf.GradientTape()) as outer:
            outer.watch(values)
            with tf.GradientTape() as inner:
                inner.watch(values)
                value = loss(labels, model(x, training=False)
                             / GRASP_TEMPERATURE)
            gradients = inner.gradient(
                value, values,
                unconnected_gradients=tf.UnconnectedGradients.ZERO)
            # g . stop(g): its gradient is H g.
            product = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(g))
                                for g in gradients])
        faults.point("scored")
        for variable, hg in zip(variables, outer.gradient(
                product, values,
                unconnected_gradients=tf.UnconnectedGradients.ZERO)):
            found[id(variable)]["hessian_gradient"] = _numpy(hg)
    if "synflow" in needs:
        for variable, gradient in zip(variables,
                                      _synflow_gradients(model, variables)):
            found[id(variable)]["synflow_gradient"] = gradient
    return found


def _synflow_gradients(model: keras.Model, variables: list
                       ) -> list[np.ndarray]:
    """dR/dw for each of `variables`, R the sum of the outputs of `model`
    with every float weight made absolute, on one all-ones input."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "Criterion 'synflow' feeds the network one all-ones input and "
            "needs a model of one known input (built on a keras.Input). "
            f"Received: a {type(model).__name__} with inputs={inputs!r}")
    shape = [1, *inputs[0].shape[1:]]
    floats = [v for v in model.weights
              if keras.backend.is_float_dtype(v.dtype)]
    absolute = {id(v): tf.abs(tf.convert_to_tensor(v.value))
                for v in floats}
    watched = [absolute[id(v)] for v in variables]
    with keras.StatelessScope([(v, absolute[id(v)]) for v in floats]), (
            tf.GradientTape()) as tape:
        tape.watch(watched)
        total = tf.reduce_sum(model(tf.ones(shape, inputs[0].dtype),
                                    training=False))
    faults.point("scored")
    return [_numpy(g) for g in tape.gradient(
        total, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)]


def _masked_variables(model: keras.Model) -> list:
    return [v for w in wrapping.wrapped_layers(model) if w.masks
            for v in w.masked_variables]


def _logits_loss() -> Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _concatenated(data: Iterable) -> tuple:
    """All `(inputs, labels)` batches of `data` joined into one batch.

    Raises:
        ValueError: if `data` yields no batch, or something other than
            `(inputs, labels)` pairs.
    """
    if _is_arrays(data):
        data = [data]  # `(x, y)` as `model.fit(x, y)` takes them: one batch
    batches = []
    for batch in data:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError(
                "`data` must yield (inputs, labels) batches. Received: an "
                f"element of type {type(batch).__name__}")
        batches.append(tuple(batch))
    if not batches:
        raise ValueError("`data` yielded no batch: the criterion needs at "
                         "least one (inputs, labels) batch.")
    return tf.nest.map_structure(
        lambda *parts: np.concatenate([np.asarray(p) for p in parts]),
        *batches)


def _is_arrays(data) -> bool:
    """Whether `data` is `(inputs, labels)` arrays rather than batches."""
    return (isinstance(data, tuple) and len(data) == 2
            and not any(isinstance(part, (tuple, list)) for part in data)
            and all(hasattr(part, "shape") or isinstance(part, dict)
                    for part in data))


def _numpy(gradient) -> np.ndarray:
    if isinstance(gradient, tf.IndexedSlices):
        gradient = tf.convert_to_tensor(gradient)
    return np.asarray(gradient, np.float64)

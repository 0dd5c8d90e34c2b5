"""`MaskedWrapper`: a Keras wrapper that holds masks and a rewind point."""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator

import keras
import tensorflow as tf

# Public Keras has `keras.StatelessScope` but no way to ask for the scope in
# force; the wrapper needs it to nest correctly inside one (symbolic calls,
# `Trainer.stateless_compute_loss`).
from keras.src.backend.common import stateless_scope as _stateless

from keras_lottery.core import prunable

_local = threading.local()


@contextlib.contextmanager
def masked_gradients() -> Iterator[None]:
    """Within this context, wrappers mask gradients instead of weights.

    For a training loop that keeps pruned weights exactly 0 itself (as
    `keras_lottery.engine.training.Trainer` does: it zeroes them once, and a
    zero gradient then never moves them): layers compute with the raw weights,
    and the gradient of each masked weight is multiplied by its mask. This skips
    the `weight * mask` product of the forward pass, and XLA fuses the
    gradient's product into the matmul that makes it. Read when a function is
    traced, so enter it inside the traced function.
    """
    with _setting("weights", "masked_gradients"):
        yield


@contextlib.contextmanager
def raw_weights() -> Iterator[None]:
    """Within this context, wrappers compute with the raw weights and leave
    their gradients alone.

    For a training loop that zeroes pruned weights after every update
    itself (`keras_lottery.engine.training.Trainer`, with an optimizer whose
    update of an entry reads only that entry's gradients): the pruned
    entries' optimizer slots then fill, but their weights stay exactly 0,
    and the kept entries' numbers are those of `masked_gradients`. The
    mask is read once per step, fused into the weight update, rather than
    by every slot's update. Read when a function is traced.
    """
    with _setting("weights", "raw"):
        yield


@contextlib.contextmanager
def recording(record) -> Iterator[None]:
    """Within this context, wrappers call `record(wrapper, inputs, outputs)`.

    For criteria that read activations (`keras_lottery.pruning.scoring`); eager
    calls only. `record=None` records nothing.
    """
    with _setting("record", record):
        yield


@contextlib.contextmanager
def _setting(name: str, value) -> Iterator[None]:
    """Sets this thread's `name` to `value` within the context."""
    previous = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


@tf.custom_gradient
def _mask_gradient(weight, mask):
    """The identity on `weight`, whose gradient is multiplied by `mask`."""

    def gradient(upstream):
        return upstream * mask, None

    return tf.identity(weight), gradient


# How a wrapper's call computes with a weight and its mask, by the context
# in force (`masked_gradients` or none; under `raw_weights` it calls the
# layer as it is).
_MASK_WEIGHT = {None: keras.ops.multiply, "masked_gradients": _mask_gradient}


@keras.saving.register_keras_serializable(package="keras_lottery")
class MaskedWrapper(keras.layers.Wrapper):
    """Wraps a layer with a 0/1 mask per prunable weight and a rewind point.

    For every prunable weight `w` of the inner layer (see
    `keras_lottery.core.prunable`) the wrapper holds a non-trainable mask `m`
    (same shape, starts at ones) and the layer computes with `w * m`, so the
    effective weight is exactly 0 wherever `m` is 0 whatever the optimizer
    does, and gradients there are exactly 0. For *every* weight of the inner
    layer (biases and normalization statistics included) it holds a
    non-trainable rewind copy: the weight's value at the rewind point. Masks
    and rewind copies are weights of the layer, so checkpoints and `.keras`
    files carry them.

    A unit mask (one 0/1 entry per output unit, starts at ones) multiplies
    the layer's per-unit weights (`keras_lottery.core.prunable.unit_weights`: a
    bias; a BatchNormalization's gamma and beta): structured pruning
    (`granularity="neuron"` or `"filter"`) zeroes a pruned unit's entry, so
    the unit outputs exactly 0, the normalization after it too.

    Masks change only between training rounds, through
    `keras_lottery.prune` or `keras_lottery.set_masks` (cross-replica
    context under a `tf.distribute` strategy); the forward pass only reads
    them.

    Args:
        layer: the `keras.layers.Layer` to wrap.
        masked: whether to mask the layer's prunable weights. `False` keeps
            only rewind copies, for layers that are not pruned but must be
            rewound (normalization layers, layers left out of `wrap`).
        unit_mask: whether to hold a unit mask, where the layer is masked
            (or a BatchNormalization) and has per-unit weights. `False` is
            the layout of files written before unit masks existed.
        **kwargs: passed to `keras.layers.Layer`; the name defaults to the
            inner layer's name.

    Example:
        >>> layer = keras_lottery.MaskedWrapper(keras.layers.Dense(10))
    """

    def __init__(self, layer: keras.layers.Layer, masked: bool = True,
                 unit_mask: bool = True, **kwargs):
        if isinstance(layer, MaskedWrapper):
            raise ValueError(
                "`layer` is already a MaskedWrapper. "
                f"Received: layer={layer.name!r}"
            )
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "`layer` must be a keras.layers.Layer. "
                f"Received: layer={layer!r}"
            )
        if masked and not prunable.is_prunable(layer):
            prunable.prunable_weights(layer)  # raises the unsupported error
        kwargs.setdefault("name", layer.name)
        super().__init__(layer, **kwargs)
        self.masked = bool(masked)
        self.unit_mask = bool(unit_mask)
        self._masked_variables = []
        self._mask_names = []
        self._masks = []
        self._unit_variables = []
        self._units_mask = None
        self._rewind_pairs = []

    def build(self, input_shape=None):
        try:
            super().build(input_shape)
        except TypeError as e:
            # Keras builds a wrapped layer from the wrapper's first input
            # only; MultiHeadAttention needs the value's shape too.
            raise ValueError(
                f"Layer {self.layer.name!r} of class "
                f"{type(self.layer).__name__} cannot be built from one input"
                f" shape ({' '.join(str(e).split())}): build it before "
                "wrapping it, e.g. `layer.build(query_shape, value_shape)`. "
                f"Received: input_shape={input_shape}"
            ) from None
        if self.masked:
            self._masked_variables = prunable.prunable_weights(self.layer)
            self._mask_names = prunable.weight_keys(self.layer)
        self._masks = [
            self.add_weight(
                name=f"{name.replace('/', '_')}_mask",
                shape=variable.shape,
                dtype=variable.dtype,
                initializer="ones",
                trainable=False,
                aggregation="only_first_replica",
            )
            for name, variable in zip(self._mask_names,
                                      self._masked_variables)
        ]
        if self.unit_mask and (self.masked or isinstance(
                self.layer, keras.layers.BatchNormalization)):
            # A bias that is prunable itself keeps its own mask only.
            self._unit_variables = [
                v for v in prunable.unit_weights(self.layer,
                                                 _shape(input_shape))
                if not any(v is m for m in self._masked_variables)]
        if self._unit_variables:
            self._units_mask = self.add_weight(
                name="units_mask",
                shape=self._unit_variables[0].shape,
                dtype=self._unit_variables[0].dtype,
                initializer="ones",
                trainable=False,
                aggregation="only_first_replica",
            )
        seen = set()
        self._rewind_pairs = []
        for i, variable in enumerate(self.layer.weights):
            name = variable.name if variable.name not in seen else (
                f"{variable.name}_{i}")
            seen.add(name)
            copy = self.add_weight(
                name=f"{name}_rewind",
                shape=variable.shape,
                dtype=variable.dtype,
                initializer=_initial_value(variable),
                trainable=False,
                aggregation="only_first_replica",
            )
            self._rewind_pairs.append((variable, copy))
        self.built = True

    @property
    def masked_variables(self) -> list[keras.Variable]:
        """The inner layer's masked weights, aligned with `masks`."""
        return list(self._masked_variables)

    @property
    def masks(self) -> list[keras.Variable]:
        """The mask variables, aligned with `masked_variables`."""
        return list(self._masks)

    @property
    def units_mask(self) -> keras.Variable | None:
        """The unit mask, or None where the layer has no per-unit weights.
        """
        return self._units_mask

    @property
    def unit_variables(self) -> list[keras.Variable]:
        """The per-unit weights the unit mask multiplies."""
        return list(self._unit_variables)

    def masked_pairs(self) -> list[tuple[keras.Variable, keras.Variable]]:
        """`(weight, mask)` for every weight a mask multiplies.

        The prunable weights with their masks, then the per-unit weights
        with the unit mask (which broadcasts over them).
        """
        return [*zip(self._masked_variables, self._masks),
                *((v, self._units_mask) for v in self._unit_variables)]

    @property
    def rewind_pairs(self) -> list[tuple[keras.Variable, keras.Variable]]:
        """`(weight, rewind copy)` for every weight of the inner layer."""
        return list(self._rewind_pairs)

    def mask_keys(self) -> list[str]:
        """Names of the masks: `"<wrapper name>/<weight name>"`.

        The weight name is the one `keras_lottery.core.prunable` registers
        ("/" for "."): `fc1/kernel`, `lstm/cell/recurrent_kernel`.
        """
        return [f"{self.name}/{name}" for name in self._mask_names]

    def call(self, inputs, *args, **kwargs):
        outputs = self._masked_call(inputs, *args, **kwargs)
        record = getattr(_local, "record", None)
        if record is not None:
            record(self, inputs, outputs)
        return outputs

    def _masked_call(self, inputs, *args, **kwargs):
        pairs = self.masked_pairs()
        weights = getattr(_local, "weights", None)
        if not pairs or weights == "raw":
            return self.layer(inputs, *args, **kwargs)
        mask_weight = _MASK_WEIGHT[weights]
        outer = _stateless.get_stateless_scope()
        base = dict(outer.state_mapping) if outer is not None else {}
        mapping = [
            (variable, mask_weight(variable.value, mask.value))
            for variable, mask in pairs
        ]
        with keras.StatelessScope(mapping, collect_losses=True) as scope:
            scope.state_mapping = {**base, **scope.state_mapping}
            outputs = self.layer(inputs, *args, **kwargs)
        # The scope held back what the layer did besides reading weights:
        # pass its losses on, and its writes to unmasked variables (such as
        # moving statistics).
        for loss in scope.losses:
            self.add_loss(loss)
        masked_ids = {id(v) for v, _ in pairs}
        for variable in self.layer.variables:
            new = scope.get_current_value(variable)
            if (id(variable) not in masked_ids and new is not None
                    and new is not base.get(id(variable))):
                variable.assign(new)
        return outputs

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = {**super().get_config(), "masked": self.masked,
                  "unit_mask": self.unit_mask}
        config["layer"] = {**config["layer"],
                           "config": loadable_config(self.layer)}
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Files written before unit masks existed have no `unit_mask` key
        # and no unit-mask variable.
        config = {"unit_mask": False, **config}
        return super().from_config(config, custom_objects=custom_objects)


def _shape(input_shape) -> tuple | None:
    """The shape of a single input, or None for several."""
    if isinstance(input_shape, (tuple, list)) and all(
            d is None or isinstance(d, int) for d in input_shape):
        return tuple(input_shape)
    return None


def _initial_value(variable: keras.Variable):
    """An initializer that copies `variable`'s value when called."""

    def initializer(shape, dtype=None):
        del shape  # the copy has the variable's shape by construction
        return keras.ops.convert_to_tensor(variable.value, dtype=dtype)

    return initializer


def loadable_config(layer: keras.layers.Layer) -> dict:
    """`layer.get_config()`, or the part of it the class's constructor takes.

    Some classes write derived values into their config that their
    `__init__` refuses (KerasHub 0.32's `ViTPatchingAndEmbedding`:
    `num_patches`, `num_positions`), so `from_config(get_config())` fails;
    the keys no `__init__` of the class names are then left out. Any other
    config is returned as it is.
    """
    config = layer.get_config()
    accepted = set()
    for cls in type(layer).__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(cls.__init__).parameters.values()
        accepted |= {p.name for p in parameters
                     if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if all(p.kind != p.VAR_KEYWORD for p in parameters):
            break
    kept = {k: v for k, v in config.items() if k in accepted}
    if kept == config:
        return config
    try:
        type(layer).from_config(config)
    except (TypeError, ValueError):
        return kept
    return config

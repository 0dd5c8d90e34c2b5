"""Reads and writes the masks, weights and rewind points of a model.

The one module that touches mask variables; the selection maths lives in
`keras_lottery.pruning.selection`, and `keras_lottery.pruning.pruner`
prunes through this module. Under a `tf.distribute` strategy call these
between rounds, in cross-replica context (outside `strategy.run`), so that
every replica gets the same values.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import wrapping

UNITS = "units"  # the key of a unit mask: "<layer>/units"


def get_masks(model: keras.Model,
              units: bool = False) -> dict[str, np.ndarray]:
    """Returns `{"<layer>/<weight>": 0/1 array}` for every mask of `model`.

    Args:
        model: a model holding `MaskedWrapper` layers.
        units: also return each unit mask, as `"<layer>/units"`: one entry
            per output unit, 0 where structured pruning removed the unit
            (its bias; a BatchNormalization's gamma and beta after it).
            `set_masks` takes them back.
    """
    return {
        key: keras.ops.convert_to_numpy(mask.value)
        for key, (_, mask) in _mask_slots(model, units).items()
    }


def set_masks(model: keras.Model, masks: Mapping[str, np.ndarray]) -> None:
    """Sets some or all of the masks, and zeroes the weights they prune.

    Args:
        model: a model holding `MaskedWrapper` layers.
        masks: `{"<layer>/<weight>": 0/1 array}` as `get_masks` returns
            (unit masks included); keys left out keep their mask.

    Raises:
        ValueError: for an unknown key, a wrong shape, or values other than
            0 and 1. Nothing is changed then.
    """
    slots = _mask_slots(model, units=True)
    for key, value in masks.items():
        if key not in slots:
            raise ValueError(
                f"`masks` has a key that names no mask: {key!r}. Masks: "
                f"{', '.join(sorted(slots))}"
            )
        check_mask(key, value, tuple(slots[key][1].shape))
    for key, value in masks.items():
        variables, mask = slots[key]
        value = np.asarray(value, mask.dtype)
        mask.assign(value)
        for variable in variables:
            variable.assign(variable.value * value)


def set_rewind_point(model: keras.Model) -> None:
    """Records every weight's current value as the rewind point.

    Call it at initialisation for W0, or at step k of the dense run for late
    rewinding (Wk). Every weight held in a `MaskedWrapper` is recorded,
    biases and normalization statistics included; the copies are weights
    of the wrappers, so they survive saving and checkpoints.
    """
    for wrapper in wrappers(model):
        for variable, copy in wrapper.rewind_pairs:
            copy.assign(variable.value)
    _warn_unwrapped(model)


def rewind(model: keras.Model) -> None:
    """Resets every weight to its rewind point, masked ones times mask.

    The whole network is reset, as in Frankle & Carbin (2019): biases and
    normalization state too. Optimizer state is not part of the model: start
    a fresh optimizer after rewinding (recompile, under `model.fit`).
    """
    for wrapper in wrappers(model):
        masks = _masks_by_variable(wrapper)
        for variable, copy in wrapper.rewind_pairs:
            value = copy.value
            if id(variable) in masks:
                value = value * masks[id(variable)].value
            variable.assign(value)
    _warn_unwrapped(model)


def reinitialize(model: keras.Model, seed: int) -> None:
    """Draws every weight afresh from its layer's initializer, times mask.

    The random-reinitialization control of Frankle & Carbin (2019). The
    rewind point is left as it is; call `set_rewind_point` after this to
    rewind to the new draw.

    Args:
        model: a model holding `MaskedWrapper` layers.
        seed: seeds the draw; the same seed gives the same weights.

    Raises:
        ValueError: if a weight's initializer cannot be found on its layer.
    """
    index = 0
    for wrapper in wrappers(model):
        masks = _masks_by_variable(wrapper)
        owners = _owners(wrapper.layer)
        for variable, _ in wrapper.rewind_pairs:
            initializer = _initializer(owners[id(variable)], variable,
                                       (seed * 1_000_003 + index) % 2**31)
            index += 1
            value = initializer(variable.shape, dtype=variable.dtype)
            if id(variable) in masks:
                value = value * masks[id(variable)].value
            variable.assign(value)


def sparsity(model: keras.Model) -> dict[str, float]:
    """Returns the remaining (unpruned) fraction of each mask and in total.

    Returns:
        `{"<layer>/<weight>": fraction, ..., "total": fraction}`, counted
        from the masks, so "total" covers masked weights only. When layers
        with weights have no mask (a class that is not prunable, a layer
        left out of `wrap`, normalization layers aside), their weight
        count is reported too, as `"unmasked_weights"`.
    """
    masks = get_masks(model)
    out = {key: float(np.count_nonzero(m)) / m.size for key, m in
           masks.items()}
    total = sum(m.size for m in masks.values())
    kept = sum(np.count_nonzero(m) for m in masks.values())
    out["total"] = float(kept) / total if total else 1.0
    unmasked = _unmasked_weight_count(model)
    if unmasked:
        out["unmasked_weights"] = unmasked
    return out


def _unmasked_weight_count(model) -> int:
    """Weights of layers without masks, normalization layers aside."""
    covered, count = set(), 0
    for wrapper in wrappers(model):
        inner = wrapper.layer.weights
        covered |= {id(v) for v in wrapper.weights + inner}
        if not wrapper.masks and not wrapping.is_normalization(
                wrapper.layer):
            count += sum(int(np.prod(v.shape)) for v in inner)
    for layer in model._flatten_layers(include_self=True):
        if wrapping.is_normalization(layer):
            continue
        for v in layer._trainable_variables + layer._non_trainable_variables:
            if id(v) not in covered:
                covered.add(id(v))
                count += int(np.prod(v.shape))
    return count


def wrappers(model) -> list[masking.MaskedWrapper]:
    wrappers = wrapping.wrapped_layers(model)
    if not wrappers:
        raise ValueError(
            "`model` holds no MaskedWrapper layer: call "
            f"`keras_lottery.wrap(model)` first. Received: model={model.name!r}"
        )
    return wrappers


def _mask_slots(model, units: bool = False
                ) -> dict[str, tuple[list[keras.Variable], keras.Variable]]:
    """`{key: (the variables the mask multiplies, the mask)}`."""
    slots = {}
    for wrapper in wrappers(model):
        for key, variable, mask in zip(
                wrapper.mask_keys(), wrapper.masked_variables, wrapper.masks):
            slots[key] = ([variable], mask)
        if units and wrapper.units_mask is not None:
            slots[f"{wrapper.name}/{UNITS}"] = (wrapper.unit_variables,
                                                wrapper.units_mask)
    return slots


def _masks_by_variable(wrapper) -> dict[int, keras.Variable]:
    return {id(v): m for v, m in wrapper.masked_pairs()}


def _warn_unwrapped(model) -> None:
    covered = {
        id(variable) for wrapper in wrappers(model)
        for variable, _ in wrapper.rewind_pairs
    }
    left = [v.path for v in model.weights if id(v) not in covered
            and not _is_wrapper_state(v, model)]
    if left:
        warnings.warn(
            "These weights are outside any MaskedWrapper, so they are not "
            f"part of the rewind point: {', '.join(left)}", stacklevel=3)


def _is_wrapper_state(variable, model) -> bool:
    return any(
        variable is own for wrapper in wrappers(model)
        for own in [*wrapper.masks, wrapper.units_mask,
                    *(c for _, c in wrapper.rewind_pairs)]
    )


def _owners(layer: keras.layers.Layer) -> dict[int, keras.layers.Layer]:
    """Maps each variable of `layer` (sublayers included) to its owner."""
    owners = {}
    for sub in layer._flatten_layers(include_self=True):
        for variable in sub._trainable_variables + sub._non_trainable_variables:
            owners[id(variable)] = sub
    return owners


def _initializer(layer, variable, seed: int):
    base = variable.name.split("/")[-1]
    # Keras names most initializers after their weight; depthwise layers
    # call their "kernel" initializer `depthwise_initializer`.
    for attr in (f"{base}_initializer",
                 f"{base.removesuffix('_kernel')}_initializer",
                 "depthwise_initializer" if base == "kernel" else ""):
        found = getattr(layer, attr, None)
        if found is not None:
            initializer = keras.initializers.get(found)
            config = initializer.get_config()
            if "seed" in config:
                initializer = initializer.__class__.from_config(
                    {**config, "seed": seed})
            return initializer
    raise ValueError(
        f"Cannot reinitialize weight {variable.name!r} of layer "
        f"{layer.name!r}: class {type(layer).__name__} has no "
        f"`{base}_initializer` attribute."
    )


def check_mask(name: str, mask: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raises ValueError unless `mask` has `shape` and holds only 0 and 1."""
    mask = np.asarray(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"The mask for `{name}` must have shape {tuple(shape)}. "
            f"Received: masks[{name!r}].shape={tuple(mask.shape)}"
        )
    bad = mask[(mask != 0) & (mask != 1)]
    if bad.size:
        raise ValueError(
            f"The mask for `{name}` must hold only 0 and 1. "
            f"Received: a value of {bad.flat[0].item()!r} in masks[{name!r}]"
        )

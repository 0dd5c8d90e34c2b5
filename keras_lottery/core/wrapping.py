"""Turning a Keras model into a maskable one (`wrap`) and back (`strip`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from collections.abc import Sequence

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import prunable

LayerSelection = (
    Sequence[str | type] | Callable[[keras.layers.Layer], bool] | None
)


def wrap(model: keras.Model, layers: LayerSelection = None) -> keras.Model:
    """Returns a copy of `model` whose layers are held in `MaskedWrapper`s.

    Every layer that owns weights is wrapped, so that the whole network can
    be rewound; the selected prunable layers get masks, the others only
    rewind copies. The copy has the same weights as `model`, and its rewind
    point is set to them. Nested Sequential and Functional models are
    wrapped too; wrappers keep their inner layer's name.

    Args:
        model: a Sequential or Functional `keras.Model`, built.
        layers: which layers to mask: `None` for every prunable layer; a
            sequence of layer names and/or layer classes; or a predicate
            `fn(layer) -> bool`.

    Returns:
        A new model of the same kind.

    Raises:
        ValueError: for a subclassed model, an already wrapped model, an
            unknown layer name, a named layer that cannot be pruned, or when
            nothing prunable is selected.

    Example:
        >>> wrapped = keras_lottery.wrap(model)
        >>> keras_lottery.set_rewind_point(wrapped)  # W0
    """
    _check_graph_model(model, "wrap")
    if wrapped_layers(model):
        raise ValueError(
            "`model` is already wrapped: it holds MaskedWrapper layers. "
            f"Received: model={model.name!r}"
        )
    select = _selector(model, layers)
    pairs = []
    unbuildable = []  # (layer, error): left unwrapped
    dense = []  # selected layers with weights that no mask covers

    def clone(layer):
        if isinstance(layer, keras.Model):
            return layer  # never reached with recursive=True
        copy = layer.__class__.from_config(masking.loadable_config(layer))
        if not isinstance(layer, keras.layers.Layer):
            return copy  # an operation such as `x + y`: no weights
        pairs.append((layer, copy))
        if not layer.weights:
            return copy
        masked = bool(select(layer)) and prunable.is_prunable(layer)
        if select(layer) and not masked and not is_normalization(layer):
            dense.append(layer)
        try:
            return _built_wrapper(layer, copy, masked)
        except (TypeError, ValueError, NotImplementedError) as e:
            unbuildable.append((layer, e))
            fresh = layer.__class__.from_config(
                masking.loadable_config(layer))
            pairs[-1] = (layer, fresh)
            return fresh

    new = _clone(model, clone)
    _warn_left_out(unbuildable, dense)
    for old_layer, new_layer in pairs:
        new_layer.set_weights(old_layer.get_weights())
    if not any(w.masks for w in wrapped_layers(new)):
        raise ValueError(
            "`model` has no prunable layer among those selected. Prunable "
            f"classes: {', '.join(prunable.supported())}. "
            f"Received: model={model.name!r}, layers={layers!r}"
        )
    for wrapper in wrapped_layers(new):
        for variable, copy in wrapper.rewind_pairs:
            copy.assign(variable.value)
    return new


def _built_wrapper(layer, copy, masked: bool) -> masking.MaskedWrapper:
    """`MaskedWrapper(copy)`, built as `layer` was.

    The copy is built from `layer`'s own build config (what loading a
    `.keras` file does), so that a layer built from several inputs
    (MultiHeadAttention) is built before its wrapper, which sees one.
    """
    build_config = layer.get_build_config()
    if build_config and not copy.built:
        copy.build_from_config(build_config)
    wrapper = masking.MaskedWrapper(copy, masked=masked)
    if copy.built:
        wrapper.build()
    return wrapper


def is_normalization(layer: keras.layers.Layer) -> bool:
    """Whether `layer` is a normalization layer (BatchNormalization, ...).

    Their weights (scale, offset, statistics) are never pruned: `wrap`
    gives them rewind copies without a warning, and `sparsity` does not
    count them as unmasked.
    """
    return "Normalization" in type(layer).__name__


def _warn_left_out(unbuildable, dense) -> None:
    """One warning for layers left unwrapped, one for layers left dense."""
    if unbuildable:
        warnings.warn(
            "keras_lottery.wrap left these layers unwrapped (neither "
            "pruned nor rewound), since they cannot be built inside a "
            "MaskedWrapper: " + "; ".join(
                f"{layer.name!r} ({type(layer).__name__}, "
                f"{_count(layer):,} weights: {type(e).__name__}: "
                f"{' '.join(str(e).split())})"
                for layer, e in unbuildable), stacklevel=3)
    left = [layer for layer in dense
            if all(layer is not u for u, _ in unbuildable)]
    if left:
        warnings.warn(
            "keras_lottery.wrap left these layers dense (rewound, never "
            "pruned), since their class is not prunable: " + ", ".join(
                f"{layer.name!r} ({type(layer).__name__}, "
                f"{_count(layer):,} weights)" for layer in left)
            + ". `sparsity()` counts them under 'unmasked_weights'; "
            "`keras_lottery.register_prunable` makes a class prunable.",
            stacklevel=3)


def _count(layer: keras.layers.Layer) -> int:
    return sum(int(np.prod(w.shape)) for w in layer.weights)


def strip(model: keras.Model) -> keras.Model:
    """Returns a plain Keras copy of `model`, wrappers removed.

    Each masked weight becomes `weight * mask` (pruned entries exactly 0);
    other weights are copied. The result needs nothing from keras_lottery to
    save, load or serve.

    A subclassed model (one that holds `MaskedWrapper`s it made in
    `__init__`, built by a call) is made again from its config,
    `type(model).from_config(model.get_config())`, built by a symbolic
    call at the input shape it was built with, and each of its wrappers is
    replaced, where the model holds it (an attribute, a list, a dict), by
    the wrapped layer. The copy computes and exports like `model`; its
    `.keras` file cannot be loaded back through the class, whose
    `__init__` makes wrappers again: serve it as a SavedModel
    (`keras_lottery.export`, `model.export`) or load the wrapped model.

    Args:
        model: a Sequential or Functional model made by `wrap`, or a built
            subclassed model holding `MaskedWrapper` layers.

    Returns:
        A new model of the same kind (class), without `MaskedWrapper`
        layers.

    Raises:
        ValueError: for a subclassed model that is not built, or whose
            class cannot be made from its config.
    """
    if not (isinstance(model, keras.Model) and _is_subclassed(model)):
        _check_graph_model(model, "strip")
    else:
        return _strip_subclassed(model)
    pairs = []

    def clone(layer):
        if isinstance(layer, keras.Model) and _is_subclassed(layer):
            return _strip_subclassed(layer)  # weights set already
        inner = layer.layer if isinstance(layer, masking.MaskedWrapper) else (
            layer)
        copy = inner.__class__.from_config(masking.loadable_config(inner))
        if isinstance(layer, keras.layers.Layer):
            pairs.append((layer, copy))
        return copy

    new = _clone(model, clone)
    for old_layer, new_layer in pairs:
        new_layer.set_weights(effective_weights(old_layer))
    return new


def functional(model: keras.Model, input_shape: Sequence[int] | None = None,
               dtype: str = "float32") -> keras.Model:
    """Returns a Functional model around a subclassed `model`.

    The Functional model shares `model`'s layers and weights (nothing is
    copied), and has the `inputs` and `outputs` that export needs:
    `keras_lottery.export` calls this on a subclassed model itself.
    Sequential and Functional models are returned as they are.

    Args:
        model: a keras.Model.
        input_shape: one example's shape (no batch dimension); by default
            the shape the model was built with.
        dtype: the input's dtype.

    Returns:
        `model`, or `keras.Model(inputs, model(inputs))`.

    Raises:
        ValueError: if a subclassed model was never called and no
            `input_shape` is given.

    Example:
        >>> export.export_saved_model(
        ...     keras_lottery.wrapping.functional(net, (28, 28, 1)), "/serve")
    """
    if not isinstance(model, keras.Model) or not _is_subclassed(model):
        return model  # export's own checks refuse a non-model
    if input_shape is None:
        input_shape = _built_shape(model, "functional")[1:]
    inputs = keras.Input(shape=tuple(input_shape), dtype=dtype,
                         name="input")
    return keras.Model(inputs, model(inputs), name=f"{model.name}_graph")


def effective_weights(layer: keras.layers.Layer) -> list:
    """Returns the values a layer computes with: masked ones times mask."""
    if not isinstance(layer, masking.MaskedWrapper):
        return layer.get_weights()
    masks = {id(v): m for v, m in layer.masked_pairs()}
    return [
        keras.ops.convert_to_numpy(v.value * masks[id(v)].value)
        if id(v) in masks else keras.ops.convert_to_numpy(v.value)
        for v in layer.layer.weights
    ]


def wrapped_layers(model: keras.layers.Layer) -> list[masking.MaskedWrapper]:
    """Returns every `MaskedWrapper` inside `model`, nested ones included.

    Raises:
        ValueError: if two masks would get the same name.
    """
    found = [
        layer for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, masking.MaskedWrapper)
    ]
    seen = set()
    for wrapper in found:
        if wrapper.name in seen:
            raise ValueError(
                "Masked layers need unique names; two are named "
                f"{wrapper.name!r}. Received: model={model.name!r}"
            )
        seen.add(wrapper.name)
    return found


def _clone(model: keras.Model, clone_function) -> keras.Model:
    """`keras.models.clone_model`, keeping the input layers' names."""
    kwargs = {}
    if _is_functional(model):
        kwargs["input_tensors"] = keras.tree.map_structure(
            lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype,
                                  name=t._keras_history.operation.name),
            model.input,
        )
    return keras.models.clone_model(model, clone_function=clone_function,
                                    recursive=True, **kwargs)


def _is_subclassed(model: keras.Model) -> bool:
    return not (isinstance(model, keras.Sequential) or _is_functional(model))


def _built_shape(model: keras.Model, verb: str) -> tuple:
    """The input shape (batch dimension first) a subclassed model was built
    with; a ValueError if it never was."""
    shape = (model.get_build_config() or {}).get("input_shape")
    if not model.built or shape is None:
        raise ValueError(
            f"`{verb}` needs a subclassed model that has been called on "
            "data (or a `keras_lottery.wrapping.functional(model, "
            "input_shape)` view): its input shape is unknown. Received: "
            f"model of class {type(model).__name__}, built={model.built}"
        )
    return tuple(shape)


def _strip_subclassed(model: keras.Model) -> keras.Model:
    """`strip` for a subclassed model; see `strip`."""
    shape = _built_shape(model, "strip")
    try:
        copy = type(model).from_config(model.get_config())
    except (TypeError, ValueError, NotImplementedError) as e:
        raise ValueError(
            f"`strip` makes a subclassed model again from its config, and "
            f"{type(model).__name__}.from_config(model.get_config()) "
            f"failed ({type(e).__name__}: {' '.join(str(e).split())}): give "
            "the class a `get_config()` returning its `__init__` "
            f"arguments. Received: model of class {type(model).__name__}"
        ) from None
    copy(keras.KerasTensor((None, *shape[1:])))
    copy.set_weights(model.get_weights())  # masks and rewind copies too
    wrappers = {id(w): w for w in wrapped_layers(copy)}
    for wrapper in wrappers.values():
        wrapper.layer.set_weights(effective_weights(wrapper))
    for holder in copy._flatten_layers(include_self=True):
        for name, value in list(vars(holder).items()):
            if id(value) in wrappers:
                object.__setattr__(holder, name, value.layer)
            elif isinstance(value, list):
                # The layer's own `_layers` among them: Keras finds a
                # model's weights through it.
                list.__setitem__(value, slice(None), [
                    wrappers[id(v)].layer if id(v) in wrappers else v
                    for v in value])
            elif isinstance(value, dict):
                for key, item in list(value.items()):
                    if id(item) in wrappers:
                        # Not `value[key] = ...`: Keras's tracked dict
                        # refuses new state in a built layer.
                        dict.__setitem__(value, key, item.layer)
    if wrapped_layers(copy):
        raise ValueError(
            f"`strip` could not replace every MaskedWrapper of a "
            f"{type(model).__name__}: hold them in attributes, lists or "
            f"dicts of the model. Still wrapped: "
            f"{', '.join(w.name for w in wrapped_layers(copy))}"
        )
    return copy


def _check_graph_model(model, verb: str) -> None:
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model. Received: model={model!r}"
        )
    if not (isinstance(model, keras.Sequential) or _is_functional(model)):
        raise ValueError(
            f"`{verb}` supports Sequential and Functional models (nested "
            "ones too). For a subclassed model, wrap its layers with "
            "`keras_lottery.MaskedWrapper` where the model builds them; "
            "every other keras_lottery function then works on it. "
            f"Received: model of class {type(model).__name__}"
        )


def _is_functional(model: keras.Model) -> bool:
    # Keras 3 exposes no public class for functional models; a functional
    # model has symbolic inputs and outputs. Subclasses of Functional built
    # in their `__init__` (every KerasHub backbone and task model) count:
    # their graph is cloned like any other.
    return any(cls.__name__ == "Functional" for cls in type(model).__mro__
               ) and hasattr(model, "_inputs")


def _selector(model, layers) -> Callable[[keras.layers.Layer], bool]:
    if layers is None:
        return lambda layer: True
    if callable(layers) and not isinstance(layers, type):
        return layers
    if isinstance(layers, (str, type)):
        layers = [layers]
    names = {
        layer.name: layer for layer in model._flatten_layers(
            include_self=False)
        if not isinstance(layer, keras.Model)
    }
    wanted_names = set()
    wanted_classes = []
    for item in layers:
        if isinstance(item, type):
            wanted_classes.append(item)
        elif item in names:
            if not prunable.is_prunable(names[item]):
                raise ValueError(
                    f"Layer {item!r} of class {type(names[item]).__name__} "
                    "cannot be pruned. Prunable classes: "
                    f"{', '.join(prunable.supported())}. "
                    f"Received: layers={list(layers)!r}"
                )
            wanted_names.add(item)
        else:
            raise ValueError(
                f"`layers` names a layer that is not in the model: {item!r}."
                f" Layers: {', '.join(sorted(names))}. "
                f"Received: layers={list(layers)!r}"
            )
    classes = tuple(wanted_classes)
    return lambda layer: (layer.name in wanted_names
                          or (bool(classes) and isinstance(layer, classes)))

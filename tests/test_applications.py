"""keras.applications conv nets, built from their constructors with random
weights (`weights=None`, 32x32 inputs, small variants), through the whole
API: wrap -> prune by weight -> one training step -> strip; then
`prune(model, 0.5, granularity="filter")` in one call, dependency-aware
(`keras_lottery.pruning.dependency`) -> shrink -> SavedModel reload, with
the shrunk model computing what the masked one computes.

One test per model runs both halves on one wrapped model (wrapping
DenseNet121 alone takes ~10 s on 2 cores); the group semantics are
checked on small hand-built graphs in tests/test_dependency.py.

The training step uses 8 examples: at 32x32 the last stages' maps are
1x1 or 2x2, and BatchNormalization's batch statistics over 2 examples
make the step's gradients explode (ResNet50 and EfficientNetB0 then
compute NaN in inference mode even at a learning rate of 0.001; at 0
they do not).
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.core import state
from keras_lottery.pruning import dependency
from keras_lottery.pruning import selection
from keras_lottery.serving import export

# Constructor arguments, and the most a half-filter-pruned model keeps of
# its parameters once shrunk (ConvNeXt's residual channels stay: every
# block reads them through a LayerNormalization).
APPLICATIONS = {
    "ResNet50": ({}, 0.3),
    "MobileNetV2": ({"alpha": 0.35}, 0.35),
    "EfficientNetB0": ({}, 0.3),
    "DenseNet121": ({}, 0.3),
    "ConvNeXtTiny": ({}, 0.6),
}
_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(8, 32, 32, 3)).astype("float32")
Y = _RNG.integers(0, 10, 8)


def _application(name):
    keras.utils.set_random_seed(0)
    kwargs, _ = APPLICATIONS[name]
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(32, 32, 3), classes=10,
        classifier_activation=None, **kwargs)
    # Moving statistics and scales away from 0/1, so that a channel
    # removed wrongly shows in the outputs (and BatchNormalization's beta
    # is nonzero: a pruned channel must lose it to stay 0).
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, size),
                               rng.normal(0, 0.1, size),
                               rng.normal(0, 0.1, size),
                               rng.uniform(0.5, 1.5, size)])
    return model


def _logits(model, x=X):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _layers_by_name(model):
    found = {}
    for layer in model.layers:
        found[layer.name] = layer
        if isinstance(layer, keras.Model):
            found.update(_layers_by_name(layer))
    return found


def _assert_pruned_are_zero(model):
    for wrapper in keras_lottery.wrapping.wrapped_layers(model):
        for variable, mask in zip(wrapper.masked_variables, wrapper.masks):
            value = keras.ops.convert_to_numpy(variable.value)
            assert np.all(value[keras.ops.convert_to_numpy(mask.value)
                                == 0] == 0), variable.path


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_application_prunes_trains_strips_and_shrinks(name, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # LayerScale left dense
        model = keras_lottery.wrap(_application(name))

    # Weight pruning and one training step.
    masks = keras_lottery.prune(model, 0.5)
    kept = sum(m.sum() for m in masks.values()) / sum(
        m.size for m in masks.values())
    assert abs(kept - 0.5) < 0.01
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  run_eagerly=True)  # one step: tracing it costs more
    history = model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    _assert_pruned_are_zero(model)

    # Filter pruning of every coupled group in one call, then strip (the
    # masked model's outputs, exact zeros) and shrink.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        keras_lottery.prune(model, 0.5, granularity="filter")
    messages = [str(w.message) for w in caught
                if "keras_lottery.prune" in str(w.message)]
    if name == "ConvNeXtTiny":  # its residual channels cannot go
        (message,) = messages
        assert "LayerNormalization" in message or "(Add)" in message
    else:
        assert not messages  # the classifier's units stay without a word
    _assert_pruned_are_zero(model)
    groups = dependency.groups(model)
    pruned = [g for g in groups if g.kept is None]
    assert len(pruned) >= 18
    for group in pruned:
        assert group.pruned == selection.count_to_prune(group.channels, 0.5)
    (output,) = [g for g in groups if model.layers[-1].name in g.producers]
    assert output.kept == dependency.OUTPUT and output.pruned == 0
    units = state.get_masks(model, units=True)
    for group in pruned:  # BatchNormalization follows its producer
        for follower in group.followers:
            if len(units.get(f"{follower}/units", ())) == group.channels:
                assert units[f"{follower}/units"].sum() == (
                    group.channels - group.pruned)
    logits = _logits(model)
    assert np.all(np.isfinite(logits)) and logits.std() > 1e-3
    plain = keras_lottery.strip(model)
    np.testing.assert_allclose(_logits(plain), logits, rtol=1e-5, atol=1e-5)
    layers = _layers_by_name(plain)  # ConvNeXt nests Sequential models
    for key, mask in state.get_masks(model).items():
        layer, _ = key.split("/")
        kernel = keras.ops.convert_to_numpy(layers[layer].kernel)
        assert np.all(kernel[mask == 0] == 0), key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvNeXt's `x + y`
        small = keras_lottery.shrink(plain)
    _, most = APPLICATIONS[name]
    assert small.count_params() <= most * plain.count_params()
    np.testing.assert_allclose(_logits(small), logits, rtol=1e-5, atol=1e-5)

    # The SavedModel is re-loaded and its outputs checked against `small`
    # (within 1e-5) at batch sizes 1 and 7 before it is renamed into place:
    # export_saved_model raises otherwise, and leaves nothing written.
    target = export.export_saved_model(small, str(tmp_path))
    assert tf.saved_model.contains_saved_model(target)

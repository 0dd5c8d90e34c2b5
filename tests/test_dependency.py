"""Dependency-aware structured pruning on small hand-built graphs.

`prune(model, f, granularity="filter")` prunes each channel space as one
group (`keras_lottery.pruning.dependency`): a residual add's branches
together, a depthwise conv with its producer, a concatenation's slices
with their producers, BatchNormalization following; `shrink` then removes
the group's channels everywhere, and the shrunk model computes what the
masked one computes.
"""

import re
import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.core import state
from keras_lottery.pruning import dependency
from keras_lottery.pruning import selection


def _bn(name):
    return keras.layers.BatchNormalization(name=name)


def _vary(model, seed=1):
    """Random BatchNormalization statistics and offsets (nonzero beta)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, size),
                               rng.normal(0, 0.3, size),
                               rng.normal(0, 0.3, size),
                               rng.uniform(0.5, 1.5, size)])
    return model


def _probe(shape, seed=2):
    return np.random.default_rng(seed).normal(size=(3, *shape)).astype(
        "float32")


def _prune_and_shrink(model, shape, fraction=0.5):
    """Wraps, filter-prunes and shrinks `model`; checks equal outputs."""
    wrapped = keras_lottery.wrap(model)
    keras_lottery.prune(wrapped, fraction, granularity="filter")
    x = _probe(shape)
    small = keras_lottery.shrink(wrapped)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(small(x)),
        keras.ops.convert_to_numpy(wrapped(x)), rtol=1e-5, atol=1e-5)
    return wrapped, small


def _alive(wrapped, layer, axis=-1):
    mask = state.get_masks(wrapped)[f"{layer}/kernel"]
    return selection.alive_units(mask, axis)


def residual_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a")(inputs)
    a = keras.layers.ReLU(name="relu_a")(_bn("bn_a")(a))
    b = keras.layers.Conv2D(4, 1, name="b")(a)
    b = keras.layers.ReLU(name="relu_b")(_bn("bn_b")(b))
    b = keras.layers.Conv2D(8, 3, padding="same", name="c")(b)
    x = keras.layers.Add(name="add")([a, _bn("bn_c")(b)])
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _vary(keras.Model(inputs, keras.layers.Dense(3, name="output")(x)))


def test_a_residual_channel_goes_from_every_branch_or_none():
    wrapped, small = _prune_and_shrink(residual_net(), (8, 8, 3))
    np.testing.assert_array_equal(_alive(wrapped, "a"), _alive(wrapped, "c"))
    assert _alive(wrapped, "a").sum() == 4
    units = state.get_masks(wrapped, units=True)
    for bn in ("bn_a", "bn_c"):  # both branches' normalisations follow
        np.testing.assert_array_equal(units[f"{bn}/units"],
                                      _alive(wrapped, "a"))
    assert small.get_layer("a").filters == small.get_layer("c").filters == 4
    assert small.get_layer("b").filters == 2
    assert small.get_layer("output").kernel.shape == (4, 3)
    assert small.get_layer("bn_c").moving_mean.shape == (4,)
    groups = {g.name: g for g in dependency.groups(wrapped)}
    assert groups["a"].producers == ("a", "c")
    assert groups["a"].followers == ("bn_a", "bn_c")
    assert groups["a"].consumers == ("b", "output")
    assert groups["a"].pruned == 4 and groups["a"].kept is None
    assert groups["output"].kept == "a model output"
    assert str(groups["a"]).startswith("a: 4 of 8 channels pruned;")


def test_the_group_score_is_the_sum_of_mean_normalised_member_scores():
    # a's filters weigh [4, 4, 1, 1], c's [10, 10, 30, 30]. Each member
    # divided by its mean: [1.6, 1.6, .4, .4] + [.5, .5, 1.5, 1.5] ->
    # channels 2 and 3 go. A raw sum ([14, 14, 31, 31]) would let the
    # larger member decide and prune 0 and 1.
    inputs = keras.Input((4, 4, 1))
    a = keras.layers.Conv2D(4, 1, use_bias=False, name="a")(inputs)
    c = keras.layers.Conv2D(4, 1, use_bias=False, name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(
        keras.layers.Add(name="add")([a, c]))
    model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x))
    model.get_layer("a").set_weights([np.array([4, 4, 1, 1.0]).reshape(
        1, 1, 1, 4)])
    model.get_layer("c").set_weights([np.array([10, 10, 30, 30.0]).reshape(
        1, 1, 1, 4)])
    wrapped = keras_lottery.wrap(model)
    keras_lottery.prune(wrapped, 0.5, granularity="filter")
    for name in ("a", "c"):
        np.testing.assert_array_equal(_alive(wrapped, name),
                                      [True, True, False, False])


def depthwise_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 1, use_bias=False, name="expand")(inputs)
    x = keras.layers.ReLU(6.0, name="relu1")(_bn("bn1")(x))
    x = keras.layers.ZeroPadding2D(name="pad")(x)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.ReLU(6.0, name="relu2")(_bn("bn2")(x))
    x = keras.layers.Conv2D(4, 1, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _vary(keras.Model(inputs, keras.layers.Dense(3, name="output")(x)))


def test_a_depthwise_channel_goes_with_its_producers_filter():
    wrapped, small = _prune_and_shrink(depthwise_net(), (8, 8, 3))
    alive = _alive(wrapped, "expand")
    assert alive.sum() == 3
    np.testing.assert_array_equal(_alive(wrapped, "dw", axis=2), alive)
    units = state.get_masks(wrapped, units=True)
    np.testing.assert_array_equal(units["bn2/units"], alive)
    assert small.get_layer("dw").kernel.shape == (3, 3, 3, 1)
    assert small.get_layer("bn2").gamma.shape == (3,)
    assert small.get_layer("project").kernel.shape == (1, 1, 3, 2)
    (group,) = [g for g in dependency.groups(wrapped) if g.name == "expand"]
    assert group.followers == ("bn1", "bn2", "dw")


def test_neuron_and_filter_name_the_same_output_units():
    masks = []
    for granularity in ("filter", "neuron"):
        wrapped = keras_lottery.wrap(depthwise_net())
        masks.append(keras_lottery.prune(wrapped, 0.5,
                                         granularity=granularity))
    assert masks[0].keys() == masks[1].keys()
    for key in masks[0]:
        np.testing.assert_array_equal(masks[0][key], masks[1][key])


def concat_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(6, 3, padding="same", name="b")(inputs)
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.ReLU(name="relu")(_bn("bn")(x))
    x = keras.layers.Conv2D(5, 1, name="c")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return _vary(keras.Model(inputs, keras.layers.Dense(3, name="output")(x)))


def test_a_concatenation_maps_its_slices_back_to_their_producers():
    wrapped, small = _prune_and_shrink(concat_net(), (8, 8, 3))
    alive = np.concatenate([_alive(wrapped, "a"), _alive(wrapped, "b")])
    assert alive.sum() == 2 + 3
    units = state.get_masks(wrapped, units=True)
    np.testing.assert_array_equal(units["bn/units"], alive)
    assert small.get_layer("bn").gamma.shape == (5,)
    assert small.get_layer("c").kernel.shape == (1, 1, 5, 2)
    # c's filters are flattened into the output's rows: 8 * 8 * 2.
    assert small.get_layer("output").kernel.shape == (8 * 8 * 2, 3)
    groups = {g.name: g for g in dependency.groups(wrapped)}
    assert groups["a"].followers == groups["b"].followers == ("bn",)
    assert groups["a"].consumers == groups["b"].consumers == ("c",)


def squeeze_excite_net():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="swish",
                            name="a")(inputs)
    s = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    s = keras.layers.Reshape((1, 1, 8), name="reshape")(s)
    s = keras.layers.Conv2D(4, 1, activation="relu", name="reduce")(s)
    s = keras.layers.Conv2D(8, 1, activation="sigmoid", name="excite")(s)
    x = keras.layers.Multiply(name="scale")([x, s])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(
        keras.layers.Conv2D(4, 1, name="project")(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(x))


def test_squeeze_and_excitation_scales_go_with_their_channels():
    wrapped, small = _prune_and_shrink(squeeze_excite_net(), (8, 8, 3))
    np.testing.assert_array_equal(_alive(wrapped, "a"),
                                  _alive(wrapped, "excite"))
    assert small.get_layer("a").filters == 4
    assert small.get_layer("excite").filters == 4
    assert small.get_layer("reduce").filters == 2
    assert small.get_layer("reshape").target_shape == (1, 1, 4)


def test_a_layer_that_cannot_follow_keeps_its_channels_named_once():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, name="a")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras_lottery.wrap(keras.Model(
        inputs, keras.layers.Dense(3, name="output")(x)))
    with pytest.warns(UserWarning) as caught:
        keras_lottery.prune(model, 0.5, granularity="filter")
    # The output layer's units are classes: kept without a word.
    (message,) = [str(w.message) for w in caught
                  if "keras_lottery" in str(w.message)]
    assert message == (
        "keras_lottery.prune: these keep their units, coupled to channels "
        "that cannot go: layer 'ln' (LayerNormalization): this layer class "
        "is not analysed: a/kernel")
    assert _alive(model, "a").all()
    assert _alive(model, "b").sum() == 4


def test_a_granularity_that_finds_nothing_to_prune_is_one_line():
    model = keras_lottery.wrap(keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3, name="output")]))
    with pytest.raises(ValueError, match=re.escape(
            "Granularity 'filter' finds no units that can go in model "
            f"{model.name!r}: a model output: output/kernel. Received: "
            "granularity='filter'")):
        keras_lottery.prune(model, 0.5, granularity="filter")
    conv = keras_lottery.wrap(residual_net())
    with pytest.raises(ValueError, match=re.escape(
            "Granularity 'head' does not apply to layer 'a' (Conv2D), "
            "which has: weight, filter, channel, m:n. Received: "
            "granularity='head'")):
        keras_lottery.prune(conv, 0.5, granularity="head")
    assert all(m.all() for m in state.get_masks(conv).values())


def test_shrink_does_not_touch_an_unpruned_model():
    model = residual_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        small = keras_lottery.shrink(model)
    assert small.count_params() == model.count_params()

"""Tests of prune, masks, rewind, reinitialize and sparsity on models."""

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.pruning import selection


def lenet(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((784,))
    x = keras.layers.Dense(300, activation="relu", name="fc1",
                           kernel_initializer="glorot_normal")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(100, activation="relu", name="fc2",
                           kernel_initializer="glorot_normal")(x)
    outputs = keras.layers.Dense(10, name="output",
                                 kernel_initializer="glorot_normal")(x)
    return keras_lottery.wrap(keras.Model(inputs, outputs))


def kernel(model, name):
    return model.get_layer(name).layer.kernel.numpy()


def test_paper_schedule_gives_exact_counts_each_round():
    model = lenet()
    sizes = {"fc1/kernel": 235200, "fc2/kernel": 30000, "output/kernel": 1000}
    for rounds in range(1, 5):
        keras_lottery.prune(model, 0.2, fractions={"output": 0.1})
        masks = keras_lottery.get_masks(model)
        for key, size in sizes.items():
            rate = 0.1 if key.startswith("output") else 0.2
            assert int(masks[key].sum()) == selection.remaining_after(
                size, rate, rounds)
    kept = sum(selection.remaining_after(n, 0.1 if k.startswith("output")
                                       else 0.2, 4) for k, n in sizes.items())
    assert keras_lottery.sparsity(model)["total"] == kept / 266200


def test_prune_zeroes_weights_and_masks_only_shrink():
    model = lenet()
    before = keras_lottery.get_masks(model)
    for _ in range(3):
        after = keras_lottery.prune(model, 0.3, scope="global")
        for key in before:
            assert np.all(after[key] <= before[key])
            k = model.get_layer(key.split("/")[0]).layer.kernel.numpy()
            assert np.all(k[after[key] == 0] == 0)
        before = after


def test_magnitude_pruning_removes_the_smallest_weights():
    model = lenet()
    k = np.abs(kernel(model, "fc2"))
    masks = keras_lottery.prune(model, 0.5)
    kept, pruned = k[masks["fc2/kernel"] == 1], k[masks["fc2/kernel"] == 0]
    assert kept.min() >= pruned.max()


def test_random_method_control_is_seeded():
    a, b = lenet(), lenet()
    ma = keras_lottery.prune(a, 0.5, method="random", seed=3)
    mb = keras_lottery.prune(b, 0.5, method="random", seed=3)
    for key in ma:
        np.testing.assert_array_equal(ma[key], mb[key])
    magnitude = keras_lottery.prune(lenet(), 0.5)
    assert not np.array_equal(ma["fc1/kernel"], magnitude["fc1/kernel"])


def test_prune_argument_errors():
    model = lenet()
    with pytest.raises(ValueError, match=r"`fraction` must be in \[0, 1\). "
                       r"Received: fraction=1.0"):
        keras_lottery.prune(model, 1.0)
    with pytest.raises(ValueError, match=r"Received: fraction=-0.2"):
        keras_lottery.prune(model, -0.2)
    with pytest.raises(ValueError, match=r"`fractions` names a layer with no "
                       r"mask: 'fc7'.*Masked layers: fc1, fc2, output"):
        keras_lottery.prune(model, 0.2, fractions={"fc7": 0.1})
    with pytest.raises(ValueError, match=r"`fractions\['output'\]` must be in"
                       r" \[0, 1\). Received: fractions\['output'\]=2"):
        keras_lottery.prune(model, 0.2, fractions={"output": 2})
    with pytest.raises(ValueError, match=r"`method` must be one of "
                       r"'magnitude', 'gradient', 'activation', 'apoz', "
                       r"'random'.*Received: method='taylor'"):
        keras_lottery.prune(model, 0.2, method="taylor")
    with pytest.raises(ValueError, match=r"`scope` must be one of "
                       r"'layerwise', 'global'. Received: scope='block'"):
        keras_lottery.prune(model, 0.2, scope="block")
    with pytest.raises(ValueError, match=r"`fractions` applies to "
                       r"`scope='layerwise'` only"):
        keras_lottery.prune(model, 0.2, scope="global",
                            fractions={"output": 0.1})
    assert keras_lottery.sparsity(model)["total"] == 1.0  # nothing changed


def test_set_masks_validates_everything_before_changing_anything():
    model = lenet()
    good = {"fc2/kernel": np.zeros((300, 100))}
    with pytest.raises(ValueError, match=r"`masks` has a key that names no "
                       r"mask: 'fc9/kernel'"):
        keras_lottery.set_masks(model, {**good, "fc9/kernel": np.ones(3)})
    with pytest.raises(ValueError, match=r"The mask for `fc1/kernel` must "
                       r"have shape \(784, 300\). Received: "
                       r"masks\['fc1/kernel'\].shape=\(300, 784\)"):
        keras_lottery.set_masks(model, {**good,
                                        "fc1/kernel": np.ones((300, 784))})
    with pytest.raises(ValueError, match=r"must hold only 0 and 1. Received:"
                       r" a value of 2.0"):
        keras_lottery.set_masks(model, {**good,
                                        "output/kernel": np.full((100, 10),
                                                                 2.0)})
    assert keras_lottery.sparsity(model)["total"] == 1.0
    keras_lottery.set_masks(model, good)
    assert not kernel(model, "fc2").any()
    assert keras_lottery.sparsity(model)["fc2/kernel"] == 0.0


def test_functions_need_a_wrapped_model():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"`model` holds no MaskedWrapper "
                       r"layer: call `keras_lottery.wrap\(model\)` first"):
        keras_lottery.get_masks(plain)


def _train_a_little(model, steps=5):
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 784)).astype(np.float32)
    y = np.arange(64) % 10
    model.fit(x, y, batch_size=16, epochs=steps // 4 + 1, verbose=0)


def test_rewind_resets_whole_network_times_mask():
    model = lenet()
    w0 = [v.numpy() for v in model.weights]
    _train_a_little(model)
    bn = model.get_layer("bn").layer
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    masks = keras_lottery.prune(model, 0.5)
    keras_lottery.rewind(model)
    for variable, initial in zip(model.weights, w0):
        name = variable.path
        if name.endswith("_mask"):
            continue
        expected = initial
        for key, mask in masks.items():
            layer, weight = key.split("/")
            if (name.startswith(f"{layer}/") and name.endswith(f"/{weight}")
                    and "_rewind" not in name):
                expected = initial * mask
        np.testing.assert_array_equal(variable.numpy(), expected,
                                      err_msg=name)


def test_late_rewinding_goes_back_to_the_point_set():
    model = lenet()
    _train_a_little(model)
    keras_lottery.set_rewind_point(model)
    wk = {v.path: v.numpy() for v in model.trainable_weights}
    _train_a_little(model)
    keras_lottery.rewind(model)
    for v in model.trainable_weights:
        np.testing.assert_array_equal(v.numpy(), wk[v.path])


def test_reinitialize_draws_fresh_masked_seeded_weights():
    model = lenet()
    masks = keras_lottery.prune(model, 0.5)
    before = kernel(model, "fc1")
    keras_lottery.reinitialize(model, seed=7)
    k1 = kernel(model, "fc1")
    assert not np.allclose(k1[masks["fc1/kernel"] == 1],
                           before[masks["fc1/kernel"] == 1])
    assert np.all(k1[masks["fc1/kernel"] == 0] == 0)
    # Glorot normal for a 784x300 kernel.
    std = np.sqrt(2.0 / (784 + 300))
    assert k1[masks["fc1/kernel"] == 1].std() == pytest.approx(
        std, rel=0.05)
    bn = model.get_layer("bn").layer
    np.testing.assert_array_equal(bn.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), 0.0)
    np.testing.assert_array_equal(model.get_layer("fc1").layer.bias.numpy(),
                                  0.0)
    other = lenet()
    keras_lottery.set_masks(other, masks)
    keras_lottery.reinitialize(other, seed=7)
    np.testing.assert_array_equal(kernel(other, "fc1"), k1)


def test_sparsity_reports_each_mask_and_total():
    model = lenet()
    keras_lottery.prune(model, 0.2, fractions={"output": 0.1})
    s = keras_lottery.sparsity(model)
    assert s == {"fc1/kernel": 0.8, "fc2/kernel": 0.8, "output/kernel": 0.9,
                 "total": (188160 + 24000 + 900) / 266200}

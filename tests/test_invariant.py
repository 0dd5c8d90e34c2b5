"""Pruned weights are exactly 0 after every step: every optimizer, every
strategy, the engine's loop and `model.fit`, and after a .keras round trip."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.engine import training

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),
}
STRATEGIES = ("default", "mirrored")


def strategy_for(name):
    strategy = training.make_strategy(name)
    if name == "mirrored":
        assert strategy.num_replicas_in_sync == 2
    return strategy


def build(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        inputs = keras.Input((20,))
        x = keras.layers.Dense(32, activation="relu", name="fc1")(inputs)
        x = keras.layers.BatchNormalization(name="bn")(x)
        outputs = keras.layers.Dense(4, name="output")(x)
        model = keras_lottery.wrap(keras.Model(inputs, outputs))
        keras_lottery.prune(model, 0.8)
    return model


def data(n=96):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 20)).astype(np.float32),
            (np.arange(n) % 4).astype(np.int32))


def assert_pruned_zero(model):
    masks = keras_lottery.get_masks(model)
    stripped = keras_lottery.strip(model)
    for key, mask in masks.items():
        layer, weight = key.split("/")
        raw = getattr(model.get_layer(layer).layer, weight).numpy()
        effective = getattr(stripped.get_layer(layer), weight).numpy()
        assert np.all(raw[mask == 0] == 0), key
        assert np.all(effective[mask == 0] == 0), key
        assert np.any(effective[mask == 1] != 0), key


@pytest.mark.parametrize("strategy_name", STRATEGIES)
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_engine_loop_keeps_pruned_weights_zero(strategy_name, optimizer):
    strategy = strategy_for(strategy_name)
    model = build(strategy)
    before = {k: v.copy() for k, v in keras_lottery.get_masks(model).items()}
    with strategy.scope():
        trainer = training.Trainer(model, strategy, OPTIMIZERS[optimizer](),
                                   batch_size=16, steps_per_loop=1)
    x, y = data()
    dataset_fn = functools.partial(training.train_dataset, x, y, 16, 0)
    for _ in range(4):  # check after every single step
        trainer.train(dataset_fn, 1)
        assert_pruned_zero(model)
    trainer.train(dataset_fn, 6)
    assert trainer.step == 10
    assert_pruned_zero(model)
    for key, mask in keras_lottery.get_masks(model).items():
        np.testing.assert_array_equal(mask, before[key])  # never assigned


@pytest.mark.parametrize("strategy_name", STRATEGIES)
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_model_fit_keeps_pruned_weights_zero(strategy_name, optimizer):
    strategy = strategy_for(strategy_name)
    model = build(strategy)
    with strategy.scope():
        model.compile(OPTIMIZERS[optimizer](),
                      keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            assert_pruned_zero(self.model)

    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Check()])
    assert_pruned_zero(model)


def test_pruned_weights_stay_zero_after_keras_round_trip(tmp_path):
    strategy = strategy_for("default")
    model = build(strategy)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_pruned_zero(loaded)
    loaded.compile(keras.optimizers.Adam(0.01),
                   keras.losses.SparseCategoricalCrossentropy(
                       from_logits=True))
    x, y = data()
    loaded.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert_pruned_zero(loaded)
    for key, mask in keras_lottery.get_masks(model).items():
        np.testing.assert_array_equal(keras_lottery.get_masks(loaded)[key],
                                      mask)


def test_masks_agree_across_replicas_after_pruning_under_mirrored():
    strategy = strategy_for("mirrored")
    model = build(strategy)
    wrapper = model.get_layer("fc1")
    mask = wrapper.masks[0].value  # a MirroredVariable under the strategy
    values = [v.numpy() for v in mask.values]
    assert len(values) == 2
    np.testing.assert_array_equal(values[0], values[1])
    assert isinstance(mask, tf.distribute.DistributedValues)


class _OwnAdam(keras.optimizers.Adam):
    """Not one of the trainer's known elementwise optimizers: its steps
    mask the gradients."""


def _train_adam(optimizer_class, **kwargs):
    strategy = tf.distribute.get_strategy()
    model = build(strategy)
    optimizer = optimizer_class(0.01, **kwargs)
    trainer = training.Trainer(model, strategy, optimizer, batch_size=16,
                               steps_per_loop=4)
    x, y = data()
    trainer.train(training.TrainingData(x, y, 16, seed=0), 10)
    kernel = model.get_layer("fc1").layer.kernel
    momentum = optimizer._momentums[optimizer._get_variable_index(kernel)]
    return model, momentum.numpy()


def test_masking_updates_or_gradients_keeps_the_same_numbers():
    # Adam's steps zero pruned weights after the update; a subclass's mask
    # the gradients. The kept weights are the same to the bit, and only the
    # pruned entries' slots tell the two ways apart.
    by_update, slot = _train_adam(keras.optimizers.Adam)
    by_gradient, masked_slot = _train_adam(_OwnAdam)
    for u, v in zip(by_update.weights, by_gradient.weights):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert_pruned_zero(by_update)
    pruned = keras_lottery.get_masks(by_update)["fc1/kernel"] == 0
    assert np.all(masked_slot[pruned] == 0)
    assert np.any(slot[pruned] != 0)


def test_norm_clipping_masks_the_gradients():
    # Unmasked gradients of pruned weights would change the clipping norm.
    model, slot = _train_adam(keras.optimizers.Adam, global_clipnorm=0.5)
    assert_pruned_zero(model)
    pruned = keras_lottery.get_masks(model)["fc1/kernel"] == 0
    assert np.all(slot[pruned] == 0)

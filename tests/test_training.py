"""The engine: data order, in-graph batches, evaluation, restarts."""

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.engine import training


def data(n=50):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 3)).astype(np.float32),
            np.arange(n, dtype=np.int64))


def batches(dataset, count):
    return [labels.numpy() for _, labels in dataset.take(count)]


def test_the_batch_at_a_step_depends_only_on_seed_and_step():
    x, y = data()  # 50 examples, batch 8: 6 batches an epoch
    whole = batches(training.train_dataset(x, y, 8, seed=3), 20)
    resumed = batches(training.train_dataset(x, y, 8, seed=3,
                                             start_step=7), 13)
    np.testing.assert_array_equal(np.stack(resumed), np.stack(whole[7:]))
    # Each epoch visits distinct examples; epochs are shuffled differently.
    first = np.concatenate(whole[:6])
    assert len(set(first)) == 48
    assert not np.array_equal(first, np.concatenate(whole[6:12]))
    other_seed = batches(training.train_dataset(x, y, 8, seed=4), 6)
    assert not np.array_equal(np.concatenate(other_seed), first)


def test_datasets_run_without_the_autotuning_thread():
    # Deleting an iterator with tf.data's autotuning thread can wait up to a
    # minute for that thread (see `feeding._data_options`).
    x, y = data()
    train = training.train_dataset(x, y, 8, seed=0)
    assert train.options().autotune.enabled is False


@pytest.mark.parametrize("start", [0, 5, 6, 17])
def test_in_graph_batches_are_the_batches_of_train_dataset(start):
    x, y = data()  # 6 batches an epoch: 20 steps cross three epochs
    feed = training.TrainingData(tf.constant(x), tf.constant(y), 8, seed=3)
    want = batches(training.train_dataset(x, y, 8, seed=3, start_step=start),
                   20)
    np.testing.assert_array_equal(feed.indices(start, 20), np.stack(want))
    np.testing.assert_array_equal(
        np.stack(batches(feed(start), 20)), np.stack(want))


def model_and_trainer(strategy, jit_compile=False, steps_per_loop=4):
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((3,), name="x"), keras.layers.Dense(4, name="dense")],
            name="model")
        model.set_weights([np.full((3, 4), 0.1, np.float32),
                           np.zeros(4, np.float32)])
        trainer = training.Trainer(
            model, strategy, keras.optimizers.Adam(0.01), batch_size=8,
            jit_compile=jit_compile, steps_per_loop=steps_per_loop)
    return model, trainer


@pytest.mark.parametrize("jit_compile", [False, True])
def test_in_graph_training_takes_the_steps_of_the_input_pipeline(
        jit_compile):
    x, y = data()
    y = y % 4
    feed = training.TrainingData(tf.constant(x), tf.constant(y), 8, seed=1)
    strategy = tf.distribute.get_strategy()
    piped, a = model_and_trainer(strategy, jit_compile)
    fed, b = model_and_trainer(strategy, jit_compile)
    losses = [a.train(lambda s: feed(s), 3), a.train(lambda s: feed(s), 7)]
    got = [b.train(feed, 3), b.train(feed, 7)]  # 7: two calls, one padded
    assert a.step == b.step == 10
    np.testing.assert_allclose(got, losses, rtol=1e-5)
    for u, v in zip(piped.weights, fed.weights):
        np.testing.assert_allclose(v.numpy(), u.numpy(), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("strategy_name", ["default", "one_device",
                                           "mirrored"])
@pytest.mark.parametrize("count,batch_size", [(50, 16), (50, 50), (7, 16),
                                              (48, 16)])
def test_evaluation_counts_every_example_once(strategy_name, count,
                                              batch_size):
    x, y = data(count)
    y = y % 4
    strategy = training.make_strategy(strategy_name)
    model, trainer = model_and_trainer(strategy)
    logits = model(x).numpy()
    loss = keras.losses.sparse_categorical_crossentropy(
        y, logits, from_logits=True).numpy().mean()
    accuracy = np.mean(np.argmax(logits, -1) == y)
    examples = trainer.eval_dataset(tf.constant(x), tf.constant(y),
                                    batch_size)
    for _ in range(2):  # the second call runs the compiled function again
        result = trainer.evaluate(examples, count)
        assert result.loss == pytest.approx(loss, rel=1e-5)
        assert result.accuracy == pytest.approx(accuracy)
    with pytest.raises(ValueError, match="`count` must be the number of"):
        trainer.evaluate(examples, count + 1)


def test_a_restarted_trainer_is_a_new_trainer():
    x, y = data()
    y = y % 4
    feed = training.TrainingData(tf.constant(x), tf.constant(y), 8, seed=1)
    strategy = tf.distribute.get_strategy()
    first, trainer = model_and_trainer(strategy, jit_compile=True)
    trainer.train(feed, 5)
    start, fresh = model_and_trainer(strategy, jit_compile=True)
    assert trainer.takes(start)
    trainer.restart(start)
    assert trainer.step == 0 and trainer.model is first
    loss = trainer.train(feed, 6)
    assert loss == pytest.approx(fresh.train(feed, 6), rel=1e-6)
    for u, v in zip(first.weights, start.weights):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-6)
    wider = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    assert not trainer.takes(wider)
    with pytest.raises(ValueError, match="`model` must have the layers"):
        trainer.restart(wider)


def test_op_determinism_is_given_back_after_the_context():
    from tensorflow.python.framework import config as tf_config
    assert not tf_config.is_op_determinism_enabled()
    with training.op_determinism(True):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()
    with training.op_determinism(False):
        assert not tf_config.is_op_determinism_enabled()


def test_a_run_reuses_its_trainer_only_for_the_same_training():
    from configs import lenet300_mnist
    train = lenet300_mnist.get_config("smoke").train
    strategy = tf.distribute.get_strategy()

    def model():
        return model_and_trainer(strategy)[0]

    trainer = training.trainer_for(model(), strategy, train)
    assert training.trainer_for(model(), strategy, train, trainer) is trainer
    other = train.copy_and_resolve_references()
    other.learning_rate *= 2
    assert training.trainer_for(model(), strategy, other,
                                trainer) is not trainer


def test_convolutions_on_a_cpu_train_without_xla():
    # In the trainer's XLA-compiled loop Conv-2 trained about 100 times
    # slower than on TensorFlow's kernels; the Dense layers of LeNet gain
    # from XLA.
    strategy = tf.distribute.get_strategy()
    conv = keras.Sequential([keras.Input((8, 8, 1)),
                             keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                             keras.layers.Dense(4)])
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    assert not training.compiles_steps(True, strategy, conv)
    assert not training.compiles_steps(True, strategy,
                                       keras_lottery.wrap(conv))
    assert training.compiles_steps(True, strategy, dense)
    assert not training.compiles_steps(False, strategy, dense)
    trainer = training.Trainer(conv, strategy, keras.optimizers.Adam(),
                               batch_size=8, jit_compile=True)
    assert not trainer.jit_compile


@pytest.mark.parametrize("schedule, want", [
    # step s (0-based), rate 0.1, warmup 10, decay at 60 by 0.1, 100 steps
    ("constant", {0: 0.01, 9: 0.1, 50: 0.1, 99: 0.1}),
    ("step", {0: 0.01, 9: 0.1, 59: 0.1, 60: 0.01, 99: 0.01}),
    # cosine from the warmup's end (step 10) to 0 at step 100
    ("cosine", {0: 0.01, 9: 0.1, 10: 0.1, 55: 0.05, 100: 0.0}),
])
def test_schedules_warm_up_then_decay(schedule, want):
    train = ml_collections.ConfigDict({
        "optimizer": "sgd", "schedule": schedule, "learning_rate": 0.1,
        "warmup_steps": 10, "decay_steps": (60,), "decay_factor": 0.1,
        "num_steps": 100})
    # Keras keeps an optimizer's schedule in `_learning_rate`.
    rate = training.make_optimizer(train)._learning_rate
    for step, value in want.items():
        np.testing.assert_allclose(float(rate(step)), value,
                                   rtol=1e-5, atol=1e-7)


def test_a_serialised_optimizer_that_does_not_load_is_one_line():
    training.check_keras_optimizer(
        keras.optimizers.serialize(keras.optimizers.Lion(0.001)))
    for bad in ({"class_name": "NoSuchOptimizer", "config": {}},
                "adam", {"module": "keras.layers", "class_name": "Dense",
                         "config": {"units": 2}}):
        with pytest.raises(ValueError, match=r"^`train.keras_optimizer` "
                           r"must be None or a Keras optimizer .*Received: "
                           r"train.keras_optimizer=") as caught:
            training.check_keras_optimizer(bad)
        assert "\n" not in str(caught.value)

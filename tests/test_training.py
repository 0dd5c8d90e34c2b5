"""The engine's input pipelines: data order and dataset options."""

import keras
import numpy as np
import tensorflow as tf

from keras_lottery import training


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
    # minute for that thread (see `training._data_options`).
    x, y = data()
    train = training.train_dataset(x, y, 8, seed=0)
    assert train.options().autotune.enabled is False
    strategy = tf.distribute.get_strategy()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    trainer = training.Trainer(model, strategy, keras.optimizers.SGD(0.1),
                               batch_size=8)
    evaluation = trainer.eval_dataset(x, y % 2, 16)
    assert evaluation.options().autotune.enabled is False
    result = trainer.evaluate(evaluation, len(x))
    assert 0.0 <= result.accuracy <= 1.0


def test_op_determinism_is_given_back_after_the_context():
    from tensorflow.python.framework import config as tf_config
    assert not tf_config.is_op_determinism_enabled()
    with training.op_determinism(True):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()
    with training.op_determinism(False):
        assert not tf_config.is_op_determinism_enabled()

"""Data augmentation (`data.augment`, keras_lottery/engine/augment.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import lenet300_mnist
from keras_lottery.engine import augment
from keras_lottery.engine import training
from keras_lottery.lottery import run_config


def images(batch=8, size=6, channels=3):
    return tf.reshape(tf.range(batch * size * size * channels,
                               dtype=tf.float32),
                      [batch, size, size, channels]) + 1.0


def test_crop_flip_is_a_shifted_window_of_the_padded_image_maybe_flipped():
    x = images()
    y = tf.range(8)
    out, labels = augment.crop_flip(x, y, augment.step_seed(3, 17))
    assert out.shape == x.shape
    np.testing.assert_array_equal(labels, y)
    padded = np.pad(x.numpy(), [(0, 0), (4, 4), (4, 4), (0, 0)])
    for i in range(8):
        windows = [padded[i, r:r + 6, c:c + 6] for r in range(9)
                   for c in range(9)]
        windows += [w[:, ::-1] for w in windows]
        assert any(np.array_equal(out[i], w) for w in windows), i


def test_the_same_step_augments_the_same_way_and_another_differently():
    x = images(batch=32)
    y = tf.zeros([32], tf.int32)
    first = augment.crop_flip(x, y, augment.step_seed(0, 5))[0]
    again = augment.crop_flip(x, y, augment.step_seed(0, 5))[0]
    other = augment.crop_flip(x, y, augment.step_seed(0, 6))[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Both flips and several offsets occur in a batch of 32.
    assert len({augment.crop_flip(x[i:i + 1], y[:1],
                                  augment.step_seed(0, i))[0].numpy()
                .tobytes() for i in range(32)}) > 8


def user_augment(x, y, seed):
    noise = tf.random.stateless_normal(tf.shape(x), seed, stddev=0.1)
    return x + noise, y


def test_a_function_by_import_path_is_called_with_the_step_seed():
    function = augment.get("test_augment:user_augment")
    x, y = images(batch=2), tf.zeros([2])
    a = function(x, y, augment.step_seed(1, 2))[0]
    b = function(x, y, augment.step_seed(1, 2))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x)


@pytest.mark.parametrize("spec,expected", [
    ("flip", "`data.augment` must be one of 'none', 'crop_flip' or "
             "'package.module:function'. Received: data.augment='flip'"),
    ("test_augment:images", "takes"),
])
def test_bad_augmentations_are_one_line(spec, expected):
    with pytest.raises(ValueError) as raised:
        augment.get(spec)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_none_is_nothing_and_crop_flip_refuses_flat_inputs():
    assert augment.get("none") is None
    with pytest.raises(ValueError, match="takes images"):
        augment.crop_flip(tf.zeros([2, 10]), tf.zeros([2]),
                          augment.step_seed(0, 0))


def conv_and_trainer(steps_per_loop=4):
    model = keras.Sequential([
        keras.Input((6, 6, 3)), keras.layers.Conv2D(2, 3, name="conv"),
        keras.layers.Flatten(), keras.layers.Dense(4, name="dense")])
    model.set_weights([np.full(w.shape, 0.1, np.float32)
                       for w in model.get_weights()])
    trainer = training.Trainer(
        model, tf.distribute.get_strategy(), keras.optimizers.Adam(0.01),
        batch_size=8, jit_compile=False, steps_per_loop=steps_per_loop)
    return model, trainer


def test_in_graph_and_pipeline_training_augment_each_step_alike():
    # The trainer gathers and augments batches in its compiled loop; the
    # pipeline (`feeding.train_dataset`) maps them: the same seed per step,
    # so the same weights, whether a round runs through or in pieces.
    x = images(batch=40)
    y = tf.constant(np.arange(40) % 4)
    feed = training.TrainingData(x, y, 8, seed=1,
                                 augment=augment.get("crop_flip"))
    plain = training.TrainingData(x, y, 8, seed=1)
    piped, a = conv_and_trainer()
    fed, b = conv_and_trainer()
    unaugmented, c = conv_and_trainer()
    a.train(lambda s: feed(s), 10)
    b.train(feed, 3)
    b.train(feed, 7)
    c.train(plain, 10)
    for got, want in zip(fed.get_weights(), piped.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fed.get_weights()[0],
                           unaugmented.get_weights()[0])


def test_a_config_with_an_unknown_augmentation_is_one_line(mnist_dir):
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.data.augment = "flip"
    with pytest.raises(ValueError) as raised:
        run_config.check_config(config)
    assert str(raised.value).startswith("`data.augment` must be one of")
    assert "Received: data.augment='flip'" in str(raised.value)

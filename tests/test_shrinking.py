"""Tests of `keras_lottery.shrink` and of exporting shrunk models."""

import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

import keras_lottery
from binaries import export as export_binary
from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.data import datasets
from keras_lottery.models import zoo
from keras_lottery.pruning import shrinking
from keras_lottery.serving import artifacts
from keras_lottery.serving import export
from keras_lottery.serving import litert


def probe(shape, batch_size=5, seed=1):
    return np.random.default_rng(seed).normal(
        size=(batch_size, *shape)).astype(np.float32)


def assert_same_outputs(model, small, x):
    want = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(small(x, training=False))
    np.testing.assert_allclose(got, want, rtol=artifacts.TOLERANCE,
                               atol=artifacts.TOLERANCE)


def shrink_without_warning(model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = keras_lottery.shrink(model)
    assert not [w for w in caught if "shrink" in str(w.message)]
    return small


def kill_units(layer, units):
    """Zeroes the kernel slices and biases of `layer`'s output `units`."""
    weights = layer.get_weights()
    out_axis = -2 if "Transpose" in type(layer).__name__ else -1
    index = [slice(None)] * weights[0].ndim
    index[out_axis] = list(units)
    weights[0][tuple(index)] = 0
    if layer.use_bias:
        weights[1][list(units)] = 0
    layer.set_weights(weights)


def ignore_inputs(layer, channels, repeat=1):
    """Zeroes the kernel rows of `layer` that read input `channels` (of a
    map flattened from `repeat` positions)."""
    weights = layer.get_weights()
    in_axis = 0 if isinstance(layer, keras.layers.Dense) else -2
    size = weights[0].shape[in_axis]
    rows = [p for p in range(size) if p % (size // repeat) in channels]
    index = [slice(None)] * weights[0].ndim
    index[in_axis] = rows
    weights[0][tuple(index)] = 0
    layer.set_weights(weights)


def kill_norm(layer, channels, rng):
    """Random statistics; gamma and beta 0 at `channels`."""
    gamma, beta, mean, variance = layer.get_weights()
    size = gamma.shape
    gamma, beta = rng.normal(size=size), rng.normal(size=size)
    gamma[list(channels)] = beta[list(channels)] = 0
    layer.set_weights([gamma, beta, rng.normal(size=size),
                       rng.uniform(0.5, 2, size=size)])


def subset(rng, size, count):
    return set(rng.choice(size, count, replace=False).tolist())


def residual_model(rng):
    """conv-BN-ReLU, two branches added, ReLU, max pool, flatten, two FCs;
    random sizes."""
    f1, f2, units = (int(rng.integers(6, 10)) for _ in range(3))
    inputs = keras.Input((6, 6, 3), name="image")
    x = keras.layers.Conv2D(f1, 3, padding="same", activation="relu",
                            name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    a = keras.layers.Conv2D(f2, 3, padding="same", name="c2")(x)
    b = keras.layers.Conv2D(f2, 1, name="c3")(x)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="fc2")(x))


@pytest.mark.parametrize("seed", range(4))
def test_random_residual_graphs_shrink_exactly(seed):
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = residual_model(rng)
    layer = model.get_layer
    f1, f2 = layer("c1").filters, layer("c2").filters
    units = layer("fc1").units
    dead1 = subset(rng, f1, 2)
    kill_units(layer("c1"), dead1)
    kill_norm(layer("bn1"), dead1, rng)
    # Channels of bn1 that both of its consumers ignore, and ones only c2
    # ignores.
    both = subset(rng, f1, 2)
    ignore_inputs(layer("c2"), both | {int(rng.integers(f1))})
    ignore_inputs(layer("c3"), both)
    dead2, dead3 = subset(rng, f2, 3), subset(rng, f2, 3)
    kill_units(layer("c2"), dead2)
    kill_units(layer("c3"), dead3)
    ignored4 = subset(rng, f2, 1)
    ignore_inputs(layer("fc1"), ignored4, repeat=9)
    dead5 = subset(rng, units, 3)
    kill_units(layer("fc1"), dead5)

    small = shrink_without_warning(model)  # nothing here is unsupported
    assert type(small) is type(model)
    assert small.get_layer("c1").filters == f1 - len(dead1 | both)
    assert small.get_layer("bn1").gamma.shape == (f1 - len(dead1 | both),)
    removed = (dead2 & dead3) | ignored4
    assert small.get_layer("c2").filters == f2 - len(removed)
    assert small.get_layer("c3").filters == f2 - len(removed)
    assert small.get_layer("fc1").kernel.shape == (
        9 * (f2 - len(removed)), units - len(dead5))
    assert small.get_layer("fc2").kernel.shape == (units - len(dead5), 4)
    assert [lay.name for lay in small.layers] == [
        lay.name for lay in model.layers]
    assert small.inputs[0]._keras_history.operation.name == "image"
    assert_same_outputs(model, small, probe((6, 6, 3)))


def test_resnet20_half_of_every_filter_dead():
    model = zoo.build("resnet20", (16, 16, 3), 10, seed=0)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            dead = subset(rng, layer.filters, layer.filters // 2)
            kill_units(layer, dead)
            kill_norm(model.get_layer(layer.name.replace("conv", "bn")),
                      dead, rng)
    small = keras_lottery.shrink(model)
    for layer in small.layers:
        if layer.name.endswith("_conv1"):  # read by its block's conv2 only
            original = model.get_layer(layer.name).filters
            assert layer.filters == original // 2, layer.name
    assert small.count_params() < 0.6 * model.count_params()
    assert_same_outputs(model, small, probe((16, 16, 3)))


def branches(dead_a, dead_b):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    a = keras.layers.Dense(6, activation="relu", name="a")(inputs)
    b = keras.layers.Dense(6, name="b")(inputs)
    x = keras.layers.Add(name="add")([a, b])
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    kill_units(model.get_layer("a"), dead_a)
    kill_units(model.get_layer("b"), dead_b)
    return model


def test_residual_channel_goes_only_if_dead_on_every_branch():
    model = branches({1, 2}, {2, 4})
    small = keras_lottery.shrink(model)
    assert small.get_layer("a").units == 5  # only unit 2 is dead on both
    assert small.get_layer("b").units == 5
    assert small.get_layer("out").kernel.shape == (5, 3)
    assert_same_outputs(model, small, probe((5,)))
    model = branches({1}, {4})
    small = keras_lottery.shrink(model)
    assert small.get_layer("a").units == 6
    assert_same_outputs(model, small, probe((5,)))


def test_nonzero_activation_at_zero_keeps_the_unit():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(6, activation="sigmoid", name="sig"),
        keras.layers.Dense(6, activation="tanh", name="tanh"),
        keras.layers.Dense(2, name="out"),
    ])
    kill_units(model.get_layer("sig"), {0, 1})  # sigmoid(0) = 0.5
    kill_units(model.get_layer("tanh"), {0, 1})
    small = keras_lottery.shrink(model)
    assert isinstance(small, keras.Sequential)
    assert small.get_layer("sig").units == 6
    assert small.get_layer("tanh").units == 4
    assert_same_outputs(model, small, probe((4,)))


def test_softmax_keeps_its_channels_without_warning():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(6, activation="relu", name="fc1"),
        keras.layers.Dense(5, activation="softmax", name="mix"),
        keras.layers.Dense(4, activation="relu", name="fc3"),
        keras.layers.Activation("softmax", name="softmax"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ])
    for name in ("fc1", "mix", "fc3"):
        kill_units(model.get_layer(name), {0, 1})
    small = shrink_without_warning(model)
    assert small.get_layer("fc1").units == 4  # read by a softmax layer
    assert small.get_layer("mix").units == 5
    assert small.get_layer("fc3").units == 4
    assert_same_outputs(model, small, probe((4,)))


def test_batch_norm_beta_keeps_a_dead_filter():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(5, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    kill_units(model.get_layer("conv"), {0, 1})
    gamma, beta, mean, variance = model.get_layer("bn").get_weights()
    beta[0] = 0.5  # filter 0 comes out as the constant 0.5
    model.get_layer("bn").set_weights([gamma, beta, mean, variance])
    small = keras_lottery.shrink(model)
    assert small.get_layer("conv").filters == 4
    assert_same_outputs(model, small, probe((4, 4, 2)))


def test_channel_reaching_an_output_stays():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    out = keras.layers.Dense(2, name="out")(hidden)
    model = keras.Model(inputs, [out, hidden])
    kill_units(model.get_layer("hidden"), {0})
    small = keras_lottery.shrink(model)
    assert small.get_layer("hidden").units == 4


def unsupported_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(6, activation="relu", name="fc1")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Dense(5, activation="relu", name="fc2")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    kill_units(model.get_layer("fc1"), {0, 1})
    kill_units(model.get_layer("fc2"), {0, 1})
    return model


def test_unsupported_layer_stays_dense_with_one_warning():
    model = unsupported_model()
    with pytest.warns(UserWarning) as caught:
        small = keras_lottery.shrink(model)
    messages = [str(w.message) for w in caught
                if issubclass(w.category, UserWarning)]
    assert messages == [
        "shrink keeps the channels around layer 'norm' (class "
        "LayerNormalization) dense: this layer class is not analysed."]
    assert small.get_layer("fc1").units == 6
    assert small.get_layer("fc2").units == 3  # after it: shrunk
    assert_same_outputs(model, small, probe((4,)))


def test_an_operation_of_the_graph_stays_dense_with_a_warning():
    # `a + b` of two KerasTensors is an operation, not a layer (ConvNeXt's
    # residuals): shrink copies it and keeps the channels around it.
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(a + b)
    model = keras_lottery.wrap(keras.Model(
        inputs, keras.layers.Dense(2, name="output")(pooled)))
    # Model-wide, "filter" finds nothing it can prune here (the operation
    # keeps a's and b's channels); named per layer, they prune their own.
    with pytest.raises(ValueError, match="finds no units that can go"):
        keras_lottery.prune(model, 0.5, granularity="filter")
    keras_lottery.prune(model, 0.5, granularities={"a": "filter",
                                                   "b": "filter"})
    # The operation's name counts those made before it in the process.
    with pytest.warns(UserWarning, match=r"shrink keeps the channels around "
                      r"layer 'add(_\d+)?' \(class Add\) dense"):
        small = keras_lottery.shrink(model)
    assert small.get_layer("a").filters == 4
    assert_same_outputs(model, small, probe((8, 8, 3)))


def test_shared_layer_stays_dense():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, activation="relu", name="fc1")(inputs)
    shared = keras.layers.Dense(4, activation="relu", name="shared")
    x = shared(shared(x))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    kill_units(model.get_layer("fc1"), {0})
    kill_units(shared, {1})
    with pytest.warns(UserWarning, match="layer 'shared' .*called more "
                      "than once"):
        small = keras_lottery.shrink(model)
    assert small.get_layer("fc1").units == 4
    assert small.get_layer("shared").units == 4
    assert_same_outputs(model, small, probe((4,)))


def test_wrapped_model_is_stripped_first():
    model = keras_lottery.wrap(
        zoo.build("lenet_300_100", (28, 28, 1), 10, seed=0))
    masks = keras_lottery.get_masks(model)
    masks["fc1/kernel"][:, 100:] = 0  # 200 units without inputs
    keras_lottery.set_masks(model, masks)
    small = keras_lottery.shrink(model)
    assert not keras_lottery.wrapping.wrapped_layers(small)
    # Their biases are 0 at initialisation, and relu(0) = 0.
    assert small.get_layer("fc1").units == 100
    assert_same_outputs(model, small, probe((28, 28, 1)))


def test_errors():
    with pytest.raises(ValueError, match="`model` must be a keras.Model. "
                       "Received: model='model.keras'"):
        keras_lottery.shrink("model.keras")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="`shrink` supports Sequential and "
                       "Functional models. Received: model of class "
                       "Subclassed"):
        keras_lottery.shrink(Subclassed())
    with pytest.raises(ValueError, match="`model` must be built.*Received: "
                       "model='unbuilt'"):
        keras_lottery.shrink(keras.Sequential(
            [keras.layers.Dense(2)], name="unbuilt"))


def test_maths():
    kernel = np.ones((3, 2), np.float32)
    kernel[:, 1] = [0, 0, 5]
    zeros = shrinking.producer_zeros(kernel, np.zeros(2), np.array(
        [False, False, True]), (-1, 0), True)
    np.testing.assert_array_equal(zeros, [False, True])  # reads a zero only
    zeros = shrinking.producer_zeros(kernel, np.array([0, 1.0]), np.array(
        [False, False, True]), (-1, 0), True)
    np.testing.assert_array_equal(zeros, [False, False])
    assert shrinking.keeps_zero(keras.activations.gelu)
    assert not shrinking.keeps_zero(keras.activations.softplus)
    np.testing.assert_array_equal(shrinking.batch_norm_zeros(
        gamma=np.array([0, 0, 1, 1.0]), beta=np.array([0, 1, 0, 0.0]),
        mean=np.array([3, 0, 0, 2.0]),
        input_zeros=np.array([False, True, True, True])),
        [True, False, True, False])
    np.testing.assert_array_equal(
        shrinking.channel_rows(np.array([True, False]), 3),
        [True, False] * 3)


# Real data and export.


def ticket(model, fraction, rng):
    """Zeroes all but `fraction` of the units of every hidden layer."""
    for layer in model.layers[:-1]:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            size = layer.kernel.shape[-1]
            kill_units(layer, subset(rng, size, size - round(fraction * size)))
    return model


@pytest.fixture(scope="module")
def splits(mnist_dir):
    return datasets.load("mnist", mnist_dir, validation_size=1000)


@pytest.mark.parametrize("name", ["lenet_300_100", "conv2"])
def test_real_mnist_outputs_equal(splits, name):
    model = zoo.build(name, (28, 28, 1), 10, seed=0)
    model.compile(optimizer="adam", loss=keras.losses.
                  SparseCategoricalCrossentropy(from_logits=True))
    model.fit(splits.train_x[:600], splits.train_y[:600], batch_size=60,
              epochs=1, verbose=0)
    ticket(model, 0.25, np.random.default_rng(0))
    small = keras_lottery.shrink(model)
    assert small.get_layer("fc1").units == round(0.25 * model.get_layer(
        "fc1").units)
    assert small.count_params() < 0.4 * model.count_params()
    assert_same_outputs(model, small, splits.test_x[:500])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, mnist_dir):
    """A finished round 0 whose model keeps a quarter of its units."""
    path = str(tmp_path_factory.mktemp("workdir"))
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    files.write_json(paths.config_file(path), config.to_dict())
    os.makedirs(paths.round_dir(path, 0))
    model = keras_lottery.wrap(
        zoo.build("lenet_300_100", (28, 28, 1), 10, seed=0))
    masks = keras_lottery.get_masks(model)
    masks["fc1/kernel"][:, 75:] = 0
    masks["fc2/kernel"][:, 25:] = 0
    keras_lottery.set_masks(model, masks)
    model.save(paths.model_file(path, 0))
    files.write_json(paths.metrics_file(path, 0), {"test_accuracy": [0.9]})
    return path


@pytest.fixture
def parsed_flags():
    # pytest does not parse absl flags; flagsaver sets them by hand.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def test_binary_exports_a_shrunk_model(workdir, tmp_path, parsed_flags,
                                       capsys):
    output = str(tmp_path / "out")
    with flagsaver.flagsaver(workdir=workdir, round=0, output=output,
                             format=["saved_model", "tflite"], shrink=True):
        export_binary.main(["export"])
    saved = os.path.join(output, "lottery", "1")
    lite = os.path.join(output, "lottery_v1.tflite")
    assert capsys.readouterr().out.split() == [lite, saved]
    loaded = tf.saved_model.load(saved)
    assert sorted(tuple(v.shape) for v in loaded.variables) == [
        (10,), (25,), (25, 10), (75,), (75, 25), (784, 75)]
    model = keras.models.load_model(paths.model_file(workdir, 0))
    x = probe((28, 28, 1), batch_size=7)
    logits = loaded.signatures["serving_default"](input=tf.constant(x))
    np.testing.assert_allclose(logits["logits"], model(x), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(litert.predict_tflite(lite, x)["logits"],
                               model(x), rtol=1e-5, atol=1e-5)
    with open(os.path.join(saved, "assets", "sparsity.json")) as f:
        report = json.load(f)
    assert report["weights"]["fc1/kernel"]["total"] == 784 * 75
    assert report["total"]["total"] == 784 * 75 + 75 * 25 + 25 * 10


def test_export_model_takes_a_plain_model(tmp_path):
    plain = zoo.build("lenet_300_100", (28, 28, 1), 10, seed=0)
    written = export.export_model(plain, str(tmp_path), ["saved_model"])
    with open(os.path.join(written["saved_model"], "assets",
                           "sparsity.json")) as f:
        assert json.load(f)["total"]["remaining"] == 1.0

"""Tests for keras_lottery.models."""

import re

import keras
import numpy as np
import pytest

from keras_lottery.models import zoo

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
NUM_CLASSES = 10

ALL_MODELS = ("conv2", "conv4", "conv6", "lenet_300_100", "resnet20", "vgg19")
MNIST1D = (40, 1)
MNIST1D_MODELS = ("mnist1d_cnn", "mnist1d_lottery_mlp", "mnist1d_mlp")
SMALL_MODELS = ("lenet_300_100", "conv2", "conv4", "conv6")
# (name, input_shape) pairs the papers train on.
CASES = [(name, MNIST) for name in SMALL_MODELS] + [
    (name, CIFAR) for name in ALL_MODELS
]


def _numpy(x) -> np.ndarray:
    # Not keras.ops.convert_to_numpy: on NumPy 2 its np.array(tf_tensor)
    # emits a DeprecationWarning about the `copy` keyword on every call.
    return keras.ops.convert_to_tensor(x).numpy()


def _kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Returns {layer name: kernel} for every conv and dense layer."""
    return {
        layer.name: _numpy(layer.kernel)
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    }


def _all_weights(model: keras.Model) -> list[np.ndarray]:
    return [_numpy(w) for w in model.weights]


def test_names_lists_every_model_sorted():
    assert zoo.names() == sorted(ALL_MODELS + MNIST1D_MODELS + ("vit_tiny",))


@pytest.mark.parametrize(("name", "input_shape"), CASES)
def test_forward_pass_outputs_one_logit_per_class(name, input_shape):
    model = zoo.build(name, input_shape, NUM_CLASSES, seed=0)
    images = np.random.default_rng(0).random((2, *input_shape), np.float32)

    logits = _numpy(model(images, training=False))

    assert logits.shape == (2, NUM_CLASSES)
    assert np.all(np.isfinite(logits))
    assert model.name == name


def test_num_classes_sets_output_width():
    model = zoo.build("resnet20", CIFAR, num_classes=7)
    assert model.output_shape == (None, 7)


def test_lenet_300_100_has_paper_weight_counts():
    model = zoo.build("lenet_300_100", MNIST, NUM_CLASSES)

    kernels = _kernels(model)

    assert {name: k.shape for name, k in kernels.items()} == {
        "fc1": (784, 300),
        "fc2": (300, 100),
        zoo.OUTPUT_LAYER_NAME: (100, 10),
    }
    assert sum(k.size for k in kernels.values()) == 266_200
    assert model.count_params() == 266_200 + 300 + 100 + 10


def test_lenet_300_100_layer_names():
    model = zoo.build("lenet_300_100", MNIST, NUM_CLASSES)
    assert [layer.name for layer in model.layers] == [
        "input",
        "flatten",
        "fc1",
        "fc2",
        "output",
    ]


@pytest.mark.parametrize(
    ("name", "input_shape", "num_convs", "num_dense"),
    [
        ("conv2", CIFAR, 2, 3),
        ("conv4", CIFAR, 4, 3),
        ("conv6", CIFAR, 6, 3),
        ("vgg19", CIFAR, 16, 1),
        # 19 3x3 convs plus the two 1x1 projection shortcuts.
        ("resnet20", CIFAR, 21, 1),
    ],
)
def test_layer_counts(name, input_shape, num_convs, num_dense):
    model = zoo.build(name, input_shape, NUM_CLASSES)
    layers = model.layers
    assert sum(isinstance(x, keras.layers.Conv2D) for x in layers) == num_convs
    assert sum(isinstance(x, keras.layers.Dense) for x in layers) == num_dense


def test_resnet20_has_about_0_27m_trainable_params():
    model = zoo.build("resnet20", CIFAR, NUM_CLASSES)
    num_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert 260_000 <= num_trainable <= 280_000


def test_vgg19_has_about_20m_params():
    model = zoo.build("vgg19", CIFAR, NUM_CLASSES)
    assert 19_900_000 <= model.count_params() <= 20_100_000


@pytest.mark.parametrize("name", ["vgg19", "resnet20"])
def test_every_conv_feeds_a_named_batch_norm(name):
    model = zoo.build(name, CIFAR, NUM_CLASSES)
    convs = [x for x in model.layers if isinstance(x, keras.layers.Conv2D)]
    norms = [
        x
        for x in model.layers
        if isinstance(x, keras.layers.BatchNormalization)
    ]

    assert len(norms) == len(convs)
    for norm in norms:
        conv = norm.input._keras_history.operation
        assert isinstance(conv, keras.layers.Conv2D)
        assert norm.name.startswith(conv.name.replace("conv", "bn"))
        assert not conv.use_bias, conv.name


@pytest.mark.parametrize(("name", "input_shape"), CASES)
def test_layer_names_are_unique_and_stable(name, input_shape):
    first = [x.name for x in zoo.build(name, input_shape, 10).layers]
    second = [x.name for x in zoo.build(name, input_shape, 10).layers]

    assert first == second
    assert len(set(first)) == len(first)
    # Explicit names, not Keras's auto-generated "dense_3" or "conv2d_1".
    assert not any(re.search(r"_\d+$", n) for n in first), first


@pytest.mark.parametrize(("name", "input_shape"), CASES)
def test_output_layer_is_dense_logits(name, input_shape):
    model = zoo.build(name, input_shape, NUM_CLASSES)

    output = model.get_layer(zoo.OUTPUT_LAYER_NAME)

    assert zoo.OUTPUT_LAYER_NAME == "output"
    assert model.layers[-1] is output
    assert isinstance(output, keras.layers.Dense)
    assert output.activation is keras.activations.linear


@pytest.mark.parametrize("name", ALL_MODELS)
def test_same_seed_gives_identical_weights(name):
    first = _all_weights(zoo.build(name, CIFAR, NUM_CLASSES, seed=3))
    second = _all_weights(zoo.build(name, CIFAR, NUM_CLASSES, seed=3))

    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_different_seeds_give_different_kernels(name):
    first = _kernels(zoo.build(name, CIFAR, NUM_CLASSES, seed=0))
    second = _kernels(zoo.build(name, CIFAR, NUM_CLASSES, seed=1))

    for layer_name, kernel in first.items():
        assert not np.array_equal(kernel, second[layer_name]), layer_name


def test_nearby_seeds_share_no_kernel():
    # ResNet-20 has many same-shaped convs; a naive `seed + layer index`
    # would make seed 1's n-th kernel equal seed 0's (n + 1)-th.
    first = _kernels(zoo.build("resnet20", CIFAR, NUM_CLASSES, seed=0))
    second = _kernels(zoo.build("resnet20", CIFAR, NUM_CLASSES, seed=1))

    for a in first.values():
        for b in second.values():
            assert a.shape != b.shape or not np.array_equal(a, b)


def test_unseeded_builds_differ():
    first = _kernels(zoo.build("lenet_300_100", MNIST, NUM_CLASSES))
    second = _kernels(zoo.build("lenet_300_100", MNIST, NUM_CLASSES))

    assert not np.array_equal(first["fc1"], second["fc1"])


def test_lenet_kernels_are_glorot_normal_and_biases_zero():
    model = zoo.build("lenet_300_100", MNIST, NUM_CLASSES, seed=0)
    fc1 = model.get_layer("fc1")
    kernel = _numpy(fc1.kernel)

    # Glorot normal: stddev sqrt(2 / (fan_in + fan_out)). Keras truncates at
    # two stddevs of a wider normal, so the sample stddev is still this.
    assert kernel.std() == pytest.approx(np.sqrt(2 / (784 + 300)), rel=0.02)
    assert abs(kernel.mean()) < 1e-3
    for layer in model.layers[2:]:
        np.testing.assert_array_equal(_numpy(layer.bias), 0.0)


@pytest.mark.parametrize(("name", "input_shape"), CASES)
def test_weight_decay_regularizes_every_kernel(name, input_shape):
    plain = zoo.build(name, input_shape, NUM_CLASSES, seed=0)
    decayed = zoo.build(
        name, input_shape, NUM_CLASSES, weight_decay=1e-4, seed=0
    )

    assert not plain.losses
    assert len(decayed.losses) == len(_kernels(decayed))


def test_weight_decay_loss_is_l2_of_kernels():
    model = zoo.build(
        "lenet_300_100", MNIST, NUM_CLASSES, weight_decay=5e-4, seed=0
    )

    total = sum(float(_numpy(x)) for x in model.losses)

    expected = 5e-4 * sum(
        float(np.sum(np.square(k))) for k in _kernels(model).values()
    )
    assert total == pytest.approx(expected, rel=1e-5)


def test_unknown_name_lists_known_names():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Unknown model `name`. Received: name='resnet50'. Known names: "
            "['conv2', 'conv4', 'conv6', 'lenet_300_100', 'mnist1d_cnn', "
            "'mnist1d_lottery_mlp', 'mnist1d_mlp', 'resnet20', 'vgg19', "
            "'vit_tiny']"
        ),
    ):
        zoo.build("resnet50", CIFAR, NUM_CLASSES)


@pytest.mark.parametrize("name", ["conv2", "vgg19", "resnet20"])
def test_convolutional_model_rejects_flat_input(name):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`input_shape` must be (height, width, channels) for a "
            "convolutional model. Received: input_shape=(784,)"
        ),
    ):
        zoo.build(name, (784,), NUM_CLASSES)


def test_lenet_accepts_flat_input():
    model = zoo.build("lenet_300_100", (784,), NUM_CLASSES)
    assert model.count_params() == 266_610


@pytest.mark.parametrize(
    "input_shape", [(), (28, 0, 1), (28.0, 28, 1), (28, None, 1), 784]
)
def test_rejects_bad_input_shape(input_shape):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`input_shape` must be a non-empty tuple of positive ints. "
            f"Received: input_shape={input_shape!r}"
        ),
    ):
        zoo.build("lenet_300_100", input_shape, NUM_CLASSES)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True])
def test_rejects_bad_num_classes(num_classes):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`num_classes` must be a positive int. "
            f"Received: num_classes={num_classes!r}"
        ),
    ):
        zoo.build("lenet_300_100", MNIST, num_classes)


def test_rejects_negative_weight_decay():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`weight_decay` must be >= 0. Received: weight_decay=-0.1"
        ),
    ):
        zoo.build("lenet_300_100", MNIST, NUM_CLASSES, weight_decay=-0.1)


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_rejects_bad_seed(seed):
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"`seed` must be None or an int >= 0. Received: seed={seed!r}"
        ),
    ):
        zoo.build("lenet_300_100", MNIST, NUM_CLASSES, seed=seed)


# The MNIST-1D models (Greydanus, 2020): PyTorch's parameter counts.
@pytest.mark.parametrize(
    ("name", "count"),
    [
        # 40*100+100 + 100*100+100 + 100*10+10
        ("mnist1d_mlp", 15_210),
        # 40*500+500 + 500*500+500 + 500*10+10
        ("mnist1d_lottery_mlp", 276_010),
        # (1*5+1)*25 + 2 * (25*3+1)*25 + 25*5*10+10
        ("mnist1d_cnn", 5_210),
    ],
)
def test_mnist1d_models_have_the_papers_parameter_counts(name, count):
    model = zoo.build(name, MNIST1D, NUM_CLASSES, seed=0)
    assert model.count_params() == count
    x = np.random.default_rng(0).random((3, *MNIST1D), np.float32)
    assert model(x).shape == (3, NUM_CLASSES)


@pytest.mark.parametrize("name", MNIST1D_MODELS)
def test_mnist1d_models_are_initialized_as_pytorch_does(name):
    # Kernels and biases in U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded.
    model = zoo.build(name, MNIST1D, NUM_CLASSES, seed=0)
    again = zoo.build(name, MNIST1D, NUM_CLASSES, seed=0)
    for layer, same in zip(model.layers, again.layers, strict=True):
        if not layer.weights:
            continue
        kernel, bias = _numpy(layer.kernel), _numpy(layer.bias)
        limit = 1 / np.sqrt(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= limit
        assert np.abs(kernel).max() > 0.9 * limit  # uniform, not narrower
        assert np.abs(bias).max() <= limit and np.any(bias != 0)
        np.testing.assert_array_equal(bias, _numpy(same.bias))


def test_only_the_lottery_mlp_prunes_biases():
    lottery = zoo.build("mnist1d_lottery_mlp", MNIST1D, NUM_CLASSES)
    for layer in lottery.layers:
        if isinstance(layer, keras.layers.Dense):
            assert isinstance(layer, zoo.BiasPrunableDense)
            assert layer.get_prunable_weights() == [layer.kernel, layer.bias]
    mlp = zoo.build("mnist1d_mlp", MNIST1D, NUM_CLASSES)
    assert not any(isinstance(layer, zoo.BiasPrunableDense)
                   for layer in mlp.layers)


def test_mnist1d_cnn_rejects_image_input():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`input_shape` must be (length, channels) for a 1-D "
            "convolutional model. Received: input_shape=(28, 28, 1)"
        ),
    ):
        zoo.build("mnist1d_cnn", MNIST, NUM_CLASSES)

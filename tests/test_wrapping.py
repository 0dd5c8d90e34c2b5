"""Tests of wrap, strip, the prunable registry and .keras round trips."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.core import masking
from keras_lottery.core import prunable


def mlp(name="mlp"):
    inputs = keras.Input((12,))
    x = keras.layers.Dense(16, activation="relu", name="fc1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dense(8, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(3, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def data(n=8, shape=(12,), seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(
        np.float32)


def wrappers(model):
    return {w.name: w for w in model._flatten_layers()
            if isinstance(w, masking.MaskedWrapper)}


def test_wrap_keeps_outputs_names_and_weights():
    model = mlp()
    wrapped = keras_lottery.wrap(model)
    x = data()
    np.testing.assert_array_equal(model(x), wrapped(x))
    assert [layer.name for layer in wrapped.layers] == [
        layer.name for layer in model.layers]
    found = wrappers(wrapped)
    assert set(found) == {"fc1", "bn", "fc2", "output"}
    assert not found["bn"].masks  # normalization: rewind copies only
    assert set(keras_lottery.get_masks(wrapped)) == {
        "fc1/kernel", "fc2/kernel", "output/kernel"}
    assert wrapped is not model and model.get_layer("fc1").kernel is not (
        found["fc1"].layer.kernel)


def test_wrap_sequential_and_nested_models():
    inner = keras.Sequential([keras.layers.Dense(6, name="inner_fc")],
                             name="inner")
    seq = keras.Sequential([keras.Input((5,)), keras.layers.Dense(
        4, name="a"), inner, keras.layers.Dense(2, name="b")])
    wrapped = keras_lottery.wrap(seq)
    assert isinstance(wrapped, keras.Sequential)
    assert set(keras_lottery.get_masks(wrapped)) == {
        "a/kernel", "inner_fc/kernel", "b/kernel"}
    x = data(shape=(5,))
    np.testing.assert_allclose(seq(x), wrapped(x), atol=1e-6)


@pytest.mark.parametrize("layers,expected", [
    (["fc1"], {"fc1/kernel"}),
    ("output", {"output/kernel"}),
    ([keras.layers.Dense], {"fc1/kernel", "fc2/kernel", "output/kernel"}),
    (lambda layer: layer.name != "output", {"fc1/kernel", "fc2/kernel"}),
])
def test_wrap_selects_layers(layers, expected):
    wrapped = keras_lottery.wrap(mlp(), layers=layers)
    assert set(keras_lottery.get_masks(wrapped)) == expected
    # Unselected layers with weights are still wrapped, for rewinding.
    assert set(wrappers(wrapped)) == {"fc1", "bn", "fc2", "output"}


def test_wrap_errors():
    model = mlp()
    with pytest.raises(ValueError, match=r"`layers` names a layer that is "
                       r"not in the model: 'fc9'.*Received: layers=\['fc9'\]"):
        keras_lottery.wrap(model, layers=["fc9"])
    with pytest.raises(ValueError, match=r"Layer 'bn' of class "
                       r"BatchNormalization cannot be pruned"):
        keras_lottery.wrap(model, layers=["bn"])
    with pytest.raises(ValueError, match=r"`model` has no prunable layer"):
        keras_lottery.wrap(model, layers=lambda layer: False)
    norm_only = keras.Sequential([keras.Input((3,)),
                                  keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match=r"`model` has no prunable layer"):
        keras_lottery.wrap(norm_only)
    wrapped = keras_lottery.wrap(model)
    with pytest.raises(ValueError, match=r"`model` is already wrapped"):
        keras_lottery.wrap(wrapped)
    with pytest.raises(ValueError, match=r"`model` must be a keras.Model. "
                       r"Received: model=3"):
        keras_lottery.wrap(3)


def test_subclassed_model_gets_clear_error_and_manual_wrappers_work():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = masking.MaskedWrapper(keras.layers.Dense(4))
            self.out = masking.MaskedWrapper(keras.layers.Dense(2))

        def call(self, x):
            return self.out(self.fc(x))

    net = Net()
    net(data(shape=(3,)))
    with pytest.raises(ValueError, match=r"`wrap` supports Sequential and "
                       r"Functional models.*Received: model of class Net"):
        keras_lottery.wrap(net)
    keras_lottery.prune(net, 0.5)
    assert keras_lottery.sparsity(net)["total"] == pytest.approx(
        (6 + 4) / 20)


def test_wrapper_argument_errors():
    with pytest.raises(ValueError, match=r"of class LayerNormalization has "
                       r"no prunable weights. Supported layers: .*Dense"):
        masking.MaskedWrapper(keras.layers.LayerNormalization())
    wrapper = masking.MaskedWrapper(keras.layers.Dense(2))
    with pytest.raises(ValueError, match=r"`layer` is already a "
                       r"MaskedWrapper"):
        masking.MaskedWrapper(wrapper)


def _layer_cases():
    return [
        (keras.layers.Dense(4), (5,)),
        (keras.layers.EinsumDense("ab,bc->ac", output_shape=4,
                                  bias_axes="c"), (5,)),
        (keras.layers.Conv1D(3, 2), (6, 2)),
        (keras.layers.Conv2D(3, 2), (5, 5, 2)),
        (keras.layers.Conv3D(3, 2), (4, 4, 4, 2)),
        (keras.layers.Conv1DTranspose(3, 2), (6, 2)),
        (keras.layers.Conv2DTranspose(3, 2), (5, 5, 2)),
        (keras.layers.Conv3DTranspose(3, 2), (4, 4, 4, 2)),
        (keras.layers.DepthwiseConv1D(2), (6, 3)),
        (keras.layers.DepthwiseConv2D(2), (5, 5, 3)),
        (keras.layers.SeparableConv1D(4, 2), (6, 3)),
        (keras.layers.SeparableConv2D(4, 2), (5, 5, 3)),
    ]


@pytest.mark.parametrize("layer,shape", _layer_cases(),
                         ids=lambda c: c.__class__.__name__)
def test_every_registered_layer_prunes_and_strips(layer, shape):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer(inputs))
    wrapped = keras_lottery.wrap(model)
    keras_lottery.prune(wrapped, 0.5)
    expected = prunable._REGISTRY[type(layer)]
    masks = keras_lottery.get_masks(wrapped)
    assert sorted(k.split("/")[1] for k in masks) == sorted(expected)
    x = data(shape=shape)
    stripped = keras_lottery.strip(wrapped)
    np.testing.assert_allclose(stripped(x), wrapped(x), atol=1e-5)
    for mask in masks.values():
        assert mask.sum() == pytest.approx(mask.size / 2, abs=0.5)


def test_embedding_is_prunable():
    inputs = keras.Input((4,), dtype="int32")
    x = keras.layers.Embedding(10, 3, name="emb")(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    wrapped = keras_lottery.wrap(model)
    keras_lottery.prune(wrapped, 0.5)
    ids = np.arange(8).reshape(2, 4)
    np.testing.assert_allclose(keras_lottery.strip(wrapped)(ids),
                               wrapped(ids))
    assert keras_lottery.sparsity(wrapped)["emb/embeddings"] == 0.5


class Scaled(keras.layers.Layer):
    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), name="scale",
                                     initializer="ones")

    def call(self, x):
        return x * self.scale


class ScaledWithMethod(Scaled):
    def get_prunable_weights(self):
        return [self.scale]


def test_custom_layers_register_or_define_method():
    with pytest.raises(ValueError, match="no prunable weights"):
        masking.MaskedWrapper(Scaled())
    masking.MaskedWrapper(ScaledWithMethod())  # the method is enough
    keras_lottery.register_prunable(Scaled, ["scale"])
    try:
        inputs = keras.Input((6,))
        model = keras.Model(inputs, Scaled(name="s")(inputs))
        wrapped = keras_lottery.wrap(model)
        assert list(keras_lottery.get_masks(wrapped)) == ["s/scale"]
    finally:
        del prunable._REGISTRY[Scaled]


def test_register_errors():
    with pytest.raises(ValueError, match=r"`layer_class` must be a subclass"
                       r" of keras.layers.Layer. Received: layer_class=3"):
        keras_lottery.register_prunable(3, ["kernel"])
    with pytest.raises(ValueError, match=r"`weight_names` must be a "
                       r"non-empty sequence"):
        keras_lottery.register_prunable(Scaled, [])


def test_keras_file_round_trips_masks_and_rewind_point(tmp_path):
    wrapped = keras_lottery.wrap(mlp())
    keras_lottery.prune(wrapped, 0.5, fractions={"output": 0.25})
    for variable in wrapped.trainable_weights:  # weights != rewind point
        variable.assign(variable + 1.0)
    path = str(tmp_path / "m.keras")
    wrapped.save(path)
    loaded = keras.models.load_model(path)  # safe_mode on: the default
    assert len(loaded.weights) == len(wrapped.weights)
    for a, b in zip(wrapped.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for key, mask in keras_lottery.get_masks(wrapped).items():
        np.testing.assert_array_equal(mask,
                                      keras_lottery.get_masks(loaded)[key])
    keras_lottery.rewind(loaded)
    keras_lottery.rewind(wrapped)
    for a, b in zip(wrapped.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_stripped_model_loads_without_keras_lottery(tmp_path):
    wrapped = keras_lottery.wrap(mlp())
    keras_lottery.prune(wrapped, 0.8)
    stripped = keras_lottery.strip(wrapped)
    assert not wrappers(stripped)
    path = str(tmp_path / "plain.keras")
    stripped.save(path)
    x = data()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.asarray(wrapped(x)))
    code = (
        "import sys; sys.modules['keras_lottery'] = None\n"
        "import keras, numpy as np\n"
        f"m = keras.models.load_model({path!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"y = np.load({str(tmp_path / 'y.npy')!r})\n"
        "np.testing.assert_allclose(m(x), y, atol=1e-6)\n"
        "k = m.get_layer('fc1').kernel.numpy()\n"
        "assert abs((k == 0).mean() - 0.8) < 0.01, (k == 0).mean()\n"
        "print('OK')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=env, cwd=str(tmp_path),
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout

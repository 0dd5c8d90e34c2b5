"""`keras_lottery.shrink` removes dead attention heads.

A small Vision Transformer made of plain Keras layers (Dense patch
embedding, MultiHeadAttention, LayerNormalization, a Dense MLP, residual
adds) loses its pruned heads and MLP neurons; so do KerasHub's blocks,
rebuilt with fewer heads in their attention sublayers (`block_heads`).
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import test_keras_hub

import keras_lottery
from keras_lottery.pruning import block_heads
from keras_lottery.pruning import heads
from keras_lottery.serving import artifacts
from keras_lottery.serving import export

_IMAGE, _PATCH, _DIM, _HEADS, _MLP = 16, 4, 16, 4, 32


def _vit(depth=2, classes=10):
    """A ViT of plain Keras layers: 16 patches of 4x4x3, width 16, 4 heads
    of size 4, MLP width 32."""
    side = _IMAGE // _PATCH
    inputs = keras.Input((_IMAGE, _IMAGE, 3), name="image")
    x = keras.layers.Reshape((side, _PATCH, side, _PATCH, 3))(inputs)
    x = keras.layers.Permute((1, 3, 2, 4, 5))(x)
    x = keras.layers.Reshape((side * side, _PATCH * _PATCH * 3))(x)
    x = keras.layers.Dense(_DIM, name="embed")(x)
    for i in range(depth):
        y = keras.layers.LayerNormalization(name=f"norm{i}a")(x)
        y = keras.layers.MultiHeadAttention(
            _HEADS, _DIM // _HEADS, name=f"attention{i}")(y, y)
        x = keras.layers.Add(name=f"residual{i}a")([x, y])
        y = keras.layers.LayerNormalization(name=f"norm{i}b")(x)
        y = keras.layers.Dense(_MLP, activation="gelu", name=f"mlp{i}a")(y)
        y = keras.layers.Dense(_DIM, name=f"mlp{i}b")(y)
        x = keras.layers.Add(name=f"residual{i}b")([x, y])
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(x))


def _randomise(model, seed=0):
    """Every weight random (biases and norms too), so a dead head's query,
    key and value biases are not 0."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))


def _images(seed=1):
    return np.random.default_rng(seed).normal(
        size=(4, _IMAGE, _IMAGE, 3)).astype("float32")


def _shrink(model):
    """`shrink(model)` and its warnings' texts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = keras_lottery.shrink(model)
    return small, [str(w.message) for w in caught
                   if "shrink" in str(w.message)]


def _assert_close(got, want):
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
        rtol=artifacts.TOLERANCE, atol=artifacts.TOLERANCE)


def _attention(model):
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.MultiHeadAttention)]


def test_a_vit_sheds_its_pruned_heads(tmp_path):
    keras.utils.set_random_seed(0)
    dense = _vit()
    _randomise(dense)
    model = keras_lottery.wrap(dense)
    keras_lottery.prune(model, 0.5, granularity="head")
    plain = keras_lottery.strip(model)
    small, caught = _shrink(model)
    assert not [w for w in caught if "heads" in w], caught
    x = _images()
    _assert_close(small(x), plain(x))
    per_head = 0
    for old, new in zip(_attention(plain), _attention(small)):
        assert (old.num_heads, new.num_heads) == (_HEADS, _HEADS // 2)
        assert (new.key_dim, new.value_dim) == (old.key_dim, old.value_dim)
        assert new.query_dense.kernel.shape == (_DIM, _HEADS // 2,
                                                _DIM // _HEADS)
        assert new.output_dense.kernel.shape == (_HEADS // 2,
                                                 _DIM // _HEADS, _DIM)
        # Per head: query, key, value kernels and biases, output rows.
        per_head = 3 * (_DIM + 1) * (_DIM // _HEADS) + (_DIM // _HEADS) * _DIM
    assert small.count_params() == plain.count_params() - 2 * 2 * per_head
    path = str(tmp_path / "small.keras")
    small.save(path)
    loaded = keras.saving.load_model(path)
    assert [a.num_heads for a in _attention(loaded)] == [2, 2]
    _assert_close(loaded(x), small(x))
    # `export_saved_model` re-reads the SavedModel and checks its outputs.
    export.export_saved_model(small, str(tmp_path / "serve"))


def test_a_vit_sheds_its_pruned_mlp_neurons():
    keras.utils.set_random_seed(0)
    dense = _vit()
    _randomise(dense)
    model = keras_lottery.wrap(dense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # attention, the residual stream
        keras_lottery.prune(model, 0.5, granularity="neuron")
    plain = keras_lottery.strip(model)
    small, _ = _shrink(model)
    _assert_close(small(_images()), plain(_images()))
    for i in range(2):
        assert small.get_layer(f"mlp{i}a").units == _MLP // 2
        assert small.get_layer(f"mlp{i}b").kernel.shape == (_MLP // 2, _DIM)
        # The residual stream is read through LayerNormalization: whole.
        assert small.get_layer(f"mlp{i}b").units == _DIM
    assert small.get_layer("embed").units == _DIM
    assert small.count_params() == plain.count_params() - 2 * (_MLP // 2) * (
        2 * _DIM + 1)


def _cross_attention(**kwargs):
    """Cross-attention: queries (6, 8), keys and values (5, 10), 4 heads
    with key_dim 3, value_dim 5, output 7."""
    query, value = keras.Input((6, 8)), keras.Input((5, 10))
    layer = keras.layers.MultiHeadAttention(
        4, 3, value_dim=5, output_shape=7, name="attention", **kwargs)
    model = keras.Model([query, value], layer(query, value))
    _randomise(model, seed=2)
    rng = np.random.default_rng(3)
    x = [rng.normal(size=(3, 6, 8)).astype("float32"),
         rng.normal(size=(3, 5, 10)).astype("float32")]
    return model, layer, x


@pytest.mark.parametrize("use_gate", [False, True])
def test_a_head_is_dead_when_its_values_or_output_rows_are_zero(use_gate):
    model, layer, x = _cross_attention(use_gate=use_gate)
    # Head 0: query and key all 0 (softmax of zeros is uniform: it still
    # averages its values); head 1: value kernel and bias 0; head 2: output
    # rows 0; head 3 untouched.
    for dense in (layer.query_dense, layer.key_dense):
        dense.kernel.assign(_zero_head(dense.kernel, 0, axis=1))
        dense.bias.assign(_zero_head(dense.bias, 0, axis=0))
    layer.value_dense.kernel.assign(
        _zero_head(layer.value_dense.kernel, 1, axis=1))
    layer.value_dense.bias.assign(_zero_head(layer.value_dense.bias, 1, 0))
    layer.output_dense.kernel.assign(
        _zero_head(layer.output_dense.kernel, 2, axis=0))
    np.testing.assert_array_equal(heads.dead_heads(layer),
                                  [False, True, True, False])
    small, caught = _shrink(model)
    assert not caught
    new = small.get_layer("attention")
    assert new.num_heads == 2
    assert (new.key_dim, new.value_dim) == (3, 5)
    _assert_close(small(x), model(x))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(new.value_dense.kernel),
        keras.ops.convert_to_numpy(layer.value_dense.kernel)[:, [0, 3]])
    # Head 0 does count: without its output rows the outputs differ.
    layer.output_dense.kernel.assign(
        _zero_head(layer.output_dense.kernel, 0, axis=0))
    assert np.abs(keras.ops.convert_to_numpy(model(x) - small(x))).max() > (
        1e-3)


def _zero_head(variable, head, axis):
    value = keras.ops.convert_to_numpy(variable).copy()
    index = [slice(None)] * value.ndim
    index[axis] = head
    value[tuple(index)] = 0
    return value


def test_a_layer_with_every_head_dead_keeps_one():
    model, layer, x = _cross_attention()
    layer.output_dense.kernel.assign(
        np.zeros(layer.output_dense.kernel.shape, "float32"))
    small, caught = _shrink(model)
    assert not caught
    assert small.get_layer("attention").num_heads == 1
    _assert_close(small(x), model(x))  # the output bias, whatever comes in


def test_attention_scores_as_an_output_keep_their_heads():
    query = keras.Input((6, 8))
    layer = keras.layers.MultiHeadAttention(2, 4, name="attention")
    out, scores = layer(query, query, return_attention_scores=True)
    model = keras.Model(query, [out, scores])
    layer.output_dense.kernel.assign(
        _zero_head(layer.output_dense.kernel, 0, axis=0))
    small, caught = _shrink(model)
    assert small.get_layer("attention").num_heads == 2
    assert caught == [
        "shrink keeps the attention heads of layer 'attention' (class "
        "MultiHeadAttention): its attention scores, one per head, are an "
        "output."]


def _attention_heads(model):
    return [sub.num_heads for layer in model.layers
            for sub in layer._flatten_layers(include_self=False)
            if isinstance(sub, keras.layers.MultiHeadAttention)]


@pytest.mark.parametrize("name", ["bert", "gpt2", "vit"])
def test_keras_hub_blocks_lose_their_dead_heads(name, tmp_path):
    keras.utils.set_random_seed(0)
    backbone, x = test_keras_hub.BACKBONES[name]()
    model = keras_lottery.wrap(backbone)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the weights heads do not apply to
        keras_lottery.prune(model, 0.5, granularity="head")
    plain = keras_lottery.strip(model)
    small, caught = _shrink(model)
    assert not [w for w in caught if "attention heads" in w], caught
    assert _attention_heads(plain) == [2, 2]
    assert _attention_heads(small) == [1, 1]  # one of 2 heads per block
    # Each head: query, key, value (16x8 + 8 each) and output (8x16) rows.
    assert plain.count_params() - small.count_params() == 2 * (
        3 * (16 * 8 + 8) + 8 * 16)
    _assert_close(test_keras_hub._sequence(small(x)),
                  test_keras_hub._sequence(plain(x)))
    if name == "vit":
        # KerasHub 0.32's patch embedding writes a config its constructor
        # refuses, so a plain model holding it does not load from .keras;
        # the SavedModel checks itself against `small` at batch 1 and 7.
        assert export.export_saved_model(small, str(tmp_path / "serve"))
        return
    # Dict inputs: a SavedModel through Keras' own export.
    small.export(str(tmp_path / "serve"), format="tf_saved_model",
                 verbose=False)
    served = tf.saved_model.load(str(tmp_path / "serve"))  # kept alive
    outputs = served.serve(
        {key: tf.constant(value, tf.int32) for key, value in x.items()})
    _assert_close(test_keras_hub._sequence(outputs),
                  test_keras_hub._sequence(small(x)))
    path = str(tmp_path / "small.keras")
    small.save(path)
    block_heads._CLASSES.clear()  # as in a new process
    loaded = keras.saving.load_model(path)
    assert _attention_heads(loaded) == [1, 1]
    _assert_close(test_keras_hub._sequence(loaded(x)),
                  test_keras_hub._sequence(small(x)))


def test_a_block_whose_attention_computes_otherwise_keeps_its_heads():
    class Gated(keras.layers.MultiHeadAttention):
        pass

    class Block(keras.layers.Layer):
        def build(self, shape):
            self.attention = Gated(2, 4, name="attention")
            self.attention.build(shape, shape)

        def call(self, x):
            return self.attention(x, x)

    inputs = keras.Input((6, 8))
    block = Block(name="block")
    model = keras.Model(inputs, block(inputs))
    block.attention.output_dense.kernel.assign(
        _zero_head(block.attention.output_dense.kernel, 0, axis=0))
    small, caught = _shrink(model)
    assert caught == [
        "shrink keeps the attention heads of layer 'block' (class Block): "
        "1 of 2 heads of its attention 'attention' are dead, but its class "
        "Gated may compute something else than independent heads."]
    assert small.count_params() == model.count_params()


def test_heads_inside_a_nested_model_stay_with_a_warning():
    query = keras.Input((6, 8))
    layer = keras.layers.MultiHeadAttention(2, 4, name="attention")
    inner = keras.Model(query, layer(query, query), name="inner")
    outer_input = keras.Input((6, 8))
    model = keras.Model(outer_input, keras.layers.Dense(3)(inner(
        outer_input)))
    layer.output_dense.kernel.assign(
        _zero_head(layer.output_dense.kernel, 0, axis=0))
    small, caught = _shrink(model)
    assert small.get_layer("inner").get_layer("attention").num_heads == 2
    assert ("shrink keeps the attention heads of layer 'inner' (class "
            "Functional): 1 of 2 heads of its attention 'attention' are "
            "dead, but nested models are not analysed.") in caught, caught

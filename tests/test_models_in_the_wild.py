"""The models people prune, through the whole lottery cycle.

Each model goes wrap -> fit -> prune -> rewind -> fit -> save/load ->
strip -> export, and every pruned weight is exactly 0 after every step.
Tiny models and a few steps each, so that the file runs in seconds.
"""

import functools
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.core import prunable
from keras_lottery.core import wrapping
from keras_lottery.engine import training
from keras_lottery.serving import export


def assert_pruned_weights_are_zero(model, masks):
    """Every weight whose mask entry is 0 is exactly 0 in `model`."""
    pruned = 0
    for wrapper in wrapping.wrapped_layers(model):
        for key, variable in zip(wrapper.mask_keys(),
                                 wrapper.masked_variables):
            value = keras.ops.convert_to_numpy(variable.value)
            assert np.all(value[masks[key] == 0] == 0), key
            pruned += int(np.sum(masks[key] == 0))
    assert pruned > 0


def assert_stripped_weights_are_zero(stripped, masks):
    """Every weight of the stripped model that a mask pruned is 0."""
    checked = set()
    for layer in stripped._flatten_layers(include_self=False):
        if isinstance(layer, keras.Model) or not prunable.is_prunable(layer):
            continue
        for name, weight in zip(prunable.weight_keys(layer),
                                prunable.prunable_weights(layer)):
            key = f"{layer.name}/{name}"
            if key in masks:
                value = keras.ops.convert_to_numpy(weight.value)
                assert np.all(value[masks[key] == 0] == 0), key
                checked.add(key)
    assert checked == set(masks)


def lottery_cycle(model, x, y, tmp_path, custom_objects=None):
    """Runs the cycle on a wrapped `model`; returns the loaded model."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    keras_lottery.prune(model, 0.5)
    masks = keras_lottery.get_masks(model)
    assert_pruned_weights_are_zero(model, masks)
    keras_lottery.rewind(model)
    assert_pruned_weights_are_zero(model, masks)
    model.compile("adam", loss)  # a fresh optimizer after rewinding
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert_pruned_weights_are_zero(model, masks)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects=custom_objects)
    assert {k: v.tolist() for k, v in
            keras_lottery.get_masks(loaded).items()} == {
        k: v.tolist() for k, v in masks.items()}
    assert_pruned_weights_are_zero(loaded, masks)
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)
    stripped = keras_lottery.strip(loaded)
    assert not wrapping.wrapped_layers(stripped)
    assert_stripped_weights_are_zero(stripped, masks)
    np.testing.assert_allclose(stripped.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-5)
    target = export.export_saved_model(loaded, str(tmp_path / "serve"))
    served = tf.saved_model.load(target).signatures["serving_default"]
    (name,) = served.structured_input_signature[1]
    logits = served(**{name: tf.constant(x)})["logits"].numpy()
    np.testing.assert_allclose(logits, model.predict(x, verbose=0),
                               atol=1e-4)
    return loaded


@keras.saving.register_keras_serializable(package="tests")
class SmallCNN(keras.Model):
    """A subclassed CNN that wraps its own layers, BatchNorm included."""

    def __init__(self, filters=4, num_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_classes = num_classes
        self.conv = keras_lottery.MaskedWrapper(
            keras.layers.Conv2D(filters, 3, name="conv"))
        # Not pruned, but rewound with the rest.
        self.norm = keras_lottery.MaskedWrapper(
            keras.layers.BatchNormalization(name="norm"), masked=False)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.hidden = [keras_lottery.MaskedWrapper(
            keras.layers.Dense(8, activation="relu", name=f"fc{i}"))
            for i in range(2)]
        self.out = keras_lottery.MaskedWrapper(
            keras.layers.Dense(num_classes, name="output"))

    def call(self, x, training=False):
        x = keras.ops.relu(self.norm(self.conv(x), training=training))
        x = self.pool(x)
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "num_classes": self.num_classes}


def test_subclassed_cnn_goes_through_the_cycle(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, size=32)
    model = SmallCNN()
    model(x[:1])
    keras_lottery.set_rewind_point(model)
    loaded = lottery_cycle(model, x, y, tmp_path)
    stripped = keras_lottery.strip(loaded)
    assert type(stripped) is SmallCNN
    assert [type(layer).__name__ for layer in stripped.hidden] == [
        "Dense", "Dense"]


def test_strip_of_a_subclassed_model_never_called_names_the_fix():
    with pytest.raises(ValueError, match=r"`strip` needs a subclassed model "
                       r"that has been called on data .*Received: model of "
                       r"class SmallCNN, built=False"):
        keras_lottery.strip(SmallCNN())


def test_functional_view_of_a_subclassed_model_shares_its_weights():
    model = SmallCNN()
    view = wrapping.functional(model, (8, 8, 1))
    assert view.inputs[0].shape == (None, 8, 8, 1)
    assert {id(v) for v in view.weights} == {id(v) for v in model.weights}


def transformer_block(vocabulary=40, length=6, width=8, classes=3):
    """Embedding + MultiHeadAttention + LayerNorm + Dense, functional."""
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary, width, name="embedding")(tokens)
    attended = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm")(x + attended)
    x = keras.layers.Dense(width, activation="relu", name="ffn")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(classes, name="output")(x))


def lstm_classifier(vocabulary=40, length=7, classes=2, bidirectional=False):
    tokens = keras.Input((length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary, 8, name="embedding")(tokens)
    if bidirectional:
        x = keras.layers.Bidirectional(
            keras.layers.GRU(5, return_sequences=True), name="bigru")(x)
        x = keras.layers.SimpleRNN(4, return_sequences=True, name="rnn")(x)
    x = keras.layers.LSTM(6, name="lstm")(x)
    return keras.Model(tokens, keras.layers.Dense(classes, name="output")(x))


def tokens(length, vocabulary=40, classes=3, n=32):
    rng = np.random.default_rng(0)
    return (rng.integers(0, vocabulary, size=(n, length)).astype("int32"),
            rng.integers(0, classes, size=n))


def test_transformer_block_goes_through_the_cycle(tmp_path):
    x, y = tokens(6)
    model = keras_lottery.wrap(transformer_block())
    keys = set(keras_lottery.get_masks(model))
    assert {f"attention/{name}_dense/kernel" for name in
            ("query", "key", "value", "output")} <= keys
    lottery_cycle(model, x, y, tmp_path)


def test_attention_left_out_of_the_selection_still_wraps():
    model = transformer_block()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # left out by choice: no warning
        wrapped = keras_lottery.wrap(model, layers=["output"])
    assert list(keras_lottery.get_masks(wrapped)) == ["output/kernel"]
    x, _ = tokens(6)
    np.testing.assert_allclose(wrapped.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    # Embedding, attention and ffn: every weight without a mask is counted.
    sparsity = keras_lottery.sparsity(wrapped)
    assert sparsity["unmasked_weights"] == sum(
        int(np.prod(w.shape)) for name in ("embedding", "attention", "ffn")
        for w in model.get_layer(name).weights)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_classifier_goes_through_the_cycle(bidirectional,
                                                     tmp_path):
    x, y = tokens(7, classes=2)
    model = keras_lottery.wrap(lstm_classifier(bidirectional=bidirectional))
    keys = set(keras_lottery.get_masks(model))
    assert {"lstm/cell/kernel", "lstm/cell/recurrent_kernel"} <= keys
    if bidirectional:
        assert {"bigru/forward_layer/cell/kernel",
                "bigru/backward_layer/cell/recurrent_kernel",
                "rnn/cell/recurrent_kernel"} <= keys
    assert "unmasked_weights" not in keras_lottery.sparsity(model)
    lottery_cycle(model, x, y, tmp_path)


def test_pruned_recurrent_weights_stay_zero_in_the_engine():
    x, y = tokens(7, classes=2, n=64)
    strategy = tf.distribute.get_strategy()
    model = keras_lottery.wrap(lstm_classifier(bidirectional=True))
    keras_lottery.prune(model, 0.6)
    masks = keras_lottery.get_masks(model)
    trainer = training.Trainer(model, strategy, keras.optimizers.Adam(0.01),
                               batch_size=16, jit_compile=False,
                               steps_per_loop=4)
    trainer.train(functools.partial(training.train_dataset, x, y, 16, 0), 8)
    assert_pruned_weights_are_zero(model, masks)


class Unrebuildable(keras.layers.Dense):
    """A layer that cannot be built again from its build config."""

    def build_from_config(self, config):
        raise NotImplementedError("this layer builds only when called")


class Opaque(keras.layers.Layer):
    """A layer with weights whose class is not prunable."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],),
                                     initializer="ones")

    def call(self, x):
        return x * self.scale


def test_layers_wrap_cannot_build_or_prune_are_named_in_one_warning_each():
    inputs = keras.Input((4,))
    x = Unrebuildable(3, name="odd")(inputs)
    x = Opaque(name="opaque")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrapped = keras_lottery.wrap(model)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert messages[0] == (
        "keras_lottery.wrap left these layers unwrapped (neither pruned nor "
        "rewound), since they cannot be built inside a MaskedWrapper: 'odd' "
        "(Unrebuildable, 15 weights: NotImplementedError: this layer builds "
        "only when called)")
    assert messages[1] == (
        "keras_lottery.wrap left these layers dense (rewound, never pruned),"
        " since their class is not prunable: 'opaque' (Opaque, 3 weights). "
        "`sparsity()` counts them under 'unmasked_weights'; "
        "`keras_lottery.register_prunable` makes a class prunable.")
    assert keras_lottery.sparsity(wrapped)["unmasked_weights"] == 15 + 3
    assert list(keras_lottery.get_masks(wrapped)) == ["output/kernel"]


def test_attention_wrapped_by_hand_must_be_built_first():
    wrapper = keras_lottery.MaskedWrapper(
        keras.layers.MultiHeadAttention(2, 4, name="mha"))
    x = np.zeros((1, 5, 8), "float32")
    with pytest.raises(ValueError, match=r"Layer 'mha' of class "
                       r"MultiHeadAttention cannot be built from one input "
                       r"shape .*build it before wrapping it, e.g. "
                       r"`layer.build\(query_shape, value_shape\)`. "
                       r"Received: input_shape=\(1, 5, 8\)"):
        wrapper(x, x)
    attention = keras.layers.MultiHeadAttention(2, 4, name="mha")
    attention.build((None, 5, 8), (None, 5, 8))
    wrapper = keras_lottery.MaskedWrapper(attention)
    np.testing.assert_allclose(wrapper(x, x), attention(x, x))
    assert len(wrapper.masks) == 4

"""The models people prune, through the whole lottery cycle.

Each model goes wrap -> fit -> prune -> rewind -> fit -> save/load ->
strip -> export, and every pruned weight is exactly 0 after every step.
Tiny models and a few steps each, so that the file runs in seconds.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery import export
from keras_lottery import wrapping


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
    weights = {w.path.rsplit("/", 2)[-2] + "/" + w.name: w
               for w in stripped.weights}
    for key, mask in masks.items():
        layer, name = key.rsplit("/", 1)
        value = keras.ops.convert_to_numpy(weights[f"{layer}/{name}"].value)
        assert np.all(value[mask == 0] == 0), key


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

"""KerasHub backbones, built small from their constructors (no preset is
downloaded), through the whole wrapping API.

A KerasHub backbone is a Functional model built in a subclass's
`__init__`, and its blocks (TransformerEncoder, TransformerDecoder,
ViTEncoder) are composite layers whose Dense, EinsumDense and attention
sublayers hold almost all the weights: `wrap` masks them without any
registration, `granularity="head"` prunes their attention heads.
"""

import os

import keras
import keras_hub
import numpy as np
import pytest

import keras_lottery
from keras_lottery.serving import export

_RNG = np.random.default_rng(0)


def _gpt2():
    model = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=12)
    x = {"token_ids": _RNG.integers(0, 50, (4, 12)),
         "padding_mask": np.ones((4, 12), "int32")}
    return model, x


def _bert():
    model = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=12)
    x = {"token_ids": _RNG.integers(0, 50, (4, 12)),
         "segment_ids": np.zeros((4, 12), "int32"),
         "padding_mask": np.ones((4, 12), "int32")}
    return model, x


def _vit():
    model = keras_hub.models.ViTBackbone(
        image_shape=(28, 28, 1), patch_size=7, num_layers=2, num_heads=2,
        hidden_dim=16, mlp_dim=32)
    return model, _RNG.normal(size=(4, 28, 28, 1)).astype("float32")


BACKBONES = {"gpt2": _gpt2, "bert": _bert, "vit": _vit}


def _sequence(outputs):
    return outputs["sequence_output"] if isinstance(outputs, dict) else (
        outputs)


def _assert_pruned_are_zero(model, masks):
    for wrapper in keras_lottery.wrapping.wrapped_layers(model):
        for key, variable in zip(wrapper.mask_keys(),
                                 wrapper.masked_variables):
            weight = keras.ops.convert_to_numpy(variable.value)
            assert np.all(weight[masks[key] == 0] == 0), key


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_a_backbone_wraps_prunes_trains_rewinds_saves_and_strips(
        name, tmp_path):
    keras.utils.set_random_seed(0)
    backbone, x = BACKBONES[name]()
    dense_out = _sequence(backbone(x))
    model = keras_lottery.wrap(backbone)
    np.testing.assert_array_equal(_sequence(model(x)), dense_out)
    masks = keras_lottery.get_masks(model)
    # Every block's attention and feed-forward kernels, through the
    # composite layers, without registration.
    assert sum("query" in key for key in masks) == 2, sorted(masks)
    assert sum("feedforward" in key or "/mlp/" in key for key in masks) == (
        4), sorted(masks)  # two feed-forward kernels in each of 2 blocks

    keras_lottery.prune(model, 0.5)
    keras_lottery.prune(model, 0.5, granularity="head")
    masks = keras_lottery.get_masks(model)
    query = [m for key, m in masks.items() if "query" in key][0]
    # One of the two heads is gone, whole (heads are axis 1 of the kernel).
    assert sorted(np.count_nonzero(query, axis=(0, 2)) == 0) == [False, True]
    _assert_pruned_are_zero(model, masks)

    outputs = model(x)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, keras.tree.map_structure(lambda t: np.ones_like(t) + 1,
                                          outputs), epochs=1, verbose=0)
    _assert_pruned_are_zero(model, masks)
    keras_lottery.rewind(model)
    _assert_pruned_are_zero(model, masks)

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    _assert_pruned_are_zero(loaded, masks)
    for key, mask in keras_lottery.get_masks(loaded).items():
        np.testing.assert_array_equal(mask, masks[key])
    np.testing.assert_allclose(_sequence(loaded(x)), _sequence(model(x)),
                               rtol=1e-6, atol=1e-6)
    plain = keras_lottery.strip(model)
    assert not keras_lottery.wrapping.wrapped_layers(plain)
    np.testing.assert_allclose(_sequence(plain(x)), _sequence(model(x)),
                               rtol=1e-6, atol=1e-6)


def test_a_vit_ticket_exports_as_a_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    backbone, x = _vit()
    model = keras_lottery.wrap(backbone)
    keras_lottery.prune(model, 0.5)
    target = export.export_saved_model(keras_lottery.strip(model),
                                       str(tmp_path / "serve"))
    assert os.path.isdir(target)


def test_an_untied_reversible_embedding_prunes_its_output_projection():
    layer = keras_hub.layers.ReversibleEmbedding(20, 8, tie_weights=False)
    tokens = keras.Input((5,), dtype="int32")
    hidden = layer(tokens)
    model = keras.Model(tokens, layer(hidden, reverse=True))
    wrapped = keras_lottery.wrap(model)
    assert sorted(keras_lottery.get_masks(wrapped)) == [
        f"{layer.name}/embeddings", f"{layer.name}/reverse_embeddings"]

"""The small Vision Transformer of the transformer structure study
(keras_lottery/models/vit.py, configs/vit_mnist.py): its shape, its
patches, seeds, a `.keras` round trip, and what each structure of the
study prunes and shrinks on it."""

import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from configs import vit_mnist
from keras_lottery.lottery import planning
from keras_lottery.lottery import run_config
from keras_lottery.models import zoo

MNIST = (28, 28, 1)


def _vit(seed=0):
    return zoo.build("vit_tiny", MNIST, 10, seed=seed)


def _wrapped(seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the tokens stay dense
        return keras_lottery.wrap(_vit(seed))


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_the_vit_has_the_issues_sizes():
    model = _vit()
    assert model.get_layer("patches").output.shape == (None, 16, 49)
    assert model.get_layer("tokens").output.shape == (None, 17, 64)
    attention = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert [(a.num_heads, a.key_dim) for a in attention] == [(4, 16)] * 4
    assert model.get_layer("block1_mlp1").units == 128
    assert model.count_params() == 139_018


def test_patches_are_7x7_tiles_in_reading_order():
    model = _vit()
    patches = keras.Model(model.input, model.get_layer("patches").output)
    image = np.arange(28 * 28, dtype="float32").reshape(1, 28, 28, 1)
    tiles = _numpy(patches(image))[0]
    for token, (row, col) in enumerate((r, c) for r in range(4)
                                       for c in range(4)):
        np.testing.assert_array_equal(
            tiles[token],
            image[0, 7 * row:7 * row + 7, 7 * col:7 * col + 7, 0].ravel())


def test_seeds_fix_every_weight_and_a_saved_vit_loads(tmp_path):
    a, b, c = _vit(0), _vit(0), _vit(1)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(_numpy(x), _numpy(y))
    assert not np.array_equal(_numpy(a.get_layer("block1_mlp1").kernel),
                              _numpy(c.get_layer("block1_mlp1").kernel))
    images = np.random.default_rng(0).random((3, *MNIST), np.float32)
    path = str(tmp_path / "vit.keras")
    a.save(path)
    np.testing.assert_allclose(_numpy(keras.models.load_model(path)(images)),
                               _numpy(a(images)), atol=1e-6)


def test_sides_not_multiples_of_the_patch_are_one_line():
    with pytest.raises(ValueError, match=r"multiples of 7 .*Received: "
                       r"input_shape=\(32, 32, 3\)"):
        zoo.build("vit_tiny", (32, 32, 3), 10)


def test_two_four_reaches_the_attention_kernels_and_spares_dense_layers():
    model = _wrapped()
    config = vit_mnist.get_config()
    config.prune.granularity = "2:4"
    config.prune.output_fraction_per_round = 0.0
    config.prune.dense_layers = ("patch_embed",)
    run_config.check_config(config)
    masks = keras_lottery.prune(
        model, 0.2, fractions=planning.layer_fractions(config.prune, model),
        granularity="2:4",
        granularities=planning.layer_granularities(config.prune, model))
    assert masks["patch_embed/kernel"].all() and masks["output/kernel"].all()
    # At most 2 of every 4 consecutive inputs: the model axis of query,
    # key and value, a head's dim of the output projection.
    query = masks["block1_attention/query_dense/kernel"]  # (64, 4, 16)
    assert (query.reshape(16, 4, 4, 16).sum(axis=1) == 2).all()
    out = masks["block1_attention/output_dense/kernel"]  # (4, 16, 64)
    assert (out.reshape(4, 4, 4, 64).sum(axis=2) == 2).all()
    mlp = masks["block3_mlp2/kernel"]  # (128, 64)
    assert (mlp.reshape(32, 4, 64).sum(axis=1) == 2).all()


def test_dense_layers_the_model_lacks_or_a_global_scope_are_one_line():
    config = vit_mnist.get_config()
    config.prune.dense_layers = ("patch_embd",)
    with pytest.raises(ValueError, match=r"`prune.dense_layers` must name "
                       r"wrapped layers .*Received: prune.dense_layers="
                       r"\('patch_embd',\)"):
        planning.pruning_plan(config, _wrapped())
    config.prune.scope = "global"
    with pytest.raises(ValueError, match=r"needs prune.scope='layerwise'"):
        run_config.check_config(config)
    config.prune.scope = "layerwise"
    config.prune.dense_layers = ("patch_embed", 3)
    with pytest.raises(ValueError, match=r"must be a tuple of layer names"):
        run_config.check_config(config)


@pytest.mark.parametrize("granularity,fraction,units", [
    # A quarter of each layer's 4 heads: 3 left in every attention layer.
    ("head", 0.25, {f"block{b}_attention": 3 for b in range(1, 5)}),
    # Half of each MLP's 128 neurons; the residual stream keeps its 64.
    ("neuron", 0.5, {**{f"block{b}_mlp1": 64 for b in range(1, 5)},
                     **{f"block{b}_mlp2": 64 for b in range(1, 5)},
                     "patch_embed": 64}),
])
def test_heads_and_mlp_neurons_prune_and_shrink_to_the_same_outputs(
        granularity, fraction, units):
    model = _wrapped()
    rng = np.random.default_rng(0)
    for variable in model.weights:  # biases away from 0, as after training
        if variable.path.endswith("bias"):
            variable.assign(rng.normal(0, 0.1, variable.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # what stays, named
        keras_lottery.prune(model, fraction, granularity=granularity,
                            granularities={"output": "weight"},
                            fractions={"output": 0.0})
        plain = keras_lottery.strip(model)
        small = keras_lottery.shrink(plain)
    images = rng.random((4, *MNIST), np.float32)
    np.testing.assert_allclose(_numpy(small(images)), _numpy(plain(images)),
                               atol=1e-5)
    for name, count in units.items():
        layer = small.get_layer(name)
        width = (layer.num_heads if isinstance(
            layer, keras.layers.MultiHeadAttention) else layer.units)
        assert width == count, name
    assert small.count_params() < plain.count_params()



def test_a_random_reinit_draws_every_weight_afresh():
    model = _wrapped()
    before = {v.path: _numpy(v) for v in model.weights}
    keras_lottery.reinitialize(model, seed=7)
    position = next(v for v in model.weights if v.path.endswith("position"))
    assert not np.array_equal(_numpy(position), before[position.path])
    assert abs(float(np.std(_numpy(position))) - 0.02) < 0.005


def test_wanda_scores_each_attention_kernel_by_its_own_inputs():
    # Each projection's inputs are recorded where it is called: the
    # query's are the block's normalised tokens, the output projection's
    # the heads' attention outputs, one norm per (head, dim).
    from keras_lottery.pruning import pruner
    model = _wrapped()
    rng = np.random.default_rng(0)
    x = rng.random((16, *MNIST), np.float32)
    y = rng.integers(0, 10, 16)
    plan = pruner.plan_pruning(model, 0.5, "activation", has_data=True)
    scores = pruner.score(model, plan, data=(x, y))
    plain = keras_lottery.strip(model)
    attention = plain.get_layer("block1_attention")
    tokens = _numpy(keras.Model(plain.input, plain.get_layer(
        "block1_norm1").output)(x))
    query = _numpy(attention.query_dense.kernel)
    norm = np.sqrt(np.square(tokens.astype(np.float64)).reshape(
        -1, 64).sum(0))
    np.testing.assert_allclose(
        scores["block1_attention/query_dense/kernel"],
        np.abs(query) * norm[:, None, None], rtol=1e-5)
    heads, _ = attention._compute_attention(
        attention.query_dense(tokens), attention.key_dense(tokens),
        attention.value_dense(tokens))
    heads = _numpy(heads).astype(np.float64)  # (batch, seq, 4, 16)
    norm = np.sqrt(np.square(heads).reshape(-1, 4, 16).sum(0))
    out = _numpy(attention.output_dense.kernel)  # (4, 16, 64)
    np.testing.assert_allclose(
        scores["block1_attention/output_dense/kernel"],
        np.abs(out) * norm[:, :, None], rtol=1e-4)
    # The MLP's second Dense reads the first's GELU outputs, not the
    # block's input.
    hidden = _numpy(keras.Model(plain.input, plain.get_layer(
        "block1_mlp1").output)(x)).astype(np.float64)
    norm = np.sqrt(np.square(hidden).reshape(-1, 128).sum(0))
    np.testing.assert_allclose(
        scores["block1_mlp2/kernel"],
        np.abs(_numpy(plain.get_layer("block1_mlp2").kernel)) * norm[:, None],
        rtol=1e-4)


def test_the_transformer_study_declares_its_cells_then_the_instability(
        tmp_path):
    from keras_lottery.studies import catalog
    from keras_lottery.studies import grid
    study = catalog.load("transformer", catalog.Options(
        workdir="/tmp/w", records=str(tmp_path), seeds=(0, 1),
        data_dir="/data"))
    names = [run.name for run in study.runs]
    cells = ("weight_magnitude", "weight_activation", "head_magnitude",
             "neuron_magnitude", "2-4_magnitude")
    for seed in (0, 1):
        assert [n for n in names if n in {
            f"vit_{cell}_seed{seed}" for cell in cells}] == [
                f"vit_{cell}_seed{seed}" for cell in cells]
    # The instability of seed 0's dense round, then of its weight cell's
    # sparsest round, come after seed 0's cells, before seed 1's: the
    # late-rewind cell waits for the first.
    instability = [
        [f"vit_instability_{round_}_k{k:05d}" for k in (0, 100, 500, 2000)]
        for round_ in ("dense_seed0_round00",
                       "weight_magnitude_seed0_round11")]
    at = names.index("vit_dense_seed1")
    assert names[at - 10:at] == [
        *instability[0], "vit_instability_dense_seed0_round00",
        *instability[1], "vit_instability_weight_magnitude_seed0_round11"]
    assert not any(n.startswith("vit_instability") for n in names[at:])
    assert not any("rewind" in name for name in names)  # not recorded yet
    runs = {run.name: run for run in study.runs}

    def flags(name):
        return [a for step in runs[name].steps
                if isinstance(step, grid.Command) for a in step.args]

    assert "--config.prune.dense_layers=patch_embed" in flags(
        "vit_2-4_magnitude_seed0")
    assert "--config.prune.granularity=2:4" in flags(
        "vit_2-4_magnitude_seed0")
    head = flags("vit_head_magnitude_seed0")
    assert "--config.prune.fraction_per_round=0.25" in head
    assert "--config.prune.num_rounds=3" in head
    assert "--config=configs/vit_mnist.py" in head
    assert "--rewind_steps=0,100,500,2000" in flags(
        "vit_instability_dense_seed0_round00")
    sparse = runs["vit_instability_weight_magnitude_seed0_round11_k00500"]
    assert [step.args for step in sparse.steps] == [(
        "-m", "binaries.instability",
        "--workdir=/tmp/w/vit/seed0/weight_magnitude", "--round=11",
        "--rewind_steps=500")]
    # It starts once the weight cell's run has its last round.
    assert [run.name for run in sparse.after] == [
        "vit_weight_magnitude_seed0"]
    assert str(tmp_path / "vit" / "instability" /
               "weight_magnitude_seed0_round11.json") in runs[
        "vit_instability_weight_magnitude_seed0_round11"].records


@pytest.mark.parametrize("stable_from, declared", [(100, True), (0, False)])
def test_the_weight_cell_reruns_with_late_rewinding_once_instability_picks_it(
        tmp_path, stable_from, declared):
    from keras_lottery.base import files
    from keras_lottery.studies import catalog
    from keras_lottery.studies import grid
    rows = [{"rewind_step": k, "instability": 0.05 if k < stable_from
             else 0.01, "stable": k >= stable_from}
            for k in (0, 100, 500, 2000)]
    files.write_json(str(tmp_path / "vit" / "instability" /
                         "dense_seed0_round00.json"), {"rows": rows})
    study = catalog.load("transformer", catalog.Options(
        workdir="/tmp/w", records=str(tmp_path), seeds=(0, 1),
        data_dir="/data"))
    names = [run.name for run in study.runs]
    rewound = [n for n in names if "rewind" in n]
    if not declared:
        assert rewound == []
        return
    # For each seed, last: the cell, then its controls at rounds 4, 8, 11
    # (a run per control round, then one that records the control).
    assert rewound[:1] + rewound[9:10] == ["vit_weight_magnitude_rewind_seed0",
                                          "vit_weight_magnitude_rewind_seed1"]
    assert names.index(rewound[0]) == names.index(
        "vit_instability_weight_magnitude_seed0_round11") + 1
    assert names.index(rewound[9]) > names.index("vit_2-4_magnitude_seed1")
    ticket = next(r for r in study.runs if r.name == rewound[0])
    # Round 0 is its own (it keeps W_100), not a copy of the dense run's.
    assert ticket.after == ()
    assert all(isinstance(step, grid.Command) for step in ticket.steps)
    assert "--config.prune.rewind_step=100" in ticket.steps[0].args
    assert str(tmp_path / "vit" / "weight_magnitude_rewind" / "seed0" /
               "summary.json") in ticket.records

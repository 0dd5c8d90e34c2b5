"""Pruning at initialisation: SNIP, GraSP and SynFlow
(keras_lottery.pruning.at_init).

Scores are checked against the papers' formulas computed independently
(closed forms, finite differences) on tiny networks; counts against the
rounding rule of IMP's rounds.
"""

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
import test_lottery

import keras_lottery
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.lottery import runner
from keras_lottery.pruning import at_init
from keras_lottery.pruning import criteria
from keras_lottery.pruning import pruner
from keras_lottery.pruning import selection


def mlp(bias=True, seed=0, sizes=(6, 5, 3), dtype="float32",
        activation="tanh"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), dtype=dtype)
    x = inputs
    for i, size in enumerate(sizes):
        last = i == len(sizes) - 1
        x = keras.layers.Dense(size, activation=None if last else activation,
                               use_bias=bias, dtype=dtype,
                               name="output" if last else f"fc{i + 1}")(x)
    return keras_lottery.wrap(keras.Model(inputs, x))


def batches(count=2, size=8, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, 4)).astype(dtype),
             rng.integers(0, 3, size)) for _ in range(count)]


def kernels(model):
    return [keras.ops.convert_to_numpy(model.get_layer(n).layer.kernel.value)
            for n in ("fc1", "fc2", "output")]


def test_synflow_is_the_path_product_of_absolute_weights():
    # Without biases, R = 1' |W1| |W2| |W3| 1 (the tanh of the |w| net is
    # not the identity, so use a linear net: activation=None in between).
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(6, use_bias=False, name="fc1")(inputs)
    x = keras.layers.Dense(3, use_bias=False, name="output")(x)
    model = keras_lottery.wrap(keras.Model(inputs, x))
    plan = pruner.plan_pruning(model, 0.5, method="synflow")
    scores = pruner.score(model, plan)
    w1, w2 = (np.abs(keras.ops.convert_to_numpy(
        model.get_layer(n).layer.kernel.value)).astype(np.float64)
        for n in ("fc1", "output"))
    np.testing.assert_allclose(scores["fc1/kernel"],
                               w1 * (w2 @ np.ones(3))[None, :], rtol=1e-5)
    np.testing.assert_allclose(scores["output/kernel"],
                               w2 * (np.ones(4) @ w1)[:, None], rtol=1e-5)


def test_grasp_is_weight_times_hessian_gradient():
    model = mlp(dtype="float64")
    data = batches(dtype=np.float64)
    x = np.concatenate([b[0] for b in data])
    y = np.concatenate([b[1] for b in data])
    variables = [model.get_layer(n).layer.kernel
                 for n in ("fc1", "fc2", "output")]

    def gradient(values):
        with keras.StatelessScope(list(zip(variables, values))), (
                tf.GradientTape()) as tape:
            tape.watch(values)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                y, model(x) / 200.0, from_logits=True))
        return tape.gradient(loss, values)

    w = [tf.convert_to_tensor(v.value) for v in variables]
    g = gradient(w)
    # Hg by central differences of the gradient along g.
    eps = 1e-3 / float(tf.sqrt(sum(tf.reduce_sum(t * t) for t in g)))
    plus = gradient([a + eps * b for a, b in zip(w, g)])
    minus = gradient([a - eps * b for a, b in zip(w, g)])
    plan = pruner.plan_pruning(model, 0.5, method="grasp", has_data=True)
    scores = pruner.score(model, plan, data=data)
    for name, a, p, m in zip(("fc1", "fc2", "output"), w, plus, minus):
        hg = (p.numpy() - m.numpy()) / (2 * eps)
        want = a.numpy() * hg
        np.testing.assert_allclose(scores[f"{name}/kernel"], want,
                                   rtol=1e-3, atol=1e-4 * np.abs(want).max())
    # Not a rescaled magnitude or gradient: signs differ from both.
    assert np.any(scores["fc1/kernel"] < 0)


def test_snip_is_connection_sensitivity():
    model, data = mlp(), batches()
    snip = pruner.score(model, pruner.plan_pruning(
        model, 0.5, method="snip", has_data=True), data=data)
    gradient = pruner.score(model, pruner.plan_pruning(
        model, 0.5, method="gradient", has_data=True), data=data)
    for key in snip:
        np.testing.assert_array_equal(snip[key], gradient[key])


def test_scoring_once_prunes_as_repeated_rounds_would():
    # Magnitude scores do not change as weights are pruned, so pruning at
    # init to round 3's sparsity equals 3 rounds of pruning W0.
    fractions = {"output": 0.1}
    a, b = mlp(), mlp()
    for _ in range(3):
        pruner.prune(a, 0.2, fractions=fractions)
    plan = pruner.plan_pruning(b, 0.2, fractions=fractions)
    got = at_init.prune(b, plan, rounds=3)
    want = state.get_masks(a)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_synflow_iterates_to_exactly_the_rounds_counts(scope, monkeypatch):
    model = mlp(sizes=(40, 30, 3))
    sizes = {k: int(m.size) for k, m in state.get_masks(model).items()}
    calls = []
    score = pruner.score
    monkeypatch.setattr(pruner, "score",
                        lambda *a, **k: calls.append(1) or score(*a, **k))
    fractions = {"output": 0.1} if scope == "layerwise" else None
    plan = pruner.plan_pruning(model, 0.2, method="synflow", scope=scope,
                              fractions=fractions)
    masks = at_init.prune(model, plan, rounds=7)
    assert len(calls) == 100
    if scope == "layerwise":
        for key, size in sizes.items():
            rate = 0.1 if key.startswith("output") else 0.2
            assert int(masks[key].sum()) == selection.remaining_after(
                size, rate, 7), key
    else:
        total = sum(int(m.sum()) for m in masks.values())
        assert total == selection.remaining_after(sum(sizes.values()), 0.2, 7)
    # Pruned weights are zero in the model too.
    for key, mask in masks.items():
        layer = model.get_layer(key.split("/")[0]).layer
        assert np.all(keras.ops.convert_to_numpy(layer.kernel.value)[
            mask == 0] == 0)


def test_synflow_differs_from_one_shot_synflow(monkeypatch):
    # Rescoring matters: 100 iterations keep other weights than one.
    monkeypatch.setattr(criteria, "_REGISTRY", dict(criteria._REGISTRY))
    criteria.register("synflow_once", criteria.get("synflow").weights,
                      needs=("synflow",))
    found = {}
    for method in ("synflow", "synflow_once"):
        model = mlp(sizes=(40, 30, 3))
        found[method] = at_init.prune(model, pruner.plan_pruning(
            model, 0.2, method=method, scope="global"), rounds=15)
    assert sum(m.sum() for m in found["synflow"].values()) == sum(
        m.sum() for m in found["synflow_once"].values())
    assert any(not np.array_equal(found["synflow"][k], found[
        "synflow_once"][k]) for k in found["synflow"])


def test_structured_synflow_prunes_whole_neurons_to_the_count():
    model = mlp(sizes=(40, 30, 3))
    plan = pruner.plan_pruning(model, 0.2, method="synflow",
                              granularity="neuron",
                              granularities={"output": "weight"},
                              fractions={"output": 0.0})
    masks = at_init.prune(model, plan, rounds=3)
    for name, units in (("fc1", 40), ("fc2", 30)):
        alive = selection.alive_units(masks[f"{name}/kernel"], 1)
        assert int(alive.sum()) == selection.remaining_after(units, 0.2, 3)


@pytest.mark.parametrize("method", ["synflow", "grasp"])
def test_overflowing_scores_are_an_error_naming_the_layer(method):
    model = mlp(sizes=(6, 5, 3), activation="relu")
    kernel = model.get_layer("fc2").layer.kernel
    kernel.assign(np.full(kernel.shape, 1e38, np.float32))
    plan = pruner.plan_pruning(model, 0.2, method=method, has_data=True)
    before = state.get_masks(model)
    with pytest.raises(ValueError, match=(
            rf"^The scores criterion '{method}' gave '(fc1|fc2|output)/"
            r"(kernel|bias)' hold NaN or inf; refusing to prune with them.$")):
        at_init.prune(model, plan, rounds=1, data=batches())
    for key, mask in state.get_masks(model).items():
        np.testing.assert_array_equal(mask, before[key])


def test_synflow_needs_no_data_and_grasp_does():
    model = mlp()
    pruner.plan_pruning(model, 0.2, method="synflow")  # no data: fine
    with pytest.raises(ValueError, match=r"Criterion 'grasp' reads "
                       r"hessian_gradient on training batches"):
        pruner.plan_pruning(model, 0.2, method="grasp")


def test_a_run_prunes_at_init_and_trains(mnist_dir, tmp_path):
    config = test_lottery.smoke_config(
        mnist_dir, prune__mode="one_shot", prune__at_init=True,
        prune__method="grasp", prune__one_shot_rounds=(2,),
        prune__score_batches=2)
    workdir = str(tmp_path / "grasp")
    summary = runner.run(config, workdir)
    assert [e["round"] for e in summary] == [0, 2]
    masks = files.read_arrays(paths.masks_file(workdir, 2))
    for key, size in test_lottery.SIZES.items():
        rate = 0.1 if key.startswith("output") else 0.2
        assert int(masks[key].sum()) == selection.remaining_after(size, rate, 2)
    # The ticket is made at W0: it costs its own training only.
    assert summary[1]["ticket_train_steps"] == 300
    assert summary[1]["cumulative_train_steps"] == 600
    assert summary[1]["test_accuracy"] > 0.8
    # Not the one-shot ticket of the trained weights' magnitudes.
    dense = files.read_arrays(paths.masks_file(workdir, 0))
    assert np.all(masks["fc1/kernel"] <= dense["fc1/kernel"])


@pytest.mark.parametrize("overrides, message", [
    ({"prune__at_init": True},
     r"^`prune.at_init` needs prune.mode='one_shot': .* Received: "
     r"prune.at_init=True, prune.mode='iterative'$"),
    ({"prune__mode": "one_shot", "at_init": "yes"},
     r"^`prune.at_init` must be True or False. Received: "
     r"prune.at_init='yes'$"),
    ({"prune__method": "snap"}, r"^`prune.method` must be one of .*'snip', "
     r"'grasp', 'synflow'. Received: prune.method='snap'$"),
])
def test_bad_at_init_configs_are_refused_writing_nothing(
        mnist_dir, tmp_path, overrides, message):
    workdir = tmp_path / "w"
    at_init_value = overrides.pop("at_init", None)
    config = test_lottery.smoke_config(mnist_dir, **overrides)
    if at_init_value is not None:  # a value of another type, from a file
        config.prune = ml_collections.ConfigDict(
            {**config.prune.to_dict(), "at_init": at_init_value})
    with pytest.raises(ValueError, match=message):
        runner.run(config, str(workdir))
    assert not workdir.exists()


def test_shuffled_masks_keep_each_layers_count_anywhere():
    units = np.zeros((6, 4), np.float32)
    units[:, [0, 2]] = 1.0  # two whole neurons
    masks = {"a/kernel": units,
             "b/kernel": (np.arange(50).reshape(5, 10) % 3 == 0)
             .astype(np.float32)}
    shuffled = selection.shuffle_masks(masks, seed=1)
    for key, mask in masks.items():
        assert shuffled[key].shape == mask.shape
        assert shuffled[key].sum() == mask.sum()
        assert set(np.unique(shuffled[key])) <= {0.0, 1.0}
        assert not np.array_equal(shuffled[key], mask)
    # A structured mask becomes unstructured: not whole columns any more.
    assert set(shuffled["a/kernel"].sum(0)) != {0.0, 6.0}
    again = selection.shuffle_masks(masks, seed=1)
    for key in masks:
        np.testing.assert_array_equal(again[key], shuffled[key])


def test_at_init_with_a_rewind_step_prunes_the_dense_weights_at_k(
        mnist_dir, tmp_path):
    config = test_lottery.smoke_config(
        mnist_dir, prune__mode="one_shot", prune__at_init=True,
        prune__one_shot_rounds=(1,), prune__rewind_step=100)
    workdir = str(tmp_path / "at_k")
    runner.run(config, workdir)
    got = files.read_arrays(paths.masks_file(workdir, 1))
    masks = {}
    for rewound in (True, False):
        # W_100, the rewind point round 0 recorded; else the trained
        # dense weights, which plain one-shot pruning prunes.
        model = keras.models.load_model(paths.model_file(workdir, 0))
        if rewound:
            state.rewind(model)
        masks[rewound] = pruner.prune(model, 0.2, fractions={"output": 0.1})
    for key in got:
        np.testing.assert_array_equal(got[key], masks[True][key],
                                      err_msg=key)
    assert any(not np.array_equal(got[k], masks[False][k]) for k in got)

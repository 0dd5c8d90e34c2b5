"""Structured pruning and data-driven criteria on models and in the engine.

Units (neurons, filters, channels) are pruned whole, a pruned unit outputs
exactly 0 (its bias and the BatchNormalization after it are masked too),
scores come out the same under every strategy, and the engine runs every
granularity and criterion, its controls and a kill during scoring.
"""

import os
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from configs import lenet300_mnist
from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.engine import training
from keras_lottery.lottery import controls
from keras_lottery.lottery import runner
from keras_lottery.pruning import criteria
from keras_lottery.pruning import pruner
from keras_lottery.pruning import scoring
from keras_lottery.pruning import selection

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERIA = ("magnitude", "gradient", "activation", "apoz", "random")


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Criteria a test registers are gone after it."""
    monkeypatch.setattr(criteria, "_REGISTRY", dict(criteria._REGISTRY))



def conv_net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                            name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu",
                            name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(20, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(4, name="output")(x)
    return keras.Model(inputs, outputs)


def batches(count=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, 8, 8, 3)).astype(np.float32),
             rng.integers(0, 4, size)) for _ in range(count)]


STRUCTURED = {"conv1": "filter", "conv2": "filter", "fc": "neuron",
              "output": "weight"}


def prune_structured(model, method="magnitude", fraction=0.5, **kwargs):
    return keras_lottery.prune(
        model, fraction, method=method, granularity="filter",
        granularities={"fc": "neuron", "output": "weight"},
        fractions={"output": 0.0}, data=batches(), seed=1, **kwargs)


def test_scoring_statistics_cover_every_example_of_the_batches():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, activation="relu", name="fc")(inputs)
    model = keras_lottery.wrap(keras.Model(inputs, outputs))
    data = [(np.array([[1.0, 0.0, -2.0], [0.5, 1.0, 0.0]], np.float32),
             np.array([0, 1])),
            (np.array([[0.0, 3.0, 1.0]], np.float32), np.array([1]))]
    gradients, layers = scoring.statistics(
        model, frozenset({"gradients", "activations"}), data)
    kernel = model.get_layer("fc").layer.kernel
    x = np.concatenate([x for x, _ in data])
    labels = np.concatenate([y for _, y in data])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, model(x), from_logits=True))
    want = tape.gradient(loss, kernel.value).numpy()
    np.testing.assert_allclose(gradients[id(kernel)], want, rtol=1e-6)
    y = model(x).numpy()
    stats = layers["fc"]
    np.testing.assert_allclose(stats["input_norm"],
                               np.sqrt((x ** 2).sum(0)), rtol=1e-6)
    np.testing.assert_allclose(stats["input_mean_abs"], np.abs(x).mean(0),
                               rtol=1e-6)
    np.testing.assert_allclose(stats["input_zero_fraction"], [1 / 3] * 3)
    np.testing.assert_allclose(stats["output_zero_fraction"],
                               (y == 0).mean(0))
    np.testing.assert_allclose(stats["output_mean_abs"], np.abs(y).mean(0),
                               rtol=1e-6)


@pytest.mark.parametrize("method", CRITERIA)
def test_pruned_units_output_exactly_zero_and_stay_zero_under_fit(method):
    model = keras_lottery.wrap(conv_net())
    masks = prune_structured(model, method)
    units = state.get_masks(model, units=True)
    for name, axis in (("conv1", 3), ("conv2", 3), ("fc", 1)):
        alive = selection.alive_units(masks[f"{name}/kernel"], axis)
        assert alive.sum() == selection.remaining_after(alive.size, 0.5, 1)
    dead_filters = ~selection.alive_units(masks["conv1/kernel"], 3)
    # The BatchNormalization after conv1 lost gamma and beta there.
    np.testing.assert_array_equal(units["bn1/units"], ~dead_filters)
    np.testing.assert_array_equal(
        units["conv2/units"], selection.alive_units(masks["conv2/kernel"], 3))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    x = np.concatenate([x for x, _ in batches()])
    y = np.concatenate([y for _, y in batches()])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in
                                       ("relu1", "conv2", "fc")])
    for training_mode in (False, True):
        relu1, conv2, fc = probe(x, training=training_mode)
        assert np.all(relu1.numpy()[..., dead_filters] == 0)
        assert np.all(conv2.numpy()[..., units["conv2/units"] == 0] == 0)
        assert np.all(fc.numpy()[:, units["fc/units"] == 0] == 0)
    for name in ("conv2", "fc"):
        bias = model.get_layer(name).layer.bias.numpy()
        assert np.all(bias[units[f"{name}/units"] == 0] == 0)
    assert np.all(model.get_layer("bn1").layer.beta.numpy()[dead_filters]
                  == 0)


def test_unit_masks_survive_save_load_and_strip(tmp_path):
    model = keras_lottery.wrap(conv_net())
    prune_structured(model, "gradient")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    for key, mask in state.get_masks(model, units=True).items():
        np.testing.assert_array_equal(
            state.get_masks(loaded, units=True)[key], mask)
    plain = keras_lottery.strip(model)
    dead = state.get_masks(model, units=True)["fc/units"] == 0
    assert dead.any()
    assert np.all(plain.get_layer("fc").bias.numpy()[dead] == 0)
    x = batches()[0][0]
    np.testing.assert_allclose(plain(x), model(x), atol=1e-5)


def test_files_without_unit_masks_still_load(tmp_path):
    inputs = keras.Input((4,))
    wrapper = keras_lottery.MaskedWrapper(keras.layers.Dense(3, name="fc"),
                                          unit_mask=False)
    model = keras.Model(inputs, wrapper(inputs))
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"].pop("unit_mask", None)  # as files written before
    rebuilt = keras.Model.from_config(config)
    assert rebuilt.get_layer("fc").units_mask is None
    assert model.get_layer("fc").units_mask is None


@pytest.mark.parametrize("method", CRITERIA)
def test_default_and_mirrored_strategies_give_the_same_masks(method):
    results = []
    for strategy in (tf.distribute.get_strategy(),
                     training.make_strategy("mirrored")):
        with strategy.scope():
            model = keras_lottery.wrap(conv_net())
            results.append(state.get_masks(model, units=True))
            prune_structured(model, method)
            keras_lottery.prune(model, 0.3, method=method,
                                granularity="channel",
                                granularities={"fc": "neuron",
                                               "output": "weight"},
                                fractions={"output": 0.0}, data=batches(),
                                seed=2)
            results[-1] = state.get_masks(model, units=True)
    for key, mask in results[0].items():
        np.testing.assert_array_equal(results[1][key], mask, err_msg=key)


def test_every_granularity_and_criterion_prunes_round_after_round():
    for method in CRITERIA:
        for granularity in ("filter", "channel", "2:4"):
            if method == "apoz" and granularity == "2:4":
                continue  # apoz scores units only
            model = keras_lottery.wrap(conv_net())
            before = state.get_masks(model, units=True)
            for _ in range(3):
                keras_lottery.prune(
                    model, 0.2, method=method, granularity=granularity,
                    granularities={"fc": "neuron", "output": "weight",
                                   **({"conv1": "weight"}
                                      if granularity == "2:4" else {})},
                    fractions={"output": 0.0}, data=batches(), seed=0)
                after = state.get_masks(model, units=True)
                for key in before:  # masks only ever lose entries
                    assert np.all(after[key] <= before[key]), (method, key)
                before = after
            if granularity == "2:4":
                kernel = after["conv2/kernel"]
                groups = np.moveaxis(kernel, 2, -1).reshape(-1, 2, 4)
                assert groups.sum(-1).max() == 2
                assert kernel.mean() == 0.5


def test_a_registered_criterion_prunes():
    criteria.register("smallest_gradient",
                      lambda d: -np.abs(d.gradient), needs=("gradients",))
    model = keras_lottery.wrap(conv_net())
    masks = keras_lottery.prune(model, 0.5, method="smallest_gradient",
                                data=batches())
    assert masks["fc/kernel"].mean() == pytest.approx(0.5, abs=1e-3)


def test_bad_pruning_arguments_name_the_layer_or_argument():
    model = keras_lottery.wrap(conv_net())
    before = state.get_masks(model, units=True)
    with pytest.raises(ValueError, match=r"Granularity 'head' does not "
                       r"apply to layer 'conv1' \(Conv2D\), which has: "
                       r"weight, filter, channel, m:n. Received: "
                       r"granularity='head'"):
        keras_lottery.prune(model, 0.2, granularity="head")
    with pytest.raises(ValueError, match=r"Granularity 'neuron' does not "
                       r"apply to layer 'conv1' \(Conv2D\).*Received: "
                       r"granularities\['conv1'\]='neuron'"):
        keras_lottery.prune(model, 0.2, granularities={"conv1": "neuron"})
    with pytest.raises(ValueError, match=r"Granularity '2:4' needs the input"
                       r" size of layer 'conv1' to be a multiple of 4; its "
                       r"kernel has 3 inputs"):
        keras_lottery.prune(model, 0.2, granularity="2:4")
    with pytest.raises(ValueError, match=r"Criterion 'gradient' reads "
                       r"gradients on training batches: pass them as "
                       r"`data`. Received: data=None"):
        keras_lottery.prune(model, 0.2, method="gradient")
    with pytest.raises(ValueError, match=r"Criterion 'apoz' scores units "
                       r"only, and layer 'conv1' prunes by 'weight'"):
        keras_lottery.prune(model, 0.2, method="apoz", data=batches())
    with pytest.raises(ValueError, match=r"`granularities` names a layer "
                       r"with no mask: 'bn1'"):
        keras_lottery.prune(model, 0.2, granularities={"bn1": "filter"})
    with pytest.raises(ValueError, match=r"`data` must yield \(inputs, "
                       r"labels\) batches. Received: an element of type "
                       r"ndarray"):
        keras_lottery.prune(model, 0.2, method="activation",
                            data=[batches()[0][0]])
    for key, mask in state.get_masks(model, units=True).items():
        np.testing.assert_array_equal(mask, before[key])


# The engine.


def smoke_config(mnist_dir, **prune):
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.export.enabled = False
    config.train.num_steps = 40
    config.eval.every_steps = 20
    config.train.checkpoint_every_steps = 20
    config.train.steps_per_loop = 10
    config.train.jit_compile = False
    config.prune.num_rounds = 2
    config.prune.score_batches = 3
    config.deterministic = True
    for field, value in prune.items():
        config.prune[field] = value
    return config


@pytest.fixture(scope="module")
def neurons(mnist_dir, tmp_path_factory):
    """A smoke run pruning neurons by gradient."""
    workdir = str(tmp_path_factory.mktemp("neurons") / "workdir")
    runner.run(smoke_config(mnist_dir, granularity="neuron",
                             method="gradient"), workdir)
    return workdir


def unit_counts(masks):
    return {key: int(selection.alive_units(mask, 1).sum())
            for key, mask in masks.items() if key.endswith("kernel")}


def round_masks(workdir, round_index):
    """The weight and unit masks a round trained with."""
    return {**files.read_arrays(paths.masks_file(workdir, round_index)),
            **files.read_arrays(paths.units_file(workdir, round_index))}


def test_the_engine_prunes_whole_neurons(neurons):
    for r in range(3):
        masks = round_masks(neurons, r)
        counts = unit_counts(masks)
        assert counts["fc1/kernel"] == selection.remaining_after(300, 0.2, r)
        assert counts["fc2/kernel"] == selection.remaining_after(100, 0.2, r)
        np.testing.assert_array_equal(
            masks["fc1/units"], selection.alive_units(masks["fc1/kernel"], 1))
        # The output layer prunes weights at its own rate.
        assert masks["output/kernel"].sum() == selection.remaining_after(
            1000, 0.1, r)
        assert masks["output/units"].all()


def test_random_prune_control_keeps_unit_counts(neurons):
    controls.run_control(neurons, "random_prune", rounds=[2])
    ticket = round_masks(neurons, 2)
    control = round_masks(paths.control_workdir(neurons, "random_prune"), 2)
    assert unit_counts(control) == unit_counts(ticket)
    assert not np.array_equal(control["fc1/units"], ticket["fc1/units"])
    np.testing.assert_array_equal(
        control["fc1/units"], selection.alive_units(control["fc1/kernel"], 1))
    assert control["output/kernel"].sum() == ticket["output/kernel"].sum()


def test_random_reinit_control_keeps_the_ticket_units(neurons):
    controls.run_control(neurons, "random_reinit", rounds=[1])
    ticket = round_masks(neurons, 1)
    control = round_masks(paths.control_workdir(neurons, "random_reinit"),
                          1)
    for key, mask in ticket.items():
        np.testing.assert_array_equal(control[key], mask, err_msg=key)


@pytest.mark.parametrize("field,value,message", [
    ("granularity", "head",
     r"Granularity 'head' does not apply to layer 'fc1' \(Dense\), which "
     r"has: weight, neuron, m:n. Received: prune.granularity='head'"),
    ("output_granularity", "channel",
     r"Granularity 'channel' does not apply to layer 'output'.*Received: "
     r"prune.output_granularity='channel'"),
    ("granularity", "2:7",
     r"Granularity '2:7' needs the input size of layer 'fc2' to be a "
     r"multiple of 7; its kernel has 300 inputs"),
    ("method", "taylor", r"`prune.method` must be one of 'magnitude'"),
    ("granularity", "rows", r"`prune.granularity` must be one of"),
    ("score_batches", -1, r"`prune.score_batches` must be an int >= 0. "
     r"Received: prune.score_batches=-1"),
])
def test_bad_pruning_config_writes_nothing(mnist_dir, tmp_path, field,
                                           value, message):
    workdir = str(tmp_path / "workdir")
    with pytest.raises(ValueError, match=message):
        runner.run(smoke_config(mnist_dir, **{field: value}), workdir)
    assert not os.path.exists(workdir)


def test_a_data_criterion_needs_score_batches(mnist_dir, tmp_path):
    workdir = str(tmp_path / "workdir")
    with pytest.raises(ValueError, match=r"`prune.score_batches` must be at "
                       r"least 1: criterion 'activation' reads training "
                       r"batches. Received: prune.score_batches=0"):
        runner.run(smoke_config(mnist_dir, method="activation",
                                 score_batches=0), workdir)
    assert not os.path.exists(workdir)


def test_a_kill_during_scoring_resumes_to_the_same_masks(neurons,
                                                         mnist_dir,
                                                         tmp_path):
    workdir = str(tmp_path / "killed")
    args = [sys.executable, "-m", "binaries.lottery",
            "--config=configs/lenet300_mnist.py:smoke",
            f"--config.data.dir={mnist_dir}", f"--workdir={workdir}",
            "--config.export.enabled=False", "--config.train.num_steps=40",
            "--config.eval.every_steps=20",
            "--config.train.checkpoint_every_steps=20",
            "--config.train.steps_per_loop=10",
            "--config.train.jit_compile=False", "--config.prune.num_rounds=2",
            "--config.prune.score_batches=3", "--config.deterministic=True",
            "--config.prune.granularity=neuron",
            "--config.prune.method=gradient"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Killed while scoring round 1, then (round 1 done) while scoring 2.
    for fault in ("scored@1", "scored@2"):
        killed = subprocess.run(args, cwd=_REPO_ROOT,
                                env={**env, faults.ENV: fault},
                                capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    env.pop(faults.ENV, None)
    done = subprocess.run(args, cwd=_REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for r in range(3):
        want = round_masks(neurons, r)
        got = round_masks(workdir, r)
        assert set(got) == set(want)
        for key, mask in want.items():
            np.testing.assert_array_equal(got[key], mask, err_msg=key)


# Attention heads.


def attention_net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 8), name="tokens")
    x = keras.layers.MultiHeadAttention(num_heads=5, key_dim=4,
                                        name="mha")(inputs, inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="output")(x)
    return keras.Model(inputs, outputs)


HEAD_AXES = {"mha/query_dense/kernel": 1, "mha/key_dense/kernel": 1,
             "mha/value_dense/kernel": 1, "mha/output_dense/kernel": 0}


def attention_batches():
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(8, 6, 8)).astype(np.float32),
             rng.integers(0, 3, 8)) for _ in range(2)]


@pytest.mark.parametrize("method", ["magnitude", "gradient", "random"])
def test_heads_go_from_all_four_attention_kernels(method):
    model = keras_lottery.wrap(attention_net())
    for rounds in (1, 2):
        masks = keras_lottery.prune(
            model, 0.4, method=method, granularity="head",
            granularities={"output": "weight"}, fractions={"output": 0.0},
            data=attention_batches(), seed=rounds)
        heads = {key: selection.alive_units(masks[key], axis)
                 for key, axis in HEAD_AXES.items()}
        first = heads["mha/query_dense/kernel"]
        assert first.sum() == selection.remaining_after(5, 0.4, rounds)
        for key, alive in heads.items():  # the same heads, whole
            np.testing.assert_array_equal(alive, first, err_msg=key)
            per_head = np.moveaxis(masks[key], HEAD_AXES[key], 0).reshape(
                5, -1)
            assert np.array_equal(per_head.min(1), per_head.max(1))
    # A pruned head adds nothing: the layer computes as if it had only the
    # remaining heads (its output kernel's slice for the head is 0).
    mha = model.get_layer("mha").layer
    dead = ~first
    assert np.all(mha.output_dense.kernel.numpy()[dead] == 0)


def test_a_random_prune_control_keeps_heads_coherent():
    model = keras_lottery.wrap(attention_net())
    masks = keras_lottery.prune(model, 0.4, granularity="head",
                                granularities={"output": "weight"})
    plan = pruner.plan_pruning(model, 0.4, granularity="head",
                              granularities={"output": "weight"})
    control = selection.random_masks_like(masks, seed=3,
                                        groupings=plan.groupings)
    heads = [selection.alive_units(control[k], a) for k, a in
             HEAD_AXES.items()]
    assert heads[0].sum() == 3
    for alive in heads[1:]:
        np.testing.assert_array_equal(alive, heads[0])


def test_head_granularity_is_for_attention_only():
    # A model-wide granularity prunes the weights it fits, and names the
    # others once in a warning; they keep every entry.
    model = keras_lottery.wrap(attention_net())
    with pytest.warns(UserWarning, match=re.escape(
            "granularity 'head' does not apply to these weights, which keep "
            "every entry: output/kernel (Dense)")):
        keras_lottery.prune(model, 0.5, granularity="head")
    masks = state.get_masks(model)
    assert masks["output/kernel"].all()
    assert not masks["mha/query_dense/kernel"].all()
    # A model-wide "neuron" or "filter" keeps the output layer's units
    # (its classes), and attention has none: nothing is left for it.
    for granularity in ("neuron", "filter"):
        with pytest.raises(ValueError, match=re.escape(
                f"Granularity {granularity!r} finds no units that can go in "
                f"model {model.name!r}: MultiHeadAttention has none: "
                "mha/query_dense/kernel, mha/key_dense/kernel, ...; a model "
                f"output: output/kernel. Received: granularity="
                f"{granularity!r}")):
            keras_lottery.prune(model, 0.2, granularity=granularity)

"""Sparse compute paths train what the dense engine trains."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.engine import sparse_compute
from keras_lottery.engine import training


def _mlp(seed: int = 0) -> keras.Model:
    inputs = keras.Input((6, 6, 1), name="images")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(24, "relu", name="fc1")(x)
    x = keras.layers.Dense(12, "relu", name="fc2")(x)
    outputs = keras.layers.Dense(5, name="output")(x)
    return _wrapped(keras.Model(inputs, outputs, name="mlp"), seed)


def _wrapped(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    # Nonzero biases: a unit whose kernel column is pruned still outputs
    # relu(bias), and must be kept.
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.3
                       for w in model.get_weights()])
    return keras_lottery.wrap(model)


def _ticket(granularity: str) -> keras.Model:
    model = _mlp()
    if granularity == "neuron":
        for _ in range(4):
            keras_lottery.prune(model, 0.3, granularity="neuron",
                                granularities={"output": "weight"},
                                fractions={"output": 0.1})
        return model
    rng = np.random.default_rng(1)
    masks = {key: (rng.random(m.shape) < 0.15).astype("float32")
             for key, m in keras_lottery.get_masks(model).items()}
    masks["fc1/kernel"][:, :3] = 0  # kernels cut off, biases live
    masks["fc2/kernel"][4:8] = 0  # fc1 units nobody reads
    masks["fc1/kernel"][:10] = 0  # inputs nobody reads
    keras_lottery.set_masks(model, masks)
    return model


def _convnet(seed: int = 0) -> keras.Model:
    inputs = keras.Input((6, 6, 1), name="images")
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu",
                            name="conv1")(inputs)
    x = keras.layers.Conv2D(7, 3, padding="same", activation="relu",
                            name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, "relu", name="fc1")(x)
    outputs = keras.layers.Dense(5, name="output")(x)
    return _wrapped(keras.Model(inputs, outputs, name="convnet"), seed)


def _conv_ticket(granularity: str) -> keras.Model:
    """Filters or channels pruned (and fc1's neurons), or weights with a
    dead filter and one that nobody reads."""
    model = _convnet()
    if granularity != "weight":
        for _ in range(3):
            keras_lottery.prune(model, 0.3, granularity="neuron",
                                granularities={"conv1": granularity,
                                               "conv2": granularity,
                                               "output": "weight"},
                                fractions={"output": 0.0})
        return model
    rng = np.random.default_rng(1)
    masks = {key: (rng.random(m.shape) < 0.4).astype("float32")
             for key, m in keras_lottery.get_masks(model).items()}
    masks["conv1/kernel"][..., 1] = 0  # bias live: relu(bias), kept
    masks["conv2/kernel"][..., 3, :] = 0  # conv1's filter 3: unread
    masks["fc1/kernel"][2::7] = 0  # conv2's filter 2: unread
    keras_lottery.set_masks(model, masks)
    return model


_TICKETS = {"weight": lambda: _ticket("weight"),
            "neuron": lambda: _ticket("neuron"),
            "conv_weight": lambda: _conv_ticket("weight"),
            "conv_filter": lambda: _conv_ticket("filter"),
            "conv_channel": lambda: _conv_ticket("channel")}


def _data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 5, 600)
    return x, y


def _trainer(model: keras.Model, mode: str, make=None) -> training.Trainer:
    make = make or (lambda: keras.optimizers.Adam(0.01))
    return training.Trainer(
        model, training.make_strategy("default"), make(), 30,
        jit_compile=True, steps_per_loop=10, sparse_compute=mode,
        make_optimizer=make)


def _train(model: keras.Model, mode: str, steps: int = 60):
    x, y = _data()
    trainer = _trainer(model, mode)
    dataset_fn = functools.partial(training.train_dataset, x, y, 30, 0)
    losses = [trainer.train(dataset_fn, 10) for _ in range(steps // 10)]
    assert trainer.step == steps
    return trainer.path, losses, [v.numpy() for v in model.weights]


@pytest.mark.parametrize("ticket, path", [
    ("weight", "compact"), ("weight", "sparse"), ("neuron", "compact"),
    ("neuron", "sparse"), ("conv_weight", "compact"),
    ("conv_filter", "compact"), ("conv_channel", "compact")])
def test_a_path_trains_as_the_dense_engine(ticket, path):
    got_path, losses, weights = _train(_TICKETS[ticket](), path)
    dense_path, dense_losses, dense_weights = _train(_TICKETS[ticket](),
                                                     "off")
    assert (got_path, dense_path) == (path, "dense")
    np.testing.assert_allclose(losses, dense_losses, rtol=1e-5)
    for got, want in zip(weights, dense_weights):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    model = _TICKETS[ticket]()
    _train(model, path)
    for wrapper in keras_lottery.wrapping.wrapped_layers(model):
        for variable, mask in wrapper.masked_pairs():
            value = variable.numpy() * np.ones(mask.shape)
            assert np.all(value[mask.numpy() == 0] == 0)


def test_layout_keeps_what_can_change_the_output():
    kernel1 = np.ones((4, 3))
    kernel1[:, 0] = 0  # unit 0: no inputs, bias pruned -> outputs 0
    kernel1[:, 1] = 0  # unit 1: no inputs, bias live -> relu(bias)
    kernel1[3] = 0  # input 3 read by nobody
    kernel2 = np.ones((3, 2))
    plan = sparse_compute.layout([kernel1, kernel2],
                                 [np.array([0, 1, 1]), None], [True, True])
    np.testing.assert_array_equal(plan.inputs, [0, 1, 2])
    np.testing.assert_array_equal(plan.units[0], [1, 2])
    np.testing.assert_array_equal(plan.units[1], [0, 1])
    assert (plan.dense_size, plan.compact_size, plan.live_size) == (
        18, 3 * 2 + 2 * 2, 3 + 4)


def test_choose_by_the_live_and_kept_fractions():
    def choice(mask):
        return sparse_compute.choose(
            sparse_compute.layout([mask], [None], [True]))

    assert choice(np.ones((40, 40))) == "dense"
    scattered = np.zeros((40, 40))
    scattered[np.arange(40), np.arange(40) % 7] = 1  # 2.5% live, all kept
    assert choice(scattered) == "sparse"
    blocked = np.zeros((40, 40))
    i = np.arange(56)
    blocked[i % 26, i % 40] = 1  # 3.5% live in a block of 65%: compact
    assert choice(blocked) == "compact"
    rows = np.zeros((40, 40))
    rows[:32] = 1  # 80% kept, all live
    assert choice(rows) == "dense"
    rows = np.zeros((40, 40))
    rows[:15] = 1  # 37.5% kept, all live
    assert choice(rows) == "compact"
    rows[:] = 0
    rows[0] = 1  # 2.5% live and kept: compact beats sparse
    assert choice(rows) == "compact"


def test_a_conv_chain_is_compact_or_dense_never_sparse():
    """The sparse path is for Dense layers: `auto` keeps conv chains off
    it however few multiply-adds are live, and asking for it is refused."""
    scattered = np.zeros((3, 3, 40, 40))
    scattered[1, 1, np.arange(40), np.arange(40) % 7] = 1
    plan = sparse_compute.layout([scattered], [None], [True],
                                 positions=[64])
    assert plan.live_size * 100 < plan.dense_size
    assert sparse_compute.choose(plan) == "dense"
    cut = scattered.copy()
    cut[..., 20:] = 0
    cut[..., 20:, :] = 0  # half the inputs and filters: a quarter kept
    assert sparse_compute.choose(sparse_compute.layout(
        [cut, np.ones((40, 3))], [None, None], [True, True])) == "compact"
    with pytest.raises(ValueError, match=r"Received: path='sparse', "
                       r"model='convnet'"):
        sparse_compute.ComputeModel(_conv_ticket("filter"), "sparse")


def test_a_flattened_conv_map_is_read_by_channel():
    """The Dense layer after a Flatten reads channel c of a channels-last
    map at rows p * channels + c: a conv filter nobody reads there goes."""
    conv = np.ones((3, 3, 1, 4))
    dense = np.ones((2 * 4, 5))  # a map of 2 positions and 4 channels
    dense[[1, 5]] = 0  # channel 1, at both positions
    plan = sparse_compute.layout([conv, dense], [None, None], [True, True],
                                 repeats=[1, 2], positions=[2, 1])
    np.testing.assert_array_equal(plan.units[0], [0, 2, 3])
    np.testing.assert_array_equal(plan.rows(1), [0, 2, 3, 4, 6, 7])
    assert (plan.dense_size, plan.compact_size) == (
        9 * 4 * 2 + 8 * 5, 9 * 3 * 2 + 6 * 5)


def test_other_models_train_dense():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(4, name="a")(inputs)
    outputs = keras.layers.Add()([x, keras.layers.Dense(4, name="b")(x)])
    model = keras_lottery.wrap(keras.Model(inputs, outputs))
    assert sparse_compute.compute_model(model, "auto") is None
    with pytest.raises(ValueError, match="needs a chain of layers"):
        sparse_compute.compute_model(model, "compact")
    regularized = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(
            4, kernel_regularizer=keras.regularizers.L2(1e-4))])
    assert sparse_compute.chain(regularized) is None


def test_bad_mode_and_path_are_named():
    model = _mlp()
    with pytest.raises(ValueError, match=r"Received: mode='fast'"):
        sparse_compute.compute_model(model, "fast")
    with pytest.raises(ValueError, match=r"Received: path='dense'"):
        sparse_compute.ComputeModel(model, "dense")


def test_store_and_load_round_trip():
    model = _ticket("weight")
    compute = sparse_compute.ComputeModel(model, "compact")
    before = [v.numpy() for v in model.weights]
    for variable in compute.trainable_variables:
        variable.assign(variable + 1.0)
    compute.store()
    compute.load()
    compute.store()
    changed = [not np.array_equal(a, v.numpy())
               for a, v in zip(before, model.weights)]
    assert any(changed)
    images = tf.random.normal((7, 6, 6, 1), seed=3)
    with keras_lottery.core.masking.masked_gradients():
        want = model(images)
    np.testing.assert_allclose(compute(images), want, rtol=1e-5, atol=1e-5)


def _weights(model):
    return [v.numpy() for v in model.weights]


@pytest.mark.parametrize("resume_on", ["compact", "off"])
def test_a_checkpoint_of_a_compute_path_resumes_on_any_path(
        tmp_path, resume_on):
    """The trainer checkpoints the dense model and optimizer: a round
    killed on the compact path resumes on either path."""
    x, y = _data()
    data = training.TrainingData(x, y, 30, 0)
    whole = _ticket("weight")
    trainer = _trainer(whole, "compact")
    for _ in range(6):
        trainer.train(data, 10)
    assert trainer.path == "compact"

    first = _ticket("weight")
    trainer = _trainer(first, "compact")
    for _ in range(3):
        trainer.train(data, 10)
    trainer.sync()
    checkpoint = tf.train.Checkpoint(model=first,
                                     optimizer=trainer.optimizer)
    saved = checkpoint.save(str(tmp_path / "ckpt"))

    resumed = _ticket("weight")
    trainer = _trainer(resumed, resume_on)
    tf.train.Checkpoint(model=resumed, optimizer=trainer.optimizer).restore(
        saved).assert_consumed()
    assert trainer.step == 30
    for _ in range(3):
        trainer.train(data, 10)
    assert trainer.step == 60
    exact = resume_on == "compact"
    for got, want in zip(_weights(resumed), _weights(whole)):
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_trainer_picks_each_rounds_path_again():
    """Restarted on the next round's model, a trainer chooses its path
    anew, and its dense functions still train dense."""
    x, y = _data()
    data = training.TrainingData(x, y, 30, 0)
    trainer = _trainer(_ticket("neuron"), "auto")
    trainer.train(data, 10)
    assert trainer.path == "compact"
    dense = _mlp()
    trainer.restart(dense)
    assert trainer.path is None
    trainer.train(data, 10)
    assert (trainer.path, trainer.step) == ("dense", 10)
    reference = _mlp()
    _trainer(reference, "off").train(data, 10)
    for got, want in zip(_weights(trainer.model), _weights(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_weight_decay_trains_dense():
    """Decoupled decay moves weights the compute paths leave out."""
    def make():
        return keras.optimizers.AdamW(0.01, weight_decay=0.1)

    x, y = _data()
    data = training.TrainingData(x, y, 30, 0)
    trainer = _trainer(_ticket("neuron"), "auto", make)
    trainer.train(data, 10)
    assert trainer.path == "dense"
    trainer = _trainer(_ticket("neuron"), "compact", make)
    with pytest.raises(ValueError, match=r"Received: "
                       r"train.sparse_compute='compact'"):
        trainer.train(data, 10)


def test_a_bad_mode_is_named():
    with pytest.raises(ValueError, match=r"Received: sparse_compute='on'"):
        _trainer(_mlp(), "on")


@pytest.mark.parametrize("ticket", ["neuron", "conv_filter"])
def test_a_compact_round_evaluates_on_its_blocks_as_the_model_does(ticket):
    x, y = _data()
    trainer = _trainer(_TICKETS[ticket](), "compact")
    trainer.train(training.TrainingData(x, y, 30, 0), 20)
    examples = trainer.eval_dataset(x[:70], y[:70], 32)
    got = trainer.evaluate(examples)
    want = keras_lottery.engine.evaluation.Evaluator(
        trainer.model, trainer.strategy, False)(examples)
    assert trainer._round_evaluator is not None
    np.testing.assert_allclose([got.loss, got.accuracy],
                               [want.loss, want.accuracy], rtol=1e-5)


def test_conv2_filter_rounds_train_compact_as_dense(mnist_dir, tmp_path):
    """The engine picks the compact path for Conv-2's filter tickets and
    trains what the dense kernels train: the same masks and accuracies."""
    from configs import conv2_mnist
    from keras_lottery.base import files
    from keras_lottery.base import paths
    from keras_lottery.lottery import runner

    def run(mode):
        config = conv2_mnist.get_config("smoke")
        config.data.dir = mnist_dir
        config.export.enabled = False
        # The test set at each round's best step only: 10,000 examples
        # through Conv-2 at every evaluation were most of the test's time.
        config.eval.test_at = "best"
        config.train.sparse_compute = mode
        config.prune.update(granularity="neuron", conv_granularity="filter",
                            fraction_per_round=0.5,
                            conv_fraction_per_round=0.5,
                            output_fraction_per_round=0.0)
        workdir = str(tmp_path / mode)
        runner.run(config, workdir)
        return [files.read_json(paths.metrics_file(workdir, r))
                for r in range(3)], [
            files.read_arrays(paths.masks_file(workdir, r))
            for r in range(3)]

    metrics, masks = run("auto")
    dense_metrics, dense_masks = run("off")
    assert [m["compute_path"] for m in metrics] == [
        "dense", "compact", "compact"]
    assert {m["compute_path"] for m in dense_metrics} == {"dense"}
    for got, want in zip(masks, dense_masks):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    for got, want in zip(metrics, dense_metrics):
        for a, b in zip(got["history"], want["history"], strict=True):
            assert abs(a["validation_accuracy"]
                       - b["validation_accuracy"]) <= 0.002

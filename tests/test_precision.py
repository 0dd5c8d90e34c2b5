"""Mixed precision (`train.precision`): layers compute in 16 bits, masks and
rewind points stay float32, and pruned weights are exact zeros in every
precision; float16 trains with a loss scale."""

import keras
import numpy as np
import pytest

from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import wrapping
from keras_lottery.engine import precision
from keras_lottery.engine import training
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner


def tiny_config(mnist_dir, policy, rounds=2):
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.train.precision = policy
    config.train.num_steps = 60
    config.train.steps_per_loop = 20
    config.train.checkpoint_every_steps = 20
    config.eval.every_steps = 30
    config.prune.num_rounds = rounds
    config.export.enabled = False
    return config


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_run_keeps_float32_masks_and_exact_zeros(policy, mnist_dir,
                                                         tmp_path):
    workdir = str(tmp_path / "workdir")
    # float16 runs slowly on a CPU (no native kernels; about 1 ms per
    # LeNet example on the 2-core Intel Xeon VM, so an evaluation of the
    # 10,000 test digits takes half a minute): one round, four of the
    # digits (chance is 25%), one evaluation per round.
    rounds = 2 if policy == "mixed_bfloat16" else 1
    config = tiny_config(mnist_dir, policy, rounds)
    if policy == "mixed_float16":
        config.data.classes = (0, 1, 2, 3)
        config.eval.every_steps = 60
    summary = runner.run(config, workdir)
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
    for r in range(rounds + 1):
        model = keras.models.load_model(paths.model_file(workdir, r))
        layers = wrapping.wrapped_layers(model)
        assert {w.layer.compute_dtype for w in layers} == {compute[policy]}
        assert precision.of_model(model) == policy
        masks = files.read_arrays(paths.masks_file(workdir, r))
        pairs = [pair for w in layers for pair in w.masked_pairs()]
        assert len(masks) == 3 and len(pairs) == 6  # kernels, units
        assert all((m == 0).any() == (r > 0) for m in masks.values())
        for variable, mask in pairs:
            assert variable.dtype == mask.dtype == "float32"
            pruned = np.asarray(mask.value) == 0
            # Trained, then saved: a pruned weight is an exact 0.
            assert np.all(np.asarray(variable.value)[pruned] == 0.0)
        for _, rewind in (pair for w in layers for pair in w.rewind_pairs):
            assert rewind.dtype == "float32"
        record = files.read_json(paths.metrics_file(workdir, r))
        # 60 steps of LeNet-300-100 in 16 bits learn (chance is 10% or
        # 25%).
        assert record["history"][-1]["validation_accuracy"] > 0.6, record
    assert summary[rounds]["remaining_fraction"] < 0.9


def test_float16_trains_with_a_loss_scale_and_bfloat16_without():
    train = lenet300_mnist.get_config("smoke").train
    train.precision = "mixed_float16"
    assert isinstance(training.make_optimizer(train),
                      keras.optimizers.LossScaleOptimizer)
    train.precision = "mixed_bfloat16"
    assert type(training.make_optimizer(train)) is keras.optimizers.Adam


def test_an_unknown_precision_is_one_line(mnist_dir):
    config = tiny_config(mnist_dir, "float64")
    with pytest.raises(ValueError) as raised:
        run_config.check_config(config)
    assert str(raised.value) == (
        "`train.precision` must be one of 'float32', 'mixed_bfloat16', "
        "'mixed_float16'. Received: train.precision='float64'")


def test_the_policy_is_restored_after_building():
    before = keras.config.dtype_policy().name
    with precision.policy("mixed_bfloat16"):
        layer = keras.layers.Dense(3)
    assert layer.compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == before

"""Tests of the configs in configs/: they load, match their papers, and run.

Every config module is checked; the smoke variants of LeNet (real MNIST),
Conv-2 and ResNet-20 (a tiny synthetic CIFAR-10 folder) run end to end.
"""

import importlib
import json
import os

import ml_collections
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.models import zoo
from keras_lottery.pruning import selection

_CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"
)
# Modules in configs/ that are not configs to run.
_HELPERS = ("base.py", "__init__.py")
CONFIGS = sorted(
    name[:-3]
    for name in os.listdir(_CONFIG_DIR)
    if name.endswith(".py") and name not in _HELPERS
)
CIFAR10_CONFIGS = [name for name in CONFIGS if name.endswith("_cifar10")]

# The numbers the papers give, as config fields. Frankle & Carbin (ICLR
# 2019), Figure 2 and Section 4, for all; late rewinding from "Stabilizing
# the Lottery Ticket Hypothesis" (Frankle et al., 2019) for VGG-19 and
# ResNet-20. SGD's weight decay 1e-4 is the L2 factor 1e-4 / 2.
# Iterative magnitude pruning at the paper's layerwise rates, rewinding
# to initialisation.
_IMP = {
    "prune.scope": "layerwise",
    "prune.mode": "iterative",
    "prune.method": "magnitude",
    "prune.fraction_per_round": 0.2,
    "prune.output_fraction_per_round": 0.1,
    "prune.rewind_step": 0,
}
_FRANKLE_CARBIN = {
    **_IMP,
    "train.optimizer": "adam",
    "train.batch_size": 60,
    "train.schedule": "constant",
    "data.validation_size": 5000,
    "eval.every_steps": 100,
    "model.weight_decay": 0.0,
}
_STABILIZING = {
    "train.optimizer": "momentum",
    "train.momentum": 0.9,
    "train.schedule": "step",
    "train.decay_factor": 0.1,
    "model.weight_decay": 1e-4 / 2,
    "train.weight_decay": 0.0,
    "prune.scope": "global",
    "prune.mode": "iterative",
    "prune.method": "magnitude",
    "prune.fraction_per_round": 0.2,
    "data.validation_size": 5000,
    "data.normalization": "standardize",
}
# Greydanus (2020): the repository's train.py (Adam 1e-2, batch 100, 6,000
# steps) and its lottery-ticket notebook (Adam 2e-2, 1,501 steps, every
# layer pruned at one rate, rewinding to initialisation).
_MNIST1D = {
    "data.name": "mnist1d",
    "data.normalization": "none",
    "train.optimizer": "adam",
    "train.batch_size": 100,
    "train.schedule": "constant",
    "prune.scope": "layerwise",
    "prune.mode": "iterative",
    "prune.method": "magnitude",
    "prune.fraction_per_round": 0.2,
    "prune.rewind_step": 0,
    "eval.every_steps": 100,
    "model.weight_decay": 0.0,
}
# Issue 38's small Vision Transformer on MNIST: a 10,000-step round, the
# structure study's rates (20% per round, 10% for the output layer).
_VIT = {
    "data.name": "mnist",
    "model.name": "vit_tiny",
    "train.num_steps": 10_000,
    "train.optimizer": "adamw",
    "train.schedule": "cosine",
    **_IMP,
}
PAPER = {
    "vit_mnist": _VIT,
    "mnist1d_lottery_mlp": {
        **_MNIST1D,
        "model.name": "mnist1d_lottery_mlp",
        "train.learning_rate": 2e-2,
        "train.num_steps": 1501,
        "prune.output_fraction_per_round": 0.2,
    },
    "mnist1d_mlp": {
        **_MNIST1D,
        "model.name": "mnist1d_mlp",
        "train.learning_rate": 1e-2,
        "train.num_steps": 6000,
    },
    "mnist1d_cnn": {
        **_MNIST1D,
        "model.name": "mnist1d_cnn",
        "train.learning_rate": 1e-2,
        "train.num_steps": 6000,
    },
    "lenet300_mnist": {
        **_FRANKLE_CARBIN,
        "data.name": "mnist",
        "model.name": "lenet_300_100",
        "train.learning_rate": 1.2e-3,
        "train.num_steps": 50_000,
    },
    "conv2_cifar10": {
        **_FRANKLE_CARBIN,
        "data.name": "cifar10",
        "model.name": "conv2",
        "train.learning_rate": 2e-4,
        "train.num_steps": 20_000,
        "prune.conv_fraction_per_round": 0.1,
    },
    "conv2_mnist": {
        **_FRANKLE_CARBIN,
        "data.name": "mnist",
        "model.name": "conv2",
        "train.learning_rate": 2e-4,
        "train.num_steps": 20_000,
        "prune.conv_fraction_per_round": 0.1,
        "prune.granularity": "weight",
    },
    "conv4_cifar10": {
        **_FRANKLE_CARBIN,
        "data.name": "cifar10",
        "model.name": "conv4",
        "train.learning_rate": 3e-4,
        "train.num_steps": 25_000,
        "prune.conv_fraction_per_round": 0.1,
    },
    "conv6_cifar10": {
        **_FRANKLE_CARBIN,
        "data.name": "cifar10",
        "model.name": "conv6",
        "train.learning_rate": 3e-4,
        "train.num_steps": 30_000,
        "prune.conv_fraction_per_round": 0.15,
    },
    "vgg19_cifar10": {
        **_STABILIZING,
        "data.name": "cifar10",
        "model.name": "vgg19",
        "train.batch_size": 64,
        "train.learning_rate": 0.1,
        "train.warmup_steps": 10_000,
        "train.num_steps": 112_480,
        "train.decay_steps": (56_240, 84_360),
        "prune.rewind_step": 1000,
    },
    "resnet20_cifar10": {
        **_STABILIZING,
        "data.name": "cifar10",
        "model.name": "resnet20",
        "train.batch_size": 128,
        "train.learning_rate": 0.03,
        "train.warmup_steps": 20_000,
        "train.num_steps": 30_000,
        "train.decay_steps": (20_000, 25_000),
        "prune.rewind_step": 500,
    },
}


def _module(name):
    return importlib.import_module(f"configs.{name}")


def _get(config, dotted):
    section, field = dotted.split(".")
    return config[section][field]


def _fields(tree, prefix=""):
    """`{"section.field": value}` of a nested dict, leaves only."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_fields(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_every_config_has_paper_numbers():
    assert sorted(PAPER) == CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("arg", ["", "smoke"])
def test_config_loads_and_passes_check(name, arg):
    config = _module(name).get_config(arg)
    assert isinstance(config, ml_collections.ConfigDict)
    assert not config.is_locked
    run_config.check_config(config)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_has_every_field_of_lenet_with_its_type(name):
    lenet = _fields(_module("lenet300_mnist").get_config().to_dict())
    config = _fields(_module(name).get_config().to_dict())
    schema = {k: v for k, v in lenet.items() if not k.startswith("tune.")}
    assert set(schema) <= set(config)
    for key, value in schema.items():
        if value is not None and config[key] is not None:
            assert type(config[key]) is type(value), key


@pytest.mark.parametrize("name", CONFIGS)
def test_config_has_paper_hyperparameters(name):
    config = _module(name).get_config()
    for key, want in PAPER[name].items():
        assert _get(config, key) == pytest.approx(want), key


@pytest.mark.parametrize("name", ["vgg19_cifar10", "resnet20_cifar10"])
def test_step_counts_follow_from_epochs(name):
    # VGG-19: 160 epochs with decays at 80 and 120 (Frankle & Carbin, 2019,
    # Appendix); ResNet-20 is given in iterations. An epoch is the training
    # set left after the validation hold-out, in whole batches.
    config = _module(name).get_config()
    train = config.train
    steps_per_epoch = (50_000 - config.data.validation_size) // (
        train.batch_size
    )
    if name == "vgg19_cifar10":
        assert train.num_steps == 160 * steps_per_epoch
        assert train.decay_steps == (
            80 * steps_per_epoch,
            120 * steps_per_epoch,
        )
    assert 0 < config.prune.rewind_step < train.decay_steps[0]
    assert train.warmup_steps <= train.decay_steps[0] < train.num_steps


@pytest.mark.parametrize("name", CONFIGS)
def test_every_smoke_variant_runs_with_early_bird_and_auto_rewinding(name):
    # Every step-valued field fits the smoke run's few steps.
    config = _module(name).get_config("smoke")
    config.prune.early_bird.enabled = True
    run_config.check_config(config)
    steps = config.train.num_steps
    assert 1 <= config.prune.early_bird.every_steps < steps
    assert config.train.checkpoint_every_steps <= steps
    config.prune.early_bird.enabled = False
    config.prune.rewind_step = "auto"
    run_config.check_config(config)


@pytest.mark.parametrize("name", CONFIGS)
def test_smoke_keeps_the_recipe_and_shrinks_the_run(name):
    full = _module(name).get_config()
    smoke = _module(name).get_config("smoke")
    for key in PAPER[name]:
        if key.split(".")[1] not in (
            "batch_size",
            "num_steps",
            "validation_size",
            "every_steps",
            "warmup_steps",
            "decay_steps",
            "rewind_step",
        ):
            assert _get(smoke, key) == _get(full, key), key
    steps = smoke.train.num_steps
    assert steps <= 300 and 2 <= smoke.prune.num_rounds <= 3
    assert smoke.eval.every_steps < steps
    assert smoke.train.warmup_steps < steps
    assert all(0 < s < steps for s in smoke.train.decay_steps)
    assert len(smoke.train.decay_steps) == len(full.train.decay_steps)
    # Late rewinding stays late: a smoke run still rewinds to a step > 0.
    assert (smoke.prune.rewind_step > 0) == (full.prune.rewind_step > 0)
    assert smoke.prune.rewind_step < steps


@pytest.mark.parametrize("name", CONFIGS)
def test_docstring_gives_the_command(name):
    doc = _module(name).__doc__
    assert f"python -m binaries.lottery --config=configs/{name}.py" in doc
    assert f"--config=configs/{name}.py:smoke" in doc
    if name in CIFAR10_CONFIGS:
        assert "--config.data.dir=/path/to/cifar-10-batches-bin" in doc


@pytest.mark.parametrize("name", CONFIGS)
def test_unknown_variant_raises(name):
    with pytest.raises(
        ValueError,
        match=r"Unknown config variant\. Received: 'smok'; known: "
        r"'smoke'",
    ):
        _module(name).get_config("smok")


# ml_collections loads config files with importlib's deprecated load_module.
@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
@pytest.mark.parametrize("name", CONFIGS)
def test_command_line_loads_and_overrides(name):
    # As binaries/lottery.py loads it: by path, locked, with overrides;
    # conv_fraction_per_round starts as None and still takes a float.
    argv = [
        "lottery",
        f"--config={_CONFIG_DIR}/{name}.py:smoke",
        "--config.data.dir=/data",
        "--config.prune.conv_fraction_per_round=0.3",
    ]
    values = flags.FlagValues()
    # Override flags are defined from the argv the config flag is given.
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=values, lock_config=True, sys_argv=argv
    )
    values(argv)
    config = values.config
    assert config.is_locked
    assert config.data.dir == "/data"
    assert config.prune.conv_fraction_per_round == 0.3
    with pytest.raises(AttributeError):
        config.prune.no_such_field = 1


# End-to-end smoke runs.


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory) -> str:
    """A CIFAR-10 binary folder of random images: 5 x 40 train, 100 test."""
    path = tmp_path_factory.mktemp("cifar-10-batches-bin")
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, count in zip(names, [40] * 5 + [100]):
        records = rng.integers(0, 256, (count, 1 + 32 * 32 * 3), np.uint8)
        records[:, 0] = np.arange(count) % 10
        records.tofile(path / name)
    return str(path)


def _run_smoke(name, data_dir, workdir):
    config = _module(name).get_config("smoke")
    config.data.dir = data_dir
    config.export.enabled = False  # tests/test_export.py covers export
    summary = runner.run(config, workdir)
    return config, summary


def _rate(config, key):
    """The fraction of its remaining weights `key` loses per round."""
    layer = key.split("/")[0]
    if layer == zoo.OUTPUT_LAYER_NAME:
        return config.prune.output_fraction_per_round
    conv = config.prune.conv_fraction_per_round
    if conv is not None and layer.startswith("conv"):
        return conv
    return config.prune.fraction_per_round


def _masks(workdir, num_rounds):
    return [
        files.read_arrays(paths.masks_file(workdir, r))
        for r in range(num_rounds + 1)
    ]


def _check_rounds(config, summary, workdir):
    """Checks the summary and that masks shrink as the rules say."""
    rounds = config.prune.num_rounds
    assert [entry["round"] for entry in summary] == list(range(rounds + 1))
    with open(paths.summary_file(workdir)) as f:
        assert json.load(f) == summary
    remaining = [entry["remaining_fraction"] for entry in summary]
    assert remaining[0] == 1.0
    assert all(b < a for a, b in zip(remaining, remaining[1:]))
    masks = _masks(workdir, rounds)
    for before, after in zip(masks, masks[1:]):
        for key in before:  # masks only ever lose entries
            assert np.all(after[key] <= before[key]), key
    sizes = {key: mask.size for key, mask in masks[0].items()}
    total = sum(sizes.values())
    for r, round_masks in enumerate(masks):
        kept = sum(np.count_nonzero(m) for m in round_masks.values())
        assert summary[r]["remaining_fraction"] == pytest.approx(kept / total)
        if config.prune.scope == "global":
            assert kept == selection.remaining_after(
                total, config.prune.fraction_per_round, r
            )
    return masks


def _check_layer_counts(config, masks, keys):
    for r, round_masks in enumerate(masks):
        for key in keys:
            want = selection.remaining_after(
                round_masks[key].size, _rate(config, key), r
            )
            assert np.count_nonzero(round_masks[key]) == want, (r, key)


def test_lenet_smoke_runs(mnist_dir, tmp_path):
    config, summary = _run_smoke("lenet300_mnist", mnist_dir, str(tmp_path))
    masks = _check_rounds(config, summary, str(tmp_path))
    assert set(masks[0]) == {"fc1/kernel", "fc2/kernel", "output/kernel"}
    _check_layer_counts(config, masks, masks[0])


def test_resnet20_smoke_runs_globally(cifar10_dir, tmp_path):
    config, summary = _run_smoke("resnet20_cifar10", cifar10_dir, str(tmp_path))
    masks = _check_rounds(config, summary, str(tmp_path))
    # Global ranking: layers keep different fractions, the output included.
    kept = {key: np.count_nonzero(m) / m.size for key, m in masks[1].items()}
    assert len(set(kept.values())) > 1
    assert kept["output/kernel"] < 1.0


def test_conv2_smoke_runs_with_conv_rate(cifar10_dir, tmp_path):
    config, summary = _run_smoke("conv2_cifar10", cifar10_dir, str(tmp_path))
    masks = _check_rounds(config, summary, str(tmp_path))
    assert sorted(masks[0]) == [
        "conv1/kernel",
        "conv2/kernel",
        "fc1/kernel",
        "fc2/kernel",
        "output/kernel",
    ]
    # Conv layers at 10%, fully-connected ones at 20%, the output at 10%.
    _check_layer_counts(config, masks, masks[0])


def test_mnist1d_lottery_mlp_smoke_prunes_biases(tmp_path):
    # Generated data: no folder. Every kernel and bias at the one rate.
    config, summary = _run_smoke("mnist1d_lottery_mlp", "", str(tmp_path))
    masks = _check_rounds(config, summary, str(tmp_path))
    assert sorted(masks[0]) == [
        f"{layer}/{weight}"
        for layer in ("fc1", "fc2", "output")
        for weight in ("bias", "kernel")
    ]
    _check_layer_counts(config, masks, masks[0])

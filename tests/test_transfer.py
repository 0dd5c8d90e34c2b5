"""Ticket transfer (`keras_lottery.lottery.transfer`, `binaries.transfer`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import lenet300_mnist
from configs import mnist1d_lottery_mlp
from configs import mnist1d_mlp
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.lottery import transfer

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(generation_seed=42):
    config = mnist1d_lottery_mlp.get_config("smoke")
    config.export.enabled = False
    config.data.generation_seed = generation_seed
    return config


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A finished smoke lottery run on the official MNIST-1D."""
    workdir = str(tmp_path_factory.mktemp("source"))
    runner.run(_config(), workdir)
    return workdir


def _counts(masks):
    return {k: int(v.sum()) for k, v in masks.items()}


def test_transfer_trains_the_masks_and_the_baselines_and_resumes(
        source, tmp_path):
    workdir = str(tmp_path / "transfer")
    summary = transfer.run_transfer(source, 2, _config(1), workdir)
    assert [e["arm"] for e in summary] == [
        "dense", "target_ticket", "transferred", "random"]
    kept = [e["remaining_fraction"] for e in summary]
    assert kept[0] == 1 and kept[1] == kept[2] == kept[3] < 1
    theirs = files.read_arrays(paths.masks_file(source, 2))
    moved = files.read_arrays(paths.masks_file(
        os.path.join(workdir, "transferred"), 2))
    random = files.read_arrays(paths.masks_file(
        os.path.join(workdir, "random"), 2))
    found = files.read_arrays(paths.masks_file(
        os.path.join(workdir, "target"), 2))
    assert all(np.array_equal(theirs[k], moved[k]) for k in theirs)
    assert _counts(random) == _counts(theirs)
    assert any(not np.array_equal(random[k], theirs[k]) for k in theirs)
    # The target's own ticket is found on the other data.
    assert any(not np.array_equal(found[k], theirs[k]) for k in theirs)
    target_config = files.read_json(paths.config_file(workdir))
    assert target_config["data"]["generation_seed"] == 1
    assert transfer.run_transfer(source, 2, _config(1), workdir) == summary
    with pytest.raises(ValueError, match=r"^`workdir` holds a transfer of "
                       r"another source, round or init"):
        transfer.run_transfer(source, 2, _config(1), workdir, init="fresh")


def test_fresh_init_starts_from_the_targets_own_weights(source):
    experiment = trainer.Experiment(_config(1))
    masks = transfer._check_fit(experiment, source, 2)
    model = transfer._arm_model(experiment, source, 2, masks, "transferred",
                                "fresh")
    fresh = experiment.build_model(experiment.config.seed)
    rewound = transfer._arm_model(experiment, source, 2, masks,
                                  "transferred", "rewind")
    theirs = experiment.load_model(paths.model_file(source, 2))
    state.rewind(theirs)
    for got, want in zip(model.weights, fresh.weights):
        if "mask" in got.path or "rewind" in got.path:
            continue
        name = got.path.rsplit("/", 1)[0]
        mask = masks.get(f"{name.split('/')[0]}/{got.name}")
        expected = want.numpy() * (mask if mask is not None else 1)
        np.testing.assert_array_equal(got.numpy(), expected)
    for got, want in zip(rewound.weights, theirs.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_a_source_of_another_input_shape_is_refused(source, mnist_dir,
                                                    tmp_path):
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    workdir = tmp_path / "transfer"
    with pytest.raises(ValueError, match=r"^`source` holds a network of "
                       r"input shape \(40, 1\); the target's examples have "
                       r"shape \(28, 28, 1\): a ticket transfers between "
                       r"tasks of one input shape. Received: source="):
        transfer.run_transfer(source, 2, config, str(workdir))
    assert not workdir.exists()


@pytest.mark.parametrize("round_index, make_config, message", [
    (3, _config, r"^`round` must be a done round of `source`"),
    (0, _config, r"^`round` must be an int >= 1"),
    (2, lambda: mnist1d_mlp.get_config("smoke"),
     r"^`source`'s masks do not fit the target's network .*fc1"),
])
def test_bad_transfer_input_writes_nothing(source, tmp_path, round_index,
                                           make_config, message):
    workdir = tmp_path / "transfer"
    with pytest.raises(ValueError, match=message) as caught:
        transfer.run_transfer(source, round_index, make_config(),
                              str(workdir))
    assert "\n" not in str(caught.value)
    assert not workdir.exists()


def test_the_binary_refuses_a_source_that_is_no_run_in_one_line(tmp_path):
    # A process of its own: binaries.transfer defines --config, as
    # binaries.lottery does, and both cannot be imported in one process.
    missing = str(tmp_path / "nothing")
    result = subprocess.run(
        [sys.executable, "-m", "binaries.transfer",
         "--config=configs/mnist1d_lottery_mlp.py:smoke",
         f"--source={missing}", "--round=1",
         f"--workdir={tmp_path / 'out'}"],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "transfer: `source` must be a lottery run's workdir (it has no "
        f"config.json). Received: source={missing!r}")
    assert not (tmp_path / "out").exists()


def test_data_variant_fields_are_checked_and_old_workdirs_resume(tmp_path):
    config = _config()
    held = json.loads(config.to_json())
    del held["data"]["classes"], held["data"]["generation_seed"]
    files.write_json(paths.config_file(str(tmp_path)), held)
    run_config.claim_workdir(config, str(tmp_path))  # no difference
    config.data.classes = (1, 1)
    with pytest.raises(ValueError, match=r"^`data.classes` must be a tuple "
                       r"of distinct labels >= 0. Received: "
                       r"data.classes=\(1, 1\)"):
        run_config.check_config(config)
    config = lenet300_mnist.get_config("smoke")
    config.data.generation_seed = 3
    with pytest.raises(ValueError, match=r"^`data.generation_seed` draws a "
                       r"generated dataset \(mnist1d\) anew; 'mnist' is "
                       r"read"):
        run_config.check_config(config)

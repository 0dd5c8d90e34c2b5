"""Workdirs written before the package moved into rooms still load and resume.

`tests/data/workdir_before_rooms` was written at db18c25, the last commit of
the flat layout (`keras_lottery/masking.py`, ...), by

    python -m binaries.lottery --config=configs/mnist1d_mlp.py:smoke \
        --config.deterministic=True --config.export.enabled=False \
        --workdir=tests/data/workdir_before_rooms

(lock and tensorboard/ removed). Its `.keras` files name the classes by
their registered names (`keras_lottery>MaskedWrapper`) and by the modules
they lived in then (`keras_lottery.masking`).
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.base import paths

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD = os.path.join(_REPO_ROOT, "tests", "data", "workdir_before_rooms")
# The command that wrote it; the smoke variant has scaled early-bird's check
# interval since (1,000 then, 17 now), so the old value is given.
_COMMAND = ["--config=configs/mnist1d_mlp.py:smoke",
            "--config.deterministic=True", "--config.export.enabled=False",
            "--config.prune.early_bird.every_steps=1000"]


def _binary(name, *args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", f"binaries.{name}", *args],
                          cwd=_REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("round_index", [0, 1, 2])
def test_an_old_model_file_loads_with_its_masks(round_index):
    model = keras.saving.load_model(paths.model_file(OLD, round_index))
    with np.load(paths.masks_file(OLD, round_index)) as saved:
        expected = dict(saved)
    masks = keras_lottery.get_masks(model)
    assert sorted(masks) == sorted(expected)
    for key, mask in masks.items():
        np.testing.assert_array_equal(mask, expected[key])
    for wrapper in keras_lottery.wrapping.wrapped_layers(model):
        for key, variable in zip(wrapper.mask_keys(),
                                 wrapper.masked_variables):
            weight = keras.ops.convert_to_numpy(variable.value)
            assert np.all(weight[expected[key] == 0] == 0), key
    x = np.random.default_rng(0).normal(size=(8, 40, 1)).astype("float32")
    np.testing.assert_allclose(keras_lottery.strip(model)(x), model(x),
                               rtol=1e-6, atol=1e-6)


def test_an_old_workdir_resumes_to_the_masks_it_had(tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(OLD, workdir)
    # As if killed after round 1: round 2 and the summary are not there.
    shutil.rmtree(os.path.dirname(paths.masks_file(workdir, 2)))
    os.remove(paths.summary_file(workdir))
    done = _binary("lottery", *_COMMAND, f"--workdir={workdir}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Round 0 is done; skipping it." in done.stderr
    for name in ("masks.npz", "units.npz"):
        with np.load(os.path.join(os.path.dirname(
                paths.masks_file(OLD, 2)), name)) as want, np.load(
                os.path.join(os.path.dirname(paths.masks_file(workdir, 2)),
                             name)) as got:
            assert sorted(want) == sorted(got)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
    timing = ("seconds",)
    with open(paths.summary_file(OLD)) as f:
        want = json.load(f)
    with open(paths.summary_file(workdir)) as f:
        got = json.load(f)
    strip = [{k: v for k, v in e.items() if not k.endswith(timing)}
             for e in want]
    # Summaries now say what tickets were judged on: as then, accuracy.
    assert {(e.pop("compared_metric"), e.pop("compared_mode"))
            for e in got} == {("accuracy", "max")}
    assert [{k: v for k, v in e.items() if not k.endswith(timing)}
            for e in got] == strip


def test_a_control_runs_on_an_old_workdir(tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(OLD, workdir)
    done = _binary("controls", f"--workdir={workdir}",
                   "--control=random_reinit", "--rounds=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.exists(paths.metrics_file(
        paths.control_workdir(workdir, "random_reinit"), 1))

"""Tasks other than classification into classes: any Keras loss and metrics.

A regression (float targets, mean squared error, early stopping on
`val_mae`) and a binary task (binary cross-entropy on one logit, `auc`),
on two real data sets that ship with scikit-learn
(docs/examples/tabular_tasks.py), through `keras_lottery.run_experiment`
and through a config and `binaries.lottery`, with the controls and export
run on their workdirs; bad input in one line, the workdir untouched.
"""

import os
import subprocess
import sys

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from binaries import export as export_binary
from configs import mnist1d_mlp
from docs.examples import tabular_tasks
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import controls
from keras_lottery.lottery import runner

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_EXAMPLES = os.path.join(_REPO_ROOT, "docs", "examples")

# name: (loader, loss, metrics, monitor, compared metric, direction).
_TASKS = {
    "regression": (tabular_tasks.load_diabetes, "mse", ("mae",),
                   "val_mae", "mae", "min"),
    "binary": (tabular_tasks.load_breast_cancer, "binary_crossentropy",
               ("auc", "binary_accuracy"), "val_auc", "auc", "max"),
}


def _build():
    return tabular_tasks.build(_input_shape, 1, 0.0, seed=0)


_input_shape = None


def _check_workdir(workdir, task):
    """What every run of `task` must leave, checked from its files."""
    _, _, metrics, monitor, metric, mode = _TASKS[task]
    summary = files.read_json(paths.summary_file(workdir))
    assert [e["round"] for e in summary] == [0, 1, 2]
    assert {(e["compared_metric"], e["compared_mode"]) for e in summary} == {
        (metric, mode)}
    sign = 1 if mode == "min" else -1
    dense = summary[0]
    for entry in summary:
        record = files.read_json(paths.metrics_file(workdir, entry["round"]))
        history = record["history"]
        for key in ("loss", *metrics):
            assert all(np.isfinite(h[f"validation_{key}"]) for h in history)
        # Early stopping kept the best monitored value, earliest of equals.
        monitored = [sign * h[f"validation_{monitor[4:]}"] for h in history]
        best = history[int(np.argmin(monitored))]
        assert entry["early_stop_step"] == best["step"]
        assert entry[f"test_{metric}"] == best[f"test_{metric}"]
        assert entry[f"final_test_{metric}"] == history[-1][f"test_{metric}"]
        if entry["round"]:
            good = (entry[f"test_{metric}"] <= dense[f"test_{metric}"]
                    if mode == "min" else
                    entry[f"test_{metric}"] >= dense[f"test_{metric}"])
            assert entry["winning_ticket"] == (
                good and entry["early_stop_step"] <= dense["early_stop_step"])
    return summary


def _chance(task):
    """The test metric of knowing nothing: the training mean predicted
    (regression MAE), or a constant score (AUC 0.5)."""
    (_, train_y), (_, test_y) = _TASKS[task][0]("")
    if task == "regression":
        return float(np.mean(np.abs(test_y - train_y.mean())))
    return 0.5


@pytest.mark.parametrize("task", sorted(_TASKS))
def test_run_experiment_trains_and_judges_on_the_monitored_metric(
        task, tmp_path):
    global _input_shape
    loader, loss, metrics, monitor, metric, mode = _TASKS[task]
    train, test = loader("")
    _input_shape = train[0].shape[1:]
    if task == "regression":
        # A loss object: kept in config.json, serialised.
        loss = keras.losses.MeanSquaredError()
    workdir = str(tmp_path / "run")
    summary = keras_lottery.run_experiment(
        _build, train, test_data=test, workdir=workdir, num_steps=60,
        eval_every_steps=20, batch_size=32, learning_rate=0.01,
        jit_compile=False, loss=loss, metrics=list(metrics),
        monitor=monitor, prune={"num_rounds": 2, "fraction_per_round": 0.5},
        verbose=0)
    assert summary == _check_workdir(workdir, task)
    config = files.read_json(paths.config_file(workdir))
    assert config["eval"]["metrics"] == list(metrics)
    if task == "regression":
        assert config["train"]["loss"]["class_name"] == "MeanSquaredError"
    # The dense network learned something a guess does not know.
    dense = summary[0][f"test_{metric}"]
    assert dense < 0.8 * _chance(task) if mode == "min" else dense > 0.9
    # The controls rebuild the loss from config.json and judge alike.
    control = controls.run_control(workdir, "random_reinit", [1])
    assert [(e["round"], e["compared_metric"]) for e in control] == [
        (1, metric)]
    good = (control[0][f"test_{metric}"] <= dense if mode == "min"
            else control[0][f"test_{metric}"] >= dense)
    assert control[0]["winning_ticket"] == (
        good and control[0]["early_stop_step"] <= summary[0][
            "early_stop_step"])
    # A rerun resumes: nothing to train, the same summary.
    again = keras_lottery.run_experiment(
        _build, train, test_data=test, workdir=workdir, num_steps=60,
        eval_every_steps=20, batch_size=32, learning_rate=0.01,
        jit_compile=False, loss=loss, metrics=list(metrics),
        monitor=monitor, prune={"num_rounds": 2, "fraction_per_round": 0.5},
        verbose=0)
    assert [e[f"test_{metric}"] for e in again] == [
        e[f"test_{metric}"] for e in summary]
    # Export: the SavedModel computes the round's model.
    written = export_binary.run(workdir, 2, str(tmp_path / "export"),
                                ["saved_model"], "none", "lottery", 1)
    served = tf.saved_model.load(written["saved_model"])
    model = keras.models.load_model(paths.model_file(workdir, 2))
    outputs = served.signatures["serving_default"](
        tf.constant(test[0][:8]))
    logits = keras.ops.convert_to_numpy(model(test[0][:8]))
    np.testing.assert_allclose(outputs["logits"].numpy(), logits,
                               rtol=1e-4, atol=1e-5)
    # Probabilities as the loss reads the outputs: a sigmoid, or none.
    if task == "binary":
        np.testing.assert_allclose(outputs["probabilities"].numpy(),
                                   1 / (1 + np.exp(-logits)), rtol=1e-4,
                                   atol=1e-5)
    else:
        assert sorted(outputs) == ["logits"]


def _binary_args(task, workdir):
    loader, loss, metrics, monitor, _, _ = _TASKS[task]
    return [
        "--config=configs/mnist1d_mlp.py:smoke",
        f"--config.data.name=tabular_tasks:{loader.__name__}",
        "--config.model.name=tabular_tasks:build",
        "--config.data.validation_size=60",
        "--config.train.batch_size=32",
        "--config.train.num_steps=60", "--config.eval.every_steps=20",
        "--config.train.checkpoint_every_steps=20",
        "--config.train.steps_per_loop=20",
        "--config.prune.fraction_per_round=0.5",
        # The dense path: no compute path traced per round (seconds).
        "--config.train.sparse_compute=off",
        f"--config.train.loss={loss}",
        f"--config.eval.metrics={tuple(metrics)!r}",
        f"--config.eval.monitor={monitor}", f"--workdir={workdir}"]


def _binary(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(
               [_EXAMPLES, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", *args], cwd=_REPO_ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("task", sorted(_TASKS))
def test_a_config_runs_the_task_through_the_binaries(task, tmp_path):
    workdir = str(tmp_path / "run")
    done = _binary("binaries.lottery", *_binary_args(task, workdir))
    assert done.returncode == 0, done.stderr[-2000:]
    summary = _check_workdir(workdir, task)
    metric = _TASKS[task][4]
    (closing,) = [line for line in done.stderr.splitlines()
                  if "Done: summary in" in line]
    assert f"test {metric.replace('_', ' ')} " in closing
    if task == "binary":
        assert summary[0]["test_auc"] > 0.9
    # The controls and export read the task from config.json (the loader
    # by import path: the examples folder on the path, as for the binary).
    sys.path.insert(0, _EXAMPLES)
    try:
        control = controls.run_control(workdir, "random_prune", [2])
    finally:
        sys.path.remove(_EXAMPLES)
    assert [(e["round"], e["compared_metric"]) for e in control] == [
        (2, metric)]
    written = export_binary.run(workdir, 1, str(tmp_path / "export"),
                                ["saved_model"], "none", "lottery", 1)
    assert os.path.isdir(written["saved_model"])


def _config(**fields):
    config = mnist1d_mlp.get_config("smoke")
    config.data.name = "docs.examples.tabular_tasks:load_diabetes"
    config.model.name = "docs.examples.tabular_tasks:build"
    config.data.validation_size = 60
    config.train.loss = "mse"
    config.eval.metrics = ("mae",)
    for name, value in fields.items():
        section, field = name.split("__")
        config[section][field] = value
    return config


@pytest.mark.parametrize("arguments, fields, message", [
    (dict(loss="mean_cubed_error"), dict(train__loss="mean_cubed_error"),
     r"`(train\.)?loss` must be a Keras loss name .*it is not one\. "
     r"Received: (train\.)?loss='mean_cubed_error'$"),
    (dict(metrics=["mae", "sharpness"]),
     dict(eval__metrics=("mae", "sharpness")),
     r"`(eval\.)?metrics` must hold Keras metric names .*'sharpness' is "
     r"not one\. Received: (eval\.)?metrics=\['mae', 'sharpness'\]$"),
    (dict(monitor="val_accuracy"), dict(eval__monitor="val_accuracy"),
     r"`(eval\.)?monitor` must be a value each evaluation reports: "
     r"'val_loss', 'val_mae'\. Received: (eval\.)?monitor='val_accuracy'$"),
    (dict(monitor="val_mae", monitor_mode="up"),
     dict(eval__monitor="val_mae", eval__monitor_mode="up"),
     r"`(eval\.)?monitor_mode` must be one of 'auto', 'min', 'max'\. "
     r"Received: (eval\.)?monitor_mode='up'$"),
])
def test_bad_task_is_one_line_and_writes_nothing(arguments, fields, message,
                                                 tmp_path):
    global _input_shape
    train, test = tabular_tasks.load_diabetes("")
    _input_shape = train[0].shape[1:]
    workdir = tmp_path / "run"
    arguments = {"loss": "mse", "metrics": ["mae"], **arguments}
    with pytest.raises(ValueError, match=message) as caught:
        keras_lottery.run_experiment(
            _build, train, test_data=test, workdir=str(workdir),
            num_steps=10, eval_every_steps=10, verbose=0, **arguments)
    assert "\n" not in str(caught.value)
    assert not workdir.exists()
    with pytest.raises(ValueError, match=message) as caught:
        runner.run(_config(**fields), str(workdir))
    assert "\n" not in str(caught.value)
    assert not workdir.exists()


def test_float_targets_need_a_loss_that_takes_them(tmp_path):
    """Today's loss still takes integer labels only, in one line."""
    global _input_shape
    train, test = tabular_tasks.load_diabetes("")
    _input_shape = train[0].shape[1:]
    with pytest.raises(ValueError, match=(
            r"^`train_data` must be \(x, y\) with x numbers and y integer "
            r"labels.*train_y is float32.*a loss other than sparse")):
        keras_lottery.run_experiment(
            _build, train, test_data=test, workdir=str(tmp_path / "run"),
            num_steps=10, eval_every_steps=10, verbose=0)
    assert not (tmp_path / "run").exists()


def test_an_old_workdir_config_gets_the_task_it_ran():
    """A config.json without the task's fields is today's classification.
    """
    from keras_lottery.engine import tasks
    from keras_lottery.lottery import run_config

    old = ml_collections.ConfigDict(mnist1d_mlp.get_config()).to_dict()
    del old["train"]["loss"]
    for field in ("metrics", "monitor", "monitor_mode"):
        del old["eval"][field]
    task = tasks.from_config(run_config.with_added_fields(old))
    assert task.is_default and task.sparse
    assert (task.compared, task.compared_mode) == ("accuracy", "max")


def test_a_regression_prunes_by_gradients_of_its_own_loss(tmp_path):
    """A data-driven criterion ('gradient': |w * dL/dw|) on the diabetes
    regression scores with the task's loss, mean squared error: round 1's
    masks are those its gradients give on round 0's weights and score
    batches, not those of another loss. GraSP, which softens logits, is
    refused for a loss that reads values, in one line."""
    from keras_lottery.lottery import planning
    from keras_lottery.lottery import trainer
    from keras_lottery.pruning import pruner

    workdir = str(tmp_path / "run")
    config = _config(prune__method="gradient", prune__score_batches=3,
                     prune__num_rounds=1, train__num_steps=40,
                     eval__every_steps=20, train__steps_per_loop=20,
                     train__sparse_compute="off", export__enabled=False)
    summary = runner.run(config, workdir)
    assert [e["round"] for e in summary] == [0, 1]
    made = files.read_arrays(paths.masks_file(workdir, 1))
    experiment = trainer.Experiment(config)
    data = experiment.score_data(1)

    def masks_by(loss):
        model = experiment.load_model(paths.model_file(workdir, 0))
        return pruner.next_masks(model, planning.pruning_plan(config, model),
                                 config.seed + 1, data, loss)

    def mean(fn):
        return lambda y, outputs: tf.reduce_mean(fn(y, outputs))

    by_mse = masks_by(mean(keras.losses.mean_squared_error))
    by_mae = masks_by(mean(keras.losses.mean_absolute_error))
    assert sorted(made) == sorted(by_mse)
    for key in made:
        np.testing.assert_array_equal(made[key], by_mse[key])
    assert any(not np.array_equal(made[k], by_mae[k]) for k in made)
    with pytest.raises(ValueError, match=(
            r"^`prune.method` 'grasp' softens logits before the loss.*"
            r"Received: prune.method='grasp'$")):
        runner.run(_config(prune__method="grasp"), str(tmp_path / "grasp"))
    assert not (tmp_path / "grasp").exists()

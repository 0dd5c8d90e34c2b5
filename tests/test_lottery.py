"""End-to-end tests of the lottery runner on the real MNIST (smoke config)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.engine import training
from keras_lottery.lottery import controls
from keras_lottery.lottery import planning
from keras_lottery.lottery import runner
from keras_lottery.pruning import selection

SIZES = {"fc1/kernel": 235200, "fc2/kernel": 30000, "output/kernel": 1000}


def smoke_config(mnist_dir, **overrides):
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.export.enabled = False
    for name, value in overrides.items():
        section, field = name.split("__")
        config[section][field] = value
    return config


def masks(workdir, round_index):
    return files.read_arrays(paths.masks_file(workdir, round_index))


@pytest.fixture(scope="module")
def finished(mnist_dir, tmp_path_factory):
    """An uninterrupted smoke run, export included."""
    workdir = str(tmp_path_factory.mktemp("run") / "workdir")
    config = smoke_config(mnist_dir)
    config.export.enabled = True
    summary = runner.run(config, workdir)
    return workdir, summary


def test_masks_shrink_exactly_as_the_rates_say(finished):
    workdir, _ = finished
    for round_index in range(4):
        mask = masks(workdir, round_index)
        for key, size in SIZES.items():
            rate = 0.1 if key.startswith("output") else 0.2
            assert int(mask[key].sum()) == selection.remaining_after(
                size, rate, round_index), (round_index, key)
        if round_index:
            previous = masks(workdir, round_index - 1)
            for key in SIZES:
                assert np.all(mask[key] <= previous[key])


def test_summary_is_complete(finished):
    workdir, summary = finished
    assert files.read_json(paths.summary_file(workdir)) == summary
    assert [entry["round"] for entry in summary] == [0, 1, 2, 3]
    for entry in summary:
        for key in ("remaining_fraction", "early_stop_step", "test_accuracy",
                    "final_test_accuracy", "winning_ticket"):
            assert key in entry
        assert 0.85 < entry["test_accuracy"] <= 1.0
        assert entry["early_stop_step"] in (100, 200, 300)
    assert summary[0]["winning_ticket"] is None
    assert all(isinstance(e["winning_ticket"], bool) for e in summary[1:])
    fractions = [entry["remaining_fraction"] for entry in summary]
    assert fractions[0] == 1.0 and fractions == sorted(fractions,
                                                       reverse=True)
    metrics = files.read_json(paths.metrics_file(workdir, 3))
    assert [h["step"] for h in metrics["history"]] == [100, 200, 300]


def test_summary_counts_what_each_round_cost(finished):
    _, summary = finished
    assert [e["train_steps"] for e in summary] == [300] * 4
    assert [e["cumulative_train_steps"] for e in summary] == [
        300, 600, 900, 1200]
    assert [e["ticket_train_steps"] for e in summary] == [
        300, 600, 900, 1200]
    seconds = [e["cumulative_seconds"] for e in summary]
    assert seconds[0] > 0 and seconds == sorted(seconds)
    for entry in summary:
        assert entry["round_seconds"] >= (entry["train_seconds"]
                                          + entry["eval_seconds"])


def test_rerun_skips_completed_rounds(finished, mnist_dir):
    workdir, summary = finished
    stamps = {r: os.stat(paths.metrics_file(workdir, r)).st_mtime_ns
              for r in range(4)}
    config = smoke_config(mnist_dir)
    config.export.enabled = True
    assert runner.run(config, workdir) == summary
    for r, stamp in stamps.items():
        assert os.stat(paths.metrics_file(workdir, r)).st_mtime_ns == stamp


def test_another_config_on_the_workdir_is_refused(finished, mnist_dir):
    workdir, _ = finished
    before = files.read_json(paths.config_file(workdir))
    config = smoke_config(mnist_dir, train__learning_rate=0.1)
    with pytest.raises(ValueError, match=r"`workdir` holds a run of another "
                       r"config.*train.learning_rate: 0.0012 in the workdir,"
                       r" 0.1 now"):
        runner.run(config, workdir)
    assert files.read_json(paths.config_file(workdir)) == before


def _kill_in_round_2(monkeypatch, config, workdir):
    """Runs `config` until a simulated preemption in round 2, after its
    first checkpoint; the workdir then holds that checkpoint."""
    calls = {"n": 0}
    real_train = training.Trainer.train

    def crashing_train(self, dataset_fn, num_steps):
        calls["n"] += 1
        if calls["n"] == 6 * 2 + 3:
            raise KeyboardInterrupt("simulated preemption")
        return real_train(self, dataset_fn, num_steps)

    monkeypatch.setattr(training.Trainer, "train", crashing_train)
    with pytest.raises(KeyboardInterrupt):
        runner.run(config, workdir)
    monkeypatch.setattr(training.Trainer, "train", real_train)
    assert os.listdir(paths.checkpoint_dir(workdir, 2))


def _same_run(workdir, reference):
    """The same masks and evaluation histories in every round."""
    for r in range(4):
        for key, mask in masks(reference, r).items():
            np.testing.assert_array_equal(masks(workdir, r)[key], mask)
        got = files.read_json(paths.metrics_file(workdir, r))
        want = files.read_json(paths.metrics_file(reference, r))
        assert got["history"] == want["history"]


def test_interrupted_run_resumes_to_the_same_result(finished, mnist_dir,
                                                    tmp_path, monkeypatch):
    reference, _ = finished
    workdir = str(tmp_path / "workdir")
    _kill_in_round_2(monkeypatch, smoke_config(mnist_dir), workdir)
    assert os.path.exists(paths.metrics_file(workdir, 1))
    assert not os.path.exists(paths.metrics_file(workdir, 2))
    runner.run(smoke_config(mnist_dir), workdir)
    _same_run(workdir, reference)


@pytest.fixture(scope="module")
def compact(mnist_dir, tmp_path_factory):
    """The smoke run on the compact path (engine.sparse_compute)."""
    workdir = str(tmp_path_factory.mktemp("compact") / "workdir")
    runner.run(smoke_config(mnist_dir, train__sparse_compute="compact"),
                workdir)
    return workdir


def _close(workdir, reference, rounds=range(4)):
    """The same run up to float sums: masks, accuracies, early stops."""
    for r in rounds:
        for key, mask in masks(reference, r).items():
            # A weight tied at the threshold to float precision may swap
            # with its neighbour (as under `mirrored`).
            assert np.count_nonzero(masks(workdir, r)[key] != mask) <= 4
        got = files.read_json(paths.metrics_file(workdir, r))
        want = files.read_json(paths.metrics_file(reference, r))
        for a, b in zip(got["history"], want["history"], strict=True):
            assert abs(a["validation_accuracy"]
                       - b["validation_accuracy"]) <= 0.002, (r, a, b)


def test_the_compact_path_trains_as_the_dense_engine(finished, compact):
    reference, _ = finished
    _close(compact, reference)
    assert [files.read_json(paths.metrics_file(compact, r))["compute_path"]
            for r in range(4)] == ["compact"] * 4
    # "auto" trains these tickets (41% remaining and up) dense.
    assert {files.read_json(paths.metrics_file(reference, r))[
        "compute_path"] for r in range(4)} == {"dense"}


@pytest.mark.parametrize("resume_on", ["compact", "off"])
def test_a_round_killed_on_the_compact_path_resumes_on_any_path(
        compact, mnist_dir, tmp_path, monkeypatch, resume_on):
    workdir = str(tmp_path / "workdir")
    _kill_in_round_2(monkeypatch, smoke_config(
        mnist_dir, train__sparse_compute="compact"), workdir)
    runner.run(smoke_config(mnist_dir, train__sparse_compute=resume_on),
                workdir)
    if resume_on == "off":
        _close(workdir, compact)
    else:
        _same_run(workdir, compact)


def test_mirrored_strategy_gives_the_same_masks(finished, mnist_dir,
                                                tmp_path):
    reference, _ = finished
    workdir = str(tmp_path / "mirrored")
    runner.run(smoke_config(mnist_dir, train__strategy="mirrored"), workdir)
    for r in range(4):
        for key, mask in masks(reference, r).items():
            got = masks(workdir, r)[key]
            assert got.sum() == mask.sum()
            # Two replicas sum their gradients in another order than one
            # device does, so the weights differ in the last bits and a
            # weight tied at the threshold to that precision may swap
            # with its neighbour; more than that would be a bug.
            assert np.count_nonzero(got != mask) <= 4, (r, key)
        if r < 2:
            for key, mask in masks(reference, r).items():
                np.testing.assert_array_equal(masks(workdir, r)[key], mask)


def test_export_serves_without_keras_lottery(finished, tmp_path):
    workdir, _ = finished
    export_root = paths.export_dir(workdir)
    version = os.path.join(export_root, "lottery", "1")
    assert os.path.isdir(version)
    code = (
        "import sys; sys.modules['keras_lottery'] = None\n"
        "import numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({version!r})\n"
        "f = m.signatures['serving_default']\n"
        "name = list(f.structured_input_signature[1])[0]\n"
        "out = f(**{name: tf.zeros([3, 28, 28, 1])})\n"
        "print(sorted(out), out['logits'].shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(3, 10)" in result.stdout
    with open(os.path.join(version, "assets", "sparsity.json")) as f:
        assert json.load(f)["total"]


def test_config_errors_name_the_field(mnist_dir, tmp_path):
    cases = [
        ({"prune__fraction_per_round": 1.0},
         r"`prune.fraction_per_round` must be in \[0, 1\). Received: "
         r"prune.fraction_per_round=1.0"),
        ({"prune__num_rounds": -1},
         r"`prune.num_rounds` must be at least 0. Received: "
         r"prune.num_rounds=-1"),
        ({"prune__rewind_step": 300},
         r"`prune.rewind_step` must be an int in \[0, train.num_steps\), "
         r"or 'auto'. Received: prune.rewind_step=300"),
        ({"train__strategy": "gpus"}, r"`train.strategy` must be one of"),
        ({"prune__mode": "gradual"}, r"`prune.mode` must be one of "
         r"'iterative', 'one_shot'. Received: prune.mode='gradual'"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            runner.run(smoke_config(mnist_dir, **overrides),
                        str(tmp_path / "w"))
        assert not os.path.exists(tmp_path / "w")


def test_one_shot_prunes_the_dense_weights_to_the_same_counts(mnist_dir,
                                                              tmp_path):
    config = smoke_config(mnist_dir, prune__mode="one_shot",
                          prune__num_rounds=2, train__num_steps=100,
                          eval__every_steps=100)
    workdir = str(tmp_path / "oneshot")
    runner.run(config, workdir)
    dense = files.read_arrays(paths.masks_file(workdir, 0))
    for r in (1, 2):
        for key, size in SIZES.items():
            rate = 0.1 if key.startswith("output") else 0.2
            assert int(masks(workdir, r)[key].sum()) == (
                selection.remaining_after(size, rate, r))
    assert all(m.all() for m in dense.values())


def test_one_shot_trains_only_the_chosen_rounds(mnist_dir, tmp_path):
    config = smoke_config(mnist_dir, prune__mode="one_shot",
                          prune__one_shot_rounds=(2,),
                          train__num_steps=100, eval__every_steps=100)
    config.export.enabled = True
    workdir = str(tmp_path / "oneshot")
    summary = runner.run(config, workdir)
    assert [e["round"] for e in summary] == [0, 2]
    assert not os.path.exists(paths.round_dir(workdir, 1))
    for key, size in SIZES.items():
        rate = 0.1 if key.startswith("output") else 0.2
        assert int(masks(workdir, 2)[key].sum()) == (
            selection.remaining_after(size, rate, 2))
    sparsity = os.path.join(paths.export_dir(workdir), "lottery", "1",
                            "assets", "sparsity.json")
    assert files.read_json(sparsity)["total"]["remaining"] == summary[-1][
        "remaining_fraction"]


def test_testing_at_the_best_steps_gives_the_same_results(finished,
                                                          mnist_dir,
                                                          tmp_path):
    reference, want = finished
    workdir = str(tmp_path / "best")
    got = runner.run(smoke_config(mnist_dir, eval__test_at="best"),
                      workdir)
    keys = ("early_stop_step", "test_accuracy", "final_test_accuracy")
    assert [{k: e[k] for k in keys} for e in got] == [
        {k: e[k] for k in keys} for e in want]
    for r in range(4):
        history = files.read_json(paths.metrics_file(workdir, r))["history"]
        full = files.read_json(paths.metrics_file(reference, r))["history"]
        best = float("inf")
        for record, every in zip(history, full, strict=True):
            tested = "test_accuracy" in record
            assert tested == (record["validation_loss"] < best
                              or record is history[-1]), (r, record)
            if tested:
                assert record["test_accuracy"] == every["test_accuracy"]
            best = min(best, record["validation_loss"])


def test_controls_run_at_the_chosen_rounds(finished, tmp_path):

    workdir = str(tmp_path / "run")
    shutil.copytree(finished[0], workdir)
    summary = controls.run_control(workdir, "random_prune", rounds=(3, 2))
    assert [e["round"] for e in summary] == [2, 3]
    control_dir = paths.control_workdir(workdir, "random_prune")
    assert not os.path.exists(paths.round_dir(control_dir, 1))


def test_controls_run_from_a_finished_workdir(finished):
    workdir, _ = finished
    for control in paths.CONTROLS:
        summary = controls.run_control(workdir, control)
        assert [e["round"] for e in summary] == [1, 2, 3]
        control_dir = paths.control_workdir(workdir, control)
        for r in (1, 2, 3):
            ticket = masks(workdir, r)
            got = masks(control_dir, r)
            for key in ticket:
                assert got[key].sum() == ticket[key].sum()
                same = np.array_equal(got[key], ticket[key])
                assert same == (control == "random_reinit"), (control, key)


def _weights(model, rewind_point=False):
    """`{path: (value, mask or None)}` of every wrapped weight: its value,
    or its rewind point."""
    from keras_lottery.core import state

    found = {}
    for wrapper in state.wrappers(model):
        masks = state._masks_by_variable(wrapper)
        for variable, copy in wrapper.rewind_pairs:
            mask = masks.get(id(variable))
            found[variable.path] = (
                (copy if rewind_point else variable).numpy(),
                None if mask is None else mask.numpy())
    return found


def test_random_masks_of_a_late_rewound_run_start_from_its_w_k(mnist_dir,
                                                              tmp_path):
    from keras_lottery.lottery import trainer

    workdir = str(tmp_path / "late")
    config = smoke_config(mnist_dir, prune__rewind_step=10,
                          prune__num_rounds=1)
    runner.run(config, workdir)
    experiment = trainer.Experiment(config)
    w_k = _weights(experiment.load_model(paths.model_file(workdir, 0)),
                   rewind_point=True)
    w_0 = _weights(experiment.build_model(config.seed))
    for control in ("random_prune", "shuffle", "random_reinit"):
        got = _weights(controls._control_model(experiment, workdir, 1,
                                               control))
        kernel = next(p for p in got if p.endswith("kernel"))
        assert not np.array_equal(w_k[kernel][0], w_0[kernel][0])
        if control == "random_reinit":  # a fresh init: not W_k
            kept = got[kernel][1].astype(bool)
            assert not np.allclose(got[kernel][0][kept],
                                   w_k[kernel][0][kept])
            continue
        for path, (value, mask) in got.items():
            np.testing.assert_array_equal(
                value, w_k[path][0] * (1.0 if mask is None else mask))


def test_a_control_runs_on_a_workdir_from_before_a_field_existed(
        finished, tmp_path):
    """config.json of an older version lacks later fields (here
    train.sparse_compute): a control fills them with what that run did."""
    workdir = str(tmp_path / "old")
    shutil.copytree(finished[0], workdir,
                    ignore=shutil.ignore_patterns("controls", "export"))
    config = files.read_json(paths.config_file(workdir))
    del config["train"]["sparse_compute"]
    files.write_json(paths.config_file(workdir), config)
    summary = controls.run_control(workdir, "random_reinit", rounds=(1,))
    assert [e["round"] for e in summary] == [1]


def test_layer_fractions_give_conv_and_output_layers_their_rates():
    from configs import conv2_cifar10
    from keras_lottery.core import wrapping
    from keras_lottery.models import zoo

    config = conv2_cifar10.get_config()
    model = wrapping.wrap(zoo.build("conv2", (32, 32, 3), 10, seed=0))
    assert planning.layer_fractions(config.prune, model) == {
        "conv1": 0.1, "conv2": 0.1, "output": 0.1}
    config.prune.scope = "global"
    assert planning.layer_fractions(config.prune, model) == {}

"""Instability analysis (keras_lottery.lottery.instability,
binaries.instability)."""

import os
import re

import numpy as np
import pytest
import test_bad_input
import test_structured

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import wrapping
from keras_lottery.lottery import instability
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer


def test_instability_is_the_bump_over_the_mean_of_the_ends():
    row = instability.summarize_path(100, [0.02, 0.05, 0.09, 0.04])
    assert row["end_errors"] == [0.02, 0.04]
    assert row["max_error"] == 0.09
    assert row["instability"] == pytest.approx(0.06)
    assert not row["stable"]
    assert row["alphas"] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    flat = instability.summarize_path(0, [0.03, 0.035, 0.03])
    assert flat["instability"] == pytest.approx(0.005) and flat["stable"]
    rows = [{"rewind_step": 500, "stable": True},
            {"rewind_step": 0, "stable": False},
            {"rewind_step": 100, "stable": True}]
    assert instability.smallest_stable(rows) == 100
    assert instability.smallest_stable(rows[1:2]) is None


def test_copies_evaluate_about_twenty_times():
    assert instability.copy_eval_every(100, 20000) == 1000  # Conv-2, k=0
    assert instability.copy_eval_every(100, 18000) == 900
    assert instability.copy_eval_every(100, 1000) == 100  # not more often
    assert instability.copy_eval_every(10, 5) == 5  # at most the steps


@pytest.fixture(scope="module")
def run_of_one_round(mnist_dir, tmp_path_factory):
    config = test_structured.smoke_config(mnist_dir, num_rounds=1)
    workdir = str(tmp_path_factory.mktemp("instability") / "run")
    runner.run(config, workdir)
    return workdir


def test_the_copies_differ_and_the_path_ends_are_the_copies(
        run_of_one_round):
    workdir = run_of_one_round
    table = instability.run(workdir, 1, [20])
    assert [row["rewind_step"] for row in table["rows"]] == [20]
    folder = os.path.join(workdir, "instability", "round_01")
    ticket = files.read_arrays(paths.masks_file(workdir, 1))
    for row in table["rows"]:
        k = row["rewind_step"]
        assert len(row["test_errors"]) == instability.POINTS
        copies = os.path.join(folder, f"rewind_{k:05d}", "copy")
        finals = [1 - files.read_json(paths.metrics_file(copies, c))[
            "final_test_accuracy"] for c in instability.COPIES]
        # The path's ends are the two trained copies themselves.
        np.testing.assert_allclose(row["end_errors"], finals, atol=1e-6)
        for c in instability.COPIES:
            masks = files.read_arrays(paths.masks_file(copies, c))
            for key in ticket:
                np.testing.assert_array_equal(masks[key], ticket[key])
            history = files.read_json(paths.metrics_file(copies, c))[
                "history"]
            assert history[-1]["step"] == 40 - k
        assert row["instability"] == pytest.approx(
            row["max_error"] - np.mean(row["end_errors"]))
    # Different data orders: the two copies end apart.
    a, b = (files.read_json(paths.metrics_file(os.path.join(
        folder, "rewind_00020", "copy"), c))["history"] for c in (1, 2))
    assert [h["train_loss"] for h in a] != [h["train_loss"] for h in b]
    for name in ("instability.md", "instability.json",
                 "instability_k00020.png"):
        assert os.path.join(folder, name) in table["files"]
    assert table["smallest_stable_rewind_step"] == (
        20 if table["rows"][0]["stable"] else None)
    # Resumable: a rerun reads what is done and trains nothing.
    done = os.path.getmtime(os.path.join(folder, "rewind_00020",
                                         "path.json"))
    again = instability.run(workdir, 1, [20, 20])
    assert again["rows"] == table["rows"]
    assert os.path.getmtime(os.path.join(
        folder, "rewind_00020", "path.json")) == done


def test_processes_share_a_round_one_rewind_step_each(run_of_one_round):
    workdir = run_of_one_round
    instability.run(workdir, 1, [20])  # done above: trains nothing
    busy = os.path.join(workdir, "instability", "round_01", "rewind_00030")
    os.makedirs(busy, exist_ok=True)
    with files.exclusive(os.path.join(busy, "lock")):
        # Another process works on k = 30: k = 20's table is still written.
        table = instability.run(workdir, 1, [20])
        assert [row["rewind_step"] for row in table["rows"]] == [20]
        with pytest.raises(ValueError, match=(
                f"^{re.escape(busy)} is in use by another process")):
            instability.run(workdir, 1, [20, 30])
    assert not os.path.exists(os.path.join(busy, "path.json"))


def test_the_binary_refuses_a_round_not_done_in_one_line(run_of_one_round):
    workdir = run_of_one_round
    before = sorted(os.listdir(workdir))
    line = test_bad_input.cli("binaries.instability", f"--workdir={workdir}",
                              "--round=3", "--rewind_steps=0,100")
    assert line == ("instability: `round` must be a done round of the run "
                    "(now 0, 1). Received: round=3")
    assert sorted(os.listdir(workdir)) == before


@pytest.mark.parametrize("steps", [[0, 40], [-1], []])
def test_rewind_steps_must_be_within_training(run_of_one_round, steps):
    with pytest.raises(ValueError, match=(
            r"^`rewind_steps` must be one or more steps in \[0, "
            r"train.num_steps\) = \[0, 40\). Received: rewind_steps=")):
        instability.check(run_of_one_round, 1, steps)


def test_a_folder_without_a_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^`workdir` holds no lottery run "
                       r"\(no config.json\). Received: workdir="):
        instability.run(str(tmp_path), 0, [0])
    assert os.listdir(tmp_path) == []


# prune.rewind_step="auto" (keras_lottery.lottery.rewind_search).


def _rewind_weights(model):
    return [copy.numpy() for wrapper in wrapping.wrapped_layers(model)
            for _, copy in wrapper.rewind_pairs]


def test_auto_rewinds_to_the_dense_network_at_the_chosen_step(
        mnist_dir, tmp_path):
    # One candidate, k = 5: chosen whatever its instability.
    config = test_structured.smoke_config(
        mnist_dir, num_rounds=1, rewind_step="auto", auto_rewind_steps=(5,))
    workdir = str(tmp_path / "run")
    runner.run(config, workdir)
    choice = files.read_json(paths.rewind_step_file(workdir))
    assert choice["rewind_step"] == 5
    assert [row["rewind_step"] for row in choice["rows"]] == [5]
    assert choice["stable"] == choice["rows"][0]["stable"]
    # The search trained W_5 (5 steps) and two copies (35 steps each).
    assert choice["train_steps"] == 5 + 2 * 35
    folder = os.path.join(workdir, "instability", "round_00", "rewind_00005")
    experiment = trainer.Experiment(config)
    w5 = experiment.load_model(paths.model_file(
        os.path.join(folder, "dense"), 0))
    ticket = experiment.load_model(paths.model_file(workdir, 0))
    # Round 0 recorded the same W_5 as its rewind point (deterministic).
    for a, b in zip(_rewind_weights(ticket),
                    [v.numpy() for v in w5.weights if v.trainable]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert files.read_json(paths.config_file(workdir))["prune"][
        "rewind_step"] == "auto"
    summary = files.read_json(paths.summary_file(workdir))
    assert summary[0]["train_steps"] == 40 + choice["train_steps"]
    assert summary[1]["cumulative_train_steps"] == 40 + 75 + 40
    # A rerun reads the choice and trains nothing.
    before = os.path.getmtime(paths.rewind_step_file(workdir))
    runner.run(config, workdir)
    assert os.path.getmtime(paths.rewind_step_file(workdir)) == before


def test_auto_stops_at_the_first_stable_step(mnist_dir, tmp_path,
                                            monkeypatch):
    monkeypatch.setattr(instability, "STABLE", 1.0)  # every k is stable
    config = test_structured.smoke_config(
        mnist_dir, num_rounds=0, rewind_step="auto",
        auto_rewind_steps=(10, 0, 20))
    workdir = str(tmp_path / "run")
    runner.run(config, workdir)
    choice = files.read_json(paths.rewind_step_file(workdir))
    assert choice["rewind_step"] == 0 and choice["stable"]
    assert [row["rewind_step"] for row in choice["rows"]] == [0]
    assert not os.path.exists(os.path.join(
        workdir, "instability", "round_00", "rewind_00010"))


@pytest.mark.parametrize("field,value,expected", [
    ("rewind_step", "autp",
     "`prune.rewind_step` must be an int in [0, train.num_steps), or "
     "'auto'. Received: prune.rewind_step='autp'"),
    ("auto_rewind_steps", (0, 40),
     "`prune.auto_rewind_steps` must be a tuple of one or more steps in "
     "[0, train.num_steps) = [0, 40). Received: "
     "prune.auto_rewind_steps=(0, 40)"),
    ("auto_rewind_steps", (),
     "`prune.auto_rewind_steps` must be a tuple of one or more steps in "
     "[0, train.num_steps) = [0, 40). Received: prune.auto_rewind_steps=()"),
])
def test_a_bad_auto_rewind_is_one_line_and_writes_nothing(
        mnist_dir, tmp_path, field, value, expected):
    config = test_structured.smoke_config(mnist_dir, rewind_step="auto")
    config.prune[field] = value
    workdir = str(tmp_path / "run")
    with pytest.raises(ValueError) as raised:
        runner.run(config, workdir)
    assert str(raised.value) == expected
    assert not os.path.exists(workdir)

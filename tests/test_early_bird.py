"""Early-bird rounds (keras_lottery.lottery.early_bird): a round ends once the
mask the next pruning would make stops changing."""

import os
import signal
import subprocess
import sys

import keras
import ml_collections
import numpy as np
import pytest
import test_lottery
import test_reliability

from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import early_bird
from keras_lottery.lottery import planning
from keras_lottery.lottery import runner
from keras_lottery.pruning import pruner
from keras_lottery.pruning import selection

NEURONS = selection.Grouping("neuron", 1)


def test_distance_counts_differing_entries_or_units():
    a = {"x/kernel": np.array([[1, 0], [1, 1]]), "y/kernel": np.ones(4)}
    b = {"x/kernel": np.array([[1, 1], [0, 1]]), "y/kernel": np.ones(4)}
    assert early_bird.distance(a, b, {}) == 2 / 8
    assert early_bird.distance(a, a, {}) == 0.0
    # Per unit (columns): both columns keep an entry in both masks.
    assert early_bird.distance(a, b, {"x/kernel": NEURONS}) == 0 / 6
    c = {"x/kernel": np.array([[1, 0], [1, 0]]), "y/kernel": np.ones(4)}
    assert early_bird.distance(a, c, {"x/kernel": NEURONS}) == 1 / 6


def settings(every_steps=10, threshold=0.25, window=3):
    return ml_collections.ConfigDict({
        "enabled": True, "every_steps": every_steps,
        "threshold": threshold, "window": window})


def scripted_watch(monkeypatch, sequence, **kwargs):
    """A Watch whose next masks are `sequence`'s, one per check."""
    masks = iter(sequence)
    monkeypatch.setattr(pruner, "next_masks", lambda *a, **k: next(masks))
    return early_bird.Watch(settings(**kwargs), pruner.Plan(
        None, {}, {}, []), seed=0, data=None)


def entries(*ones):
    mask = np.zeros(8)
    mask[list(ones)] = 1
    return {"w": mask}


def test_the_round_ends_when_the_whole_window_is_close(monkeypatch):
    # The 3rd mask is 2/8 from the 2nd but 4/8 from the 1st; the 4th is
    # within 2/8 of the 2nd and 3rd: only the 4th check ends the round.
    watch = scripted_watch(monkeypatch, [
        entries(0, 1, 2), entries(0, 5, 6), entries(0, 5, 7),
        entries(0, 5, 7)])
    assert [watch.check(s, None) for s in (10, 20, 30, 40)] == [
        False, False, False, True]
    assert watch.stopped_at == 40
    assert [c["max_distance"] for c in watch.checks] == [
        None, None, 4 / 8, 2 / 8]


def test_a_window_of_one_ends_at_the_first_check(monkeypatch):
    watch = scripted_watch(monkeypatch, [entries(0)], window=1)
    assert watch.check(10, None)
    assert watch.record()["checks"] == [{"step": 10, "max_distance": 0.0}]


def test_checks_start_after_the_rewind_step():
    watch = early_bird.Watch(settings(every_steps=10), pruner.Plan(
        None, {}, {}, []), seed=0, data=None, rewind_step=25)
    assert watch.steps(60) == {30, 40, 50}


def test_the_window_survives_a_checkpoint(monkeypatch, tmp_path):
    sequence = [entries(0, 1), entries(0, 2), entries(0, 3)]
    watch = scripted_watch(monkeypatch, sequence)
    watch.check(10, None)
    watch.check(20, None)
    prefix = str(tmp_path / "ckpt-20")
    watch.save(prefix)
    again = scripted_watch(monkeypatch, [])
    again.restore(prefix, 20)
    assert again.checks == watch.checks
    assert len(again.masks) == 2
    for got, want in zip(again.masks, sequence):
        np.testing.assert_array_equal(got["w"], want["w"])
    assert early_bird.sidecars(str(tmp_path), "ckpt-30") == [
        prefix + early_bird.SUFFIX]
    assert early_bird.sidecars(str(tmp_path), "ckpt-20") == []


def smoke(mnist_dir, **early):
    config = test_lottery.smoke_config(mnist_dir)
    config.prune.early_bird.update({"enabled": True, "every_steps": 50,
                                    **early})
    return config


@pytest.mark.parametrize("granularity", ["weight", "neuron"])
def test_early_bird_rounds_end_early_and_take_the_checked_mask(
        mnist_dir, tmp_path, granularity):
    config = smoke(mnist_dir, every_steps=50, threshold=0.5, window=2)
    config.prune.num_rounds = 2
    config.prune.granularity = granularity
    workdir = str(tmp_path / granularity)
    summary = runner.run(config, workdir)
    for r in (0, 1):
        metrics = files.read_json(paths.metrics_file(workdir, r))
        record = metrics["early_bird"]
        stop = record["stopped_at"]
        assert stop is not None and stop < 300, record
        assert metrics["history"][-1]["step"] == stop
        assert "test_accuracy" in metrics["history"][-1]
        assert record["checks"][-1] == {"step": stop, "max_distance":
                                        record["checks"][-1]["max_distance"]}
        assert record["checks"][-1]["max_distance"] <= 0.5
        # The next round's mask is the one pruning the weights at the
        # stop gives: the saved model is the model of the last check.
        model = keras.models.load_model(paths.model_file(workdir, r))
        plan = planning.pruning_plan(config, model)
        want = pruner.next_masks(model, plan, config.seed + r + 1)
        got = files.read_arrays(paths.masks_file(workdir, r + 1))
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # The last round has no pruning after it: it trains to its end.
    assert "early_bird" not in files.read_json(
        paths.metrics_file(workdir, 2))
    steps = [e["train_steps"] for e in summary]
    assert steps[2] == 300 and steps[0] < 300 and steps[1] < 300
    assert summary[2]["cumulative_train_steps"] == sum(steps)


def test_a_kill_in_an_early_bird_round_resumes_to_the_same_mask(
        mnist_dir, tmp_path):
    # Checks at 10, 20 and 30 of 40 steps, a checkpoint at 20; a window of
    # 3 that always agrees ends each round at its third check, unless the
    # window is lost on resume (it would then train to 40).
    args = ("--config.prune.early_bird.enabled=True",
            "--config.prune.early_bird.every_steps=10",
            "--config.prune.early_bird.window=3",
            "--config.prune.early_bird.threshold=1.0",
            "--config.export.enabled=False")

    def run(workdir, fault=""):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop(faults.ENV, None)
        if fault:
            env[faults.ENV] = fault
        return subprocess.run(
            [sys.executable, "-m", "binaries.lottery",
             *test_reliability.ARGS, *args, f"--config.data.dir={mnist_dir}",
             f"--workdir={workdir}"], cwd=test_reliability._REPO_ROOT,
            env=env, capture_output=True, text=True, timeout=300)

    reference, workdir = str(tmp_path / "reference"), str(tmp_path / "w")
    assert run(reference).returncode == 0
    # At round 0's third check (restored from ckpt-20), then in round 1.
    for fault in ("early_bird@3", "checkpoint_saved@2"):
        result = run(workdir, fault)
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert run(workdir).returncode == 0
    for r in range(test_reliability.NUM_ROUNDS + 1):
        want = files.read_arrays(paths.masks_file(reference, r))
        got = files.read_arrays(paths.masks_file(workdir, r))
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    summary = files.read_json(paths.summary_file(workdir))
    assert [e["train_steps"] for e in summary] == [30, 30, 40]
    assert test_reliability.without_timings(summary) == (
        test_reliability.without_timings(
            files.read_json(paths.summary_file(reference))))


@pytest.mark.parametrize("field, value, message", [
    ("threshold", 1.5, r"^`prune.early_bird.threshold` must be a number in "
     r"\[0, 1\]. Received: prune.early_bird.threshold=1.5$"),
    ("window", 0, r"^`prune.early_bird.window` must be an int >= 1. "
     r"Received: prune.early_bird.window=0$"),
    ("every_steps", 301, r"^`prune.early_bird.every_steps` must be an int "
     r"in \[1, train.num_steps\]. Received: "
     r"prune.early_bird.every_steps=301$"),
])
def test_bad_early_bird_settings_are_refused_writing_nothing(
        mnist_dir, tmp_path, field, value, message):
    config = smoke(mnist_dir)
    config.prune.early_bird[field] = value
    with pytest.raises(ValueError, match=message):
        runner.run(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_early_bird_needs_iterative_mode(mnist_dir, tmp_path):
    config = smoke(mnist_dir, every_steps=50)
    config.prune.mode = "one_shot"
    with pytest.raises(ValueError, match=(
            r"^`prune.early_bird.enabled` needs prune.mode='iterative'")):
        runner.run(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()

"""Tests of the keras-tuner search over lottery experiments."""

import collections
import csv
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time

import keras_tuner
import ml_collections
import pytest

from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.tuning import objectives
from keras_lottery.tuning import search

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Per-trial budget small enough for CI: 100 steps, one pruning round.
_TINY = ("--config.train.num_steps=100", "--config.prune.num_rounds=1")


def tiny_config(data_dir: str) -> ml_collections.ConfigDict:
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = data_dir
    config.train.num_steps = 100
    config.prune.num_rounds = 1
    return config


def read_table(workdir):
    with open(paths.table_file(workdir), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_config_module(path):
    spec = importlib.util.spec_from_file_location("best_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


class _Interrupt(BaseException):
    """Stands for a kill: keras-tuner catches Exception, not this."""


# A search on real MNIST, interrupted in trial 1 after its round 0, then
# resumed; shared by the tests below.
@pytest.fixture(scope="module")
def searched(mnist_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("search"))
    config = tiny_config(mnist_dir)
    trained = collections.Counter()
    real_train_round = trainer.Experiment.train_round

    def train_round(self, round_workdir, round_index, make_model):
        key = (os.path.relpath(round_workdir, workdir), round_index)
        if interrupt and key == (os.path.join("trials", "1"), 1):
            raise _Interrupt()
        trained[key] += 1
        return real_train_round(self, round_workdir, round_index, make_model)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.Experiment, "train_round", train_round)
        interrupt = True
        with pytest.raises(_Interrupt):
            search.search(config, workdir, "random", max_trials=2)
        before = dict(trained)
        first_metrics = os.path.getmtime(
            paths.metrics_file(paths.trial_workdir(workdir, "0"), 1))
        trained.clear()
        interrupt = False
        start = time.perf_counter()
        rows = search.search(config, workdir, "random", max_trials=3)
        seconds = time.perf_counter() - start
    return {"workdir": workdir, "config": config, "rows": rows,
            "before": before, "after": dict(trained), "seconds": seconds,
            "first_metrics": first_metrics}


def test_interrupted_search_resumes_without_rerunning_trials(searched):
    t0, t1, t2 = (os.path.join("trials", i) for i in "012")
    # Before the interruption: trial 0 whole, trial 1's round 0.
    assert searched["before"] == {(t0, 0): 1, (t0, 1): 1, (t1, 0): 1}
    # After it: trial 1 resumes at round 1, trial 2 runs; trial 0 does not.
    assert searched["after"] == {(t1, 1): 1, (t2, 0): 1, (t2, 1): 1}
    assert os.path.getmtime(paths.metrics_file(
        paths.trial_workdir(searched["workdir"], "0"), 1)) == (
        searched["first_metrics"])


def test_smoke_search_writes_every_trial_and_the_best(searched):
    workdir, config = searched["workdir"], searched["config"]
    rows = read_table(workdir)
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert {r["status"] for r in rows} == {"COMPLETED"}
    for row in rows:
        summary = files.read_json(paths.summary_file(
            paths.trial_workdir(workdir, row["trial_id"])))
        value, ticket = objectives.pick_ticket(
            summary, config.tune.objective, config.tune.accuracy_tolerance,
            config.tune.max_remaining_fraction)
        assert float(row[config.tune.objective]) == pytest.approx(value)
        assert int(row["early_stop_step"]) == ticket["early_stop_step"]
        assert float(row["test_accuracy"]) == ticket["test_accuracy"]
        for name in config.tune.space:
            assert row[name] != ""
    best = min(rows, key=lambda r: float(r[config.tune.objective]))
    best_config = load_config_module(paths.best_config_file(workdir))
    trial = files.read_json(paths.config_file(
        paths.trial_workdir(workdir, best["trial_id"])))
    trial["export"]["enabled"] = config.export.enabled
    trial["data"]["dir"] = os.path.abspath(trial["data"]["dir"])
    assert json.loads(best_config.to_json()) == trial
    with open(paths.table_file(workdir, "md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 2 + len(rows)


def test_best_config_runs_through_the_lottery_binary(searched, tmp_path):
    workdir = str(tmp_path / "best")
    result = subprocess.run(
        [sys.executable, "-m", "binaries.lottery",
         f"--config={paths.best_config_file(searched['workdir'])}",
         f"--workdir={workdir}"],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = files.read_json(paths.summary_file(workdir))
    assert [e["round"] for e in summary] == [0, 1]
    assert os.path.isdir(paths.export_dir(workdir))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_run_each_trial_exactly_once(mnist_dir,
                                                          tmp_path):
    workdir = str(tmp_path / "search")
    env = dict(os.environ, KERASTUNER_ORACLE_IP="127.0.0.1",
               KERASTUNER_ORACLE_PORT=str(_free_port()))
    command = [sys.executable, "-m", "binaries.tune",
               "--config=configs/lenet300_mnist.py:smoke",
               f"--config.data.dir={mnist_dir}", *_TINY,
               f"--workdir={workdir}", "--max_trials=3"]
    processes = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            with open(tmp_path / f"{tuner_id}.log", "w") as log:
                processes[tuner_id] = subprocess.Popen(
                    command, cwd=_REPO_ROOT, stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env, KERASTUNER_TUNER_ID=tuner_id))
        deadline = time.monotonic() + 200
        for process in processes.values():
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = {t: (tmp_path / f"{t}.log").read_text() for t in processes}
    for tuner_id, process in processes.items():
        assert process.returncode == 0, logs[tuner_id][-3000:]
    ran = collections.Counter()
    for tuner_id, log in logs.items():
        for ran_by, trial_id in re.findall(r"Tuner (\S+) runs trial (\S+) ",
                                           log):
            assert ran_by == tuner_id
            ran[trial_id] += 1
    assert ran == {"0": 1, "1": 1, "2": 1}
    assert not re.search(r"Tuner \S+ runs trial", logs["chief"])
    rows = read_table(workdir)
    assert sorted(r["trial_id"] for r in rows) == ["0", "1", "2"]
    assert {r["status"] for r in rows} == {"COMPLETED"}
    assert sorted(os.listdir(os.path.join(workdir, "trials"))) == [
        "0", "1", "2"]
    assert os.path.exists(paths.best_config_file(workdir))


# Searches below replace runner.run with this fake: no training, a summary
# that is a simple function of the config, and round folders written the
# way a real run writes them (so Hyperband's reuse can be seen).
def fake_run(config, workdir):
    fraction = config.prune.fraction_per_round
    summary = []
    for r in range(config.prune.num_rounds + 1):
        metrics_path = paths.metrics_file(workdir, r)
        if not os.path.exists(metrics_path):
            fake_run.trained.append((os.path.basename(workdir), r))
            files.write_json(metrics_path, {"round": r})
        summary.append({
            "round": r, "remaining_fraction": (1 - fraction) ** r,
            "early_stop_step": 100,
            "test_accuracy": 0.9 + (0.01 if fraction < 0.3 else -0.01) * r,
            "final_test_accuracy": 0.9,
        })
    return summary


@pytest.fixture()
def fake(monkeypatch, tmp_path):
    fake_run.trained = []
    monkeypatch.setattr(runner, "run", fake_run)
    config = tiny_config(str(tmp_path))
    return config


def test_hyperband_budget_is_rounds_and_continues_earlier_trials(fake,
                                                                 tmp_path):
    config = fake
    config.prune.num_rounds = 3  # two brackets with factor 3
    workdir = str(tmp_path / "search")
    rows = search.search(config, workdir, "hyperband", max_trials=5)
    assert [r["num_rounds"] for r in rows] == [1, 1, 1, 3, 3]
    assert {r["status"] for r in rows} == {"COMPLETED"}
    # Trial 3 continues the best of trials 0-2: their rounds 0-1 are
    # copied, only rounds 2-3 are trained.
    assert [r for t, r in fake_run.trained if t == "3"] == [2, 3]
    assert [r for t, r in fake_run.trained if t == "4"] == [0, 1, 2, 3]
    assert len(read_table(workdir)) == 5


def test_objectives_score_the_rounds_they_say(fake, tmp_path):
    config = fake
    config.prune.num_rounds = 3
    rows = search.search(config, str(tmp_path / "a"), "random", max_trials=4)
    for row in rows:
        value = row["sparsest_winning_ticket"]
        if row["ticket_round"] == 0:  # no winner: the dense network
            assert value == 1.0
        else:
            assert value == row["remaining_fraction"] < 1.0
            assert row["test_accuracy"] >= row["dense_test_accuracy"]
    config.tune.objective = "accuracy_at_sparsity"
    config.tune.max_remaining_fraction = 0.5
    rows = search.search(config, str(tmp_path / "b"), "random", max_trials=4)
    for row in rows:
        value = row["accuracy_at_sparsity"]
        if row["remaining_fraction"] > 0.5:  # the budget is out of reach
            assert value == 0.0
        else:
            assert value == row["test_accuracy"]


def test_diverging_trials_are_failed_and_shown(fake, monkeypatch, tmp_path):
    def diverge(config, workdir):
        raise trainer.TrainingError("Round 1: the training loss is nan")

    monkeypatch.setattr(runner, "run", diverge)
    workdir = str(tmp_path / "s")
    with pytest.raises(search.SearchError, match="No trial .* completed"):
        search.search(fake, workdir, "random", max_trials=2)
    rows = read_table(workdir)
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"]
    assert {r["message"] for r in rows} == {
        "Round 1: the training loss is nan"}


def test_failures_in_a_row_stop_the_search_with_one_line(fake, monkeypatch,
                                                         tmp_path):
    def diverge(config, workdir):
        raise trainer.TrainingError("Round 1: the training loss is nan")

    monkeypatch.setattr(runner, "run", diverge)
    fake.tune.max_consecutive_failed_trials = 2
    workdir = str(tmp_path / "s")
    with pytest.raises(search.SearchError, match=(
            r"^2 trials in a row failed, the last \(1\) with: Round 1: the "
            r"training loss is nan. The search stops")):
        search.search(fake, workdir, "random", max_trials=5)
    assert [r["status"] for r in read_table(workdir)] == ["FAILED"] * 2


def test_a_crashing_trial_stops_the_search(fake, monkeypatch, tmp_path):
    def crash(config, workdir):
        raise OSError("disk full")

    monkeypatch.setattr(runner, "run", crash)
    with pytest.raises(keras_tuner.errors.FatalError, match="disk full"):
        search.search(fake, str(tmp_path / "s"), "random", max_trials=2)


def test_bayesian_search_runs(fake, tmp_path):
    fake.tune.num_initial_trials = 2
    rows = search.search(fake, str(tmp_path / "s"), "bayesian", max_trials=3)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3


def _space(config, name, **spec):
    config.tune.space[name] = ml_collections.ConfigDict(spec)


@pytest.mark.parametrize("change,message", [
    (lambda c: _space(c, "learning_rate", type="float", min_value=1e-3,
                      max_value=1e-3),
     r"`tune.space.learning_rate` has an empty range.*"
     r"Received: tune.space.learning_rate.min_value=0.001, "
     r"tune.space.learning_rate.max_value=0.001"),
    (lambda c: _space(c, "fraction_per_round", type="float", min_value=0.5,
                      max_value=0.1),
     r"`tune.space.fraction_per_round` has an inverted range.*"
     r"min_value=0.5, tune.space.fraction_per_round.max_value=0.1"),
    (lambda c: _space(c, "scope", type="choice", choices=()),
     r"`tune.space.scope.choices` must be a non-empty tuple.*"
     r"Received: tune.space.scope.choices=\(\)"),
    (lambda c: _space(c, "momentum", type="float", min_value=0.5,
                      max_value=0.9),
     r"`tune.space` names an unknown hyperparameter; known: "
     r"'fraction_per_round'.*Received: tune.space.momentum"),
    (lambda c: _space(c, "learning_rate", type="normal", min_value=0.1,
                      max_value=0.2),
     r"`tune.space.learning_rate.type` must be one of 'float', 'int', "
     r"'choice'. Received: tune.space.learning_rate.type='normal'"),
    (lambda c: _space(c, "learning_rate", type="float", min=0.1,
                      max_value=0.2),
     r"`tune.space.learning_rate` of type 'float' takes only .*"
     r"Received: tune.space.learning_rate.min=0.1"),
    (lambda c: _space(c, "rewind_step", type="int", min_value=0,
                      max_value=100),
     r"`tune.space.rewind_step.max_value` makes an invalid lottery config: "
     r"`prune.rewind_step` must be an int in \[0, train.num_steps\), "
     r"or 'auto'. "
     r"Received: prune.rewind_step=100"),
    (lambda c: _space(c, "fraction_per_round", type="float", min_value=0.5,
                      max_value=1.0),
     r"`tune.space.fraction_per_round.max_value` makes an invalid lottery "
     r"config: .*Received: prune.fraction_per_round=1.0"),
    (lambda c: _space(c, "learning_rate", type="float", min_value=0.0,
                      max_value=0.1, sampling="log"),
     r"`tune.space.learning_rate.min_value` must be positive for "
     r"sampling='log'. Received: tune.space.learning_rate.min_value=0.0"),
    (lambda c: _space(c, "rewind_step", type="int", min_value=0.5,
                      max_value=50),
     r"`tune.space.rewind_step.min_value` must be an integer. "
     r"Received: tune.space.rewind_step.min_value=0.5"),
    (lambda c: setattr(c.tune, "objective", "fastest"),
     r"`tune.objective` must be one of 'sparsest_winning_ticket', "
     r"'accuracy_at_sparsity'. Received: tune.objective='fastest'"),
    (lambda c: setattr(c.tune, "space", ml_collections.ConfigDict()),
     r"`tune.space` must name at least one hyperparameter"),
    (lambda c: setattr(c.tune, "seed", 0),
     r"`tune.seed` must be at least 1 .*Received: tune.seed=0"),
    (lambda c: setattr(c.prune, "num_rounds", 0),
     r"`prune.num_rounds` must be at least 1 for a search. "
     r"Received: prune.num_rounds=0"),
    (lambda c: c.__delattr__("tune"), r"`config` has no `tune` section"),
])
def test_config_errors_name_the_field_and_value(fake, tmp_path, change,
                                                message):
    change(fake)
    with pytest.raises(ValueError, match=message):
        search.search(fake, str(tmp_path / "s"), "random", max_trials=2)
    assert not os.path.exists(tmp_path / "s")


@pytest.mark.parametrize("tuner,max_trials,message", [
    ("grid", 3, r"`tuner` must be one of 'random', 'bayesian', "
                r"'hyperband'. Received: tuner='grid'"),
    ("random", 0, r"`max_trials` must be an integer, at least 1. "
                  r"Received: max_trials=0"),
])
def test_tuner_and_max_trials_errors(fake, tmp_path, tuner, max_trials,
                                     message):
    with pytest.raises(ValueError, match=message):
        search.search(fake, str(tmp_path / "s"), tuner, max_trials)


def test_a_workdir_of_another_search_or_a_run_is_refused(fake, tmp_path):
    workdir = str(tmp_path / "s")
    search.search(fake, workdir, "random", max_trials=1)
    with pytest.raises(ValueError, match=(
            r"`workdir` holds another search .*tuner: 'random' in the "
            r"workdir, 'hyperband' now.*Received: workdir=")):
        search.search(fake, workdir, "hyperband", max_trials=1)
    fake.tune.space.learning_rate.max_value = 1e-2
    with pytest.raises(ValueError, match=(
            r"config.tune.space.learning_rate.max_value: 0.003 in the "
            r"workdir, 0.01 now")):
        search.search(fake, workdir, "random", max_trials=1)
    run_dir = str(tmp_path / "run")
    files.write_json(paths.config_file(run_dir), {})
    with pytest.raises(ValueError, match=r"`workdir` holds a lottery run"):
        search.search(fake, run_dir, "random", max_trials=1)


def test_a_larger_max_trials_extends_a_finished_search(fake, tmp_path):
    workdir = str(tmp_path / "s")
    search.search(fake, workdir, "random", max_trials=2)
    fake_run.trained.clear()
    rows = search.search(fake, workdir, "random", max_trials=3)
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert {t for t, _ in fake_run.trained} == {"2"}


@pytest.mark.parametrize("args,message", [
    (["--tuner=grid"], "tune: `tuner` must be one of 'random', 'bayesian', "
                       "'hyperband'. Received: tuner='grid'"),
    (["--config.tune.space.learning_rate.min_value=0.01"],
     "tune: `tune.space.learning_rate` has an inverted range"),
])
def test_binary_reports_bad_input_in_one_line(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "binaries.tune",
         "--config=configs/lenet300_mnist.py:smoke",
         f"--workdir={tmp_path / 's'}", *args],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # TensorFlow logs its start-up on stderr; the error is the last line.
    assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_pick_ticket_invariants():
    summary = [
        {"round": 0, "remaining_fraction": 1.0, "test_accuracy": 0.90,
         "early_stop_step": 500},
        {"round": 1, "remaining_fraction": 0.8, "test_accuracy": 0.91,
         "early_stop_step": 400},
        {"round": 2, "remaining_fraction": 0.64, "test_accuracy": 0.899,
         "early_stop_step": 300},
        {"round": 3, "remaining_fraction": 0.512, "test_accuracy": 0.92,
         "early_stop_step": 600},
        {"round": 4, "remaining_fraction": 0.41, "test_accuracy": 0.85,
         "early_stop_step": 200},
    ]
    pick = objectives.pick_ticket
    assert pick(summary, "sparsest_winning_ticket", 0.0, 1.0)[0] == 0.8
    # Round 2 wins within 0.001; round 3 is late; round 4 is too bad.
    assert pick(summary, "sparsest_winning_ticket", 0.001, 1.0)[0] == 0.64
    values = [pick(summary, "sparsest_winning_ticket", t, 1.0)[0]
              for t in (0.0, 0.001, 0.01, 0.05, 0.1)]
    assert values == sorted(values, reverse=True)  # tolerance never hurts
    assert pick(summary[:1], "sparsest_winning_ticket", 0.0, 1.0) == (
        1.0, summary[0])
    assert pick(summary, "accuracy_at_sparsity", 0.0, 0.6)[0] == 0.92
    assert pick(summary, "accuracy_at_sparsity", 0.0, 0.45)[0] == 0.85
    value, ticket = pick(summary, "accuracy_at_sparsity", 0.0, 0.1)
    assert (value, ticket["round"]) == (0.0, 4)


def test_pick_ticket_judges_a_falling_metric_downward():
    """A regression's summary compares test MAE: lower is better."""
    judged = {"compared_metric": "mae", "compared_mode": "min"}
    summary = [
        {"round": 0, "remaining_fraction": 1.0, "test_mae": 0.50,
         "early_stop_step": 500, **judged},
        {"round": 1, "remaining_fraction": 0.8, "test_mae": 0.49,
         "early_stop_step": 400, **judged},
        {"round": 2, "remaining_fraction": 0.64, "test_mae": 0.501,
         "early_stop_step": 300, **judged},
        {"round": 3, "remaining_fraction": 0.512, "test_mae": 0.40,
         "early_stop_step": 600, **judged},
        {"round": 4, "remaining_fraction": 0.41, "test_mae": 0.60,
         "early_stop_step": 200, **judged},
    ]
    pick = objectives.pick_ticket
    assert pick(summary, "sparsest_winning_ticket", 0.0, 1.0)[0] == 0.8
    # Round 2 is worse by 0.001: it wins within 0.001 (not with 0.0005).
    assert pick(summary, "sparsest_winning_ticket", 0.0005, 1.0)[0] == 0.8
    assert pick(summary, "sparsest_winning_ticket", 0.001, 1.0)[0] == 0.64
    # The lowest MAE within the budget; out of reach, the worst MAE seen.
    assert pick(summary, "accuracy_at_sparsity", 0.0, 0.6)[0] == 0.40
    assert pick(summary, "accuracy_at_sparsity", 0.0, 0.45)[0] == 0.60
    assert pick(summary, "accuracy_at_sparsity", 0.0, 0.1)[0] == 0.60
    assert objectives.direction("accuracy_at_sparsity", "min") == "min"
    assert objectives.direction("sparsest_winning_ticket", "max") == "min"


def test_a_regression_search_scores_and_picks_by_its_metric(tmp_path):
    """A real search on the diabetes regression (MSE, monitor val_mae):
    trials are scored on test MAE, lower is better, as summary.json
    compares them; the table and the best config say so."""
    config = _regression_config()
    config.tune = lenet300_mnist.get_config().tune
    tune = config.tune
    config.tune.objective = "accuracy_at_sparsity"
    config.tune.max_remaining_fraction = 1.0
    config.tune.space = ml_collections.ConfigDict({"learning_rate": {
        "type": "choice", "choices": (0.003, 0.03)}})
    workdir = str(tmp_path / "search")
    rows = search.search(config, workdir, "random", max_trials=2)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 2
    for row in rows:
        summary = files.read_json(paths.summary_file(
            paths.trial_workdir(workdir, row["trial_id"])))
        assert summary[0]["compared_metric"] == "mae"
        value, ticket = objectives.pick_ticket(summary, tune.objective, 0.0,
                                               1.0)
        assert value == min(e["test_mae"] for e in summary)
        assert row["accuracy_at_sparsity"] == pytest.approx(value)
        assert row["test_mae"] == pytest.approx(ticket["test_mae"])
        assert row["dense_test_mae"] == pytest.approx(summary[0]["test_mae"])
        assert "test_accuracy" not in row
    # The best trial is the one of lower MAE (accuracy would be higher).
    assert rows[0]["accuracy_at_sparsity"] != rows[1]["accuracy_at_sparsity"]
    best = min(rows, key=lambda r: r["accuracy_at_sparsity"])
    chosen = load_config_module(paths.best_config_file(workdir))
    assert chosen.train.learning_rate == best["learning_rate"]


def _regression_config():
    """The diabetes regression of tests/test_tasks.py, 40 steps a round."""
    from configs import mnist1d_mlp

    config = mnist1d_mlp.get_config("smoke")
    config.data.name = "docs.examples.tabular_tasks:load_diabetes"
    config.model.name = "docs.examples.tabular_tasks:build"
    config.data.validation_size = 60
    config.train.batch_size = 32
    config.train.num_steps = 40
    config.train.steps_per_loop = 20
    config.train.checkpoint_every_steps = 20
    config.train.sparse_compute = "off"
    config.eval.every_steps = 20
    config.train.loss = "mse"
    config.eval.metrics = ("mae",)
    config.eval.monitor = "val_mae"
    config.prune.num_rounds = 1
    config.export.enabled = False
    return config


def test_config_source_round_trips(tmp_path):
    config = ml_collections.ConfigDict({
        "a": {"b": (1, 2), "c": [0.1, "x"], "d": None, "e": (3,)},
        "f": 1e-300, "g": True, "h": "it's \"quoted\" \\ '''",
    })
    path = tmp_path / "c.py"
    path.write_text(search.config_source(config, 'Doc """ with \\ .'))
    assert load_config_module(path).to_dict() == config.to_dict()

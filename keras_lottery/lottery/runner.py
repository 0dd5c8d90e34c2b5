"""The lottery runner: iterative magnitude pruning with rewinding.

`run(config, workdir)` is one explicit loop over rounds. Round 0 trains the
dense network after recording W0 (and Wk at `prune.rewind_step` = k > 0);
each later round prunes, rewinds and trains. Every step of a round writes
its own files (see `keras_lottery.base.paths`); a round whose `metrics.json`
exists is done and skipped on rerun, and an unfinished round resumes from
its latest checkpoint, so an interrupted run continues where it stopped and
ends with the same masks as an uninterrupted one.

What survives what (a SIGKILL at any moment, damaged files, bad input) is
written down, with the tests that show it, in docs/RELIABILITY.md: every
file is written atomically, one process at a time holds a workdir, and
nothing a killed process left half-written is ever read as complete.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras
import ml_collections
from absl import logging

from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.engine import callbacks as lottery_callbacks
from keras_lottery.engine import distributed
from keras_lottery.engine import progress
from keras_lottery.engine import tasks
from keras_lottery.engine import training
from keras_lottery.lottery import cost
from keras_lottery.lottery import planning
from keras_lottery.lottery import run_config
from keras_lottery.lottery import trainer
from keras_lottery.pruning import at_init
from keras_lottery.pruning import criteria
from keras_lottery.pruning import pruner


def run(config: ml_collections.ConfigDict, workdir: str,
        callbacks: Sequence[lottery_callbacks.ExperimentCallback] = (),
        ) -> list[dict]:
    """Runs (or resumes) a lottery experiment in `workdir`.

    Args:
        config: a config as in `configs/lenet300_mnist.py`.
        workdir: where every output goes; created if missing.
        callbacks: told of every evaluation and every finished round.

    Returns:
        The entries of `summary.json`, one per round.

    Raises:
        ValueError: for a bad config, a workdir holding another config or
            in use by another process, or a damaged file in the workdir.
        TrainingError: when the loss or a weight becomes NaN.
    """
    run_config.check_config(config)
    with training.op_determinism(config.deterministic):
        return _run(config, workdir, callbacks)


def _run(config: ml_collections.ConfigDict, workdir: str,
         callbacks: Sequence[lottery_callbacks.ExperimentCallback],
         ) -> list[dict]:
    experiment = trainer.Experiment(config)
    experiment.callbacks = tuple(callbacks)
    # Needs the model; before anything is written.
    trainer.check_pruning(experiment)
    with distributed.worker_workdir(
            training.make_strategy(config.train.strategy, config.train.tpu),
            workdir, config,
            functools.partial(trainer.claimed, config)) as workdir:
        if config.prune.rewind_step == "auto":
            # Imported here: the search trains through this module.
            from keras_lottery.lottery import rewind_search

            experiment.config = rewind_search.resolved(
                config, rewind_search.choose(experiment, workdir))
        rounds = trained_rounds(config.prune)
        experiment.progress = progress.RunProgress(rounds,
                                                   config.train.num_steps)
        for round_index in rounds:
            if trainer.is_done(workdir, round_index):
                logging.info("Round %d is done; skipping it.", round_index)
                continue
            experiment.train_round(
                workdir, round_index,
                functools.partial(_ticket_model, experiment, workdir,
                                  round_index))
        summary = write_summary(workdir, config.prune.num_rounds)
        exported = None
        if config.export.enabled:
            exported = _export_last_round(experiment, workdir, rounds[-1])
    logging.info(progress.closing_line(
        summary, paths.summary_file(workdir), exported))
    return summary


def trained_rounds(prune: ml_collections.ConfigDict) -> list[int]:
    """The rounds a run trains: all, or 0 and `prune.one_shot_rounds`."""
    if prune.mode == "one_shot" and prune.one_shot_rounds:
        return [0, *sorted(set(prune.one_shot_rounds))]
    return list(range(prune.num_rounds + 1))


def _ticket_model(experiment: trainer.Experiment, workdir: str,
                  round_index: int) -> keras.Model:
    """The model a round of the lottery run starts from."""
    config = experiment.config
    if round_index == 0:
        return experiment.build_model(config.seed)
    if config.prune.get("at_init"):
        model = at_init.starting_model(experiment, workdir)
        prunes = 0  # at_init.prune goes to round r's sparsity in one go
    elif config.prune.mode == "one_shot":
        model = experiment.load_model(paths.model_file(workdir, 0))
        prunes = round_index  # prune r times on the dense weights
    else:
        model = experiment.load_model(
            paths.model_file(workdir, round_index - 1))
        prunes = 1
    fractions = planning.layer_fractions(config.prune, model)
    granularities = planning.layer_granularities(config.prune, model)
    needs_data = criteria.get(config.prune.method).needs_data
    data = experiment.score_data(round_index) if needs_data else None
    loss = experiment.task.scoring_loss()  # the task's, for gradients
    with experiment.strategy.scope():
        if config.prune.get("at_init"):
            at_init.prune(model, planning.pruning_plan(config, model),
                          round_index,
                          seed=config.seed + round_index, data=data,
                          loss=loss)
        for _ in range(prunes):
            pruner.prune(model, config.prune.fraction_per_round,
                        method=config.prune.method, scope=config.prune.scope,
                        fractions=fractions, seed=config.seed + round_index,
                        granularity=config.prune.granularity,
                        granularities=granularities, data=data,
                        loss=loss)
        faults.point("pruned")
        state.rewind(model)
    return model


def write_summary(workdir: str, num_rounds: int,
                  reference: str | None = None) -> list[dict]:
    """Writes `summary.json` from the finished rounds' metrics.

    A round is a winning ticket when its test value of the compared
    metric at early stop (`compared_metric`: accuracy for classification,
    else the monitored one; `keras_lottery.engine.tasks`) is at least as
    good as round 0's, in the metric's direction (`compared_mode`), and its
    early-stop step at most round 0's. Each entry carries
    `test_<metric>` and `final_test_<metric>` of the compared metric, and
    what its round and ticket cost (`keras_lottery.lottery.cost.FIELDS`).

    Args:
        workdir: the workdir.
        num_rounds: the last round.
        reference: the metrics file of the dense round to compare with;
            by default this workdir's round 0.
    """
    reference = reference or paths.metrics_file(workdir, 0)
    dense = files.read_json(reference) if os.path.exists(reference) else None
    config = files.read_json(paths.config_file(workdir))
    # Rounds written before any other metric existed compared accuracy.
    compared, mode = tasks.compared(run_config.with_added_fields(config))
    keys = ("round", "remaining_fraction", "early_stop_step",
            f"test_{compared}", f"final_test_{compared}", "train_seconds",
            "eval_seconds")
    summary = []
    for round_index in range(num_rounds + 1):
        path = paths.metrics_file(workdir, round_index)
        if not os.path.exists(path):
            continue
        metrics = files.read_json(path)
        entry = {key: metrics[key] for key in keys}
        entry.update(cost.round_cost(metrics))
        if round_index == 0:  # every ticket of the run needed the search
            search = cost.rewind_search_cost(workdir)
            entry["train_steps"] += search["train_steps"]
            entry["round_seconds"] += search["round_seconds"]
        entry["compared_metric"] = compared
        entry["compared_mode"] = mode
        entry["winning_ticket"] = None if (
            dense is None or round_index == 0) else bool(
            tasks.at_least_as_good(metrics[f"test_{compared}"],
                                   dense[f"test_{compared}"], mode)
            and metrics["early_stop_step"] <= dense["early_stop_step"])
        summary.append(entry)
    cost.add_cumulative(summary, config["prune"])
    files.write_json(paths.summary_file(workdir), summary)
    return summary


def _export_last_round(experiment, workdir, last_round) -> str:
    # Imported here: TensorFlow Lite is slow to import.
    from keras_lottery.serving import export

    target = paths.export_dir(workdir)
    version = export.saved_model_path(target)
    # A run killed mid-export leaves only a temporary folder, under a name
    # TF Serving skips; the version folder appears whole, by one rename.
    files.remove_stale(os.path.dirname(version))
    if os.path.exists(version):
        return version
    model = experiment.load_model(paths.model_file(workdir, last_round))
    export.export_saved_model(model, target)
    return version

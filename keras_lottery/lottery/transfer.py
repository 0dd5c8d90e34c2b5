"""Ticket transfer: a mask found on one task, trained on another.

`run_transfer(source, round_index, config, workdir)` takes round R's masks
of a finished lottery run (`source`) and trains them on the task `config`
describes (another dataset, or other classes of one, with the same input
shape and network), against three baselines on that task:

- `transferred`: the source's masks, from the source's rewind point
  (`init="rewind"`) or from the target network's own initialization for
  `config.seed` (`init="fresh"`);
- `random`: random masks with the same per-layer sparsity (the same
  number of kept weights, or whole units, in every layer), from the same
  initialization as `transferred`;
- `dense`: the dense network trained on the target (round 0 of the
  target's own lottery run);
- `target_ticket`: the ticket found on the target itself (round R of its
  own lottery run, `config` with `prune.num_rounds=R`).

The workdir holds `config.json` (the target's config), `transfer.json`
(source, round, init), the target's lottery run in `target/`, the two
transferred arms in `transferred/` and `random/` (each a round folder R as
a control's), and `summary.json`: one entry per arm. Like a lottery run
it resumes where it was killed, and refuses bad input in one line before
writing anything.

Example:
    >>> summary = transfer.run_transfer(
    ...     "/tmp/mnist1d_seed42", 11,
    ...     configs.mnist1d_lottery_mlp.get_config(), "/tmp/transfer")
"""

from __future__ import annotations

import functools
import os

import keras
import ml_collections
import numpy as np

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.engine import tasks
from keras_lottery.engine import training
from keras_lottery.lottery import planning
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.pruning import pruner
from keras_lottery.pruning import selection

INITS = ("rewind", "fresh")
ARMS = ("transferred", "random")
RECORD = "transfer.json"
TARGET = "target"
_KEYS = ("remaining_fraction", "early_stop_step")


def run_transfer(source: str, round_index: int,
                 config: ml_collections.ConfigDict, workdir: str,
                 init: str = "rewind") -> list[dict]:
    """Trains `source`'s round-R masks on `config`'s task, with baselines.

    Args:
        source: the workdir of a lottery run with round `round_index` done.
        round_index: the source's round whose masks transfer, >= 1.
        config: the target task's config (its data and network; the
            network must be the source's).
        workdir: where every output goes; the same one resumes.
        init: `"rewind"`: the source's rewind point (its initialization,
            or step k of its dense round); `"fresh"`: the target network's
            initialization for `config.seed`.

    Returns:
        The entries of `summary.json`: `arm` (dense, target_ticket,
        transferred, random), `round`, `remaining_fraction`,
        `early_stop_step`, `test_<metric>` and `final_test_<metric>` of
        the metric tickets are judged on (`test_accuracy` for
        classification), `compared_metric` and `compared_mode`.

    Raises:
        ValueError: in one line naming the argument, before anything is
            written, for a source without that finished round, a source
            whose input shape or layers differ from the target's, or a bad
            config; or as `keras_lottery.lottery.runner.run` raises.
    """
    selection.check_choice("init", init, INITS)
    run_config.check_config(config)
    source = os.path.abspath(source)
    _check_round(source, round_index)
    target = ml_collections.ConfigDict(config.to_dict())
    target.prune.num_rounds = round_index
    target.prune.one_shot_rounds = tuple(
        r for r in target.prune.one_shot_rounds if r <= round_index)
    with training.op_determinism(config.deterministic):
        experiment = trainer.Experiment(target)
        source_masks = _check_fit(experiment, source, round_index)
        trainer.check_pruning(experiment)
        record = {"source": source, "round": round_index, "init": init}
        with trainer.claimed(target, workdir):
            _claim_record(workdir, record)
            dense = runner.run(target, os.path.join(workdir, TARGET))
            for arm in ARMS:
                arm_dir = os.path.join(workdir, arm)
                if trainer.is_done(arm_dir, round_index):
                    continue
                experiment.train_round(arm_dir, round_index, functools.partial(
                    _arm_model, experiment, source, round_index, source_masks,
                    arm, init))
            return _write_summary(workdir, round_index, dense,
                                  tasks.compared(target))


def _check_round(source: str, round_index: int) -> None:
    if (isinstance(round_index, bool) or not isinstance(
            round_index, (int, np.integer)) or round_index < 1):
        raise ValueError(
            "`round` must be an int >= 1 (a pruned round of the source). "
            f"Received: round={round_index!r}")
    if not os.path.exists(paths.config_file(source)):
        raise ValueError(
            "`source` must be a lottery run's workdir (it has no "
            f"config.json). Received: source={source!r}")
    if not os.path.exists(paths.metrics_file(source, round_index)):
        raise ValueError(
            f"`round` must be a done round of `source`; "
            f"{paths.metrics_file(source, round_index)} does not exist. "
            f"Received: round={round_index}, source={source!r}")


def _check_fit(experiment: trainer.Experiment, source: str,
               round_index: int) -> dict[str, np.ndarray]:
    """The source's masks; checks they fit the target network.

    Raises:
        ValueError: naming `source`, if its network takes another input
            shape or its masks have other names or shapes.
    """
    model = experiment.load_model(paths.model_file(source, round_index))
    theirs = tuple(model.input_shape[1:])
    ours = tuple(experiment.data.input_shape)
    if theirs != ours:
        raise ValueError(
            f"`source` holds a network of input shape {theirs}; the "
            f"target's examples have shape {ours}: a ticket transfers "
            "between tasks of one input shape. Received: "
            f"source={source!r}")
    masks = state.get_masks(model, units=True)
    made = state.get_masks(experiment.build_model(experiment.config.seed),
                           units=True)
    differ = [f"{k}: {masks[k].shape if k in masks else 'missing'} there, "
              f"{made[k].shape if k in made else 'missing'} here"
              for k in sorted(set(masks) | set(made))
              if k not in masks or k not in made
              or masks[k].shape != made[k].shape]
    if differ:
        raise ValueError(
            "`source`'s masks do not fit the target's network (another "
            f"model or number of classes?): {'; '.join(differ[:3])}. "
            f"Received: source={source!r}")
    return masks


def _claim_record(workdir: str, record: dict) -> None:
    path = os.path.join(workdir, RECORD)
    if os.path.exists(path):
        held = files.read_json(path)
        if held != record:
            raise ValueError(
                f"`workdir` holds a transfer of another source, round or "
                f"init ({held}); use a new workdir. Received: "
                f"workdir={workdir!r}")
        return
    files.write_json(path, record)


def _arm_model(experiment: trainer.Experiment, source: str,
               round_index: int, masks: dict[str, np.ndarray], arm: str,
               init: str) -> keras.Model:
    """The model an arm starts from: its masks, at its initialization."""
    config = experiment.config
    if init == "rewind":
        model = experiment.load_model(paths.model_file(source, round_index))
    else:
        model = experiment.build_model(config.seed)
    if arm == "random":
        plan = planning.pruning_plan(config, model)
        weights = {k: v for k, v in masks.items()
                   if not k.endswith(f"/{state.UNITS}")}
        masks = selection.random_masks_like(
            weights, seed=config.seed + 7919 * round_index,
            groupings=plan.groupings)
    with experiment.strategy.scope():
        state.set_masks(model, {k: np.ones_like(v) for k, v in
                                state.get_masks(model, units=True).items()})
        state.set_masks(model, masks)
        if arm == "random":
            pruner.remove_dead_units(model, plan.output_unit_layers)
        state.rewind(model)
    return model


def _write_summary(workdir: str, round_index: int, target: list[dict],
                   compared: tuple[str, str]) -> list[dict]:
    metric, mode = compared
    keys = (*_KEYS, f"test_{metric}", f"final_test_{metric}")
    judged = {"compared_metric": metric, "compared_mode": mode}
    by_round = {e["round"]: e for e in target}
    summary = [
        {"arm": "dense", "round": 0,
         **{k: by_round[0][k] for k in keys}, **judged},
        {"arm": "target_ticket", "round": round_index,
         **{k: by_round[round_index][k] for k in keys}, **judged},
    ]
    for arm in ARMS:
        metrics = files.read_json(paths.metrics_file(
            os.path.join(workdir, arm), round_index))
        summary.append({"arm": arm, "round": round_index,
                        **{k: metrics[k] for k in keys}, **judged})
    files.write_json(paths.summary_file(workdir), summary)
    return summary

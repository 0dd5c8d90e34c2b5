"""The controls of a lottery run: the ticket's masks with a fresh init,
random masks of the ticket's per-layer sparsity, shuffled masks.

Each runs in its own sub-workdir of the run (`paths.control_workdir`),
round by round through the engine of `keras_lottery.lottery.runner`, so it
resumes after a kill as a lottery run does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras
import ml_collections

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.engine import distributed
from keras_lottery.engine import progress
from keras_lottery.engine import training
from keras_lottery.lottery import planning
from keras_lottery.lottery import rewind_search
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.pruning import pruner
from keras_lottery.pruning import selection


def run_control(workdir: str, control: str,
                rounds: Sequence[int] = ()) -> list[dict]:
    """Runs a control of a finished lottery run, in its own sub-workdir.

    Args:
        workdir: the workdir of a finished (or partly finished) run.
        control: `"random_reinit"` (the ticket's masks, a fresh init),
            `"random_prune"` (random masks with the ticket's per-layer
            sparsity, the original init) or `"shuffle"` (each layer's mask
            permuted at random, the original init: Frankle et al. 2021's
            check of pruning at initialisation). With late rewinding,
            "the original init" is W_k, where the tickets rewind to.
        rounds: the ticket run's rounds to run the control at (each a
            done round >= 1); `()` runs it at every done round.

    Returns:
        The control's summary entries, compared against the ticket's round 0.
    """
    selection.check_choice("control", control, paths.CONTROLS)
    if not os.path.exists(paths.config_file(workdir)):
        raise ValueError(
            f"`workdir` holds no lottery run (no config.json). "
            f"Received: workdir={workdir!r}"
        )
    # A run made before a field existed did what its default then was.
    config = ml_collections.ConfigDict(run_config.with_added_fields(
        files.read_json(paths.config_file(workdir))))
    done = [r for r in range(1, config.prune.num_rounds + 1)
            if os.path.exists(paths.metrics_file(workdir, r))]
    if not done:
        raise ValueError(
            "`workdir` must hold a finished pruned round (round 1 or "
            "later) to run a control at; it has none yet: run or resume "
            f"binaries.lottery on it first. Received: workdir={workdir!r}")
    if any(r not in done for r in rounds):
        raise ValueError(
            f"`rounds` must name done rounds of the run (now "
            f"{', '.join(map(str, done)) or 'none'}). Received: "
            f"rounds={list(rounds)!r}")
    control_dir = paths.control_workdir(workdir, control)
    strategy = training.make_strategy(config.train.strategy,
                                      config.train.tpu)
    with (training.op_determinism(config.deterministic),
          distributed.worker_workdir(
              strategy, control_dir, config,
              functools.partial(trainer.claimed, config)) as control_dir):
        experiment = trainer.Experiment(config)
        experiment.progress = progress.RunProgress(
            sorted(set(rounds)) or done, config.train.num_steps)
        for round_index in sorted(set(rounds)) or done:
            if trainer.is_done(control_dir, round_index):
                continue
            experiment.train_round(
                control_dir, round_index,
                functools.partial(_control_model, experiment, workdir,
                                  round_index, control))
        return runner.write_summary(control_dir, config.prune.num_rounds,
                             reference=paths.metrics_file(workdir, 0))


def _control_model(experiment: trainer.Experiment, workdir: str,
                   round_index: int, control: str) -> keras.Model:
    """The model a round of a control run starts from."""
    config = experiment.config
    masks = files.read_arrays(paths.masks_file(workdir, round_index))
    units = paths.units_file(workdir, round_index)
    if control != "random_reinit" and _rewind_step(config, workdir):
        # Late rewinding: the run's round 0 holds W_k as its rewind point,
        # which the random and shuffled masks start from, as its tickets
        # do (Frankle et al. 2020's random pruning at the same k).
        model = experiment.load_model(paths.model_file(workdir, 0))
    else:
        model = experiment.build_model(config.seed)  # W0 of the ticket run
    seed = config.seed + 7919 * round_index
    with experiment.strategy.scope():
        if control == "random_reinit":
            state.set_masks(model, masks)
            if os.path.exists(units):
                state.set_masks(model, files.read_arrays(units))
            state.reinitialize(model, seed=seed)
            state.set_rewind_point(model)
        elif control == "shuffle":
            state.set_masks(model, selection.shuffle_masks(masks, seed=seed))
            state.rewind(model)
        else:
            # The ticket's per-layer count of weights, or of whole units
            # for structured pruning, at random places.
            plan = planning.pruning_plan(config, model)
            state.set_masks(model, selection.random_masks_like(
                masks, seed=seed, groupings=plan.groupings))
            pruner.remove_dead_units(model, plan.output_unit_layers)
            state.rewind(model)
    return model


def _rewind_step(config: ml_collections.ConfigDict, workdir: str) -> int:
    """The step the run rewinds its tickets to (`prune.rewind_step`, or
    the step its `"auto"` search chose)."""
    k = config.prune.rewind_step
    if k == "auto":
        k = rewind_search.recorded(workdir)["rewind_step"]
    return int(k)

"""Instability analysis: are two trainings of a ticket linearly connected?

Frankle et al. (ICML 2020, "Linear Mode Connectivity and the Lottery
Ticket Hypothesis"): take round R's masks at rewind step k: the dense
network trained k steps (W_k, on round 0's data order, so it is the run's
own dense network at step k; W0 for k = 0), masked. Train two copies of
it for the rest of training (`train.num_steps - k` steps, a fresh
optimizer) on two different data orders, and evaluate the test error at
`POINTS` evenly spaced points of the segment between the two results. The
instability is the largest error on the path minus the mean of the
errors at its two ends; the paper calls a network stable below 2%
(`STABLE`).

Everything is written under the run's workdir, resumably (each training
is a round of the lottery engine, with its checkpoints). Each rewind step
is held by one process, so several processes (`--rewind_steps` apart) can
share a round's analysis; a call for every step then trains nothing and
writes the whole table:

    WORKDIR/instability/round_RR/
      lock                     held while the table is written
      rewind_KKKKK/lock        held by the one process working on k
      rewind_KKKKK/dense/      W_k: round 0 of a run of k steps (k > 0)
      rewind_KKKKK/copy/       the copies: its rounds 1 and 2 (data
                               orders seed + 1 and seed + 2), each
                               evaluated about 20 times
                               (`copy_eval_every`)
      rewind_KKKKK/path.json   the errors along the path; written last
      instability.md, instability.json
      instability_kKKKKK.png   error along the path, per k

Example:
    table = instability.run("/tmp/lenet300", 0, [0, 100, 500, 2000])
    [row["instability"] for row in table["rows"]]
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from typing import Any

import keras
import ml_collections
import numpy as np
from matplotlib import figure

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.engine import training
from keras_lottery.lottery import run_config
from keras_lottery.lottery import trainer

POINTS = 30  # evaluations along the path, both ends included
COPY_EVALUATIONS = 20  # about how often a copy evaluates while it trains
STABLE = 0.02  # instability under this: stable (Frankle et al. 2020)
COPIES = (1, 2)  # the copies' round indices: their data-order seeds


def check(workdir: str, round_index: int,
          rewind_steps: Sequence[int]) -> ml_collections.ConfigDict:
    """Checks the arguments of `run`, writing nothing; returns the config.

    Raises:
        ValueError: one line naming the argument and its value: no lottery
            run in `workdir`, a round that is not done, rewind steps
            outside [0, train.num_steps) or none.
    """
    if not os.path.exists(paths.config_file(workdir)):
        raise ValueError(
            "`workdir` holds no lottery run (no config.json). Received: "
            f"workdir={workdir!r}")
    # A run made before a field existed did what its default then was.
    config = ml_collections.ConfigDict(run_config.with_added_fields(
        files.read_json(paths.config_file(workdir))))
    done = [r for r in range(config.prune.num_rounds + 1)
            if os.path.exists(paths.metrics_file(workdir, r))]
    if round_index not in done:
        raise ValueError(
            f"`round` must be a done round of the run (now "
            f"{', '.join(map(str, done)) or 'none'}). Received: "
            f"round={round_index!r}")
    steps = list(rewind_steps)
    if not steps or any(not 0 <= k < config.train.num_steps
                        for k in steps):
        raise ValueError(
            "`rewind_steps` must be one or more steps in [0, "
            f"train.num_steps) = [0, {config.train.num_steps}). Received: "
            f"rewind_steps={steps!r}")
    return config


def run(workdir: str, round_index: int,
        rewind_steps: Sequence[int]) -> dict[str, Any]:
    """Runs (or resumes) the instability analysis of a round.

    Args:
        workdir: a lottery run's workdir.
        round_index: a done round of it (0: the dense network).
        rewind_steps: the steps k to rewind to.

    Returns:
        The table written to instability.json: `rows`, one per k, each with
        `rewind_step`, `alphas`, `test_errors`, `end_errors`,
        `max_error`, `instability` and `stable`; and `files`.

    Raises:
        ValueError: for bad arguments (see `check`), a folder in use by
            another process, or a damaged file.
        trainer.TrainingError: when a training diverges.
    """
    config = check(workdir, round_index, rewind_steps)
    where = paths.instability_dir(workdir, round_index)
    rows = []
    with training.op_determinism(config.deterministic):
        experiment = trainer.Experiment(config)
        masks = {**files.read_arrays(paths.masks_file(workdir, round_index))}
        units = paths.units_file(workdir, round_index)
        if os.path.exists(units):
            masks.update(files.read_arrays(units))
        for k in sorted(set(rewind_steps)):
            rows.append(rewind_row(experiment, where, k, masks))
    with held(where):
        return _write_table(where, workdir, round_index, rows)


@contextlib.contextmanager
def held(folder: str):
    """Holds `folder` (created if missing) for this process; clears what
    a killed one left."""
    os.makedirs(folder, exist_ok=True)
    try:
        with files.exclusive(os.path.join(folder, "lock")):
            files.remove_stale(folder)
            yield
    except BlockingIOError:
        raise ValueError(
            f"{folder} is in use by another process; wait for it to "
            "end.") from None


def copy_eval_every(every_steps: int, num_steps: int) -> int:
    """How often a copy of `num_steps` steps evaluates, for a run that
    evaluates every `every_steps`: as often, but at most about
    `COPY_EVALUATIONS` times. Only a copy's end enters the analysis, and
    evaluating Conv-2 on 5,000 examples every 100 steps took about as long
    as training on a CPU."""
    return min(max(every_steps, -(-num_steps // COPY_EVALUATIONS)), num_steps)


def _variant(experiment: trainer.Experiment, num_steps: int,
             every_steps: int | None = None) -> trainer.Experiment:
    """`experiment` training `num_steps` steps a round, evaluating every
    `every_steps` (default: as the experiment, at most `num_steps`), data
    shared."""
    variant = copy.copy(experiment)
    config = copy.deepcopy(experiment.config)
    config.train.num_steps = num_steps
    config.eval.every_steps = every_steps or min(config.eval.every_steps,
                                                 num_steps)
    config.train.checkpoint_every_steps = min(
        config.train.checkpoint_every_steps, num_steps)
    config.prune.rewind_step = 0
    variant.config = config
    return variant


def rewind_row(experiment: trainer.Experiment, folder: str, k: int,
               masks: dict[str, np.ndarray]) -> dict[str, Any]:
    """Trains the copies for rewind step `k` and evaluates their path
    (`summarize_path`'s row); resumes, and returns a finished row as it
    is. `masks`: as `state.set_masks` takes them ({}: the dense network).
    Holds the rewind step's folder (`held`) while it works."""
    result = paths.path_file(folder, k)
    if not os.path.exists(result):
        where = paths.rewind_dir(folder, k)
        with held(where):
            # Another process may have finished k before we took it.
            if not os.path.exists(result):
                files.write_json(result,
                                 _train_path(experiment, where, k, masks))
    return files.read_json(result)


def _train_path(experiment: trainer.Experiment, where: str, k: int,
                masks: dict[str, np.ndarray]) -> dict[str, Any]:
    seed = experiment.config.seed
    dense = os.path.join(where, "dense")
    if k:
        _variant(experiment, k).train_round(
            dense, 0, lambda: experiment.build_model(seed))

    def start() -> keras.Model:
        model = (experiment.load_model(paths.model_file(dense, 0)) if k
                 else experiment.build_model(seed))
        with experiment.strategy.scope():
            state.set_masks(model, masks)
        return model

    copies = os.path.join(where, "copy")
    rest_steps = experiment.config.train.num_steps - k
    rest = _variant(experiment, rest_steps, copy_eval_every(
        experiment.config.eval.every_steps, rest_steps))
    for c in COPIES:
        rest.train_round(copies, c, start)
    ends = [experiment.load_model(paths.model_file(copies, c))
            for c in COPIES]
    return summarize_path(k, path_errors(experiment, *ends))


def metrics_files(folder: str, k: int) -> list[str]:
    """The metrics.json of every training of rewind step `k`'s analysis:
    the run to W_k (k > 0) and the two copies."""
    where = paths.rewind_dir(folder, k)
    found = [paths.metrics_file(os.path.join(where, "copy"), c)
             for c in COPIES]
    if k:
        found.insert(0, paths.metrics_file(os.path.join(where, "dense"), 0))
    return found


def path_errors(experiment: trainer.Experiment, a: keras.Model,
                b: keras.Model, points: int = POINTS) -> list[float]:
    """Test errors at `points` evenly spaced points from `a` to `b`.

    The error is 1 - accuracy for a task that reports accuracy, else the
    test loss (a regression's, say). `a`'s weights are overwritten; `b` is
    left as it is.
    """
    config = experiment.config
    starts = [keras.ops.convert_to_numpy(v.value) for v in a.weights]
    ends = [keras.ops.convert_to_numpy(v.value) for v in b.weights]
    with experiment.strategy.scope():
        trainer = training.Trainer(
            a, experiment.strategy, training.make_optimizer(config.train),
            config.train.batch_size, config.train.jit_compile,
            config.train.steps_per_loop, task=experiment.task)
    test = trainer.eval_dataset(experiment.tensors["test_x"],
                                experiment.tensors["test_y"],
                                config.eval.batch_size)
    count = len(experiment.data.test_y)
    errors = []
    for alpha in np.linspace(0.0, 1.0, points):
        for variable, x, y in zip(a.weights, starts, ends):
            if keras.backend.is_float_dtype(variable.dtype):
                variable.assign(((1 - alpha) * x + alpha * y).astype(x.dtype))
        result = trainer.evaluate(test, count)
        errors.append(result.loss if result.accuracy is None
                      else 1.0 - result.accuracy)
    return errors


def summarize_path(k: int, errors: Sequence[float]) -> dict[str, Any]:
    """The instability of one path of test errors (ends included).

    Example:
        >>> summarize_path(0, [0.02, 0.09, 0.04])["instability"]  # 0.06
    """
    ends = [float(errors[0]), float(errors[-1])]
    worst = float(max(errors))
    instability = worst - float(np.mean(ends))
    return {"rewind_step": k,
            "alphas": [float(a) for a in np.linspace(0, 1, len(errors))],
            "test_errors": [float(e) for e in errors], "end_errors": ends,
            "max_error": worst, "instability": instability,
            "stable": bool(instability < STABLE)}


def smallest_stable(rows: Sequence[dict[str, Any]]) -> int | None:
    """The smallest rewind step whose instability is under `STABLE`, or
    None: the rewind step to use (Frankle et al. 2020)."""
    return min((row["rewind_step"] for row in rows if row["stable"]),
               default=None)


def _write_table(folder: str, workdir: str, round_index: int,
                 rows: list[dict[str, Any]]) -> dict[str, Any]:
    table = {"workdir": workdir, "round": round_index, "points": POINTS,
             "stable_under": STABLE, "rows": rows,
             "smallest_stable_rewind_step": smallest_stable(rows)}
    written = [os.path.join(folder, "instability.md"),
               os.path.join(folder, "instability.json")]
    files.write_text(written[0], format_table(table))
    for row in rows:
        written.append(os.path.join(
            folder, f"instability_k{row['rewind_step']:05d}.png"))
        plot_path(row, written[-1], round_index)
    table["files"] = written
    files.write_json(written[1], table)
    return table


def format_table(table: dict[str, Any]) -> str:
    """instability.md: one row per rewind step."""
    lines = [
        f"# Instability of round {table['round']} of {table['workdir']}",
        "",
        f"Test error (%) at the two ends of the linear path between two "
        f"trainings on different data orders, and its maximum over "
        f"{table['points']} points; stable when the instability (maximum "
        f"minus the mean of the ends) is under "
        f"{100 * table['stable_under']:g}%.", "", *table_lines(
            table["rows"])]
    k = table["smallest_stable_rewind_step"]
    lines += ["", f"Smallest stable rewind step: {k:,}." if k is not None
              else "No rewind step tried is stable."]
    return "\n".join(lines) + "\n"


def table_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A markdown table of `rows` (`summarize_path`'s), one per rewind
    step: test error (%) at the ends, its maximum on the path, the
    instability, whether stable."""
    lines = ["| rewind step k | error, end 1 | error, end 2 | max on path | "
             "instability | stable |", "|---:|---:|---:|---:|---:|:---:|"]
    for row in rows:
        a, b = row["end_errors"]
        lines.append(
            f"| {row['rewind_step']:,} | {100 * a:.2f} | {100 * b:.2f} | "
            f"{100 * row['max_error']:.2f} | "
            f"{100 * row['instability']:.2f} | "
            f"{'yes' if row['stable'] else 'no'} |")
    return lines


def plot_path(row: dict[str, Any], path: str, round_index: int) -> None:
    """Draws the test error along the path of one rewind step."""
    fig = figure.Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot(row["alphas"], [100 * e for e in row["test_errors"]],
            marker="o", markersize=3)
    ax.set_xlabel("Interpolation between the two trainings (α)")
    ax.set_ylabel("Test error (%)")
    ax.set_title(f"Round {round_index}, rewind step {row['rewind_step']:,}:"
                 f" instability {100 * row['instability']:.2f}%")
    ax.grid(True, alpha=0.3)
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")

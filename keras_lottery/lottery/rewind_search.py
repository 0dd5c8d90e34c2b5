"""`prune.rewind_step="auto"`: find the smallest stable rewind step first.

Frankle et al. (ICML 2020, "Linear Mode Connectivity and the Lottery
Ticket Hypothesis") rewind to the earliest step k at which the dense
network is *stable*: two trainings from W_k on different data orders end
linearly connected (instability under `instability.STABLE`, 2%). With
`prune.rewind_step="auto"`, before round 0 trains, the run measures the
dense network's instability at each of `prune.auto_rewind_steps` in
increasing order and stops at the first stable k. When none is stable it
takes the least unstable one and says so in the log.

The analyses go where `binaries.instability --round=0` puts (and reuses)
them, WORKDIR/instability/round_00/; the choice goes to
WORKDIR/rewind_step.json, written last, so a resumed run reads it and
searches no more:

    {"rewind_step": k, "stable": true, "rows": [{"rewind_step",
     "instability", "stable"}, ...], "train_steps": ..., "seconds": ...}

`train_steps` and `seconds` are what the search trained (every copy and
every run to W_k); the summary adds them to round 0's cost
(`cost.rewind_search_cost`), since every ticket of the run needs them.
config.json keeps "auto": a rerun of the same command matches it.

Example:
    config.prune.rewind_step = "auto"
    config.prune.auto_rewind_steps = (0, 100, 500, 2000)
    lottery.run(config, "/tmp/lenet300")  # rewind_step.json: the k used
"""

from __future__ import annotations

import copy
import os
from typing import Any

import ml_collections
from absl import logging

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import cost
from keras_lottery.lottery import instability

AUTO = "auto"


def choose(experiment, workdir: str) -> dict[str, Any]:
    """Runs (or resumes) the search; returns rewind_step.json's content.

    Args:
        experiment: the run's `lottery.Experiment` (its config says
            `prune.rewind_step="auto"`).
        workdir: the run's workdir (the chief's, or a worker's mirror).
    """
    found = recorded(workdir)
    if found is not None:
        return found
    folder = paths.instability_dir(workdir, 0)
    rows = []
    for k in sorted(set(experiment.config.prune.auto_rewind_steps)):
        # The dense network: no masks to set.
        rows.append(instability.rewind_row(experiment, folder, k, {}))
        logging.info("Rewind step %d: instability %.2f%%.", k,
                     100 * rows[-1]["instability"])
        if rows[-1]["stable"]:
            break
    k = pick(rows)
    stable = k == instability.smallest_stable(rows)
    if not stable:
        logging.warning(
            "No rewind step of prune.auto_rewind_steps=%s is stable (under "
            "%g%%); rewinding to the least unstable, %d.",
            [row["rewind_step"] for row in rows],
            100 * instability.STABLE, k)
    spent = [cost.round_cost(files.read_json(m)) for row in rows
             for m in instability.metrics_files(folder, row["rewind_step"])]
    choice = {
        "rewind_step": k,
        "stable": stable,
        "rows": [{name: row[name] for name in
                  ("rewind_step", "instability", "stable")} for row in rows],
        "train_steps": sum(c["train_steps"] for c in spent),
        "seconds": sum(c["round_seconds"] for c in spent),
    }
    files.write_json(paths.rewind_step_file(workdir), choice)
    logging.info("prune.rewind_step=auto: rewinding to step %d.", k)
    return choice


def pick(rows: list[dict[str, Any]]) -> int:
    """The rewind step an analysis's rows (`rewind_step`, `instability`,
    `stable` each) choose: the smallest stable one, else the least
    unstable."""
    k = instability.smallest_stable(rows)
    if k is None:
        k = min(rows, key=lambda row: row["instability"])["rewind_step"]
    return int(k)


def recorded(workdir: str) -> dict[str, Any] | None:
    """The choice a search recorded in `workdir` (`choose`'s result), or
    None before it has."""
    path = paths.rewind_step_file(workdir)
    return files.read_json(path) if os.path.exists(path) else None


def resolved(config: ml_collections.ConfigDict,
             choice: dict[str, Any]) -> ml_collections.ConfigDict:
    """A copy of `config` whose `prune.rewind_step` is the chosen step."""
    config = copy.deepcopy(config)
    config.prune.rewind_step = int(choice["rewind_step"])
    return config


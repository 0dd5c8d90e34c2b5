"""What every ticket cost: training iterations and seconds, cumulated.

IMP's tickets are expensive: LeNet-300-100's 3.6% ticket is the end of 16
full trainings. `summary.json` therefore gives, per round (issue 14):

    train_steps             iterations this round trained (fewer than
                            `train.num_steps` when an early-bird check
                            ended it)
    round_seconds           its training, evaluation and mask-choosing
                            seconds (`train_seconds + eval_seconds +
                            prune_seconds` of its metrics.json;
                            `prune_seconds`: making the round's starting
                            model, scoring and early-bird checks included)
                            Round 0's two also hold the search of
                            `prune.rewind_step="auto"` (rewind_step.json).
    cumulative_train_steps  the sum of `train_steps` over the rounds of the
    cumulative_seconds      workdir up to this one: since the run began
    ticket_train_steps      the same over the rounds this round's ticket is
    ticket_seconds          made from (`ticket_rounds`): all earlier rounds
                            for iterative pruning, round 0 and itself for
                            one-shot pruning, itself alone for pruning at
                            initialisation (`prune.at_init`)

Seconds are those of the process that finished each round: the seconds a
killed process spent are not in them (its iterations are, once redone).

`load_costs` reads them from any workdir: summaries written before these
fields existed get them from their rounds' metrics.json.
`keras_lottery.analysis.cost_report` draws accuracy against cost.

Example:
    entries = cost.load_costs("/tmp/lenet300")
    [(e["remaining_fraction"], e["cumulative_train_steps"]) for e in entries]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from keras_lottery.base import files
from keras_lottery.base import paths

# Wall-clock fields of metrics.json and summary.json: the only ones in
# which two runs of one config (deterministic) may differ.
TIMINGS = ("train_seconds", "eval_seconds", "prune_seconds",
           "round_seconds", "cumulative_seconds", "ticket_seconds")
FIELDS = ("train_steps", "round_seconds", "cumulative_train_steps",
          "cumulative_seconds", "ticket_train_steps", "ticket_seconds")


def round_cost(metrics: Mapping[str, Any]) -> dict[str, float]:
    """`train_steps` and `round_seconds` of one round's metrics.json.

    The steps are the last evaluated step: every round evaluates where its
    training ends. Metrics of older runs have no `prune_seconds` (0 then).
    """
    history = metrics.get("history") or [{"step": 0}]
    return {
        "train_steps": int(history[-1]["step"]),
        "round_seconds": float(metrics.get("train_seconds", 0.0)
                               + metrics.get("eval_seconds", 0.0)
                               + metrics.get("prune_seconds", 0.0)),
    }


def rewind_search_cost(workdir: str) -> dict[str, float]:
    """What the search of `prune.rewind_step="auto"` trained in
    `workdir`: `train_steps` and `round_seconds` (0 without a search)."""
    path = paths.rewind_step_file(workdir)
    if not os.path.exists(path):
        return {"train_steps": 0, "round_seconds": 0.0}
    choice = files.read_json(path)
    return {"train_steps": int(choice["train_steps"]),
            "round_seconds": float(choice["seconds"])}


def ticket_rounds(prune: Mapping[str, Any], round_index: int
                  ) -> tuple[int, ...]:
    """The rounds whose training round `round_index`'s ticket needed.

    Args:
        prune: the `prune` section of a config (a dict or ConfigDict).
        round_index: the round.
    """
    if round_index == 0:
        return (0,)
    if prune.get("at_init"):
        return (round_index,)
    if prune.get("mode") == "one_shot":
        return (0, round_index)
    return tuple(range(round_index + 1))


def add_cumulative(entries: list[dict[str, Any]],
                   prune: Mapping[str, Any]) -> None:
    """Adds the cumulative fields to `entries` in place.

    Args:
        entries: summary entries in round order, each with `round`,
            `train_steps` and `round_seconds`.
        prune: the run's `prune` config section.
    """
    by_round = {e["round"]: e for e in entries}
    steps = seconds = 0.0
    for entry in entries:
        steps += entry["train_steps"]
        seconds += entry["round_seconds"]
        entry["cumulative_train_steps"] = int(steps)
        entry["cumulative_seconds"] = seconds
        lineage = [by_round[r] for r in ticket_rounds(prune, entry["round"])
                   if r in by_round]
        entry["ticket_train_steps"] = int(sum(e["train_steps"]
                                              for e in lineage))
        entry["ticket_seconds"] = float(sum(e["round_seconds"]
                                            for e in lineage))


def load_costs(workdir: str) -> list[dict[str, Any]]:
    """A workdir's summary entries, with the cost fields.

    Summaries without them (older runs) get them from their rounds'
    metrics.json; a round whose metrics.json is gone is left out then.

    Raises:
        ValueError: if `workdir` has no summary.json or config.json.
    """
    for path in (paths.summary_file(workdir), paths.config_file(workdir)):
        if not os.path.exists(path):
            raise ValueError(
                f"`workdirs` names a folder without {os.path.basename(path)}"
                f": not a finished lottery run. Received: {workdir!r}")
    entries = files.read_json(paths.summary_file(workdir))
    if all(set(FIELDS) <= set(e) for e in entries):
        return entries
    config = files.read_json(paths.config_file(workdir))
    kept = []
    for entry in entries:
        path = paths.metrics_file(workdir, entry["round"])
        if os.path.exists(path):
            kept.append({**entry, **round_cost(files.read_json(path))})
    add_cumulative(kept, config["prune"])
    return kept

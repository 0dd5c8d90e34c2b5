"""What a search trial scores: its objective, read from a run's summary.

Both objectives judge rounds by the run's compared metric in its direction,
as `summary.json` records them (`compared_metric`, `compared_mode`; see
`keras_lottery.engine.tasks`): test accuracy, higher is better, for
classification; the task's monitored metric otherwise (`mae`, lower is
better; `auc`, higher). A summary written before other metrics existed
compared accuracy.

- `sparsest_winning_ticket` (minimised): the smallest remaining fraction
  among the rounds whose ticket wins: a test value at early stop at least
  as good as the dense round's, less `tune.accuracy_tolerance` (in the
  metric's units, in its direction), and an early-stop step at most the
  dense round's. 1.0 (the dense network) when no round wins.
- `accuracy_at_sparsity` (the metric's direction: maximised for accuracy,
  minimised for `mae`): the best test value at early stop among the rounds
  with at most `tune.max_remaining_fraction` of the weights left. When no
  round is that sparse, a value no round of the trial beats: 0.0 for a
  metric that rises (accuracy), the trial's worst test value for one that
  falls.
"""

from __future__ import annotations

from keras_lottery.pruning import selection

OBJECTIVES = ("sparsest_winning_ticket", "accuracy_at_sparsity")


def compared(summary: list[dict]) -> tuple[str, str]:
    """`(metric, "min" | "max")`: what a summary's tickets are judged on."""
    first = summary[0]
    return (first.get("compared_metric", "accuracy"),
            first.get("compared_mode", "max"))


def direction(objective: str, mode: str) -> str:
    """Which way keras-tuner optimises `objective`, for a run whose
    compared metric improves towards `mode` (`"min"` or `"max"`)."""
    selection.check_choice("tune.objective", objective, OBJECTIVES)
    return "min" if objective == "sparsest_winning_ticket" else mode


def pick_ticket(summary: list[dict], objective: str,
                accuracy_tolerance: float,
                max_remaining_fraction: float) -> tuple[float, dict]:
    """Scores a lottery run and picks the round that gives the score.

    Args:
        summary: the entries of a run's `summary.json`; the entry of round
            0 (the dense network) must be first.
        objective: one of `OBJECTIVES`.
        accuracy_tolerance: a round wins when its test value of the
            compared metric at early stop is at least as good as round 0's
            less this (in the metric's direction), and its early-stop step
            at most round 0's.
        max_remaining_fraction: the sparsity budget of
            `accuracy_at_sparsity`: rounds with more weights left than this
            do not count.

    Returns:
        `(value, entry)`: the objective's value and the summary entry of the
        chosen round (round 0 when no round qualifies for
        `sparsest_winning_ticket`, the sparsest round for
        `accuracy_at_sparsity`).
    """
    selection.check_choice("tune.objective", objective, OBJECTIVES)
    dense = summary[0]
    if dense["round"] != 0:
        raise ValueError(f"`summary` must start with round 0. Received: "
                         f"round={dense['round']!r}")
    metric, mode = compared(summary)
    key = f"test_{metric}"
    if objective == "sparsest_winning_ticket":
        if mode == "max":
            good = [e for e in summary[1:]
                    if e[key] >= dense[key] - accuracy_tolerance]
        else:
            good = [e for e in summary[1:]
                    if e[key] <= dense[key] + accuracy_tolerance]
        winners = [e for e in good
                   if e["early_stop_step"] <= dense["early_stop_step"]]
        ticket = min(winners, key=lambda e: e["remaining_fraction"],
                     default=dense)
        return float(ticket["remaining_fraction"]), ticket
    within = [e for e in summary
              if e["remaining_fraction"] <= max_remaining_fraction]
    sign = 1.0 if mode == "max" else -1.0
    if not within:
        values = [e[key] for e in summary]
        worst = min(0.0, *values) if mode == "max" else max(values)
        return float(worst), min(summary,
                                 key=lambda e: e["remaining_fraction"])
    ticket = max(within, key=lambda e: (sign * e[key],
                                        -e["remaining_fraction"]))
    return float(ticket[key]), ticket

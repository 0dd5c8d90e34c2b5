"""Accuracy against cost, for any set of lottery workdirs (issue 14).

`write_cost_report` writes to its output folder:

    cost.md     every round of every workdir: remaining %, test accuracy
                at early stop, and the iterations and seconds its ticket
                cost (see `keras_lottery.lottery.cost`)
    cost.png    test accuracy at early stop against the ticket's
                cumulative training iterations, one line per workdir

Unlike `keras_lottery.analysis.tables`, the workdirs may be of any configs: IMP,
early-bird, one-shot, pruning at initialisation, side by side.

Example:
    cost_report.write_cost_report(
        ["/tmp/imp", "/tmp/snip"], "/tmp/cost", labels=["IMP", "SNIP"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import figure

from keras_lottery.base import files
from keras_lottery.lottery import cost


def write_cost_report(workdirs: Sequence[str], output: str,
                      labels: Sequence[str] = ()) -> list[str]:
    """Writes cost.md and cost.png: accuracy against cumulative iterations.

    One line per workdir (any configs): each round's test accuracy at
    early stop against the training iterations its ticket cost
    (`ticket_train_steps`), and a table of every round's costs.

    Args:
        workdirs: finished lottery workdirs (or control workdirs).
        output: the folder to write into; created if missing.
        labels: a label per workdir; by default the workdir's path.

    Returns:
        The paths written.

    Raises:
        ValueError: for a workdir that is not a finished run, labels of
            the wrong length, runs judged on different test metrics, or an
            `output` that cannot be written.
    """
    if not workdirs:
        raise ValueError("`cost_workdirs` must name at least one workdir. "
                         f"Received: cost_workdirs={list(workdirs)!r}")
    if labels and len(labels) != len(workdirs):
        raise ValueError(
            "`labels` must give one label per workdir. Received: "
            f"labels={list(labels)!r} for {len(workdirs)} workdirs")
    runs = [(label, cost.load_costs(w)) for label, w in
            zip(labels or workdirs, workdirs)]
    _compared(runs)  # one metric for all, before anything is written
    files.make_output_dir(output)
    written = [os.path.join(output, "cost.md"),
               os.path.join(output, "cost.png")]
    files.write_text(written[0], format_costs(runs))
    plot_costs(runs, written[1])
    return written


def _compared(runs: Sequence[tuple[str, list[dict[str, Any]]]]) -> str:
    """The test metric the runs' tickets are judged on: accuracy (runs
    written before other metrics existed), or the one they all share.

    Raises:
        ValueError: if the runs judge on different metrics.
    """
    found = {e.get("compared_metric", "accuracy")
             for _, entries in runs for e in entries} or {"accuracy"}
    if len(found) > 1:
        raise ValueError(
            "`cost_workdirs` must judge their tickets on one test metric; "
            f"they use {', '.join(sorted(found))}. Received: cost_workdirs="
            f"{[label for label, _ in runs]!r}")
    return found.pop()


def _value(entry: dict[str, Any], metric: str) -> float:
    """The entry's test value at early stop, accuracy in percent."""
    return (100 if metric == "accuracy" else 1) * entry[f"test_{metric}"]


def format_costs(runs: Sequence[tuple[str, list[dict[str, Any]]]]) -> str:
    """A markdown table of every run's rounds and their costs."""
    metric = _compared(runs)
    column = ("test acc. at early stop %" if metric == "accuracy"
              else f"test {metric} at early stop")
    lines = [
        "# What each ticket cost", "",
        "Training iterations and seconds (training, evaluation and "
        "choosing masks) of each ticket: its own rounds (`ticket`), and "
        "every round of its workdir so far (`cumulative`).", "",
        f"| run | round | remaining % | {column} | "
        "ticket iterations | ticket seconds | cumulative iterations | "
        "cumulative seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, entries in runs:
        for e in entries:
            lines.append(
                f"| {label} | {e['round']} | "
                f"{100 * e['remaining_fraction']:.3g} | "
                f"{_value(e, metric):.{2 if metric == 'accuracy' else 4}f}"
                " | "
                f"{e['ticket_train_steps']:,} | {e['ticket_seconds']:,.0f} | "
                f"{e['cumulative_train_steps']:,} | "
                f"{e['cumulative_seconds']:,.0f} |")
    return "\n".join(lines) + "\n"


LABELLED_RUNS = 8  # more runs than this: points unlabelled, legend beside
LEGEND_ROWS = 24  # legend entries per column
# Beyond the colours of matplotlib's cycle (C0-C9), runs differ by marker
# and line style too: no two of 60 runs look alike.
COLOURS = 10
MARKERS = ("o", "s", "^", "D", "v", "P")
LINE_STYLES = ("-", "--")


def plot_costs(runs: Sequence[tuple[str, list[dict[str, Any]]]],
               path: str) -> None:
    """Draws test accuracy at early stop against ticket iterations."""
    fig = cost_figure(runs)
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def cost_figure(runs: Sequence[tuple[str, list[dict[str, Any]]]]
                ) -> figure.Figure:
    """`plot_costs`'s figure. A few runs: each point labelled with its %
    of weights remaining, the legend inside. Many (a study's): no point
    labels, the legend in columns beside the axes, never over them."""
    few = len(runs) <= LABELLED_RUNS
    columns = -(-len(runs) // LEGEND_ROWS)
    fig = figure.Figure(figsize=(8 if few else 8 + 3 * columns, 5),
                        dpi=100, layout="constrained")
    ax = fig.subplots()
    metric = _compared(runs)
    for i, (label, entries) in enumerate(runs):
        x = np.array([e["ticket_train_steps"] for e in entries])
        y = np.array([_value(e, metric) for e in entries])
        look = i // COLOURS
        line, = ax.plot(x, y, color=f"C{i % COLOURS}",
                        marker=MARKERS[look % len(MARKERS)],
                        linestyle=LINE_STYLES[look // len(MARKERS)
                                              % len(LINE_STYLES)],
                        label=label)
        for e, xi, yi in zip(entries, x, y) if few else ():
            ax.annotate(f"{100 * e['remaining_fraction']:.3g}%", (xi, yi),
                        fontsize="x-small", color=line.get_color(),
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_xlabel("Cumulative training iterations of the ticket")
    ax.set_ylabel("Test accuracy at early stop (%)" if metric == "accuracy"
                  else f"Test {metric} at early stop")
    ax.set_title(f"{metric.replace('_', ' ').capitalize()} against cost"
                 + (" (labels: % of weights remaining)" if few else ""))
    ax.grid(True, alpha=0.3)
    if few:
        ax.legend(loc="lower right", fontsize="small")
    else:
        fig.legend(loc="outside right upper", fontsize="x-small",
                   ncols=columns)
    return fig

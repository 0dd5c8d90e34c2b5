"""The report's plots: accuracy and early-stop step against weights left.

Drawn with matplotlib's object API (no global state), from the tables of
`keras_lottery.analysis.tables`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import figure
from matplotlib import ticker

from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.pruning import selection

_STYLES = {
    "ticket": {"color": "tab:blue", "marker": "o"},
    "random_reinit": {"color": "tab:orange", "marker": "s",
                      "linestyle": "--"},
    "random_prune": {"color": "tab:green", "marker": "^", "linestyle": "--"},
    "shuffle": {"color": "tab:purple", "marker": "v", "linestyle": ":"},
    "one_shot": {"color": "tab:red", "marker": "D"},
    "tfmot": {"color": "black", "marker": "*", "linestyle": "none",
              "markersize": 10},
}


def plot_series(table: dict[str, Any], series: Sequence[str], path: str,
                error_bars: str = "std") -> None:
    """Draws early-stop iteration and both accuracies vs remaining %.

    Three panels as in Frankle & Carbin's Figure 4; the tfmot baseline's
    points, if any, on both accuracy panels.

    Args:
        table: as `build_table` returns it.
        series: which of `table["series"]` to draw.
        path: the PNG file to write.
        error_bars: `"std"` (± one std over seeds) or `"range"` (min to
            max over seeds, as the paper draws them).
    """
    selection.check_choice("error_bars", error_bars, tables.ERROR_BARS)
    fig = figure.Figure(figsize=(15, 4.5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    compared = tables.compared(table)[0]
    titles = tables.metrics_for(compared)
    for ax, metric in zip(axes, ("early_stop_step", f"test_{compared}",
                                 f"final_test_{compared}")):
        scale = 1 if metric == "early_stop_step" else tables.scale(metric)
        for name in series:
            rows = [r for r in table["rows"] if r.get(name)]
            if rows:
                _errorbar(ax, [r["remaining_fraction"] for r in rows],
                          [r[name][metric] for r in rows], scale,
                          error_bars, tables.LABELS[name], _STYLES[name])
        if metric != "early_stop_step" and table["tfmot_points"]:
            points = table["tfmot_points"]
            _errorbar(ax, [p["remaining_fraction"] for p in points],
                      [p["test_accuracy"] for p in points], scale,
                      error_bars, tables.LABELS["tfmot"] + " (end of training)",
                      _STYLES["tfmot"])
        _remaining_axis(
            ax, [r["remaining_fraction"] for r in table["rows"]],
            [p["remaining_fraction"] for p in table["tfmot_points"]])
        ax.set_title(titles[metric])
        ax.set_ylabel(titles[metric])
        ax.grid(True, which="major", alpha=0.3)
    # The accuracy panel is the one with every series, tfmot included.
    axes[1].legend(loc="best", fontsize="small")
    bars = "± std" if error_bars == "std" else "min–max"
    fig.suptitle(f"{table['title']}: mean over seeds, error bars {bars}")
    _save(fig, path)


def plot_curves(runs: Sequence[tables.Run], table: dict[str, Any], path: str
                ) -> bool:
    """Draws the ticket's accuracy during training at a few rounds.

    As Frankle & Carbin's Figure 3: one line per round (mean over the seeds
    whose `metrics.json` has the round), a band of ± one std. The test
    accuracy where every evaluation has it (`eval.test_at="every"`), else
    the validation accuracy.

    Args:
        runs: the iterative runs.
        table: as `build_table` returns it, for the rounds' sparsities.
        path: the PNG file to write.

    Returns:
        Whether a figure was written (False when no round has a history).
    """
    rows = [r for r in table["rows"] if r.get("ticket")]
    picked = _spread([r["remaining_fraction"] for r in rows],
                     tables.CURVE_ROUNDS)
    histories = {}
    for row in rows:
        if row["remaining_fraction"] not in picked:
            continue
        histories[row["round"]] = [
            files.read_json(path).get("history", [])
            for path in (paths.metrics_file(run.workdir, row["round"])
                         for run in runs)
            if os.path.exists(path)]
    records = [r for runs_ in histories.values() for h in runs_ for r in h]
    compared = tables.compared(table)[0]
    if compared == "loss":
        return False  # the loss alone: the table's columns say it all
    metric = (f"test_{compared}" if all(f"test_{compared}" in r
                                        for r in records)
              else f"validation_{compared}")
    factor = tables.scale(metric)
    fig = figure.Figure(figsize=(8, 5), dpi=100, layout="constrained")
    ax = fig.subplots()
    drawn = False
    for row in rows:
        if row["round"] not in histories:
            continue
        curves = {}
        for history in histories[row["round"]]:
            for record in history:
                curves.setdefault(record["step"], []).append(record[metric])
        if not curves:
            continue
        steps = sorted(curves)
        mean = np.array([factor * np.mean(curves[s]) for s in steps])
        std = np.array([factor * np.std(curves[s], ddof=1)
                        if len(curves[s]) > 1 else 0.0 for s in steps])
        line, = ax.plot(steps, mean, label=(
            f"{100 * row['remaining_fraction']:.3g}% remaining "
            f"(round {row['round']})"))
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2,
                        color=line.get_color(), linewidth=0)
        drawn = True
    if not drawn:
        return False
    ax.set_xlabel("Training iterations")
    ax.set_ylabel(metric.replace("_", " ").capitalize()
                  + (" (%)" if factor == 100 else ""))
    ax.set_title(f"{table['title']}: winning tickets during training")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)
    return True


def _errorbar(ax, fractions, stats, scale, error_bars, label, style):
    x = [100 * f for f in fractions]
    y = np.array([scale * s["mean"] for s in stats])
    if error_bars == "std":
        spread = np.array([scale * (s["std"] or 0.0) for s in stats])
        yerr = np.stack([spread, spread])
    else:
        yerr = np.stack([y - [scale * s["min"] for s in stats],
                         [scale * s["max"] for s in stats] - y])
    ax.errorbar(x, y, yerr=yerr, capsize=3, label=label, **style)


def _remaining_axis(ax, fractions, others) -> None:
    """A reversed log axis of percent remaining, ticked at the rounds.

    `others` (more points drawn) only widen the axis.
    """
    ax.set_xscale("log")
    ticks = sorted((100 * f for f in _spread(fractions, 8)), reverse=True)
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ticker.FixedFormatter(
        [f"{t:.3g}" for t in ticks]))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    every = [100 * f for f in (*fractions, *others)]
    ax.set_xlim(max(every) * 1.25, min(every) / 1.25)
    ax.set_xlabel("Percent of weights remaining")


def _spread(fractions: Sequence[float], count: int) -> list[float]:
    """At most `count` of `fractions`, evenly spread on a log scale.

    Always keeps the largest and the smallest.
    """
    values = sorted(set(fractions), reverse=True)
    if len(values) <= count:
        return values
    logs = np.log(values)
    targets = np.linspace(logs[0], logs[-1], count)
    picked = {values[int(np.argmin(np.abs(logs - t)))] for t in targets}
    return sorted(picked, reverse=True)


def _save(fig: figure.Figure, path: str) -> None:
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")

"""Tables and plots of lottery runs across seeds, in the paper's manner.

`write_report` reads the workdirs of one experiment run with several seeds
(each with its controls in `controls/`, when they ran), optionally the
one-shot runs of the same experiment and a tfmot gradual-pruning baseline
(`benchmarks/tfmot_baseline.py`), and writes to the output folder:

    report.md       three tables, one row per round: test accuracy at the
                    early-stop step, the early-stop step, test accuracy at
                    the end of training; mean ± std over seeds; then the
                    findings (`find`): where each series holds the dense
                    accuracy, its peak, its earliest early stop, and how
                    many seeds have a winning ticket at each round
    report.json     the same, with every seed's value, min, max and n
    controls.png    ticket vs random reinit vs random prune
    one_shot.png    iterative vs one-shot pruning (with one-shot runs)
    curves.png      the ticket's test (or validation) accuracy during training

Plots follow Frankle & Carbin (ICLR 2019), Figures 3 and 4: the percent of
weights remaining on a reversed log axis, so sparsity grows to the right.
Nothing here trains or imports a model; figures are drawn with
matplotlib's Agg canvas (no display, no global backend switch).

Example:
    table = report.write_report(
        ["/tmp/lenet300/seed0", "/tmp/lenet300/seed1"], "docs/results",
        one_shot_workdirs=["/tmp/lenet300/oneshot_seed0"])
    table["rows"][3]["ticket"]["test_accuracy"]["mean"]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from keras_lottery.analysis import plots
from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.pruning import selection


def write_report(workdirs: Sequence[str], output: str,
                 one_shot_workdirs: Sequence[str] = (),
                 tfmot: str | None = None,
                 error_bars: str = "std") -> dict[str, Any]:
    """Reads the runs and writes the report's tables and plots to `output`.

    Args:
        workdirs: the iterative runs, one workdir per seed; their controls
            are read from `controls/` when present.
        output: the folder to write into; created if missing.
        one_shot_workdirs: one-shot runs of the same config (but
            `prune.mode="one_shot"`), one per seed, or none.
        tfmot: the JSON file of `benchmarks/tfmot_baseline.py`, or None.
        error_bars: `"std"` or `"range"` (see `plot_series`).

    Returns:
        The table, as written to `report.json`, with `files`: the paths
        written.

    Raises:
        ValueError: for bad input (see `load_runs`, `load_tfmot`), one-shot
            runs of another config, or an `output` that cannot be written.

    Example:
        report.write_report(["w/seed0", "w/seed1", "w/seed2"], "docs/results")
    """
    selection.check_choice("error_bars", error_bars, tables.ERROR_BARS)
    runs = tables.load_runs(workdirs)
    one_shot_runs = []
    if one_shot_workdirs:
        one_shot_runs = tables.load_runs(one_shot_workdirs, "one_shot_workdirs")
        for run in one_shot_runs:
            if run.config["prune"]["mode"] != "one_shot":
                raise ValueError(
                    "`one_shot_workdirs` must be one-shot runs. Received: "
                    f"{run.workdir!r} with prune.mode="
                    f"{run.config['prune']['mode']!r}")
        tables.check_same_config(one_shot_runs, runs[0], "one_shot_workdirs",
                          (*tables.IGNORED_FIELDS, "prune.mode",
                           "prune.one_shot_rounds"))
    baseline = tables.load_tfmot(tfmot) if tfmot else None
    table = tables.build_table(runs, one_shot_runs, baseline)
    files.make_output_dir(output)
    written = [os.path.join(output, "report.md"),
               os.path.join(output, "report.json")]
    files.write_text(written[0], tables.format_markdown(table))
    controls = [s for s in table["series"] if s != "one_shot"]
    written.append(os.path.join(output, "controls.png"))
    plots.plot_series(table, controls, written[-1], error_bars)
    if one_shot_runs:
        written.append(os.path.join(output, "one_shot.png"))
        plots.plot_series(table, ("ticket", "one_shot"), written[-1],
                          error_bars)
    if plots.plot_curves(runs, table, os.path.join(output, "curves.png")):
        written.append(os.path.join(output, "curves.png"))
    table["files"] = written
    files.write_json(written[1], table)
    return table

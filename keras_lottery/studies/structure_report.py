r"""The structure study's report: every cell side by side, from its records.

Reads the records of the structure study (`keras_lottery.studies.
structure`) and writes, under OUTPUT/PART for each part:

  CELL/report.md, .json, controls.png   binaries.report of each cell (its
                                        seeds and controls)
  comparison.md, comparison.json        all cells: per round, the weights
                                        left (mask) and the parameters left
                                        once `keras_lottery.shrink` removed
                                        dead units, test accuracy at early
                                        stop and at the end, early-stop
                                        iteration, winning seeds, latency;
                                        the instability tables recorded
                                        (RECORDS/PART/instability)
  accuracy.png     test accuracy at early stop vs parameters left
  latency.png      test accuracy at early stop vs each latency column
  layers.png       per-layer fraction of kernel entries left after shrink,
                   across rounds

Latency comes from OUTPUT/PART/latency.json, which the benchmark
benchmarks/structure_latency.py measures (on a quiet machine); a report
without it has no latency column.

  python -m keras_lottery.studies.structure_report --parts=lenet \
      --records=docs/results_structure/runs --output=docs/results_structure

(`keras-lottery study structure` runs it once every run is recorded; its
flags are defined only then, so importing the module defines none).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from absl import app
from absl import flags
from matplotlib import figure

from keras_lottery.analysis import report
from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.studies import structure_table
from keras_lottery.studies.structure_cells import cell_names


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for part in flags.FLAGS.parts:
        print(f"Report: "
              f"{write(part, flags.FLAGS.records, flags.FLAGS.output)}")


def write(part: str, records: str, output: str) -> str:
    """Writes the report of `part` from RECORDS/PART under OUTPUT/PART;
    returns the comparison's path."""
    records = os.path.join(records, part)
    output = os.path.join(output, part)
    cells = structure_table.load_cells(records, cell_names(part))
    if not cells:
        raise ValueError(f"No finished run of part {part} in `records`. "
                         f"Received: records={records!r}")
    latency_path = os.path.join(output, "latency.json")
    latency = structure_table.load_latency(latency_path, part)
    for name, runs in cells.items():
        report.write_report([run["dir"] for run in runs],
                            os.path.join(output, name))
    table = structure_table.compare(
        cells, latency["shapes"], structure_table.load_instability(records))
    files.write_json(os.path.join(output, "comparison.json"), table)
    with (files.atomic_path(os.path.join(output, "comparison.md")) as tmp,
          open(tmp, "w", encoding="utf-8") as f):
        f.write(structure_table.format_comparison(table, latency))
    plot_accuracy(table, os.path.join(output, "accuracy.png"))
    plot_layers(cells, os.path.join(output, "layers.png"))
    if latency["shapes"]:
        plot_latency(table, structure_table.latency_columns(latency),
                     os.path.join(output, "latency.png"))
    return os.path.join(output, "comparison.md")


def plot_accuracy(table: dict[str, Any], path: str) -> None:
    fig = figure.Figure(figsize=(14, 5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("test_accuracy", "early_stop_step")):
        scale = 100 if metric == "test_accuracy" else 1
        for name, cell in table["cells"].items():
            rows = cell["rows"]
            x = [100 * r["parameters_left"]["mean"] for r in rows]
            y = [scale * r[metric]["mean"] for r in rows]
            err = [scale * (r[metric]["std"] or 0) for r in rows]
            ax.errorbar(x, y, yerr=err, capsize=2, marker=_marker(name),
                        linestyle="-" if "weight" in name else "--",
                        label=name)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("Percent of parameters left (after shrink)")
        ax.set_ylabel(tables.METRICS[metric])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("Structure x criterion: mean ± std over seeds")
    _save(fig, path)


def plot_latency(table: dict[str, Any], columns: tuple[str, ...],
                 path: str) -> None:
    """Test accuracy at early stop against each latency column."""
    fig = figure.Figure(figsize=(7 * len(columns), 5), dpi=100,
                        layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    for ax, column in zip(axes, columns):
        for name, cell in table["cells"].items():
            rows = [r for r in cell["rows"] if r.get("latency_s")]
            ax.plot([1e6 * r["latency_s"][column] for r in rows],
                    [100 * r["test_accuracy"]["mean"] for r in rows],
                    marker=_marker(name), label=name)
        fmt, batch = structure_table.parse_column(column)
        ax.set_xscale("log")
        ax.set_xlabel(f"Batch-{batch} latency of the shrunk "
                      f"{'TFLite model' if fmt == 'tflite' else 'SavedModel'}"
                      " (µs)")
        ax.set_ylabel(tables.METRICS["test_accuracy"])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    _save(fig, path)


LAYER_COLUMNS = 4  # layers.png: cells per row


def plot_layers(cells: dict[str, list[dict]], path: str) -> None:
    """Per-layer fraction of kernel entries left after shrink (seed 0's
    run of each cell), and of all of them (dashed)."""
    names = list(cells)
    columns = min(len(names), LAYER_COLUMNS)
    rows = -(-len(names) // columns)
    fig = figure.Figure(figsize=(4 * columns, 3.6 * rows), dpi=100,
                        layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharey=True)).ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        rounds = cells[name][0]["rounds"]
        dense = rounds[0]["shrunk"]
        steps = [m["round"] for m in rounds]
        for layer, count in dense["layer_nonzero"].items():
            ax.plot(steps, [100 * m["shrunk"]["layer_nonzero"].get(layer, 0)
                            / count for m in rounds], marker=".",
                    label=layer)
        ax.plot(steps, [100 * m["shrunk"]["kernel_nonzero"]
                        / dense["kernel_entries"] for m in rounds], "k--",
                label="all")
        ax.set_yscale("log")
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("Round")
        ax.grid(True, alpha=0.3)
    for ax in axes[::columns]:
        ax.set_ylabel("Percent of kernel entries left after shrink")
    axes[0].legend(fontsize="x-small")
    _save(fig, path)


def _marker(name: str) -> str:
    return {"magnitude": "o", "gradient": "s", "activation": "^",
            "apoz": "v"}.get(name.split("_")[1], "D")


def _save(fig: figure.Figure, path: str) -> None:
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


if __name__ == "__main__":
    flags.DEFINE_list("parts", ["lenet"], "Which networks' cells.")
    flags.DEFINE_string("records", "docs/results_structure/runs",
                        "The study's records.")
    flags.DEFINE_string("output", "docs/results_structure",
                        "Where the report goes.")
    app.run(main)

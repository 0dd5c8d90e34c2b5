r"""The structure study's report: every cell side by side.

Reads the records of benchmarks/structure_study.py and writes, under
OUTPUT/PART:

  CELL/report.md, .json, controls.png   binaries.report of each cell (its
                                        seeds and controls)
  comparison.md, comparison.json        all cells: per round, the weights
                                        left (mask) and the parameters left
                                        once `keras_lottery.shrink` removed
                                        dead units, test accuracy at early
                                        stop and at the end, early-stop
                                        iteration, winning seeds, latency
  accuracy.png     test accuracy at early stop vs parameters left
  latency.png      test accuracy at early stop vs batch-1 latency
  layers.png       per-layer fraction of kernel entries left after shrink,
                   across rounds
  latency.json     batch-1 and batch-256 latency of each shrunk shape

Latency: each distinct shrunk shape is rebuilt from its recorded Keras
config with fresh weights (latency depends on the shapes only), exported
as a SavedModel (keras_lottery.export) and timed through its serving
signature at batch 1 and 256, interleaved, best of --repeats medians, on
--threads threads. Measured shapes are kept in latency.json and measured
again only with --remeasure: run it on a quiet machine. How far two
measurements of one shape can differ: benchmarks/latency_spread.py.

  python -m benchmarks.structure_report --part=lenet [--latency]
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
from absl import app
from absl import flags
from matplotlib import figure

from benchmarks import common

# Its timing helpers; it defines flags of the same names as some here
# (allow_override below, as benchmarks/shrink.py does).
from benchmarks import export as export_benchmark
from benchmarks import structure_table
from benchmarks.structure_cells import PARTS
from keras_lottery.analysis import report
from keras_lottery.analysis import tables
from keras_lottery.base import files

_PART = flags.DEFINE_enum("part", "lenet", list(PARTS),
                          "Which network's cells.")
_RECORDS = flags.DEFINE_string("records", "docs/results_structure/runs",
                               "The study's records.")
_OUTPUT = flags.DEFINE_string("output", "docs/results_structure",
                              "Where the report goes.", allow_override=True)
_LATENCY = flags.DEFINE_bool("latency", False,
                             "Measure the shapes not yet in latency.json.")
_REMEASURE = flags.DEFINE_bool("remeasure", False,
                               "Measure every shape again.")
_THREADS = flags.DEFINE_integer("threads", 1, "CPU threads for latency.",
                                allow_override=True)
_CALLS = flags.DEFINE_integer("calls", 300, "Timed calls at batch 1 (a "
                              "tenth at batch 256), after as many untimed.",
                              allow_override=True)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Measurements per shape.",
                                allow_override=True)
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.",
                            allow_override=True)

BATCH_SIZES = structure_table.BATCH_SIZES


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    records = os.path.join(_RECORDS.value, _PART.value)
    output = os.path.join(_OUTPUT.value, _PART.value)
    cells = structure_table.load_cells(records, PARTS[_PART.value][1])
    if not cells:
        raise app.UsageError(f"No finished run in {records}.")
    latency_path = os.path.join(output, "latency.json")
    latency = (files.read_json(latency_path)
               if os.path.exists(latency_path) else {"shapes": {}})
    if _LATENCY.value or _REMEASURE.value:
        latency = measure_latency(cells, latency, _REMEASURE.value)
        os.makedirs(output, exist_ok=True)
        files.write_json(latency_path, latency)
    for name, runs in cells.items():
        report.write_report([run["dir"] for run in runs],
                            os.path.join(output, name))
    table = structure_table.compare(cells, latency["shapes"])
    files.write_json(os.path.join(output, "comparison.json"), table)
    with (files.atomic_path(os.path.join(output, "comparison.md")) as tmp,
          open(tmp, "w", encoding="utf-8") as f):
        f.write(structure_table.format_comparison(table, latency))
    plot_accuracy(table, os.path.join(output, "accuracy.png"))
    plot_layers(cells, os.path.join(output, "layers.png"))
    if latency["shapes"]:
        plot_latency(table, os.path.join(output, "latency.png"))
    print(f"Report: {output}/comparison.md")


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


def plot_latency(table: dict[str, Any], path: str) -> None:
    fig = figure.Figure(figsize=(14, 5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, batch in zip(axes, BATCH_SIZES):
        for name, cell in table["cells"].items():
            rows = [r for r in cell["rows"] if r.get("latency_s")]
            ax.plot([1e6 * r["latency_s"][str(batch)] for r in rows],
                    [100 * r["test_accuracy"]["mean"] for r in rows],
                    marker=_marker(name), label=name)
        ax.set_xscale("log")
        ax.set_xlabel(f"Batch-{batch} latency of the shrunk SavedModel (µs)")
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


def measure_latency(cells: dict[str, list[dict]], latency: dict,
                    remeasure: bool) -> dict:
    """Adds the batch-1 and batch-256 latency of every shrunk shape."""
    set_threads()
    configs = shape_configs(cells)
    todo = {key: config for key, config in configs.items()
            if remeasure or key not in latency["shapes"]}
    with tempfile.TemporaryDirectory(prefix="structure_latency_") as tmp:
        best = common.interleaved(timed_calls(todo, tmp), _REPEATS.value,
                                  best=min)
    shapes = dict(latency["shapes"])
    for key in todo:
        shapes[key] = {str(b): best[key, b] for b in BATCH_SIZES}
    return {"note": latency_note(), "shapes": shapes}


def shape_configs(cells: dict[str, list[dict]]) -> dict[str, dict]:
    """`{shape: Keras config}` of every shrunk shape the records have."""
    return {key: config for runs in cells.values() for run in runs
            for key, config in run["models"].items()}


def set_threads() -> None:
    import tensorflow as tf  # noqa: PLC0415  (TensorFlow only when measuring)

    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)


def timed_calls(configs: dict[str, dict], folder: str
                ) -> dict[tuple[str, int], Callable[[], float]]:
    """`{(name, batch): measurement}`: each config rebuilt with fresh
    weights, exported as a SavedModel under folder, and a median of
    --calls calls of its serving signature (a tenth at batch 256)."""
    import keras  # noqa: PLC0415

    from keras_lottery.serving import export  # noqa: PLC0415

    images = common.mnist(_DATA.value).test_x[:max(BATCH_SIZES)]
    runs = {}
    for i, (name, config) in enumerate(sorted(configs.items())):
        model = keras.saving.deserialize_keras_object(
            json.loads(json.dumps(config)))
        written = export.export_model(model, folder, ("saved_model",),
                                      model_name=f"shape{i}")
        for batch in BATCH_SIZES:
            call = export_benchmark.saved_model_call(
                written["saved_model"], images[:batch])
            calls = _CALLS.value if batch == 1 else max(
                1, _CALLS.value // 10)
            runs[name, batch] = functools.partial(
                export_benchmark.median_latency, call, calls)
    return runs


def latency_note() -> str:
    import tensorflow as tf  # noqa: PLC0415

    return (f"{common.machine()}, TensorFlow {tf.__version__}, "
            f"{_THREADS.value} thread(s), best of {_REPEATS.value} "
            f"medians of {_CALLS.value} calls (batch 1)")


def _marker(name: str) -> str:
    return {"magnitude": "o", "gradient": "s", "activation": "^",
            "apoz": "v"}.get(name.split("_")[1], "D")


def _save(fig: figure.Figure, path: str) -> None:
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


if __name__ == "__main__":
    app.run(main)

r"""The structure study's latency: the latency of every shrunk shape its
records hold, into OUTPUT/PART/latency.json, then the study's report again
(`keras_lottery.studies.structure_report`) with a latency column and
latency.png.

Each distinct shrunk shape is rebuilt from its recorded Keras config with
fresh weights (latency depends on the shapes only), exported as a
SavedModel (keras_lottery.export), and as a TFLite model where the part's
columns ask for it, and timed at each column's batch size: LeNet and
Conv-2 through the SavedModel's serving signature at batch 1 and 256; the
ViT also through the TFLite interpreter, at batch 1 and 64 (issue 38).
Calls are interleaved, best of --repeats medians, on --threads threads.
Measured (shape, column) pairs are kept in latency.json and measured again
only with --remeasure: run it on a quiet machine. How far two measurements
of one shape can differ: benchmarks/latency_spread.py.

  python -m benchmarks.structure_latency --part=lenet [--remeasure]
  python -m benchmarks.structure_latency --part=vit [--cells=head_magnitude]
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable

from absl import app
from absl import flags

from benchmarks import common

# Its timing helpers; it defines flags of the same names as some here
# (allow_override below, as benchmarks/shrink.py does).
from benchmarks import export as export_benchmark
from keras_lottery.base import files
from keras_lottery.studies import structure_report
from keras_lottery.studies import structure_table
from keras_lottery.studies.structure_cells import PARTS
from keras_lottery.studies.structure_cells import cell_names

_PART = flags.DEFINE_enum("part", "lenet", list(PARTS),
                          "Which network's cells.")
_RECORDS = flags.DEFINE_string("records", "docs/results_structure/runs",
                               "The study's records.")
_OUTPUT = flags.DEFINE_string("output", "docs/results_structure",
                              "Where the report goes.", allow_override=True)
_REMEASURE = flags.DEFINE_bool("remeasure", False,
                               "Measure every shape again.")
_CELLS = flags.DEFINE_list("cells", None, "Only the shapes of these cells "
                           "(default: every cell recorded).")
_THREADS = flags.DEFINE_integer("threads", 1, "CPU threads for latency.",
                                allow_override=True)
_CALLS = flags.DEFINE_integer("calls", 300, "Timed calls at batch 1 (a "
                              "tenth at batch 256), after as many untimed.",
                              allow_override=True)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Measurements per shape.",
                                allow_override=True)
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.",
                            allow_override=True)

def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    records = os.path.join(_RECORDS.value, _PART.value)
    output = os.path.join(_OUTPUT.value, _PART.value)
    names = cell_names(_PART.value)
    unknown = [c for c in _CELLS.value or () if c not in names]
    if unknown:
        sys.exit(f"--cells must be cells of part {_PART.value} "
                 f"({', '.join(names)}). Received: "
                 f"--cells={','.join(_CELLS.value)}")
    cells = structure_table.load_cells(records, _CELLS.value or names)
    if not cells:
        sys.exit(f"--records holds no finished run of part {_PART.value}. "
                 f"Received: --records={_RECORDS.value}")
    latency_path = os.path.join(output, "latency.json")
    latency = measure_latency(
        cells, structure_table.load_latency(latency_path, _PART.value),
        _REMEASURE.value)
    os.makedirs(output, exist_ok=True)
    files.write_json(latency_path, latency)
    structure_report.write(_PART.value, _RECORDS.value, _OUTPUT.value)


def measure_latency(cells: dict[str, list[dict]], latency: dict,
                    remeasure: bool) -> dict:
    """Adds each of `latency`'s columns for every shrunk shape, where
    missing (every one with `remeasure`)."""
    set_threads()
    columns = structure_table.latency_columns(latency)
    configs = shape_configs(cells)
    todo = {key: [c for c in columns
                  if remeasure or c not in latency["shapes"].get(key, {})]
            for key in configs}
    todo = {key: wanted for key, wanted in todo.items() if wanted}
    with tempfile.TemporaryDirectory(prefix="structure_latency_") as tmp:
        best = common.interleaved(timed_calls(
            {key: configs[key] for key in todo}, todo, tmp),
            _REPEATS.value, best=min)
    shapes = dict(latency["shapes"])
    for key, wanted in todo.items():
        merged = {**shapes.get(key, {}),
                  **{column: best[key, column] for column in wanted}}
        shapes[key] = {column: merged[column] for column in columns}
    return {**latency, "note": latency_note(), "shapes": shapes}


def shape_configs(cells: dict[str, list[dict]]) -> dict[str, dict]:
    """`{shape: Keras config}` of every shrunk shape the records have."""
    return {structure_table.sorted_shape_key(key): config
            for runs in cells.values() for run in runs
            for key, config in run["models"].items()}


def set_threads() -> None:
    import tensorflow as tf  # noqa: PLC0415  (TensorFlow only when measuring)

    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)


def timed_calls(configs: dict[str, dict], columns: dict[str, list[str]],
                folder: str) -> dict[tuple[str, str], Callable[[], float]]:
    """`{(name, column): measurement}`: each config rebuilt with fresh
    weights, exported under folder (as a SavedModel, and a TFLite model
    if a column of it asks), and a median of --calls calls at the
    column's batch size (a tenth of them above batch 1)."""
    import keras  # noqa: PLC0415

    from keras_lottery.serving import export  # noqa: PLC0415

    batches = {structure_table.parse_column(c)[1]
               for cs in columns.values() for c in cs}
    images = common.mnist(_DATA.value).test_x[:max(batches, default=1)]
    runs = {}
    for i, (name, config) in enumerate(sorted(configs.items())):
        model = keras.saving.deserialize_keras_object(
            json.loads(json.dumps(config)))
        wanted = {c: structure_table.parse_column(c) for c in columns[name]}
        formats = sorted({fmt for fmt, _ in wanted.values()})
        written = export.export_model(model, folder, formats,
                                      model_name=f"shape{i}")
        for column, (fmt, batch) in wanted.items():
            x = images[:batch]
            call = (export_benchmark.tflite_call(written["tflite"], x,
                                                 _THREADS.value)
                    if fmt == "tflite" else
                    export_benchmark.saved_model_call(
                        written["saved_model"], x))
            calls = _CALLS.value if batch == 1 else max(
                1, _CALLS.value // 10)
            runs[name, column] = functools.partial(
                export_benchmark.median_latency, call, calls)
    return runs


def latency_note() -> str:
    import tensorflow as tf  # noqa: PLC0415

    return (f"{common.machine()}, TensorFlow {tf.__version__}, "
            f"{_THREADS.value} thread(s), best of {_REPEATS.value} "
            f"medians of {_CALLS.value} calls (batch 1)")


if __name__ == "__main__":
    app.run(main)

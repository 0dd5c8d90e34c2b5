r"""The structure study's latency: batch-1 and batch-256 latency of every
shrunk shape its records hold, into OUTPUT/PART/latency.json, then the
study's report again (`keras_lottery.studies.structure_report`) with a
latency column and latency.png.

Each distinct shrunk shape is rebuilt from its recorded Keras config with
fresh weights (latency depends on the shapes only), exported as a
SavedModel (keras_lottery.export) and timed through its serving signature
at batch 1 and 256, interleaved, best of --repeats medians, on --threads
threads. Measured shapes are kept in latency.json and measured again only
with --remeasure: run it on a quiet machine. How far two measurements of
one shape can differ: benchmarks/latency_spread.py.

  python -m benchmarks.structure_latency --part=lenet [--remeasure]
"""

from __future__ import annotations

import functools
import json
import os
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

_PART = flags.DEFINE_enum("part", "lenet", list(PARTS),
                          "Which network's cells.")
_RECORDS = flags.DEFINE_string("records", "docs/results_structure/runs",
                               "The study's records.")
_OUTPUT = flags.DEFINE_string("output", "docs/results_structure",
                              "Where the report goes.", allow_override=True)
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
    latency = measure_latency(cells, latency, _REMEASURE.value)
    os.makedirs(output, exist_ok=True)
    files.write_json(latency_path, latency)
    structure_report.write(_PART.value, _RECORDS.value, _OUTPUT.value)


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


if __name__ == "__main__":
    app.run(main)

r"""Latency and size of shrunk tickets vs the dense model they come from.

LeNet-300-100 and Conv-2 keep 25% of the units of every hidden layer
(LeNet: fc1 and fc2 neurons; Conv-2: conv1 and conv2 filters and fc1 and
fc2 neurons), chosen by L1 norm (`keras_lottery.prune`, criterion
`magnitude`, granularity `neuron`/`filter`). Three models of each
are exported through `keras_lottery.export` (SavedModel and float TFLite,
with the export's own checks): the dense model ("dense"), the ticket as it
is ("ticket": the dense shapes, zeros in place; TFLite's sparsity-aware
converter may store its kernels compressed) and the ticket after
`keras_lottery.shrink` ("shrunk"). For every artifact:
its size, and its median latency at batch 1 and batch 256 on real MNIST
test images (the SavedModel through `tf.saved_model.load` and its
`serving_default` signature, the TFLite file through the interpreter), all
measured interleaved in one process with `--threads` CPU threads; the
best of `--repeats` medians is kept. The weights are untrained: latency
depends on the shapes only.

  python -m benchmarks.shrink [--calls=1000] [--repeats=5] [--threads=1] \
      [--json=/tmp/shrink.json]

Goals (batch-1 latency, shrunk over dense, both formats): LeNet-300-100 <=
0.35, Conv-2 <= 0.4. Results and the machine: docs/SHRINK.md.
"""

import functools
import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from benchmarks import export as export_benchmark
from keras_lottery.base import files
from keras_lottery.models import zoo
from keras_lottery.serving import artifacts
from keras_lottery.serving import export

# benchmarks.export, whose timing helpers this reuses, defines these flags
# too; allow_override lets these definitions replace its own.
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.",
                            allow_override=True)
_THREADS = flags.DEFINE_integer(
    "threads", 1, "CPU threads of TensorFlow (intra- and inter-op) and of "
    "the TFLite interpreter.", allow_override=True)
_CALLS = flags.DEFINE_integer(
    "calls", 1000, "Timed calls per batch-1 measurement (a tenth of it at "
    "batch 256), after as many untimed ones.", allow_override=True)
_REPEATS = flags.DEFINE_integer(
    "repeats", 5, "Measurements per artifact and batch size, interleaved.",
    allow_override=True)
_JSON = flags.DEFINE_string("json", "", "Writes the results here as JSON.",
                            allow_override=True)

MODELS = ("lenet_300_100", "conv2")
KEPT = 0.25  # of the units of every hidden layer
GOALS = {"lenet_300_100": 0.35, "conv2": 0.4}  # batch-1 latency ratio
BATCH_SIZES = (1, 256)
FORMATS = ("saved_model", "tflite")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Before any TensorFlow op runs: afterwards the thread pools are fixed.
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    images = common.mnist(_DATA.value).test_x[:max(BATCH_SIZES)]
    with tempfile.TemporaryDirectory(prefix="shrink_bench_") as output:
        rows = [row for name in MODELS
                for row in export_pair(name, images, output)]
        time_all(rows, images)
    result = {"machine": common.machine(), "tensorflow": tf.__version__,
              "threads": _THREADS.value, "kept": KEPT, "rows": rows,
              "ratios": ratios(rows)}
    print(report(result))
    if _JSON.value:
        files.write_json(_JSON.value, result)
    missed = [f"{name} {fmt}" for name, by_format in result["ratios"].items()
              for fmt, ratio in by_format.items()
              if ratio["batch1_latency"] > GOALS[name]]
    if missed:
        sys.exit(f"shrink latency goal missed: {', '.join(missed)}")


def keep_units_by_l1(model: keras.Model, fraction: float) -> keras.Model:
    """The `fraction` of units (Dense) or filters (Conv2D) of every hidden
    layer largest in L1 norm, kept by `keras_lottery.prune` in one step
    (the output layer untouched); returns the stripped ticket."""
    wrapped = keras_lottery.wrap(model)
    conv = {layer.name: "filter" for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D)}
    keras_lottery.prune(
        wrapped, 1 - fraction, granularity="neuron",
        granularities={**conv, zoo.OUTPUT_LAYER_NAME: "weight"},
        fractions={zoo.OUTPUT_LAYER_NAME: 0.0})
    return keras_lottery.strip(wrapped)


def export_pair(name: str, images: np.ndarray, output: str) -> list[dict]:
    """Exports the dense model `name`, its ticket and the ticket shrunk;
    sizes."""
    dense = zoo.build(name, (28, 28, 1), 10, seed=0)
    ticket = keep_units_by_l1(zoo.build(name, (28, 28, 1), 10, seed=0),
                              KEPT)
    shrunk = keras_lottery.shrink(ticket)
    np.testing.assert_allclose(
        shrunk.predict(images, verbose=0), ticket.predict(images, verbose=0),
        rtol=artifacts.TOLERANCE, atol=artifacts.TOLERANCE)
    rows = []
    for variant, model in (("dense", dense), ("ticket", ticket),
                           ("shrunk", shrunk)):
        written = export.export_model(model, output, FORMATS,
                                      model_name=f"{name}_{variant}")
        rows.append({
            "model": name, "variant": variant,
            "params": int(model.count_params()),
            "saved_model": {"path": written["saved_model"],
                            "bytes": export_benchmark.folder_size(
                                written["saved_model"])},
            "tflite": {"path": written["tflite"],
                       "bytes": os.path.getsize(written["tflite"])}})
    return rows


def time_all(rows: list[dict], images: np.ndarray) -> None:
    """Adds `latency_s: {batch size: seconds}` to every artifact, all
    measured interleaved."""
    runs = {}
    for row in rows:
        for fmt in FORMATS:
            stats = row[fmt]
            for batch_size in BATCH_SIZES:
                x = images[:batch_size]
                call = (export_benchmark.saved_model_call(stats["path"], x)
                        if fmt == "saved_model"
                        else export_benchmark.tflite_call(
                            stats["path"], x, _THREADS.value))
                calls = (_CALLS.value if batch_size == 1
                         else max(1, _CALLS.value // 10))
                runs[(id(stats), batch_size)] = functools.partial(
                    export_benchmark.median_latency, call, calls)
    best = common.interleaved(runs, _REPEATS.value, best=min)
    for row in rows:
        for fmt in FORMATS:
            row[fmt]["latency_s"] = {
                str(b): best[(id(row[fmt]), b)] for b in BATCH_SIZES}
            del row[fmt]["path"]  # gone with the temporary folder


def ratios(rows: list[dict]) -> dict:
    """`{model: {format: {measure: shrunk / dense}}}`."""
    by_key = {(row["model"], row["variant"]): row for row in rows}
    result = {}
    for name in MODELS:
        dense, shrunk = by_key[name, "dense"], by_key[name, "shrunk"]
        result[name] = {fmt: {
            "bytes": shrunk[fmt]["bytes"] / dense[fmt]["bytes"],
            **{f"batch{b}_latency": (shrunk[fmt]["latency_s"][str(b)]
                                     / dense[fmt]["latency_s"][str(b)])
               for b in BATCH_SIZES}} for fmt in FORMATS}
    return result


def report(result: dict) -> str:
    """The markdown tables."""
    lines = [f"machine: {result['machine']}",
             f"TensorFlow {result['tensorflow']}, {result['threads']} "
             f"thread(s); untrained weights, {result['kept']:.0%} of the "
             "units of every hidden layer kept (by L1 norm)", "",
             "| model | variant | params | SavedModel | TFLite | SavedModel "
             "b1 | b256 | TFLite b1 | b256 |", "|" + "---|" * 9]
    for row in result["rows"]:
        sm, lite = row["saved_model"], row["tflite"]
        lines.append(
            f"| {row['model']} | {row['variant']} | {row['params']:,} | "
            f"{sm['bytes'] / 1000:,.1f} kB | {lite['bytes'] / 1000:,.1f} kB "
            f"| {_us(sm, 1)} | {_us(sm, 256)} | {_us(lite, 1)} | "
            f"{_us(lite, 256)} |")
    lines += ["", "| model | format | size | b1 latency | b256 latency | "
              "b1 goal |", "|" + "---|" * 6]
    for name, by_format in result["ratios"].items():
        for fmt, ratio in by_format.items():
            met = ("met" if ratio["batch1_latency"] <= GOALS[name]
                   else "MISSED")
            lines.append(
                f"| {name} | {fmt} | {ratio['bytes']:.3f}x | "
                f"{ratio['batch1_latency']:.3f}x | "
                f"{ratio['batch256_latency']:.3f}x | <= {GOALS[name]}: "
                f"{met} |")
    return "\n".join(lines)


def _us(stats: dict, batch_size: int) -> str:
    return f"{stats['latency_s'][str(batch_size)] * 1e6:,.1f} µs"


if __name__ == "__main__":
    app.run(main)

r"""Latency and size of shrunk tickets vs the dense model they come from.

LeNet-300-100 and Conv-2 (MNIST) keep 25% of the units of every hidden
layer (LeNet: fc1 and fc2 neurons; Conv-2: conv1 and conv2 filters and fc1
and fc2 neurons), chosen by L1 norm (`keras_lottery.prune`, criterion
`magnitude`, granularity `neuron`/`filter`). MobileNetV2 (alpha 1.0) and
ResNet50 (keras.applications, `weights=None`, 224x224x3, 1000 classes)
lose 50% of the filters of every group in one call, dependency-aware:
`wrap` -> `prune(model, 0.5, granularity="filter")` -> `strip` (docs/
MODELS.md). Three models of each MNIST net and two of each application
are exported through `keras_lottery.export` (SavedModel and float TFLite,
with the export's own checks): the dense model ("dense"), the ticket as it
is ("ticket", MNIST nets only: the dense shapes, zeros in place; TFLite's
sparsity-aware converter may store its kernels compressed) and the ticket
after `keras_lottery.shrink` ("shrunk"). For every artifact: its size,
and its latency at batch 1 and at a large batch (256 MNIST test images;
32 random 224x224 images for the applications), the SavedModel through
`tf.saved_model.load` and its `serving_default` signature, the TFLite
file through the LiteRT interpreter. A measurement is the median of
several calls (`--calls`, `--app_calls`; one call for an application at
batch 32); one model's artifacts are measured interleaved in one process
(dense, shrunk, dense, shrunk, ...) with `--threads` CPU threads, and the
least of `--repeats` measurements is kept. The weights are untrained:
latency depends on the shapes only.

  python -m benchmarks.shrink [--models=lenet_300_100,conv2] \
      [--calls=1000] [--app_calls=10] [--repeats=5] [--threads=1] \
      [--clock=wall] [--json=/tmp/shrink.json]
  python -m benchmarks.shrink --models=mobilenet_v2,resnet50 --repeats=5

Goals (batch-1 latency, shrunk over dense): LeNet-300-100 <= 0.35 and
Conv-2 <= 0.4 in both formats, MobileNetV2 <= 0.55 in TFLite (issue 35);
ResNet50 has none. Results and the machine: docs/SHRINK.md (MNIST nets),
docs/MODELS.md (applications).
"""

import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

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
    "calls", 1000, "Timed calls per batch-1 measurement of the MNIST nets "
    "(a tenth of it at the large batch), after as many untimed ones.",
    allow_override=True)
_APP_CALLS = flags.DEFINE_integer(
    "app_calls", 10, "As --calls, for the 224x224 applications at batch "
    "1; at batch 32 a measurement is one call (after one untimed call "
    "when the artifact is loaded).")
_REPEATS = flags.DEFINE_integer(
    "repeats", 5, "Measurements per artifact and batch size, interleaved.",
    allow_override=True)
_CLOCK = flags.DEFINE_enum(
    "clock", "wall", ["wall", "cpu"], "wall: latency as a client sees it "
    "(`time.perf_counter`); cpu: this process's CPU seconds per call, all "
    "its threads (`time.process_time`): about the same on a quiet machine "
    "for compute on --threads=1, and far less moved by other processes "
    "on a shared one.")
_JSON = flags.DEFINE_string("json", "", "Writes the results here as JSON.",
                            allow_override=True)

MNIST_MODELS = ("lenet_300_100", "conv2")
KEPT = 0.25  # of the units of every hidden layer of the MNIST nets
# The keras.applications constructor and its arguments.
APPLICATIONS = {"mobilenet_v2": ("MobileNetV2", {"alpha": 1.0}),
                "resnet50": ("ResNet50", {})}
FILTERS_PRUNED = 0.5  # of every group of the applications
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 224, "Height and width of the applications' input "
    "images (the figures: 224; a smaller size only checks the command).")
_MODELS = flags.DEFINE_list(
    "models", list(MNIST_MODELS), "Which models, some of "
    f"{', '.join((*MNIST_MODELS, *APPLICATIONS))}.")
# Batch-1 latency, shrunk / dense, per format.
GOALS = {"lenet_300_100": {"saved_model": 0.35, "tflite": 0.35},
         "conv2": {"saved_model": 0.4, "tflite": 0.4},
         "mobilenet_v2": {"tflite": 0.55}}
FORMATS = ("saved_model", "tflite")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    known = (*MNIST_MODELS, *APPLICATIONS)
    if not _MODELS.value or any(m not in known for m in _MODELS.value):
        sys.exit(f"--models must be some of {', '.join(known)}. Received: "
                 f"--models={','.join(_MODELS.value)}")
    # Before any TensorFlow op runs: afterwards the thread pools are fixed.
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    rows = []
    with tempfile.TemporaryDirectory(prefix="shrink_bench_") as output:
        for name in _MODELS.value:  # one model's artifacts loaded at a time
            images = inputs(name)
            variants = export_variants(name, images, output)
            time_all(variants, images)
            rows += variants
    result = {"machine": common.machine(), "tensorflow": tf.__version__,
              "threads": _THREADS.value, "clock": _CLOCK.value,
              "rows": rows, "ratios": ratios(rows)}
    print(report(result))
    if _JSON.value:
        files.write_json(_JSON.value, result)
    missed = [f"{name} {fmt}" for name, by_format in result["ratios"].items()
              for fmt, ratio in by_format.items()
              if fmt in GOALS.get(name, {})
              and ratio["batch1_latency"] > GOALS[name][fmt]]
    if missed:
        sys.exit(f"shrink latency goal missed: {', '.join(missed)}")


def batch_sizes(name: str) -> tuple[int, int]:
    return (1, 32) if name in APPLICATIONS else (1, 256)


def inputs(name: str) -> np.ndarray:
    """The largest batch `name` is timed at: real MNIST test images, or
    random --image_size images for the applications."""
    size = max(batch_sizes(name))
    if name in APPLICATIONS:
        return np.random.default_rng(0).normal(
            size=(size, *_image_shape())).astype(np.float32)
    return _mnist_test_images()[:size]


def _image_shape() -> tuple[int, int, int]:
    return (_IMAGE_SIZE.value, _IMAGE_SIZE.value, 3)


@functools.cache
def _mnist_test_images() -> np.ndarray:
    return common.mnist(_DATA.value).test_x


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


def application(name: str) -> keras.Model:
    """The keras.applications net `name`, random weights (seed 0), logits
    out (the export adds the softmax as its `probabilities` output)."""
    constructor, kwargs = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    return getattr(keras.applications, constructor)(
        weights=None, classes=1000, classifier_activation=None,
        # Named as the MNIST nets' input: the timing calls feed `input`.
        input_tensor=keras.Input(_image_shape(), name="input"), **kwargs)


def prune_filters(model: keras.Model, fraction: float) -> keras.Model:
    """`fraction` of the channels of every group pruned in one call,
    dependency-aware (docs/MODELS.md); returns the stripped ticket."""
    wrapped = keras_lottery.wrap(model)
    keras_lottery.prune(wrapped, fraction, granularity="filter")
    return keras_lottery.strip(wrapped)


def export_variants(name: str, images: np.ndarray,
                    output: str) -> list[dict]:
    """Exports the dense model `name`, its ticket (MNIST nets) and the
    ticket shrunk; sizes."""
    if name in APPLICATIONS:
        dense = application(name)
        ticket = prune_filters(application(name), FILTERS_PRUNED)
        pruning = f"{FILTERS_PRUNED:.0%} of the filters of every group pruned"
    else:
        dense = zoo.build(name, (28, 28, 1), 10, seed=0)
        ticket = keep_units_by_l1(zoo.build(name, (28, 28, 1), 10, seed=0),
                                  KEPT)
        pruning = f"{KEPT:.0%} of the units of every hidden layer kept"
    shrunk = keras_lottery.shrink(ticket)
    np.testing.assert_allclose(
        shrunk.predict(images, verbose=0), ticket.predict(images, verbose=0),
        rtol=artifacts.TOLERANCE, atol=artifacts.TOLERANCE)
    variants = {"dense": dense, "ticket": ticket, "shrunk": shrunk}
    if name in APPLICATIONS:  # dense vs shrunk: two large exports fewer
        del variants["ticket"]
    rows = []
    for variant, model in variants.items():
        written = export.export_model(model, output, FORMATS,
                                      model_name=f"{name}_{variant}")
        rows.append({
            "model": name, "variant": variant, "pruning": pruning,
            "params": int(model.count_params()),
            "saved_model": {"path": written["saved_model"],
                            "bytes": export_benchmark.folder_size(
                                written["saved_model"])},
            "tflite": {"path": written["tflite"],
                       "bytes": os.path.getsize(written["tflite"])}})
    return rows


def time_all(rows: list[dict], images: np.ndarray) -> None:
    """Adds `latency_s: {batch size: seconds}` to every artifact of one
    model, all measured interleaved."""
    runs = {}
    for row in rows:
        base = (_APP_CALLS.value if row["model"] in APPLICATIONS
                else _CALLS.value)
        for fmt in FORMATS:
            stats = row[fmt]
            for batch_size in batch_sizes(row["model"]):
                x = images[:batch_size]
                call = (export_benchmark.saved_model_call(stats["path"], x)
                        if fmt == "saved_model"
                        else export_benchmark.tflite_call(
                            stats["path"], x, _THREADS.value))
                if row["model"] in APPLICATIONS and batch_size > 1:
                    call()  # loaded and warm; then one call a measurement
                    calls, untimed = 1, 0
                else:
                    calls = base if batch_size == 1 else max(1, base // 10)
                    untimed = calls
                runs[(id(stats), batch_size)] = functools.partial(
                    median_latency, call, calls, untimed)
    best = common.interleaved(runs, _REPEATS.value, best=min)
    for row in rows:
        for fmt in FORMATS:
            row[fmt]["latency_s"] = {
                str(b): best[(id(row[fmt]), b)]
                for b in batch_sizes(row["model"])}
            del row[fmt]["path"]  # gone with the temporary folder


def median_latency(call: Callable[[], None], calls: int,
                   untimed: int) -> float:
    """The median seconds of `calls` calls after `untimed` ones, by
    --clock."""
    clock = time.perf_counter if _CLOCK.value == "wall" else time.process_time
    for _ in range(untimed):
        call()
    times = []
    for _ in range(calls):
        start = clock()
        call()
        times.append(clock() - start)
    return statistics.median(times)


def ratios(rows: list[dict]) -> dict:
    """`{model: {format: {measure: shrunk / dense}}}`."""
    by_key = {(row["model"], row["variant"]): row for row in rows}
    result = {}
    for name in dict.fromkeys(row["model"] for row in rows):
        dense, shrunk = by_key[name, "dense"], by_key[name, "shrunk"]
        result[name] = {fmt: {
            "params": shrunk["params"] / dense["params"],
            "bytes": shrunk[fmt]["bytes"] / dense[fmt]["bytes"],
            **{f"batch{b}_latency": (shrunk[fmt]["latency_s"][str(b)]
                                     / dense[fmt]["latency_s"][str(b)])
               for b in batch_sizes(name)}} for fmt in FORMATS}
    return result


def report(result: dict) -> str:
    """The markdown tables: the MNIST nets', the applications', then the
    ratios."""
    lines = [f"machine: {result['machine']}",
             f"TensorFlow {result['tensorflow']}, {result['threads']} "
             f"thread(s), {result['clock']} clock; untrained weights"]
    names = list(result["ratios"])
    for family, unit, scale in ((MNIST_MODELS, "µs", 1e6),
                                (tuple(APPLICATIONS), "ms", 1e3)):
        table = [row for row in result["rows"] if row["model"] in family]
        if not table:
            continue
        large = batch_sizes(table[0]["model"])[1]
        lines += ["", f"{table[0]['pruning']}; latency in {unit}:", "",
                  "| model | variant | params | SavedModel | TFLite | "
                  f"SavedModel b1 | b{large} | TFLite b1 | b{large} |",
                  "|" + "---|" * 9]
        for row in table:
            sm, lite = row["saved_model"], row["tflite"]
            times = [f"{stats['latency_s'][str(b)] * scale:,.1f}"
                     for stats in (sm, lite) for b in (1, large)]
            lines.append(
                f"| {row['model']} | {row['variant']} | {row['params']:,} "
                f"| {_kb(sm)} | {_kb(lite)} | {' | '.join(times)} |")
    lines += ["", "shrunk / dense:", "", "| model | format | params | size "
              "| b1 latency | large-batch latency | b1 goal |",
              "|" + "---|" * 7]
    for name in names:
        large = batch_sizes(name)[1]
        for fmt, ratio in result["ratios"][name].items():
            goal = GOALS.get(name, {}).get(fmt)
            verdict = "-" if goal is None else (
                f"<= {goal}: "
                + ("met" if ratio["batch1_latency"] <= goal else "MISSED"))
            lines.append(
                f"| {name} | {fmt} | {ratio['params']:.3f}x | "
                f"{ratio['bytes']:.3f}x | {ratio['batch1_latency']:.3f}x | "
                f"{ratio[f'batch{large}_latency']:.3f}x (b{large}) | "
                f"{verdict} |")
    return "\n".join(lines)


def _kb(stats: dict) -> str:
    return f"{stats['bytes'] / 1000:,.1f} kB"


if __name__ == "__main__":
    app.run(main)

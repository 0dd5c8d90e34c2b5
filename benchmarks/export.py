r"""Size, latency and accuracy of exported LeNet-300-100 lottery tickets.

The tickets at 100%, 21%, 7%, 3.6% and 1.8% of weights remaining (rounds 0,
7, 12, 15 and 18 of the paper's schedule) of one real MNIST lottery run go
through `binaries.export`: SavedModel in both layouts (dense variables;
sparse: kept values and positions of each pruned kernel, rebuilt per call),
TFLite float32 (sparsity-aware converter) and TFLite int8. For every
artifact: its size in bytes and
gzipped (a tar of the SavedModel folder), its MNIST test accuracy on the
10,000 test images, and its median latency at batch 1 and batch 256 (the
SavedModel through `tf.saved_model.load` and its `serving_default`
signature, the TFLite file through the interpreter with its default
XNNPACK delegate), all with `--threads` CPU threads. A last row converts the
dense round-0 model pruned one-shot in 1x4 blocks to the 3.6% ticket's
per-layer fractions: the weight layout TFLite's sparse FULLY_CONNECTED
kernel runs without densifying (its accuracy is not a ticket's: it is not
retrained).

  python -m benchmarks.export --workdir=/tmp/lenet300_2k \
      [--json=/tmp/export.json] [--output=/tmp/lenet300_serving] \
      [--threads=1]

A `--workdir` that has the rounds is used as it is, whatever its config
(e.g. a run of the lenet300 study, 50,000 steps per round).
Else the run is configs/lenet300_mnist.py with `--steps_per_round` (2,000
by default; the paper trains 50,000), evaluation 4 times a round and 18
pruning rounds, trained in `--workdir` first (about 15 minutes on 2 shared
CPU cores at 2,000); a rerun reuses it, and reuses the artifacts under
`--output`. Results and the machine: docs/SERVING.md.

Budget: at 3.6% remaining, the gzipped SavedModel and the gzipped float
TFLite file are each at most 10% of the dense round's artifact (as written,
not compressed; for the SavedModel, the dense round's dense layout). The
SavedModel is judged by its smaller layout, which the report names. Sizes
are also compared gzip to gzip, and batch-1 latencies sparse to dense (the
sparse layout to the dense layout of the same round at batch 1 and 256),
without a budget: where sparse is not faster, the numbers say so.
"""

import functools
import gzip
import io
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from binaries import export as export_binary
from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import wrapping
from keras_lottery.data import datasets
from keras_lottery.lottery import runner
from keras_lottery.serving import artifacts
from keras_lottery.serving import export
from keras_lottery.serving import litert

# binaries.export defines --workdir and --output too; allow_override lets
# these definitions replace its own in this process.
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "A lottery run's folder. A run that has the rounds is "
    "used as it is (any config: e.g. the paper's 50,000 steps per round); "
    "else configs/lenet300_mnist.py at --steps_per_round is trained there.",
    allow_override=True)
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
_STEPS = flags.DEFINE_integer("steps_per_round", 2000,
                              "Training steps per lottery round.")
_ROUNDS = flags.DEFINE_list("rounds", ["0", "7", "12", "15", "18"],
                            "Rounds to export; the first is the dense one.")
_OUTPUT = flags.DEFINE_string(
    "output", "", "Folder for the artifacts (kept); default: a temporary "
    "folder, removed at the end.", allow_override=True)
_JSON = flags.DEFINE_string("json", "", "Writes the results here as JSON.")
_THREADS = flags.DEFINE_integer(
    "threads", 1, "CPU threads of TensorFlow (intra- and inter-op) and of "
    "the TFLite interpreter.")
_CALLS = flags.DEFINE_integer(
    "calls", 1000, "Timed calls per batch-1 measurement (a tenth of it at "
    "batch 256), after as many untimed ones.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 9, "Measurements per artifact and batch size, interleaved.")

MODEL_NAME = "lenet300"
SPARSE_MODEL_NAME = "lenet300_sparse"  # the sparse SavedModel layout
BATCH_SIZES = (1, 256)
BUDGET_REMAINING = 0.036  # the round nearest to this is held to the budget
BUDGET_SIZE_RATIO = 0.10
# Compressed artifacts held to BUDGET_SIZE_RATIO of the dense artifact;
# the SavedModel in whichever layout gzips smaller.
BUDGETS = ("saved_model_best_gzip", "tflite_float_gzip")
# The artifacts of a row: the SavedModel layouts, then the TFLite files.
SAVED_MODELS = ("saved_model", "saved_model_sparse")
ARTIFACTS = (*SAVED_MODELS, "tflite_float", "tflite_int8")
BLOCK = 4  # TFLite's sparse float FULLY_CONNECTED kernel runs 1x4 blocks


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Before any TensorFlow op runs: afterwards the thread pools are fixed.
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    workdir = _WORKDIR.value
    rounds = [int(r) for r in _ROUNDS.value]
    if not all(os.path.exists(paths.metrics_file(workdir, r))
               for r in rounds):
        runner.run(run_config(_DATA.value, _STEPS.value), workdir)
    steps = files.read_json(paths.config_file(workdir))["train"]["num_steps"]
    data = common.mnist(_DATA.value)
    output = _OUTPUT.value or tempfile.mkdtemp(prefix="export_bench_")
    try:
        rows = [measure_round(workdir, r, output, data) for r in rounds]
        rows.append(measure_blocks(workdir, rounds[0], rows, output, data))
        time_all(rows, data)
    finally:
        if not _OUTPUT.value:
            shutil.rmtree(output, ignore_errors=True)
    result = {"machine": common.machine(), "tensorflow": tf.__version__,
              "threads": _THREADS.value, "steps_per_round": steps,
              "rows": rows, "ratios": ratios(rows)}
    print(report(result))
    if _JSON.value:
        files.write_json(_JSON.value, result)
    over = [key for key in BUDGETS
            if result["ratios"][key] > BUDGET_SIZE_RATIO]
    if over:
        sys.exit(f"export size over budget: {', '.join(over)}")


def ratios(rows: list[dict]) -> dict:
    """Sizes and latencies of the ticket nearest 3.6% over the dense one's
    (`rows[0]`); sizes over the dense artifact as written, uncompressed."""
    dense = rows[0]
    row = min(rows[1:-1], key=lambda row: abs(
        row["remaining"] - BUDGET_REMAINING))

    def size(key, kind="bytes", of="bytes", base=None):
        return row[key][kind] / dense[base or key][of]

    def batch1(sparse, key):
        return (sparse[key]["latency_s"]["1"]
                / dense[key]["latency_s"]["1"])

    def vs_dense_layout(batch_size):
        latency = {key: row[key]["latency_s"][str(batch_size)]
                   for key in SAVED_MODELS}
        return latency["saved_model_sparse"] / latency["saved_model"]

    gzipped = {key: size(key, "gzip_bytes", base="saved_model")
               for key in SAVED_MODELS}
    best = min(SAVED_MODELS, key=gzipped.get)
    return {
        "round": row["round"],
        "saved_model_best_layout": (
            "sparse" if best == "saved_model_sparse" else "dense"),
        "saved_model_best_gzip": gzipped[best],
        "saved_model_gzip": gzipped["saved_model"],
        "saved_model_gzip_vs_dense_gzip": size(
            "saved_model", "gzip_bytes", "gzip_bytes"),
        "saved_model_sparse": size("saved_model_sparse", base="saved_model"),
        "saved_model_sparse_gzip": gzipped["saved_model_sparse"],
        "saved_model_sparse_gzip_vs_dense_gzip": size(
            "saved_model_sparse", "gzip_bytes", "gzip_bytes",
            base="saved_model"),
        "saved_model_sparse_batch1_latency_vs_dense_layout": (
            vs_dense_layout(1)),
        "saved_model_sparse_batch256_latency_vs_dense_layout": (
            vs_dense_layout(256)),
        "tflite_float": size("tflite_float"),
        "tflite_float_gzip": size("tflite_float", "gzip_bytes"),
        "tflite_float_gzip_vs_dense_gzip": size(
            "tflite_float", "gzip_bytes", "gzip_bytes"),
        "tflite_int8": size("tflite_int8"),
        "tflite_int8_gzip": size("tflite_int8", "gzip_bytes"),
        "tflite_int8_gzip_vs_dense_float": (
            row["tflite_int8"]["gzip_bytes"]
            / dense["tflite_float"]["bytes"]),
        "tflite_float_batch1_latency": batch1(row, "tflite_float"),
        "tflite_int8_batch1_latency": batch1(row, "tflite_int8"),
        "tflite_blocks_batch1_latency": batch1(rows[-1], "tflite_float"),
    }


def run_config(data_dir: str,
               steps_per_round: int) -> ml_collections.ConfigDict:
    """configs/lenet300_mnist.py with a reduced budget per round."""
    config = lenet300_mnist.get_config()
    config.data.dir = data_dir
    config.train.num_steps = steps_per_round
    config.eval.every_steps = steps_per_round // 4
    config.prune.num_rounds = 18
    return config


def measure_round(workdir: str, round_index: int, output: str,
                  data: datasets.Splits) -> dict:
    """Exports one round with the binary's code; sizes and accuracies."""
    saved = export.saved_model_path(output, MODEL_NAME, round_index)
    sparse = export.saved_model_path(output, SPARSE_MODEL_NAME, round_index)
    lite = {q: export.tflite_path(output, MODEL_NAME, round_index, q)
            for q in artifacts.QUANTIZATIONS}
    for quantize, formats in (("none", ["saved_model", "tflite"]),
                              ("int8", ["tflite"])):
        missing = [f for f in formats if not os.path.exists(
            saved if f == "saved_model" else lite[quantize])]
        if missing:
            export_binary.run(workdir, round_index, output, missing,
                              quantize, MODEL_NAME, round_index)
    if not os.path.exists(sparse):
        export_binary.run(workdir, round_index, output, ["saved_model"],
                          "none", SPARSE_MODEL_NAME, round_index,
                          layout="sparse")
    model = keras.models.load_model(paths.model_file(workdir, round_index),
                                    compile=False)
    keras_logits = model.predict(data.test_x, batch_size=1000, verbose=0)
    remaining = files.read_json(os.path.join(
        saved, "assets", artifacts.SPARSITY_ASSET))["total"]["remaining"]
    row = {"round": round_index, "remaining": remaining,
           "keras_accuracy": accuracy(keras_logits, data.test_y),
           "saved_model": saved_model_stats(saved, data),
           "saved_model_sparse": saved_model_stats(sparse, data)}
    for quantize, key in (("none", "tflite_float"), ("int8", "tflite_int8")):
        row[key] = tflite_stats(lite[quantize], data)
    return row


def measure_blocks(workdir: str, dense_round: int, rows: list[dict],
                   output: str, data: datasets.Splits) -> dict:
    """The dense round pruned one-shot in 1x4 blocks to the 3.6% ticket's
    per-layer fractions, as a float TFLite file."""
    target = min(rows[1:], key=lambda row: abs(
        row["remaining"] - BUDGET_REMAINING))
    path = os.path.join(output, f"{MODEL_NAME}_blocks{BLOCK}.tflite")
    model = keras.models.load_model(paths.model_file(workdir, dense_round),
                                    compile=False)
    saved = export.saved_model_path(output, MODEL_NAME, target["round"])
    fractions = files.read_json(os.path.join(
        saved, "assets", artifacts.SPARSITY_ASSET))["weights"]
    masks = {}
    for layer in wrapping.wrapped_layers(model):
        for key, variable in zip(layer.mask_keys(), layer.masked_variables):
            masks[key] = block_mask(
                keras.ops.convert_to_numpy(variable.value),
                fractions[key]["remaining"])
    keras_lottery.set_masks(model, masks)
    if not os.path.exists(path):
        export.export_tflite(model, path)
    logits = model.predict(data.test_x, batch_size=1000, verbose=0)
    return {"round": f"{dense_round}, {BLOCK}-blocks",
            "remaining": keras_lottery.sparsity(model)["total"],
            "keras_accuracy": accuracy(logits, data.test_y),
            "tflite_float": tflite_stats(path, data)}


def block_mask(kernel: np.ndarray, fraction: float) -> np.ndarray:
    """Keeps the `fraction` of 1x4 blocks (4 consecutive inputs of one
    unit; TFLite stores a Dense kernel transposed) largest in L1 norm."""
    n_in, n_out = kernel.shape
    norms = np.abs(kernel).reshape(n_in // BLOCK, BLOCK, n_out).sum(axis=1)
    keep = round(fraction * norms.size)
    order = np.argsort(-norms, axis=None, kind="stable")[:keep]
    blocks = np.zeros(norms.size, np.float32)
    blocks[order] = 1
    return np.repeat(blocks.reshape(norms.shape), BLOCK, axis=0)


def saved_model_stats(path: str, data: datasets.Splits) -> dict:
    signature = tf.saved_model.load(path).signatures[artifacts.SIGNATURE]
    logits = np.concatenate([
        signature(input=tf.constant(data.test_x[i:i + 1000]))["logits"]
        .numpy() for i in range(0, len(data.test_x), 1000)])
    return {"path": path, "bytes": folder_size(path),
            "gzip_bytes": len(tar_gz(path)),
            "accuracy": accuracy(logits, data.test_y)}


def tflite_stats(path: str, data: datasets.Splits) -> dict:
    with open(path, "rb") as f:
        content = f.read()
    lite = litert.interpreter(path)
    sparse = sum(1 for t in lite.get_tensor_details()
                 if t.get("sparsity_parameters"))
    # No public API lists a model's ops; DENSIFY means the sparse weights
    # are expanded to dense ones when the interpreter is prepared.
    densify = sum(1 for op in lite._get_ops_details()
                  if op["op_name"] == "DENSIFY")
    logits = litert.predict_tflite(path, data.test_x)["logits"]
    return {"path": path, "bytes": len(content),
            "gzip_bytes": len(gzip.compress(content, 9)),
            "sparse_tensors": sparse, "densify_ops": densify,
            "accuracy": accuracy(logits, data.test_y)}


def time_all(rows: list[dict], data: datasets.Splits) -> None:
    """Adds `latency_s: {batch size: median seconds}` to every artifact,
    measuring all of them interleaved."""
    runs = {}
    for row in rows:
        for key in ARTIFACTS:
            if key not in row:
                continue
            stats = row[key]
            for batch_size in BATCH_SIZES:
                x = data.test_x[:batch_size]
                call = (saved_model_call(stats["path"], x)
                        if key in SAVED_MODELS
                        else tflite_call(stats["path"], x, _THREADS.value))
                calls = (_CALLS.value if batch_size == 1
                         else max(1, _CALLS.value // 10))
                runs[(id(stats), batch_size)] = functools.partial(
                    median_latency, call, calls)
    medians = common.interleaved(runs, _REPEATS.value,
                                  best=statistics.median)
    for row in rows:
        for key in ARTIFACTS:
            if key in row:
                row[key]["latency_s"] = {
                    str(b): medians[(id(row[key]), b)] for b in BATCH_SIZES}
                del row[key]["path"]  # gone with a temporary --output


def saved_model_call(path: str, x: np.ndarray) -> Callable[[], None]:
    signature = tf.saved_model.load(path).signatures[artifacts.SIGNATURE]
    x = tf.constant(x)
    return lambda: signature(input=x)["logits"].numpy()


def tflite_call(path: str, x: np.ndarray,
                num_threads: int) -> Callable[[], None]:
    """Sets the input, invokes, reads the logits: what a client does once
    the interpreter is sized for the batch (int8: input quantized once)."""
    lite = litert.interpreter(path, num_threads)
    (detail,) = lite.get_input_details()
    lite.resize_tensor_input(detail["index"], x.shape)
    lite.allocate_tensors()
    scale, zero_point = detail["quantization"]
    if scale:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    x = x.astype(detail["dtype"])
    runner = lite.get_signature_runner(artifacts.SIGNATURE)
    logits = runner.get_output_details()["logits"]["index"]

    def call():
        lite.set_tensor(detail["index"], x)
        lite.invoke()
        lite.get_tensor(logits)

    return call


def median_latency(call: Callable[[], None], calls: int) -> float:
    for _ in range(calls):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def folder_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names)


def tar_gz(path: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as tar:
        tar.add(path, arcname=os.path.basename(path))
    return buffer.getvalue()


def report(result: dict) -> str:
    """The markdown tables and ratios."""
    rows = result["rows"]
    lines = [f"machine: {result['machine']}",
             f"TensorFlow {result['tensorflow']}, {result['threads']} "
             f"thread(s), {result['steps_per_round']} steps per round",
             "", "| round | remaining | SavedModel dense | .tar.gz | "
             "SavedModel sparse | .tar.gz | TFLite f32 | .gz | TFLite int8 "
             "| .gz | sparse tensors / DENSIFY ops (f32; int8) |",
             "|" + "---|" * 11]
    for row in rows:
        sm, f32 = row.get("saved_model"), row["tflite_float"]
        ss, i8 = row.get("saved_model_sparse"), row.get("tflite_int8")
        lines.append(
            f"| {row['round']} | {row['remaining']:.2%} | "
            f"{_kb(sm, 'bytes')} | {_kb(sm, 'gzip_bytes')} | "
            f"{_kb(ss, 'bytes')} | {_kb(ss, 'gzip_bytes')} | "
            f"{_kb(f32, 'bytes')} | {_kb(f32, 'gzip_bytes')} | "
            f"{_kb(i8, 'bytes')} | {_kb(i8, 'gzip_bytes')} | "
            f"{f32['sparse_tensors']}/{f32['densify_ops']}; "
            + (f"{i8['sparse_tensors']}/{i8['densify_ops']} |" if i8
               else "- |"))
    lines += ["", "| round | remaining | Keras | SavedModel dense | sparse "
              "| TFLite f32 | TFLite int8 | SavedModel dense b1 | b256 | "
              "SavedModel sparse b1 | b256 | TFLite f32 b1 | b256 | "
              "TFLite int8 b1 | b256 |", "|" + "---|" * 15]
    for row in rows:
        sm, f32 = row.get("saved_model"), row["tflite_float"]
        ss, i8 = row.get("saved_model_sparse"), row.get("tflite_int8")
        lines.append(
            f"| {row['round']} | {row['remaining']:.2%} | "
            f"{row['keras_accuracy']:.2%} | {_acc(sm)} | {_acc(ss)} | "
            f"{_acc(f32)} | {_acc(i8)} | {_ms(sm, 1)} | {_ms(sm, 256)} | "
            f"{_ms(ss, 1)} | {_ms(ss, 256)} | {_ms(f32, 1)} | "
            f"{_ms(f32, 256)} | {_ms(i8, 1)} | {_ms(i8, 256)} |")
    ratios = result["ratios"]
    lines += ["", f"round {ratios['round']} over the dense round (sizes "
              "over the dense artifact, uncompressed):"]
    for key, value in ratios.items():
        if key in ("round", "saved_model_best_layout"):
            continue
        verdict = ""
        if key in BUDGETS:
            layout = (f"{ratios['saved_model_best_layout']} layout; "
                      if key == "saved_model_best_gzip" else "")
            verdict = (f" ({layout}budget <= {BUDGET_SIZE_RATIO}: "
                       f"{'met' if value <= BUDGET_SIZE_RATIO else 'MISSED'})")
        lines.append(f"  {key}: {value:.3f}{verdict}")
    return "\n".join(lines)


def _kb(stats: dict | None, key: str) -> str:
    return f"{stats[key] / 1000:,.1f} kB" if stats else "-"


def _acc(stats: dict | None) -> str:
    return f"{stats['accuracy']:.2%}" if stats else "-"


def _ms(stats: dict | None, batch_size: int) -> str:
    if not stats:
        return "-"
    return f"{stats['latency_s'][str(batch_size)] * 1e6:,.1f} µs"


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)

r"""Gradual magnitude pruning (tfmot) of LeNet-300-100: the report's baseline.

Zhu & Gupta's gradual pruning, as tensorflow-model-optimization implements
it (`prune_low_magnitude` with `PolynomialDecay` from 0 to each final
sparsity), on the network and budget of one lottery round of
`configs/lenet300_mnist.py`: 784-300-100-10, Glorot normal, Adam 1.2e-3,
batch 60, 50,000 iterations, MNIST from the raw IDX files with 5,000
training examples held out. Every Dense kernel is pruned to the final
sparsity; the default sparsities are 1 - the lottery run's remaining
fraction at rounds 3, 7, 12, 15 and 18. The test accuracy is taken at the
end of training (no early stopping).

tfmot 0.8.1 needs Keras 2 (tf_keras), so this runs in its own virtualenv
and process, with TF_USE_LEGACY_KERAS=1 (it never imports keras_lottery or
Keras 3; `tf.keras` here is Keras 2):

  python3 -m venv /tmp/tfmot_venv
  /tmp/tfmot_venv/bin/pip install -e '.[tfmot]'
  TF_USE_LEGACY_KERAS=1 /tmp/tfmot_venv/bin/python -m \
      benchmarks.tfmot_baseline --data_dir=../shared/data/mnist \
      --output=benchmarks/results/tfmot.json

The output JSON holds `machine`, `date`, `versions`, `settings`,
`test_accuracy` ({final sparsity: mean test accuracy over seeds}) and
`runs` (one entry per final sparsity and seed, which
`python -m binaries.report --tfmot=...` reads). Each finished run is written
at once; rerunning the same command skips the runs the file already holds.
"""

import datetime
import gzip
import importlib.metadata
import importlib.util
import json
import os
import statistics
import struct
import sys
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

from benchmarks import common

# TensorFlow and tfmot are imported inside the functions that use them, so
# that a wrong environment is refused at once, before TensorFlow loads (and
# TF_USE_LEGACY_KERAS must be set before `tf.keras` is first touched).

# 1 - the total remaining fraction of the lottery run of
# configs/lenet300_mnist.py at rounds 3, 7, 12, 15 and 18.
_SPARSITIES = ("0.4872", "0.7893", "0.9305", "0.9642", "0.9815")

_DATA_DIR = flags.DEFINE_string("data_dir", common.MNIST_DIR,
                                "Folder of the four MNIST IDX files.")
_OUTPUT = flags.DEFINE_string("output", "benchmarks/results/tfmot.json",
                              "The JSON file to write (and resume).")
_SPARSITIES_FLAG = flags.DEFINE_list(
    "sparsities", list(_SPARSITIES), "Final sparsities, each in (0, 1).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds, one run each.")
_STEPS = flags.DEFINE_integer(
    "steps", 50000, "Training iterations per run (one lottery round).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 60, "Training batch.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1.2e-3, "Adam's rate.")
_VALIDATION_SIZE = flags.DEFINE_integer(
    "validation_size", 5000, "Training examples held out (as the lottery "
    "run does); their accuracy is recorded too.")
_END_FRACTION = flags.DEFINE_float(
    "end_fraction", 0.5, "Pruning ends at this fraction of `steps`; the "
    "rest trains at the final sparsity.")
_FREQUENCY = flags.DEFINE_integer(
    "frequency", 100, "Iterations between pruning steps.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit(
            "tfmot_baseline: set TF_USE_LEGACY_KERAS=1: tfmot 0.8.1 needs "
            "Keras 2 (tf_keras). Received: TF_USE_LEGACY_KERAS="
            f"{os.environ.get('TF_USE_LEGACY_KERAS')!r}")
    missing = [package for package, module in (
        ("tensorflow-model-optimization", "tensorflow_model_optimization"),
        ("tf-keras", "tf_keras")) if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(
            f"tfmot_baseline: {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed; in a "
            "separate virtualenv (it would downgrade absl-py in the main "
            "one): python3 -m venv /tmp/tfmot_venv && "
            "/tmp/tfmot_venv/bin/pip install -e '.[tfmot]'")
    try:
        settings = _settings()
        data = _load_mnist(_DATA_DIR.value, settings["validation_size"])
        result = _resume(_OUTPUT.value, settings)
    except ValueError as e:
        sys.exit(f"tfmot_baseline: {e}")
    for sparsity in settings["sparsities"]:
        for seed in settings["seeds"]:
            if any(r["final_sparsity"] == sparsity and r["seed"] == seed
                   for r in result["runs"]):
                print(f"sparsity {sparsity} seed {seed}: done, skipped")
                continue
            run = _train(data, sparsity, seed, settings)
            print(f"sparsity {sparsity} seed {seed}: test accuracy "
                  f"{run['test_accuracy']:.4f}, measured sparsity "
                  f"{run['sparsity']:.4f}, {run['seconds']:.0f}s",
                  flush=True)
            result["runs"].append(run)
            _write(_OUTPUT.value, result)
    _write(_OUTPUT.value, result)
    print(f"machine: {result['machine']}")
    print(json.dumps(result["test_accuracy"], indent=2))


def _settings() -> dict:
    try:
        sparsities = sorted(float(s) for s in _SPARSITIES_FLAG.value)
        seeds = [int(s) for s in _SEEDS.value]
    except ValueError as e:
        raise ValueError(f"`sparsities` and `seeds` must be numbers: {e}"
                         ) from None
    if not sparsities or not all(0 < s < 1 for s in sparsities):
        raise ValueError("`sparsities` must be in (0, 1). Received: "
                         f"sparsities={_SPARSITIES_FLAG.value!r}")
    if not seeds:
        raise ValueError("`seeds` must name at least one seed.")
    steps, frequency = _STEPS.value, _FREQUENCY.value
    if steps < 1 or frequency < 1 or not 0 < _END_FRACTION.value <= 1:
        raise ValueError(
            "`steps` and `frequency` must be at least 1 and `end_fraction` "
            f"in (0, 1]. Received: steps={steps}, frequency={frequency}, "
            f"end_fraction={_END_FRACTION.value}")
    # tfmot prunes at begin_step + k * frequency up to end_step: end on such
    # a step, or the final sparsity is never reached.
    frequency = min(frequency, max(1, int(steps * _END_FRACTION.value) // 2))
    end_step = max(frequency,
                   int(steps * _END_FRACTION.value) // frequency * frequency)
    return {
        "sparsities": sparsities, "seeds": seeds, "steps": steps,
        "batch_size": _BATCH_SIZE.value,
        "learning_rate": _LEARNING_RATE.value,
        "validation_size": _VALIDATION_SIZE.value,
        "begin_step": 0, "end_step": end_step, "frequency": frequency,
        "model": "784-300-100-10 relu, Glorot normal",
        "optimizer": "adam",
    }


def _resume(path: str, settings: dict) -> dict:
    """The results so far: the file's, if it ran these settings."""
    fixed = {k: v for k, v in settings.items()
             if k not in ("sparsities", "seeds")}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                held = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        before = held.get("settings") or {}
        differ = [f"{k}: {before.get(k)!r} there, {fixed.get(k)!r} now"
                  for k in sorted(set(before) | set(fixed))
                  if before.get(k) != fixed.get(k)]
        if differ:
            raise ValueError(
                f"{path} holds results of other settings "
                f"({'; '.join(differ)}); use another --output.")
        runs = held["runs"]
    else:
        runs = []
    return {"machine": common.machine(),
            "date": datetime.date.today().isoformat(),
            "versions": _versions(), "settings": fixed, "runs": runs}


def _train(data: dict, sparsity: float, seed: int, settings: dict) -> dict:
    """Trains and prunes one network; returns its run entry."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    start = time.perf_counter()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    init = tf.keras.initializers.GlorotNormal
    model = tf.keras.Sequential([
        tf.keras.Input((784,)),
        tf.keras.layers.Dense(300, "relu", kernel_initializer=init(seed),
                              name="fc1"),
        tf.keras.layers.Dense(100, "relu", kernel_initializer=init(seed + 1),
                              name="fc2"),
        tf.keras.layers.Dense(10, kernel_initializer=init(seed + 2),
                              name="output"),
    ])
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity,
        begin_step=settings["begin_step"], end_step=settings["end_step"],
        frequency=settings["frequency"])
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=schedule)
    pruned.compile(
        optimizer=tf.keras.optimizers.Adam(settings["learning_rate"]),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    train = (tf.data.Dataset.from_tensor_slices(
        (data["train_x"], data["train_y"]))
        .shuffle(len(data["train_y"]), seed=seed)
        .repeat().batch(settings["batch_size"], drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE))
    pruned.fit(train, epochs=1, steps_per_epoch=settings["steps"],
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
               verbose=0)
    final = tfmot.sparsity.keras.strip_pruning(pruned)
    final.compile(
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    _, test_accuracy = final.evaluate(data["test_x"], data["test_y"],
                                      batch_size=5000, verbose=0)
    _, validation_accuracy = final.evaluate(
        data["validation_x"], data["validation_y"], batch_size=5000,
        verbose=0)
    kernels = [layer.kernel.numpy() for layer in final.layers]
    zeros = sum(int(np.sum(k == 0)) for k in kernels)
    return {
        "final_sparsity": sparsity, "seed": seed,
        "test_accuracy": float(test_accuracy),
        "validation_accuracy": float(validation_accuracy),
        "sparsity": zeros / sum(k.size for k in kernels),
        "seconds": time.perf_counter() - start,
    }


def _load_mnist(data_dir: str, validation_size: int) -> dict:
    """MNIST from the IDX files: flat float32 images in [0, 1], int labels.

    The last `validation_size` examples of a seed-0 permutation of the
    training set are held out.
    """
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(data_dir, f"{prefix}-images-idx3-ubyte")
        arrays[f"{split}_x"] = images.reshape(-1, 784) / np.float32(255)
        arrays[f"{split}_y"] = _read_idx(
            data_dir, f"{prefix}-labels-idx1-ubyte").astype(np.int32)
    if not 0 <= validation_size < len(arrays["train_y"]):
        raise ValueError(
            "`validation_size` must be in [0, 60000). Received: "
            f"validation_size={validation_size}")
    order = np.random.default_rng(0).permutation(len(arrays["train_y"]))
    keep, held = np.split(order, [len(order) - validation_size])
    x, y = arrays["train_x"], arrays["train_y"]
    arrays.update(train_x=x[keep], train_y=y[keep], validation_x=x[held],
                  validation_y=y[held])
    return arrays


def _read_idx(data_dir: str, name: str) -> np.ndarray:
    """Reads one IDX file (`name` or `name.gz`) of unsigned bytes."""
    for path in (os.path.join(data_dir, name),
                 os.path.join(data_dir, name + ".gz")):
        if os.path.exists(path):
            break
    else:
        raise ValueError(f"`data_dir` has no {name}[.gz]. Received: "
                         f"data_dir={data_dir!r}")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} cannot be read: {e}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: {data.size} bytes for "
                         f"shape {shape}.")
    return data.reshape(shape)


def _write(path: str, result: dict) -> None:
    """Writes the results atomically, with the mean accuracy per sparsity."""
    by_sparsity = {}
    for run in sorted(result["runs"],
                      key=lambda r: (r["final_sparsity"], r["seed"])):
        by_sparsity.setdefault(str(run["final_sparsity"]), []).append(
            run["test_accuracy"])
    result["test_accuracy"] = {
        s: statistics.fmean(v) for s, v in by_sparsity.items()}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tfmot.tmp-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _versions() -> dict:
    return {name: importlib.metadata.version(name) for name in (
        "tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy")}




if __name__ == "__main__":
    app.run(main)

r"""tf.data autotuning on or off: what it costs a lottery round.

The engine's datasets run without tf.data's autotuning thread
(`feeding._data_options`): deleting an iterator cancels that thread and
can wait out its optimisation period, up to a minute. Since issue #17 a
one-replica run builds no dataset (its batches are gathered in the graph,
its evaluation reads sets placed on the device), so the two settings differ
only under several replicas (`--config.train.strategy=mirrored`, which this
benchmark does not set) and in scoring data-driven criteria.

This runs the dense round of configs/lenet300_mnist.py for
`--steps` iterations through the lottery runner, once as the engine does it
(autotune off) and once with tf.data's default options (autotune on),
interleaved `--repeats` times. It prints the training and evaluation
seconds the runner measured and the seconds `gc.collect()` takes after the
round, when the round's iterators are deleted (best and worst of the
repeats):

  python -m benchmarks.data_options [--steps=5000] [--repeats=3]
"""

import gc
import time

import tensorflow as tf
from absl import app
from absl import flags

from benchmarks import common
from keras_lottery.engine import feeding

_STEPS = flags.DEFINE_integer("steps", 5000, "Iterations of the round.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs of each setting.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
# Setting -> the options every dataset of the engine gets.
SETTINGS = {
    "autotune off (the engine)": feeding._data_options,
    "autotune on (tf.data default)": tf.data.Options,
}


def round_seconds(options) -> tuple[float, float, float]:
    """Runs one dense round; returns (train, eval, teardown) seconds."""
    engine_options = feeding._data_options
    feeding._data_options = options
    try:
        entry = common.dense_round(_DATA.value, _STEPS.value)
        start = time.perf_counter()
        gc.collect()
        teardown = time.perf_counter() - start
    finally:
        feeding._data_options = engine_options
    return entry["train_seconds"], entry["eval_seconds"], teardown


def main(argv):
    del argv
    samples = {name: [] for name in SETTINGS}
    for _ in range(_REPEATS.value):
        for name, options in SETTINGS.items():
            samples[name].append(round_seconds(options))
    print(f"machine: {common.machine()}")
    print(f"LeNet-300-100 dense round, {_STEPS.value} iterations, "
          f"evaluation every 100, {_REPEATS.value} runs each")
    for name, runs in samples.items():
        train, evaluation, _ = min(runs, key=lambda r: r[0] + r[1])
        teardowns = [r[2] for r in runs]
        print(f"{name}: train {train:.1f}s, eval {evaluation:.1f}s "
              f"(best run); teardown {min(teardowns):.2f}s to "
              f"{max(teardowns):.2f}s")


if __name__ == "__main__":
    app.run(main)

r"""Train steps/s of streamed data vs arrays in memory, LeNet-300-100.

The same engine (XLA, 100 steps per compiled call, batch 60) on real MNIST,
fed two ways, interleaved in one run:

- in memory: the 60,000 training images as arrays, batches gathered in the
  graph by index (`TrainingData`, the lottery runner's path for built-in
  and `npz` datasets);
- streamed: the same images written once to TFRecord shards in a temporary
  folder and read by the loader of docs/examples/streamed_tfrecords.py
  through `keras_lottery.engine.streaming.StreamedData` (seeded permuted
  blocks of 10,000 examples each epoch), as a run whose `data.name` names
  that loader trains.

  python -m benchmarks.streamed_speed [--steps=2000] [--repeats=5]

Budget: streamed >= 0.85x in memory (issue 36). Measure on an otherwise
idle machine: both sides share its cores with whatever else runs.
"""

import functools
import sys
import tempfile
import time

import keras
import tensorflow as tf
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from docs.examples import streamed_tfrecords
from keras_lottery.data import readers
from keras_lottery.engine import streaming
from keras_lottery.engine import training
from keras_lottery.models import zoo

_STEPS = flags.DEFINE_integer("steps", 2000, "Steps per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Measurements per side.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
BUDGET = 0.85


def main(argv):
    del argv
    raw = readers.read_idx_files(_DATA.value)
    steps = _STEPS.value

    def trainer():
        model = keras_lottery.wrap(zoo.build(
            "lenet_300_100", raw.train_x.shape[1:], 10, seed=0))
        return training.Trainer(
            model, training.make_strategy("default"),
            keras.optimizers.Adam(1.2e-3), 60, jit_compile=True,
            steps_per_loop=100)

    in_memory = training.TrainingData(
        tf.convert_to_tensor(raw.train_x.astype("float32") / 255),
        tf.convert_to_tensor(raw.train_y.astype("int32")), 60, 0)
    with tempfile.TemporaryDirectory() as folder:
        streamed_tfrecords.write(raw.train_x, raw.train_y, folder, "train",
                                 shards=4)
        streamed_tfrecords.write(raw.test_x, raw.test_y, folder, "test")
        train, _ = streamed_tfrecords.load(folder)
        streamed = streaming.StreamedData(train, len(raw.train_y), 60,
                                          seed=0, shuffle_buffer=10000)
        memory_trainer, streamed_trainer = trainer(), trainer()
        memory_trainer.train(in_memory, 200)  # compiles
        streamed_trainer.train(streamed, 200)
        cpu = {"in memory": [], "streamed": []}

        def measured(name, train, data):
            # Steps/s, and the process's CPU time per step: the share of
            # the cores each side takes, less swayed than the rate by
            # other processes on a shared machine.
            start = time.process_time()
            value = common.rate(functools.partial(train, data, steps),
                                steps)
            cpu[name].append((time.process_time() - start) / steps)
            return value

        runs = {
            "in memory": functools.partial(measured, "in memory",
                                           memory_trainer.train, in_memory),
            "streamed": functools.partial(measured, "streamed",
                                          streamed_trainer.train, streamed),
        }
        result = common.interleaved(runs, _REPEATS.value)
    ratio = result["streamed"] / result["in memory"]
    print(f"machine: {common.machine()}")
    for name, value in result.items():
        print(f"{name}: {value:.0f} steps/s, CPU "
              f"{1e3 * min(cpu[name]):.2f} ms per step")
    print(f"ratio streamed/in memory: {ratio:.2f} (budget >= {BUDGET})")
    if ratio < BUDGET:
        sys.exit("streamed speed under budget")


if __name__ == "__main__":
    app.run(main)

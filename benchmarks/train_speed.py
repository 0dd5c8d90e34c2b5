r"""Train steps/s of this engine vs `model.fit`, LeNet-300-100, batch 60.

The same wrapped model and real MNIST; the engine as the lottery runner
uses it (XLA, 100 steps per compiled call, batches gathered in the graph
from a `TrainingData`), the same engine fed by its `tf.data` pipeline (as
under several replicas), and `model.fit` as a Keras user would call it
(compile defaults, numpy arrays). Interleaved in one run:

  python -m benchmarks.train_speed [--steps=2000] [--repeats=5]

Budget: the engine runs at >= 3.0x `model.fit`.
"""

import functools
import sys

import keras
import tensorflow as tf
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery.engine import training
from keras_lottery.models import zoo

_STEPS = flags.DEFINE_integer("steps", 2000, "Steps per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Measurements per side.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
BUDGET = 3.0


def main(argv):
    del argv
    data = common.mnist(_DATA.value)
    steps = _STEPS.value

    def model():
        return keras_lottery.wrap(
            zoo.build("lenet_300_100", data.input_shape, 10, seed=0))

    def trainer():
        return training.Trainer(
            model(), training.make_strategy("default"),
            keras.optimizers.Adam(1.2e-3), 60, jit_compile=True,
            steps_per_loop=100)

    train = training.TrainingData(tf.convert_to_tensor(data.train_x),
                                  tf.convert_to_tensor(data.train_y), 60, 0)
    engine, piped = trainer(), trainer()
    engine.train(train, 200)
    # A plain callable takes the tf.data path.
    dataset_fn = functools.partial(training.train_dataset, train.x, train.y,
                                   60, 0)
    piped.train(dataset_fn, 200)

    fit_model = model()
    fit_model.compile(
        keras.optimizers.Adam(1.2e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data.train_x[: 60 * steps], data.train_y[: 60 * steps]
    fit_model.fit(x[:6000], y[:6000], batch_size=60, epochs=1, verbose=0)

    def fit():
        # An epoch of the first `steps` batches: steps/s of fit itself.
        fit_model.fit(x, y, batch_size=60, epochs=1, verbose=0,
                      steps_per_epoch=steps)

    per_epoch = len(x) // 60
    if per_epoch < steps:
        sys.exit(f"--steps must be at most {per_epoch} (one MNIST epoch)")
    runs = {
        "engine": functools.partial(
            common.rate, functools.partial(engine.train, train, steps),
            steps),
        "engine, tf.data": functools.partial(
            common.rate, functools.partial(piped.train, dataset_fn, steps),
            steps),
        "model.fit": functools.partial(common.rate, fit, steps),
    }
    result = common.interleaved(runs, _REPEATS.value)
    ratio = result["engine"] / result["model.fit"]
    print(f"machine: {common.machine()}")
    for name, value in result.items():
        print(f"{name}: {value:.0f} steps/s")
    print(f"ratio engine/model.fit: {ratio:.2f} (budget >= {BUDGET})")
    if ratio < BUDGET:
        sys.exit("engine speed under budget")


if __name__ == "__main__":
    app.run(main)

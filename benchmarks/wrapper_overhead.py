r"""Train steps/s of LeNet-300-100 unwrapped vs wrapped with 80% masked.

Same engine (keras_lottery.training.Trainer), batch 60, Adam, real MNIST,
measured side by side and interleaved in one process:

  python benchmarks/wrapper_overhead.py [--steps=2000] [--repeats=5]

Budget: the wrapped model runs at >= 95% of the unwrapped one's speed.
"""

import functools
import sys

from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery import models
from keras_lottery import training

_STEPS = flags.DEFINE_integer("steps", 2000, "Steps per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Measurements per model.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")


def main(argv):
    del argv
    data = common.mnist(_DATA.value)
    strategy = training.make_strategy("default")
    plain = models.build("lenet_300_100", data.input_shape, 10, seed=0)
    wrapped = keras_lottery.wrap(
        models.build("lenet_300_100", data.input_shape, 10, seed=0))
    keras_lottery.prune(wrapped, 0.8)
    dataset_fn = functools.partial(training.train_dataset, data.train_x,
                                   data.train_y, 60, 0)
    runs = {}
    for name, model in (("unwrapped", plain), ("wrapped", wrapped)):
        trainer = training.Trainer(
            model, strategy, training.make_optimizer(_adam()), 60,
            jit_compile=True, steps_per_loop=100)
        trainer.train(dataset_fn, 200)  # compile and warm up
        runs[name] = functools.partial(
            common.rate, functools.partial(trainer.train, dataset_fn,
                                           _STEPS.value), _STEPS.value)
    result = common.interleaved(runs, _REPEATS.value)
    ratio = result["wrapped"] / result["unwrapped"]
    print(f"machine: {common.machine()}")
    print(f"unwrapped: {result['unwrapped']:.0f} steps/s")
    print(f"wrapped (80% masked): {result['wrapped']:.0f} steps/s")
    print(f"ratio wrapped/unwrapped: {ratio:.3f} (budget >= 0.95)")
    if ratio < 0.95:
        sys.exit("wrapper overhead over budget")


def _adam():
    from configs import lenet300_mnist

    return lenet300_mnist.get_config().train


if __name__ == "__main__":
    app.run(main)

r"""What scoring a criterion costs, next to training steps, side by side.

For each model and criterion: one `keras_lottery.prune` call that scores
over 10 training batches of 60 (gradients or activations where the
criterion reads them) and prunes 20%, against 100 training steps of the
engine (`keras_lottery.engine.training.Trainer`, compiled and warmed up),
on real MNIST, interleaved in one process; best of `--repeats`:

  python -m benchmarks.scoring [--models=lenet_300_100,conv2] [--repeats=5]

Budget (issue "What structure, and what is superfluous"): scoring any
criterion over 10 batches costs less than 100 training steps.
"""

import functools
import sys
import time

import numpy as np
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery.core import state
from keras_lottery.engine import training
from keras_lottery.models import zoo

_MODELS = flags.DEFINE_list("models", ["lenet_300_100", "conv2"],
                            "Networks to measure.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Measurements of each.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")

BATCH = 60
SCORE_BATCHES = 10
STEPS = 100
# Granularity per model: units where the criterion scores units only.
_UNITS = {"lenet_300_100": ("neuron", {}),
          "conv2": ("neuron", {"conv1": "filter", "conv2": "filter"})}


def main(argv):
    del argv
    data = common.mnist(_DATA.value)
    strategy = training.make_strategy("default")
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(data.train_x), BATCH, replace=False)
             for _ in range(SCORE_BATCHES)]
    batches = [(data.train_x[i], data.train_y[i]) for i in picks]
    print(f"machine: {common.machine()}")
    print(f"{'model':<14} {'criterion':<11} {'granularity':<12} "
          f"{'scoring s':>10} {'100 steps s':>12} {'ratio':>6}")
    over = []
    for name in _MODELS.value:
        model = keras_lottery.wrap(
            zoo.build(name, data.input_shape, 10, seed=0))
        ones = {k: np.ones_like(v)
                for k, v in state.get_masks(model, units=True).items()}
        trainer = training.Trainer(
            model, strategy, training.make_optimizer(_adam()), BATCH,
            jit_compile=True, steps_per_loop=STEPS)
        dataset_fn = functools.partial(training.train_dataset, data.train_x,
                                       data.train_y, BATCH, 0)
        trainer.train(dataset_fn, 2 * STEPS)  # compile and warm up
        runs = {"train": functools.partial(
            _seconds, functools.partial(trainer.train, dataset_fn, STEPS))}
        for criterion in keras_lottery.criteria.names():
            granularity, per_layer = (
                _UNITS[name] if criterion == "apoz" else ("weight", {}))
            runs[criterion, granularity] = functools.partial(
                _prune_seconds, model, ones, criterion, granularity,
                {**per_layer, zoo.OUTPUT_LAYER_NAME: "weight"},
                0.0 if criterion == "apoz" else 0.1, batches)
        result = common.interleaved(runs, _REPEATS.value, best=min)
        for key, seconds in result.items():
            if key == "train":
                continue
            ratio = seconds / result["train"]
            print(f"{name:<14} {key[0]:<11} {key[1]:<12} {seconds:>10.3f} "
                  f"{result['train']:>12.3f} {ratio:>6.2f}")
            if ratio >= 1.0:
                over.append(f"{name}/{key[0]}")
        state.set_masks(model, ones)
    print("budget: scoring 10 batches < 100 training steps (ratio < 1)")
    if over:
        sys.exit(f"over budget: {', '.join(over)}")


def _prune_seconds(model, ones, criterion, granularity, granularities,
                   output_fraction, batches) -> float:
    state.set_masks(model, ones)
    start = time.perf_counter()
    keras_lottery.prune(model, 0.2, method=criterion,
                        granularity=granularity, granularities=granularities,
                        fractions={zoo.OUTPUT_LAYER_NAME: output_fraction},
                        data=batches, seed=0)
    return time.perf_counter() - start


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _adam():
    from configs import lenet300_mnist

    return lenet300_mnist.get_config().train


if __name__ == "__main__":
    app.run(main)

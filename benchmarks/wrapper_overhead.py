r"""Train steps/s of LeNet-300-100 unwrapped vs wrapped with 80% masked.

Same engine (keras_lottery.engine.training.Trainer), batch 60, Adam, real MNIST,
measured side by side in one process:

  python -m benchmarks.wrapper_overhead [--steps=1000] [--repeats=40] \
      [--feeds=in_graph,tf_data]

Budget: the wrapped model runs at >= 95% of the unwrapped one's speed, for
each way of feeding the engine: `in_graph`, the batches gathered inside one
compiled loop of 100 steps (a `TrainingData`: what the binaries train on
under one replica), and `tf_data`, a `tf.data` pipeline with one compiled
call per step (several replicas, or a caller's own dataset).

One measurement is a pair: both models run --steps steps back to back
(which goes first alternates), and the pair's ratio is wrapped/unwrapped
steps/s, so load that changes over minutes affects both sides of a pair
alike. The verdict is on the median of --repeats pair ratios with its 95%
bootstrap interval: met when the interval lies above 0.95, missed when it
lies below, and undecided (exit 1, asking for more repeats) when the
machine's noise is too large to tell 5% apart: the best of a few runs, as
before, read anywhere from 0.91 to 0.99 on one day.
"""

import functools
import sys

import numpy as np
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery.engine import training
from keras_lottery.models import zoo

_STEPS = flags.DEFINE_integer("steps", 1000, "Steps per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 40, "Pairs of measurements.")
BUDGET = 0.95
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
FEEDS = ("in_graph", "tf_data")
_FEEDS = flags.DEFINE_list("feeds", list(FEEDS), "Ways of feeding the "
                           "engine to measure: in_graph, tf_data.")


def main(argv):
    del argv
    if not _FEEDS.value or any(f not in FEEDS for f in _FEEDS.value):
        sys.exit(f"--feeds must be some of {', '.join(FEEDS)}. Received: "
                 f"--feeds={','.join(_FEEDS.value)}")
    data = common.mnist(_DATA.value)
    strategy = training.make_strategy("default")
    feeds = {
        "in_graph": training.TrainingData(data.train_x, data.train_y, 60, 0),
        "tf_data": functools.partial(training.train_dataset, data.train_x,
                                     data.train_y, 60, 0),
    }
    runs = {}
    for feed in _FEEDS.value:
        plain = zoo.build("lenet_300_100", data.input_shape, 10, seed=0)
        wrapped = keras_lottery.wrap(
            zoo.build("lenet_300_100", data.input_shape, 10, seed=0))
        keras_lottery.prune(wrapped, 0.8)
        for name, model in (("unwrapped", plain), ("wrapped", wrapped)):
            trainer = training.Trainer(
                model, strategy, training.make_optimizer(_adam()), 60,
                jit_compile=True, steps_per_loop=100)
            trainer.train(feeds[feed], 200)  # compile and warm up
            runs[feed, name] = functools.partial(
                common.rate, functools.partial(trainer.train, feeds[feed],
                                               _STEPS.value), _STEPS.value)
    ratios = {feed: [] for feed in _FEEDS.value}
    for i in range(_REPEATS.value):
        for feed in _FEEDS.value:
            order = ("unwrapped", "wrapped")[::1 if i % 2 else -1]
            rates = {name: runs[feed, name]() for name in order}
            ratios[feed].append(rates["wrapped"] / rates["unwrapped"])
    print(f"machine: {common.machine()}")
    verdicts = {}
    for feed, values in ratios.items():
        median, low, high = median_interval(values)
        verdicts[feed] = ("missed" if high < BUDGET else
                          "undecided" if low < BUDGET else "met")
        print(f"{feed}: {len(values)} pairs of {_STEPS.value} steps: ratio "
              f"wrapped/unwrapped median {median:.3f}, 95% interval "
              f"[{low:.3f}, {high:.3f}], pairs from {min(values):.3f} to "
              f"{max(values):.3f} (budget >= {BUDGET}): {verdicts[feed]}")
    if "missed" in verdicts.values():
        sys.exit("wrapper overhead over budget")
    if "undecided" in verdicts.values():
        sys.exit("undecided: an interval holds 0.95; run more --repeats "
                 "or on a quieter machine")


def median_interval(values, confidence: float = 0.95, resamples: int = 4000,
                    seed: int = 0) -> tuple[float, float, float]:
    """The median of `values` and its bootstrap percentile interval."""
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, (resamples, len(values))), axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(values)), float(low), float(high)


def _adam():
    from configs import lenet300_mnist

    return lenet300_mnist.get_config().train


if __name__ == "__main__":
    app.run(main)

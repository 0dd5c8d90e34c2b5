"""Shared set-up for the benchmarks: real MNIST, LeNet-300-100, timing."""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keras_lottery.data import datasets

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                         "data", "mnist")


def mnist(data_dir: str = MNIST_DIR) -> datasets.Splits:
    """Real MNIST as `keras_lottery.datasets.Splits` (5,000 validation)."""
    # Imported here: keras_lottery imports Keras 3, and the tfmot baseline,
    # which uses the rest of this module, must not.
    from keras_lottery import datasets

    return datasets.load("mnist", data_dir, validation_size=5000, seed=0)


def dense_round(data_dir: str, steps: int, test_at: str = "every") -> dict:
    """Trains the dense round of configs/lenet300_mnist.py for `steps`
    iterations in a temporary workdir, through the lottery runner; returns
    its summary entry (with `train_seconds` and `eval_seconds`)."""
    from configs import lenet300_mnist
    from keras_lottery.lottery import runner

    config = lenet300_mnist.get_config()
    config.data.dir = data_dir
    config.train.num_steps = steps
    config.prune.num_rounds = 0
    config.eval.test_at = test_at
    config.export.enabled = False
    with tempfile.TemporaryDirectory() as workdir:
        (entry,) = runner.run(config, workdir)
    return entry


def machine() -> str:
    """A one-line description of where the benchmark ran, with the date."""
    return (f"{datetime.date.today().isoformat()}, {platform.machine()}, "
            f"{os.cpu_count()} CPU cores, {platform.python_version()}")


def interleaved(runs: dict[str, Callable[[], float]], repeats: int,
                best: Callable[[list[float]], float] = max
                ) -> dict[str, float]:
    """Calls each `runs[name]()` in turn, `repeats` times, and returns each
    one's best: `max` for rates (the default), `min` for times.

    Interleaving spreads slow changes in machine load over all of them
    alike; the best of several (as `timeit` takes the minimum time) drops
    the measurements that another process interrupted.
    """
    samples = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            samples[name].append(fn())
    return {name: best(s) for name, s in samples.items()}


def rate(fn: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    fn()
    return steps / (time.perf_counter() - start)

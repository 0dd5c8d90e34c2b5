r"""Resident memory after each of 10 short rounds of one lottery run.

LeNet-300-100 on real MNIST (configs/lenet300_mnist.py, 200 iterations per
round, evaluation every 100, test set at the best step), in one process:

  python -m benchmarks.memory [--rounds=10] [--steps=200] \
      [--sparse_compute=compact]

`--sparse_compute` sets `train.sparse_compute`: `compact` or `sparse`
trains every round on that path, which builds and compiles its model
and functions anew each round (`auto` keeps these short, still dense
rounds on the dense kernels).

Budget (issue "Faster rounds"): round 10 within 10% of round 1. Before the
engine made its data tensors once per run, every round copied the training
set into new datasets that were never given back: about 220 MB a round.
"""

import os
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

from benchmarks import common

_ROUNDS = flags.DEFINE_integer("rounds", 10, "Pruning rounds after round 0.")
_STEPS = flags.DEFINE_integer("steps", 200, "Iterations per round.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
_SPARSE = flags.DEFINE_enum("sparse_compute", "auto",
                            ["auto", "off", "compact", "sparse"],
                            "train.sparse_compute of the run.")


def main(argv):
    del argv
    from configs import lenet300_mnist
    from keras_lottery.lottery import runner
    from keras_lottery.lottery import trainer

    logging.set_verbosity(logging.WARNING)
    config = lenet300_mnist.get_config()
    config.data.dir = _DATA.value
    config.train.num_steps = _STEPS.value
    config.eval.every_steps = min(100, _STEPS.value)
    config.eval.test_at = "best"
    config.prune.num_rounds = _ROUNDS.value
    config.export.enabled = False
    config.train.sparse_compute = _SPARSE.value
    resident = {}
    train_round = trainer.Experiment.train_round

    def measured(self, workdir, round_index, make_model):
        metrics = train_round(self, workdir, round_index, make_model)
        resident[round_index] = _resident_mib()
        print(f"round {round_index:2d}: {resident[round_index]:6.0f} MiB "
              "resident", flush=True)
        return metrics

    trainer.Experiment.train_round = measured
    print(f"machine: {common.machine()}")
    with tempfile.TemporaryDirectory() as workdir:
        runner.run(config, workdir)
    growth = resident[_ROUNDS.value] / resident[1] - 1
    print(f"round {_ROUNDS.value} vs round 1: {growth:+.1%} (budget <= +10%)")
    if growth > 0.10:
        sys.exit("memory growth over budget")


def _resident_mib() -> float:
    """This process's resident memory (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    app.run(main)

r"""The share of a lottery round's time that evaluation takes.

At the paper's schedule (LeNet-300-100, evaluation every 100 of 50,000
iterations on 5,000 validation and 10,000 test examples) evaluation reads
as many examples as training does. This runs the dense round of
configs/lenet300_mnist.py for `--steps` iterations through the lottery
runner, with the test set at every evaluation (`eval.test_at=every`) and
only where the validation loss reaches a new minimum (`eval.test_at=best`,
the paper's runs), interleaved `--repeats` times, and prints the training
and evaluation seconds the runner measured (best of the repeats), and the
round's seconds in all:

  python -m benchmarks.eval_share [--steps=50000] [--repeats=1] \
      [--test_at=every,best]

Budget: with `eval.test_at=best` over a paper-schedule round (`--steps=
50000`, the default) evaluation takes at most 25% of the round. A forward
pass over the 5,000 validation examples every 100 steps of 60 is about 28%
of training's arithmetic (a forward pass is a third of a step's), about
22% of the time at equal efficiency; the test set adds its evaluations at
new minima, frequent early in a round and rare later. Shorter rounds
(`--steps=5000`) report their share without judging it: their validation
loss still improves at most evaluations.
"""

import os
import sys

from absl import app
from absl import flags

from benchmarks import common

_STEPS = flags.DEFINE_integer("steps", 50000, "Iterations of the round.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Runs of each setting.")
_TEST_AT = flags.DEFINE_list("test_at", ["every", "best"],
                             "The eval.test_at settings to run.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
BUDGET = 0.25  # of a paper-schedule round, with eval.test_at=best
PAPER_STEPS = 50000


def round_seconds(test_at: str) -> tuple[float, float, float]:
    """Runs one dense round; returns (train, eval, whole round) seconds."""
    entry = common.dense_round(_DATA.value, _STEPS.value, test_at)
    return (entry["train_seconds"], entry["eval_seconds"],
            entry["round_seconds"])


def main(argv):
    del argv
    settings = _TEST_AT.value
    samples = {name: [] for name in settings}
    for _ in range(_REPEATS.value):
        for name in settings:
            samples[name].append(round_seconds(name))
    print(f"machine: {common.machine()}, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"LeNet-300-100, {_STEPS.value} iterations, evaluation every 100")
    shares = {}
    for name in settings:
        train, evaluation, whole = min(samples[name],
                                       key=lambda s: s[0] + s[1])
        shares[name] = evaluation / (train + evaluation)
        print(f"eval.test_at={name}: train {train:.1f}s, eval "
              f"{evaluation:.1f}s, evaluation {shares[name]:.0%} of the "
              f"round; the round {whole:.1f}s in all")
    if "best" not in shares or _STEPS.value != PAPER_STEPS:
        print(f"budget not judged: it is for eval.test_at=best at "
              f"--steps={PAPER_STEPS}")
        return
    print(f"budget: evaluation <= {BUDGET:.0%} with eval.test_at=best")
    if shares["best"] > BUDGET:
        sys.exit("evaluation's share over budget")


if __name__ == "__main__":
    app.run(main)

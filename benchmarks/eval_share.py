r"""The share of a lottery round's time that evaluation takes.

At the paper's schedule (LeNet-300-100, evaluation every 100 of 50,000
iterations on 5,000 validation and 10,000 test examples) evaluation reads
as many examples as training does. This runs the dense round of
configs/lenet300_mnist.py for `--steps` iterations through the lottery
runner, once with the test set at every evaluation (`eval.test_at=every`)
and once only where the validation loss reaches a new minimum
(`eval.test_at=best`), interleaved `--repeats` times, and prints the
training and evaluation seconds the runner measured (best of the repeats):

  python -m benchmarks.eval_share [--steps=5000] [--repeats=2]
"""

from absl import app
from absl import flags

from benchmarks import common

_STEPS = flags.DEFINE_integer("steps", 5000, "Iterations of the round.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Runs of each setting.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
SETTINGS = ("every", "best")


def round_seconds(test_at: str) -> tuple[float, float]:
    """Runs one dense round; returns (train, eval) seconds."""
    entry = common.dense_round(_DATA.value, _STEPS.value, test_at)
    return entry["train_seconds"], entry["eval_seconds"]


def main(argv):
    del argv
    samples = {name: [] for name in SETTINGS}
    for _ in range(_REPEATS.value):
        for name in SETTINGS:
            samples[name].append(round_seconds(name))
    print(f"machine: {common.machine()}")
    print(f"LeNet-300-100, {_STEPS.value} iterations, evaluation every 100")
    for name in SETTINGS:
        train, evaluation = min(samples[name], key=sum)
        share = evaluation / (train + evaluation)
        print(f"eval.test_at={name}: train {train:.1f}s, eval "
              f"{evaluation:.1f}s, evaluation {share:.0%} of the round")


if __name__ == "__main__":
    app.run(main)

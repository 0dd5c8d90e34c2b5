r"""The lottery binary against open_lth on the same work, side by side.

Dense LeNet-300-100 on MNIST, Adam 1.2e-3, batch 60, --steps iterations,
each side as a user runs it: a fresh process of `python -m
binaries.lottery` (one round, the test set at every evaluation) and one of
open_lth's `train` command (PyTorch; facebookresearch/open_lth), each on
one CPU thread, alternated --repeats times; the best wall time of each,
process start included. Budget: the lottery binary at >= 5x open_lth.

  python -m benchmarks.vs_open_lth --open_lth=/path/to/open_lth \
      --open_lth_python=/path/to/torch_venv/bin/python

Without --open_lth it prints why it is skipped and exits 0: open_lth is
not a package, and neither it nor PyTorch is installed by this project.
--open_lth_args replaces the arguments after `open_lth.py` when your
checkout names its options differently.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import common
from keras_lottery.studies import runner

BUDGET = 5.0
_OPEN_LTH = flags.DEFINE_string(
    "open_lth", "", "A checkout of open_lth (holding open_lth.py); "
    "empty: skip.")
_OPEN_LTH_PYTHON = flags.DEFINE_string(
    "open_lth_python", "python3", "The Python with PyTorch for open_lth.")
_OPEN_LTH_ARGS = flags.DEFINE_string(
    "open_lth_args",
    "train --default_hparams=mnist_lenet_300_100 --optimizer_name=adam "
    "--lr=1.2e-3 --batch_size=60 --training_steps={steps}it",
    "open_lth's arguments; {steps} and {root} are filled in.")
_STEPS = flags.DEFINE_integer("steps", 5000, "Training iterations.")
_EVERY = flags.DEFINE_integer("eval_every", 1000,
                              "The lottery binary's evaluation interval.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs of each side.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")



def lottery_command(workdir: str) -> list[str]:
    return [sys.executable, "-m", "binaries.lottery",
            "--config=configs/lenet300_mnist.py",
            f"--config.data.dir={os.path.abspath(_DATA.value)}",
            f"--config.train.num_steps={_STEPS.value}",
            f"--config.eval.every_steps={_EVERY.value}",
            "--config.eval.test_at=every", "--config.prune.num_rounds=0",
            "--config.export.enabled=false", f"--workdir={workdir}"]


def open_lth_command(root: str) -> list[str]:
    args = _OPEN_LTH_ARGS.value.format(steps=_STEPS.value, root=root)
    return [_OPEN_LTH_PYTHON.value,
            os.path.join(_OPEN_LTH.value, "open_lth.py"), *shlex.split(args)]


def seconds(command: list[str], cwd: str) -> float:
    """Wall time of `command`, which must exit 0."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **runner.thread_env(1),
                                 "TF_CPP_MIN_LOG_LEVEL": "2"})
    took = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"vs_open_lth: {shlex.join(command)} exited "
                 f"{result.returncode}: "
                 f"{(result.stderr.strip().splitlines() or [''])[-1]}")
    return took


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not _OPEN_LTH.value:
        print("vs_open_lth: skipped: no --open_lth checkout given (open_lth "
              "and PyTorch are not part of this project).")
        return
    script = os.path.join(_OPEN_LTH.value, "open_lth.py")
    if not os.path.isfile(script):
        sys.exit(f"vs_open_lth: `--open_lth` must be a checkout holding "
                 f"open_lth.py. Received: --open_lth={_OPEN_LTH.value}")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "lottery": lambda: seconds(lottery_command(
                tempfile.mkdtemp(dir=tmp)), repo),
            "open_lth": lambda: seconds(open_lth_command(
                tempfile.mkdtemp(dir=tmp)), _OPEN_LTH.value),
        }
        best = common.interleaved(runs, _REPEATS.value, best=min)
    ratio = best["open_lth"] / best["lottery"]
    print(f"machine: {common.machine()}")
    print(f"dense LeNet-300-100, {_STEPS.value} iterations, one thread each, "
          f"best of {_REPEATS.value}: lottery {best['lottery']:.1f} s, "
          f"open_lth {best['open_lth']:.1f} s: {ratio:.2f}x (budget "
          f">= {BUDGET:g}x)")
    if ratio < BUDGET:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)

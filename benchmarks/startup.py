r"""Start-up: process start to the first steps, and each round's start.

Runs the lottery binary on configs/lenet300_mnist.py (real MNIST, a fresh
workdir, `--rounds` pruning rounds of `--steps` iterations, no export)
`--repeats` times, one after the other, reading its log as it comes:

- *process start to first steps*: from starting `python -m binaries.lottery`
  to the line saying round 0's first compiled call (its first
  `train.steps_per_loop` = 100 steps) ended: imports, data, model, tracing,
  compiling and those steps;
- *a round's start*: what that line says for each round, from the round's
  start (loading and pruning its model, building its trainer) to the end of
  its first call, compiling included.

  python -m benchmarks.startup [--repeats=3] [--rounds=2] [--steps=200]

Budgets (best of the repeats): process start to first steps < 10 s; every
round's start < 3 s.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import common

_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs of the binary.")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Pruning rounds after round 0.")
_STEPS = flags.DEFINE_integer("steps", 200, "Iterations per round.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
PROCESS_BUDGET = 10.0
ROUND_BUDGET = 3.0
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LINE = re.compile(
    r"Round (\d+): its first steps ended ([\d.]+) s after the round began")


def run_binary() -> tuple[float, dict[int, float]]:
    """Runs the binary once; returns (process start to round 0's first
    steps, {round: its start}), in seconds."""
    with tempfile.TemporaryDirectory() as workdir:
        command = [
            sys.executable, "-m", "binaries.lottery",
            "--config=configs/lenet300_mnist.py",
            f"--config.data.dir={_DATA.value}",
            f"--config.train.num_steps={_STEPS.value}",
            f"--config.prune.num_rounds={_ROUNDS.value}",
            "--config.export.enabled=False", f"--workdir={workdir}"]
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=_ROOT, text=True,
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        first, rounds, tail = None, {}, []
        for line in process.stderr:
            match = _LINE.search(line)
            if match:
                if first is None:
                    first = time.perf_counter() - start
                rounds[int(match.group(1))] = float(match.group(2))
            tail = (tail + [line])[-20:]
        if process.wait() or first is None:
            sys.exit("the binary failed:\n" + "".join(tail))
    return first, rounds


def main(argv):
    del argv
    firsts, rounds = [], {}
    for _ in range(_REPEATS.value):
        first, starts = run_binary()
        firsts.append(first)
        for r, seconds in starts.items():
            rounds.setdefault(r, []).append(seconds)
    print(f"machine: {common.machine()}, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"LeNet-300-100 on MNIST, {_ROUNDS.value + 1} rounds of "
          f"{_STEPS.value} iterations, {_REPEATS.value} runs (best; all)")
    print(f"process start to first steps: {min(firsts):.2f} s "
          f"({', '.join(f'{f:.2f}' for f in firsts)}; budget < "
          f"{PROCESS_BUDGET:.0f} s)")
    for r, seconds in sorted(rounds.items()):
        print(f"round {r} start: {min(seconds):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in seconds)}; budget < "
              f"{ROUND_BUDGET:.0f} s)")
    if min(firsts) >= PROCESS_BUDGET or any(
            min(s) >= ROUND_BUDGET for s in rounds.values()):
        sys.exit("start-up over budget")


if __name__ == "__main__":
    app.run(main)

r"""Kills the lottery binary (SIGKILL) again and again; checks the end state.

The long version of tests/test_reliability.py (docs/RELIABILITY.md):

  python -m benchmarks.fault_injection [--kills=40] [--seed=0] \
      [--workdir=/tmp/fault_injection] [--determinism]

1. Runs the smoke config once, uninterrupted, with op determinism on: the
   reference, and its duration T from process start.
2. Runs the same command and SIGKILLs it, `--kills` times: most kills come
   from outside at a moment drawn uniformly from [0, T) after the process
   starts (imports, data loading and tracing included, as a real kill
   would; T shrinks to the quickest whole run seen since); every third
   lands at one of the named moments of `keras_lottery.base.faults` instead,
   in turn. After each kill the same
   command runs again. When a run gets to the end on its own, its workdir
   is compared with the reference (identical masks, metrics but timings,
   summary and exported weights; no temporary or checkpoint left) and the
   next kills go to a fresh workdir.
3. With `--determinism`: two more uninterrupted runs without op
   determinism, compared with each other and with the reference.

Prints one line per run and a verdict; exits 1 if any comparison failed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from absl import app
from absl import flags

from benchmarks import common
from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import cost

_KILLS = flags.DEFINE_integer("kills", 40, "SIGKILLs in all.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the kill moments.")
_WORKDIR = flags.DEFINE_string(
    "workdir", "/tmp/fault_injection", "Scratch folder; emptied first.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
_DETERMINISM = flags.DEFINE_bool(
    "determinism", False, "Also compare runs without op determinism.")

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The smoke config: 4 rounds of 300 steps, checkpoints every 100 steps.
ARGS = ("--config=configs/lenet300_mnist.py:smoke",)
POINTS = (
    "train@2", "checkpoint_files", "write:ckpt-100.history.json",
    "checkpoint_saved", "write:model.keras", "model_saved",
    "write:metrics.json", "round_done", "pruned", "write:masks.npz",
    "write:summary.json", "write:1", "write:config.json",
)
TIMINGS = cost.TIMINGS


def run(workdir: str, deterministic: bool = True, fault: str = "",
        kill_at: float | None = None) -> tuple[int, float]:
    """Runs the binary; returns (exit status, seconds from start)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "binaries.lottery", *ARGS,
         f"--config.data.dir={_DATA.value}", f"--workdir={workdir}",
         f"--config.deterministic={deterministic}"],
        cwd=_REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=kill_at)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode, time.monotonic() - start


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def differences(workdir: str, reference: str) -> list[str]:
    """What differs between two finished workdirs (empty: nothing)."""
    found = []
    num_rounds = len(files.read_json(paths.summary_file(reference))) - 1
    for r in range(num_rounds + 1):
        want = files.read_arrays(paths.masks_file(reference, r))
        got = files.read_arrays(paths.masks_file(workdir, r))
        for key in want:
            changed = int(np.count_nonzero(got[key] != want[key]))
            if changed:
                found.append(f"round {r} mask {key}: {changed} entries")
        a = _without_timings(files.read_json(paths.metrics_file(workdir, r)))
        b = _without_timings(files.read_json(
            paths.metrics_file(reference, r)))
        if a != b:
            found.append(f"round {r} metrics")
    # The SavedModel's bytes hold object names that depend on how many
    # models the process built before; its weights must be identical.
    import tensorflow as tf

    got, want = ([v.numpy() for v in tf.saved_model.load(os.path.join(
        paths.export_dir(w), "lottery", "1")).variables]
        for w in (workdir, reference))
    if len(got) != len(want) or any(
            not np.array_equal(a, b) for a, b in zip(got, want)):
        found.append("exported weights")
    return found


def leftovers(workdir: str) -> list[str]:
    return [os.path.join(folder, name)
            for folder, dirs, names in os.walk(workdir)
            for name in dirs + names
            if files.is_temporary(name) or name == "checkpoints"]


def main(argv: list[str]) -> None:
    del argv
    shutil.rmtree(_WORKDIR.value, ignore_errors=True)
    reference = os.path.join(_WORKDIR.value, "reference")
    status, duration = run(reference)
    assert status == 0, f"the reference run failed ({status})"
    print(f"reference: {duration:.1f}s; {common.machine()}")
    rng = np.random.default_rng(_SEED.value)
    failures = []
    chain, kills, runs = 0, 0, 0
    workdir = os.path.join(_WORKDIR.value, f"chain{chain}")
    while kills < _KILLS.value or os.path.exists(workdir):
        if kills < _KILLS.value and kills % 3 == 2:
            fault, kill_at = POINTS[(kills // 3) % len(POINTS)], None
        elif kills < _KILLS.value:
            fault, kill_at = "", float(rng.uniform(0, duration))
        else:
            fault, kill_at = "", None  # finish the last chain
        fresh = not os.path.exists(workdir)
        status, seconds = run(workdir, fault=fault, kill_at=kill_at)
        runs += 1
        if fresh and status == 0:
            # The machine's load changes: draw from the quickest whole run.
            duration = min(duration, seconds)
        killed = status == -signal.SIGKILL
        kills += killed
        moment = fault or (f"{kill_at:.2f}s" if kill_at else "none")
        print(f"run {runs}: chain {chain}, kill at {moment}: "
              f"{'killed' if killed else f'exit {status}'} after "
              f"{seconds:.1f}s")
        if status not in (0, -signal.SIGKILL):
            failures.append(f"run {runs}: exit status {status}")
        if status == 0:
            found = differences(workdir, reference) + [
                f"left over: {p}" for p in leftovers(workdir)]
            print(f"  chain {chain} done: "
                  f"{found or 'identical to the reference'}")
            failures += [f"chain {chain}: {f}" for f in found]
            chain += 1
            workdir = os.path.join(_WORKDIR.value, f"chain{chain}")
    if _DETERMINISM.value:
        plain = [os.path.join(_WORKDIR.value, f"nondeterministic{i}")
                 for i in range(2)]
        for path in plain:
            run(path, deterministic=False)
        print("without op determinism, run vs run:",
              differences(plain[1], plain[0]) or "identical")
        print("without op determinism vs the reference (with it):",
              differences(plain[0], reference) or "identical")
    print(json.dumps({"kills": kills, "runs": runs, "chains": chain,
                      "failures": failures}))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)

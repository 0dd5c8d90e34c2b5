"""Reliability: a run killed (SIGKILL) at any moment resumes to the result of
an uninterrupted one; two runs of one config and seed are identical.

What is guaranteed, and which test shows it: docs/RELIABILITY.md. The long
version of the kill test, with more and purely random kills:
`python -m benchmarks.fault_injection`.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import cost

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_ROUNDS = 2
# A tiny deterministic run: 3 rounds of 40 steps, a checkpoint at step 20.
ARGS = (
    "--config=configs/lenet300_mnist.py:smoke",
    "--config.train.num_steps=40", "--config.eval.every_steps=20",
    "--config.train.checkpoint_every_steps=20",
    "--config.train.steps_per_loop=10",
    f"--config.prune.num_rounds={NUM_ROUNDS}",
    "--config.train.jit_compile=False", "--config.deterministic=True",
)
# Timings are the only fields two identical runs may differ in.
TIMINGS = cost.TIMINGS
_TIMEOUT = 300


def run_binary(mnist_dir, workdir, fault="", kill=None, extra=()):
    """Runs the lottery binary; returns (exit status, stderr).

    Args:
        fault: `KERAS_LOTTERY_FAULT` (see `keras_lottery.base.faults`).
        kill: `(round, seconds)`: SIGKILL the process from outside that
            long after it logs the first training progress of that round.
        extra: more flags, after `ARGS`.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    process = subprocess.Popen(
        [sys.executable, "-m", "binaries.lottery", *ARGS, *extra,
         f"--config.data.dir={mnist_dir}", f"--workdir={workdir}"],
        cwd=_REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines, training = [], threading.Event()
    progress = re.compile(rf"round {kill[0]} of \d+, step \d+/" if kill
                          else "^$")

    def read():
        for line in process.stderr:
            lines.append(line)
            if progress.search(line):
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill is not None:
        deadline = time.monotonic() + _TIMEOUT
        while not training.wait(0.02):
            if process.poll() is not None or time.monotonic() > deadline:
                break
        if training.is_set():
            time.sleep(kill[1])
            process.send_signal(signal.SIGKILL)
    try:
        process.wait(timeout=_TIMEOUT)
    finally:
        process.kill()
        reader.join()
    return process.returncode, "".join(lines)


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def assert_same_results(workdir, reference):
    """Identical masks, metrics (but timings), summary and export."""
    for r in range(NUM_ROUNDS + 1):
        want = files.read_arrays(paths.masks_file(reference, r))
        got = files.read_arrays(paths.masks_file(workdir, r))
        assert sorted(got) == sorted(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        assert without_timings(files.read_json(
            paths.metrics_file(workdir, r))) == without_timings(
            files.read_json(paths.metrics_file(reference, r))), r
    assert without_timings(files.read_json(paths.summary_file(
        workdir))) == without_timings(files.read_json(
            paths.summary_file(reference)))
    exported = [tf.saved_model.load(os.path.join(
        paths.export_dir(w), "lottery", "1")) for w in (workdir, reference)]
    got, want = ([v.numpy() for v in m.variables] for m in exported)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def check_nothing_half_written(workdir, done):
    """Every file under a final name is whole; done rounds never change.

    Args:
        done: `{round: {file: sha256}}` of the rounds seen done so far;
            updated with the rounds done now.
    """
    for folder, _, names in os.walk(workdir):
        for name in names:
            path = os.path.join(folder, name)
            if files.is_temporary(path):
                continue
            if name.endswith(".json"):
                files.read_json(path)  # raises if cut short
            elif name.endswith((".npz", ".keras")):
                with zipfile.ZipFile(path) as archive:
                    assert archive.testzip() is None, path
    for r in range(NUM_ROUNDS + 1):
        if not os.path.exists(paths.metrics_file(workdir, r)):
            assert r not in done, f"round {r} was done and is not now"
            continue
        hashes = {path: _sha256(path) for path in (
            paths.masks_file(workdir, r), paths.model_file(workdir, r),
            paths.metrics_file(workdir, r))}
        assert done.setdefault(r, hashes) == hashes, f"round {r} changed"


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def leftovers(workdir):
    found = []
    for folder, dirs, names in os.walk(workdir):
        found += [os.path.join(folder, n) for n in dirs + names
                  if files.is_temporary(n) or n == "checkpoints"]
    return found


# The reference and the killed runs train with a warmup-then-cosine rate,
# so a resume must also go on at the rate of its step.
SCHEDULE = ("--config.train.schedule=cosine", "--config.train.warmup_steps=10")


@pytest.fixture(scope="module")
def reference(mnist_dir, tmp_path_factory):
    """An uninterrupted run of the binary."""
    workdir = str(tmp_path_factory.mktemp("reference") / "workdir")
    status, log = run_binary(mnist_dir, workdir, extra=SCHEDULE)
    assert status == 0, log[-3000:]
    return workdir


def test_killed_ten_times_ends_as_an_uninterrupted_run(reference, mnist_dir,
                                                       tmp_path):
    # Ten SIGKILLs, each followed by the same command: three from outside,
    # at a random moment in the first half second after a round logs its
    # first progress (inside a step, an evaluation or a write), and seven
    # at the named moments where a crash is likeliest to leave a
    # half-written state (keras_lottery/base/faults.py). The order makes every
    # kill land: each run has work left to do where its kill waits. The
    # rate follows warmup then cosine (`SCHEDULE`): a round resumed from
    # its step-20 checkpoint goes on at the rate of step 20.
    rng = np.random.default_rng(5)
    plan = [
        ("", (0, rng.uniform(0.0, 0.5))),
        ("checkpoint_files", None),    # files written, index not updated
        ("checkpoint_saved", None),
        ("write:model.keras", None),   # temporary complete, not renamed
        ("model_saved", None),         # model.keras there, metrics.json not
        ("pruned", None),              # round 1 pruned, not rewound
        ("", (1, rng.uniform(0.0, 0.5))),
        ("write:metrics.json", None),  # round 1's or round 2's
        ("", (2, rng.uniform(0.0, 0.5))),
        ("write:1", None),             # the SavedModel, before its rename
    ]
    workdir = str(tmp_path / "workdir")
    done = {}
    for fault, delay in plan:
        status, log = run_binary(mnist_dir, workdir, fault, delay,
                                 extra=SCHEDULE)
        assert status == -signal.SIGKILL, (fault, delay, log[-3000:])
        assert "Traceback" not in log
        check_nothing_half_written(workdir, done)
    status, log = run_binary(mnist_dir, workdir, extra=SCHEDULE)
    assert status == 0, log[-3000:]
    assert leftovers(workdir) == []
    check_nothing_half_written(workdir, done)
    assert_same_results(workdir, reference)


def test_two_runs_of_one_config_and_seed_are_identical(reference, mnist_dir,
                                                       tmp_path):
    workdir = str(tmp_path / "again")
    status, log = run_binary(mnist_dir, workdir, extra=SCHEDULE)
    assert status == 0, log[-3000:]
    assert_same_results(workdir, reference)


# The pieces, in process.


def test_fault_points_count_hits(monkeypatch):
    killed = []
    monkeypatch.setattr(faults, "_kill", lambda: killed.append(True))
    monkeypatch.setattr(faults, "_hits", faults.collections.Counter())
    monkeypatch.setenv(faults.ENV, "train@3")
    for _ in range(2):
        faults.point("train")
        faults.point("pruned")
    assert not killed
    faults.point("train")
    assert killed == [True]
    monkeypatch.delenv(faults.ENV)
    faults.point("train")
    assert killed == [True]


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = str(tmp_path / "metrics.json")
    files.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("{\"a\": ")
        raise RuntimeError("killed")
    assert files.read_json(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_remove_stale_clears_temporaries_and_restores_a_moved_folder(
        tmp_path):
    (tmp_path / ".model.keras.tmp-ab12cd.keras").write_bytes(b"half")
    (tmp_path / ".1.tmp-x_y9").mkdir()
    (tmp_path / ".1.tmp-x_y9" / "saved_model.pb").write_bytes(b"half")
    # Killed while replacing folder `2`: the old one was moved aside.
    (tmp_path / ".2.old-q1" / "2").mkdir(parents=True)
    (tmp_path / ".2.old-q1" / "2" / "kept").write_bytes(b"whole")
    (tmp_path / "masks.npz").write_bytes(b"whole")
    removed = files.remove_stale(str(tmp_path))
    assert len(removed) == 3
    assert sorted(os.listdir(tmp_path)) == ["2", "masks.npz"]
    assert (tmp_path / "2" / "kept").read_bytes() == b"whole"


def test_a_workdir_is_held_by_one_process_at_a_time(tmp_path):
    lock = str(tmp_path / "lock")
    with (files.exclusive(lock), pytest.raises(BlockingIOError),
          files.exclusive(lock)):
        pass
    with files.exclusive(lock):  # released when the holder let go
        pass

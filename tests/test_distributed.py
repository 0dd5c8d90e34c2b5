"""Several workers: TF_CONFIG checks, one writer, same results, kills.

The multi-worker tests start real worker processes on 127.0.0.1, on ports
found free when the test runs (docs/DISTRIBUTED.md).
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.engine import distributed
from keras_lottery.lottery import runner

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two rounds of 40 steps, checkpoints every 20: a run of seconds.
_SMOKE = {
    "train.num_steps": 40, "train.steps_per_loop": 20,
    "train.checkpoint_every_steps": 20, "train.jit_compile": False,
    "eval.every_steps": 20, "prune.num_rounds": 1,
    "data.validation_size": 1000,
}


def tf_config(ports, index, job="worker"):
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": job, "index": index}})


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_tf_config_names_the_chief():
    two = {"TF_CONFIG": tf_config([1, 2], 1)}
    assert not distributed.task_from_env("multi_worker_mirrored", two).is_chief
    assert distributed.task_from_env(
        "multi_worker_mirrored", {"TF_CONFIG": tf_config([1, 2], 0)}).is_chief
    with_chief = {"TF_CONFIG": json.dumps({
        "cluster": {"chief": ["a:1"], "worker": ["b:2"]},
        "task": {"type": "worker", "index": 0}})}
    task = distributed.task_from_env("multi_worker_mirrored", with_chief)
    assert not task.is_chief and task.num_workers == 2
    # One-process strategies ignore TF_CONFIG.
    assert distributed.task_from_env("default", two) is None


def test_a_one_process_binary_refuses_a_multi_worker_strategy():
    with pytest.raises(ValueError, match="must not be 'multi_worker_mirrored'"):
        distributed.start("multi_worker_mirrored", multi_worker=False)


def test_bad_timeout_is_refused():
    with pytest.raises(ValueError, match="KERAS_LOTTERY_WORKER_TIMEOUT"):
        distributed.timeout_seconds({"KERAS_LOTTERY_WORKER_TIMEOUT": "0"})


def start_worker(ports, index, workdir, tmp, extra_env=None,
                 extra_args=()):
    """Starts worker `index` of the smoke run in `workdir`."""
    env = {**os.environ, "TF_CONFIG": tf_config(ports, index),
           "TMPDIR": tmp, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": _ROOT}
    env.pop("KERAS_LOTTERY_FAULT", None)
    env.update(extra_env or {})
    data = os.path.join(_ROOT, "..", "shared", "data", "mnist")
    command = [
        sys.executable, "-m", "binaries.lottery",
        "--config=configs/lenet300_mnist.py:smoke",
        f"--config.data.dir={data}",
        "--config.train.strategy=multi_worker_mirrored",
        "--config.export.enabled=False", f"--workdir={workdir}",
        *(f"--config.{k}={v}" for k, v in _SMOKE.items()), *extra_args]
    return subprocess.Popen(command, cwd=_ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def run_workers(workdir, tmp, extra_env=(None, None), extra_args=((), ()),
                timeout=400):
    """Runs two workers to their end; returns their exit codes and stderr."""
    ports = free_ports(2)
    workers = [start_worker(ports, i, workdir, tmp, extra_env[i],
                            extra_args[i])
               for i in range(2)]
    results = []
    for worker in workers:
        try:
            _, stderr = worker.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            raise
        results.append((worker.returncode, stderr))
    return results


@pytest.fixture(scope="module")
def reference(mnist_dir, tmp_path_factory):
    """The smoke run in one process."""
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.export.enabled = False
    config.update_from_flattened_dict(_SMOKE)
    workdir = str(tmp_path_factory.mktemp("one") / "workdir")
    runner.run(config, workdir)
    return workdir


def assert_same_run(workdir, reference):
    for r in range(2):
        want = files.read_arrays(paths.masks_file(reference, r))
        got = files.read_arrays(paths.masks_file(workdir, r))
        assert set(got) == set(want)
        for key in want:
            # Two workers sum gradients in another order than one process:
            # a weight tied at the threshold to the last bits may swap.
            assert got[key].sum() == want[key].sum(), (r, key)
            assert np.count_nonzero(got[key] != want[key]) <= 4, (r, key)
        a = files.read_json(paths.metrics_file(reference, r))["history"]
        b = files.read_json(paths.metrics_file(workdir, r))["history"]
        assert [h["step"] for h in a] == [h["step"] for h in b]
        for x, y in zip(a, b):
            # A worker seeing the whole global batch (no sharding) would
            # double the summed loss.
            for key in ("train_loss", "validation_loss", "test_accuracy"):
                np.testing.assert_allclose(y[key], x[key], rtol=1e-4)
    keys = ("round", "remaining_fraction", "early_stop_step")
    assert ([{k: e[k] for k in keys}
             for e in files.read_json(paths.summary_file(workdir))]
            == [{k: e[k] for k in keys}
                for e in files.read_json(paths.summary_file(reference))])


def error_line(stderr):
    """The binary's one line (TensorFlow may log after it)."""
    lines = [x for x in stderr.splitlines() if x.startswith("lottery: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def written_by_workers(tmp):
    """What is left of the other workers' temporary folders."""
    return glob.glob(os.path.join(tmp, "keras_lottery-*"))


def test_two_workers_match_one_process_and_only_the_chief_writes(
        reference, tmp_path):
    workdir, tmp = str(tmp_path / "workdir"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    for code, stderr in run_workers(workdir, tmp):
        assert code == 0, stderr[-3000:]
    assert_same_run(workdir, reference)
    assert written_by_workers(tmp) == []
    assert not [p for p in glob.glob(os.path.join(workdir, "**"),
                                     recursive=True)
                if files.is_temporary(p)]


def test_a_worker_killed_mid_round_resumes_to_the_same_masks(
        reference, tmp_path):
    workdir, tmp = str(tmp_path / "workdir"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    # Worker 1 dies by SIGKILL after round 1's checkpoint at step 20.
    first = run_workers(workdir, tmp, extra_env=(
        None, {"KERAS_LOTTERY_FAULT": "checkpoint_saved@2"}))
    assert first[1][0] == -signal.SIGKILL, first[1][1][-3000:]
    code, stderr = first[0]
    assert code == 1, stderr[-3000:]
    line = error_line(stderr)
    assert line.startswith("lottery: a worker stopped answering"), line
    assert os.path.exists(paths.metrics_file(workdir, 0))
    assert not os.path.exists(paths.metrics_file(workdir, 1))
    for code, stderr in run_workers(workdir, tmp):
        assert code == 0, stderr[-3000:]
    assert_same_run(workdir, reference)
    assert written_by_workers(tmp) == []


def test_a_worker_that_never_comes_up_is_an_error_after_the_timeout(
        tmp_path):
    workdir, tmp = str(tmp_path / "workdir"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    worker = start_worker(free_ports(2), 0, workdir, tmp,
                          {"KERAS_LOTTERY_WORKER_TIMEOUT": "5"})
    _, stderr = worker.communicate(timeout=120)
    assert worker.returncode != 0
    line = error_line(stderr)
    assert line.startswith("lottery: worker worker:0 could not reach every "
                           "worker"), line
    assert "within 5s" in line
    assert not os.path.exists(workdir)


def test_a_held_workdir_stops_every_worker_with_one_line(tmp_path):
    workdir, tmp = str(tmp_path / "workdir"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    os.makedirs(workdir)
    with files.exclusive(paths.lock_file(workdir)):  # another run
        (chief, chief_err), (other, other_err) = run_workers(workdir, tmp)
    assert chief == 1 and "`workdir` is in use by another process" in (
        error_line(chief_err))
    assert other == 1 and "The chief worker could not claim `workdir`" in (
        error_line(other_err))
    assert sorted(os.listdir(workdir)) == ["lock"]
    assert written_by_workers(tmp) == []


def test_workers_of_different_configs_stop_with_one_line(tmp_path):
    workdir, tmp = str(tmp_path / "workdir"), str(tmp_path / "tmp")
    os.makedirs(tmp)
    results = run_workers(workdir, tmp,
                          extra_args=((), ("--config.seed=1",)))
    for code, stderr in results:
        assert code == 1, stderr[-3000:]
        assert "Every worker must run the same config" in error_line(stderr)
    assert not os.path.exists(workdir)

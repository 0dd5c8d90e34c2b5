"""Several processes, one run: TF_CONFIG, the chief, and who writes where.

`train.strategy="multi_worker_mirrored"` runs one process per worker, each
started with the same command and its own `TF_CONFIG` (docs/DISTRIBUTED.md):

    TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]},
                "task": {"type": "worker", "index": 0}}'

- `start` creates the strategy before any other TensorFlow op (collective
  ops can only be configured then), after checking `TF_CONFIG`, and bounds
  the wait for the other workers (`KERAS_LOTTERY_WORKER_TIMEOUT`, seconds).
- `worker_workdir` gives each worker the folder it writes. The chief (task
  `chief:0`, or `worker:0` when the cluster has no chief) writes the workdir
  and holds its lock. Every other worker runs the same code on a private
  temporary folder that mirrors the workdir as it was when the run started
  (folders copied, files linked), so it takes every decision the chief
  takes (which rounds are done, which checkpoint to resume) and writes its
  own copies of the files (as TensorFlow's multi-worker checkpointing
  guide does), and removes the folder at the end. Every worker must run
  every step: building a model and saving a checkpoint are collective.
- The workers agree, by all-reduce, on the config and on whether each could
  claim its folder, so a mistake stops every worker with one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import tensorflow as tf
from absl import logging
from tensorflow.python.eager import context as tf_context

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.engine import training

# Strategies that run one process per worker and read TF_CONFIG.
MULTI_WORKER = ("multi_worker_mirrored",)
TIMEOUT_VARIABLE = "KERAS_LOTTERY_WORKER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 300
_JOBS = ("chief", "worker")
# Top-level workdir entries a worker's mirror leaves out: the lock, what a
# run never reads back (TensorBoard), and the controls' own workdirs.
_NOT_MIRRORED = (
    os.path.basename(paths.lock_file("")),
    paths.tensorboard_dir("", 0).split(os.sep)[0],
    paths.control_workdir("", paths.CONTROLS[0]).split(os.sep)[0],
)


class ClusterError(ConnectionError):
    """The workers could not start or go on together."""


# What a collective op raises when another worker dies under it.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                      tf.errors.CancelledError,
                      tf.errors.DeadlineExceededError)


def lost_worker_message(error: tf.errors.OpError) -> str:
    """One line for an error of `LOST_WORKER_ERRORS`, for the binaries."""
    # TensorFlow's message starts with "Graph execution error:"; the cause
    # is a later line.
    causes = [" ".join(line.split()) for line in str(error).splitlines()
              if any(word in line for word in _CAUSES)]
    return (f"a worker stopped answering ({type(error).__name__}: "
            f"{causes[0][:200] if causes else _first_line(error)}); the "
            "workdir is intact: rerun the same command on every worker to "
            "resume.")


_CAUSES = ("aborted by", "unhealthy", "Socket closed", "heartbeat",
           "connect")


@dataclasses.dataclass(frozen=True)
class Task:
    """This process's place in a cluster, from `TF_CONFIG`.

    Attributes:
        cluster: job name (`chief`, `worker`) -> its tasks' `host:port`.
        type: this task's job.
        index: this task's index in its job.
    """

    cluster: Mapping[str, tuple[str, ...]]
    type: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.type}:{self.index}"

    @property
    def is_chief(self) -> bool:
        """Whether this task writes the workdir, as tf.distribute decides."""
        if "chief" in self.cluster:
            return self.type == "chief"
        return self.type == "worker" and self.index == 0

    @property
    def num_workers(self) -> int:
        return sum(len(tasks) for tasks in self.cluster.values())


def task_from_env(strategy: str,
                  environ: Mapping[str, str] | None = None) -> Task | None:
    """Reads and checks `TF_CONFIG` for `strategy`; no TensorFlow op runs.

    Args:
        strategy: the `train.strategy` name.
        environ: the environment (default `os.environ`).

    Returns:
        The task, for a multi-worker strategy; None for the others (which
        run in one process and ignore `TF_CONFIG`).

    Raises:
        ValueError: naming the problem, if `TF_CONFIG` is missing, is not
            JSON, or does not name this task in its cluster.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "")
    if strategy not in MULTI_WORKER:
        if text.strip():
            logging.warning("TF_CONFIG is set but train.strategy=%r runs in "
                            "one process: it is ignored.", strategy)
        return None
    if not text.strip():
        raise ValueError(
            f"`TF_CONFIG` must be set for train.strategy={strategy!r}: a "
            "JSON object naming the cluster and this task (see "
            "docs/DISTRIBUTED.md). Received: TF_CONFIG unset")
    shown = " ".join(text.split())[:200]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"`TF_CONFIG` must be JSON ({e.msg} at character {e.pos}). "
            f"Received: TF_CONFIG={shown!r}") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(
            "`TF_CONFIG` must be a JSON object with a \"cluster\" object and "
            f"a \"task\" object. Received: TF_CONFIG={shown!r}")
    jobs = {}
    for job, addresses in cluster.items():
        if job not in _JOBS:
            raise ValueError(
                f"`TF_CONFIG` cluster jobs must be among {', '.join(_JOBS)} "
                f"for {strategy}. Received: job {job!r} in TF_CONFIG="
                f"{shown!r}")
        if (not isinstance(addresses, list) or not addresses
                or not all(_is_address(a) for a in addresses)):
            raise ValueError(
                f"`TF_CONFIG` cluster job {job!r} must list its tasks as "
                f"\"host:port\" strings. Received: {job}={addresses!r}")
        jobs[job] = tuple(addresses)
    if "chief" in jobs and len(jobs["chief"]) != 1:
        raise ValueError(
            "`TF_CONFIG` cluster may have one chief at most. Received: "
            f"chief={list(jobs['chief'])!r}")
    kind, index = task.get("type"), task.get("index", 0)
    if (kind not in jobs or isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(jobs[kind])):
        have = ", ".join(f"{job}: {len(tasks)} task(s)"
                         for job, tasks in jobs.items()) or "no job"
        raise ValueError(
            "`TF_CONFIG` task must be a task of its cluster (" + have
            + f"). Received: task={json.dumps(task)}")
    return Task(jobs, kind, index)


def _is_address(address: Any) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def timeout_seconds(environ: Mapping[str, str] | None = None) -> int:
    """How long a worker waits for the others (`KERAS_LOTTERY_WORKER_TIMEOUT`).

    Raises:
        ValueError: if the variable is set to anything but a positive int.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"`{TIMEOUT_VARIABLE}` must be a positive number of seconds. "
            f"Received: {TIMEOUT_VARIABLE}={text!r}")
    return int(text)


def start(strategy: str, tpu: str = "", *,
          multi_worker: bool = True) -> tf.distribute.Strategy:
    """Creates the run's strategy; call it before any other TensorFlow op.

    A multi-worker strategy configures collective ops, which TensorFlow
    allows only before it starts. The strategy is the one
    `training.make_strategy(strategy, tpu)` returns afterwards.

    Args:
        strategy: the `train.strategy` name.
        tpu: `train.tpu`, for `strategy="tpu"`.
        multi_worker: whether the caller can run as one of several
            workers; if not, a multi-worker strategy is refused.

    Returns:
        The strategy.

    Raises:
        ValueError: for a bad `TF_CONFIG`, or a multi-worker strategy
            where `multi_worker` is False (nothing is started then).
        ClusterError: if the other workers do not all come up within the
            timeout.

    Example:
        strategy = distributed.start(config.train.strategy, config.train.tpu)
    """
    if not multi_worker and strategy in MULTI_WORKER:
        raise ValueError(
            f"`train.strategy` must not be {strategy!r} here: this binary "
            "runs in one process (docs/DISTRIBUTED.md). Received: "
            f"train.strategy={strategy!r}")
    task = task_from_env(strategy)
    if task is None:
        return training.make_strategy(strategy, tpu)
    timeout = timeout_seconds()
    leader = "chief" if "chief" in task.cluster else "worker"
    # What MultiWorkerMirroredStrategy configures itself, with bounds: a
    # worker that never comes up, or dies, is an error, not a hang.
    tf_context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{leader}/replica:0/task:0",
        cluster_register_timeout_in_ms=timeout * 1000,
        heartbeat_timeout_in_ms=min(timeout, 30) * 1000,
        shutdown_barrier_timeout_in_ms=timeout * 1000)
    logging.info("Worker %s of %d: waiting up to %ds for the others.",
                 task.name, task.num_workers, timeout)
    message = (
        f"worker {task.name} could not reach every worker of "
        f"{json.dumps({k: list(v) for k, v in task.cluster.items()})} within "
        f"{timeout}s ({TIMEOUT_VARIABLE}); start "
        "the same command with its TF_CONFIG on each of them")
    program = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    # TensorFlow waits for a missing worker without end, holding the
    # interpreter: a watchdog process ends this one unless told in time.
    with subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()),
             str(timeout), f"{program}: {message}"],
            stdin=subprocess.PIPE) as watchdog:
        try:
            made = training.make_strategy(strategy, tpu)
            _all_sum(made, 1.0)  # returns once every worker is up
        except tf.errors.OpError as e:
            raise ClusterError(f"{message} ({type(e).__name__}: "
                               f"{_first_line(e)})") from None
        finally:
            watchdog.stdin.close()  # the watchdog's signal to stand down
    return made


# Kills process argv[1] with SIGKILL after argv[2] seconds, telling why
# (argv[3]), unless its stdin closes first (the process is through, or
# dead).
_WATCHDOG = """
import os, select, signal, sys
ready, _, _ = select.select([sys.stdin], [], [], float(sys.argv[2]))
if not ready:
    sys.stderr.write(sys.argv[3] + "\\n")
    sys.stderr.flush()
    os.kill(int(sys.argv[1]), signal.SIGKILL)
"""


def start_for_workdir(workdir: str) -> tf.distribute.Strategy | None:
    """`start` with the strategy of the run in `workdir`, if it has one.

    For binaries that work on a lottery run's workdir (its config.json).

    Raises:
        ValueError: for a damaged config.json or a bad `TF_CONFIG`.
        ClusterError: as `start`.
    """
    path = paths.config_file(workdir)
    if not os.path.exists(path):
        return None  # the binary tells the user
    train = files.read_json(path).get("train", {})
    return start(train.get("strategy", "default"), train.get("tpu", ""))


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """The number of worker processes `strategy` runs on."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(spec.get(job, ())) for job in _JOBS)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the workdir (always, in one process)."""
    return strategy.extended.should_checkpoint


@contextlib.contextmanager
def worker_workdir(
        strategy: tf.distribute.Strategy, workdir: str, config: Any,
        hold: Callable[[str], contextlib.AbstractContextManager[Any]],
) -> Iterator[str]:
    """Yields the folder this worker writes; `hold` claims it.

    In one process: `workdir`. With several workers, the chief yields
    `workdir`, the others a private temporary mirror of it (see the module
    docstring), removed on exit.

    Args:
        strategy: the run's strategy.
        workdir: the run's workdir, one folder every worker sees.
        config: the run's config (a ConfigDict); every worker must run the
            same one (`data.dir` aside: each machine has its own copy).
        hold: `folder -> context manager` that locks and claims a folder
            (checks or writes its config.json) for as long as it is held.

    Raises:
        ValueError: if the workers' configs differ, or a worker could not
            claim its folder (that worker tells why; the others say so).
    """
    if num_workers(strategy) <= 1:
        with hold(workdir):
            yield workdir
        return
    name = _task_name(strategy)
    wanted = json.loads(config.to_json())
    wanted.get("data", {}).pop("dir", None)
    digest = _digest(json.dumps(wanted, sort_keys=True))
    total = _all_sum(strategy, digest)
    if not _all_ok(strategy,
                   total == strategy.num_replicas_in_sync * digest):
        raise ValueError(
            "Every worker must run the same config (data.dir aside); "
            f"worker {name}'s differs from another's: compare their command "
            f"lines. Received: workdir={workdir!r}")
    chief = is_chief(strategy)
    with contextlib.ExitStack() as stack:
        # First the chief claims the workdir, then the others their mirror
        # of it; each time every worker learns whether all went well.
        if chief:
            _enter_or_tell(strategy, stack, lambda: hold(workdir))
        if not _all_ok(strategy, True):
            raise ValueError(
                "The chief worker could not claim `workdir`; its error line "
                f"says why. Received: workdir={workdir!r}")
        own = workdir
        if not chief:
            own = _enter_or_tell(strategy, stack,
                                 lambda: _mirror(workdir, name))
            _enter_or_tell(strategy, stack, lambda: hold(own))
        if not _all_ok(strategy, True):
            raise ValueError(
                "Another worker could not start; its error line says why. "
                f"Received: workdir={workdir!r}")
        yield own
        # Ends together: a worker that exits while another still works
        # reads, to that one, as a worker that died.
        _all_sum(strategy, 0.0)


def _enter_or_tell(
        strategy: tf.distribute.Strategy, stack: contextlib.ExitStack,
        make: Callable[[], contextlib.AbstractContextManager[Any]]) -> Any:
    """Enters `make()` on `stack`; if that raises, tells the other workers
    (the failing side of their next `_all_ok`), then raises."""
    try:
        return stack.enter_context(make())
    except BaseException:
        _all_ok(strategy, False)
        raise


@contextlib.contextmanager
def _mirror(workdir: str, task_name: str) -> Iterator[str]:
    """A private temporary mirror of `workdir`: folders copied, files linked.

    It lives in the system's temporary folder, never in `workdir`; a
    mirror that a killed worker left is removed by the next one.
    """
    prefix = (f"keras_lottery-{_digest(os.path.abspath(workdir)):x}-"
              f"{task_name.replace(':', '')}-")
    for stale in glob.glob(os.path.join(tempfile.gettempdir(),
                                        prefix + "*")):
        lock = stale + ".lock"
        try:
            with files.exclusive(lock):
                shutil.rmtree(stale, ignore_errors=True)
            os.remove(lock)
        except (BlockingIOError, FileNotFoundError):
            continue  # in use by a live worker
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        with files.exclusive(folder + ".lock"):
            source = os.path.abspath(workdir)
            for root, dirs, names in os.walk(source):
                relative = os.path.relpath(root, source)
                top = relative == "."
                dirs[:] = [d for d in dirs if not files.is_temporary(d)
                           and not (top and d in _NOT_MIRRORED)]
                target = os.path.join(folder, relative)
                os.makedirs(target, exist_ok=True)
                for entry in names:
                    if files.is_temporary(entry) or (
                            top and entry in _NOT_MIRRORED):
                        continue
                    # A link: the worker replaces or removes it, never
                    # writes through it (every write is a rename).
                    os.symlink(os.path.join(root, entry),
                               os.path.join(target, entry))
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(folder + ".lock")


def _task_name(strategy: tf.distribute.Strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type}:{resolver.task_id}"


def _digest(text: str) -> int:
    """A 20-bit hash of `text`: sums of a few stay exact in float64."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % (1 << 20)


def _all_sum(strategy: tf.distribute.Strategy, value: float) -> float:
    """Sums `value` over every replica of every worker (a collective)."""
    per_replica = strategy.run(
        lambda: tf.constant(float(value), tf.float64))
    return float(strategy.reduce("SUM", per_replica, axis=None))


def _all_ok(strategy: tf.distribute.Strategy, ok: bool) -> bool:
    """Whether `ok` holds on every worker: one answer for all of them."""
    return _all_sum(strategy, 0.0 if ok else 1.0) == 0.0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return " ".join(lines[0].split())[:200] if lines else ""

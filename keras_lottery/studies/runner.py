"""Runs a study's grid on Ray: one task per run, in dependency order.

`connect(address)` starts an embedded Ray on this machine (no address; its
processes bind to 127.0.0.1) or joins a running cluster (`HOST:PORT` of
its head, `ray start --head`), after checking within `wait_seconds` that
something answers there. `run_study(study)` then hands each run that is
needed (`grid.Schedule`) to a Ray task as soon as the runs it reads
allow, as many at once as the cluster's CPUs hold runs of `threads`
threads each, in the study's order.

`run_passes(declare)` runs a study whose later runs are declared only
once earlier runs are recorded: it declares the study again after each
pass.

A task executes the run's steps: each `Command` a subprocess of this
Python in the study's folder (a cluster shares it, and the workdirs and
records, on shared storage), with `threads` CPU threads and its output
appended to LOGS/NAME.log; the subprocess dies with the task's worker
(PR_SET_PDEATHSIG), so a worker lost with its node leaves no process
behind holding the run's workdir. Ray starts a task lost with its node
again elsewhere (`max_retries`), and the run resumes from its last
checkpoint, as after any kill. A run whose command fails is not retried:
it is reported, the runs that read it are skipped, and a rerun of the
study resumes it.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from keras_lottery.studies import grid
from keras_lottery.studies import progress

# Environment of each run's process: its CPU threads; on a GPU, the memory
# it needs rather than all of it (several runs share one).
_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                     "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass
class Outcome:
    """What `run_study` did: the runs it ran, those that failed, those
    skipped because a run they read failed, and the report's path."""
    ran: list[str]
    failed: list[str]
    skipped: list[str]
    report: str | None
    seconds: float


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that give a TensorFlow, PyTorch or NumPy
    process `threads` CPU threads."""
    return {key: str(threads) for key in _THREAD_VARIABLES}


def check_address(address: str, wait_seconds: float = 10.0) -> None:
    """Raises ValueError unless something answers at `HOST:PORT` within
    `wait_seconds` (Ray's own wait for a cluster that is not there is
    minutes long)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("`--address` must be HOST:PORT of a Ray head "
                         f"(ray start --head). Received: --address={address}")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"No Ray answers at `--address` within {wait_seconds:g} "
                    f"s ({e}). Received: --address={address}") from None
            time.sleep(0.5)


def connect(address: str | None = None, num_cpus: int | None = None,
            wait_seconds: float = 10.0) -> None:
    """Starts an embedded Ray on 127.0.0.1 (`address` None) or joins the
    cluster whose head is at `address`."""
    import ray  # noqa: PLC0415  (Ray only where a study runs)

    if ray.is_initialized():
        return
    common = {"include_dashboard": False, "log_to_driver": False,
              "configure_logging": False}
    if address:
        check_address(address, wait_seconds)
        ray.init(address=address, **common)
    else:
        # "local": a new Ray of its own, never a cluster that `ray start`
        # left on this machine.
        ray.init(address="local", num_cpus=num_cpus,
                 _node_ip_address="127.0.0.1", **common)


def execute(name: str, steps: tuple, logs: str, folder: str,
            threads: int) -> dict:
    """A run's steps in turn (the body of its Ray task); returns whether
    they all succeeded, their seconds and the node that ran them."""
    os.makedirs(logs, exist_ok=True)
    log = os.path.join(logs, f"{name}.log")
    with open(node_file(logs, name), "w", encoding="utf-8") as f:
        f.write(socket.gethostname())  # where it runs, for the display
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "TF_FORCE_GPU_ALLOW_GROWTH": "true", **thread_env(threads)}
    start = time.time()
    ok = True
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} {name} on "
                  f"{socket.gethostname()}\n")
        out.flush()
        for step in steps:
            if isinstance(step, grid.Call):
                try:
                    step.function(*step.args)
                except Exception as e:  # noqa: BLE001 - the run's failure
                    out.write(f"FAILED {step.function.__name__}: "
                              f"{type(e).__name__}: {e}\n")
                    ok = False
            else:
                code = subprocess.call(
                    [sys.executable, *step.args], stdout=out,
                    stderr=subprocess.STDOUT, env=env, cwd=folder,
                    preexec_fn=_die_with_parent)
                if code:
                    out.write(f"FAILED with exit status {code}\n")
                    ok = False
            out.flush()
            if not ok:
                break
    return {"ok": ok, "seconds": time.time() - start,
            "node": socket.gethostname(), "log": log}


def run_study(study: grid.Study, threads: int = 1, retries: int = 3,
              poll_seconds: float = 5.0,
              display: progress.Display | None = None,
              on_start: Callable[[grid.Run], None] | None = None) -> Outcome:
    """Runs the needed runs of `study` on the connected Ray (`connect`),
    then its report when every run succeeded (Ray is not needed when
    every run is recorded).

    Args:
        study: the grid.
        threads: CPU threads (Ray CPUs) of each run.
        retries: how often Ray starts a run lost with its node again.
        poll_seconds: how often a run waiting for files (`Run.ready`) and
            the display are looked at.
        display: where progress goes (default: `progress.Display()`).
        on_start: called with each run as it is handed to Ray (tests).
    """
    display = display or progress.Display()
    schedule = grid.Schedule(study.runs)
    display.begin(study.name, schedule.total,
                  {run.name: run.cost for run in schedule.todo})
    if schedule.total:
        import ray  # noqa: PLC0415  (not for a finished study)

        task = ray.remote(execute).options(num_cpus=threads,
                                           max_retries=retries)
    folder = os.getcwd()
    running: dict = {}
    ran: list[str] = []
    start = time.time()
    while schedule.todo or running:
        capacity = _capacity(threads)
        for run in schedule.next_runs(max(0, capacity - len(running))):
            if on_start:
                on_start(run)
            if os.path.exists(node_file(study.logs, run.name)):
                os.remove(node_file(study.logs, run.name))  # an old run's
            running[task.remote(run.name, run.steps, study.logs, folder,
                                threads)] = (run, time.time())
            display.started(run.name)
        for run in schedule.skipped[len(display.skipped):]:
            display.skip(run.name)
        if not running:
            continue
        ended, _ = ray.wait(list(running), num_returns=1,
                            timeout=poll_seconds)
        for ref in ended:
            run, began = running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as e:
                result = {"ok": False, "seconds": time.time() - began,
                          "node": "?", "error": f"{type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]}"}
            schedule.ended(run, result["ok"])
            ran.append(run.name)
            display.ended(run.name, result, len(running), capacity)
        display.placed(_placed(study.logs, [r for r, _ in running.values()]))
        display.tick(len(running), len(schedule.todo), capacity)
    for run in schedule.skipped[len(display.skipped):]:
        display.skip(run.name)
    failed = [r.name for r in schedule.failed]
    report = None
    if not failed and not schedule.skipped and study.report:
        # From the records: again only when they changed, or it is gone.
        code = 0 if not ran and os.path.exists(study.report_path) else (
            subprocess.call([sys.executable, *study.report.args],
                            cwd=folder))
        report = study.report_path if code == 0 else None
        if code:
            failed.append("report")
    outcome = Outcome(ran, failed, [r.name for r in schedule.skipped],
                      report, time.time() - start)
    display.finish(outcome.failed, outcome.skipped, report, study.logs)
    return outcome


def run_passes(declare: Callable[[], grid.Study], threads: int = 1,
               retries: int = 3) -> Outcome:
    """Runs the study `declare()` returns (`run_study`), then declares it
    again and runs what is new, until a pass fails or adds no run: a
    study may declare a run only once the records of earlier runs exist
    (the transformer study's late-rewind cell, once its instability
    analysis picked a rewind step), and one command runs it all."""
    ran: list[str] = []
    seconds = 0.0
    study = declare()
    while True:
        outcome = run_study(study, threads=threads, retries=retries)
        ran += outcome.ran
        seconds += outcome.seconds
        if not (outcome.failed or outcome.skipped):
            study = declare()
            if {run.name for run in grid.needed(study.runs)} - set(ran):
                continue
        return dataclasses.replace(outcome, ran=ran, seconds=seconds)


def node_file(logs: str, name: str) -> str:
    """The file that names the node a run's task runs on (LOGS/NAME.node,
    written as the task starts: on a cluster, on shared storage)."""
    return os.path.join(logs, f"{name}.node")


def _placed(logs: str, runs: list[grid.Run]) -> collections.Counter:
    """How many of these runs run on each node, of those whose task has
    started (a task queued in Ray has no node yet)."""
    nodes: collections.Counter = collections.Counter()
    for run in runs:
        try:
            with open(node_file(logs, run.name), encoding="utf-8") as f:
                nodes[f.read().strip() or "?"] += 1
        except FileNotFoundError:
            pass
    return nodes


def _capacity(threads: int) -> int:
    """How many runs of `threads` CPUs the cluster holds at once (at least
    one: Ray queues it until a node joins)."""
    import ray  # noqa: PLC0415

    return max(1, int(ray.cluster_resources().get("CPU", 0) // threads))


def _die_with_parent() -> None:
    """In the child: SIGKILL when the process that started it dies."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the child may outlive a lost worker
        pass

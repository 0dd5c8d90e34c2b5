"""Runs a study's commands as logged subprocesses, several at a time.

The studies (benchmarks/structure_study.py, benchmarks/early_study.py) run
many lottery runs; each is a subprocess of the project's binaries, so a
crash or a kill stops one run, and rerunning the study resumes it. On a
small machine several single-thread processes finish sooner than one
after another (docs/RESULTS.md): `Runner` gives each process `threads`
CPU threads, lets several share one GPU (memory growth), and writes each
command's output to LOGS/NAME.log.

`Job` and `run_jobs` schedule steps that read each other's outputs: a
job starts once the jobs it reads from have ended, or once what it reads
of them exists (`Job.alongside` and `Job.ready`: a control at round 5 of
a run still training round 6), so no process waits idle, and a recorded
job is skipped unless a job that reads its (lost) workdir still has to
run.

Example:
    runner = jobs.Runner("/tmp/study/logs", threads=1)
    dense = jobs.Job("dense_seed0", lambda: runner.step(
        "dense_seed0", runner.python("binaries.lottery", ...)), None)
    jobs.run_jobs([dense, ...], jobs_at_once=2)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that give a TensorFlow, PyTorch or NumPy
    process `threads` CPU threads."""
    return {key: str(threads) for key in (
        "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
        "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


class Runner:
    """Runs commands with their output to `logs`/NAME.log.

    Args:
        logs: the folder of the logs (created by the first step).
        threads: CPU threads of each process.
    """

    def __init__(self, logs: str, threads: int):
        self.logs = logs
        self.threads = threads

    @staticmethod
    def python(module: str, *args: str) -> list[str]:
        """The command running `python -m module args`."""
        return [sys.executable, "-m", module, *args]

    def step(self, name: str, command: list[str]) -> bool:
        """Runs `command`; prints its start, end or failure (with the
        log's last lines); returns whether it exited 0."""
        log = os.path.join(self.logs, f"{name}.log")
        # Several runs share one GPU where there is one: each takes the
        # memory it needs, not all of it.
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_FORCE_GPU_ALLOW_GROWTH": "true",
               **thread_env(self.threads)}
        os.makedirs(self.logs, exist_ok=True)
        start = time.time()
        print(f"==> {time.strftime('%H:%M:%S')} {name}", flush=True)
        with open(log, "w") as out:
            code = subprocess.call(command, stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
        took = (time.time() - start) / 60
        if code:
            with open(log) as f:
                tail = f.readlines()[-10:]
            print(f"FAILED {name} (exit {code}, {took:.1f} min); log {log}:\n"
                  + "".join(tail), flush=True)
            return False
        print(f"<== {time.strftime('%H:%M:%S')} {name} ({took:.1f} min)",
              flush=True)
        return True


@dataclasses.dataclass
class Job:
    """One step of the study, run after the jobs in `after`.

    It is needed when it is not `recorded` (None: it records nothing of
    its own, like a shared dense round), or when a job that reads its
    workdir is needed and the workdir no longer holds it (`has_workdir`).
    The jobs in `alongside` it reads from too, but it may run while they
    do, as soon as `ready()` holds (what it reads of them exists), and
    also after one of them failed; until then they count as `after`.
    """
    name: str
    run: Callable[[], bool]
    recorded: Callable[[], bool] | None
    has_workdir: Callable[[], bool] = lambda: True
    after: tuple[Job, ...] = ()
    alongside: tuple[Job, ...] = ()
    ready: Callable[[], bool] = lambda: False


def needed(jobs: Sequence[Job]) -> list[Job]:
    """The jobs that have to run, in order: those not recorded, and those
    whose workdir a job that has to run reads and no longer finds."""
    dependents: dict[int, list[Job]] = {}
    for job in jobs:
        for first in (*job.after, *job.alongside):
            dependents.setdefault(id(first), []).append(job)

    def is_needed(job: Job) -> bool:
        if job.recorded is not None and not job.recorded():
            return True
        return not job.has_workdir() and any(
            is_needed(d) for d in dependents.get(id(job), ()))

    return [job for job in jobs if is_needed(job)]


def run_jobs(jobs: Sequence[Job], jobs_at_once: int,
             poll_seconds: float = 30.0) -> list[str]:
    """Runs the jobs needed, in order, `jobs_at_once` at a time, each
    once those in its `after` have ended, and those in its `alongside`
    too unless it is `ready` (the jobs a job reads from come before it in
    `jobs`); returns the names of those that failed or could not start.
    While a job waits on `ready`, it is asked again every `poll_seconds`.
    """
    todo = needed(jobs)
    pending = {id(job) for job in todo}
    outcome: dict[int, bool] = {}  # jobs not in todo are done
    running: dict[concurrent.futures.Future, Job] = {}
    with concurrent.futures.ThreadPoolExecutor(jobs_at_once) as pool:
        while todo or running:
            # The first jobs, in order, whose runs to read from ended, or
            # that can read what they need of them already.
            for job in list(todo):
                if len(running) == jobs_at_once:
                    break
                if any(id(f) in pending for f in job.after):
                    continue
                ready = bool(job.alongside) and job.ready()
                if not ready and any(id(f) in pending for f in job.alongside):
                    continue
                todo.remove(job)
                if all(outcome.get(id(f), True) for f in job.after) and (
                        ready or all(outcome.get(id(f), True)
                                     for f in job.alongside)):
                    running[pool.submit(_execute, job)] = job
                else:
                    print(f"skipped {job.name}: a run it needs failed",
                          flush=True)
                    pending.discard(id(job))
                    outcome[id(job)] = False
            if not running:
                continue
            polling = any(job.alongside for job in todo)
            ended, _ = concurrent.futures.wait(
                running, timeout=poll_seconds if polling else None,
                return_when=concurrent.futures.FIRST_COMPLETED)
            for future in ended:
                job = running.pop(future)
                pending.discard(id(job))
                outcome[id(job)] = future.result()
    return [job.name for job in jobs
            if outcome.get(id(job)) is False]


def rounds_done(workdir: str, rounds: Iterable[int]) -> bool:
    """Whether a lottery workdir holds these finished rounds (each round's
    metrics.json, written last; `keras_lottery.base.paths` without importing
    TensorFlow)."""
    return all(os.path.exists(os.path.join(
        workdir, f"round_{r:02d}", "metrics.json")) for r in rounds)


def recorded(record: str, controls: Sequence[str] = ()) -> bool:
    """Whether a run's record, and that of each of these controls, is
    whole: its summary.json, which a record writes last."""
    return all(os.path.exists(os.path.join(folder, "summary.json"))
               for folder in [record, *(os.path.join(record, "controls", c)
                                        for c in controls)])


def _execute(job: Job) -> bool:
    try:
        return job.run()
    except Exception as e:  # noqa: BLE001 - one job's failure
        print(f"FAILED {job.name}: {type(e).__name__}: {e}", flush=True)
        return False

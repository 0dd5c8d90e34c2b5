"""Runs a study's commands as logged subprocesses, several at a time.

The studies (benchmarks/structure_study.py, benchmarks/early_study.py) run
many lottery runs; each is a subprocess of the project's binaries, so a
crash or a kill stops one run, and rerunning the study resumes it. On a
small machine several single-thread processes finish sooner than one
after another (docs/RESULTS.md): `Runner` gives each process `threads`
CPU threads, lets several share one GPU (memory growth), and writes each
command's output to LOGS/NAME.log.

Example:
    runner = jobs.Runner("/tmp/study/logs", threads=1)
    runner.step("dense_seed0", runner.python("binaries.lottery", ...))
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


class Runner:
    """Runs commands with their output to `logs`/NAME.log.

    Args:
        logs: the folder of the logs (created).
        threads: CPU threads of each process.
    """

    def __init__(self, logs: str, threads: int):
        self.logs = logs
        self.threads = threads
        os.makedirs(logs, exist_ok=True)

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
               **{key: str(self.threads) for key in (
                   "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                   "OMP_NUM_THREADS")}}
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

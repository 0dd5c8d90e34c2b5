r"""The structure study (docs/STRUCTURE.md): which structure keeps winning
tickets, and which criterion finds them.

Every cell is one lottery run (binaries.lottery) of one granularity and one
criterion for one seed, with its controls (binaries.controls) at a few
rounds. All cells of one seed start from the same dense round 0: it is
trained once (`dense` in the workdirs) and copied into each cell, as
benchmarks/reproduce_lenet300.sh does for its one-shot runs.

  python -m benchmarks.structure_study --part=lenet            # the study
  python -m benchmarks.structure_study --part=lenet --smoke    # minutes
  python -m benchmarks.structure_study --part=lenet --cells=neuron_apoz \
      --seeds=0

Each finished run is *recorded* into --records (committed, small: the
config, summary, per-round metrics without the training history, the unit
masks, and what `keras_lottery.shrink` makes of each round's ticket:
parameter count, units per layer and the shrunk model's Keras config, from
which benchmarks/structure_report.py measures latency). A rerun skips what
is recorded and resumes the rest from --workdirs, which are big and not
committed: a run cut off by the end of a session restarts from its last
finished round if its workdir is still there, from scratch otherwise.

Runs go JOBS at a time, each process on THREADS CPU threads (one per core:
two single-thread processes use 2 cores best, docs/RESULTS.md). Logs:
WORKDIRS/logs/NAME.log. Exits 1 naming the failed runs; rerun to resume.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
import threading
import time

from absl import app
from absl import flags

from benchmarks import common
from benchmarks import jobs
from benchmarks.structure_cells import PARTS
from benchmarks.structure_cells import Cell

_PART = flags.DEFINE_enum("part", "lenet", list(PARTS),
                          "Which network's cells.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
_CELLS = flags.DEFINE_list("cells", [], "Only these cells, in this order "
                           "(default: all, in the study's order).")
_JOBS = flags.DEFINE_integer("jobs", 2, "Runs at once.")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "CPU threads per run (0: cores / jobs, at least 1).")
_WORKDIRS = flags.DEFINE_string("workdirs", "workdirs/structure",
                                "Where the runs go (not committed).")
_RECORDS = flags.DEFINE_string(
    "records", "docs/results_structure/runs",
    "Where finished runs are recorded (committed).")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
_SMOKE = flags.DEFINE_bool(
    "smoke", False, "Smoke configs and at most 3 rounds: the pipeline in "
    "minutes. Records go under WORKDIRS/records unless --records is given.")


_SMOKE_ROUNDS = 3


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config, cells, flags_ = PARTS[_PART.value]
    known = [cell.name for cell in cells]
    unknown = [name for name in _CELLS.value if name not in known]
    if unknown:
        sys.exit(f"--cells names unknown cells: {', '.join(unknown)} "
                 f"(known for --part={_PART.value}: {', '.join(known)})")
    seeds = _check_seeds(_SEEDS.value)
    if _JOBS.value < 1:
        sys.exit(f"--jobs must be at least 1. Received: --jobs={_JOBS.value}")
    if _CELLS.value:  # in the order given
        by_name = {cell.name: cell for cell in cells}
        cells = [by_name[name] for name in dict.fromkeys(_CELLS.value)]
    workdirs = os.path.join(_WORKDIRS.value, _PART.value)
    records = _RECORDS.value
    if _SMOKE.value:
        config += ":smoke"
        flags_ = []
        cells = [dataclasses.replace(
            cell, num_rounds=min(cell.num_rounds, _SMOKE_ROUNDS),
            controls=tuple(r for r in cell.controls if r <= _SMOKE_ROUNDS)
            or cell.controls[:0]) for cell in cells]
        if not flags.FLAGS["records"].present:
            records = os.path.join(_WORKDIRS.value, "records")
    study = Study(config, flags_, workdirs,
                  os.path.join(records, _PART.value), _DATA.value,
                  _THREADS.value or max(1, os.cpu_count() // _JOBS.value))
    print(f"{_PART.value}: {len(cells)} cells x seeds {seeds}, "
          f"{_JOBS.value} at a time, {study.threads} thread(s) each; "
          f"records in {study.records}", flush=True)
    start = time.time()
    failed = study.run(cells, seeds, _JOBS.value)
    print(f"wall time {(time.time() - start) / 60:.1f} min", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}; logs in {study.logs}. "
                 "Rerun to resume.")


def _check_seeds(values: list[str]) -> list[int]:
    try:
        seeds = [int(v) for v in values]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        sys.exit("--seeds must be non-negative integers. Received: "
                 f"--seeds={','.join(values)}")
    return seeds


class Study:
    """Runs cells, recording each finished run."""

    def __init__(self, config: str, config_flags: list[str], workdirs: str,
                 records: str, data_dir: str, threads: int):
        self.config = config
        self.config_flags = config_flags
        self.workdirs = workdirs
        self.records = records
        self.data_dir = data_dir
        self.threads = threads
        self.logs = os.path.join(workdirs, "logs")
        runner = jobs.Runner(self.logs, threads)
        self.step, self.python = runner.step, runner.python
        self._dense = {}  # seed -> threading.Event, set once round 0 exists

    def run(self, cells, seeds, jobs) -> list[str]:
        """Runs the dense round of each seed, then every cell; returns the
        names of the runs that failed."""
        failed = []
        todo = [(cell, seed) for seed in seeds for cell in cells
                if not self.is_recorded(cell, seed)]
        for seed in seeds:
            self._dense[seed] = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            needed = sorted({seed for _, seed in todo})
            futures = {pool.submit(self.dense, seed): f"dense_seed{seed}"
                       for seed in needed}
            futures.update({pool.submit(self.cell, cell, seed):
                            f"{cell.name}_seed{seed}" for cell, seed in todo})
            for future in concurrent.futures.as_completed(futures):
                if not future.result():
                    failed.append(futures[future])
        return failed

    def dense_dir(self, seed: int) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", "dense")

    def workdir(self, cell: Cell, seed: int) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", cell.name)

    def record_dir(self, cell: Cell, seed: int) -> str:
        return os.path.join(self.records, cell.name, f"seed{seed}")

    def is_recorded(self, cell: Cell, seed: int) -> bool:
        record = self.record_dir(cell, seed)
        return os.path.exists(os.path.join(record, "summary.json")) and all(
            os.path.exists(os.path.join(record, "controls", control,
                                        "summary.json"))
            for control in _controls(cell))

    def dense(self, seed: int) -> bool:
        try:
            return self.step(f"dense_seed{seed}", self.lottery_command(
                self.dense_dir(seed), seed, {}, 0))
        finally:
            self._dense[seed].set()

    def cell(self, cell: Cell, seed: int) -> bool:
        self._dense[seed].wait()
        name = f"{cell.name}_seed{seed}"
        workdir = self.workdir(cell, seed)
        record = self.record_dir(cell, seed)
        if not os.path.exists(os.path.join(self.dense_dir(seed), "round_00",
                                           "metrics.json")):
            print(f"skipped {name}: its dense round failed", flush=True)
            return False
        from keras_lottery import files  # TensorFlow: only where needed

        files.copy_rounds(self.dense_dir(seed), workdir, [0])
        missing = [control for control in _controls(cell)
                   if not os.path.exists(os.path.join(
                       record, "controls", control, "summary.json"))]
        # Controls need the run's workdir: a recorded run whose workdir
        # went with an earlier session trains again for them.
        needed = not os.path.exists(os.path.join(record, "summary.json")) or (
            missing and not os.path.exists(
                os.path.join(workdir, "summary.json")))
        if needed and not (
                self.step(name, self.lottery_command(
                    workdir, seed, cell.prune, cell.num_rounds))
                and self.step(f"{name}_record", self.python(
                    "benchmarks.structure_record", f"--workdir={workdir}",
                    f"--record={record}"))):
            return False
        for control in missing:
            rounds = ",".join(map(str, cell.controls))
            if not (self.step(f"{name}_{control}", self.python(
                    "binaries.controls", f"--workdir={workdir}",
                    f"--control={control}", f"--rounds={rounds}"))
                    and self.step(f"{name}_{control}_record", self.python(
                        "benchmarks.structure_record", f"--workdir={workdir}",
                        f"--record={record}", f"--control={control}"))):
                return False
        return True

    def lottery_command(self, workdir: str, seed: int, prune: dict,
                        num_rounds: int) -> list[str]:
        return self.python(
            "binaries.lottery", f"--config={self.config}",
            f"--config.data.dir={self.data_dir}", f"--config.seed={seed}",
            "--config.eval.test_at=best", "--config.export.enabled=false",
            *self.config_flags,
            *[f"--config.prune.{field}={value}"
              for field, value in prune.items()],
            f"--config.prune.num_rounds={num_rounds}", f"--workdir={workdir}")


def _controls(cell: Cell) -> tuple[str, ...]:
    return ("random_reinit", "random_prune") if cell.controls else ()


if __name__ == "__main__":
    app.run(main)

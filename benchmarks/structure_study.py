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
  python -m benchmarks.structure_study --part=conv2 --dry_run  # what is left

Each finished run is *recorded* into --records (committed, small: the
config, summary, per-round metrics without the training history, the unit
masks, and what `keras_lottery.shrink` makes of each round's ticket:
parameter count, units per layer and the shrunk model's Keras config, from
which benchmarks/structure_report.py measures latency). A rerun skips what
is recorded and resumes the rest from --workdirs, which are big and not
committed: a run cut off by the end of a session restarts from its last
finished round if its workdir is still there, from scratch otherwise.

Runs go JOBS at a time, each process on THREADS CPU threads (one per core:
two single-thread processes use 2 cores best, docs/RESULTS.md). A control
round starts as soon as the cell's run has trained that round, in the next
free process (benchmarks/structure_plan.py), so with --jobs=2 a cell and
its controls end close together: what a session's end cuts off is one
round, not the controls of a recorded run. Logs: WORKDIRS/logs/NAME.log.
Exits 1 naming the failed runs; rerun to resume.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from absl import app
from absl import flags

from benchmarks import common
from benchmarks import jobs
from benchmarks.structure_cells import PARTS
from benchmarks.structure_plan import Study

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
_DRY_RUN = flags.DEFINE_bool(
    "dry_run", False, "Print the runs still to do, in the order they "
    "start, and exit (nothing is written).")
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
    if _DRY_RUN.value:
        todo = jobs.needed(study.plan(cells, seeds))
        print("\n".join(job.name for job in todo) or "nothing to run: "
              "every run is recorded")
        return
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


if __name__ == "__main__":
    app.run(main)

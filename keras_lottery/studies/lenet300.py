"""Frankle & Carbin's LeNet-300-100 experiment (issue 4, docs/RESULTS.md).

For each seed (default 0, 1, 2):

    lottery_seedS        the lottery run, configs/lenet300_mnist.py: rounds
                         0 to 18 of 50,000 iterations
    oneshot_seedS        one-shot pruning of that run's dense round 0 (copied
                         in once it exists) to the sparsities of ROUNDS
                         (3, 7, 12, 15, 18)
    random_reinit_seedS, random_prune_seedS
                         both controls at ROUNDS, once the run ended

and `tfmot`: tensorflow-model-optimization's gradual pruning
(benchmarks/tfmot_baseline.py) in a virtualenv of its own (Keras 2),
created at WORKDIR/tfmot_venv if missing, for the first seed (as
docs/results ran it), into benchmarks/results/tfmot.json (with other
records, RECORDS/../tfmot.json); not with `smoke`. Each run is recorded
(`seeds`) into RECORDS/seedS, RECORDS/oneshot_seedS (default
docs/results/runs); the report is `binaries.report` of the records, into
docs/results (with other records, RECORDS/../report).

  keras-lottery study lenet300 --workdir=workdirs/lenet300
  keras-lottery study lenet300 --workdir=/tmp/l --smoke   # a minute or two
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from keras_lottery.base import files
from keras_lottery.studies import grid
from keras_lottery.studies import seeds as seeds_lib

RECORDS = "docs/results/runs"
REPORT = "docs/results"
TFMOT = "benchmarks/results/tfmot.json"
ROUNDS = (3, 7, 12, 15, 18)
SMOKE_ROUNDS = (2, 3)
SMOKE_SEEDS = (0,)
CONTROLS = ("random_reinit", "random_prune")

# Creates the baseline's virtualenv if missing (tfmot pins an old absl-py
# and needs Keras 2: never in the project's), then runs the baseline in it.
_TFMOT = r"""
import os, subprocess, sys
venv, *args = sys.argv[1:]
python = os.path.join(venv, "bin", "python")
if not os.path.exists(python):
    subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([python, "-m", "pip", "install", "-e", ".[tfmot]"])
sys.stdout.flush()
os.execve(python, [python, "-m", "benchmarks.tfmot_baseline", *args],
          {**os.environ, "TF_USE_LEGACY_KERAS": "1"})
"""


def study(workdir: str, records: str | None, seeds: Sequence[int] | None,
          data_dir: str, smoke: bool) -> grid.Study:
    """The experiment's grid (see the module's docstring)."""
    seeds = tuple(seeds if seeds is not None else
                  SMOKE_SEEDS if smoke else (0, 1, 2))
    rounds = SMOKE_ROUNDS if smoke else ROUNDS
    records, output = seeds_lib.outputs(records, workdir, smoke, RECORDS,
                                        REPORT)
    config = f"configs/lenet300_mnist.py{':smoke' if smoke else ''}"
    # The test set only at new validation minima and at the end: the same
    # early stops and accuracies as at every evaluation, for a third of
    # the evaluation's cost.
    extra = ["--config.eval.test_at=best",
             *(["--config.export.enabled=false"] if smoke else [])]
    runs: list[grid.Run] = []
    for seed in seeds:
        flags = [f"--config={config}", f"--config.seed={seed}",
                 f"--config.data.dir={data_dir}", *extra]
        run_dir = os.path.join(workdir, f"seed{seed}")
        record = os.path.join(records, f"seed{seed}")
        ticket = seeds_lib.lottery(f"lottery_seed{seed}", flags, run_dir,
                                   record, (0, *rounds))
        one_shot = os.path.join(workdir, f"oneshot_seed{seed}")
        runs += [ticket, seeds_lib.lottery(
            f"oneshot_seed{seed}",
            [*flags, "--config.prune.mode=one_shot",
             f"--config.prune.one_shot_rounds=({','.join(map(str, rounds))},)"],
            one_shot, os.path.join(records, f"oneshot_seed{seed}"), (),
            # One-shot prunes the dense weights of this very run.
            first=(grid.Call(files.copy_rounds, (run_dir, one_shot, (0,))),),
            alongside=(ticket,), ready=grid.rounds_done(run_dir, [0]))]
        runs += [seeds_lib.control(f"{c}_seed{seed}", ticket, run_dir,
                                   record, c, rounds) for c in CONTROLS]
    tfmot = None
    if not smoke:
        tfmot = (TFMOT if records == RECORDS else os.path.join(
            os.path.dirname(os.path.normpath(records)), "tfmot.json"))
        runs.append(grid.Run("tfmot", (grid.Command((
            "-c", _TFMOT, os.path.join(workdir, "tfmot_venv"),
            f"--data_dir={data_dir}", f"--output={tfmot}", "--steps=50000",
            f"--seeds={seeds[0]}")),), records=(tfmot,)))
    return grid.Study(
        "lenet300", runs, records, workdir,
        report=seeds_lib.report(
            [os.path.join(records, f"seed{s}") for s in seeds], output,
            [os.path.join(records, f"oneshot_seed{s}") for s in seeds],
            tfmot),
        report_path=os.path.join(output, "report.md"))

r"""Ticket transfer (issue 15, item 4; docs/TRANSFER.md).

For each seed (default 0, 1, 2) and each part (default both):

    mnist1d_source_seedS    the notebook's lottery run
                            (configs/mnist1d_lottery_mlp.py) on the official
                            MNIST-1D to round ROUND (11: 8.6% of the
                            weights left)
    mnist1d_transfer_seedS  `binaries.transfer` of its round-ROUND masks to
                            the MNIST-1D of generation seed 1: the
                            transferred ticket, a random mask of the same
                            per-layer sparsity, the dense network and the
                            target's own ticket
    mnist04_source_seedS, mnist59_transfer_seedS
                            the same from MNIST digits 0-4 to digits 5-9
                            (configs/lenet300_mnist.py, rounds of 2,000
                            steps; part `mnist`)

Each run is recorded into RECORDS/NAME (default
docs/results_transfer/runs; a lottery run as `seeds` records it, a transfer
its config.json, transfer.json and summary.json); the table
(`transfer_report`) is written from the transfers' records into
RECORDS/../transfer.md.

  keras-lottery study transfer --workdir=workdirs/transfer
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from keras_lottery.studies import early
from keras_lottery.studies import grid
from keras_lottery.studies import seeds as seeds_lib

RECORDS = "docs/results_transfer/runs"
PARTS = ("mnist1d", "mnist")
ROUND = 11
SMOKE_ROUND = 2
GENERATION_SEED = 1
MNIST_STEPS = 2000
_RECORDED = ("config.json", "transfer.json", "summary.json")


def study(workdir: str, records: str | None, seeds: Sequence[int] | None,
          data_dir: str, smoke: bool, parts: Sequence[str] = PARTS
          ) -> grid.Study:
    """The study's grid (see the module's docstring)."""
    seeds = tuple(seeds if seeds is not None else
                  (0,) if smoke else (0, 1, 2))
    round_ = SMOKE_ROUND if smoke else ROUND
    records, _ = seeds_lib.outputs(records, workdir, smoke, RECORDS, "")
    variant = ":smoke" if smoke else ""
    # Early stop's test accuracy is kept; no export: the table needs neither.
    extra = ["--config.export.enabled=false", "--config.eval.test_at=best"]
    # The paper's eval and checkpoint intervals, scaled to the short rounds.
    mnist_steps = [] if smoke else [
        f"--config.train.num_steps={MNIST_STEPS}",
        "--config.eval.every_steps=100",
        f"--config.train.checkpoint_every_steps={MNIST_STEPS}"]
    tasks = {
        "mnist1d": ("mnist1d", "mnist1d",
                    [f"--config=configs/mnist1d_lottery_mlp.py{variant}"],
                    [], [f"--config.data.generation_seed={GENERATION_SEED}"]),
        "mnist": ("mnist04", "mnist59",
                  [f"--config=configs/lenet300_mnist.py{variant}",
                   f"--config.data.dir={data_dir}"],
                  ["--config.data.classes=(0, 1, 2, 3, 4)", *mnist_steps],
                  ["--config.data.classes=(5, 6, 7, 8, 9)", *mnist_steps]),
    }
    runs: list[grid.Run] = []
    for seed in seeds:
        for part in parts:
            source_name, target_name, config, source_args, target_args = (
                tasks[part])
            source_name = f"{source_name}_source_seed{seed}"
            source_dir = os.path.join(workdir, source_name)
            source = seeds_lib.lottery(
                source_name, [*config, f"--config.seed={seed}",
                              *source_args,
                              f"--config.prune.num_rounds={round_}", *extra],
                source_dir, os.path.join(records, source_name),
                (0, round_))
            name = f"{target_name}_transfer_seed{seed}"
            target_dir = os.path.join(workdir, name)
            record = os.path.join(records, name)
            runs += [source, grid.Run(name, (
                grid.Command((
                    "-m", "binaries.transfer", f"--source={source_dir}",
                    f"--round={round_}", "--init=rewind", *config,
                    f"--config.seed={seed}", *target_args, *extra,
                    f"--workdir={target_dir}")),
                grid.Call(record_transfer, (target_dir, record))),
                records=grid.recorded(record), after=(source,))]
    output = os.path.join(os.path.dirname(os.path.normpath(records)),
                          "transfer.md")
    return grid.Study(
        "transfer", runs, records, workdir,
        report=grid.Command(("-m", "keras_lottery.studies.transfer_report",
                             f"--records={records}", f"--output={output}")),
        report_path=output)


def record_transfer(workdir: str, record: str) -> None:
    """Records a finished transfer: its config, transfer.json and summary
    (last)."""
    for name in _RECORDED:
        early.copy_file(os.path.join(workdir, name),
                        os.path.join(record, name))

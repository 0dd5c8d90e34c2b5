"""The early study (issue 14, docs/EARLY.md): cheaper tickets for
LeNet-300-100 on MNIST.

For each seed and target round (default 3, 7, 12, 15, 18: 51.3, 21.1,
7.0, 3.6 and 1.85% of the weights remaining):

    imp           IMP as in the paper (configs/lenet300_mnist.py)
    early_bird    early-bird IMP (You et al.: a check every 1,000 steps,
                  window 5, threshold 0.1); each target's ticket trains in
                  full
    short_rounds  IMP whose pruning rounds train 10,000 iterations and the
                  final ticket 50,000 (an early-bird window of 1)
    snip, grasp, synflow, random
                  pruned at initialisation to each target (one-shot), each
                  with its shuffled-mask control

then the instability of IMP's seed-0 run at rounds 0, 7 and 15 (k = 0)
and of Conv-2/MNIST's dense network at k = 0, 100, 500, 2000 (each rewind
step a run of its own, side by side).

The dense round 0 of each seed is trained once and copied into IMP and the
pruned-at-init runs. An early-bird or short-rounds *chain* runs to the
last target; the ticket of an earlier target r copies the chain's rounds 0
to r-1 and trains round r in full. Each finished run is *recorded* into
RECORDS/ARM/seedS[/roundRR] (config.json, summary.json, its shuffled
control's), the instability tables into RECORDS/../instability; the
report (`early_report`) is written from the records alone, into
RECORDS/.. (report.md, cost.md/png, methods.png).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.studies import grid

ARMS = ("imp", "early_bird", "short_rounds", "snip", "grasp", "synflow",
        "random")
AT_INIT = ("snip", "grasp", "synflow", "random")
CHAINS = ("early_bird", "short_rounds")
ROUNDS = (3, 7, 12, 15, 18)
SMOKE_ROUNDS = (1, 2)
INSTABILITY = ("lenet", "conv2")
LENET_INSTABILITY_ROUNDS = (0, 7, 15)
CONV2_REWIND_STEPS = (0, 100, 500, 2000)
RECORDS = "docs/results_early/runs"
_RECORDED = ("config.json", "summary.json", "rewind_step.json")


def study(workdir: str, records: str | None, seeds: Sequence[int],
          data_dir: str, smoke: bool, arms: Sequence[str] = ARMS,
          rounds: Sequence[int] | None = None,
          instability: Sequence[str] = INSTABILITY) -> grid.Study:
    """The early study's grid (see the module's docstring); records in
    `records` (default: the committed ones; with `smoke`,
    WORKDIR/records/runs)."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"`arms` must be some of {', '.join(ARMS)}. "
                         f"Received: arms={','.join(arms)}")
    if any(k not in INSTABILITY for k in instability):
        raise ValueError("`instability` must be some of lenet, conv2. "
                         f"Received: instability={','.join(instability)}")
    rounds = sorted(set(rounds or (SMOKE_ROUNDS if smoke else ROUNDS)))
    if min(rounds) < 1:
        raise ValueError("`rounds` must be at least 1. Received: "
                         f"rounds={','.join(map(str, rounds))}")
    if records is None:
        records = (os.path.join(workdir, "records", "runs") if smoke
                   else RECORDS)
    plan = _Plan(workdir, records, data_dir, smoke, tuple(rounds))
    plan.add_all(arms, seeds, instability)
    output = os.path.dirname(os.path.normpath(records))
    return grid.Study(
        "early", plan.runs, records, workdir,
        report=grid.Command((
            "-m", "keras_lottery.studies.early_report",
            f"--records={records}", f"--output={output}",
            f"--arms={','.join(arms)}", f"--seeds={','.join(map(str, seeds))}",
            f"--rounds={','.join(map(str, rounds))}",
            *(["--smoke"] if smoke else []))),
        report_path=os.path.join(output, "report.md"))


def base_flags(seed: int, smoke: bool, data_dir: str) -> list[str]:
    """LeNet-300-100's config (shrunk for smoke), export off."""
    flags_ = [f"--config=configs/lenet300_mnist.py{':smoke' if smoke else ''}",
              f"--config.data.dir={data_dir}", f"--config.seed={seed}",
              # The same accuracies as testing at every evaluation, for a
              # third of the evaluation's cost.
              "--config.eval.test_at=best", "--config.export.enabled=false",
              # The dense kernels, as the study's first seeds trained: its
              # seconds compare across seeds, and IMP's runs give the
              # numbers of docs/RESULTS.md seed for seed.
              "--config.train.sparse_compute=off"]
    if smoke:
        flags_ += ["--config.train.num_steps=100",
                   "--config.eval.every_steps=50",
                   "--config.train.checkpoint_every_steps=50",
                   "--config.train.steps_per_loop=25"]
    return flags_


def arm_flags(arm: str, rounds: Sequence[int], smoke: bool) -> list[str]:
    """The config fields `arm` sets."""
    eb = "--config.prune.early_bird."
    if arm == "early_bird":
        return [f"{eb}enabled=true", f"{eb}threshold=0.1",
                f"{eb}every_steps={25 if smoke else 1000}",
                f"{eb}window={2 if smoke else 5}"]
    if arm == "short_rounds":
        return [f"{eb}enabled=true", f"{eb}window=1",
                f"{eb}every_steps={50 if smoke else 10000}"]
    if arm in AT_INIT:
        return ["--config.prune.mode=one_shot", "--config.prune.at_init=true",
                f"--config.prune.method={arm}",
                f"--config.prune.one_shot_rounds={tuple(rounds)}"]
    return []


def covered(records: str, arm: str, seed: int, rounds: Sequence[int]
            ) -> list[tuple[int, str]]:
    """`(target round, record folder)` of each target of an arm."""
    if arm in CHAINS:
        return [(r, os.path.join(records, arm, f"seed{seed}",
                                 f"round{r:02d}")) for r in rounds]
    folder = os.path.join(records, arm, f"seed{seed}")
    return [(r, folder) for r in rounds]


class _Plan:
    """The runs of the study, each after the runs it reads from."""

    def __init__(self, workdirs: str, records: str, data_dir: str,
                 smoke: bool, rounds: tuple[int, ...]):
        self.workdirs = workdirs
        self.records = records
        self.data_dir = data_dir
        self.smoke = smoke
        self.rounds = rounds
        self.runs: list[grid.Run] = []

    def add(self, run: grid.Run) -> grid.Run:
        self.runs.append(run)
        return run

    def lottery(self, workdir: str, seed: int, arm: str,
                num_rounds: int) -> grid.Command:
        return grid.Command((
            "-m", "binaries.lottery",
            *base_flags(seed, self.smoke, self.data_dir),
            *arm_flags(arm, self.rounds, self.smoke),
            f"--config.prune.num_rounds={num_rounds}",
            f"--workdir={workdir}"))

    def add_all(self, arms: Sequence[str], seeds: Sequence[int],
                instability: Sequence[str]) -> None:
        last = max(self.rounds)
        imp_runs = {}
        for seed in seeds:
            dense = os.path.join(self.workdirs, "dense", f"seed{seed}")
            dense_run = self.add(grid.Run(
                f"dense_seed{seed}", (self.lottery(dense, seed, "imp", 0),),
                outputs=grid.rounds_done(dense, [0])))
            for arm in arms:
                workdir = os.path.join(self.workdirs, arm, f"seed{seed}")
                if arm in CHAINS:
                    self._chain(arm, seed, workdir)
                    continue
                record = os.path.join(self.records, arm, f"seed{seed}")
                steps = [grid.Call(files.copy_rounds, (dense, workdir, (0,))),
                         self.lottery(workdir, seed, arm, last)]
                if arm in AT_INIT:
                    steps.append(grid.Command((
                        "-m", "binaries.controls", f"--workdir={workdir}",
                        "--control=shuffle",
                        f"--rounds={','.join(map(str, self.rounds))}")))
                steps.append(grid.Call(record_run, (workdir, record)))
                run = self.add(grid.Run(
                    f"{arm}_seed{seed}", tuple(steps),
                    records=grid.recorded(
                        record, ("shuffle",) if arm in AT_INIT else ()),
                    outputs=grid.rounds_done(workdir, [0, *self.rounds]),
                    after=(dense_run,)))
                if arm == "imp":
                    imp_runs[seed] = (workdir, run)
        if "lenet" in instability and imp_runs:
            seed = min(imp_runs)
            workdir, imp_run = imp_runs[seed]
            for r in (0, last) if self.smoke else LENET_INSTABILITY_ROUNDS:
                if r <= last:
                    self._instability(f"lenet_seed{seed}_round{r:02d}",
                                      workdir, r, [0], (imp_run,))
        if "conv2" in instability:
            self._conv2()

    def _chain(self, arm: str, seed: int, folder: str) -> None:
        """The chain to the last target, then each earlier target."""
        last = max(self.rounds)
        chain = os.path.join(folder, f"round{last:02d}")
        chain_record = os.path.join(self.records, arm, f"seed{seed}",
                                    f"round{last:02d}")
        targets = [r for r in self.rounds if r < last]
        chain_run = self.add(grid.Run(
            f"{arm}_seed{seed}_round{last:02d}",
            (self.lottery(chain, seed, arm, last),
             grid.Call(record_run, (chain, chain_record))),
            records=grid.recorded(chain_record),
            outputs=grid.rounds_done(chain, range(max(targets, default=0)))))
        for r in targets:
            workdir = os.path.join(folder, f"round{r:02d}")
            record = os.path.join(self.records, arm, f"seed{seed}",
                                  f"round{r:02d}")
            self.add(grid.Run(
                f"{arm}_seed{seed}_round{r:02d}",
                (grid.Call(files.copy_rounds,
                           (chain, workdir, tuple(range(r)))),
                 self.lottery(workdir, seed, arm, r),
                 grid.Call(record_run, (workdir, record))),
                records=grid.recorded(record), after=(chain_run,)))

    def _instability(self, name: str, workdir: str, round_index: int,
                     steps: Sequence[int], after: tuple[grid.Run, ...]
                     ) -> None:
        record = os.path.join(os.path.dirname(self.records), "instability",
                              f"{name}.json")
        for run in instability_runs(name, workdir, round_index, steps,
                                    after, record):
            self.add(run)

    def _conv2(self) -> None:
        workdir = os.path.join(self.workdirs, "conv2_dense")
        config = (f"--config=configs/conv2_mnist.py"
                  f"{':smoke' if self.smoke else ''}")
        dense = self.add(grid.Run(
            "conv2_dense",
            (grid.Command((
                "-m", "binaries.lottery", config,
                f"--config.data.dir={self.data_dir}",
                "--config.eval.test_at=best", "--config.export.enabled=false",
                "--config.prune.num_rounds=0", f"--workdir={workdir}")),),
            outputs=grid.rounds_done(workdir, [0])))
        steps = [0, 2, 5] if self.smoke else CONV2_REWIND_STEPS
        self._instability("conv2_round00", workdir, 0, steps, (dense,))


def instability_runs(name: str, workdir: str, round_index: int,
                     steps: Sequence[int], after: tuple[grid.Run, ...],
                     record: str) -> list[grid.Run]:
    """The instability analysis (binaries.instability) of a round: one run
    per rewind step (they run side by side), then one that writes the
    table and copies its instability.json to `record`."""
    folder = paths.instability_dir(workdir, round_index)

    def command(ks: Sequence[int]) -> grid.Command:
        return grid.Command((
            "-m", "binaries.instability", f"--workdir={workdir}",
            f"--round={round_index}",
            f"--rewind_steps={','.join(map(str, ks))}"))

    # A rewind step's run trains two copies (and, for k > 0, the run to
    # W_k): a cost of 2 rounds; the table's run trains nothing.
    rows = [grid.Run(f"{name}_k{k:05d}", (command([k]),),
                     outputs=(paths.path_file(folder, k),), after=after,
                     cost=2)
            for k in steps]
    return [*rows, grid.Run(
        name, (command(steps), grid.Call(copy_file, (
            os.path.join(folder, "instability.json"), record))),
        records=(record,), after=tuple(rows), cost=0)]


def copy_file(source: str, target: str) -> None:
    """Copies `source` to `target` in one rename."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with files.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def record_run(workdir: str, record: str) -> None:
    """Records a finished run (and its controls): the small files the
    report reads; summary.json last, which marks it recorded."""
    for control in paths.CONTROLS:
        source = paths.control_workdir(workdir, control)
        if os.path.exists(os.path.join(source, "summary.json")):
            record_run(source, os.path.join(record, "controls", control))
    for name in _RECORDED:
        if os.path.exists(os.path.join(workdir, name)):
            copy_file(os.path.join(workdir, name),
                      os.path.join(record, name))

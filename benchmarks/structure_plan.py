"""The jobs of the structure study (benchmarks/structure_study.py): each
seed's dense round, each cell's lottery run, and each control's rounds,
with what each reads and records."""

from __future__ import annotations

import os

from benchmarks import jobs
from benchmarks.structure_cells import Cell


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

    def run(self, cells, seeds, jobs_at_once) -> list[str]:
        """Runs the dense round of each seed, then every cell; returns the
        names of the runs that failed."""
        return jobs.run_jobs(self.plan(cells, seeds), jobs_at_once)

    def plan(self, cells, seeds) -> list[jobs.Job]:
        """The jobs of the study, in the order they start when they can:
        for each seed, its dense round, then each cell followed by its
        controls.

        Each control round is a job of its own that starts as soon as the
        cell's round is trained, and, coming before the later cells, it
        takes the next free process: a long run and its controls end close
        together, within a session.
        """
        plan = []
        for seed in seeds:
            dense_dir = self.dense_dir(seed)
            dense = jobs.Job(
                f"dense_seed{seed}",
                lambda d=dense_dir, s=seed: self.step(
                    f"dense_seed{s}", self.lottery_command(d, s, {}, 0)),
                None, lambda d=dense_dir: jobs.rounds_done(d, [0]))
            plan.append(dense)
            for cell in cells:
                plan.extend(self.cell_jobs(cell, seed, dense))
        return plan

    def cell_jobs(self, cell: Cell, seed: int,
                  dense: jobs.Job) -> list[jobs.Job]:
        """The cell's run, a job per control and round, and a job that
        records each control once all its rounds are done."""
        name = f"{cell.name}_seed{seed}"
        workdir = self.workdir(cell, seed)
        record = self.record_dir(cell, seed)

        def run() -> bool:
            from keras_lottery.base import (
                files,  # TensorFlow: only where needed
            )

            files.copy_rounds(self.dense_dir(seed), workdir, [0])
            return self.step(name, self.lottery_command(
                workdir, seed, cell.prune, cell.num_rounds)) and self.step(
                f"{name}_record", self.python(
                    "benchmarks.structure_record", f"--workdir={workdir}",
                    f"--record={record}"))

        # A recorded run whose workdir went with an earlier session trains
        # again when a control still needs its rounds.
        ticket = jobs.Job(
            name, run, lambda: jobs.recorded(record),
            lambda: jobs.rounds_done(workdir, cell.controls), after=(dense,))
        return [ticket, *[job for control in _controls(cell)
                          for job in self.control_jobs(cell, seed, control,
                                                       ticket)]]

    def control_jobs(self, cell: Cell, seed: int, control: str,
                     ticket: jobs.Job) -> list[jobs.Job]:
        """A job per round of the control, each ready once the cell's run
        has that round, then one that records the control."""
        name = f"{cell.name}_seed{seed}_{control}"
        workdir = self.workdir(cell, seed)
        record = os.path.join(self.record_dir(cell, seed), "controls",
                              control)
        control_dir = os.path.join(workdir, "controls", control)

        def round_job(r: int, after: tuple[jobs.Job, ...]) -> jobs.Job:
            return jobs.Job(
                f"{name}_round{r:02d}",
                lambda: self.control_step(f"{name}_round{r:02d}", workdir,
                                          control, [r]),
                lambda: jobs.recorded(record) or jobs.rounds_done(
                    control_dir, [r]),
                lambda: jobs.rounds_done(control_dir, [r]), after=after,
                alongside=(ticket,),
                ready=lambda: jobs.rounds_done(workdir, [r]))

        # One process at a time holds the control's workdir: its rounds
        # run in turn.
        rounds: tuple[jobs.Job, ...] = ()
        for r in cell.controls:
            rounds += (round_job(r, rounds[-1:]),)

        def run() -> bool:
            # Writes the summary of all the control's rounds (each done).
            return self.control_step(
                name, workdir, control, cell.controls) and self.step(
                f"{name}_record", self.python(
                    "benchmarks.structure_record", f"--workdir={workdir}",
                    f"--record={self.record_dir(cell, seed)}",
                    f"--control={control}"))

        return [*rounds, jobs.Job(name, run, lambda: jobs.recorded(record),
                                  after=rounds)]

    def control_step(self, name: str, workdir: str, control: str,
                     rounds) -> bool:
        return self.step(name, self.python(
            "binaries.controls", f"--workdir={workdir}",
            f"--control={control}", f"--rounds={','.join(map(str, rounds))}"))

    def dense_dir(self, seed: int) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", "dense")

    def workdir(self, cell: Cell, seed: int) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", cell.name)

    def record_dir(self, cell: Cell, seed: int) -> str:
        return os.path.join(self.records, cell.name, f"seed{seed}")

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

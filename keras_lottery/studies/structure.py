"""The structure study (docs/STRUCTURE.md): which structure keeps winning
tickets, and which criterion finds them.

Every cell (`structure_cells`) is one lottery run (binaries.lottery) of
one granularity and one criterion for one seed, with its controls
(binaries.controls) at a few rounds. All cells of one seed start from the
same dense round 0: it is trained once (`dense` in the workdirs) and
copied into each cell. Each finished run is *recorded*
(`keras_lottery.studies.record`: config, summary, per-round metrics
without the training history, unit masks, what `keras_lottery.shrink`
makes of each round's ticket) into RECORDS/PART/CELL/seedS; the report
(`structure_report`) is written from the records alone.

A control round starts as soon as the cell's run has trained that round,
in the next free slot: a cell and its controls end close together. One
process at a time holds a control's workdir: its rounds run in turn.

A part with an instability analysis (`structure_cells.INSTABILITY`, the
ViT) measures it on its first seed's dense round after that seed's cells,
then on the last round of that seed's LATE_REWIND cell. Once the dense
round's is recorded, if the rewind step it picks is not 0, the part's
LATE_REWIND cell is declared again for every seed, rewinding to that step
(`<cell>_rewind`; it trains its own round 0, which keeps W_k): the
command's next pass runs it (`runner.run_passes`).

  keras-lottery study structure_lenet --workdir=workdirs/structure
  keras-lottery study structure --workdir=W --smoke   # every part, minutes
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from keras_lottery.base import files
from keras_lottery.lottery import rewind_search
from keras_lottery.studies import early
from keras_lottery.studies import grid
from keras_lottery.studies.structure_cells import INSTABILITY
from keras_lottery.studies.structure_cells import LATE_REWIND
from keras_lottery.studies.structure_cells import PARTS
from keras_lottery.studies.structure_cells import SMOKE_REWIND_STEPS
from keras_lottery.studies.structure_cells import Cell
from keras_lottery.studies.structure_cells import late_rewind_cell

RECORDS = "docs/results_structure/runs"
REPORTS = "docs/results_structure"
SMOKE_ROUNDS = 3
_CONTROLS = ("random_reinit", "random_prune")


def study(name: str, parts: Sequence[str], workdir: str,
          records: str | None, seeds: Sequence[int], data_dir: str,
          smoke: bool, cells: Sequence[str] = ()) -> grid.Study:
    """The runs of `parts` (keys of `structure_cells.PARTS`) for `seeds`,
    only of `cells` (names, in this order) if any; records in `records`
    (default: the committed ones; with `smoke`, WORKDIR/records), reports
    beside them (REPORTS for the committed; RECORDS/../report else)."""
    if records is None:
        records = (os.path.join(workdir, "records") if smoke else RECORDS)
    output = (REPORTS if records == RECORDS
              else os.path.join(os.path.dirname(records.rstrip("/")),
                                "report"))
    runs: list[grid.Run] = []
    for part in parts:
        config, part_cells, config_flags = PARTS[part]
        if cells:
            by_name = {cell.name: cell for cell in part_cells}
            unknown = [c for c in cells if c not in by_name]
            if unknown:
                raise ValueError(
                    f"`cells` must be cells of part {part} "
                    f"({', '.join(by_name)}). Received: "
                    f"cells={','.join(cells)}")
            part_cells = [by_name[c] for c in dict.fromkeys(cells)]
        if smoke:
            config, config_flags = config + ":smoke", []
            part_cells = [_smoke(cell) for cell in part_cells]
        plan = _Plan(config, config_flags, os.path.join(workdir, part),
                     os.path.join(records, part), data_dir, part,
                     ((SMOKE_REWIND_STEPS if smoke else INSTABILITY[part])
                      if part in INSTABILITY else ()))
        rewound = plan.late_rewind_cell(part_cells, seeds)
        runs += plan.runs(part_cells, seeds,
                          rewound and (_smoke(rewound) if smoke else rewound))
    return grid.Study(
        name, runs, records, workdir,
        report=grid.Command(("-m", "keras_lottery.studies.structure_report",
                             f"--parts={','.join(parts)}",
                             f"--records={records}", f"--output={output}")),
        report_path=os.path.join(output, parts[-1], "comparison.md"))


def _smoke(cell: Cell) -> Cell:
    """At most SMOKE_ROUNDS rounds, controls only within them."""
    return dataclasses.replace(
        cell, num_rounds=min(cell.num_rounds, SMOKE_ROUNDS),
        controls=tuple(r for r in cell.controls if r <= SMOKE_ROUNDS))


@dataclasses.dataclass
class _Plan:
    config: str
    config_flags: list[str]
    workdirs: str
    records: str
    data_dir: str
    part: str
    rewind_steps: tuple[int, ...] = ()  # the instability analysis's

    def runs(self, cells: Sequence[Cell], seeds: Sequence[int],
             rewound: Cell | None = None) -> list[grid.Run]:
        """For each seed, its dense round, then each cell followed by its
        controls (a control round coming before the later cells takes the
        next free slot once it can start); after the first seed's cells,
        its dense round's instability at `rewind_steps`, if any, then its
        LATE_REWIND cell's last round's; last for each seed, the `rewound`
        cell (`late_rewind_cell`), if any."""
        runs = []
        for seed in seeds:
            dense_dir = self.dense_dir(seed)
            dense = grid.Run(
                self.name(f"dense_seed{seed}"),
                (self.lottery(dense_dir, seed, {}, 0),),
                outputs=grid.rounds_done(dense_dir, [0]))
            runs.append(dense)
            tickets = {}
            for cell in cells:
                tickets[cell.name], *controls = self.cell_runs(
                    cell, seed, dense)
                runs += [tickets[cell.name], *controls]
            if self.rewind_steps and seed == seeds[0]:
                runs += self.instability(f"dense_seed{seed}", dense_dir, 0,
                                         dense)
                sparsest = self.late_rewind_base(cells)
                if sparsest:
                    runs += self.instability(
                        f"{sparsest.name}_seed{seed}",
                        self.cell_dir(seed, sparsest),
                        sparsest.num_rounds, tickets[sparsest.name])
            if rewound:
                runs += self.cell_runs(rewound, seed, None)
        return runs

    def instability(self, run: str, workdir: str, round_index: int,
                    after: grid.Run) -> list[grid.Run]:
        """The instability analysis of `run`'s round at `rewind_steps`,
        once `after` is done, recorded as `instability_record`."""
        return early.instability_runs(
            self.name(f"instability_{_round(run, round_index)}"), workdir,
            round_index, self.rewind_steps, (after,),
            self.instability_record(run, round_index))

    def instability_record(self, run: str, round_index: int) -> str:
        """Where the instability table of `run`'s round is recorded (e.g.
        RECORDS/PART/instability/dense_seed0_round00.json)."""
        return os.path.join(self.records, "instability",
                            f"{_round(run, round_index)}.json")

    def late_rewind_base(self, cells: Sequence[Cell]) -> Cell | None:
        """The part's LATE_REWIND cell, if it is among `cells`."""
        return next((cell for cell in cells
                     if cell.name == LATE_REWIND.get(self.part)), None)

    def late_rewind_cell(self, cells: Sequence[Cell], seeds: Sequence[int]
                         ) -> Cell | None:
        """The part's cell rerun with late rewinding (LATE_REWIND), once
        the first seed's instability is recorded, if it picks a step
        other than 0 and the cell is among `cells`."""
        if not seeds or self.late_rewind_base(cells) is None:
            return None
        record = self.instability_record(f"dense_seed{seeds[0]}", 0)
        if not os.path.exists(record):
            return None
        k = rewind_search.pick(files.read_json(record)["rows"])
        return late_rewind_cell(self.part, k) if k else None

    def cell_runs(self, cell: Cell, seed: int, dense: grid.Run | None
                  ) -> list[grid.Run]:
        """The cell's run (then its record), a run per control round, and
        one per control that records it once all its rounds are done.
        The run starts from a copy of the `dense` run's round 0; without
        one (a late-rewind cell, whose round 0 keeps W_k), it trains its
        own."""
        name = self.name(f"{cell.name}_seed{seed}")
        workdir = self.cell_dir(seed, cell)
        record = os.path.join(self.records, cell.name, f"seed{seed}")
        copy = (grid.Call(files.copy_rounds, (self.dense_dir(seed), workdir,
                                              (0,))),) if dense else ()
        ticket = grid.Run(
            name,
            (*copy, self.lottery(workdir, seed, cell.prune, cell.num_rounds),
             _record(workdir, record)),
            records=grid.recorded(record),
            outputs=grid.rounds_done(workdir, cell.controls),
            after=(dense,) if dense else (),
            cost=cell.num_rounds + (0 if dense else 1))
        runs = [ticket]
        for control in _CONTROLS if cell.controls else ():
            control_dir = os.path.join(workdir, "controls", control)
            control_record = os.path.join(record, "controls", control)
            rounds: tuple[grid.Run, ...] = ()
            for r in cell.controls:
                rounds += (grid.Run(
                    f"{name}_{control}_round{r:02d}",
                    (_control(workdir, control, [r]),),
                    records=grid.recorded(control_record),
                    outputs=grid.rounds_done(control_dir, [r]),
                    done=grid.rounds_done(control_dir, [r]),
                    after=rounds[-1:], alongside=(ticket,),
                    ready=grid.rounds_done(workdir, [r])),)
            runs += [*rounds, grid.Run(
                f"{name}_{control}",
                # Writes the summary of all the control's rounds (each
                # done), then records it.
                (_control(workdir, control, cell.controls),
                 _record(workdir, record, control)),
                records=grid.recorded(control_record), after=rounds,
                cost=0)]
        return runs

    def name(self, run: str) -> str:
        return f"{self.part}_{run}"

    def cell_dir(self, seed: int, cell: Cell) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", cell.name)

    def dense_dir(self, seed: int) -> str:
        return os.path.join(self.workdirs, f"seed{seed}", "dense")

    def lottery(self, workdir: str, seed: int, prune: dict,
                num_rounds: int) -> grid.Command:
        return grid.Command((
            "-m", "binaries.lottery", f"--config={self.config}",
            f"--config.data.dir={self.data_dir}", f"--config.seed={seed}",
            "--config.eval.test_at=best", "--config.export.enabled=false",
            *self.config_flags,
            *[f"--config.prune.{field}={value}"
              for field, value in prune.items()],
            f"--config.prune.num_rounds={num_rounds}",
            f"--workdir={workdir}"))


def _round(run: str, round_index: int) -> str:
    return f"{run}_round{round_index:02d}"


def _control(workdir: str, control: str, rounds) -> grid.Command:
    return grid.Command(("-m", "binaries.controls", f"--workdir={workdir}",
                         f"--control={control}",
                         f"--rounds={','.join(map(str, rounds))}"))


def _record(workdir: str, record: str, control: str | None = None
            ) -> grid.Command:
    return grid.Command(("-m", "keras_lottery.studies.record",
                         f"--workdir={workdir}", f"--record={record}",
                         *([f"--control={control}"] if control else [])))

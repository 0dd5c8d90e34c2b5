"""The pieces of the studies that run one experiment over seeds and report
it as `binaries.report` does (`lenet300`, `mnist1d`; `transfer` uses the
runs): a lottery run, a control of it, each recorded, and the report.

A run's record (`early.record_run`) is its config.json and summary.json,
and its controls' under controls/C: what `binaries.report` reads of a
workdir, so the report reads the records as it reads workdirs. The
records keep no training history: a report from the records has no
curves.png (the committed ones were drawn from the workdirs).

`markdown(table)` is report.md again from the report.json beside it: the
committed reports, whose workdirs are not committed, regenerate from
their report.json alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from keras_lottery.analysis import tables
from keras_lottery.base import paths
from keras_lottery.studies import early
from keras_lottery.studies import grid


def lottery(name: str, args: Sequence[str], workdir: str, record: str,
            outputs: Sequence[int], **reads) -> grid.Run:
    """`binaries.lottery ARGS --workdir=WORKDIR`, then its record;
    `outputs`: the rounds the runs that read it need; `reads`: `after`,
    `alongside`, `ready` of `grid.Run`, and `first`: steps before it (a
    copy of another run's rounds)."""
    first = reads.pop("first", ())
    return grid.Run(
        name, (*first, grid.Command(("-m", "binaries.lottery", *args,
                                     f"--workdir={workdir}")),
               grid.Call(early.record_run, (workdir, record))),
        records=grid.recorded(record),
        outputs=grid.rounds_done(workdir, outputs), **reads)


def control(name: str, ticket: grid.Run, workdir: str, record: str,
            control_name: str, rounds: Sequence[int]) -> grid.Run:
    """`binaries.controls` of `ticket` (whose workdir is `workdir`) at
    `rounds` once it ended, then its record in RECORD/controls/C."""
    target = os.path.join(record, "controls", control_name)
    return grid.Run(
        name, (grid.Command(("-m", "binaries.controls",
                             f"--workdir={workdir}",
                             f"--control={control_name}",
                             f"--rounds={','.join(map(str, rounds))}")),
               grid.Call(early.record_run, (
                   paths.control_workdir(workdir, control_name), target))),
        records=grid.recorded(target), after=(ticket,))


def report(records: Sequence[str], output: str,
           one_shot: Sequence[str] = (), tfmot: str | None = None
           ) -> grid.Command:
    """`binaries.report` of these records into `output`."""
    return grid.Command((
        "-m", "binaries.report", f"--workdirs={','.join(records)}",
        *([f"--one_shot_workdirs={','.join(one_shot)}"] if one_shot else []),
        *([f"--tfmot={tfmot}"] if tfmot else []), f"--output={output}"))


def outputs(records: str | None, workdir: str, smoke: bool, committed: str,
            report: str) -> tuple[str, str]:
    """The records folder (`records`, default: `committed`, or
    WORKDIR/records with `smoke`) and the report's folder (`report` for
    the committed records, else RECORDS/../report)."""
    if records is None:
        records = os.path.join(workdir, "records") if smoke else committed
    output = (report if records == committed else os.path.join(
        os.path.dirname(os.path.normpath(records)), "report"))
    return records, output


def markdown(table: dict[str, Any]) -> str:
    """report.md of a report.json (`tables.format_markdown` of the table
    that `tables.build_table` built, which the JSON keeps with its
    findings' keys sorted and each row's tfmot point a copy)."""
    table = dict(table)
    found = dict(table["findings"])
    found["series"] = {s: found["series"][s] for s in table["series"]
                       if s in found["series"]}
    table["findings"] = found
    points = table["tfmot_points"]
    table["rows"] = [
        {**row, "tfmot": next((p for p in points if p == row["tfmot"]),
                              row["tfmot"])} for row in table["rows"]]
    return tables.format_markdown(table)

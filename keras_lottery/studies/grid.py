"""A study as a declared grid: its runs, what each reads, what each records.

A `Run` is one step of a study (a lottery run, a control's round, the
record of a finished run): the `steps` it executes in turn (`Command`: a
subprocess of the project's binaries; `Call`: a function, e.g. copying a
dense round in), the runs it reads (`after`: once they ended;
`alongside`: while they go on, as soon as the files of `ready` exist),
the files that say it is recorded (`records`), and those its workdir
holds once it ran (`outputs`: a run that reads it needs them). Every
condition is the existence of files, so a study declares no code of its
own to schedule it and a rerun learns from the disk what is done.

`Study` is the whole grid: its runs in the order they start when they can,
its records folder, and the command that writes its report from the
records. `Schedule` decides, without Ray, which run starts next; the
runner (`keras_lottery.studies.runner`) hands them to Ray.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Command:
    """`python ARGS...` (e.g. `("-m", "binaries.lottery", ...)`), run in the
    study's folder with its output in the run's log."""
    args: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Call:
    """`function(*args)` in the process that executes the run; it raises
    on a failure. It must be importable where the run executes (a module
    function, not a lambda)."""
    function: Callable[..., Any]
    args: tuple = ()


@dataclasses.dataclass(eq=False)
class Run:
    """One run of a study (see the module's docstring).

    Attributes:
        name: unique in the study; its log is LOGS/NAME.log.
        steps: `Command`s and `Call`s, executed in turn; the run fails at
            the first that fails.
        records: files that exist once the run is recorded (its record's
            summary.json, written last). Empty: it records nothing of its
            own (a shared dense round); it is needed only when a run that
            reads it is needed and its `outputs` are gone.
        outputs: files its workdir holds once it ran (e.g. round
            metrics.json); a recorded run whose outputs a needed run reads
            and no longer finds runs again.
        after: runs it reads once they ended.
        alongside: runs it reads while they go on, once `ready` exist (or
            once they ended); until then they count as `after`.
        ready: files whose existence lets it start alongside.
        done: files whose existence also means it need not run (a
            control's round done in the control's workdir, not yet
            recorded).
        cost: its share of the study's work (e.g. how many rounds it
            trains), for the time left shown while the study runs; 0 for
            bookkeeping (a record of finished rounds).
    """
    name: str
    steps: tuple[Command | Call, ...]
    records: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    after: tuple[Run, ...] = ()
    alongside: tuple[Run, ...] = ()
    ready: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    cost: float = 1.0

    def recorded(self) -> bool:
        return (bool(self.records) and _exist(self.records)) or (
            bool(self.done) and _exist(self.done))

    def has_outputs(self) -> bool:
        return _exist(self.outputs)

    def is_ready(self) -> bool:
        return bool(self.alongside) and bool(self.ready) and _exist(
            self.ready)


@dataclasses.dataclass
class Study:
    """A declared grid of runs.

    Attributes:
        name: the study's name; its records folder remembers it.
        runs: in the order they start when they can (a run comes after the
            runs it reads).
        records: the folder of its records (durable, committed).
        workdir: the folder of its runs (scratch) and logs.
        report: the command that writes the report from the records, run
            once every run is recorded; None: no report.
        report_path: the file the report command writes.
    """
    name: str
    runs: list[Run]
    records: str
    workdir: str
    report: Command | None = None
    report_path: str = ""

    def __post_init__(self):
        names = [run.name for run in self.runs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"A study's runs need distinct names. "
                             f"Received: {', '.join(twice)} twice")
        known = {id(run) for run in self.runs}
        for run in self.runs:
            for first in (*run.after, *run.alongside):
                if id(first) not in known:
                    raise ValueError(
                        f"Run {run.name} reads {first.name}, which is not "
                        f"a run of study {self.name}")

    @property
    def logs(self) -> str:
        return os.path.join(self.workdir, "logs")


def needed(runs: Sequence[Run]) -> list[Run]:
    """The runs that have to run, in order: those not recorded, and those
    whose outputs a run that has to run reads and no longer finds."""
    dependents: dict[int, list[Run]] = {}
    for run in runs:
        for first in (*run.after, *run.alongside):
            dependents.setdefault(id(first), []).append(run)
    memo: dict[int, bool] = {}

    def is_needed(run: Run) -> bool:
        if id(run) not in memo:
            memo[id(run)] = (bool(run.records) and not run.recorded()) or (
                not run.has_outputs() and any(
                    is_needed(d) for d in dependents.get(id(run), ())))
        return memo[id(run)]

    return [run for run in runs if is_needed(run)]


class Schedule:
    """Which needed run starts next, as runs end (no Ray here).

    `next_runs(free)` takes the first runs, in the study's order, whose
    `after` ended and whose `alongside` ended or are ready; a run whose
    reads failed is `skipped` instead. `ended(run, ok)` records an end.
    """

    def __init__(self, runs: Sequence[Run]):
        self.todo = needed(runs)
        self.total = len(self.todo)
        self._pending = {id(run) for run in self.todo}
        self._outcome: dict[int, bool] = {}  # runs not needed are done
        self.failed: list[Run] = []
        self.skipped: list[Run] = []

    def next_runs(self, free: int) -> list[Run]:
        started = []
        for run in list(self.todo):
            if len(started) >= free:
                break
            if any(id(f) in self._pending for f in run.after):
                continue
            ready = run.is_ready()
            if not ready and any(id(f) in self._pending
                                 for f in run.alongside):
                continue
            self.todo.remove(run)
            if all(self._outcome.get(id(f), True) for f in run.after) and (
                    ready or all(self._outcome.get(id(f), True)
                                 for f in run.alongside)):
                started.append(run)
            else:
                self._end(run, False)
                self.skipped.append(run)
        return started

    def ended(self, run: Run, ok: bool) -> None:
        self._end(run, ok)
        if not ok:
            self.failed.append(run)

    def waits_on_files(self) -> bool:
        """Whether a waiting run may become ready without a run ending."""
        return any(run.alongside for run in self.todo)

    def _end(self, run: Run, ok: bool) -> None:
        self._pending.discard(id(run))
        self._outcome[id(run)] = ok


def rounds_done(workdir: str, rounds: Iterable[int]) -> tuple[str, ...]:
    """The files a lottery workdir holds once these rounds are done (each
    round's metrics.json, written last; as `keras_lottery.base.paths`)."""
    return tuple(os.path.join(workdir, f"round_{r:02d}", "metrics.json")
                 for r in rounds)


def recorded(record: str, controls: Sequence[str] = ()) -> tuple[str, ...]:
    """The files of a whole record and of each of these controls' records:
    their summary.json, which a record writes last."""
    return tuple(os.path.join(folder, "summary.json")
                 for folder in [record, *(os.path.join(record, "controls", c)
                                          for c in controls)])


def _exist(paths: Iterable[str]) -> bool:
    return all(os.path.exists(path) for path in paths)

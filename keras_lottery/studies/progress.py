"""The progress of a study: one live display, or log lines.

On a terminal, one `rich` live line for the whole study: runs done,
running, waiting, failed, per node the runs running there and those that
ended there, and the time left (ETA): the seconds per unit of cost
(`grid.Run.cost`, e.g. rounds trained) of the runs that ended this
session, times the cost of the runs left, over the runs the cluster
holds at once. Elsewhere (a log file, a
pipe, CI) one line per run that ends or fails, and the same summary
every `every_seconds`.
"""

from __future__ import annotations

import collections
import sys
import time


class Display:
    """Shows a study's progress (see the module's docstring).

    Args:
        live: a live display; default: whether stdout is a terminal.
        every_seconds: how often the summary line is printed without one.
    """

    def __init__(self, live: bool | None = None, every_seconds: float = 60):
        self.live = sys.stdout.isatty() if live is None else live
        self.every_seconds = every_seconds
        self.skipped: list[str] = []
        self._live = None

    def begin(self, name: str, total: int,
              costs: dict[str, float] | None = None) -> None:
        """`costs`: each run's `grid.Run.cost` (default 1 each)."""
        self.name, self.total = name, total
        self.done = self.failed = self.running = 0
        self.costs = costs or {}
        self.cost_left = sum(self.costs.values()) + total - len(self.costs)
        self.seconds = self.cost_done = 0.0
        self.nodes: collections.Counter = collections.Counter()
        self.running_on: collections.Counter = collections.Counter()
        self._last_line = time.monotonic()
        if total == 0:
            print(f"{name}: nothing to run, every run is recorded",
                  flush=True)
            return
        print(f"{name}: {total} run(s) to do", flush=True)
        if self.live:
            from rich.live import Live  # noqa: PLC0415

            self._live = Live(self.summary(0), refresh_per_second=2,
                              transient=False)
            self._live.start()

    def started(self, name: str) -> None:
        self.running += 1
        if not self._live:
            print(f"==> {time.strftime('%H:%M:%S')} {name}", flush=True)

    def placed(self, nodes: collections.Counter) -> None:
        """The runs running on each node now (those whose node is known)."""
        self.running_on = nodes

    def skip(self, name: str) -> None:
        self.skipped.append(name)
        self.cost_left -= self.costs.get(name, 1.0)
        self._print(f"skipped {name}: a run it reads failed")

    def ended(self, name: str, result: dict, running: int,
              capacity: int) -> None:
        self.running = running
        self.nodes[result.get("node", "?")] += 1
        cost = self.costs.get(name, 1.0)
        self.cost_left -= cost
        if result["ok"]:
            self.done += 1
            self.seconds += result["seconds"]
            self.cost_done += cost
            self._print(f"<== {time.strftime('%H:%M:%S')} {name} "
                        f"({result['seconds'] / 60:.1f} min, "
                        f"{result.get('node', '?')})")
        else:
            self.failed += 1
            why = result.get("error") or f"log {result.get('log')}"
            self._print(f"FAILED {name}: {why}")
        self.tick(running, None, capacity)

    def tick(self, running: int, waiting: int | None, capacity: int) -> None:
        self.running = running
        self.capacity = capacity
        if self._live:
            self._live.update(self.summary(capacity))
        elif time.monotonic() - self._last_line >= self.every_seconds:
            self._print(self.summary(capacity))

    def summary(self, capacity: int) -> str:
        waiting = self.total - self.done - self.failed - self.running - len(
            self.skipped)
        eta = "?"
        if self.cost_done and capacity:
            eta = _duration(self.seconds / self.cost_done
                            * max(0.0, self.cost_left) / capacity)
        nodes = ", ".join(
            f"{node} {self.running_on[node]} running {self.nodes[node]} "
            "ended" for node in sorted({*self.nodes, *self.running_on}))
        return (f"{self.name}: {self.done}/{self.total} done, "
                f"{self.running} running, {max(0, waiting)} waiting, "
                f"{self.failed} failed; ETA {eta}"
                + (f"; per node: {nodes}" if nodes else ""))

    def finish(self, failed: list[str], skipped: list[str],
               report: str | None, logs: str) -> None:
        if self._live:
            self._live.update(self.summary(getattr(self, "capacity", 0)))
            self._live.stop()
            self._live = None
        if failed or skipped:
            print(f"{self.name}: failed: {', '.join(failed) or '-'}; "
                  f"skipped: {', '.join(skipped) or '-'}; logs in {logs}. "
                  "Rerun to resume.", flush=True)
        elif report:
            print(f"Report: {report}", flush=True)

    def _print(self, line: str) -> None:
        self._last_line = time.monotonic()
        if self._live:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else (
        f"{minutes} min" if minutes else f"{seconds:.0f} s")

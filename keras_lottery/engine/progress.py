"""Where a lottery run is, for its logs: round k of N, ETAs, the verdict.

`RunProgress` times a run's rounds and gives the log line of each
evaluation: "round 2 of 15, step 1000/50000 ... round ETA 1m40s, run ETA
27m". A round's first steps trace and compile its training function;
their time is left out of the step rate (it is counted once per round in
the run's ETA instead), so a round's first ETA is not inflated by it.
`closing_line` is the run's last line: where the summary and the export
are, and whether the last round is a winning ticket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence


class RunProgress:
    """Steps per second and ETAs of the current round and the whole run.

    Args:
        rounds: the rounds the run trains, in order (done ones included).
        num_steps: training steps per round.
        clock: seconds, monotonic; a parameter for tests.

    Example:
        >>> progress = RunProgress(range(4), 300)
        >>> progress.start_round(0, step=0)
        >>> ...train the first steps (tracing, compiling)...
        >>> progress.warmed_up(step=50)
        >>> ...train, evaluate...
        >>> logging.info("%s: ...; %s", progress.where(100),
        ...              progress.speed(100))
    """

    def __init__(self, rounds: Sequence[int], num_steps: int,
                 clock=time.perf_counter):
        self.rounds = list(rounds)
        self.num_steps = num_steps
        self._clock = clock
        self._round = None
        self._round_start = 0.0
        self._warm = None  # (step, time) once the round's function is built
        self._round_seconds = []  # rounds this process trained in full
        self._steady = (0, 0.0)  # (steps, seconds) after warm-up, all rounds

    def start_round(self, round_index: int, step: int) -> None:
        """Starts the clock of a round that resumes (or starts) at `step`."""
        now = self._clock()
        if self._round is not None and self._warm is not None:
            self._round_seconds.append(now - self._round_start)
            self._add_steady(self._last_step, self._last_time)
        self._round, self._round_start = round_index, now
        self._warm = None
        self._first_step = step
        self._last_step, self._last_time = step, now

    def warmed_up(self, step: int) -> bool:
        """Marks the end of the round's first steps (tracing, compiling);
        True the first time in the round."""
        if self._warm is not None:
            return False
        self._warm = (step, self._clock())
        self._last_step, self._last_time = self._warm
        return True

    def where(self, step: int) -> str:
        """`"round k of N, step s/S"`."""
        return (f"round {self._round} of {max(self.rounds)}, step "
                f"{step}/{self.num_steps}")

    def speed(self, step: int) -> str:
        """Steps/s since the warm-up, the round's ETA and the run's ETA."""
        now = self._clock()
        self._last_step, self._last_time = step, now
        rate = self._rate(step, now)
        if rate is None:
            return "measuring speed"
        round_left = (self.num_steps - step) / rate
        later = [r for r in self.rounds if r > self._round]
        if self._round_seconds:
            per_round = sum(self._round_seconds) / len(self._round_seconds)
        else:
            # This round's overhead so far (loading, tracing) plus its
            # steps at the steady rate.
            overhead = self._warm[1] - self._round_start - (
                (self._warm[0] - self._first_step) / rate)
            per_round = max(overhead, 0.0) + self.num_steps / rate
        run_left = round_left + len(later) * per_round
        return (f"{rate:.0f} steps/s, round ETA {duration(round_left)}, "
                f"run ETA {duration(run_left)}")

    def _rate(self, step: int, now: float) -> float | None:
        steps, seconds = self._steady
        if self._warm is not None and step > self._warm[0]:
            steps += step - self._warm[0]
            seconds += now - self._warm[1]
        return steps / seconds if steps and seconds > 0 else None

    def _add_steady(self, step: int, now: float) -> None:
        if step > self._warm[0]:
            steps, seconds = self._steady
            self._steady = (steps + step - self._warm[0],
                            seconds + now - self._warm[1])


def duration(seconds: float) -> str:
    """`3725.0` -> `"1h02m"`, `185` -> `"3m05s"`, `7.4` -> `"7s"`."""
    if not math.isfinite(seconds):
        return "unknown"
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def closing_line(summary: Sequence[dict], summary_path: str,
                 export_path: str | None) -> str:
    """The run's last line: summary, export, the last round's verdict.

    Args:
        summary: the entries of `summary.json`, round 0 first.
        summary_path: where `summary.json` is.
        export_path: the exported SavedModel, or None if export is off.

    Returns:
        One line, e.g. "Done: summary in W/summary.json, export in
        W/export/lottery/1; round 15 (3.6% of weights) is a winning ticket:
        test accuracy 0.9801 at step 6000 (dense: 0.9790 at step 9000)."
    """
    export = (f"export in {export_path}" if export_path
              else "no export (export.enabled=False)")
    head = f"Done: summary in {summary_path}, {export}"
    last = summary[-1] if summary else None
    dense = next((e for e in summary if e["round"] == 0), None)
    if last is None or last["winning_ticket"] is None or dense is None:
        return f"{head}; no pruned round to judge yet."
    verdict = "is a winning ticket" if last["winning_ticket"] else (
        "is not a winning ticket")
    # Summaries written before other metrics existed compared accuracy.
    metric = last.get("compared_metric", "accuracy")
    key = f"test_{metric}"
    return (
        f"{head}; round {last['round']} "
        f"({100 * last['remaining_fraction']:.1f}% of weights) {verdict}: "
        f"test {metric.replace('_', ' ')} {last[key]:.4f} at step "
        f"{last['early_stop_step']} (dense: {dense[key]:.4f} "
        f"at step {dense['early_stop_step']}).")

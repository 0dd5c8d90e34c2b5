"""Round-aware progress lines: round k of N, ETAs, the closing line."""

import pytest

from keras_lottery.engine import progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_first_eta_of_a_round_leaves_out_compile_time():
    clock = Clock()
    meter = progress.RunProgress(range(3), 1000, clock=clock)
    meter.start_round(0, 0)
    clock.now = 30.0  # the first 100 steps: 29 s tracing, 1 s of steps
    meter.warmed_up(100)
    clock.now = 31.0  # 100 more steps at 100 steps/s
    line = meter.speed(200)
    # The round's ETA is 800 steps at 100 steps/s, not at 200/31 s.
    assert line.startswith("100 steps/s, round ETA 8s, run ETA ")
    assert meter.where(200) == "round 0 of 2, step 200/1000"


def test_run_eta_counts_later_rounds_with_their_overheads():
    clock = Clock()
    meter = progress.RunProgress(range(3), 1000, clock=clock)
    meter.start_round(0, 0)
    clock.now = 30.0
    meter.warmed_up(100)
    clock.now = 39.0
    meter.speed(1000)
    clock.now = 40.0  # round 0 took 40 s in all
    meter.start_round(1, 0)
    clock.now = 50.0
    meter.warmed_up(100)
    clock.now = 55.0
    # 400 steps at 100 steps/s left in this round, then round 2: 40 s.
    assert meter.speed(600) == (
        "100 steps/s, round ETA 4s, run ETA 44s")


def test_no_rate_before_any_step_after_warm_up():
    meter = progress.RunProgress([0], 10, clock=Clock())
    meter.start_round(0, 0)
    meter.warmed_up(10)
    assert meter.speed(10) == "measuring speed"


@pytest.mark.parametrize("seconds,text", [
    (7.4, "7s"), (185, "3m05s"), (3725, "1h02m"), (float("inf"), "unknown"),
])
def test_duration(seconds, text):
    assert progress.duration(seconds) == text


def _entry(round_index, fraction, accuracy, step, winning):
    return {"round": round_index, "remaining_fraction": fraction,
            "test_accuracy": accuracy, "early_stop_step": step,
            "winning_ticket": winning}


def test_closing_line_names_summary_export_and_verdict():
    summary = [_entry(0, 1.0, 0.979, 9000, None),
               _entry(15, 0.036, 0.9801, 6000, True)]
    assert progress.closing_line(summary, "w/summary.json",
                                 "w/export/lottery/1") == (
        "Done: summary in w/summary.json, export in w/export/lottery/1; "
        "round 15 (3.6% of weights) is a winning ticket: test accuracy "
        "0.9801 at step 6000 (dense: 0.9790 at step 9000).")
    summary[-1]["winning_ticket"] = False
    assert "is not a winning ticket" in progress.closing_line(
        summary, "s", None)
    assert progress.closing_line(summary[:1], "s", None) == (
        "Done: summary in s, no export (export.enabled=False); no pruned "
        "round to judge yet.")

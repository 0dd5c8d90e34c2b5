"""The study script of issue 14 (benchmarks/early_study.py): its verdict
and its table, on hand-made rows and workdirs."""

import os

import pytest
import test_report

from benchmarks import early_study
from keras_lottery import paths


def row(arm, remaining, accuracy, steps, round_index=15):
    return {"arm": arm, "round": round_index, "seeds": 3,
            "remaining_fraction": remaining, "test_accuracy": accuracy,
            "ticket_train_steps": steps}


IMP = row("imp", 0.035, 0.980, 800_000)


def test_the_goal_is_met_within_points_and_cost():
    lines = early_study.verdict([
        IMP, row("early_bird", 0.035, 0.9785, 390_000),
        row("snip", 0.035, 0.9790, 50_000)])
    assert lines == [
        "- **Goal met** by early_bird at 3.5%: -0.15 points from IMP for "
        "49% of its iterations.",
        "- **Goal met** by snip at 3.5%: -0.10 points from IMP for 6% of "
        "its iterations."]


def test_the_closest_is_named_when_no_method_meets_the_goal():
    lines = early_study.verdict([
        IMP, row("early_bird", 0.035, 0.979, 500_000),  # too dear
        row("snip", 0.035, 0.970, 50_000),
        row("grasp", 0.035, 0.975, 50_000),
        row("synflow", 0.21, 0.99, 50_000, round_index=7)])  # not sparse
    assert lines == [
        "- **No method met the goal.** Closest within the cost limit: "
        "grasp at 3.5%, -0.50 points from IMP's accuracy at early stop for "
        "6% of its training iterations."]


def test_no_sparse_enough_run_cannot_be_judged():
    assert early_study.verdict([row("imp", 0.5, 0.98, 100, 3)])[0].startswith(
        "No run reached 3.6%")


def test_table_averages_seeds_and_adds_shuffled_controls(tmp_path):
    done = []
    for seed in (0, 1):
        workdir = str(tmp_path / f"snip{seed}")
        test_report.write_run(workdir, seed, (0, 2), mode="one_shot",
                              controls=False)
        test_report.write_run(paths.control_workdir(workdir, "shuffle"),
                              seed, (2,), offset=0.01, mode="one_shot",
                              controls=False)
        done.append(("snip", seed, 2, workdir))
    rows = early_study.table(done)
    assert [r["arm"] for r in rows] == ["snip", "snip (shuffled)"]
    snip, shuffled = rows
    assert snip["seeds"] == 2
    assert snip["remaining_fraction"] == pytest.approx(0.64)
    assert snip["test_accuracy"] == pytest.approx(
        (test_report.accuracy(0, 2) + test_report.accuracy(1, 2)) / 2)
    assert shuffled["test_accuracy"] == pytest.approx(
        snip["test_accuracy"] - 0.01)
    # Written before at_init existed: a one-shot ticket costs rounds 0, 2.
    assert snip["ticket_train_steps"] == 600
    assert os.path.isdir(paths.control_workdir(done[0][3], "shuffle"))

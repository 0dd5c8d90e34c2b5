"""The early study of issue 14 (keras_lottery/studies/early.py and
early_report.py): its verdict and its table, on hand-made rows and
workdirs, and its smoke run on an embedded Ray (inside a private network
namespace, as tests/test_studies.py)."""

import os
import shutil
import subprocess
import sys

import pytest
import test_report

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.studies import early
from keras_lottery.studies import early_report as early_study

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def small(options):
    """The smoke study with three arms and LeNet's instability only."""
    return early.study(options.workdir, options.records, (0,),
                       options.data_dir, options.smoke,
                       arms=("imp", "early_bird", "snip"),
                       instability=("lenet",))


def _study(tmp_path, *args):
    return subprocess.run(
        ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"',
         "bash", sys.executable, "-m", "binaries.study",
         "test_early_study:small", "--smoke", f"--workdir={tmp_path / 'w'}",
         f"--records={tmp_path / 'r'}", *args], cwd=_REPO_ROOT,
        capture_output=True, text=True, timeout=1200,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
             "PYTHONPATH": os.path.join(_REPO_ROOT, "tests")})


@pytest.mark.skipif(subprocess.run(["unshare", "-n", "true"],
                                   capture_output=True).returncode != 0,
                    reason="needs unshare -n to keep Ray on loopback")
def test_the_smoke_study_records_reports_and_resumes(tmp_path, mnist_dir):
    result = _study(tmp_path, f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = tmp_path / "r"
    for folder in ("imp/seed0", "snip/seed0", "snip/seed0/controls/shuffle",
                   "early_bird/seed0/round01", "early_bird/seed0/round02"):
        assert (records / folder / "summary.json").exists(), folder
    # The target round 1 of the early-bird chain copied the chain's round
    # 0 and trained round 1 in full (100 smoke steps).
    chain = files.read_json(records / "early_bird/seed0/round02/summary.json")
    target = files.read_json(records / "early_bird/seed0/round01/summary.json")
    assert target[0] == chain[0]
    assert target[1]["train_steps"] == 100
    assert chain[1]["train_steps"] < 100  # ended by its early-bird check
    # IMP and SNIP share the dense round 0.
    imp = files.read_json(records / "imp/seed0/summary.json")
    snip = files.read_json(records / "snip/seed0/summary.json")
    assert imp[0]["test_accuracy"] == snip[0]["test_accuracy"]
    assert (tmp_path / "r/../instability/lenet_seed0_round00.json").exists()
    assert result.stdout.strip().splitlines()[-1] == (
        f"Report: {tmp_path / 'report.md'}")
    doc = (tmp_path / "report.md").read_text()
    assert "| snip (shuffled) |" in doc and "## The goal" in doc
    assert "## Instability" in doc
    # A rerun trains nothing, even with the workdirs gone.
    shutil.rmtree(tmp_path / "w")
    again = _study(tmp_path, f"--data_dir={mnist_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "==>" not in again.stdout
    assert "nothing to run, every run is recorded" in again.stdout
    rewritten = (tmp_path / "report.md").read_text()
    assert rewritten.split("## Accuracy")[1] == doc.split("## Accuracy")[1]


@pytest.mark.parametrize("kwargs,expected", [
    ({"arms": ("imp", "magic")}, "`arms` must be some of"),
    ({"instability": ("gpu",)}, "`instability` must be some of"),
    ({"rounds": (0,)}, "`rounds` must be at least 1. Received: rounds=0"),
])
def test_bad_arguments_are_one_line(tmp_path, kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        early.study(str(tmp_path / "w"), None, (0,), "", True, **kwargs)
    assert not (tmp_path / "w").exists()

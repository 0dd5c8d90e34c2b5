"""Tests of cost accounting (keras_lottery.lottery.cost) on written workdirs."""

import os

import pytest
import test_report

from keras_lottery.analysis import cost_report
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import cost


def _entries(steps, seconds):
    return [{"round": r, "train_steps": s, "round_seconds": t}
            for r, (s, t) in enumerate(zip(steps, seconds))]


@pytest.mark.parametrize("prune, ticket_steps", [
    ({"mode": "iterative"}, [100, 300, 600]),
    ({"mode": "one_shot"}, [100, 300, 400]),
    ({"mode": "one_shot", "at_init": True}, [100, 200, 300]),
])
def test_cumulative_costs_follow_the_ticket_lineage(prune, ticket_steps):
    entries = _entries([100, 200, 300], [1.0, 2.0, 4.0])
    cost.add_cumulative(entries, prune)
    assert [e["cumulative_train_steps"] for e in entries] == [100, 300, 600]
    assert [e["cumulative_seconds"] for e in entries] == [1.0, 3.0, 7.0]
    assert [e["ticket_train_steps"] for e in entries] == ticket_steps


def test_one_shot_rounds_not_trained_are_not_counted():
    entries = [{"round": r, "train_steps": 100, "round_seconds": 1.0}
               for r in (0, 3, 7)]
    cost.add_cumulative(entries, {"mode": "one_shot"})
    assert [e["cumulative_train_steps"] for e in entries] == [100, 200, 300]
    assert [e["ticket_train_steps"] for e in entries] == [100, 200, 200]


def test_round_cost_reads_the_last_step_and_every_second():
    metrics = {"history": [{"step": 100}, {"step": 700}],
               "train_seconds": 2.0, "eval_seconds": 0.5,
               "prune_seconds": 0.25}
    assert cost.round_cost(metrics) == {"train_steps": 700,
                                        "round_seconds": 2.75}
    del metrics["prune_seconds"]  # metrics of older runs
    assert cost.round_cost(metrics)["round_seconds"] == 2.5


def test_old_summaries_get_their_costs_from_metrics(tmp_path):
    workdir = str(tmp_path / "old")
    test_report.write_run(workdir, 0, range(4), controls=False)
    assert "cumulative_train_steps" not in files.read_json(
        paths.summary_file(workdir))[0]
    entries = cost.load_costs(workdir)
    assert [e["cumulative_train_steps"] for e in entries] == [
        300, 600, 900, 1200]
    assert [e["cumulative_seconds"] for e in entries] == [1.5, 3.0, 4.5, 6.0]


def test_cost_report_of_runs_of_different_configs(tmp_path):
    imp, oneshot = str(tmp_path / "imp"), str(tmp_path / "oneshot")
    test_report.write_run(imp, 0, range(4), controls=False)
    test_report.write_run(oneshot, 1, (0, 3), mode="one_shot",
                          controls=False)
    written = cost_report.write_cost_report(
        [imp, oneshot], str(tmp_path / "out"), labels=["IMP", "one-shot"])
    assert [os.path.basename(p) for p in written] == ["cost.md", "cost.png"]
    with open(written[0], encoding="utf-8") as f:
        table = f.read()
    assert "| IMP | 3 | 51.2 | " in table
    # The one-shot ticket at round 3 cost round 0 and round 3: 600.
    assert "| one-shot | 3 | 51.2 | 94.14 | 600 | 3 | 600 | 3 |" in table
    with open(written[1], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_bad_workdir_is_one_line_and_writes_nothing(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(ValueError, match=r"^`workdirs` names a folder "
                       r"without summary.json: .*Received: '.*nowhere'$"):
        cost_report.write_cost_report([str(tmp_path / "nowhere")], str(output))
    with pytest.raises(ValueError, match=r"^`labels` must give one label"):
        cost_report.write_cost_report([str(tmp_path)], str(output), ["a", "b"])
    assert not output.exists()


@pytest.mark.parametrize("count", [2, 60])
def test_the_legend_never_covers_the_plot(count):
    entries = [{"ticket_train_steps": 1000 * (r + 1), "test_accuracy": 0.9,
                "remaining_fraction": 0.8 ** r} for r in range(4)]
    fig = cost_report.cost_figure(
        [(f"a run with a long label {i}", entries) for i in range(count)])
    fig.draw_without_rendering()
    ax = fig.axes[0]
    few = count <= cost_report.LABELLED_RUNS
    # A few runs: legend inside, points labelled with their % remaining.
    # A study's many: legend beside the axes, within the figure.
    legend = ax.get_legend() if few else fig.legends[0]
    box = legend.get_window_extent()
    assert few or not box.overlaps(ax.get_window_extent())
    assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1
    assert (len(ax.texts) == 4 * count) == few
    # Past the 10-colour cycle, runs still look different.
    looks = {(line.get_color(), line.get_marker(), line.get_linestyle())
             for line in ax.get_lines()}
    assert len(looks) == count

"""The structure study's comparison table, on hand-made records."""

import pytest

from keras_lottery.analysis import tables
from keras_lottery.studies import structure_table


def _cell(accuracies):
    """A cell's rows from `{round: {seed: accuracy}}`."""
    return {"rows": [
        {"round": r, "test_accuracy": tables.summarize(
            list(by_seed.values()), list(by_seed))}
        for r, by_seed in accuracies.items()]}


def test_criteria_are_compared_over_the_seeds_both_cells_have():
    cells = {
        # Magnitude has seeds 0 and 1; seed 1 is far better than seed 0.
        "filter_magnitude": _cell({0: {0: 0.98, 1: 0.99},
                                   1: {0: 0.97, 1: 0.99},
                                   2: {0: 0.96, 1: 0.99}}),
        # Gradient has seed 0 only, and no round 2 yet.
        "filter_gradient": _cell({0: {0: 0.98},
                                  1: {0: 0.965}}),
        # Activation has both seeds at round 2 only.
        "filter_activation": _cell({2: {0: 0.97, 1: 0.98}}),
    }
    versus = structure_table._versus_magnitude(cells)
    assert set(versus) == {"filter_gradient", "filter_activation"}
    gradient = versus["filter_gradient"]
    # Against seed 0's 0.97, not the two seeds' mean of 0.98.
    assert [d["round"] for d in gradient["rounds"]] == [1]
    assert gradient["mean"] == pytest.approx(-0.005)
    assert gradient["seeds"] == [0]
    activation = versus["filter_activation"]
    assert activation["rounds"][0]["seeds"] == [0, 1]
    assert activation["mean"] == pytest.approx(0.0)   # (+0.01 - 0.01) / 2
    assert (activation["worst"], activation["best"]) == (
        pytest.approx(0.0), pytest.approx(0.0))


def test_a_criterion_without_a_shared_seed_is_left_out():
    cells = {"neuron_magnitude": _cell({1: {0: 0.97}}),
             "neuron_apoz": _cell({1: {2: 0.96}}),
             "weight_magnitude_global": _cell({1: {0: 0.9}})}
    assert structure_table._versus_magnitude(cells) == {}


def _run(seed, accuracies):
    """A recorded run whose round r has test accuracy `accuracies[r]`;
    every pruned round stops early before the dense round does."""
    summary = [{"round": r, "remaining_fraction": 0.8 ** r,
                "test_accuracy": a, "final_test_accuracy": a,
                "early_stop_step": 50 if r else 60, "train_seconds": 1.0,
                "eval_seconds": 1.0,
                "winning_ticket": bool(r) and a >= accuracies[0]}
               for r, a in enumerate(accuracies)]
    rounds = [{"round": r, "shrunk": {"kernel_entries": 100,
                                      "kernel_nonzero": 100,
                                      "units": {"fc1": 10}}}
              for r in range(len(accuracies))]
    return {"config": {"seed": seed, "train": {"num_steps": 100}},
            "summary": summary, "rounds": rounds, "controls": {}}


def test_wins_by_fewer_than_ten_test_images_are_marked_narrow():
    # Against a dense 98.00%: seed 0 wins round 1 by 9 images and round 2
    # by exactly 10, seed 1 by 50 and 10; seed 0 loses round 3 by 1.
    runs = [_run(0, [0.98, 0.9809, 0.9810, 0.9799]),
            _run(1, [0.97, 0.9750, 0.9710, 0.9710])]
    table = structure_table.compare({"neuron_magnitude": runs}, {})
    rows = table["cells"]["neuron_magnitude"]["rows"]
    assert [(r["winning"], r["narrow_wins"]) for r in rows[1:]] == [
        (2, 1), (2, 0), (1, 0)]
    text = structure_table.format_comparison(table, {})
    assert "| 2/2 (narrow: 1) |" in text
    assert "| 1/2 |" in text


def test_units_that_differ_over_the_seeds_are_reported_as_a_range():
    # Seed 1's criterion removed two of fc1's units, seed 0's none.
    runs = [_run(0, [0.98, 0.98]), _run(1, [0.98, 0.98])]
    runs[1]["rounds"][1]["shrunk"]["units"] = {"fc1": 8}
    table = structure_table.compare({"weight_activation": runs}, {})
    rows = table["cells"]["weight_activation"]["rows"]
    assert [r["units"] for r in rows] == [{"fc1": [10, 10]},
                                          {"fc1": [8, 10]}]
    text = structure_table.format_comparison(table, {})
    assert "| 0 | 100 | 100 | 10 |" in text
    assert "| 1 | 80 | 100 | 8-10 |" in text


def test_a_late_rewind_cell_and_the_instability_are_reported():
    rewound = [_run(0, [0.98, 0.981])]
    rewound[0]["config"]["prune"] = {"rewind_step": 500}
    rows = [{"rewind_step": k, "alphas": [0.0, 1.0],
             "test_errors": [0.02, 0.02], "end_errors": [0.02, 0.021],
             "max_error": 0.02 + gap, "instability": gap - 0.0005,
             "stable": gap < 0.02} for k, gap in ((0, 0.05), (500, 0.01))]
    table = structure_table.compare(
        {"weight_magnitude": [_run(0, [0.98, 0.97])],
         "weight_magnitude_rewind": rewound}, {},
        {"dense_seed0_round00": {"round": 0, "rows": rows, "files": []},
         "weight_magnitude_seed0_round11": {"round": 11, "rows": rows}})
    assert "rewind_step" not in table["cells"]["weight_magnitude"]
    text = structure_table.format_comparison(table, {})
    assert "## weight_magnitude_rewind (rewinding to iteration 500)" in text
    assert text.index("## Instability: dense_seed0_round00") > text.index(
        "## weight_magnitude_rewind")
    assert "| 0 | 2.00 | 2.10 | 7.00 | 4.95 | no |" in text
    dense, sparse = text.split("## Instability: ")[1:]
    assert "two trainings of the dense network from W_k on" in dense
    assert "two trainings of round 11's sparse network (its masks on W_k)" \
        in sparse
    assert "| 500 | 2.00 | 2.10 | 3.00 | 0.95 | yes |" in text


def test_a_report_names_its_parts_latency_columns_before_they_are_measured(
        tmp_path):
    table = structure_table.compare(
        {"neuron_magnitude": [_run(0, [0.98, 0.981])]}, {})
    missing = str(tmp_path / "latency.json")
    vit = structure_table.format_comparison(
        table, structure_table.load_latency(missing, "vit"))
    assert "| b1 / b64 / TFLite b1 / TFLite b64 latency µs |" in vit
    lenet = structure_table.format_comparison(
        table, structure_table.load_latency(missing, "lenet"))
    assert "| b1 / b256 latency µs |" in lenet
    assert structure_table.load_latency(missing, "lenet") == {"shapes": {}}

"""benchmarks/same_numbers.py: a rerun against the reproduction's report."""

import json

from benchmarks import same_numbers


def _report(values):
    """A report.json's ticket rows: `values[round] = [(acc, stop, end)]`
    for seeds 0, 1."""
    rows = []
    for round_index, per_seed in values.items():
        rows.append({"round": round_index, "ticket": {
            field: {"seeds": [0, 1], "values": [v[i] for v in per_seed]}
            for i, field in enumerate(same_numbers.FIELDS)}})
    return {"rows": rows}


def test_rounds_that_differ_are_named_with_their_differences(tmp_path):
    report = _report({0: [(0.9787, 6700.0, 0.9811), (0.978, 3700.0, 0.98)],
                      1: [(0.9801, 4000.0, 0.9820), (0.979, 3000.0, 0.98)]})
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"seed": 0}))
    (workdir / "summary.json").write_text(json.dumps([
        {"round": 0, "test_accuracy": 0.9787, "early_stop_step": 6700,
         "final_test_accuracy": 0.9811},
        {"round": 1, "test_accuracy": 0.9812, "early_stop_step": 4100,
         "final_test_accuracy": 0.9820},
        {"round": 2, "test_accuracy": 0.97, "early_stop_step": 100,
         "final_test_accuracy": 0.97}]))
    agree, lines = same_numbers.compare(
        same_numbers.reference_values(report), str(workdir))
    assert agree == 1
    assert lines == [
        "seed 0 round  1: early stop 98.12% at 4,100 (reference 98.01% at "
        "4,000, +0.11 points); end 98.20% (+0.00)",
        "seed 0 round 2: not in the reference"]

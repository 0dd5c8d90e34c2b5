"""Tests of `keras_lottery.analysis.tables`, `binaries.report` and the checks of
`benchmarks/tfmot_baseline.py`, on workdirs written by hand.

The fake runs' numbers are dyadic fractions, so means and stds over seeds
are exact in floating point: seed s, round r has test accuracy
0.9375 + s/64 - r/256 (mean over seeds 0..2: 0.953125 - r/256, std 1/64)
and early-stop step 1000 (s + 1) + 100 r (mean 2000 + 100 r, std 1000).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib import image

from configs import lenet300_mnist
from keras_lottery.analysis import report
from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.base import paths

SEEDS = (0, 1, 2)
NUM_ROUNDS = 3
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def accuracy(seed, round_index, offset=0.0):
    return 0.9375 + seed / 64 - round_index / 256 - offset


def config_dict(seed, mode="iterative", **changes):
    config = lenet300_mnist.get_config("smoke")
    config.seed = seed
    config.prune.mode = mode
    config.data.dir = f"/data/seed{seed}"  # may differ: a resumable field
    for name, value in changes.items():
        section, field = name.split("__")
        config[section][field] = value
    return json.loads(config.to_json())


def write_run(workdir, seed, rounds, offset=0.0, mode="iterative",
              controls=True, **changes):
    """Writes config.json, summary.json, metrics.json (and controls')."""
    files.write_json(paths.config_file(workdir),
                     config_dict(seed, mode, **changes))
    entries = []
    for r in rounds:
        entry = {
            "round": r, "remaining_fraction": 0.8 ** r,
            "early_stop_step": 1000 * (seed + 1) + 100 * r,
            "test_accuracy": accuracy(seed, r, offset),
            "final_test_accuracy": accuracy(seed, r, offset + 1 / 128),
            "train_seconds": 1.0, "eval_seconds": 0.5,
            "winning_ticket": None if r == 0 else True,
        }
        entries.append(entry)
        history = [{"step": step, "test_accuracy": accuracy(seed, r, offset)
                    - (300 - step) / 10000, "validation_loss": 0.1}
                   for step in (100, 200, 300)]
        files.write_json(paths.metrics_file(workdir, r),
                         {**entry, "history": history})
    files.write_json(paths.summary_file(workdir), entries)
    if controls:
        for control, extra in (("random_reinit", 1 / 32),
                               ("random_prune", 1 / 16)):
            write_run(paths.control_workdir(workdir, control), seed,
                      [r for r in rounds if r > 0], offset + extra, mode,
                      controls=False, **changes)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """Three seeds (seed 2 lacks the last round), one-shot runs, tfmot."""
    root = tmp_path_factory.mktemp("experiment")
    workdirs, one_shot = [], []
    for seed in SEEDS:
        rounds = range(NUM_ROUNDS + (0 if seed == 2 else 1))
        workdirs.append(str(root / f"seed{seed}"))
        write_run(workdirs[-1], seed, rounds)
        one_shot.append(str(root / f"oneshot_seed{seed}"))
        write_run(one_shot[-1], seed, range(NUM_ROUNDS + 1), 1 / 128,
                  mode="one_shot", controls=False)
    tfmot = str(root / "tfmot.json")
    files.write_json(tfmot, {
        "machine": "test machine", "settings": {"steps": 300},
        "runs": [{"final_sparsity": s, "seed": seed,
                  "test_accuracy": 0.9 + seed / 32}
                 for s in (1 - 0.8 ** 2, 0.999) for seed in (0, 1)],
    })
    output = str(root / "report")
    table = report.write_report(workdirs, output, one_shot, tfmot)
    return {"root": root, "workdirs": workdirs, "one_shot": one_shot,
            "tfmot": tfmot, "output": output, "table": table}


def test_rows_hold_mean_and_std_over_seeds(experiment):
    rows = experiment["table"]["rows"]
    assert [row["round"] for row in rows] == [0, 1, 2, 3]
    assert [row["remaining_fraction"] for row in rows] == [
        0.8 ** r for r in range(4)]
    for row in rows[:3]:
        r = row["round"]
        ticket = row["ticket"]
        assert ticket["test_accuracy"]["mean"] == 0.953125 - r / 256
        assert ticket["test_accuracy"]["std"] == 1 / 64
        assert ticket["test_accuracy"]["values"] == [
            accuracy(s, r) for s in SEEDS]
        assert ticket["early_stop_step"]["mean"] == 2000 + 100 * r
        assert ticket["early_stop_step"]["std"] == 1000
        assert ticket["final_test_accuracy"]["mean"] == (
            0.953125 - r / 256 - 1 / 128)
        assert ticket["test_accuracy"]["n"] == 3
        assert row["one_shot"]["test_accuracy"]["mean"] == (
            0.953125 - r / 256 - 1 / 128)
        if r == 0:
            assert row["random_reinit"] is None
            assert row["random_prune"] is None
        else:
            assert row["random_reinit"]["test_accuracy"]["mean"] == (
                0.953125 - r / 256 - 1 / 32)
            assert row["random_prune"]["test_accuracy"]["mean"] == (
                0.953125 - r / 256 - 1 / 16)
            assert row["random_prune"]["early_stop_step"]["std"] == 1000


def test_a_round_missing_in_a_seed_counts_the_others(experiment):
    last = experiment["table"]["rows"][-1]
    for series in ("ticket", "random_reinit", "random_prune"):
        stats = last[series]["test_accuracy"]
        assert stats["n"] == 2 and stats["seeds"] == [0, 1]
        assert stats["mean"] == 0.9375 + 1 / 128 - 3 / 256 - {
            "ticket": 0, "random_reinit": 1 / 32,
            "random_prune": 1 / 16}[series]
        assert stats["std"] == pytest.approx(np.std([0, 1 / 64], ddof=1))
    assert last["one_shot"]["test_accuracy"]["n"] == 3


def test_tfmot_points_sit_in_the_row_of_their_sparsity(experiment):
    table = experiment["table"]
    matched = [row["round"] for row in table["rows"] if row["tfmot"]]
    assert matched == [2]
    stats = table["rows"][2]["tfmot"]["test_accuracy"]
    assert (stats["mean"], stats["std"], stats["n"]) == (
        0.9 + 1 / 64, np.std([0, 1 / 32], ddof=1), 2)
    assert len(table["tfmot_points"]) == 2
    assert table["tfmot"]["machine"] == "test machine"


def test_markdown_tables(experiment):
    with open(os.path.join(experiment["output"], "report.md")) as f:
        text = f.read()
    assert text.count("\n## ") == 4
    for title in (*tables.METRICS.values(), "Findings"):
        assert f"## {title}" in text
    lines = text.splitlines()
    accuracy_rows = [line for line in lines if line.startswith("| 1 | 80 |")]
    # Ticket, random reinit, random prune, one-shot (+ tfmot: none here).
    assert accuracy_rows[0] == (
        "| 1 | 80 | 94.92 ± 1.56 | 91.80 ± 1.56 | 88.67 ± 1.56 "
        "| 94.14 ± 1.56 | — |")
    assert accuracy_rows[1] == (
        "| 1 | 80 | 2,100 ± 1,000 | 2,100 ± 1,000 | 2,100 ± 1,000 "
        "| 2,100 ± 1,000 |")
    round_2 = [line for line in lines if line.startswith("| 2 | 64 |")]
    assert round_2[0].endswith("| 91.56 ± 2.21 |")  # tfmot, 2 seeds
    assert "| 3 | 51.2 | 93.36 ± 1.10 (n=2) |" in text
    assert "| 0 | 100 | 95.31 ± 1.56 | — | — | 94.53 ± 1.56 |" in text
    assert "0.1% remaining" in text  # the unmatched tfmot point


def test_findings_of_the_written_report(experiment):
    found = experiment["table"]["findings"]
    assert found["dense"]["test_accuracy"] == 0.953125
    ticket = found["series"]["ticket"]
    # Every pruned round is 1/256 below the dense mean, or more.
    assert ticket["holds_down_to"] is None
    assert ticket["first_below"] == 0.8
    assert ticket["peak"]["gain"] == -1 / 256
    # Round 3 has seeds 0 and 1 only: steps 1,300 and 2,300.
    assert ticket["earliest"] == {"remaining_fraction": 0.8 ** 3,
                                  "early_stop_step": 1800, "ratio": 0.9}
    assert [(w["round"], w["seeds"], w["of"]) for w in ticket["winning"]] == [
        (1, 3, 3), (2, 3, 3), (3, 2, 2)]
    with open(os.path.join(experiment["output"], "report.md")) as f:
        text = f.read()
    assert ("- Winning ticket (iterative): below the dense accuracy from its "
            "first pruned round; peak 94.92% at 80% remaining (-0.39 "
            "points); earliest early stop at iteration 1,800 (90% of "
            "dense) at 51.2% remaining. Seeds with a winning ticket (a' >= a, "
            "t' <= t): 80%: 3/3, 64%: 3/3, 51.2%: 2/2.") in text
    assert ("- tfmot at 64% remaining: 91.56% (end of training) vs the "
            "ticket's 94.53% at early stop and 93.75% at the end (round "
            "2).") in text


def _table(accuracies, steps):
    rows = [{"round": r, "remaining_fraction": 0.8 ** r, "tfmot": None,
             "ticket": {"test_accuracy": {"mean": a},
                        "early_stop_step": {"mean": t},
                        "final_test_accuracy": {"mean": a}}}
            for r, (a, t) in enumerate(zip(accuracies, steps))]
    return {"rows": rows, "series": ["ticket"]}


def test_findings_say_how_far_tickets_hold_the_dense_accuracy():
    found = tables.find(_table([0.98, 0.981, 0.985, 0.979, 0.982],
                               [1000, 800, 600, 900, 1200]))
    ticket = found["series"]["ticket"]
    assert ticket["holds_down_to"] == 0.8 ** 2
    assert ticket["first_below"] == 0.8 ** 3  # the later recovery aside
    assert ticket["peak"]["remaining_fraction"] == 0.8 ** 2
    assert ticket["peak"]["gain"] == pytest.approx(0.005)
    assert ticket["earliest"] == {"remaining_fraction": 0.8 ** 2,
                                  "early_stop_step": 600, "ratio": 0.6}
    assert ticket["winning"] == []
    assert tables.find(_table([0.98, 0.99], [1000, 900]))["series"][
        "ticket"]["first_below"] is None


def test_report_json_is_the_table(experiment):
    written = files.read_json(os.path.join(experiment["output"],
                                           "report.json"))
    assert written == json.loads(json.dumps(experiment["table"]))
    assert written["seeds"] == [0, 1, 2]
    assert written["series"] == ["ticket", "random_reinit", "random_prune",
                                 "one_shot"]


@pytest.mark.parametrize("name, shape", [
    ("controls.png", (450, 1500)), ("one_shot.png", (450, 1500)),
    ("curves.png", (500, 800))])
def test_plots_are_written(experiment, name, shape):
    path = os.path.join(experiment["output"], name)
    assert path in experiment["table"]["files"]
    assert os.path.getsize(path) > 20_000
    pixels = image.imread(path)
    assert pixels.shape[:2] == shape
    assert pixels.std() > 0.05  # not a blank canvas


def test_range_error_bars_and_no_extras(experiment, tmp_path):
    table = report.write_report(experiment["workdirs"][:2], str(tmp_path),
                                error_bars="range")
    assert sorted(os.listdir(tmp_path)) == [
        "controls.png", "curves.png", "report.json", "report.md"]
    assert table["tfmot"] is None and table["one_shot_seeds"] == []
    assert table["rows"][1]["ticket"]["test_accuracy"]["n"] == 2


def test_controls_are_optional(tmp_path):
    workdir = str(tmp_path / "seed0")
    write_run(workdir, 0, range(2), controls=False)
    table = report.write_report([workdir], str(tmp_path / "out"))
    assert table["series"] == ["ticket"]
    assert table["rows"][1]["ticket"]["test_accuracy"]["std"] is None
    with open(tmp_path / "out" / "report.md") as f:
        assert "| 1 | 80 | 93.36 |" in f.read()


# Every user-facing error: (setup, expected message).
def _missing(tmp_path):
    return {"workdirs": [str(tmp_path / "nowhere")]}


def _no_config(tmp_path):
    os.makedirs(tmp_path / "empty")
    return {"workdirs": [str(tmp_path / "empty")]}


def _no_summary(tmp_path):
    write_run(str(tmp_path / "w"), 0, range(2))
    os.remove(paths.summary_file(str(tmp_path / "w")))
    return {"workdirs": [str(tmp_path / "w")]}


def _bad_summary(tmp_path):
    write_run(str(tmp_path / "w"), 0, range(2))
    files.write_json(paths.summary_file(str(tmp_path / "w")), [{"round": 0}])
    return {"workdirs": [str(tmp_path / "w")]}


def _other_config(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    write_run(str(tmp_path / "b"), 1, range(2),
              train__learning_rate=0.1)
    return {"workdirs": [str(tmp_path / "a"), str(tmp_path / "b")]}


def _same_seed(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    write_run(str(tmp_path / "b"), 0, range(2))
    return {"workdirs": [str(tmp_path / "a"), str(tmp_path / "b")]}


def _not_one_shot(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    write_run(str(tmp_path / "b"), 0, range(2))
    return {"workdirs": [str(tmp_path / "a")],
            "one_shot_workdirs": [str(tmp_path / "b")]}


def _one_shot_other_config(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    write_run(str(tmp_path / "b"), 0, range(2), mode="one_shot",
              prune__fraction_per_round=0.5)
    return {"workdirs": [str(tmp_path / "a")],
            "one_shot_workdirs": [str(tmp_path / "b")]}


def _other_sparsity(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    write_run(str(tmp_path / "b"), 1, range(2))
    summary = files.read_json(paths.summary_file(str(tmp_path / "b")))
    summary[1]["remaining_fraction"] = 0.7
    files.write_json(paths.summary_file(str(tmp_path / "b")), summary)
    return {"workdirs": [str(tmp_path / "a"), str(tmp_path / "b")]}


def _no_tfmot(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    return {"workdirs": [str(tmp_path / "a")],
            "tfmot": str(tmp_path / "none.json")}


def _bad_tfmot(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    files.write_json(str(tmp_path / "t.json"), {"runs": []})
    return {"workdirs": [str(tmp_path / "a")],
            "tfmot": str(tmp_path / "t.json")}


def _output_is_a_file(tmp_path):
    write_run(str(tmp_path / "a"), 0, range(2))
    (tmp_path / "file").write_text("x")
    return {"workdirs": [str(tmp_path / "a")],
            "output": str(tmp_path / "file" / "out")}


ERRORS = [
    (_missing, r"`workdirs` names a folder that does not exist\. "
               r"Received: '.*nowhere'"),
    (_no_config, r"`workdirs` names a folder that holds no lottery run "
                 r"\(no config\.json\)"),
    (_no_summary, r"`workdirs` names a run without summary\.json: it has "
                  r"not run to the end"),
    (_bad_summary, r"summary\.json is not a lottery summary: it needs a "
                   r"list of entries with early_stop_step"),
    (_other_config, r"`workdirs` must be runs of one config, differing "
                    r"only in seed, tune\.\*, data\.dir, .*Differences: "
                    r"train\.learning_rate=0\.1 in '.*b' but 0\.0012 in"),
    (_same_seed, r"`workdirs` holds two runs of seed 0: '.*a' and '.*b'"),
    (_not_one_shot, r"`one_shot_workdirs` must be one-shot runs\. "
                    r"Received: '.*b' with prune\.mode='iterative'"),
    (_one_shot_other_config, r"`one_shot_workdirs` must be runs of one "
                             r"config.*prune\.fraction_per_round=0\.5"),
    (_other_sparsity, r"Round 1 keeps 0\.7 of the weights in '.*b' "
                      r"\(ticket\) but 0\.8 in '.*a' \(ticket\): the runs "
                      r"do not prune alike"),
    (_no_tfmot, r"`tfmot` names a file that does not exist"),
    (_bad_tfmot, r"t\.json is not a tfmot baseline: it needs `runs`"),
    (_output_is_a_file, r"`output` cannot be written: Not a directory\. "
                        r"Received: output='.*out'"),
]


@pytest.mark.parametrize("setup, message", ERRORS,
                         ids=[f.__name__ for f, _ in ERRORS])
def test_bad_input_is_refused_with_a_clear_message(tmp_path, setup,
                                                   message):
    arguments = {"output": str(tmp_path / "out"), **setup(tmp_path)}
    with pytest.raises(ValueError, match=message):
        report.write_report(**arguments)


def test_no_workdirs_and_bad_error_bars(tmp_path):
    with pytest.raises(ValueError, match=r"`workdirs` must name at least "
                                         r"one workdir\. Received: "
                                         r"workdirs=\[\]"):
        report.write_report([], str(tmp_path))
    with pytest.raises(ValueError, match=r"`error_bars` must be one of "
                                         r"'std', 'range'\. Received: "
                                         r"error_bars='minmax'"):
        report.write_report(["x"], str(tmp_path), error_bars="minmax")


# The binary runs in a subprocess: binaries.export defines --output too, and
# absl refuses two definitions of a flag in one process. One process parses
# each case's command line as `cli.run` does and calls `main` under
# flagsaver.
_BINARY = textwrap.dedent("""
    import json, sys
    from absl.testing import flagsaver
    from binaries import cli, report
    results = []
    for argv in json.loads(sys.argv[1]):
        code = 0
        with flagsaver.flagsaver():
            try:
                report.main(cli.parse_flags(["report", *argv], "report"))
            except SystemExit as e:
                code = e.code
        results.append(code)
    print("RESULTS " + json.dumps(results))
""")


def test_binary(experiment, tmp_path):
    workdirs = ",".join(experiment["workdirs"])
    output = str(tmp_path / "out")
    cases = [
        [f"--workdirs={workdirs}",
         f"--one_shot_workdirs={','.join(experiment['one_shot'])}",
         f"--tfmot={experiment['tfmot']}", f"--output={output}",
         "--error_bars=range"],
        [f"--workdirs={workdirs},{tmp_path / 'nowhere'}",
         f"--output={output}"],
        [f"--workdirs={experiment['one_shot'][0]}",
         f"--one_shot_workdirs={experiment['workdirs'][0]}",
         f"--output={output}"],
        [f"--workdirs={workdirs}", f"--output={output}",
         "--error_bars=minmax"],
        [f"--cost_workdirs={workdirs}", f"--output={output}_cost"],
    ]
    result = subprocess.run(
        [sys.executable, "-c", _BINARY, json.dumps(cases)],
        capture_output=True, text=True, cwd=_REPO_ROOT, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines()
            if x.startswith("RESULTS ")][-1]
    codes = json.loads(line[len("RESULTS "):])
    assert codes[0] == 0
    for name in ("report.md", "report.json", "controls.png", "one_shot.png",
                 "curves.png"):
        assert os.path.join(output, name) in result.stdout
    assert files.read_json(os.path.join(output, "report.json"))["rows"] == (
        json.loads(json.dumps(experiment["table"]["rows"])))
    for code in codes[1:4]:
        assert isinstance(code, str) and "\n" not in code, code
    assert codes[1].startswith(
        "report: `workdirs` names a folder that does not exist.")
    assert codes[2].startswith(
        "report: `one_shot_workdirs` must be one-shot runs.")
    assert codes[3].startswith("report: ") and "minmax" in codes[3]
    assert codes[4] == 0
    assert os.path.exists(os.path.join(output + "_cost", "cost.png"))


def _tfmot_baseline(env):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.tfmot_baseline",
         "--output=/nonexistent/tfmot.json"],
        capture_output=True, text=True, cwd=_REPO_ROOT, timeout=120,
        env=env)


def test_tfmot_baseline_needs_legacy_keras():
    env = {k: v for k, v in os.environ.items()
           if k != "TF_USE_LEGACY_KERAS"}
    result = _tfmot_baseline(env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "tfmot_baseline: set TF_USE_LEGACY_KERAS=1: tfmot 0.8.1 needs "
        "Keras 2 (tf_keras). Received: TF_USE_LEGACY_KERAS=None")


def test_tfmot_baseline_needs_tfmot():
    import importlib.util

    if importlib.util.find_spec("tensorflow_model_optimization"):
        pytest.skip("tfmot is installed in this environment")
    result = _tfmot_baseline({**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "tfmot_baseline: tensorflow-model-optimization ")
    assert "pip install -e '.[tfmot]'" in result.stderr


def test_runs_from_before_a_field_existed_agree_with_its_default():
    new = config_dict(1)
    # The full configs' check interval: a smoke run scales it (to 6).
    new["prune"]["early_bird"]["every_steps"] = 1000
    old = config_dict(0)
    del old["prune"]["early_bird"], old["data"]["classes"]
    runs = [tables.Run("old", old, {}), tables.Run("new", new, {})]
    tables.check_same_config(runs, runs[0], "workdirs",
                             tables.IGNORED_FIELDS)
    # A value other than the one older runs had is a real difference.
    new["prune"]["early_bird"]["enabled"] = True
    with pytest.raises(ValueError, match=r"prune.early_bird.enabled=True in "
                       r"'new' but False in 'old'"):
        tables.check_same_config(runs, runs[0], "workdirs",
                                 tables.IGNORED_FIELDS)

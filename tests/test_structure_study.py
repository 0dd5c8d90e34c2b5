"""The structure study (keras_lottery/studies/structure.py): its runs,
records and report end to end (smoke, on an embedded Ray inside a private
network namespace, as tests/test_studies.py), and its latency benchmark
(benchmarks/structure_latency.py)."""

import os
import subprocess
import sys

import pytest

from keras_lottery.base import files
from keras_lottery.studies import grid
from keras_lottery.studies import structure

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_cell(options):
    """LeNet's neuron_magnitude cell, its dense round and controls."""
    return structure.study("structure", ("lenet",), options.workdir,
                           options.records, options.seeds or (0,),
                           options.data_dir, options.smoke,
                           cells=("neuron_magnitude",))


def study(*args):
    return subprocess.run(
        ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"',
         "bash", sys.executable, "-m", "binaries.study",
         "test_structure_study:one_cell", *args], cwd=_REPO_ROOT,
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
             "PYTHONPATH": os.path.join(_REPO_ROOT, "tests")})


@pytest.fixture(scope="module")
def recorded(mnist_dir, tmp_path_factory):
    if subprocess.run(["unshare", "-n", "true"],
                      capture_output=True).returncode != 0:
        pytest.skip("needs unshare -n to keep Ray on loopback")
    root = tmp_path_factory.mktemp("study")
    args = ["--smoke", "--seeds=0", f"--workdir={root / 'work'}",
            f"--records={root / 'records'}", f"--data_dir={mnist_dir}"]
    first = study(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    return root, args, first.stdout


def test_a_cell_is_recorded_with_its_shrunk_size_and_controls(recorded):
    root, _, _ = recorded
    record = root / "records" / "lenet" / "neuron_magnitude" / "seed0"
    rounds = files.read_json(str(record / "rounds.json"))
    summary = files.read_json(str(record / "summary.json"))
    assert [e["round"] for e in summary] == [0, 1, 2, 3]
    assert "history" not in rounds[1]
    # 20% of the neurons of fc1 and fc2 per round; the classes stay.
    assert [r["shrunk"]["units"] for r in rounds] == [
        {"fc1": 300, "fc2": 100, "output": 10},
        {"fc1": 240, "fc2": 80, "output": 10},
        {"fc1": 192, "fc2": 64, "output": 10},
        {"fc1": 154, "fc2": 51, "output": 10}]
    # fc2's rows of removed fc1 neurons are gone too: fewer parameters
    # left than the masks say.
    dense = rounds[0]["shrunk"]["kernel_entries"]
    assert rounds[3]["shrunk"]["kernel_nonzero"] == 784 * 154 + 154 * 51 + (
        51 * 10)
    assert rounds[3]["shrunk"]["kernel_nonzero"] / dense < (
        summary[3]["remaining_fraction"] - 0.02)
    models = files.read_json(str(record / "models.json"))
    assert len(models) == 4
    for control in ("random_reinit", "random_prune"):
        entries = files.read_json(
            str(record / "controls" / control / "summary.json"))
        assert [e["round"] for e in entries] == [3]


def test_a_rerun_skips_what_is_recorded(recorded):
    _, args, first = recorded
    assert "==> " in first
    again = study(*args)
    assert again.returncode == 0, again.stderr
    assert "==> " not in again.stdout


def test_a_dry_run_lists_what_is_left_and_writes_nothing(recorded,
                                                          tmp_path):
    _, args, _ = recorded
    done = study(*args, "--dry_run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nothing to run: every run is recorded"
    left = structure.study("structure", ("lenet",), str(tmp_path),
                           str(tmp_path), (0,), "data", False,
                           cells=("neuron_magnitude",))
    controls = [[f"lenet_neuron_magnitude_seed0_{c}_round{r:02d}"
                 for r in (3, 6, 10)] + [f"lenet_neuron_magnitude_seed0_{c}"]
                for c in ("random_reinit", "random_prune")]
    assert [run.name for run in grid.needed(left.runs)] == [
        "lenet_dense_seed0", "lenet_neuron_magnitude_seed0", *controls[0],
        *controls[1]]
    assert not os.listdir(tmp_path)


def test_the_report_compares_cells_from_the_records(recorded):
    root, _, first = recorded
    output = root / "report" / "lenet"
    assert first.strip().splitlines()[-1] == (
        f"Report: {output / 'comparison.md'}")
    table = files.read_json(str(output / "comparison.json"))
    rows = table["cells"]["neuron_magnitude"]["rows"]
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    assert rows[3]["parameters_left"]["mean"] < rows[3]["weights_left"]
    controls = rows[3]["controls"]
    ticket = rows[3]["test_accuracy"]["mean"]
    for control in ("random_reinit", "random_prune"):
        assert controls[control]["ticket_minus_control"]["mean"] == (
            pytest.approx(ticket - controls[control]["test_accuracy"]
                          ["mean"]))
    # Early stops at the round's last evaluation, counted from the records.
    record = root / "records" / "lenet" / "neuron_magnitude" / "seed0"
    steps = files.read_json(str(record / "config.json"))["train"][
        "num_steps"]
    summary = files.read_json(str(record / "summary.json"))
    assert [r["stopped_at_end"] for r in rows] == [
        int(e["early_stop_step"] == steps) for e in summary]
    for name in ("comparison.md", "accuracy.png", "layers.png",
                 "neuron_magnitude/report.md"):
        assert os.path.getsize(output / name) > 0


def test_latency_measures_only_the_shapes_not_yet_measured(recorded):
    root, _, _ = recorded

    def report(*args):
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.structure_latency",
             "--part=lenet", f"--records={root / 'records'}",
             f"--output={root / 'latency'}", "--calls=5", "--repeats=1",
             *args], cwd=_REPO_ROOT, capture_output=True, text=True,
            timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert result.returncode == 0, result.stderr[-3000:]
        return files.read_json(str(root / "latency" / "lenet" /
                                   "latency.json"))

    first = report()
    shapes = sorted(first["shapes"])
    assert len(shapes) == 4  # dense and rounds 1-3: one shape each
    assert "best of 1 medians of 5 calls" in first["note"]
    kept, dropped = shapes[0], shapes[1]
    first["shapes"][kept] = {"1": 7.0, "256": 7.0}
    del first["shapes"][dropped]
    files.write_json(str(root / "latency" / "lenet" / "latency.json"), first)
    again = report()
    assert sorted(again["shapes"]) == shapes
    assert again["shapes"][kept] == {"1": 7.0, "256": 7.0}
    assert 0 < again["shapes"][dropped]["1"] < 1
    assert report("--remeasure")["shapes"][kept]["1"] < 1


def test_vit_latency_adds_tflite_and_batch_64_column_by_column(tmp_path):
    # The committed 2:4 cell of the ViT: one shape (2:4 removes no unit).
    def measure():
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.structure_latency",
             "--part=vit", "--cells=2-4_magnitude", f"--output={tmp_path}",
             "--calls=2", "--repeats=1"], cwd=_REPO_ROOT,
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert result.returncode == 0, result.stderr[-3000:]
        return files.read_json(str(tmp_path / "vit" / "latency.json"))

    first = measure()
    assert first["columns"] == ["1", "64", "tflite_1", "tflite_64"]
    (shape, times), = first["shapes"].items()
    assert list(times) == first["columns"] and all(
        0 < t < 1 for t in times.values())
    del times["tflite_64"]
    times["1"] = 7.0
    files.write_json(str(tmp_path / "vit" / "latency.json"), first)
    again = measure()["shapes"][shape]
    assert again["1"] == 7.0 and 0 < again["tflite_64"] < 1
    with open(tmp_path / "vit" / "comparison.md", encoding="utf-8") as f:
        text = f.read()
    assert "SavedModel serving signature and TFLite interpreter" in text
    assert "| b1 / b64 / TFLite b1 / TFLite b64 latency µs |" in text


@pytest.mark.parametrize("args, message", [
    (["--cells=nope"], "--cells must be cells of part vit (weight_magnitude"),
    (["--records=/nowhere"], "--records holds no finished run of part vit. "
     "Received: --records=/nowhere"),
])
def test_latency_names_bad_input_in_one_line(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.structure_latency", "--part=vit",
         f"--output={tmp_path}", *args], cwd=_REPO_ROOT, capture_output=True,
        text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert not os.listdir(tmp_path)


def test_unknown_cells_are_named(tmp_path):
    with pytest.raises(ValueError, match="`cells` must be cells of part "
                       "lenet .*Received: cells=nope"):
        structure.study("structure", ("lenet",), str(tmp_path), None, (0,),
                        "", False, cells=("nope",))


def _touch_round(workdir, r):
    os.makedirs(os.path.join(workdir, f"round_{r:02d}"), exist_ok=True)
    with open(os.path.join(workdir, f"round_{r:02d}", "metrics.json"),
              "w") as f:
        f.write("{}")


def test_each_control_round_starts_once_the_run_has_that_round(tmp_path):
    study_ = structure.study("structure", ("conv2",), str(tmp_path / "work"),
                             str(tmp_path / "records"), (1,), "data", False,
                             cells=("weight_magnitude",))
    # weight_magnitude: controls at rounds 5, 10, 15
    plan = {run.name.removeprefix("conv2_"): run for run in study_.runs}
    controls = [f"weight_magnitude_seed1_{c}_round{r:02d}"
                for c in ("random_reinit", "random_prune")
                for r in (5, 10, 15)]
    assert list(plan) == [
        "dense_seed1", "weight_magnitude_seed1", *controls[:3],
        "weight_magnitude_seed1_random_reinit", *controls[3:],
        "weight_magnitude_seed1_random_prune"]
    ticket = plan["weight_magnitude_seed1"]
    assert all(plan[name].alongside == (ticket,) for name in controls)
    # A control's rounds run in turn (its workdir takes one process).
    assert [plan[name].after for name in controls[:3]] == [
        (), (plan[controls[0]],), (plan[controls[1]],)]
    workdir = str(tmp_path / "work" / "conv2" / "seed1" / "weight_magnitude")
    assert not any(plan[name].is_ready() for name in controls)
    for r in range(6):  # the run is training round 6
        _touch_round(workdir, r)
    assert [plan[name].is_ready() for name in controls] == [
        True, False, False] * 2
    # A control's round done in its own workdir is not run again, and the
    # control is recorded only after all its rounds.
    reinit = plan["weight_magnitude_seed1_random_reinit_round05"]
    assert not reinit.recorded()
    _touch_round(os.path.join(workdir, "controls", "random_reinit"), 5)
    assert reinit.recorded() and reinit.has_outputs()
    assert plan["weight_magnitude_seed1_random_reinit"].after == tuple(
        plan[name] for name in controls[:3])

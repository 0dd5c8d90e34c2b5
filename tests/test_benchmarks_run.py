"""Benchmarks that figures in docs/BENCHMARKS.md, docs/TRANSFER.md and
docs/STRUCTURE.md come from and no other test runs, at their smallest
sizes: each still runs to its table or verdict, so the command a figure
names keeps working. A small run may miss a budget that the full size
meets; then it must exit 1 with the benchmark's own line.
"""

import json
import os
import re
import subprocess
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMBER = r"[\d.]+"


def _run(module, *args):
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return result


def _met_or_missed(result, line):
    """Fails unless the run exited 0 or missed its budget with `line`."""
    if result.returncode:
        assert result.stderr.strip().splitlines()[-1] == line, (
            result.stderr[-3000:])


def _lines(result):
    return [line for line in result.stdout.splitlines()
            if not line.startswith("machine: ")]


def test_xla_cpu_prints_a_row_per_model(mnist_dir):
    result = _run("xla_cpu", "--models=lenet_300_100", "--seconds=0.2",
                  "--per_call=2", "--repeats=1", f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    header, rule, row = _lines(result)
    assert header.startswith("| model | xla_loop steps/s |")
    assert rule == "|---" * 5 + "|"
    assert re.fullmatch(rf"\| lenet_300_100( \| {_NUMBER}){{4}} \|", row), row


def test_train_speed_compares_the_engine_with_fit(mnist_dir):
    result = _run("train_speed", "--steps=100", "--repeats=1",
                  f"--data_dir={mnist_dir}")
    _met_or_missed(result, "engine speed under budget")
    *rates, ratio = _lines(result)
    assert [line.split(":")[0] for line in rates] == [
        "engine", "engine, tf.data", "model.fit"]
    for line in rates:
        assert re.fullmatch(r"[a-z., ]+: \d+ steps/s", line), line
    assert re.fullmatch(
        rf"ratio engine/model.fit: {_NUMBER} \(budget >= 3.0\)", ratio)


def test_wrapper_overhead_judges_each_feed(mnist_dir):
    result = _run("wrapper_overhead", "--steps=100", "--repeats=3",
                  "--feeds=in_graph", f"--data_dir={mnist_dir}")
    ends = {"wrapper overhead over budget": "missed",
            "undecided: an interval holds 0.95; run more --repeats or on "
            "a quieter machine": "undecided"}
    verdict = (ends[result.stderr.strip().splitlines()[-1]]
               if result.returncode else "met")
    (line,) = _lines(result)
    assert re.fullmatch(
        rf"in_graph: 3 pairs of 100 steps: ratio wrapped/unwrapped median "
        rf"{_NUMBER}, 95% interval \[{_NUMBER}, {_NUMBER}\], pairs from "
        rf"{_NUMBER} to {_NUMBER} \(budget >= 0.95\): {verdict}", line), line


def test_a_feed_it_does_not_know_is_one_line():
    result = _run("wrapper_overhead", "--feeds=in_graph,pipes")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "--feeds must be some of in_graph, tf_data. Received: "
        "--feeds=in_graph,pipes")


def test_round_time_measures_each_path(mnist_dir):
    result = _run("round_time", "--rounds=0", "--neuron_rounds=2",
                  "--steps=100", "--repeats=1", "--prune_steps=0",
                  f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    header, _, weight, neurons = _lines(result)
    assert header.startswith("| ticket | round | remaining |")
    # Round 0 keeps every weight. Two rounds of 20% of the hidden neurons
    # (300 -> 192, 100 -> 64; every output unit kept): the masks keep
    # 784x192 + 300x64 + 100x10 of the 266,200 weights (64.1%), of which
    # 784x192 + 192x64 + 64x10 (61.4%) are live, fed by a live unit.
    assert weight.startswith("| weight | 0 | 100.0% | 100.0% | 100.0% |")
    cells = neurons.strip("| ").split(" | ")
    assert cells[:2] == ["neuron", "2"]
    assert cells[2:4] == ["64.1%", "61.4%"], neurons
    for seconds in cells[6:8]:  # the dense kernels and the compact path
        assert re.fullmatch(rf"{_NUMBER} s", seconds), neurons


def test_memory_reads_each_round(mnist_dir):
    result = _run("memory", "--rounds=2", "--steps=100",
                  f"--data_dir={mnist_dir}")
    _met_or_missed(result, "memory growth over budget")
    lines = _lines(result)
    for round_index, line in enumerate(lines[:3]):
        assert re.fullmatch(rf"round  {round_index}: +\d+ MiB resident",
                            line), line
    assert re.fullmatch(r"round 2 vs round 1: [+-][\d.]+% \(budget <= "
                        r"\+10%\)", lines[3]), lines[3]


def test_startup_times_each_round_of_the_binary(mnist_dir):
    result = _run("startup", "--repeats=1", "--rounds=1", "--steps=100",
                  f"--data_dir={mnist_dir}")
    _met_or_missed(result, "start-up over budget")
    header, first, *rounds = _lines(result)
    assert header == ("LeNet-300-100 on MNIST, 2 rounds of 100 iterations, "
                      "1 runs (best; all)")
    assert re.fullmatch(rf"process start to first steps: {_NUMBER} s "
                        rf"\({_NUMBER}; budget < 10 s\)", first), first
    assert [line.split(":")[0] for line in rounds] == [
        "round 0 start", "round 1 start"]


def test_eval_share_reports_without_judging_a_short_round(mnist_dir):
    result = _run("eval_share", "--steps=200", "--test_at=best",
                  f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    shape, share, judged = _lines(result)
    assert shape == "LeNet-300-100, 200 iterations, evaluation every 100"
    assert re.fullmatch(
        rf"eval.test_at=best: train {_NUMBER}s, eval {_NUMBER}s, evaluation "
        rf"\d+% of the round; the round {_NUMBER}s in all", share), share
    assert judged == ("budget not judged: it is for eval.test_at=best at "
                      "--steps=50000")


def test_transfer_table_gives_each_seed_and_the_mean(tmp_path):
    # Run, not imported: its --workdirs and --output are other
    # benchmarks' flags too, and one pytest worker may import several.
    arms = ("dense", "target_ticket", "transferred", "random")
    for seed, accuracy in ((0, 0.90), (1, 0.95)):
        folder = tmp_path / f"mnist1d_transfer_seed{seed}"
        folder.mkdir()
        (folder / "summary.json").write_text(json.dumps([
            {"arm": arm, "test_accuracy": accuracy - i / 100,
             "final_test_accuracy": accuracy - i / 50,
             "remaining_fraction": 1.0 if arm == "dense" else 0.086}
            for i, arm in enumerate(arms)]))
    output = tmp_path / "transfer.md"
    result = _run("transfer_table", f"--workdirs={tmp_path}",
                  f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = output.read_text().splitlines()
    assert lines[0] == "### mnist1d (seeds 0, 1)"
    assert [line.split(" | ")[0] for line in lines[4:8]] == [
        f"| {arm}" for arm in arms]
    assert lines[4] == ("| dense | 100.0% | 90.0 / 95.0 = **92.5** | "
                        "90.0 / 95.0 = **92.5** |")
    assert lines[7] == ("| random | 8.6% | 87.0 / 92.0 = **89.5** | "
                        "84.0 / 89.0 = **86.5** |")


def test_transfer_table_names_a_missing_arm_in_one_line(tmp_path):
    (tmp_path / "transfer.md").write_text("kept")
    (tmp_path / "mnist1d_transfer_seedA").mkdir()
    (tmp_path / "mnist1d_transfer_seedA" / "summary.json").write_text("[]")
    result = _run("transfer_table", f"--workdirs={tmp_path}",
                  f"--output={tmp_path / 'transfer.md'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1:] == [
        "--workdirs holds no <study>_transfer_seed<N>/summary.json. "
        f"Received: --workdirs={tmp_path}"]
    folder = tmp_path / "mnist1d_transfer_seed0"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps([
        {"arm": "dense", "test_accuracy": 0.9, "final_test_accuracy": 0.9,
         "remaining_fraction": 1.0}]))
    result = _run("transfer_table", f"--workdirs={tmp_path}",
                  f"--output={tmp_path / 'transfer.md'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1:] == [
        f"{folder / 'summary.json'} lacks the arm(s) target_ticket, "
        "transferred, random (is its run finished?). "
        f"Received: --workdirs={tmp_path}"]
    assert (tmp_path / "transfer.md").read_text() == "kept"


_LENET_SHAPES = ("fc1=123,fc2=41,output=10", "fc1=141,fc2=59,output=10")


def test_latency_spread_measures_each_instance_of_a_shape(mnist_dir):
    result = _run("latency_spread", "--part=lenet",
                  *(f"--shape={s}" for s in _LENET_SHAPES), "--instances=2",
                  "--calls=5", "--repeats=1", f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    note, header, rule, *rows = _lines(result)
    assert "1 thread(s), best of 1 medians of 5 calls" in note
    assert header == ("| Shape | Batch | Each instance, µs | "
                      "Largest / smallest |")
    assert rule == "|---" * 4 + "|"
    assert [row.split(" | ")[:2] for row in rows] == [
        [f"| {s}", b] for s in _LENET_SHAPES for b in ("1", "256")]
    for row in rows:
        times, ratio = row.strip("| ").split(" | ")[2:]
        times = [float(t.replace(",", "")) for t in times.split(", ")]
        assert len(times) == 2 and min(times) > 0
        assert abs(float(ratio) - max(times) / min(times)) < 0.01


def test_latency_spread_names_a_shape_it_does_not_have():
    result = _run("latency_spread", "--part=lenet", "--shape=fc1=1,output=10")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "--shape must name shapes recorded in docs/results_structure/runs/"
        "lenet. Received: --shape=fc1=1,output=10")

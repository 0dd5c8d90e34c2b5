"""Benchmarks that figures in docs/BENCHMARKS.md and docs/STRUCTURE.md
come from and no other test runs, at their smallest sizes: each still
runs to its table or verdict, so the command a figure names keeps
working. A small run may miss a budget that the full size
meets; then it must exit 1 with the benchmark's own line.
"""

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


_LENET_SHAPES = ("fc1=123,fc2=41,output=10", "fc1=141,fc2=59,output=10")


def test_latency_spread_measures_each_instance_of_a_shape(mnist_dir):
    result = _run("latency_spread", "--part=lenet",
                  *(f"--shape={s}" for s in _LENET_SHAPES), "--instances=2",
                  "--calls=5", "--repeats=1", f"--data_dir={mnist_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    note, header, rule, *rows = _lines(result)
    assert "1 thread(s), best of 1 medians of 5 calls" in note
    assert header == ("| Shape | Column | Each instance, µs | "
                      "Largest / smallest |")
    assert rule == "|---" * 4 + "|"
    assert [row.split(" | ")[:2] for row in rows] == [
        [f"| {s}", b] for s in _LENET_SHAPES for b in ("b1", "b256")]
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


def test_shrink_times_dense_ticket_and_shrunk(mnist_dir):
    # The MNIST path: the applications' (docs/MODELS.md) takes 40 s of CPU
    # at 32x32, in the exports of MobileNetV2's graph alone.
    result = _run("shrink", "--models=lenet_300_100", "--calls=2",
                  "--repeats=1", f"--data_dir={mnist_dir}")
    if result.returncode:  # a goal missed at 2 calls: its own line
        assert result.stderr.strip().splitlines()[-1].startswith(
            "shrink latency goal missed: lenet_300_100 "), (
                result.stderr[-3000:])
    lines = _lines(result)
    assert lines[2] == ("25% of the units of every hidden layer kept; "
                        "latency in µs:")
    rows = lines[6:9]
    for row, variant, params in zip(rows, ("dense", "ticket", "shrunk"),
                                    ("266,610", "266,610", "61,035")):
        assert row.startswith(f"| lenet_300_100 | {variant} | {params} | ")
        assert re.fullmatch(r"(\| [^|]+ ){3}(\| [\d,.]+ kB ){2}"
                            r"(\| [\d,.]+ ){4}\|", row), row
    for line, fmt in zip(lines[-2:], ("saved_model", "tflite")):
        assert re.fullmatch(
            rf"\| lenet_300_100 \| {fmt} \| 0.229x \| {_NUMBER}x \| "
            rf"{_NUMBER}x \| {_NUMBER}x \(b256\) \| <= 0.35: "
            r"(met|MISSED) \|", line), line


def test_shrink_names_a_model_it_does_not_have():
    result = _run("shrink", "--models=mobilenet_v2,vgg16")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "--models must be some of lenet_300_100, conv2, mobilenet_v2, "
        "resnet50. Received: --models=mobilenet_v2,vgg16")

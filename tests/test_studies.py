"""Studies on Ray (keras_lottery.studies, binaries/study.py): the schedule,
the command's bad input, and a real study on an embedded Ray and on a
two-node cluster that loses a node mid-study.

Ray binds to the machine's interface address by default; every test that
starts Ray does so inside a private network namespace (`unshare -n`, only
loopback up), so all its traffic stays on 127.0.0.1. Without `unshare`
(no privileges) those tests are skipped.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_lottery.studies import catalog
from keras_lottery.studies import grid
from keras_lottery.studies import record as record_lib

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TESTS = os.path.join(_REPO, "tests")


# -- a tiny study: one LeNet run of one round, then a control of it -------

def tiny(options, staged=False):
    """A run (1 round, 200 steps) and its random_reinit control, each
    recorded; the report is binaries.report of the records. `staged`: the
    control is declared only once the run is recorded (a second pass of
    the command runs it)."""
    seed = (options.seeds or (0,))[0]
    workdir = os.path.join(options.workdir, f"seed{seed}")
    records = options.records or os.path.join(options.workdir, "records")
    record = os.path.join(records, f"seed{seed}")
    control = os.path.join(record, "controls", "random_reinit")
    ticket = grid.Run(
        f"lottery_seed{seed}",
        (grid.Command((
            "-m", "binaries.lottery",
            "--config=configs/lenet300_mnist.py:smoke",
            f"--config.data.dir={options.data_dir}",
            f"--config.seed={seed}", "--config.deterministic=true",
            "--config.train.num_steps=200", "--config.eval.every_steps=100",
            "--config.train.checkpoint_every_steps=50",
            "--config.train.steps_per_loop=25",
            "--config.eval.test_at=best", "--config.export.enabled=false",
            "--config.prune.num_rounds=1", f"--workdir={workdir}")),
         grid.Call(record_lib.record, (workdir, record, False))),
        records=grid.recorded(record), outputs=grid.rounds_done(workdir, [1]))
    reinit = grid.Run(
        f"random_reinit_seed{seed}",
        (grid.Command(("-m", "binaries.controls", f"--workdir={workdir}",
                       "--control=random_reinit", "--rounds=1")),
         grid.Call(record_lib.record, (
             os.path.join(workdir, "controls", "random_reinit"), control,
             False))),
        records=grid.recorded(control), after=(ticket,))
    report = os.path.join(options.workdir, "report.md")
    return grid.Study(
        "tiny", [ticket, *(() if staged and not ticket.recorded()
                           else (reinit,))], records, options.workdir,
        report=grid.Command(("-c", _REPORT, record, report)),
        report_path=report)


# The tiny study's report: each round's test accuracy, the ticket's and its
# control's, from the records (a report without TensorFlow: seconds).
_REPORT = r"""
import json, os, sys
record, report = sys.argv[1:]
def accuracy(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        return {e["round"]: e["test_accuracy"] for e in json.load(f)}
ticket = accuracy(record)
control = os.path.join(record, "controls", "random_reinit")
control = accuracy(control) if os.path.exists(control) else {}
with open(report, "w") as f:
    f.write("| round | ticket | random_reinit |\n|---|---|---|\n" + "".join(
        f"| {r} | {a} | {control.get(r, '')} |\n" for r, a in ticket.items()))
"""


def staged(options):
    return tiny(options, staged=True)


def failing(options):
    raise RuntimeError("no such grid")


# -- the schedule, without Ray ---------------------------------------------

def _run(name, tmp_path, **kwargs):
    return grid.Run(name, (), records=(str(tmp_path / f"{name}.done"),),
                    **kwargs)


def test_a_run_starts_once_what_it_reads_ended_or_is_ready(tmp_path):
    first = _run("first", tmp_path)
    ready = str(tmp_path / "round_01")
    reader = _run("reader", tmp_path, alongside=(first,), ready=(ready,))
    later = _run("later", tmp_path, after=(first,))
    schedule = grid.Schedule([first, reader, later])
    assert schedule.next_runs(3) == [first]
    assert schedule.next_runs(3) == [] and schedule.waits_on_files()
    open(ready, "w").close()  # the round it reads exists: it starts
    assert schedule.next_runs(3) == [reader]
    schedule.ended(first, ok=False)
    assert schedule.next_runs(3) == [] and schedule.skipped == [later]


def test_a_recorded_run_reruns_only_for_a_needed_run_reading_its_lost_outputs(
        tmp_path):
    dense = grid.Run("dense", (), outputs=(str(tmp_path / "round_00"),))
    done = _run("done", tmp_path, after=(dense,))
    open(tmp_path / "done.done", "w").close()
    assert grid.needed([dense, done]) == []
    todo = _run("todo", tmp_path, after=(dense,))
    assert grid.needed([dense, done, todo]) == [dense, todo]
    open(tmp_path / "round_00", "w").close()
    assert grid.needed([dense, done, todo]) == [todo]


def test_a_study_names_each_run_once(tmp_path):
    run = _run("a", tmp_path)
    with pytest.raises(ValueError, match="a twice"):
        grid.Study("s", [run, _run("a", tmp_path)], "r", "w")


def test_the_time_left_weighs_each_run_by_its_cost():
    from keras_lottery.studies import progress

    display = progress.Display(live=False)
    # A 1-round run, a 10-round run, a record of finished rounds, and a
    # run without a cost (1).
    display.begin("s", 4, {"a": 1, "b": 10, "c": 0})
    assert "ETA ?" in display.summary(2)
    display.ended("a", {"ok": True, "seconds": 60, "node": "n"}, 0, 2)
    # 60 s per round: 11 rounds left on 2 slots, not 3 runs of 60 s.
    assert "ETA 6 min" in display.summary(2)
    display.skip("b")
    assert "ETA 30 s" in display.summary(2)


def test_the_display_shows_the_runs_running_on_each_node(tmp_path, capsys):
    from keras_lottery.studies import progress
    from keras_lottery.studies import runner

    a, b, c = (_run(name, tmp_path) for name in "abc")
    # Each task names its node as it starts; a task queued has none yet.
    for run, node in ((a, "n1"), (b, "n2")):
        with open(runner.node_file(str(tmp_path), run.name), "w") as f:
            f.write(node)
    placed = runner._placed(str(tmp_path), [a, b, c])
    assert placed == {"n1": 1, "n2": 1}
    display = progress.Display(live=False)
    display.begin("s", 4)
    for run in (a, b, c):
        display.started(run.name)
    display.placed(placed)
    display.ended("a", {"ok": True, "seconds": 60, "node": "n1"}, 2, 2)
    display.placed(runner._placed(str(tmp_path), [b, c]))
    assert display.summary(2).endswith(
        "; per node: n1 0 running 1 ended, n2 1 running 0 ended")


# -- the command -------------------------------------------------------------

def _study(*args, namespace=False, timeout=600):
    command = [sys.executable, "-m", "binaries.study", *args]
    if namespace:
        command = ["unshare", "-n", "bash", "-c",
                   'ip link set lo up && exec "$@"', "bash", *command]
    env = {**os.environ, "PYTHONPATH": _TESTS, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, capture_output=True, text=True,
                          cwd=_REPO, env=env, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["nope"], "must be one of lenet300, early, mnist1d, structure"),
    (["structure_lenet", "--seeds=0,x"], "--seeds=0,x"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    result = _study(*args, f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and message in result.stderr
    assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize("name, message", [
    ("test_studies:nope", "cannot be loaded"),
    ("no_such_module:study", "cannot be loaded"),
    ("test_studies:failing", "raised RuntimeError: no such grid"),
])
def test_a_study_that_cannot_be_had_is_named(name, message, tmp_path):
    with pytest.raises(ValueError, match=f"{name}.*{message}"):
        catalog.load(name, catalog.Options(str(tmp_path / "w")))
    assert not os.path.exists(tmp_path / "w")


def test_records_of_another_study_are_refused(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "study.json").write_text('{"study": "structure"}')
    study = catalog.load("test_studies:tiny", catalog.Options(
        str(tmp_path / "w"), str(records)))
    with pytest.raises(ValueError, match="holds the records of study "
                       "structure, not tiny"):
        catalog.check_records(study)
    catalog.check_records(catalog.load("structure_conv2", catalog.Options(
        str(tmp_path / "w"), str(records))))


def test_the_structure_study_declares_each_control_round_alongside(tmp_path):
    study = catalog.load("structure_conv2", catalog.Options(
        str(tmp_path), str(tmp_path / "records"), seeds=(0,)))
    by_name = {run.name: run for run in grid.needed(study.runs)}
    ticket = by_name["conv2_filter_magnitude_seed0"]
    round3 = by_name["conv2_filter_magnitude_seed0_random_prune_round03"]
    round8 = by_name["conv2_filter_magnitude_seed0_random_prune_round08"]
    assert ticket.after == (by_name["conv2_dense_seed0"],)
    assert round3.alongside == (ticket,) and round3.ready == (os.path.join(
        str(tmp_path), "conv2", "seed0", "filter_magnitude", "round_03",
        "metrics.json"),)
    assert round8.after == (round3,)
    schedule = grid.Schedule(study.runs)
    assert [r.name for r in schedule.next_runs(2)] == ["conv2_dense_seed0"]


# -- on Ray, inside a network namespace ---------------------------------------

def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"],
                              capture_output=True).returncode == 0
    except OSError:
        return False


needs_namespace = pytest.mark.skipif(
    not _can_unshare(), reason="needs unshare -n (a private network "
    "namespace) to keep Ray on loopback")


def test_no_ray_at_the_address_is_named_after_a_bounded_wait():
    from keras_lottery.studies import runner

    start = time.monotonic()
    with pytest.raises(ValueError, match=r"No Ray answers at `--address` "
                       r"within 1 s .*Received: --address=127.0.0.1:1$"):
        runner.check_address("127.0.0.1:1", wait_seconds=1)
    assert time.monotonic() - start < 5
    with pytest.raises(ValueError, match="HOST:PORT"):
        runner.check_address("nowhere")


def _records(folder) -> dict:
    """Every record file, with the wall-clock fields left out."""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.json"),
                                 recursive=True)):
        with open(path) as f:
            found[os.path.relpath(path, folder)] = _timeless(json.load(f))
    return found


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()
                if "seconds" not in k and k not in ("workdir", "dir")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


@pytest.fixture(scope="module")
def single_node(tmp_path_factory, mnist_dir):
    """The tiny study on an embedded Ray, its control declared only once
    the run is recorded, then the same command again."""
    workdir = tmp_path_factory.mktemp("single")
    first = _study("test_studies:staged", f"--workdir={workdir}",
                   f"--data_dir={mnist_dir}", namespace=True)
    second = _study("test_studies:staged", f"--workdir={workdir}",
                    f"--data_dir={mnist_dir}", namespace=True)
    return workdir, first, second


@needs_namespace
def test_a_study_runs_on_an_embedded_ray_and_ends_with_its_report(
        single_node):
    workdir, first, _ = single_node
    assert first.returncode == 0, first.stdout + first.stderr
    report = os.path.join(workdir, "report.md")
    assert first.stdout.strip().splitlines()[-1] == f"Report: {report}"
    # Two passes: the run, then the control declared once it was recorded.
    assert first.stdout.count("tiny: 1 run(s) to do") == 2, first.stdout
    records = _records(os.path.join(workdir, "records"))
    ticket = records["seed0/summary.json"]
    control = records["seed0/controls/random_reinit/summary.json"]
    assert [e["round"] for e in control] == [1]
    with open(report) as f:
        assert f.read().splitlines()[2:] == [
            f"| 0 | {ticket[0]['test_accuracy']} |  |",
            f"| 1 | {ticket[1]['test_accuracy']} | "
            f"{control[0]['test_accuracy']} |"]
    assert set(records) == {
        "study.json", "seed0/config.json", "seed0/rounds.json",
        "seed0/summary.json", "seed0/controls/random_reinit/config.json",
        "seed0/controls/random_reinit/rounds.json",
        "seed0/controls/random_reinit/summary.json"}
    assert [r["round"] for r in records["seed0/rounds.json"]] == [0, 1]


@needs_namespace
def test_a_second_call_on_a_finished_study_trains_nothing(single_node):
    workdir, first, second = single_node
    assert second.returncode == 0, second.stderr
    assert "tiny: nothing to run, every run is recorded" in second.stdout
    # Each run appends a line to its log when it starts: none did again.
    with open(os.path.join(workdir, "logs", "lottery_seed0.log")) as f:
        assert sum(line.startswith("==> ") for line in f) == 1


_CLUSTER = r"""
import glob, json, os, signal, subprocess, sys, time
from ray.cluster_utils import Cluster

workdir, data_dir, out = sys.argv[1:4]
cluster = Cluster(initialize_head=True, head_node_args={
    "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
    "_system_config": {"health_check_period_ms": 500,
                       "health_check_timeout_ms": 500,
                       "health_check_failure_threshold": 3}})
study = None
try:
    victim = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    study = subprocess.Popen(
        [sys.executable, "-m", "binaries.study", "test_studies:tiny",
         f"--workdir={workdir}", f"--data_dir={data_dir}",
         f"--address={cluster.address}"])
    # Once the run has a checkpoint on the victim node, the node dies: kill
    # -9 of its raylet and of the processes it started (the workers; their
    # runs must die with them), then a second node joins.
    while not glob.glob(os.path.join(workdir, "seed0", "round_*",
                                     "checkpoints", "checkpoint")):
        assert study.poll() is None, "the study ended before a checkpoint"
        time.sleep(0.1)
    raylet = victim.all_processes["raylet"][0].process.pid
    node = [raylet]
    for task in os.listdir(f"/proc/{raylet}/task"):
        with open(f"/proc/{raylet}/task/{task}/children") as f:
            node += [int(pid) for pid in f.read().split()]
    for pid in node:
        os.kill(pid, signal.SIGKILL)
    mid_run = not os.path.exists(os.path.join(workdir, "seed0",
                                              "summary.json"))
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    code = study.wait(timeout=400)
    with open(out, "w") as f:
        json.dump({"code": code, "mid_run": mid_run}, f)
finally:
    if study is not None:
        study.kill()
    try:
        cluster.shutdown()
    except Exception:
        pass
"""


@needs_namespace
def test_a_study_survives_the_loss_of_a_node_with_the_same_records(
        single_node, tmp_path, mnist_dir):
    workdir, first, _ = single_node
    assert first.returncode == 0
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": _TESTS, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"',
         "bash", sys.executable, "-c", _CLUSTER, str(tmp_path / "w"),
         mnist_dir, str(out)], cwd=_REPO, env=env, timeout=600, check=True)
    result = json.loads(out.read_text())
    assert result == {"code": 0, "mid_run": True}
    # The run started again on the other node (a second start in its log),
    # resumed from its checkpoint, and its records are the single node's.
    with open(tmp_path / "w" / "logs" / "lottery_seed0.log") as f:
        log = f.read()
    assert sum(line.startswith("==> ") for line in log.splitlines()) == 2
    assert "resumes at step" in log.split("\n==> ")[-1]
    assert _records(tmp_path / "w" / "records") == _records(
        os.path.join(workdir, "records"))


def test_a_killed_run_takes_its_process_with_it(tmp_path):
    """A worker lost with its node leaves no run behind holding the
    workdir: the run's process dies with the process that started it."""
    from keras_lottery.studies import runner

    pid_file = tmp_path / "pid"
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\n"
        "from keras_lottery.studies import grid, runner\n"
        "runner.execute('r', (grid.Command(('-c', sys.argv[1])),), "
        "sys.argv[2], '.', 1)\n")
    child_code = (f"import os, time; open({str(pid_file)!r}, 'w')"
                  ".write(str(os.getpid())); time.sleep(60)")
    parent = subprocess.Popen(
        [sys.executable, str(script), child_code, str(tmp_path)], cwd=_REPO,
        env={**os.environ, "PYTHONPATH": _REPO})
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.time() < deadline
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while _alive(child):
        assert time.time() < deadline, "the run outlived its worker"
        time.sleep(0.1)
    assert runner.thread_env(2)["OMP_NUM_THREADS"] == "2"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("part", ["lenet", "conv2", "conv2_long", "vit"])
def test_the_committed_structure_tables_regenerate_from_the_records(part):
    from keras_lottery.base import files
    from keras_lottery.studies import structure_cells
    from keras_lottery.studies import structure_table

    docs = os.path.join(_REPO, "docs", "results_structure")
    records = os.path.join(docs, "runs", part)
    cells = structure_table.load_cells(records,
                                       structure_cells.cell_names(part))
    latency = structure_table.load_latency(
        os.path.join(docs, part, "latency.json"), part)
    table = structure_table.compare(
        cells, latency["shapes"], structure_table.load_instability(records))
    with open(os.path.join(docs, part, "comparison.md"),
              encoding="utf-8") as f:
        assert structure_table.format_comparison(table, latency) == f.read()
    assert table == files.read_json(os.path.join(docs, part,
                                                 "comparison.json"))


def test_the_docs_example_study_declares_its_grid(tmp_path):
    import re

    with open(os.path.join(_REPO, "docs", "STUDIES.md"),
              encoding="utf-8") as f:
        example = re.findall(r"```python\n(.*?)```", f.read(), re.S)[0]
    namespace = {}
    exec(compile(example, "STUDIES.md", "exec"), namespace)
    study = namespace["my_study"](catalog.Options(
        str(tmp_path), str(tmp_path / "records"), data_dir="mnist"))
    runs = grid.needed(study.runs)
    assert [run.name for run in runs] == [
        "lenet_seed0", "reinit_seed0", "lenet_seed1", "reinit_seed1"]
    schedule = grid.Schedule(study.runs)
    assert schedule.next_runs(4) == [runs[0], runs[2]]  # reinits wait
    assert runs[1].ready == (str(tmp_path / "seed0" / "round_03" /
                                 "metrics.json"),)


def test_the_binary_names_every_built_in_study():
    import re

    # Read, not imported: importing a binary defines its absl flags.
    with open(os.path.join(os.path.dirname(__file__), "..", "binaries",
                           "study.py"), encoding="utf-8") as f:
        listed = re.search(r"NAME is a built-in study \((.*?)\)", f.read(),
                           re.S).group(1)
    assert sorted(re.split(r",\s*", listed)) == sorted(catalog.BUILT_IN)

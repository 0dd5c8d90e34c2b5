r"""What a second node gives a study, and what a Ray task costs a run.

  python -m benchmarks.study_scaling --data_dir=../shared/data/mnist \
      --output=benchmarks/results/study_scaling.json
  python -m benchmarks.study_scaling --parts=overhead --calls=3  # a minute

Both sides in one run, on this machine: the early study's smoke
(`keras_lottery.studies.early`, arms imp, early_bird and snip, LeNet's
instability) on a Ray cluster of one node with one CPU, then on two such
nodes (`ray.cluster_utils.Cluster`, a head with no CPU), each from empty
workdirs: the wall-time ratio. Then the per-run overhead of a Ray task
against a plain subprocess: --calls runs of `python -c pass` each way,
one at a time, after one untimed task (the mean seconds of each, and
their difference).

Ray runs inside a private network namespace (`unshare -n`, loopback only:
the script starts itself again inside one), so its traffic stays on
127.0.0.1. On a 2-core machine two single-CPU nodes are the most the
cores hold; run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import common

_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
_OUTPUT = flags.DEFINE_string("output", "", "JSON of the figures (also "
                              "printed).")
_CALLS = flags.DEFINE_integer("calls", 20, "Runs of `python -c pass` each "
                              "way.")
_PARTS = flags.DEFINE_multi_enum(
    "parts", ["scaling", "overhead"], ["scaling", "overhead"],
    "What to measure: the 1-vs-2-node wall time, the per-run overhead.")
_INSIDE = "KERAS_LOTTERY_NETNS"


def main(argv: list[str]) -> None:
    if not os.environ.get(_INSIDE):  # again, inside a network namespace
        sys.exit(subprocess.call(
            ["unshare", "-n", "bash", "-c", 'ip link set lo up && exec "$@"',
             "bash", sys.executable, "-m", "benchmarks.study_scaling",
             *sys.argv[1:]], env={**os.environ, _INSIDE: "1"}))
    from keras_lottery.studies import early  # noqa: PLC0415

    figures = {"machine": common.machine()}
    with tempfile.TemporaryDirectory(prefix="study_scaling_") as tmp:
        for nodes in (1, 2) if "scaling" in _PARTS.value else ():
            workdir = os.path.join(tmp, f"nodes{nodes}")
            study = early.study(workdir, None, (0,), _DATA.value, True,
                                arms=("imp", "early_bird", "snip"),
                                instability=("lenet",))
            figures[f"wall_s_{nodes}_node"] = _on_cluster(
                nodes, lambda runner, s=study: runner.run_study(s), study)
        if "scaling" in _PARTS.value:
            figures["ratio_1_over_2"] = (figures["wall_s_1_node"]
                                         / figures["wall_s_2_node"])
        if "overhead" in _PARTS.value:
            figures.update(_on_cluster(1, _overhead))
    text = json.dumps(figures, indent=2)
    print(text)
    if _OUTPUT.value:
        with open(_OUTPUT.value, "w") as f:
            f.write(text + "\n")


def _on_cluster(nodes: int, work, study=None):
    """`work(runner)` on a fresh cluster of `nodes` one-CPU nodes; returns
    its result, or its wall seconds for a study."""
    import ray  # noqa: PLC0415
    from ray.cluster_utils import Cluster  # noqa: PLC0415

    from keras_lottery.studies import runner  # noqa: PLC0415

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1",
        "include_dashboard": False})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        runner.connect(cluster.address)
        start = time.perf_counter()
        result = work(runner)
        seconds = time.perf_counter() - start
        if isinstance(result, runner.Outcome):
            for name in result.failed:
                with open(os.path.join(study.logs, f"{name}.log")) as f:
                    print(f"{name}.log ends:", *f.readlines()[-15:])
            if result.failed or result.skipped:
                raise RuntimeError(f"runs failed: {result.failed}")
            return seconds
        return result
    finally:
        ray.shutdown()
        cluster.shutdown()


def _overhead(runner) -> dict:
    """Mean seconds of `python -c pass` as a subprocess and as a Ray task
    (`runner.execute`), one at a time."""
    import ray  # noqa: PLC0415

    from keras_lottery.studies import grid  # noqa: PLC0415

    steps = (grid.Command(("-c", "pass")),)
    task = ray.remote(runner.execute).options(num_cpus=1)
    logs = tempfile.mkdtemp(prefix="study_scaling_logs_")
    timings = {"subprocess": [], "ray_task": []}
    # Untimed: the first task starts a worker (which imports the package).
    ray.get(task.remote("warm_up", steps, logs, os.getcwd(), 1))
    for _ in range(_CALLS.value):
        start = time.perf_counter()
        runner.execute("plain", steps, logs, os.getcwd(), 1)
        timings["subprocess"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ray.get(task.remote("task", steps, logs, os.getcwd(), 1))
        timings["ray_task"].append(time.perf_counter() - start)
    means = {k: sum(v) / len(v) for k, v in timings.items()}
    return {"run_s_subprocess": means["subprocess"],
            "run_s_ray_task": means["ray_task"],
            "ray_overhead_s": means["ray_task"] - means["subprocess"]}


if __name__ == "__main__":
    app.run(main)

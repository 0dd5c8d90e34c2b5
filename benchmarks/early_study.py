r"""The study of issue 14: cheaper tickets for LeNet-300-100 on MNIST.

  python -m benchmarks.early_study                    # the study
  python -m benchmarks.early_study --smoke --workdirs=/tmp/early_smoke \
      --records=/tmp/early_smoke/records --output=/tmp/early_smoke/report \
      --doc=/tmp/early_smoke/report.md                # the pipeline, minutes

For each seed (--seeds, default 0,1,2) and target round (--rounds, default
3,7,12,15,18: 51.3, 21.1, 7.0, 3.6 and 1.85% of the weights remaining):

    imp           IMP as in the paper (configs/lenet300_mnist.py)
    early_bird    early-bird IMP (You et al.: a check every 1,000 steps,
                  window 5, threshold 0.1); each target's ticket trains in
                  full
    short_rounds  IMP whose pruning rounds train 10,000 iterations and the
                  final ticket 50,000 (an early-bird window of 1)
    snip, grasp, synflow, random
                  pruned at initialisation to each target (one-shot), each
                  with its shuffled-mask control

then the instability of IMP's seed-0 run at rounds 0, 7 and 15 (k = 0) and,
with --instability including conv2, of Conv-2/MNIST's dense network at
k = 0, 100, 500, 2000 (about an hour per rewind step on one CPU core;
each rewind step is a job of its own, so --jobs runs them side by side).

How it runs: every run is a subprocess of the binaries, --jobs at a time
with --threads each (`benchmarks/jobs.py`), in --workdirs. The dense round 0
of each seed is trained once and copied into IMP and the pruned-at-init
runs (their round 0 is the same training). An early-bird or short-rounds
*chain* runs to the last target; the ticket of an earlier target r copies
the chain's rounds 0 to r-1 and trains round r in full, so the chain is
not trained again per target. Each finished run is *recorded* into
--records (committed: its config.json and summary.json, its shuffled
control's, the instability tables), and the report is written from the
records alone: test accuracy at early stop and at the end, and the
iterations and seconds each ticket cost, per method and sparsity (mean
over seeds); the goal's verdict (a ticket at <= 3.6% within 0.2 points of
IMP's accuracy at early stop for at most half its iterations); the
instability tables; and --output's cost.png
(`keras_lottery.analysis.cost_report`).

Resumable: rerun the same command after any kill; recorded runs are
skipped (a recorded run whose workdir is gone runs again only when a run
that copies from it is not recorded yet). --arms runs a subset; --smoke
shrinks every run to seconds (its numbers mean nothing).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags

from benchmarks import common
from benchmarks import jobs

ARMS = ("imp", "early_bird", "short_rounds", "snip", "grasp", "synflow",
        "random")
AT_INIT = ("snip", "grasp", "synflow", "random")
CHAINS = ("early_bird", "short_rounds")
GOAL_REMAINING = 0.036  # the goal's sparsity: at most this remaining
GOAL_POINTS = 0.002  # within this much of IMP's accuracy at early stop
GOAL_COST = 0.5  # for at most this share of IMP's iterations
LENET_INSTABILITY_ROUNDS = (0, 7, 15)
CONV2_REWIND_STEPS = (0, 100, 500, 2000)
_RECORDED = ("config.json", "summary.json", "rewind_step.json")

_WORKDIRS = flags.DEFINE_string("workdirs", "workdirs/early",
                                "Folder of every run (not committed).")
_RECORDS = flags.DEFINE_string("records", "docs/results_early/runs",
                               "Where finished runs are recorded.")
# allow_override: binaries.export defines --output too (tests import both).
_OUTPUT = flags.DEFINE_string("output", "docs/results_early",
                              "Folder for cost.md/png.", allow_override=True)
_DOC = flags.DEFINE_string("doc", "docs/results_early/report.md",
                           "The markdown report to write (docs/EARLY.md "
                           "states its findings).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
_ROUNDS = flags.DEFINE_list("rounds", ["3", "7", "12", "15", "18"],
                            "Target rounds (sparsities).")
_ARMS = flags.DEFINE_list("arms", list(ARMS), "Methods to run.")
_INSTABILITY = flags.DEFINE_list(
    "instability", ["lenet", "conv2"],
    "Instability analyses to run: lenet, conv2, or none.")
_JOBS = flags.DEFINE_integer("jobs", 2, "Runs at once.")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "CPU threads per run (0: cores / jobs, at least 1).")
_DATA_DIR = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST.",
                                allow_override=True)
_SMOKE = flags.DEFINE_bool("smoke", False, "Tiny runs, for tests.")


def base_flags(seed: int, smoke: bool, data_dir: str) -> list[str]:
    """LeNet-300-100's config (shrunk for --smoke), export off."""
    flags_ = [f"--config=configs/lenet300_mnist.py{':smoke' if smoke else ''}",
              f"--config.data.dir={data_dir}", f"--config.seed={seed}",
              # The same accuracies as testing at every evaluation, for a
              # third of the evaluation's cost.
              "--config.eval.test_at=best", "--config.export.enabled=false",
              # The dense kernels, as the study's first seeds trained: its
              # seconds compare across seeds, and IMP's runs give the
              # numbers of docs/RESULTS.md seed for seed.
              "--config.train.sparse_compute=off"]
    if smoke:
        flags_ += ["--config.train.num_steps=100",
                   "--config.eval.every_steps=50",
                   "--config.train.checkpoint_every_steps=50",
                   "--config.train.steps_per_loop=25"]
    return flags_


def arm_flags(arm: str, rounds: Sequence[int], smoke: bool) -> list[str]:
    """The config fields `arm` sets."""
    eb = "--config.prune.early_bird."
    if arm == "early_bird":
        return [f"{eb}enabled=true", f"{eb}threshold=0.1",
                f"{eb}every_steps={25 if smoke else 1000}",
                f"{eb}window={2 if smoke else 5}"]
    if arm == "short_rounds":
        return [f"{eb}enabled=true", f"{eb}window=1",
                f"{eb}every_steps={50 if smoke else 10000}"]
    if arm in AT_INIT:
        return ["--config.prune.mode=one_shot", "--config.prune.at_init=true",
                f"--config.prune.method={arm}",
                f"--config.prune.one_shot_rounds={tuple(rounds)}"]
    return []


class Study:
    """The jobs of the study, and where their runs and records go."""

    def __init__(self, workdirs: str, records: str, data_dir: str,
                 smoke: bool, rounds: Sequence[int], threads: int):
        self.workdirs = workdirs
        self.records = records
        self.data_dir = data_dir
        self.smoke = smoke
        self.rounds = tuple(rounds)
        runner = jobs.Runner(os.path.join(workdirs, "logs"), threads)
        self.step, self.python = runner.step, runner.python
        self.jobs: list[jobs.Job] = []

    def covered(self, arm: str, seed: int) -> list[tuple[int, str]]:
        """`(target round, record folder)` of each target of an arm."""
        if arm in CHAINS:
            return [(r, os.path.join(self.records, arm, f"seed{seed}",
                                     f"round{r:02d}")) for r in self.rounds]
        folder = os.path.join(self.records, arm, f"seed{seed}")
        return [(r, folder) for r in self.rounds]

    def lottery(self, workdir: str, seed: int, arm: str,
                num_rounds: int) -> list[str]:
        return self.python(
            "binaries.lottery", *base_flags(seed, self.smoke, self.data_dir),
            *arm_flags(arm, self.rounds, self.smoke),
            f"--config.prune.num_rounds={num_rounds}", f"--workdir={workdir}")

    def add(self, job: jobs.Job) -> jobs.Job:
        self.jobs.append(job)
        return job

    def plan(self, arms: Sequence[str], seeds: Sequence[int],
             instability: Sequence[str]) -> None:
        """Adds every job, each after the jobs it reads from."""
        last = max(self.rounds)
        imp_runs = {}
        for seed in seeds:
            dense = os.path.join(self.workdirs, "dense", f"seed{seed}")
            dense_job = self.add(jobs.Job(
                f"dense_seed{seed}",
                lambda d=dense, s=seed: self.step(
                    f"dense_seed{s}", self.lottery(d, s, "imp", 0)),
                None, lambda d=dense: jobs.rounds_done(d, [0])))
            for arm in arms:
                workdir = os.path.join(self.workdirs, arm, f"seed{seed}")
                if arm in CHAINS:
                    self._chain(arm, seed, workdir)
                    continue
                record = os.path.join(self.records, arm, f"seed{seed}")
                job = self.add(jobs.Job(
                    f"{arm}_seed{seed}",
                    lambda a=arm, s=seed, w=workdir, r=record, d=dense:
                        self._from_dense(a, s, w, r, d, last),
                    lambda a=arm, r=record: jobs.recorded(
                        r, ("shuffle",) if a in AT_INIT else ()),
                    lambda w=workdir: jobs.rounds_done(w, [0, *self.rounds]),
                    after=(dense_job,)))
                if arm == "imp":
                    imp_runs[seed] = (workdir, job)
        if "lenet" in instability and imp_runs:
            seed = min(imp_runs)
            workdir, imp_job = imp_runs[seed]
            for r in (0, last) if self.smoke else LENET_INSTABILITY_ROUNDS:
                if r <= last:
                    self._instability(f"lenet_seed{seed}_round{r:02d}",
                                      workdir, r, [0], (imp_job,))
        if "conv2" in instability:
            self._conv2()

    def _from_dense(self, arm, seed, workdir, record, dense, last) -> bool:
        """A run starting from the seed's dense round 0 (IMP, at init)."""
        from keras_lottery.base import files

        files.copy_rounds(dense, workdir, [0])
        name = f"{arm}_seed{seed}"
        if not self.step(name, self.lottery(workdir, seed, arm, last)):
            return False
        if arm in AT_INIT and not self.step(f"{name}_shuffle", self.python(
                "binaries.controls", f"--workdir={workdir}",
                "--control=shuffle",
                f"--rounds={','.join(map(str, self.rounds))}")):
            return False
        _record(workdir, record)
        return True

    def _chain(self, arm: str, seed: int, folder: str) -> None:
        """The chain to the last target, then each earlier target."""
        last = max(self.rounds)
        chain = os.path.join(folder, f"round{last:02d}")
        chain_record = os.path.join(self.records, arm, f"seed{seed}",
                                    f"round{last:02d}")

        def run_chain() -> bool:
            ok = self.step(f"{arm}_seed{seed}_round{last:02d}",
                           self.lottery(chain, seed, arm, last))
            if ok:
                _record(chain, chain_record)
            return ok

        targets = [r for r in self.rounds if r < last]
        chain_job = self.add(jobs.Job(
            f"{arm}_seed{seed}_round{last:02d}", run_chain,
            lambda: jobs.recorded(chain_record),
            lambda: jobs.rounds_done(chain, range(max(targets, default=0)))))
        for r in targets:
            workdir = os.path.join(folder, f"round{r:02d}")
            record = os.path.join(self.records, arm, f"seed{seed}",
                                  f"round{r:02d}")

            def run_target(r=r, workdir=workdir, record=record) -> bool:
                from keras_lottery.base import files

                files.copy_rounds(chain, workdir, range(r))
                ok = self.step(f"{arm}_seed{seed}_round{r:02d}",
                               self.lottery(workdir, seed, arm, r))
                if ok:
                    _record(workdir, record)
                return ok

            self.add(jobs.Job(f"{arm}_seed{seed}_round{r:02d}", run_target,
                         lambda record=record: jobs.recorded(record),
                         after=(chain_job,)))

    def _instability(self, name: str, workdir: str, round_index: int,
                     steps: Sequence[int], after: tuple[jobs.Job, ...]) -> None:
        """One job per rewind step (they run side by side), then one that
        writes the table and records it."""
        from keras_lottery.base import paths

        record = os.path.join(os.path.dirname(self.records), "instability",
                              f"{name}.json")
        folder = paths.instability_dir(workdir, round_index)

        def run(label: str, ks: Sequence[int]) -> bool:
            return self.step(label, self.python(
                "binaries.instability", f"--workdir={workdir}",
                f"--round={round_index}",
                f"--rewind_steps={','.join(map(str, ks))}"))

        rows = tuple(self.add(jobs.Job(
            f"{name}_k{k:05d}",
            lambda k=k: run(f"instability_{name}_k{k:05d}", [k]), None,
            lambda k=k: os.path.exists(paths.path_file(folder, k)),
            after=after)) for k in steps)

        def table() -> bool:
            ok = run(f"instability_{name}", steps)
            if ok:
                _copy_file(os.path.join(folder, "instability.json"), record)
            return ok

        self.add(jobs.Job(name, table, lambda: os.path.exists(record),
                          after=rows))

    def _conv2(self) -> None:
        workdir = os.path.join(self.workdirs, "conv2_dense")
        config = (f"--config=configs/conv2_mnist.py"
                  f"{':smoke' if self.smoke else ''}")
        dense = self.add(jobs.Job(
            "conv2_dense",
            lambda: self.step("conv2_dense", self.python(
                "binaries.lottery", config,
                f"--config.data.dir={self.data_dir}",
                "--config.eval.test_at=best", "--config.export.enabled=false",
                "--config.prune.num_rounds=0", f"--workdir={workdir}")),
            None, lambda: jobs.rounds_done(workdir, [0])))
        steps = [0, 2, 5] if self.smoke else CONV2_REWIND_STEPS
        self._instability("conv2_round00", workdir, 0, steps, (dense,))


def _copy_file(source: str, target: str) -> None:
    from keras_lottery.base import files

    os.makedirs(os.path.dirname(target), exist_ok=True)
    with files.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _record(workdir: str, record: str) -> None:
    """Records a finished run (and its controls): the small files the
    report reads; summary.json last, which marks it recorded."""
    from keras_lottery.base import paths

    for control in paths.CONTROLS:
        source = paths.control_workdir(workdir, control)
        if os.path.exists(os.path.join(source, "summary.json")):
            _record(source, os.path.join(record, "controls", control))
    for name in _RECORDED:
        if os.path.exists(os.path.join(workdir, name)):
            _copy_file(os.path.join(workdir, name),
                       os.path.join(record, name))


def table(done: Sequence[tuple[str, int, int, str]]) -> list[dict]:
    """One row per arm (and shuffled control) and target round: means over
    seeds of accuracies and costs."""
    from keras_lottery.base import paths
    from keras_lottery.lottery import cost

    cells: dict[tuple[str, int], list[dict]] = {}
    for arm, _, round_index, workdir in done:
        sources = [(arm, workdir)]
        control = paths.control_workdir(workdir, "shuffle")
        if arm in AT_INIT and os.path.exists(paths.summary_file(control)):
            sources.append((f"{arm} (shuffled)", control))
        for name, folder in sources:
            for entry in cost.load_costs(folder):
                if entry["round"] == round_index:
                    cells.setdefault((name, round_index), []).append(entry)
    rows = []
    for (name, round_index), entries in sorted(
            cells.items(), key=lambda item: (item[0][1], item[0][0])):
        row = {"arm": name, "round": round_index, "seeds": len(entries),
               "remaining_fraction": entries[0]["remaining_fraction"]}
        for field in ("test_accuracy", "final_test_accuracy",
                      "ticket_train_steps", "ticket_seconds"):
            values = [e[field] for e in entries]
            row[field] = float(np.mean(values))
            row[field + "_std"] = (float(np.std(values, ddof=1))
                                   if len(values) > 1 else None)
        rows.append(row)
    return rows


def verdict(rows: Sequence[dict]) -> list[str]:
    """The goal's verdict, from `rows`: which methods reach it, or which
    came closest."""
    imp = {r["round"]: r for r in rows if r["arm"] == "imp"}
    candidates = []
    for row in rows:
        reference = imp.get(row["round"])
        if (row["arm"] == "imp" or reference is None
                or row["remaining_fraction"] > GOAL_REMAINING + 1e-9):
            continue
        gap = row["test_accuracy"] - reference["test_accuracy"]
        share = row["ticket_train_steps"] / reference["ticket_train_steps"]
        candidates.append((row, gap, share))
    if not candidates:
        return ["No run reached 3.6% of the weights or fewer next to an "
                "IMP run of the same sparsity: the goal cannot be judged."]
    lines = []
    met = [(r, g, s) for r, g, s in candidates
           if g >= -GOAL_POINTS and s <= GOAL_COST]
    for row, gap, share in met:
        lines.append(
            f"- **Goal met** by {row['arm']} at "
            f"{100 * row['remaining_fraction']:.3g}%: "
            f"{100 * gap:+.2f} points from IMP for {100 * share:.0f}% of "
            "its iterations.")
    if not met:
        cheap = [c for c in candidates if c[2] <= GOAL_COST] or candidates
        row, gap, share = max(cheap, key=lambda c: c[1])
        lines.append(
            "- **No method met the goal.** Closest"
            f"{' within the cost limit' if cheap is not candidates else ''}"
            f": {row['arm']} at {100 * row['remaining_fraction']:.3g}%, "
            f"{100 * gap:+.2f} points from IMP's accuracy at early stop "
            f"for {100 * share:.0f}% of its training iterations.")
    return lines


def write_doc(path: str, rows: Sequence[dict], instability_tables:
              Sequence[dict], cost_files: Sequence[str], smoke: bool) -> None:
    """Writes the study's markdown report."""
    from keras_lottery.base import files

    lines = [
        "# Finding tickets early and cheaply: the study's tables", "",
        f"Written by `python -m benchmarks.early_study` "
        f"({common.machine()}).",
    ]
    if smoke:
        lines += ["", "**Smoke run: tiny trainings; the numbers mean "
                  "nothing.**"]
    lines += [
        "", "## Accuracy and cost per method and sparsity", "",
        "Means over seeds; ticket iterations and seconds count the rounds "
        "each ticket is made from (training, evaluation and choosing "
        "masks).", "",
        "| method | remaining % | seeds | test acc. at early stop % | "
        "test acc. at end % | ticket iterations | ticket seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['arm']} | {100 * row['remaining_fraction']:.3g} | "
            f"{row['seeds']} | {_mean(row, 'test_accuracy', 100)} | "
            f"{_mean(row, 'final_test_accuracy', 100)} | "
            f"{row['ticket_train_steps']:,.0f} | "
            f"{row['ticket_seconds']:,.0f} |")
    here = os.path.dirname(os.path.abspath(path))
    links = [f"[{os.path.basename(f)}]({os.path.relpath(f, here)})"
             for f in cost_files]
    lines += ["", "## The goal", "", *verdict(rows), "",
              f"Accuracy against cost: {', '.join(links)}.", ""]
    for found in instability_tables:
        # The run's folder under --workdirs (e.g. imp/seed0), wherever
        # the study ran.
        where = "/".join(os.path.normpath(found["workdir"]).split(os.sep)[-2:])
        lines += [f"## Instability: {where}, round "
                  f"{found['round']}", "", "| k | instability % | stable |",
                  "|---:|---:|:---:|"]
        lines += [f"| {r['rewind_step']:,} | {100 * r['instability']:.2f} "
                  f"| {'yes' if r['stable'] else 'no'} |"
                  for r in found["rows"]]
        lines.append("")
    files.write_text(path, "\n".join(lines))


def plot_methods(rows: Sequence[dict], path: str) -> None:
    """Test accuracy at early stop against ticket iterations, a line per
    method through its sparsities (means over seeds); shuffled controls
    dashed."""
    from matplotlib import figure

    from keras_lottery.base import files

    fig = figure.Figure(figsize=(8, 5), constrained_layout=True)
    ax = fig.subplots()
    for name in dict.fromkeys(r["arm"] for r in rows):
        points = sorted((r for r in rows if r["arm"] == name),
                        key=lambda r: -r["remaining_fraction"])
        x = [r["ticket_train_steps"] for r in points]
        y = [100 * r["test_accuracy"] for r in points]
        # A method and its shuffled control share a colour.
        base = name.removesuffix(" (shuffled)")
        colour = f"C{ARMS.index(base) if base in ARMS else len(ARMS)}"
        line, = ax.plot(x, y, marker="o", color=colour,
                        linestyle="--" if "shuffled" in name else "-",
                        label=name)
        if "shuffled" not in name:
            for r, xi, yi in zip(points, x, y):
                ax.annotate(f"{100 * r['remaining_fraction']:.3g}%",
                            (xi, yi), fontsize="x-small",
                            color=line.get_color(), xytext=(3, 3),
                            textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("Training iterations of the ticket (mean over seeds)")
    ax.set_ylabel("Test accuracy at early stop (%)")
    ax.set_title("Each method's tickets (labels: % of weights remaining)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small", ncol=2)
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _mean(row: dict, field: str, scale: float) -> str:
    text = f"{scale * row[field]:.2f}"
    if row[field + "_std"] is not None:
        text += f" ± {scale * row[field + '_std']:.2f}"
    return text


def recorded_runs(records: str, arms: Sequence[str], seeds: Sequence[int],
                  rounds: Sequence[int]) -> list[tuple[str, int, int, str]]:
    """`(arm, seed, target round, record)` of every recorded target."""
    study = Study("", records, "", False, rounds, 1)
    return [(arm, seed, r, record) for seed in seeds for arm in arms
            for r, record in study.covered(arm, seed)
            if jobs.recorded(record)]


def instability_records(records: str) -> list[dict[str, Any]]:
    """The recorded instability tables, by name."""
    from keras_lottery.base import files

    folder = os.path.join(os.path.dirname(records), "instability")
    if not os.path.isdir(folder):
        return []
    return [files.read_json(os.path.join(folder, name))
            for name in sorted(os.listdir(folder)) if name.endswith(".json")]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    unknown = [a for a in _ARMS.value if a not in ARMS]
    if unknown:
        sys.exit(f"--arms must be some of {', '.join(ARMS)}. "
                 f"Received: --arms={','.join(_ARMS.value)}")
    kinds = [k for k in _INSTABILITY.value if k != "none"]
    if any(k not in ("lenet", "conv2") for k in kinds):
        sys.exit("--instability must be some of lenet, conv2, or none. "
                 f"Received: --instability={','.join(_INSTABILITY.value)}")
    try:
        seeds = [int(s) for s in _SEEDS.value]
        rounds = sorted({int(r) for r in _ROUNDS.value})
    except ValueError:
        seeds = rounds = []
    if (not seeds or not rounds or min(seeds) < 0 or min(rounds) < 1
            or _JOBS.value < 1):
        sys.exit("--seeds (>= 0), --rounds (>= 1) and --jobs (>= 1) must "
                 f"be integers. Received: --seeds={','.join(_SEEDS.value)} "
                 f"--rounds={','.join(_ROUNDS.value)} --jobs={_JOBS.value}")
    if _SMOKE.value and not flags.FLAGS["rounds"].present:
        rounds = [1, 2]
    from keras_lottery.analysis import cost_report

    study = Study(_WORKDIRS.value, _RECORDS.value, _DATA_DIR.value,
                  _SMOKE.value, rounds,
                  _THREADS.value or max(1, os.cpu_count() // _JOBS.value))
    study.plan(_ARMS.value, seeds, kinds)
    start = time.time()
    failed = jobs.run_jobs(study.jobs, _JOBS.value)
    print(f"wall time {(time.time() - start) / 60:.1f} min", flush=True)
    done = recorded_runs(_RECORDS.value, _ARMS.value, seeds, rounds)
    if done:
        folders = sorted({(arm, seed, w) for arm, seed, _, w in done})
        written = cost_report.write_cost_report(
            [w for _, _, w in folders], _OUTPUT.value,
            labels=[f"{arm} seed {seed} ({os.path.basename(w)})"
                    for arm, seed, w in folders])
        rows = table(done)
        methods = os.path.join(_OUTPUT.value, "methods.png")
        plot_methods(rows, methods)
        write_doc(_DOC.value, rows, instability_records(_RECORDS.value),
                  [methods, *written], _SMOKE.value)
        print(_DOC.value)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}; logs in "
                 f"{os.path.join(_WORKDIRS.value, 'logs')}. Rerun to "
                 "resume.")


if __name__ == "__main__":
    app.run(main)

r"""The study of issue 14: cheaper tickets for LeNet-300-100 on MNIST.

  python -m benchmarks.early_study --workdirs=workdirs/early \
      --output=docs/early --doc=docs/EARLY.md
  python -m benchmarks.early_study --smoke --workdirs=/tmp/early_smoke \
      --output=/tmp/early_smoke/report --doc=/tmp/early_smoke/EARLY.md

Resumable: every run is a lottery workdir (or a control, or an instability
folder) under --workdirs; rerun the same command after any kill. For each
seed (--seeds, default 0,1,2) and each target round (--rounds, default
3,7,12,15,18: 51.3, 21.1, 7.0, 3.6 and 1.85% of the weights remaining):

    imp           IMP as in the paper: one run of 18 rounds
    early_bird    early-bird IMP (You et al.: a check every 1,000 steps,
                  window 5, threshold 0.1), one run per target round, so
                  that the target's ticket trains in full
    short_rounds  IMP whose pruning rounds train 10,000 iterations and the
                  final ticket 50,000 (an early-bird window of 1), one run
                  per target round
    snip, grasp, synflow, random
                  pruned at initialisation to each target (one-shot), each
                  with its shuffled-mask control

then the instability of LeNet at rounds 0, 7 and 15 (k = 0) and of
Conv-2/MNIST's dense network at k = 0, 100, 500, 2000, and writes --doc:
test accuracy at early stop and at the end, and the training iterations
and seconds each ticket cost, per method and sparsity (mean over seeds);
the goal's verdict (a ticket at <= 3.6% within 0.2 points of IMP's
accuracy at early stop for at most half its iterations), computed from the
runs; the instability tables; and --output's cost.png (see
`keras_lottery.cost_report`). --arms runs a subset; --smoke shrinks every
run to seconds (tests; its numbers mean nothing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np
from absl import app
from absl import flags

from benchmarks import common

ARMS = ("imp", "early_bird", "short_rounds", "snip", "grasp", "synflow",
        "random")
AT_INIT = ("snip", "grasp", "synflow", "random")
GOAL_REMAINING = 0.036  # the goal's sparsity: at most this remaining
GOAL_POINTS = 0.002  # within this much of IMP's accuracy at early stop
GOAL_COST = 0.5  # for at most this share of IMP's iterations

_WORKDIRS = flags.DEFINE_string("workdirs", None, "Folder of every run.")
# allow_override: binaries.export defines --output too (tests import both).
_OUTPUT = flags.DEFINE_string("output", None, "Folder for cost.md/png.",
                              allow_override=True)
_DOC = flags.DEFINE_string("doc", None, "The markdown report to write.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
_ROUNDS = flags.DEFINE_list("rounds", ["3", "7", "12", "15", "18"],
                            "Target rounds (sparsities).")
_ARMS = flags.DEFINE_list("arms", list(ARMS), "Methods to run.")
_INSTABILITY = flags.DEFINE_bool("instability", True,
                                 "Run the instability analyses.")
_DATA_DIR = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST.",
                                allow_override=True)
_SMOKE = flags.DEFINE_bool("smoke", False, "Tiny runs, for tests.")


def lenet_config(seed: int, smoke: bool, data_dir: str
                 ) -> ml_collections.ConfigDict:
    """LeNet-300-100's config (shrunk for --smoke), export off."""
    from configs import lenet300_mnist

    config = lenet300_mnist.get_config("smoke" if smoke else "")
    config.seed = seed
    config.data.dir = data_dir
    config.export.enabled = False
    config.eval.test_at = "best"  # same accuracies, a third of the cost
    if smoke:
        config.train.num_steps = 100
        config.eval.every_steps = 50
        config.train.checkpoint_every_steps = 50
        config.train.steps_per_loop = 25
    return config


def arm_config(arm: str, seed: int, last_round: int, rounds: Sequence[int],
               smoke: bool, data_dir: str) -> ml_collections.ConfigDict:
    """The config of one run of `arm`, whose last round is `last_round`."""
    config = lenet_config(seed, smoke, data_dir)
    config.prune.num_rounds = last_round
    prune = config.prune
    if arm in ("early_bird", "short_rounds"):
        prune.early_bird.enabled = True
        if arm == "early_bird":
            prune.early_bird.every_steps = 25 if smoke else 1000
            prune.early_bird.window = 2 if smoke else 5
            prune.early_bird.threshold = 0.1
        else:
            prune.early_bird.every_steps = 50 if smoke else 10000
            prune.early_bird.window = 1
    elif arm in AT_INIT:
        prune.mode = "one_shot"
        prune.at_init = True
        prune.method = arm
        prune.one_shot_rounds = tuple(rounds)
    return config


def runs(root: str, arms: Sequence[str], seeds: Sequence[int],
         rounds: Sequence[int], smoke: bool, data_dir: str
         ) -> list[tuple[str, int, int, str]]:
    """Runs (or resumes) every run; returns `(arm, seed, target round,
    workdir)` per target, the workdir holding that round."""
    from keras_lottery import controls
    from keras_lottery import lottery

    done = []
    for seed in seeds:
        for arm in arms:
            if arm in ("early_bird", "short_rounds"):
                targets = [(r, (r,)) for r in rounds]
            else:
                targets = [(max(rounds), tuple(rounds))]
            for last, covered in targets:
                workdir = os.path.join(
                    root, arm, f"seed{seed}",
                    f"round{last:02d}" if len(targets) > 1 else "all")
                lottery.run(arm_config(arm, seed, last, rounds, smoke,
                                       data_dir), workdir)
                if arm in AT_INIT:
                    controls.run_control(workdir, "shuffle", rounds)
                done += [(arm, seed, r, workdir) for r in covered]
    return done


def instabilities(root: str, seed: int, smoke: bool, data_dir: str,
                  rounds: Sequence[int]) -> list[dict[str, Any]]:
    """LeNet's instability at rounds 0, 7, 15 (k = 0; IMP's run of
    `seed`), Conv-2's at k = 0, 100, 500, 2000 of its dense network."""
    from configs import conv2_mnist
    from keras_lottery import instability
    from keras_lottery import lottery

    imp = os.path.join(root, "imp", f"seed{seed}", "all")
    lenet_rounds = [r for r in (0, 7, 15) if r <= max(rounds)] if not (
        smoke) else [0, max(rounds)]
    tables = [instability.run(imp, r, [0]) for r in lenet_rounds]
    config = conv2_mnist.get_config("smoke" if smoke else "")
    config.data.dir = data_dir
    config.export.enabled = False
    config.prune.num_rounds = 0
    conv2 = os.path.join(root, "conv2_dense")
    lottery.run(config, conv2)
    steps = [0, 2, 5] if smoke else [0, 100, 500, 2000]
    tables.append(instability.run(conv2, 0, steps))
    return tables


def table(done: Sequence[tuple[str, int, int, str]]) -> list[dict]:
    """One row per arm (and shuffled control) and target round: means over
    seeds of accuracies and costs."""
    from keras_lottery import cost
    from keras_lottery import paths

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
    from keras_lottery import files

    lines = [
        "# Finding tickets early and cheaply (issue 14)", "",
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
    lines += ["", "## The goal", "", *verdict(rows), "",
              f"Accuracy against cost: {', '.join(cost_files)}.", ""]
    for found in instability_tables:
        lines += [f"## Instability: {found['workdir']}, round "
                  f"{found['round']}", "", "| k | instability % | stable |",
                  "|---:|---:|:---:|"]
        lines += [f"| {r['rewind_step']:,} | {100 * r['instability']:.2f} "
                  f"| {'yes' if r['stable'] else 'no'} |"
                  for r in found["rows"]]
        lines.append("")
    files.write_text(path, "\n".join(lines))


def _mean(row: dict, field: str, scale: float) -> str:
    text = f"{scale * row[field]:.2f}"
    if row[field + "_std"] is not None:
        text += f" ± {scale * row[field + '_std']:.2f}"
    return text


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    unknown = [a for a in _ARMS.value if a not in ARMS]
    if unknown:
        raise app.UsageError(f"--arms must be some of {', '.join(ARMS)}. "
                             f"Received: --arms={','.join(_ARMS.value)}")
    from keras_lottery import cost_report

    seeds = [int(s) for s in _SEEDS.value]
    rounds = sorted(int(r) for r in _ROUNDS.value)
    if _SMOKE.value:
        rounds = [r for r in rounds if r <= 2] or [1, 2]
    done = runs(_WORKDIRS.value, _ARMS.value, seeds, rounds, _SMOKE.value,
                _DATA_DIR.value)
    found = (instabilities(_WORKDIRS.value, seeds[0], _SMOKE.value,
                           _DATA_DIR.value, rounds)
             if _INSTABILITY.value and "imp" in _ARMS.value else [])
    workdirs = sorted({(arm, seed, w) for arm, seed, _, w in done})
    written = cost_report.write_cost_report(
        [w for _, _, w in workdirs], _OUTPUT.value,
        labels=[f"{arm} seed {seed} ({os.path.basename(w)})"
                for arm, seed, w in workdirs])
    write_doc(_DOC.value, table(done), found, written, _SMOKE.value)
    print(_DOC.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdirs", "output", "doc"])
    app.run(main)

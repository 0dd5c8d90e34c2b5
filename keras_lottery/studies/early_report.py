r"""The early study's report, from its records alone (`early`).

Test accuracy at early stop and at the end, and the iterations and seconds
each ticket cost, per method and sparsity (mean over seeds); the goal's
verdict (a ticket at <= 3.6% within 0.2 points of IMP's accuracy at early
stop for at most half its iterations); the instability tables; and
cost.md/png (`keras_lottery.analysis.cost_report`) and methods.png. The
markdown goes to OUTPUT/report.md (docs/EARLY.md states its findings).

  python -m keras_lottery.studies.early_report \
      --records=docs/results_early/runs --output=docs/results_early

(`keras-lottery study early` runs it once every run is recorded; its
flags are defined only then, so importing the module defines none).
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags
from matplotlib import figure

from keras_lottery.analysis import cost_report
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import cost
from keras_lottery.studies import grid
from keras_lottery.studies.early import ARMS
from keras_lottery.studies.early import AT_INIT
from keras_lottery.studies.early import covered

GOAL_REMAINING = 0.036  # the goal's sparsity: at most this remaining
GOAL_POINTS = 0.002  # within this much of IMP's accuracy at early stop
GOAL_COST = 0.5  # for at most this share of IMP's iterations


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    values = flags.FLAGS
    print(write(values.records, values.output, values.arms,
                [int(s) for s in values.seeds],
                [int(r) for r in values.rounds], values.smoke))


def write(records: str, output: str, arms: Sequence[str],
          seeds: Sequence[int], rounds: Sequence[int], smoke: bool) -> str:
    """Writes the report of the recorded runs; returns report.md's path."""
    done = recorded_runs(records, arms, seeds, rounds)
    if not done:
        raise ValueError("`records` holds no finished run of the early "
                         f"study. Received: records={records!r}")
    folders = sorted({(arm, seed, w) for arm, seed, _, w in done})
    written = cost_report.write_cost_report(
        [w for _, _, w in folders], output,
        labels=[f"{arm} seed {seed} ({os.path.basename(w)})"
                for arm, seed, w in folders])
    rows = table(done)
    methods = os.path.join(output, "methods.png")
    plot_methods(rows, methods)
    doc = os.path.join(output, "report.md")
    write_doc(doc, rows, instability_records(records), [methods, *written],
              smoke)
    return doc


def machine() -> str:
    """Where the report was written, with the date."""
    return (f"{datetime.date.today().isoformat()}, {platform.machine()}, "
            f"{os.cpu_count()} CPU cores, {platform.python_version()}")


def table(done: Sequence[tuple[str, int, int, str]]) -> list[dict]:
    """One row per arm (and shuffled control) and target round: means over
    seeds of accuracies and costs."""

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
    lines = [
        "# Finding tickets early and cheaply: the study's tables", "",
        f"Written by `keras-lottery study early` ({machine()}).",
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
    return [(arm, seed, r, record) for seed in seeds for arm in arms
            for r, record in covered(records, arm, seed, rounds)
            if all(map(os.path.exists, grid.recorded(record)))]


def instability_records(records: str) -> list[dict[str, Any]]:
    """The recorded instability tables, by name."""
    folder = os.path.join(os.path.dirname(os.path.normpath(records)),
                          "instability")
    if not os.path.isdir(folder):
        return []
    return [files.read_json(os.path.join(folder, name))
            for name in sorted(os.listdir(folder)) if name.endswith(".json")]


if __name__ == "__main__":
    flags.DEFINE_string("records", "docs/results_early/runs",
                        "The study's records.")
    flags.DEFINE_string("output", "docs/results_early",
                        "Folder for report.md, cost.md/png, methods.png.")
    flags.DEFINE_list("arms", list(ARMS), "Methods.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    flags.DEFINE_list("rounds", ["3", "7", "12", "15", "18"],
                      "Target rounds.")
    flags.DEFINE_bool("smoke", False, "Tiny runs: say so in the report.")
    app.run(main)

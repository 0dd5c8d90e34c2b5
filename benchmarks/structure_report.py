r"""The structure study's report: every cell side by side.

Reads the records of benchmarks/structure_study.py and writes, under
OUTPUT/PART:

  CELL/report.md, .json, controls.png   binaries.report of each cell (its
                                        seeds and controls)
  comparison.md, comparison.json        all cells: per round, the weights
                                        left (mask) and the parameters left
                                        once `keras_lottery.shrink` removed
                                        dead units, test accuracy at early
                                        stop and at the end, early-stop
                                        iteration, winning seeds, latency
  accuracy.png     test accuracy at early stop vs parameters left
  latency.png      test accuracy at early stop vs batch-1 latency
  layers.png       per-layer fraction of kernel entries left after shrink,
                   across rounds
  latency.json     batch-1 and batch-256 latency of each shrunk shape

Latency: each distinct shrunk shape is rebuilt from its recorded Keras
config with fresh weights (latency depends on the shapes only), exported
as a SavedModel (keras_lottery.export) and timed through its serving
signature at batch 1 and 256, interleaved, best of --repeats medians, on
--threads threads. Measured shapes are kept in latency.json and measured
again only with --remeasure: run it on a quiet machine.

  python -m benchmarks.structure_report --part=lenet [--latency]
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from typing import Any

import numpy as np
from absl import app
from absl import flags
from matplotlib import figure

from benchmarks import common

# Its timing helpers; it defines flags of the same names as some here
# (allow_override below, as benchmarks/shrink.py does).
from benchmarks import export as export_benchmark
from benchmarks import structure_record
from benchmarks.structure_cells import PARTS
from keras_lottery import files
from keras_lottery import report

_PART = flags.DEFINE_enum("part", "lenet", list(PARTS),
                          "Which network's cells.")
_RECORDS = flags.DEFINE_string("records", "docs/results_structure/runs",
                               "The study's records.")
_OUTPUT = flags.DEFINE_string("output", "docs/results_structure",
                              "Where the report goes.", allow_override=True)
_LATENCY = flags.DEFINE_bool("latency", False,
                             "Measure the shapes not yet in latency.json.")
_REMEASURE = flags.DEFINE_bool("remeasure", False,
                               "Measure every shape again.")
_THREADS = flags.DEFINE_integer("threads", 1, "CPU threads for latency.",
                                allow_override=True)
_CALLS = flags.DEFINE_integer("calls", 300, "Timed calls at batch 1 (a "
                              "tenth at batch 256), after as many untimed.",
                              allow_override=True)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Measurements per shape.",
                                allow_override=True)
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.",
                            allow_override=True)

BATCH_SIZES = (1, 256)
# A win by fewer test images than this is "narrow": 10 of MNIST's 10,000
# are 0.1 points, about the sampling error of one accuracy near 99%
# (sqrt(0.99 * 0.01 / 10,000) = 0.1 points).
NARROW_WIN_IMAGES, TEST_IMAGES = 10, 10_000


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    records = os.path.join(_RECORDS.value, _PART.value)
    output = os.path.join(_OUTPUT.value, _PART.value)
    cells = load_cells(records, PARTS[_PART.value][1])
    if not cells:
        raise app.UsageError(f"No finished run in {records}.")
    latency_path = os.path.join(output, "latency.json")
    latency = (files.read_json(latency_path)
               if os.path.exists(latency_path) else {"shapes": {}})
    if _LATENCY.value or _REMEASURE.value:
        latency = measure_latency(cells, latency, _REMEASURE.value)
        os.makedirs(output, exist_ok=True)
        files.write_json(latency_path, latency)
    for name, runs in cells.items():
        report.write_report([run["dir"] for run in runs],
                            os.path.join(output, name))
    table = compare(cells, latency["shapes"])
    files.write_json(os.path.join(output, "comparison.json"), table)
    with (files.atomic_path(os.path.join(output, "comparison.md")) as tmp,
          open(tmp, "w", encoding="utf-8") as f):
        f.write(format_comparison(table, latency))
    plot_accuracy(table, os.path.join(output, "accuracy.png"))
    plot_layers(cells, os.path.join(output, "layers.png"))
    if latency["shapes"]:
        plot_latency(table, os.path.join(output, "latency.png"))
    print(f"Report: {output}/comparison.md")


def load_cells(records: str, cells) -> dict[str, list[dict]]:
    """`{cell: [run]}` for the cells with at least one recorded seed, in
    the study's order; a run is its record folder's files."""
    found = {}
    for cell in cells:
        folder = os.path.join(records, cell.name)
        runs = []
        for seed_dir in sorted(os.listdir(folder)) if os.path.isdir(
                folder) else []:
            path = os.path.join(folder, seed_dir)
            if not os.path.exists(os.path.join(path, "summary.json")):
                continue
            run = {"dir": path,
                   "config": files.read_json(
                       os.path.join(path, "config.json")),
                   "summary": files.read_json(
                       os.path.join(path, "summary.json")),
                   "rounds": files.read_json(
                       os.path.join(path, "rounds.json")),
                   "models": files.read_json(
                       os.path.join(path, "models.json")),
                   "controls": {}}
            for control in ("random_reinit", "random_prune"):
                summary = os.path.join(path, "controls", control,
                                       "summary.json")
                if os.path.exists(summary):
                    run["controls"][control] = files.read_json(summary)
            runs.append(run)
        if runs:
            found[cell.name] = runs
    return found


def compare(cells: dict[str, list[dict]],
            latency: dict[str, dict]) -> dict[str, Any]:
    """Per cell and round, means over seeds; see the module docstring."""
    table = {"cells": {}}
    dense_kernels = None
    for name, runs in cells.items():
        rows = []
        for entry in runs[0]["summary"]:
            r = entry["round"]
            per_seed = [(run, next(e for e in run["summary"]
                                   if e["round"] == r),
                         next(m for m in run["rounds"] if m["round"] == r))
                        for run in runs
                        if any(e["round"] == r for e in run["summary"])]
            shrunk = [m["shrunk"] for _, _, m in per_seed]
            dense_kernels = dense_kernels or runs[0]["rounds"][0][
                "shrunk"]["kernel_entries"]
            seeds = [run["config"]["seed"] for run, _, _ in per_seed]
            row = {
                "round": r,
                "weights_left": entry["remaining_fraction"],
                "parameters_left": report.summarize(
                    [s["kernel_nonzero"] / dense_kernels for s in shrunk],
                    seeds),
                "units": shrunk[0]["units"],
                **{metric: report.summarize(
                    [e[metric] for _, e, _ in per_seed], seeds)
                   for metric in report.METRICS},
                "winning": sum(bool(e.get("winning_ticket"))
                               for _, e, _ in per_seed),
                # Of those, the seeds whose ticket is ahead of its dense
                # round by fewer than NARROW_WIN_IMAGES test images.
                "narrow_wins": sum(
                    bool(e.get("winning_ticket")) and round(TEST_IMAGES * (
                        e["test_accuracy"] - _dense(run)["test_accuracy"]))
                    < NARROW_WIN_IMAGES for run, e, _ in per_seed),
                # Seeds whose best validation loss was the round's last
                # evaluation: still improving when the round ended.
                "stopped_at_end": sum(
                    e["early_stop_step"] >= run["config"]["train"][
                        "num_steps"] for run, e, _ in per_seed),
                "seeds": len(per_seed),
            }
            times = [latency.get(structure_record.shape_key(s["units"]))
                     for s in shrunk]
            if all(times):
                row["latency_s"] = {
                    str(b): float(np.mean([t[str(b)] for t in times]))
                    for b in BATCH_SIZES}
            controls = {}
            for control in ("random_reinit", "random_prune"):
                got = [(e, c) for run, e, _ in per_seed
                       for c in run["controls"].get(control, [])
                       if c["round"] == r]
                if got:
                    controls[control] = {
                        "test_accuracy": report.summarize(
                            [c["test_accuracy"] for _, c in got],
                            range(len(got))),
                        "ticket_minus_control": report.summarize(
                            [e["test_accuracy"] - c["test_accuracy"]
                             for e, c in got], range(len(got))),
                        "early_stop_step": report.summarize(
                            [c["early_stop_step"] for _, c in got],
                            range(len(got)))}
            if controls:
                row["controls"] = controls
            rows.append(row)
        # Training and evaluation time of the pruned rounds (round 0 is
        # shared), per seed, and of the controls.
        seconds = report.summarize(
            [sum(e["train_seconds"] + e["eval_seconds"]
                 for e in run["summary"] if e["round"] > 0) for run in runs],
            [run["config"]["seed"] for run in runs])
        table["cells"][name] = {"rows": rows, "seconds": seconds,
                                "smallest_winning": _smallest_winning(rows)}
    table["versus_magnitude"] = _versus_magnitude(table["cells"])
    return table


def _dense(run: dict) -> dict:
    return next(e for e in run["summary"] if e["round"] == 0)


def _smallest_winning(rows: list[dict]) -> dict[str, Any]:
    """The sparsest rounds with a winning ticket in every seed and in at
    least one, by parameters left."""
    pruned = [r for r in rows if r["round"] > 0]
    every = [r for r in pruned if r["winning"] == r["seeds"]]
    some = [r for r in pruned if r["winning"] > 0]
    pick = lambda rs: min(  # noqa: E731
        rs, key=lambda r: r["parameters_left"]["mean"])["round"] if rs else (
            None)
    return {"every_seed": pick(every), "some_seed": pick(some)}


def _versus_magnitude(cells: dict[str, dict]) -> dict[str, Any]:
    """Each criterion's accuracy at early stop minus magnitude's, per round
    both have (same granularity, same per-round sparsity), paired by seed:
    the mean over the seeds both cells have of the per-seed differences. A
    seed recorded for one of the two cells only does not enter, so a study
    under way compares like with like."""
    result = {}
    for name, cell in cells.items():
        granularity, _, criterion = name.partition("_")
        base = cells.get(f"{granularity}_magnitude")
        if criterion == "magnitude" or base is None or "global" in name:
            continue
        by_round = {r["round"]: r for r in base["rows"]}
        diffs = []
        for row in cell["rows"]:
            if row["round"] == 0 or row["round"] not in by_round:
                continue
            mine, theirs = (_by_seed(r["test_accuracy"])
                            for r in (row, by_round[row["round"]]))
            seeds = sorted(mine.keys() & theirs.keys())
            if seeds:
                diffs.append({"round": row["round"], "seeds": seeds,
                              "difference": float(np.mean(
                                  [mine[s] - theirs[s] for s in seeds]))})
        if diffs:
            values = [d["difference"] for d in diffs]
            result[name] = {"rounds": diffs,
                            "seeds": sorted({s for d in diffs
                                             for s in d["seeds"]}),
                            "mean": float(np.mean(values)),
                            "worst": float(np.min(values)),
                            "best": float(np.max(values))}
    return result


def _by_seed(stats: dict) -> dict[int, float]:
    return dict(zip(stats["seeds"], stats["values"]))


def format_comparison(table: dict[str, Any], latency: dict) -> str:
    lines = ["# The structure study: every cell", "",
             "Means ± std over the seeds each round has (how many: the "
             "second number of *Winning*). *Weights left*: the masks' "
             "fraction; *params left*: nonzero kernel entries of the "
             "model after `keras_lottery.shrink`, over the dense model's "
             "(units whose every input or output is pruned count as "
             "removed). Winning: seeds where a' >= a and t' <= t against "
             "their own dense round. *(end: k)*: in k seeds the early "
             "stop is the round's last evaluation (the validation loss "
             "was still falling when the round ended). *(narrow: k)*: "
             "k of the winning seeds beat their dense round by fewer than "
             f"{NARROW_WIN_IMAGES} of the {TEST_IMAGES:,} test images "
             f"({100 * NARROW_WIN_IMAGES / TEST_IMAGES:.1f} points), "
             "about the sampling error of one test accuracy near 99%.", ""]
    if latency.get("shapes"):
        lines += [f"Latency: SavedModel serving signature, {latency['note']}",
                  ""]
    for name, cell in table["cells"].items():
        lines += [f"## {name}", "",
                  "| Round | Weights left % | Params left % | Units | "
                  "Test acc. at early stop % | at end % | Early-stop iter. "
                  "| Winning | b1 / b256 latency µs |",
                  "|" + "---|" * 9]
        for row in cell["rows"]:
            units = " ".join(str(u) for u in row["units"].values())
            wins = (f"{row['winning']}/{row['seeds']}" if row["round"]
                    else "dense")
            if row.get("narrow_wins"):
                wins += f" (narrow: {row['narrow_wins']})"
            times = row.get("latency_s")
            lat = (" / ".join(f"{1e6 * times[str(b)]:,.0f}"
                              for b in BATCH_SIZES) if times else "—")
            at_end = (f" (end: {row['stopped_at_end']})"
                      if row["stopped_at_end"] else "")
            lines.append(
                f"| {row['round']} | {100 * row['weights_left']:.3g} | "
                f"{100 * row['parameters_left']['mean']:.3g} | {units} | "
                f"{_pm(row['test_accuracy'], 100, 2)} | "
                f"{_pm(row['final_test_accuracy'], 100, 2)} | "
                f"{_pm(row['early_stop_step'], 1, 0)}{at_end} | "
                f"{wins} | {lat} |")
        small = cell["smallest_winning"]
        lines += ["", "Sparsest winning ticket: every seed: "
                  f"{_round(cell, small['every_seed'])}; some seed: "
                  f"{_round(cell, small['some_seed'])}. Training and "
                  "evaluation of the pruned rounds: "
                  f"{_pm(cell['seconds'], 1 / 60, 1)} min per seed.", ""]
        controlled = [r for r in cell["rows"] if r.get("controls")]
        if controlled:
            lines += ["| Round | Params left % | Ticket % | Random reinit % "
                      "| Random prune % | Ticket − reinit | Ticket − prune |",
                      "|" + "---|" * 7]
            for row in controlled:
                c = row["controls"]
                lines.append(
                    f"| {row['round']} | "
                    f"{100 * row['parameters_left']['mean']:.3g} | "
                    f"{_pm(row['test_accuracy'], 100, 2)} | "
                    + " | ".join(_pm(c[k]["test_accuracy"], 100, 2)
                                 if k in c else "—"
                                 for k in ("random_reinit", "random_prune"))
                    + " | " + " | ".join(
                        _pm(c[k]["ticket_minus_control"], 100, 2)
                        if k in c else "—"
                        for k in ("random_reinit", "random_prune")) + " |")
            lines.append("")
    if table["versus_magnitude"]:
        lines += ["## Criteria against magnitude", "",
                  "Test accuracy at early stop minus magnitude's at the "
                  "same granularity and round, paired by seed over the "
                  "seeds both cells have (points; mean over rounds, worst "
                  "and best round).", "",
                  "| Cell | Mean | Worst | Best | Rounds | Seeds |",
                  "|---|---|---|---|---|---|"]
        for name, v in table["versus_magnitude"].items():
            lines.append(f"| {name} | {100 * v['mean']:+.2f} | "
                         f"{100 * v['worst']:+.2f} | {100 * v['best']:+.2f} "
                         f"| {len(v['rounds'])} | "
                         f"{', '.join(map(str, v['seeds']))} |")
    return "\n".join(lines) + "\n"


def _round(cell: dict, round_index: int | None) -> str:
    if round_index is None:
        return "none"
    row = next(r for r in cell["rows"] if r["round"] == round_index)
    return (f"round {round_index} "
            f"({100 * row['parameters_left']['mean']:.3g}% of parameters)")


def _pm(stats: dict, scale: float, digits: int) -> str:
    text = f"{scale * stats['mean']:,.{digits}f}"
    if stats["std"] is not None:
        text += f" ± {scale * stats['std']:,.{digits}f}"
    return text


def plot_accuracy(table: dict[str, Any], path: str) -> None:
    fig = figure.Figure(figsize=(14, 5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("test_accuracy", "early_stop_step")):
        scale = 100 if metric == "test_accuracy" else 1
        for name, cell in table["cells"].items():
            rows = cell["rows"]
            x = [100 * r["parameters_left"]["mean"] for r in rows]
            y = [scale * r[metric]["mean"] for r in rows]
            err = [scale * (r[metric]["std"] or 0) for r in rows]
            ax.errorbar(x, y, yerr=err, capsize=2, marker=_marker(name),
                        linestyle="-" if "weight" in name else "--",
                        label=name)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("Percent of parameters left (after shrink)")
        ax.set_ylabel(report.METRICS[metric])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("Structure x criterion: mean ± std over seeds")
    _save(fig, path)


def plot_latency(table: dict[str, Any], path: str) -> None:
    fig = figure.Figure(figsize=(14, 5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, batch in zip(axes, BATCH_SIZES):
        for name, cell in table["cells"].items():
            rows = [r for r in cell["rows"] if r.get("latency_s")]
            ax.plot([1e6 * r["latency_s"][str(batch)] for r in rows],
                    [100 * r["test_accuracy"]["mean"] for r in rows],
                    marker=_marker(name), label=name)
        ax.set_xscale("log")
        ax.set_xlabel(f"Batch-{batch} latency of the shrunk SavedModel (µs)")
        ax.set_ylabel(report.METRICS["test_accuracy"])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    _save(fig, path)


LAYER_COLUMNS = 4  # layers.png: cells per row


def plot_layers(cells: dict[str, list[dict]], path: str) -> None:
    """Per-layer fraction of kernel entries left after shrink (seed 0's
    run of each cell), and of all of them (dashed)."""
    names = list(cells)
    columns = min(len(names), LAYER_COLUMNS)
    rows = -(-len(names) // columns)
    fig = figure.Figure(figsize=(4 * columns, 3.6 * rows), dpi=100,
                        layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, sharey=True)).ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        rounds = cells[name][0]["rounds"]
        dense = rounds[0]["shrunk"]
        steps = [m["round"] for m in rounds]
        for layer, count in dense["layer_nonzero"].items():
            ax.plot(steps, [100 * m["shrunk"]["layer_nonzero"].get(layer, 0)
                            / count for m in rounds], marker=".",
                    label=layer)
        ax.plot(steps, [100 * m["shrunk"]["kernel_nonzero"]
                        / dense["kernel_entries"] for m in rounds], "k--",
                label="all")
        ax.set_yscale("log")
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("Round")
        ax.grid(True, alpha=0.3)
    for ax in axes[::columns]:
        ax.set_ylabel("Percent of kernel entries left after shrink")
    axes[0].legend(fontsize="x-small")
    _save(fig, path)


def measure_latency(cells: dict[str, list[dict]], latency: dict,
                    remeasure: bool) -> dict:
    """Adds the batch-1 and batch-256 latency of every shrunk shape."""
    import keras  # noqa: PLC0415  (TensorFlow only when measuring)
    import tensorflow as tf  # noqa: PLC0415

    from keras_lottery import export  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    configs = {key: config for runs in cells.values() for run in runs
               for key, config in run["models"].items()}
    todo = {key: config for key, config in configs.items()
            if remeasure or key not in latency["shapes"]}
    images = common.mnist(_DATA.value).test_x[:max(BATCH_SIZES)]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="structure_latency_") as tmp:
        for i, (key, config) in enumerate(sorted(todo.items())):
            model = keras.saving.deserialize_keras_object(
                json.loads(json.dumps(config)))
            written = export.export_model(model, tmp, ("saved_model",),
                                          model_name=f"shape{i}")
            for batch in BATCH_SIZES:
                call = export_benchmark.saved_model_call(
                    written["saved_model"], images[:batch])
                calls = _CALLS.value if batch == 1 else max(
                    1, _CALLS.value // 10)
                runs[key, batch] = functools.partial(
                    export_benchmark.median_latency, call, calls)
        best = common.interleaved(runs, _REPEATS.value, best=min)
    shapes = dict(latency["shapes"])
    for key in todo:
        shapes[key] = {str(b): best[key, b] for b in BATCH_SIZES}
    return {"note": f"{common.machine()}, TensorFlow {tf.__version__}, "
                    f"{_THREADS.value} thread(s), best of {_REPEATS.value} "
                    f"medians of {_CALLS.value} calls (batch 1)",
            "shapes": shapes}


def _marker(name: str) -> str:
    return {"magnitude": "o", "gradient": "s", "activation": "^",
            "apoz": "v"}.get(name.split("_")[1], "D")


def _save(fig: figure.Figure, path: str) -> None:
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


if __name__ == "__main__":
    app.run(main)

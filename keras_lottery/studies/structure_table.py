"""The structure study's comparison table: every cell side by side.

Reads the records of the structure study (`keras_lottery.studies.
structure`; `load_cells`), computes per cell and round the means over
seeds (`compare`) and writes them as markdown (`format_comparison`). No
flags and no TensorFlow, so tests import it;
`keras_lottery.studies.structure_report` runs it and draws the plots.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.lottery import instability

BATCH_SIZES = (1, 256)
# latency.json's timings per shape, by key: "B" is the SavedModel's serving
# signature at batch B, "tflite_B" the TFLite model's; a latency.json
# lists its own ("columns"), else these.
LATENCY_COLUMNS = tuple(str(b) for b in BATCH_SIZES)
# The parts whose latency.json has other columns than LATENCY_COLUMNS.
PART_LATENCY_COLUMNS = {"vit": ("1", "64", "tflite_1", "tflite_64")}
# A win by fewer test images than this is "narrow": 10 of MNIST's 10,000
# are 0.1 points, about the sampling error of one accuracy near 99%
# (sqrt(0.99 * 0.01 / 10,000) = 0.1 points).
NARROW_WIN_IMAGES, TEST_IMAGES = 10, 10_000


def shape_key(units: dict[str, int | str]) -> str:
    """`"fc1=240,fc2=80,output=10"`: a shrunk model's shape, its layers
    by name (the order of rounds.json, whose keys are sorted)."""
    return ",".join(f"{name}={count}"
                    for name, count in sorted(units.items()))


def sorted_shape_key(key: str) -> str:
    """A key of any layer order (records written before `shape_key`
    sorted) as `shape_key` writes it."""
    return shape_key(dict(part.split("=") for part in key.split(",")))


def load_cells(records: str, names: Sequence[str]
               ) -> dict[str, list[dict]]:
    """`{cell: [run]}` for the cells named (`structure_cells.cell_names`)
    with at least one recorded seed, in that order; a run is its record
    folder's files."""
    found = {}
    for name in names:
        folder = os.path.join(records, name)
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
            found[name] = runs
    return found


def load_instability(records: str) -> dict[str, dict]:
    """`{name: table}`: the instability tables recorded under
    RECORDS/instability (e.g. `dense_seed0_round00`), by name."""
    folder = os.path.join(records, "instability")
    return {name.removesuffix(".json"): files.read_json(
        os.path.join(folder, name))
        for name in (sorted(os.listdir(folder)) if os.path.isdir(folder)
                     else []) if name.endswith(".json")}


def compare(cells: dict[str, list[dict]], latency: dict[str, dict],
            instabilities: dict[str, dict] | None = None
            ) -> dict[str, Any]:
    """Per cell and round, means over seeds of what
    `keras_lottery.studies.structure_report`'s docstring lists for
    comparison.md; the `instabilities` tables (`load_instability`), if
    any, by name."""
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
                "parameters_left": tables.summarize(
                    [s["kernel_nonzero"] / dense_kernels for s in shrunk],
                    seeds),
                # Each layer's count over the seeds: [fewest, most].
                "units": {layer: [min(s["units"][layer] for s in shrunk),
                                  max(s["units"][layer] for s in shrunk)]
                          for layer in shrunk[0]["units"]},
                **{metric: tables.summarize(
                    [e[metric] for _, e, _ in per_seed], seeds)
                   for metric in tables.METRICS},
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
            times = [latency.get(shape_key(s["units"]))
                     for s in shrunk]
            if all(times):
                row["latency_s"] = {
                    key: float(np.mean([t[key] for t in times]))
                    for key in times[0]}
            controls = {}
            for control in ("random_reinit", "random_prune"):
                got = [(e, c) for run, e, _ in per_seed
                       for c in run["controls"].get(control, [])
                       if c["round"] == r]
                if got:
                    controls[control] = {
                        "test_accuracy": tables.summarize(
                            [c["test_accuracy"] for _, c in got],
                            range(len(got))),
                        "ticket_minus_control": tables.summarize(
                            [e["test_accuracy"] - c["test_accuracy"]
                             for e, c in got], range(len(got))),
                        "early_stop_step": tables.summarize(
                            [c["early_stop_step"] for _, c in got],
                            range(len(got)))}
            if controls:
                row["controls"] = controls
            rows.append(row)
        # Training and evaluation time of the pruned rounds (round 0 is
        # shared), per seed, and of the controls.
        seconds = tables.summarize(
            [sum(e["train_seconds"] + e["eval_seconds"]
                 for e in run["summary"] if e["round"] > 0) for run in runs],
            [run["config"]["seed"] for run in runs])
        table["cells"][name] = {"rows": rows, "seconds": seconds,
                                "smallest_winning": _smallest_winning(rows)}
        rewind_step = runs[0]["config"].get("prune", {}).get(
            "rewind_step", 0)
        if rewind_step:
            table["cells"][name]["rewind_step"] = rewind_step
    table["versus_magnitude"] = _versus_magnitude(table["cells"])
    if instabilities:
        table["instability"] = {
            name: {"round": found["round"], "rows": [
                {key: row[key] for key in (
                    "rewind_step", "end_errors", "max_error", "instability",
                    "stable")} for row in found["rows"]]}
            for name, found in instabilities.items()}
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
    first = next(iter(table["cells"].values()), None)
    if first:
        lines += ["*Units*: what each layer keeps after shrink (units, "
                  "filters, an attention layer's heads; *a-b*: the fewest "
                  "and the most over the seeds), in this order: "
                  f"{' '.join(first['rows'][0]['units'])}.", ""]
    columns = latency_columns(latency)
    if latency.get("shapes"):
        served = ("SavedModel serving signature and TFLite interpreter"
                  if any(c.startswith("tflite_") for c in columns)
                  else "SavedModel serving signature")
        lines += [f"Latency: {served}, {latency['note']}", ""]
    for name, cell in table["cells"].items():
        rewound = (f" (rewinding to iteration {cell['rewind_step']})"
                   if cell.get("rewind_step") else "")
        lines += [f"## {name}{rewound}", "",
                  "| Round | Weights left % | Params left % | Units | "
                  "Test acc. at early stop % | at end % | Early-stop iter. "
                  f"| Winning | {' / '.join(map(column_label, columns))} "
                  "latency µs |",
                  "|" + "---|" * 9]
        for row in cell["rows"]:
            units = " ".join(str(lo) if lo == hi else f"{lo}-{hi}"
                             for lo, hi in row["units"].values())
            wins = (f"{row['winning']}/{row['seeds']}" if row["round"]
                    else "dense")
            if row.get("narrow_wins"):
                wins += f" (narrow: {row['narrow_wins']})"
            times = row.get("latency_s")
            lat = (" / ".join(f"{1e6 * times[c]:,.0f}" for c in columns)
                   if times else "—")
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
    for name, found in table.get("instability", {}).items():
        network = (f"round {found['round']}'s sparse network (its "
                   "masks on W_k)" if found["round"] else "the dense network "
                   "from W_k")
        lines += ["", f"## Instability: {name}", "",
                  "Test error (%) at the ends of the linear path between "
                  f"two trainings of {network} on "
                  "different data orders, and its maximum on the path; "
                  "stable when the instability (maximum minus the mean of "
                  f"the ends) is under {100 * instability.STABLE:g}% "
                  "(Frankle et al., ICML 2020).", "",
                  *instability.table_lines(found["rows"])]
    return "\n".join(lines) + "\n"


def latency_columns(latency: dict) -> tuple[str, ...]:
    """The timing keys of a latency.json (`LATENCY_COLUMNS`)."""
    return tuple(latency.get("columns", LATENCY_COLUMNS))


def part_latency_columns(part: str) -> tuple[str, ...]:
    """The timing keys a part's latency.json has."""
    return PART_LATENCY_COLUMNS.get(part, LATENCY_COLUMNS)


def load_latency(path: str, part: str) -> dict:
    """The latency.json at `path`, else one with no shapes yet and the
    part's columns (so a report names them before they are measured)."""
    if os.path.exists(path):
        return files.read_json(path)
    columns = part_latency_columns(part)
    return ({"shapes": {}} if columns == LATENCY_COLUMNS
            else {"shapes": {}, "columns": list(columns)})


def parse_column(column: str) -> tuple[str, int]:
    """`("saved_model", 64)` for "64", `("tflite", 64)` for "tflite_64"."""
    fmt, _, batch = column.rpartition("_")
    return fmt or "saved_model", int(batch)


def column_label(column: str) -> str:
    """`"b64"` for "64", `"TFLite b64"` for "tflite_64"."""
    fmt, batch = parse_column(column)
    return f"TFLite b{batch}" if fmt == "tflite" else f"b{batch}"


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

"""The report's tables: lottery runs read from their workdirs, per round.

`load_runs` reads the workdirs of one experiment run with several seeds
(each with its controls); `build_table` summarizes every series (ticket,
controls, one-shot) per round over seeds; `find` draws the findings from a
table, and `format_markdown` writes it as report.md. Nothing here trains,
imports a model or draws; `keras_lottery.analysis.report` writes it all.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.lottery import run_config

# Series of a report, in the order of its columns. "ticket" is the lottery
# run itself; "one_shot" the lottery runs of `one_shot_workdirs`.
SERIES = ("ticket", *paths.CONTROLS, "one_shot")
LABELS = {
    "ticket": "Winning ticket (iterative)",
    "random_reinit": "Random reinit",
    "random_prune": "Random prune",
    "shuffle": "Shuffled masks",
    "one_shot": "Winning ticket (one-shot)",
    "tfmot": "tfmot gradual pruning",
}
# Summary fields reported, with their titles, for classification.
METRICS = {
    "test_accuracy": "Test accuracy at early stop (%)",
    "early_stop_step": "Early-stop iteration",
    "final_test_accuracy": "Test accuracy at end of training (%)",
}


def metrics_for(metric: str) -> dict[str, str]:
    """`METRICS` for runs whose tickets are judged on test `metric`
    (summary.json's `compared_metric`): accuracy's, or the metric's."""
    if metric == "accuracy":
        return dict(METRICS)
    name = metric.replace("_", " ")
    return {f"test_{metric}": f"Test {name} at early stop",
            "early_stop_step": "Early-stop iteration",
            f"final_test_{metric}": f"Test {name} at end of training"}


def compared(table: dict[str, Any]) -> tuple[str, str]:
    """`(metric, "min" | "max")` a table's runs are judged on (tables of
    runs written before other metrics existed: accuracy, max)."""
    return (table.get("compared_metric", "accuracy"),
            table.get("compared_mode", "max"))


def scale(metric: str) -> float:
    """100 for accuracies (shown in percent), else 1."""
    return 100.0 if metric in METRICS or "accuracy" in metric else 1.0
ERROR_BARS = ("std", "range")
# Config fields that may differ between the runs of one report.
IGNORED_FIELDS = ("seed", *run_config.RESUMABLE_FIELDS)
# A tfmot point sits in a round's row when their remaining fractions differ
# by at most this (relative): the baseline prunes to a rounded sparsity.
TFMOT_TOLERANCE = 0.02
# At most this many rounds in `curves.png`.
CURVE_ROUNDS = 6


@dataclasses.dataclass(frozen=True)
class Run:
    """One lottery workdir as the report reads it.

    Attributes:
        workdir: the folder.
        config: its `config.json`.
        summaries: `summary.json` entries by series: `"ticket"` for the run
            itself, and each control of `paths.CONTROLS` that has a summary.
    """

    workdir: str
    config: dict[str, Any]
    summaries: dict[str, list[dict[str, Any]]]

    @property
    def seed(self) -> int:
        return self.config["seed"]


def load_run(workdir: str, name: str = "workdirs") -> Run:
    """Reads a workdir's config, summary and controls' summaries.

    Args:
        workdir: a lottery workdir (see `keras_lottery.base.paths`).
        name: the argument `workdir` came from, for error messages.

    Returns:
        The run. A control without `summary.json` is left out.

    Raises:
        ValueError: if `workdir` is missing, holds no lottery run, has no
            `summary.json`, or a file is damaged.
    """
    if not os.path.isdir(workdir):
        raise ValueError(
            f"`{name}` names a folder that does not exist. "
            f"Received: {workdir!r}")
    if not os.path.exists(paths.config_file(workdir)):
        raise ValueError(
            f"`{name}` names a folder that holds no lottery run (no "
            f"config.json). Received: {workdir!r}")
    if not os.path.exists(paths.summary_file(workdir)):
        raise ValueError(
            f"`{name}` names a run without summary.json: it has not run to "
            "the end; rerun `python -m binaries.lottery` on it. "
            f"Received: {workdir!r}")
    config = files.read_json(paths.config_file(workdir))
    if not isinstance(config, dict) or "seed" not in config:
        raise ValueError(
            f"{paths.config_file(workdir)} is not a lottery config (no "
            "`seed`).")
    summaries = {"ticket": _read_summary(paths.summary_file(workdir))}
    metric = _compared_of(summaries["ticket"])
    for control in paths.CONTROLS:
        path = paths.summary_file(paths.control_workdir(workdir, control))
        if os.path.exists(path):
            summaries[control] = _read_summary(path)
            theirs = _compared_of(summaries[control])
            if theirs != metric:
                raise ValueError(
                    f"{path} compares test {theirs[0]} but its run compares"
                    f" test {metric[0]}: rerun the control.")
    return Run(workdir, config, summaries)


def _compared_of(entries: list[dict[str, Any]]) -> tuple[str, str]:
    """The compared metric and its direction of a summary's entries."""
    first = entries[0] if entries else {}
    return (first.get("compared_metric", "accuracy"),
            first.get("compared_mode", "max"))


def load_runs(workdirs: Sequence[str], name: str = "workdirs",
              ignore: Sequence[str] = IGNORED_FIELDS) -> list[Run]:
    """Loads the runs of one experiment and checks that they agree.

    Args:
        workdirs: one workdir per seed.
        name: the argument `workdirs` came from, for error messages.
        ignore: dotted config fields that may differ between the runs.

    Returns:
        The runs, sorted by seed.

    Raises:
        ValueError: for no workdir, a bad workdir (see `load_run`), two
            runs of one seed, or runs whose configs differ in a field not
            in `ignore` (the message names the fields).
    """
    if not workdirs:
        raise ValueError(f"`{name}` must name at least one workdir. "
                         f"Received: {name}={list(workdirs)!r}")
    runs = [load_run(w, name) for w in workdirs]
    check_same_config(runs, runs[0], name, ignore)
    seen = {}
    for run in runs:
        if run.seed in seen:
            raise ValueError(
                f"`{name}` holds two runs of seed {run.seed}: "
                f"{seen[run.seed]!r} and {run.workdir!r}.")
        seen[run.seed] = run.workdir
    return sorted(runs, key=lambda run: run.seed)


def check_same_config(runs: Sequence[Run], reference: Run, name: str,
                      ignore: Sequence[str] = IGNORED_FIELDS) -> None:
    """Raises ValueError naming the fields in which a run's config differs.

    Args:
        runs: the runs to check.
        reference: the run they must agree with.
        name: the argument `runs` came from, for the message.
        ignore: dotted config fields that may differ.
    """
    # Runs made before a field existed hold its old behaviour.
    want = _flatten(run_config.with_added_fields(reference.config))
    for run in runs:
        held = _flatten(run_config.with_added_fields(run.config))
        differ = [
            f"{field}={held.get(field)!r} in {run.workdir!r} but "
            f"{want.get(field)!r} in {reference.workdir!r}"
            for field in sorted(set(want) | set(held))
            if not _ignored(field, ignore)
            and held.get(field) != want.get(field)
        ]
        if differ:
            shown = ", ".join(f"{f}*" if f.endswith(".") else f
                              for f in ignore)
            raise ValueError(
                f"`{name}` must be runs of one config, differing only in "
                f"{shown}. Differences: {'; '.join(differ)}.")


def _ignored(field: str, ignore: Sequence[str]) -> bool:
    """Whether `field` is in `ignore`; entries ending in "." are prefixes."""
    return any(field == f or (f.endswith(".") and field.startswith(f))
               for f in ignore)


def summarize(values: Sequence[float], seeds: Sequence[int]
              ) -> dict[str, Any]:
    """Mean, sample std (None for one value), min, max and n of `values`.

    Args:
        values: one value per seed.
        seeds: the seeds, in the order of `values`.
    """
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(np.mean(array)),
        "std": float(np.std(array, ddof=1)) if len(array) > 1 else None,
        "min": float(np.min(array)),
        "max": float(np.max(array)),
        "n": len(array),
        "values": [float(v) for v in array],
        "seeds": list(seeds),
    }


def build_table(runs: Sequence[Run], one_shot_runs: Sequence[Run] = (),
                tfmot: dict[str, Any] | None = None) -> dict[str, Any]:
    """Computes the report's numbers: one row per round.

    Args:
        runs: the iterative runs, one per seed (see `load_runs`).
        one_shot_runs: one-shot runs of the same experiment, or none.
        tfmot: a baseline as `load_tfmot` returns it, or None.

    Returns:
        `{"rows": [...], "series": [...], ...}`. Each row has `round`,
        `remaining_fraction`, and for each series in `series` either None
        (no seed has the round) or `{metric: summarize(...)}` for each of
        `METRICS`; and `tfmot`: the baseline point at this sparsity or None.

    Raises:
        ValueError: when two runs keep different fractions of the weights in
            one round.
    """
    sources = [(series, run, entries) for run in runs
               for series, entries in run.summaries.items()]
    sources += [("one_shot", run, run.summaries["ticket"])
                for run in one_shot_runs]
    remaining = {}
    for series, run, entries in sources:
        where = f"{run.workdir!r} ({series})"
        for entry in entries:
            fraction = entry["remaining_fraction"]
            held = remaining.setdefault(entry["round"], (fraction, where))
            if not math.isclose(held[0], fraction, rel_tol=1e-9):
                raise ValueError(
                    f"Round {entry['round']} keeps {fraction!r} of the "
                    f"weights in {where} but {held[0]!r} in {held[1]}: the "
                    "runs do not prune alike.")
    present = [s for s in SERIES if any(src[0] == s for src in sources)]
    judged = {_compared_of(entries) for _, _, entries in sources}
    if len(judged) > 1:
        raise ValueError(
            "The runs judge their tickets on different test metrics "
            f"({', '.join(sorted(m for m, _ in judged))}): a report "
            "compares runs of one task.")
    metric, mode = judged.pop()
    metrics = metrics_for(metric)
    points = tfmot["points"] if tfmot else []
    rows = []
    for round_index in sorted(remaining):
        row = {"round": round_index,
               "remaining_fraction": remaining[round_index][0]}
        for series in present:
            found = [(run.seed, entry) for s, run, entries in sources
                     if s == series for entry in entries
                     if entry["round"] == round_index]
            row[series] = {
                field: summarize([e[field] for _, e in found],
                                 [seed for seed, _ in found])
                for field in metrics
            } if found else None
            wins = [e.get("winning_ticket") for _, e in found]
            if row[series] and all(isinstance(w, bool) for w in wins):
                row[series]["winning"] = {"wins": sum(wins),
                                          "of": len(wins)}
        rows.append(row)
    for point in points:
        row = min(rows, key=lambda r: _log_distance(
            r["remaining_fraction"], point["remaining_fraction"]))
        if _log_distance(row["remaining_fraction"],
                         point["remaining_fraction"]) <= math.log1p(
                TFMOT_TOLERANCE) and row.get("tfmot") is None:
            row["tfmot"] = point
    for row in rows:
        row.setdefault("tfmot", None)
    config = {k: v for k, v in runs[0].config.items() if k != "seed"}
    table = {
        "title": f"{config['model']['name']} on {config['data']['name']}",
        "workdirs": [run.workdir for run in runs],
        "seeds": [run.seed for run in runs],
        "one_shot_workdirs": [run.workdir for run in one_shot_runs],
        "one_shot_seeds": [run.seed for run in one_shot_runs],
        "series": present,
        "tfmot": {k: v for k, v in tfmot.items() if k != "points"}
        if tfmot else None,
        "tfmot_points": points,
        "config": config,
        "rows": rows,
    }
    if metric != "accuracy":  # classification tables stay as they were
        table.update(compared_metric=metric, compared_mode=mode)
    table["findings"] = find(table)
    return table


def load_tfmot(path: str) -> dict[str, Any]:
    """Reads a baseline written by `benchmarks/tfmot_baseline.py`.

    Args:
        path: its JSON file.

    Returns:
        Its header fields (machine, date, steps, versions...) and `points`:
        one per final sparsity, sparsest last, each with `final_sparsity`,
        `remaining_fraction` (1 - final sparsity) and `test_accuracy` (see
        `summarize`, over the baseline's seeds).

    Raises:
        ValueError: if the file is missing, damaged or holds no runs.
    """
    if not os.path.isfile(path):
        raise ValueError(f"`tfmot` names a file that does not exist. "
                         f"Received: {path!r}")
    data = files.read_json(path)
    runs = data.get("runs") if isinstance(data, dict) else None
    if not runs or not all(
            isinstance(r, dict) and {"final_sparsity", "seed",
                                     "test_accuracy"} <= set(r)
            for r in runs):
        raise ValueError(
            f"{path} is not a tfmot baseline: it needs `runs`, a non-empty "
            "list of {final_sparsity, seed, test_accuracy}.")
    by_sparsity = {}
    for r in sorted(runs, key=lambda r: (r["final_sparsity"], r["seed"])):
        by_sparsity.setdefault(r["final_sparsity"], []).append(r)
    header = {k: v for k, v in data.items() if k != "runs"}
    header["path"] = path
    header["points"] = [
        {"final_sparsity": s, "remaining_fraction": 1.0 - s,
         "test_accuracy": summarize([r["test_accuracy"] for r in group],
                                    [r["seed"] for r in group])}
        for s, group in sorted(by_sparsity.items())
    ]
    return header


def find(table: dict[str, Any]) -> dict[str, Any]:
    """What the table shows, in the terms of Frankle & Carbin's claims.

    Every figure compares means over seeds with the dense network: the
    iterative run's round 0 (test accuracy at early stop, early-stop
    iteration).

    Args:
        table: as `build_table` returns it.

    Returns:
        `{"dense": {metric: mean}, "series": {series: {...}}, "tfmot":
        [...]}`. For each series with a pruned round: `holds_down_to`, the
        sparsest remaining fraction down to which every trained round's
        accuracy is at least the dense one's (None if the first is not);
        `first_below`, the least sparse round's remaining fraction whose
        accuracy is below the dense one's (None if none is); `peak`, the
        round of the highest accuracy (`remaining_fraction`,
        `test_accuracy`, `gain` over dense); `earliest`, the round of the
        earliest early stop (`remaining_fraction`, `early_stop_step`,
        `ratio` to dense); `winning`, per round, how many seeds have a
        winning ticket (a' >= a and t' <= t, each seed against its own
        dense round) of how many. `tfmot`: per baseline point in a row,
        its accuracy beside the ticket's at early stop and at the end.
    """
    rows = table["rows"]
    dense_row = next((r for r in rows if r["round"] == 0 and r["ticket"]),
                     None)
    if dense_row is None:
        return {"dense": None, "series": {}, "tfmot": []}
    metric, mode = compared(table)
    key = f"test_{metric}"
    sign = 1.0 if mode == "max" else -1.0
    dense = {field: dense_row["ticket"][field]["mean"]
             for field in metrics_for(metric)}
    found = {"dense": dense, "series": {}, "tfmot": []}
    if metric != "accuracy":
        found.update(compared_metric=metric, compared_mode=mode)
    for series in table["series"]:
        points = [(row["remaining_fraction"], row[series], row["round"])
                  for row in rows if row["round"] > 0 and row[series]]
        if not points:
            continue
        holds = None
        first_below = None
        for fraction, stats, _ in points:
            if sign * stats[key]["mean"] < sign * dense[key]:
                first_below = fraction
                break
            holds = fraction
        peak = max(points, key=lambda p: sign * p[1][key]["mean"])
        earliest = min(points, key=lambda p: p[1]["early_stop_step"]["mean"])
        found["series"][series] = {
            "holds_down_to": holds,
            "first_below": first_below,
            "peak": {
                "remaining_fraction": peak[0],
                key: peak[1][key]["mean"],
                "gain": peak[1][key]["mean"] - dense[key]},
            "earliest": {
                "remaining_fraction": earliest[0],
                "early_stop_step": earliest[1]["early_stop_step"]["mean"],
                "ratio": earliest[1]["early_stop_step"]["mean"]
                / dense["early_stop_step"]},
            "winning": [
                {"round": round_index, "remaining_fraction": fraction,
                 "seeds": stats["winning"]["wins"],
                 "of": stats["winning"]["of"]}
                for fraction, stats, round_index in points
                if stats.get("winning")],
        }
    for row in rows:
        if row["tfmot"] and row["ticket"]:
            found["tfmot"].append({
                "remaining_fraction": row["tfmot"]["remaining_fraction"],
                "round": row["round"],
                "tfmot": row["tfmot"]["test_accuracy"]["mean"],
                "ticket": row["ticket"]["test_accuracy"]["mean"],
                "ticket_final": row["ticket"]["final_test_accuracy"]["mean"],
            })
    return found


def format_findings(found: dict[str, Any]) -> list[str]:
    """`find`'s result as Markdown lines."""
    if found["dense"] is None:
        return []
    if "compared_metric" in found:
        return _format_task_findings(found)
    dense = found["dense"]
    lines = [
        "", "## Findings", "",
        "Means over seeds, against the dense network (round 0 of the "
        "iterative runs).", "",
        f"- Dense: {100 * dense['test_accuracy']:.2f}% test accuracy at "
        f"early stop (iteration {dense['early_stop_step']:,.0f}), "
        f"{100 * dense['final_test_accuracy']:.2f}% at the end.",
    ]
    for series, f in found["series"].items():
        holds = (f"at least the dense accuracy down to "
                 f"{100 * f['holds_down_to']:.3g}% remaining"
                 if f["holds_down_to"] else
                 "below the dense accuracy from its first pruned round")
        below = (f", first below it at {100 * f['first_below']:.3g}%"
                 if f["first_below"] and f["holds_down_to"] else "")
        peak, early = f["peak"], f["earliest"]
        wins = ", ".join(f"{100 * w['remaining_fraction']:.3g}%: "
                         f"{w['seeds']}/{w['of']}" for w in f["winning"])
        lines.append(
            f"- {LABELS[series]}: {holds}{below}; peak "
            f"{100 * peak['test_accuracy']:.2f}% at "
            f"{100 * peak['remaining_fraction']:.3g}% remaining "
            f"({100 * peak['gain']:+.2f} points); earliest early stop at "
            f"iteration {early['early_stop_step']:,.0f} "
            f"({early['ratio']:.0%} of dense) at "
            f"{100 * early['remaining_fraction']:.3g}% remaining. Seeds "
            f"with a winning ticket (a' >= a, t' <= t): {wins or 'n/a'}.")
    for point in found["tfmot"]:
        lines.append(
            f"- tfmot at {100 * point['remaining_fraction']:.3g}% "
            f"remaining: {100 * point['tfmot']:.2f}% (end of training) vs "
            f"the ticket's {100 * point['ticket']:.2f}% at early stop and "
            f"{100 * point['ticket_final']:.2f}% at the end "
            f"(round {point['round']}).")
    return lines


def _format_task_findings(found: dict[str, Any]) -> list[str]:
    """`format_findings` for tickets judged on a metric not accuracy."""
    metric, mode = found["compared_metric"], found["compared_mode"]
    name, key = metric.replace("_", " "), f"test_{metric}"
    better = "higher" if mode == "max" else "lower"
    dense = found["dense"]
    lines = [
        "", "## Findings", "",
        f"Means over seeds, against the dense network (round 0 of the "
        f"iterative runs). Tickets are judged on test {name} ({better} is "
        "better).", "",
        f"- Dense: test {name} {dense[key]:.4g} at early stop (iteration "
        f"{dense['early_stop_step']:,.0f}), "
        f"{dense[f'final_test_{metric}']:.4g} at the end.",
    ]
    for series, f in found["series"].items():
        holds = (f"at least as good as dense down to "
                 f"{100 * f['holds_down_to']:.3g}% remaining"
                 if f["holds_down_to"] else
                 "worse than dense from its first pruned round")
        below = (f", first worse at {100 * f['first_below']:.3g}%"
                 if f["first_below"] and f["holds_down_to"] else "")
        peak, early = f["peak"], f["earliest"]
        wins = ", ".join(f"{100 * w['remaining_fraction']:.3g}%: "
                         f"{w['seeds']}/{w['of']}" for w in f["winning"])
        lines.append(
            f"- {LABELS[series]}: {holds}{below}; best {name} "
            f"{peak[key]:.4g} at {100 * peak['remaining_fraction']:.3g}% "
            f"remaining ({peak['gain']:+.4g}); earliest early stop at "
            f"iteration {early['early_stop_step']:,.0f} "
            f"({early['ratio']:.0%} of dense) at "
            f"{100 * early['remaining_fraction']:.3g}% remaining. Seeds "
            f"with a winning ticket ({name} at least as good, t' <= t): "
            f"{wins or 'n/a'}.")
    return lines


def format_markdown(table: dict[str, Any]) -> str:
    """The report's tables in Markdown, one per metric of `METRICS`.

    Cells are `mean ± std` over seeds; `(n=k)` marks a cell with fewer
    seeds than the report has; `—` a round that no seed of the series has.
    """
    expected = {s: len(table["seeds"]) for s in SERIES}
    expected["one_shot"] = len(table["one_shot_seeds"])
    tfmot = table["tfmot"]
    lines = [
        f"# {table['title']}: lottery-ticket results",
        "",
        f"Mean ± std over seeds {_join(table['seeds'])} "
        f"(`{'`, `'.join(table['workdirs'])}`).",
    ]
    if table["one_shot_seeds"]:
        lines.append(
            f"One-shot: seeds {_join(table['one_shot_seeds'])} "
            f"(`{'`, `'.join(table['one_shot_workdirs'])}`).")
    config = table["config"]
    lines.append(
        f"{config['train']['num_steps']:,} iterations per round, batch "
        f"{config['train']['batch_size']}, {config['train']['optimizer']} "
        f"{config['train']['learning_rate']}; pruning "
        f"{config['prune']['fraction_per_round']:g} per round "
        f"({config['prune']['scope']}), rewind step "
        f"{config['prune']['rewind_step']}. `(n=k)`: only k seeds have the "
        "round.")
    if tfmot:
        lines.append(
            f"tfmot: `{tfmot['path']}` ({tfmot.get('machine', '?')}), "
            f"{tfmot.get('settings', {}).get('steps', '?')} iterations, "
            "polynomial decay from 0 to the final sparsity; its accuracy is "
            "at the end of training (no early stopping) and sits in the row "
            "of the nearest remaining fraction (within "
            f"{TFMOT_TOLERANCE:.0%}).")
    for metric, title in metrics_for(compared(table)[0]).items():
        columns = list(table["series"])
        with_tfmot = tfmot is not None and metric != "early_stop_step"
        header = ["Round", "Remaining %"] + [LABELS[s] for s in columns]
        if with_tfmot:
            header.append(LABELS["tfmot"])
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for row in table["rows"]:
            cells = [str(row["round"]),
                     f"{100 * row['remaining_fraction']:.3g}"]
            for series in columns:
                stats = row[series][metric] if row[series] else None
                cells.append(_cell(stats, metric, expected[series]))
            if with_tfmot:
                point = row["tfmot"]
                cells.append(_cell(
                    point["test_accuracy"], metric,
                    point["test_accuracy"]["n"]) if point else "—")
            lines.append("| " + " | ".join(cells) + " |")
    unmatched = [p for p in table["tfmot_points"]
                 if not any(r["tfmot"] is p for r in table["rows"])]
    if unmatched:
        lines += ["", "tfmot points at no round's sparsity: " + ", ".join(
            f"{100 * p['remaining_fraction']:.3g}% remaining: "
            f"{_cell(p['test_accuracy'], 'test_accuracy', 0)}"
            for p in unmatched) + "."]
    lines += format_findings(table["findings"])
    return "\n".join(lines) + "\n"


def _read_summary(path: str) -> list[dict[str, Any]]:
    entries = files.read_json(path)
    metric = (_compared_of(entries)[0] if isinstance(entries, list)
              and all(isinstance(e, dict) for e in entries) else "accuracy")
    keys = {"round", "remaining_fraction", *metrics_for(metric)}
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and keys <= set(e) for e in entries):
        raise ValueError(
            f"{path} is not a lottery summary: it needs a list of entries "
            f"with {', '.join(sorted(keys))}.")
    return entries


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _log_distance(a: float, b: float) -> float:
    return abs(math.log(a / b)) if a > 0 and b > 0 else math.inf


def _join(values: Sequence[Any]) -> str:
    return ", ".join(map(str, values))


def _cell(stats: dict[str, Any] | None, metric: str, expected: int) -> str:
    if stats is None:
        return "—"
    if metric == "early_stop_step":
        factor, digits = 1, ",.0f"
    elif scale(metric) == 100:
        factor, digits = 100, ",.2f"
    else:
        factor, digits = 1, ",.4f"
    text = f"{factor * stats['mean']:{digits}}"
    if stats["std"] is not None:
        text += f" ± {factor * stats['std']:{digits}}"
    if stats["n"] < expected:
        text += f" (n={stats['n']})"
    return text

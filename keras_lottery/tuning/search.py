r"""Hyperparameter search over lottery experiments, with keras-tuner.

`search(config, workdir, tuner, max_trials)` runs a keras-tuner search whose
trials are whole lottery experiments (`runner.run`): a `keras_tuner.Tuner`
subclass runs each trial through our engine, and keras-tuner's own oracles
(random search, Bayesian optimisation, Hyperband) choose the values. The
search space and the objective come from the config's `tune` section:

    config.tune.objective = "sparsest_winning_ticket"
    config.tune.space.learning_rate = ml_collections.ConfigDict({
        "type": "float", "min_value": 3e-4, "max_value": 3e-3,
        "sampling": "log"})

Objectives (the score of one trial, from its lottery summary; `objectives`):
`sparsest_winning_ticket` (minimised) and `accuracy_at_sparsity`, which judge
rounds by the run's compared metric in its direction (test accuracy for
classification, the task's monitored metric otherwise, e.g. `mae`).

Hyperband's budget is the number of pruning rounds: a trial with budget r
runs rounds 0..r, and a trial that continues an earlier one (successive
halving) starts from a copy of that trial's finished rounds.

Layout of a search workdir (each trial is a lottery workdir of its own, so
an interrupted trial resumes mid-round):

    WORKDIR/
      search.json        the search's config and tuner; a rerun must match
      tuner/             keras-tuner's project: oracle.json, trial_*/...
      trials/<id>/       the lottery workdir of trial <id>
      trials.csv         every trial: values, objective, its ticket
      trials.md          the same table, in Markdown
      best_config.py     the best trial's lottery config, for
                         `python -m binaries.lottery --config=...`

Rerunning the same command resumes: keras-tuner reloads its oracle from
`tuner/`, finished trials are not run again, and a trial that was running
is retried in its own (resumable) workdir. A larger `max_trials` extends a
finished search.

Distributed search uses keras-tuner's chief/worker mode: every process runs
the same command with `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT` and
its own `KERASTUNER_TUNER_ID` (`chief` for the oracle, any other id for a
worker); the chief writes the table and the best config when every worker
is done. The workdir must be one folder that every process sees.

Example:
    rows = tuning.search(config, "/tmp/search", tuner="random",
                         max_trials=6)
"""

from __future__ import annotations

import csv
import io
import json
import keyword
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import keras
import keras_tuner
import ml_collections
from absl import logging

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.engine import tasks
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.pruning import selection
from keras_lottery.tuning import objectives

# Hyperparameter name (a key of `tune.space`) -> the config field it sets.
HYPERPARAMETERS = {
    "fraction_per_round": "prune.fraction_per_round",
    "output_fraction_per_round": "prune.output_fraction_per_round",
    "scope": "prune.scope",
    "rewind_step": "prune.rewind_step",
    "learning_rate": "train.learning_rate",
}
TUNERS = ("random", "bayesian", "hyperband")
TYPES = ("float", "int", "choice")
SAMPLINGS = ("linear", "log", "reverse_log")
# The fields a `tune.space` entry may have, by type.
_SPEC_FIELDS = {
    "float": {"type", "min_value", "max_value", "step", "sampling"},
    "int": {"type", "min_value", "max_value", "step", "sampling"},
    "choice": {"type", "choices"},
}
# Hyperband's budget (pruning rounds) reaches a trial as this value.
_BUDGET = "tuner/epochs"


class SearchError(RuntimeError):
    """The search stopped on failed trials, or no trial completed."""


def search(config: ml_collections.ConfigDict, workdir: str,
           tuner: str = "random", max_trials: int = 10) -> list[dict]:
    """Runs (or resumes) a search for the best lottery hyperparameters.

    Args:
        config: a lottery config with a `tune` section, as in
            `configs/lenet300_mnist.py`.
        workdir: where every output goes (see the module docstring).
        tuner: `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: how many trials the search runs in all, counting those
            of earlier runs on this workdir.

    Returns:
        One row per trial, as written to `trials.csv`; empty on a worker
        of a distributed search (the chief writes the table).

    Raises:
        ValueError: for a bad config, tuner or `max_trials`, naming the
            field and value, or a workdir that holds another search.
        SearchError: when no trial completed, or after
            `tune.max_consecutive_failed_trials` failed trials in a row
            (a trial fails when its loss becomes NaN).
        keras_tuner.errors.FatalError: when a trial crashes otherwise,
            with the trial's exception as its cause.

    Example:
        rows = search(config, "/tmp/search", "bayesian", max_trials=20)
    """
    check_search(config, tuner, max_trials)
    claim_search(config, tuner, workdir)
    lottery_tuner = LotteryTuner(make_oracle(config, tuner, max_trials),
                                 config, workdir)
    # Saved before the first trial, so that a search interrupted during it
    # reloads the oracle (keras-tuner reloads only if this file exists).
    lottery_tuner.save()
    try:
        lottery_tuner.search()
    except SearchError:
        if not _is_worker():
            write_results(config, workdir, lottery_tuner.oracle)
        raise
    if _is_worker():
        return []
    rows = write_results(config, workdir, lottery_tuner.oracle)
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    if not completed:
        failures = "; ".join(f"trial {r['trial_id']}: {r['message']}"
                             for r in rows) or "no trial ran"
        raise SearchError(
            f"No trial of the search in {workdir} completed ({failures}). "
            f"See {paths.table_file(workdir)}.")
    return rows


class LotteryTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` whose trials are lottery experiments.

    `run_trial` runs `runner.run` on the trial's config in the trial's own
    workdir and returns the objective with the chosen ticket's metrics.
    """

    def __init__(self, oracle: keras_tuner.Oracle,
                 config: ml_collections.ConfigDict, workdir: str):
        self.config = config
        self.workdir = workdir
        self.failures_in_a_row = 0
        super().__init__(oracle=oracle, directory=workdir,
                         project_name=paths.TUNER_PROJECT, overwrite=False)

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """Ends the trial; stops the search after too many failures.

        Raises:
            SearchError: after `tune.max_consecutive_failed_trials` failed
                trials in a row on this tuner.
        """
        super().on_trial_end(trial)
        if trial.status != "FAILED":
            self.failures_in_a_row = 0
            return
        self.failures_in_a_row += 1
        limit = self.config.tune.max_consecutive_failed_trials
        if self.failures_in_a_row >= limit:
            raise SearchError(
                f"{limit} trials in a row failed, the last ({trial.trial_id}) "
                f"with: {last_line(trial.message)}. The search stops; "
                f"narrow `tune.space` and rerun to resume.")

    def run_trial(self, trial: keras_tuner.engine.trial.Trial,
                  *args: Any, **kwargs: Any) -> dict[str, float]:
        """Runs one lottery experiment; returns its objective and ticket."""
        values = dict(trial.hyperparameters.values)
        workdir = paths.trial_workdir(self.workdir, trial.trial_id)
        logging.info("Tuner %s runs trial %s in %s: %s", self.tuner_id,
                     trial.trial_id, workdir, values)
        config = trial_config(self.config, values)
        if "tuner/trial_id" in values:
            reuse_rounds(
                paths.trial_workdir(self.workdir, values["tuner/trial_id"]),
                workdir, values["tuner/initial_epoch"])
        keras.backend.clear_session()
        try:
            summary = runner.run(config, workdir)
        except trainer.TrainingError as e:
            # A diverging trial is a result of its values: the search goes
            # on, the trial is FAILED with this message in the table.
            raise keras_tuner.errors.FailedTrialError(str(e)) from e
        except Exception as e:
            # keras-tuner would mark the trial INVALID and go on quietly;
            # anything else is a bug or a broken workdir: stop, with cause.
            raise keras_tuner.errors.FatalError(
                f"Trial {trial.trial_id} crashed in {workdir}: "
                f"{type(e).__name__}: {e}") from e
        tune = self.config.tune
        value, ticket = objectives.pick_ticket(summary, tune.objective,
                                               tune.accuracy_tolerance,
                                               tune.max_remaining_fraction)
        key = f"test_{objectives.compared(summary)[0]}"
        logging.info("Trial %s: %s = %.6g (round %d, %.4f of the weights "
                     "left, %s %.4f).", trial.trial_id, tune.objective,
                     value, ticket["round"], ticket["remaining_fraction"],
                     key.replace("_", " "), ticket[key])
        dense = summary[0]
        return {
            tune.objective: value,
            "ticket_round": ticket["round"],
            "remaining_fraction": ticket["remaining_fraction"],
            key: ticket[key],
            "early_stop_step": ticket["early_stop_step"],
            f"dense_{key}": dense[key],
            "dense_early_stop_step": dense["early_stop_step"],
        }


def trial_config(config: ml_collections.ConfigDict,
                 values: dict[str, Any]) -> ml_collections.ConfigDict:
    """The lottery config of one trial: `config` with `values` set.

    Args:
        config: the search's config.
        values: a trial's hyperparameter values (keys of
            `HYPERPARAMETERS`, and Hyperband's `tuner/...` values).

    Returns:
        A new config without the `tune` section, with export off (a search
        compares tickets; `best_config.py` turns export back on).
    """
    tree = config.to_dict()
    tree.pop("tune", None)
    trial = ml_collections.ConfigDict(tree)
    for name, value in values.items():
        if name in HYPERPARAMETERS:
            section, field = HYPERPARAMETERS[name].split(".")
            trial[section][field] = value
    if _BUDGET in values:
        trial.prune.num_rounds = int(values[_BUDGET])
    trial.export.enabled = False
    return trial


def reuse_rounds(source: str, target: str, last_round: int) -> None:
    """Copies the finished rounds 0..last_round of one trial to another.

    Each round folder is copied atomically; rounds `target` has finished
    already are left as they are.
    """
    files.copy_rounds(source, target, range(last_round + 1))


def make_space(space: ml_collections.ConfigDict
               ) -> keras_tuner.HyperParameters:
    """Builds keras-tuner's search space from a checked `tune.space`."""
    hp = keras_tuner.HyperParameters()
    for name, spec in space.items():
        if spec.type == "choice":
            hp.Choice(name, list(spec.choices))
        else:
            kind = hp.Float if spec.type == "float" else hp.Int
            kind(name, spec.min_value, spec.max_value,
                 step=spec.get("step"),
                 sampling=spec.get("sampling") or "linear")
    return hp


def make_oracle(config: ml_collections.ConfigDict, tuner: str,
                max_trials: int) -> keras_tuner.Oracle:
    """keras-tuner's oracle called `tuner`, over `config.tune.space`."""
    selection.check_choice("tuner", tuner, TUNERS)
    tune = config.tune
    direction = objectives.direction(tune.objective,
                                     tasks.compared(config)[1])
    common = {
        "objective": keras_tuner.Objective(tune.objective, direction),
        "hyperparameters": make_space(tune.space),
        "allow_new_entries": False,
        "tune_new_entries": False,
        "seed": tune.seed,
        # LotteryTuner.on_trial_end counts failures: keras-tuner's count
        # raises a RuntimeError with a traceback (in the chief, when
        # distributed), not an error the binary can print.
        "max_consecutive_failed_trials": None,
    }
    if tuner == "random":
        return keras_tuner.oracles.RandomSearchOracle(
            max_trials=max_trials, **common)
    if tuner == "bayesian":
        try:
            return keras_tuner.oracles.BayesianOptimizationOracle(
                max_trials=max_trials,
                num_initial_points=tune.num_initial_trials, **common)
        except ImportError as e:
            raise ValueError(
                f"`tuner` 'bayesian' needs scipy and scikit-learn: {e}. "
                f"Received: tuner={tuner!r}") from None
    oracle = keras_tuner.oracles.HyperbandOracle(
        max_epochs=config.prune.num_rounds, factor=tune.hyperband_factor,
        hyperband_iterations=None, **common)
    # Hyperband takes no `max_trials`; the base Oracle still honours it.
    oracle.max_trials = max_trials
    return oracle


def check_search(config: ml_collections.ConfigDict, tuner: str,
                 max_trials: int) -> None:
    """Raises ValueError, naming the field and value, for a bad search."""
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) \
            or max_trials < 1:
        raise ValueError(f"`max_trials` must be an integer, at least 1. "
                         f"Received: max_trials={max_trials!r}")
    selection.check_choice("tuner", tuner, TUNERS)
    if "tune" not in config:
        raise ValueError(
            "`config` has no `tune` section; add one as in "
            "configs/lenet300_mnist.py. Received: config fields="
            f"{sorted(config.keys())}")
    run_config.check_config(config)
    tune = config.tune
    selection.check_choice("tune.objective", tune.objective,
                           objectives.OBJECTIVES)
    # The tolerance is in the compared metric's units: at most 1 for one
    # that rises (accuracy, auc), any size for one that falls (mae).
    rises = tasks.compared(config)[1] == "max"
    checks = [
        ("prune.num_rounds", config.prune.num_rounds, lambda v: v >= 1,
         "at least 1 for a search"),
        ("tune.accuracy_tolerance", tune.accuracy_tolerance,
         lambda v: 0 <= v <= (1 if rises else math.inf),
         "in [0, 1]" if rises else "at least 0"),
        ("tune.max_remaining_fraction", tune.max_remaining_fraction,
         lambda v: 0 < v <= 1, "in (0, 1]"),
        ("tune.seed", tune.seed, lambda v: v >= 1,
         "at least 1 (keras-tuner draws a random seed for 0)"),
        ("tune.max_consecutive_failed_trials",
         tune.max_consecutive_failed_trials, lambda v: v >= 1, "at least 1"),
        ("tune.num_initial_trials", tune.num_initial_trials,
         lambda v: v >= 1, "at least 1"),
        ("tune.hyperband_factor", tune.hyperband_factor, lambda v: v >= 2,
         "at least 2"),
    ]
    for name, value, ok, want in checks:
        if not ok(value):
            raise ValueError(f"`{name}` must be {want}. Received: "
                             f"{name}={value!r}")
    if not tune.space:
        raise ValueError("`tune.space` must name at least one "
                         f"hyperparameter, of {', '.join(HYPERPARAMETERS)}. "
                         "Received: tune.space={}")
    for name, spec in tune.space.items():
        check_spec(config, name, spec)


def check_spec(config: ml_collections.ConfigDict, name: str,
               spec: ml_collections.ConfigDict) -> None:
    """Checks one `tune.space` entry, and the configs at its ends.

    Raises:
        ValueError: naming `tune.space.<name>` and the value, for an unknown
            name or type, a missing or unknown field, an empty or inverted
            range, or a value that makes an invalid lottery config.
    """
    field = f"tune.space.{name}"
    if name not in HYPERPARAMETERS:
        raise ValueError(
            f"`tune.space` names an unknown hyperparameter; known: "
            f"{', '.join(map(repr, HYPERPARAMETERS))}. Received: "
            f"tune.space.{name}")
    if not isinstance(spec, (dict, ml_collections.ConfigDict)):
        raise ValueError(f"`{field}` must be a ConfigDict with a `type`. "
                         f"Received: {field}={spec!r}")
    selection.check_choice(f"{field}.type", spec.get("type"), TYPES)
    allowed = _SPEC_FIELDS[spec.type]
    unknown = sorted(set(spec.keys()) - allowed)
    if unknown:
        raise ValueError(
            f"`{field}` of type {spec.type!r} takes only "
            f"{', '.join(sorted(allowed))}. Received: {field}.{unknown[0]}="
            f"{spec[unknown[0]]!r}")
    if spec.type == "choice":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ValueError(f"`{field}.choices` must be a non-empty tuple "
                             f"(an empty range). Received: {field}.choices="
                             f"{choices!r}")
        if len(set(choices)) != len(choices):
            raise ValueError(f"`{field}.choices` must not repeat a value. "
                             f"Received: {field}.choices={choices!r}")
        ends = [(f"{field}.choices", c) for c in choices]
    else:
        number = int if spec.type == "int" else (int, float)
        what = "an integer" if spec.type == "int" else "a number"
        for bound in ("min_value", "max_value"):
            value = spec.get(bound)
            if isinstance(value, bool) or not isinstance(value, number):
                raise ValueError(f"`{field}.{bound}` must be {what}. "
                                 f"Received: {field}.{bound}={value!r}")
        low, high = spec.min_value, spec.max_value
        if low >= high:
            kind = "an empty" if low == high else "an inverted"
            raise ValueError(
                f"`{field}` has {kind} range: `min_value` must be less than "
                f"`max_value`. Received: {field}.min_value={low!r}, "
                f"{field}.max_value={high!r}")
        step = spec.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(
                step, number) or not 0 < step <= high - low):
            raise ValueError(
                f"`{field}.step` must be in (0, max_value - min_value]. "
                f"Received: {field}.step={step!r}")
        sampling = spec.get("sampling") or "linear"
        selection.check_choice(f"{field}.sampling", sampling, SAMPLINGS)
        if sampling != "linear" and low <= 0:
            raise ValueError(
                f"`{field}.min_value` must be positive for sampling="
                f"{sampling!r}. Received: {field}.min_value={low!r}")
        ends = [(f"{field}.min_value", low), (f"{field}.max_value", high)]
    for where, value in ends:
        try:
            run_config.check_config(trial_config(config, {name: value}))
        except (ValueError, TypeError) as e:
            raise ValueError(f"`{where}` makes an invalid lottery config: "
                             f"{e}") from None


def claim_search(config: ml_collections.ConfigDict, tuner: str,
                 workdir: str) -> None:
    """Writes search.json, or checks that the workdir's matches.

    Raises:
        ValueError: if `workdir` holds another search (naming the fields
            that differ), a lottery run, or cannot be written.
    """
    path = paths.search_file(workdir)
    wanted = {"tuner": tuner, "config": json.loads(config.to_json())}
    if os.path.exists(path):
        held = files.read_json(path)
        differ = [f"{name}: {a!r} in the workdir, {b!r} now"
                  for name, a, b in run_config.differences(held, wanted)
                  if _matters_to_search(name)]
        if differ:
            raise ValueError(
                f"`workdir` holds another search ({path}); use a new "
                f"workdir. Differences: {'; '.join(differ)}. Received: "
                f"workdir={workdir!r}")
        return
    for other, what in ((paths.config_file(workdir), "a lottery run"),
                        (paths.tuner_dir(workdir), "a keras-tuner project")):
        if os.path.exists(other):
            raise ValueError(
                f"`workdir` holds {what} ({other}), not a search; use a new "
                f"workdir. Received: workdir={workdir!r}")
    try:
        os.makedirs(workdir, exist_ok=True)
        files.write_json(path, wanted)
    except OSError as e:
        raise ValueError(f"`workdir` cannot be written: {e.strerror}. "
                         f"Received: workdir={workdir!r}") from None


def _matters_to_search(name: str) -> bool:
    """Whether a difference in `search.json` field `name` forbids resuming.

    As for a lottery run, except that the `tune` section is the search.
    """
    field = name.removeprefix("config.")
    return (field == name or field.startswith("tune.")
            or not run_config.is_resumable(field))


def write_results(config: ml_collections.ConfigDict, workdir: str,
                  oracle: keras_tuner.Oracle) -> list[dict]:
    """Writes trials.csv, trials.md and best_config.py; returns the rows."""
    rows = trial_rows(config, oracle)
    columns = list(rows[0]) if rows else ["trial_id", "status"]
    table = io.StringIO()
    writer = csv.DictWriter(table, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(paths.table_file(workdir, "csv"), table.getvalue())
    _write_text(paths.table_file(workdir, "md"), markdown_table(rows, columns))
    best = [t for t in oracle.get_best_trials(1) if t.status == "COMPLETED"]
    if best:
        trial = best[0]
        best_config = trial_config(config, trial.hyperparameters.values)
        best_config.export.enabled = config.export.enabled
        if best_config.data.dir:
            # So that the file runs from any folder (a resumable field).
            best_config.data.dir = os.path.abspath(best_config.data.dir)
        path = paths.best_config_file(workdir)
        doc = (f"Best trial {trial.trial_id} of the search in {workdir}: "
               f"{config.tune.objective} = {trial.score:.6g}.\n\n"
               f"The trial's lottery workdir is "
               f"{paths.trial_workdir(workdir, trial.trial_id)}. "
               "Run it again:\n\n"
               f"  python -m binaries.lottery --config={path} "
               f"--workdir=/tmp/best_ticket\n")
        _write_text(path, config_source(best_config, doc))
        logging.info("Best trial %s: %s = %.6g; wrote %s.", trial.trial_id,
                     config.tune.objective, trial.score, path)
    return rows


def trial_rows(config: ml_collections.ConfigDict,
               oracle: keras_tuner.Oracle) -> list[dict]:
    """One row per trial of `oracle`, in the order the trials started."""
    names = list(config.tune.space.keys())
    key = f"test_{tasks.compared(config)[0]}"
    metrics = [config.tune.objective, "ticket_round", "remaining_fraction",
               key, "early_stop_step", f"dense_{key}",
               "dense_early_stop_step"]
    order = list(dict.fromkeys(oracle.start_order)) + sorted(
        set(oracle.trials) - set(oracle.start_order))
    rows = []
    for trial_id in order:
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        row = {"trial_id": trial_id, "status": trial.status}
        if _BUDGET in values or isinstance(
                oracle, keras_tuner.oracles.HyperbandOracle):
            row["num_rounds"] = values.get(_BUDGET, "")
        row.update({name: values.get(name, "") for name in names})
        for name in metrics:
            row[name] = (trial.metrics.get_last_value(name)
                         if trial.metrics.exists(name) else "")
        for name in ("ticket_round", "early_stop_step",
                     "dense_early_stop_step"):
            if row[name] != "":
                row[name] = int(row[name])
        row["message"] = last_line(trial.message)
        rows.append(row)
    return rows


def last_line(message: str | None) -> str:
    """The last line of a trial's message (a traceback), less the class."""
    lines = (message or "").strip().splitlines()
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1]) if lines \
        else ""


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """The rows as a Markdown table, numbers to 4 significant digits."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def config_source(config: ml_collections.ConfigDict, doc: str) -> str:
    """Python source of a config module whose `get_config()` is `config`.

    Values are written as Python literals (`repr`), so loading the file
    runs no data, and a file that does not parse is never written.
    """
    escaped = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [f'"""{escaped}"""', "", "import ml_collections", "", "",
             "def get_config() -> ml_collections.ConfigDict:",
             "    config = ml_collections.ConfigDict()"]
    lines += ["    " + line
              for line in _assignments("config", config.to_dict())]
    lines += ["    return config", ""]
    source = "\n".join(lines)
    compile(source, "best_config.py", "exec")  # parse only
    return source


def _assignments(target: str, tree: dict) -> Iterator[str]:
    for key, value in tree.items():
        if isinstance(key, str) and key.isidentifier() \
                and not keyword.iskeyword(key):
            name = f"{target}.{key}"
        else:
            name = f"{target}[{_literal(key)}]"
        if isinstance(value, dict):
            yield f"{name} = ml_collections.ConfigDict()"
            yield from _assignments(name, value)
        else:
            yield f"{name} = {_literal(value)}"


def _literal(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float('{value}')"
    if isinstance(value, (list, tuple)):
        items = [_literal(v) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"Config values must be None, bool, int, float, str, "
                    f"list or tuple. Received: {value!r}")


def _write_text(path: str, text: str) -> None:
    with files.atomic_path(path) as tmp, open(tmp, "w",
                                              encoding="utf-8") as f:
        f.write(text)


def _is_worker() -> bool:
    # keras-tuner's rule: distributed when KERASTUNER_ORACLE_IP is set; the
    # process whose KERASTUNER_TUNER_ID contains "chief" runs the oracle.
    return ("KERASTUNER_ORACLE_IP" in os.environ
            and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", ""))


"""The config of a lottery run: its checks, and its claim on a workdir.

`check_config` refuses a bad config in one line naming the field and the
value, before anything is written; `claim_workdir` writes `config.json`, or
checks that a workdir's matches, naming the fields that differ. Fields in
`RESUMABLE_FIELDS` may change between runs on one workdir.
"""

from __future__ import annotations

import json
import numbers
import os

import ml_collections

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.data import datasets
from keras_lottery.data import readers
from keras_lottery.data import streams
from keras_lottery.engine import augment
from keras_lottery.engine import precision
from keras_lottery.engine import tasks
from keras_lottery.engine import training
from keras_lottery.models import zoo
from keras_lottery.pruning import criteria
from keras_lottery.pruning import selection

MODES = ("iterative", "one_shot")
TEST_AT = ("every", "best")  # eval.test_at
# Fields that may change between runs on one workdir: they change where
# and how fast a run goes, not what it computes. Prefixes end in ".".
RESUMABLE_FIELDS = (
    "tune.",  # the search space; a lottery run does not read it
    "data.dir", "train.strategy", "train.tpu", "train.jit_compile",
    "train.sparse_compute",
    "train.steps_per_loop", "train.checkpoint_every_steps",
    "eval.batch_size", "eval.test_at", "export.enabled",
)


# Fields added after runs were made, with the value that matches what those
# runs did: a workdir without them resumes under their defaults.
_ADDED_FIELDS = {
    "prune.granularity": "weight",
    "prune.output_granularity": "weight",
    "prune.score_batches": 10,
    "data.classes": [],
    "data.generation_seed": 42,
    "data.shuffle_buffer": 10000,
    "data.augment": "none",
    "data.train_split": "train",
    "data.test_split": "test",
    "data.validation_split": "",
    "prune.at_init": False,
    "prune.early_bird": {"enabled": False, "every_steps": 1000,
                         "threshold": 0.1, "window": 5},
    "prune.auto_rewind_steps": [0, 100, 500, 2000],
    "train.sparse_compute": "off",
    "train.keras_optimizer": None,
    "train.precision": "float32",
    "train.loss": tasks.DEFAULT_LOSS,
    "eval.metrics": list(tasks.DEFAULT_METRICS),
    "eval.monitor": tasks.DEFAULT_MONITOR,
    "eval.monitor_mode": "auto",
    "prune.dense_layers": [],
}


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError, naming the field and value, for a bad config."""
    checks = [
        ("seed", config.seed, lambda v: v >= 0, "at least 0"),
        ("train.num_steps", config.train.num_steps, lambda v: v >= 1,
         "at least 1"),
        ("train.batch_size", config.train.batch_size, lambda v: v >= 1,
         "at least 1"),
        ("train.steps_per_loop", config.train.steps_per_loop,
         lambda v: v >= 1, "at least 1"),
        ("train.learning_rate", config.train.learning_rate,
         lambda v: 0 < v < float("inf"), "positive and finite"),
        ("train.warmup_steps", config.train.warmup_steps, lambda v: v >= 0,
         "at least 0"),
        ("train.checkpoint_every_steps", config.train.checkpoint_every_steps,
         lambda v: v >= 1, "at least 1"),
        ("eval.every_steps", config.eval.every_steps,
         lambda v: 1 <= v <= config.train.num_steps,
         "in [1, train.num_steps]"),
        ("eval.batch_size", config.eval.batch_size, lambda v: v >= 1,
         "at least 1"),
        ("prune.num_rounds", config.prune.num_rounds, lambda v: v >= 0,
         "at least 0"),
        ("data.validation_size", config.data.validation_size,
         lambda v: v >= 1, "at least 1 (early stopping needs it)"),
    ]
    for name, value, ok, want in checks:
        # A config file can hold any Python value; flags parse to the
        # field's type.
        number, kind = ((numbers.Real, "a number")
                        if name == "train.learning_rate"
                        else (numbers.Integral, "an int"))
        if isinstance(value, bool) or not isinstance(value, number):
            raise ValueError(f"`{name}` must be {kind}. Received: "
                             f"{name}={value!r}")
        if not ok(value):
            raise ValueError(f"`{name}` must be {want}. Received: "
                             f"{name}={value!r}")
    _check_rewind_step(config)
    decay_steps = config.train.decay_steps
    if not isinstance(decay_steps, (tuple, list)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool)
            and s >= 0 for s in decay_steps):
        raise ValueError(
            "`train.decay_steps` must be a tuple of ints >= 0. "
            f"Received: train.decay_steps={decay_steps!r}")
    selection.check_fraction(config.prune.fraction_per_round,
                           "prune.fraction_per_round")
    selection.check_fraction(config.prune.output_fraction_per_round,
                           "prune.output_fraction_per_round")
    if config.prune.get("conv_fraction_per_round") is not None:
        selection.check_fraction(config.prune.conv_fraction_per_round,
                               "prune.conv_fraction_per_round")
    selection.check_choice("prune.mode", config.prune.mode, MODES)
    rounds = config.prune.one_shot_rounds
    if not isinstance(rounds, (tuple, list)) or not all(
            isinstance(r, numbers.Integral) and not isinstance(r, bool)
            and 1 <= r <= config.prune.num_rounds for r in rounds):
        raise ValueError(
            "`prune.one_shot_rounds` must be a tuple of rounds in [1, "
            "prune.num_rounds]. Received: prune.one_shot_rounds="
            f"{rounds!r}")
    if rounds and config.prune.mode != "one_shot":
        raise ValueError(
            "`prune.one_shot_rounds` needs prune.mode='one_shot': each "
            "iterative round starts from the one before. Received: "
            f"prune.one_shot_rounds={rounds!r}, "
            f"prune.mode={config.prune.mode!r}")
    at_init = config.prune.get("at_init", False)
    if not isinstance(at_init, bool):
        raise ValueError("`prune.at_init` must be True or False. Received: "
                         f"prune.at_init={at_init!r}")
    if at_init and config.prune.mode != "one_shot":
        raise ValueError(
            "`prune.at_init` needs prune.mode='one_shot': each round is "
            "pruned from the network at initialisation. Received: "
            f"prune.at_init=True, prune.mode={config.prune.mode!r}")
    criteria.get(config.prune.method, "prune.method")
    _check_early_bird(config)
    for field in ("granularity", "output_granularity"):
        selection.parse_granularity(config.prune[field], f"prune.{field}")
    if config.prune.get("conv_granularity") is not None:
        selection.parse_granularity(config.prune.conv_granularity,
                                  "prune.conv_granularity")
    _check_dense_layers(config.prune)
    score_batches = config.prune.score_batches
    if (isinstance(score_batches, bool)
            or not isinstance(score_batches, numbers.Integral)
            or score_batches < 0):
        raise ValueError(
            "`prune.score_batches` must be an int >= 0. Received: "
            f"prune.score_batches={score_batches!r}")
    selection.check_choice("prune.scope", config.prune.scope, selection.SCOPES)
    selection.check_choice("train.strategy", config.train.strategy,
                         training.STRATEGIES)
    selection.check_choice("eval.test_at", config.eval.test_at, TEST_AT)
    selection.check_choice("train.optimizer", config.train.optimizer,
                         training.OPTIMIZERS)
    selection.check_choice("train.schedule", config.train.schedule,
                         training.SCHEDULES)
    training.check_keras_optimizer(config.train.get("keras_optimizer"))
    task = tasks.from_config(config)  # the loss, metrics and monitor
    if task.activation is None and "hessian_gradient" in criteria.get(
            config.prune.method).needs:
        # GraSP softens logits (divides them by a temperature) before the
        # loss; a loss of the outputs as they are has no logits to soften.
        raise ValueError(
            "`prune.method` 'grasp' softens logits before the loss, and "
            "this run's loss reads the outputs as values, not logits "
            f"(train.loss={task.loss_spec!r}): use a cross-entropy on "
            "logits, or another criterion ('snip', 'gradient', "
            "'magnitude'). Received: prune.method="
            f"{config.prune.method!r}")
    if not task.is_default and (
            config.train.strategy == "multi_worker_mirrored"):
        # Its metrics are computed over the outputs the local replicas
        # hold (`keras_lottery.engine.evaluation`): one worker's share.
        raise ValueError(
            "`train.strategy` 'multi_worker_mirrored' evaluates only the "
            "default task (sparse categorical cross-entropy with accuracy)"
            "; this run's task is another (train.loss="
            f"{task.loss_spec!r}, eval.metrics={list(task.metric_names)!r})"
            ". Received: train.strategy='multi_worker_mirrored'")
    selection.check_choice("train.sparse_compute",
                         config.train.get("sparse_compute", "off"),
                         training.SPARSE_COMPUTE)
    precision.check(config.train.get("precision", "float32"))
    zoo.check_name(config.model.name, "model.name")
    datasets.check_name(config.data.name, "data.name")
    _check_data_variant(config.data)


def _check_rewind_step(config: ml_collections.ConfigDict) -> None:
    """`prune.rewind_step`: a step of round 0, or "auto" with the steps
    to try in `prune.auto_rewind_steps`."""
    num_steps = config.train.num_steps
    value = config.prune.rewind_step
    if value == "auto":
        steps = config.prune.get("auto_rewind_steps")
        if not isinstance(steps, (tuple, list)) or not steps or not all(
                _is_int(k) and 0 <= k < num_steps for k in steps):
            raise ValueError(
                "`prune.auto_rewind_steps` must be a tuple of one or more "
                f"steps in [0, train.num_steps) = [0, {num_steps}). "
                f"Received: prune.auto_rewind_steps={steps!r}")
        return
    if not _is_int(value) or not 0 <= value < num_steps:
        raise ValueError(
            "`prune.rewind_step` must be an int in [0, train.num_steps), "
            f"or 'auto'. Received: prune.rewind_step={value!r}")


def _check_data_variant(data: ml_collections.ConfigDict) -> None:
    """Checks `data.classes` and `data.generation_seed` (added later)."""
    classes = data.get("classes", ())
    if not isinstance(classes, (tuple, list)) or len(set(classes)) != len(
            classes) or not all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool)
            and c >= 0 for c in classes):
        raise ValueError(
            "`data.classes` must be a tuple of distinct labels >= 0. "
            f"Received: data.classes={classes!r}")
    seed = data.get("generation_seed", 42)
    if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < 2**32):
        raise ValueError(
            "`data.generation_seed` must be an int in [0, 2**32). "
            f"Received: data.generation_seed={seed!r}")
    if seed != 42 and data.name != "mnist1d":
        raise ValueError(
            "`data.generation_seed` draws a generated dataset (mnist1d) "
            f"anew; {data.name!r} is read, not generated. Received: "
            f"data.generation_seed={seed!r}")
    buffer = data.get("shuffle_buffer", 10000)
    if (isinstance(buffer, bool) or not isinstance(buffer, numbers.Integral)
            or buffer < 1):
        raise ValueError(
            "`data.shuffle_buffer` must be an int >= 1. Received: "
            f"data.shuffle_buffer={buffer!r}")
    augment.check(data.get("augment", "none"))
    for field, default in streams.TFDS_SPLITS.values():
        split = data.get(field, default)
        if not isinstance(split, str) or not (split or field == (
                "validation_split")):
            raise ValueError(
                f"`data.{field}` must be a tfds split string, e.g. "
                f"'train[:90%]'. Received: data.{field}={split!r}")
        if split != default and not readers.is_tfds(data.name):
            raise ValueError(
                f"`data.{field}` chooses a split of a tfds dataset "
                f"(data.name='tfds:NAME'); {data.name!r} is not one. "
                f"Received: data.{field}={split!r}")


def _check_early_bird(config: ml_collections.ConfigDict) -> None:
    settings = config.prune.get("early_bird")
    if settings is None:
        return
    for field, ok, want in (
            ("enabled", lambda v: isinstance(v, bool), "True or False"),
            ("every_steps", lambda v: _is_int(v) and v >= 1 and (
                v <= config.train.num_steps or not settings.enabled),
             "an int in [1, train.num_steps]"),
            ("threshold", lambda v: isinstance(v, numbers.Real)
             and not isinstance(v, bool) and 0 <= v <= 1,
             "a number in [0, 1]"),
            ("window", lambda v: _is_int(v) and v >= 1, "an int >= 1")):
        value = settings.get(field)
        if not ok(value):
            raise ValueError(
                f"`prune.early_bird.{field}` must be {want}. Received: "
                f"prune.early_bird.{field}={value!r}")
    if settings.enabled and config.prune.mode != "iterative":
        raise ValueError(
            "`prune.early_bird.enabled` needs prune.mode='iterative': it "
            "ends a round when the next round's mask settles. Received: "
            f"prune.early_bird.enabled=True, prune.mode="
            f"{config.prune.mode!r}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value,
                                                                  bool)


def claim_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes config.json, or checks that the workdir's matches `config`.

    Raises:
        ValueError: if `workdir` holds a run of another config, naming the
            fields that differ, or cannot be written.
    """
    path = paths.config_file(workdir)
    wanted = json.loads(config.to_json())
    if os.path.exists(path):
        held = files.read_json(path)
        differ = [
            f"{name}: {a!r} in the workdir, {b!r} now"
            for name, a, b in differences(held, wanted)
            if not is_resumable(name)
            and not (a is None and _ADDED_FIELDS.get(name, a) == b)
        ]
        if differ:
            raise ValueError(
                f"`workdir` holds a run of another config ({path}); use a "
                f"new workdir. Differences: {'; '.join(differ)}. "
                f"Received: workdir={workdir!r}"
            )
        return
    try:
        os.makedirs(workdir, exist_ok=True)
        files.write_json(path, wanted)
    except OSError as e:
        raise ValueError(
            f"`workdir` cannot be written: {e.strerror}. "
            f"Received: workdir={workdir!r}") from None


def with_added_fields(config: dict) -> dict:
    """A copy of a config.json's content with the fields added after it
    was written (`_ADDED_FIELDS`) at the values its run used."""
    config = json.loads(json.dumps(config))
    for name, value in _ADDED_FIELDS.items():
        *sections, field = name.split(".")
        section = config
        for key in sections:
            section = section.setdefault(key, {})
        section.setdefault(field, json.loads(json.dumps(value)))
    return config


def is_resumable(name: str) -> bool:
    """Whether config field `name` may change on an existing workdir."""
    return any(name == field or (field.endswith(".") and
                                 name.startswith(field))
               for field in RESUMABLE_FIELDS)


def differences(a: dict, b: dict, prefix: str = ""):
    """Yields `(dotted name, a's value, b's value)` where two configs differ.
    """
    for key in sorted(set(a) | set(b)):
        name = f"{prefix}{key}"
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            yield from differences(x, y, name + ".")
        elif x != y:
            yield name, x, y


def _check_dense_layers(prune: ml_collections.ConfigDict) -> None:
    """`prune.dense_layers`: a tuple of layer names, layerwise scope only
    (a global threshold has no per-layer rate to set to 0)."""
    names = prune.get("dense_layers", ())
    if not isinstance(names, (tuple, list)) or not all(
            isinstance(name, str) and name for name in names):
        raise ValueError(
            "`prune.dense_layers` must be a tuple of layer names. "
            f"Received: prune.dense_layers={names!r}")
    if names and prune.scope != "layerwise":
        raise ValueError(
            "`prune.dense_layers` needs prune.scope='layerwise': a global "
            "threshold has no per-layer rate to keep at 0. Received: "
            f"prune.dense_layers={tuple(names)!r}, "
            f"prune.scope={prune.scope!r}")

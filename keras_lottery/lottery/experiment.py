"""The whole lottery experiment as one library call, `run_experiment`.

`run_experiment(build_model, train_data, ...)` is `binaries.lottery` for a
model and data of one's own, with `model.fit`'s vocabulary: a function that
builds the model, data as NumPy arrays or `tf.data.Dataset`s, the
optimizer, the pruning fields and a workdir. It leaves the workdir
`binaries.lottery` leaves, so that rerunning it resumes, and
`binaries.controls`, `binaries.export` and `binaries.report` work on it.

How the workdir stays usable without the Python objects: those binaries
read only `config.json`. So the call saves what they need into the
workdir before training, and `config.json` names it:

- the data, if it is arrays, as `data/train.npz`, `data/validation.npz`
  and `data/test.npz` (arrays `x`, `y`), named by `data.name="npz"` and
  `data.dir=<the workdir's absolute path>/data`. Datasets are streamed in
  place and never saved: given by import path (`"pkg.mod:fn"`),
  `data.dir` names the functions, which the binaries then call; given as
  `tf.data.Dataset` objects, `data.dir` says so (`given:train,test`) and
  only this process holds them, so rerunning `run_experiment` with them
  resumes, and a binary run on the workdir says in one line that it
  cannot read them;
- the model `build_model` returns, at its initialization, as `init.keras`,
  named by `model.name=<absolute path>/init.keras`. Every round already
  saves and reloads its model as a `.keras` file, so this asks nothing
  more of the model: built-in layers load as they are; custom layers and
  subclassed models must be registered
  (`keras.saving.register_keras_serializable`) and imported in the process
  that loads them (for `binaries.controls`, import them through a
  `sitecustomize` or run the controls from Python:
  `keras_lottery.lottery.controls.run_control`).

`build_model` itself is never recorded, so a lambda or a function defined
in a notebook works. The paths are absolute: a moved workdir must be run
from its new place by `run_experiment` again (which rewrites nothing when
the data and model are the same) or have the two paths edited in its
`config.json`.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import types
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from configs import base
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.core import wrapping
from keras_lottery.data import datasets
from keras_lottery.data import streams
from keras_lottery.engine import callbacks as lottery_callbacks
from keras_lottery.engine import precision
from keras_lottery.engine import tasks
from keras_lottery.engine import training
from keras_lottery.lottery import run_config
from keras_lottery.lottery import runner
from keras_lottery.lottery import trainer
from keras_lottery.models import zoo

# What the workdir holds besides what `binaries.lottery` writes.
DATA_DIR = "data"
INIT_MODEL = "init.keras"

# Today's metrics of sparse categorical cross-entropy: reported as
# "accuracy", on the engine's own path (keras_lottery.engine.tasks).
_METRICS = ("accuracy", "sparse_categorical_accuracy")
# Keras optimizer classes, as `train.optimizer` names them.
_OPTIMIZERS = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw"}

Data = tuple | list | tf.data.Dataset


def run_experiment(
    build_model: Callable[[], keras.Model],
    train_data: Data,
    *,
    test_data: Data,
    workdir: str,
    num_steps: int,
    validation_data: Data | None = None,
    validation_split: float = 0.1,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    loss: str | keras.losses.Loss = "sparse_categorical_crossentropy",
    metrics: Sequence[str] = ("accuracy",),
    monitor: str = "val_loss",
    monitor_mode: str = "auto",
    batch_size: int = 60,
    eval_every_steps: int = 100,
    prune: Mapping[str, object] | None = None,
    rewind_step: int | str = 0,
    seed: int = 0,
    jit_compile: bool = True,
    export: bool = False,
    callbacks: Sequence[lottery_callbacks.ExperimentCallback] = (),
    verbose: int = 1,
) -> list[dict]:
    """Runs (or resumes) iterative magnitude pruning with rewinding.

    Round 0 trains the dense network for `num_steps` steps; each of the
    `prune["num_rounds"]` later rounds prunes, rewinds to the weights of
    step `rewind_step` of round 0, and trains again. Every round keeps the
    step of least validation loss (early stopping) and the test accuracy
    there. Calling it again with the same arguments resumes a run that was
    interrupted (even killed) where it stopped.

    Args:
        build_model: `() -> keras.Model`: a new model, outputting logits,
            whose logits layer is named `"output"` (it is pruned at
            `prune["output_fraction_per_round"]`). It is called once, after
            `keras.utils.set_random_seed(seed)`; the model it returns is
            saved in the workdir (see the module docstring). Sequential and
            Functional models are wrapped for pruning; a subclassed model
            must hold its own `keras_lottery.MaskedWrapper` layers.
        train_data: `(x, y)` NumPy arrays, saved in the workdir and
            shuffled there by step; `y` integer class labels in
            `[0, logits)` for sparse categorical cross-entropy, else
            targets of any shape (floats for a regression, 0/1 for a
            binary or multi-label task, one-hot rows). Or streamed, never
            copied (docs/STREAMED.md): a finite `tf.data.Dataset` of
            `(x, y)` examples, one at a time or in batches, read in place
            by this process (the binaries cannot read it; arrays given
            beside it are streamed too); or `"package.module:function"`,
            the import path of a function of no argument that returns
            one, read in place by this call and by the binaries (then
            `test_data`, and `validation_data` if given, too).
        test_data: as `train_data`; the metrics every round reports.
        workdir: the folder for every output; the same one resumes.
        num_steps: training steps per round.
        validation_data: as `train_data`; early stopping's data. None holds
            out `validation_split` of `train_data`: a sample seeded by
            `seed` of arrays, the first examples of a stream.
        validation_split: the fraction held out when `validation_data` is
            None.
        optimizer: `"sgd"`, `"momentum"`, `"adam"`, `"adamw"`, or any
            Keras optimizer, with a constant rate or any
            `keras.optimizers.schedules.LearningRateSchedule`. A fresh one
            is made each round from its config, so a schedule counts the
            round's steps (and a resumed round goes on at its rate). SGD,
            Adam and AdamW with a constant rate become the config's
            `train.optimizer` fields; any other, `train.keras_optimizer`.
        learning_rate: the rate, when `optimizer` is a name.
        loss: a Keras loss name (`"mse"`, `"mae"`, `"huber"`,
            `"binary_crossentropy"`, ...; the cross-entropy names read
            logits), `"package.module:function"`, or any Keras loss object
            (kept in `config.json` as
            `keras.saving.serialize_keras_object` writes it, so a custom
            class must be registered). The default is today's: sparse
            categorical cross-entropy on logits.
        metrics: Keras metric names (`"accuracy"`, `"mae"`, `"auc"`,
            `"binary_accuracy"`, ...), reported for the validation and
            test sets at every evaluation (`validation_mae`,
            `test_mae`); metrics see probabilities where the loss reads
            logits (`keras_lottery.engine.tasks`).
        monitor: what early stopping keeps the best of, as
            `keras.callbacks.EarlyStopping` names it: `"val_loss"` or
            `"val_<metric>"` for one of `metrics`. A pruned round is a
            winning ticket when its test value of the monitored metric
            (of the first of `metrics` when the loss is monitored) is at
            least as good as the dense round's, and it stops no later.
        monitor_mode: `"auto"` (the metric's direction), `"min"` or
            `"max"`.
        batch_size: the training batch.
        eval_every_steps: evaluation interval, in steps.
        prune: fields of a config's `prune` section (configs/base.py):
            `num_rounds` (18), `fraction_per_round` (0.2),
            `output_fraction_per_round` (0.1), `scope`, `method`,
            `granularity`, `mode`, ...
        rewind_step: the step of round 0 later rounds rewind to (0: the
            initialization), or "auto": the smallest stable one of
            `prune["auto_rewind_steps"]`
            (`keras_lottery.lottery.rewind_search`).
        seed: seeds the model's build, the validation hold-out and the
            batches.
        jit_compile: XLA-compile the training step.
        export: export the last round as a SavedModel (`export/`).
        callbacks: `keras_lottery.callbacks.ExperimentCallback`s, told of
            every evaluation and every finished round.
        verbose: 1 logs what `binaries.lottery` logs (each evaluation
            with the run's progress and ETA, each round); 0 nothing.

    Returns:
        The entries of `summary.json`, one per round: `round`,
        `remaining_fraction`, `early_stop_step`, `test_<metric>` and
        `final_test_<metric>` of the compared metric (`test_accuracy` for
        classification), `compared_metric`, `compared_mode`,
        `winning_ticket`, ...

    Raises:
        ValueError: for bad input, in one line naming the argument and
            what it received, before anything is written; or as
            `keras_lottery.lottery.runner.run` raises.
        keras_lottery.lottery.trainer.TrainingError: when the loss becomes NaN.

    Example:
        >>> summary = keras_lottery.run_experiment(
        ...     lambda: my_model(), (x, y), test_data=(xt, yt),
        ...     workdir="/tmp/run", num_steps=1000,
        ...     prune={"num_rounds": 5})
    """
    if not isinstance(workdir, str) or not workdir:
        raise ValueError(
            f"`workdir` must be a folder's path. Received: workdir={workdir!r}")
    if not callable(build_model):
        raise ValueError(
            "`build_model` must be a function that returns a keras.Model. "
            f"Received: build_model={build_model!r}")
    for callback in callbacks:
        if not isinstance(callback, lottery_callbacks.ExperimentCallback):
            raise ValueError(
                "`callbacks` must be keras_lottery.callbacks."
                "ExperimentCallback instances. Received: callbacks="
                f"{list(callbacks)!r}")
    task = _task(loss, metrics, monitor, monitor_mode)
    keras.utils.set_random_seed(_int("seed", seed, 0))
    model = build_model()
    input_shape, num_logits = _check_model(model)
    labels = task.sparse
    spec = _functions_spec(train_data, test_data, validation_data)
    loader = streams.FUNCTIONS_LOADER
    given = (train_data, test_data, validation_data)
    if not spec and any(isinstance(d, tf.data.Dataset) for d in given):
        spec = streams.give(_datasets(*given, input_shape, labels))
        loader = streams.GIVEN_LOADER
    if spec:  # streamed: nothing of the data is saved
        splits, first = _stream_splits(spec, loader, validation_split,
                                       input_shape, num_logits, labels)
    else:
        splits = {"train": _arrays(train_data, "train_data", input_shape,
                                   labels),
                  "test": _arrays(test_data, "test_data", input_shape,
                                  labels)}
        if validation_data is not None:
            splits["validation"] = _arrays(
                validation_data, "validation_data", input_shape, labels)
        _check_splits(splits, num_logits if labels else None, labels)
        first = splits["train"][0][:1]
    if input_shape is None:  # a subclassed model: build it on the data
        model(first)
        state.set_rewind_point(model)
    workdir = os.path.abspath(workdir)
    config = _config(
        workdir, splits, validation_split=validation_split,
        optimizer=optimizer, learning_rate=learning_rate, task=task,
        num_steps=num_steps, batch_size=batch_size,
        eval_every_steps=eval_every_steps, prune=prune,
        rewind_step=rewind_step, seed=seed, jit_compile=jit_compile,
        export=export)
    if spec:
        config.data.name, config.data.dir = loader, spec
        splits = {}
    # The model's own dtype policy: a mixed_float16 model trains with a
    # loss scale.
    config.train.precision = precision.of_model(model)
    _check_pruning(config, model)
    _save_inputs(workdir, config, splits, model)
    with _verbosity(verbose):
        return runner.run(config, workdir, callbacks)


def _int(name: str, value: object, low: int) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < low):
        raise ValueError(f"`{name}` must be an int >= {low}. Received: "
                         f"{name}={value!r}")
    return int(value)


def _check_model(model: object) -> tuple[tuple[int, ...] | None, int]:
    """The model's input shape (None if unknown) and number of logits."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`build_model` must return a keras.Model; it returned a "
            f"{type(model).__name__}. Received: build_model()={model!r}")
    names = [layer.name for layer in model._flatten_layers(
        include_self=False, recursive=False)]
    if zoo.OUTPUT_LAYER_NAME not in names:
        raise ValueError(
            "`build_model` must return a model whose logits layer is named "
            f"{zoo.OUTPUT_LAYER_NAME!r} (pruned at its own rate); its "
            f"layers: {', '.join(names) or 'none'}. Received: "
            f"build_model()={model.name!r}")
    output = model.get_layer(zoo.OUTPUT_LAYER_NAME)
    units = getattr(output, "units", None) or getattr(
        getattr(output, "layer", None), "units", None)
    if wrapping._is_subclassed(model):
        if not wrapping.wrapped_layers(model):
            raise ValueError(
                "`build_model` returned a subclassed model with no "
                "keras_lottery.MaskedWrapper layer: wrap its prunable "
                "layers where it builds them, or build it as a Sequential "
                "or Functional model. Received: build_model()="
                f"{model.name!r} of class {type(model).__name__}")
        return None, units
    if not model.built:
        raise ValueError(
            "`build_model` must return a built model (start it with "
            f"keras.Input). Received: build_model()={model.name!r}")
    return tuple(model.input_shape[1:]), units


def _arrays(data: object, name: str,
            input_shape: tuple[int, ...] | None, labels: bool) -> tuple:
    """`(x, y)` NumPy arrays of `data`; `labels`: whether `y` holds class
    labels (else targets of any shape)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            f"`{name}` must be (x, y) arrays or a tf.data.Dataset of (x, y)"
            f" pairs. Received: {name} of type {type(data).__name__}")
    x, y = (np.asarray(a) for a in data)
    if input_shape is not None and x.shape[1:] != tuple(input_shape):
        raise ValueError(
            f"`{name}` must hold examples of the model's input shape "
            f"{tuple(input_shape)}; its x has shape {x.shape}. Received: "
            f"{name}")
    return x, y


def _datasets(train_data: object, test_data: object,
              validation_data: object, input_shape: tuple[int, ...] | None,
              labels: bool) -> dict[str, tf.data.Dataset]:
    """The splits as datasets, when one of them is a dataset: those as
    they are (streamed in place), arrays as datasets over them."""
    given = {"train": train_data, "test": test_data,
             "validation": validation_data}
    return {split: data if isinstance(data, tf.data.Dataset) else (
                tf.data.Dataset.from_tensor_slices(_arrays(
                    data, f"{split}_data", input_shape, labels)))
            for split, data in given.items() if data is not None}


def _functions_spec(train_data: object, test_data: object,
                    validation_data: object) -> str:
    """`streams.functions_spec` of data given by import path, or ""."""
    given = {"train": train_data, "test": test_data}
    if validation_data is not None:
        given["validation"] = validation_data
    named = [s for s, d in given.items() if isinstance(d, str)]
    if not named:
        return ""
    if len(named) != len(given):
        raise ValueError(
            "`train_data`, `test_data` and `validation_data` (if given) "
            "must all be import paths of functions returning datasets, or "
            f"none of them. Received: import paths for {', '.join(named)}")
    return streams.functions_spec(given)


def _stream_splits(spec: str, loader: str, validation_split: object,
                   input_shape: tuple[int, ...] | None,
                   num_logits: int, labels: bool) -> tuple[dict, object]:
    """The datasets `spec` names (as `data.dir` of `loader`), checked
    against the model without being saved; returns `_config`'s splits
    (their sizes only) and one example to build a subclassed model on."""
    if loader == streams.GIVEN_LOADER:
        result = streams.from_given(spec)
        train = result[0]  # named by its repr
    else:
        result = streams.from_functions(spec)
        train = spec.split(";")[0].partition("=")[2]  # its import path
    if len(result) == 3:
        held = 0
    else:
        total = streams.count(streams.check_dataset(
            result[0], "`train_data`", labels))
        ok = (isinstance(validation_split, numbers.Real)
              and 0 < validation_split < 1)
        held = max(1, round(validation_split * total)) if ok else 1
    for split, dataset in zip(("train", "test", "validation"), result):
        name = f"`{split}_data`"
        streams.check_dataset(dataset, name, labels)
        shape = streams.example_shapes(dataset)[0]
        if input_shape is not None and shape != tuple(input_shape):
            raise ValueError(
                f"{name} must yield examples of the model's input shape "
                f"{tuple(input_shape)}; they have shape {shape}. Received: "
                f"{split}_data={train if split == 'train' else dataset!r}")
    data = {"validation_size": held, "normalization": "none"}
    # Raises DataError, a ValueError naming the argument.
    streamed = streams.from_loader(result, spec, data, labels,
                                   naming="`{}_data`")
    if labels and num_logits and streamed.num_classes > num_logits:
        raise ValueError(
            f"`train_data` has labels out of range: the model outputs "
            f"{num_logits} logits, and a label is "
            f"{streamed.num_classes - 1}. Received: "
            f"train_data={train!r}")
    sizes = {"train": (None, range(streamed.train_count + held)),
             "test": (None, streamed.test_y)}
    if not held:
        sizes["validation"] = (None, streamed.validation_y)
    return sizes, streamed.test_x[:1]


def _check_splits(splits: dict, num_logits: int | None,
                  labels: bool) -> None:
    """Checks the arrays' types, lengths and labels, naming the argument."""
    what = "integer labels" if labels else "numbers"
    for split, (x, y) in splits.items():
        name = f"{split}_data"
        datasets.checked_arrays({split: (x, y)}, lambda problem, name=name: (
            ValueError(f"`{name}` must be (x, y) with x numbers and y "
                       f"{what}, as many as x; {problem}. "
                       f"Received: {name}")), labels)
        if num_logits and y.max() >= num_logits:
            raise ValueError(
                f"`{name}` has labels out of range: the model outputs "
                f"{num_logits} logits, and a label is {y.max()}. Received: "
                f"{name}")
    shapes = {split: x.shape[1:] for split, (x, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            f"The data's examples must have one shape; they have {shapes}."
            " Received: train_data, test_data, validation_data")
    targets = {split: y.shape[1:] for split, (_, y) in splits.items()}
    if len(set(targets.values())) > 1:
        raise ValueError(
            f"The data's targets must have one shape; they have {targets}."
            " Received: train_data, test_data, validation_data")


def _config(workdir: str, splits: dict, *, validation_split, optimizer,
            learning_rate, task, num_steps, batch_size,
            eval_every_steps, prune, rewind_step, seed, jit_compile,
            export) -> ml_collections.ConfigDict:
    """The run's config, checked; `config.json` will record it."""
    config = base.get_defaults("npz", os.path.join(workdir, INIT_MODEL))
    config.seed = _int("seed", seed, 0)
    config.data.dir = os.path.join(workdir, DATA_DIR)
    num_train = len(splits["train"][1])
    if "validation" in splits:
        config.data.validation_size = len(splits["validation"][1])
    else:
        if (isinstance(validation_split, bool) or not isinstance(
                validation_split, numbers.Real)
                or not 0 < validation_split < 1
                or not 1 <= round(validation_split * num_train) < num_train):
            raise ValueError(
                "`validation_split` must be in (0, 1) and hold out at least"
                f" one of the {num_train} training examples, and not all. "
                f"Received: validation_split={validation_split!r}")
        config.data.validation_size = round(validation_split * num_train)
    config.train.num_steps = _int("num_steps", num_steps, 1)
    _set_optimizer(config.train, optimizer, learning_rate)
    config.train.loss = task.loss_spec
    config.eval.metrics = task.metric_names
    config.eval.monitor = task.monitor
    config.eval.monitor_mode = task.monitor_mode_given
    config.train.batch_size = _int("batch_size", batch_size, 1)
    left = num_train - ("validation" not in splits) * (
        config.data.validation_size)
    if config.train.batch_size > left:
        raise ValueError(
            f"`batch_size` must be at most the {left} training examples. "
            f"Received: batch_size={batch_size!r}")
    config.eval.every_steps = _int("eval_every_steps", eval_every_steps, 1)
    config.train.steps_per_loop = min(100, config.eval.every_steps)
    config.train.checkpoint_every_steps = max(
        config.eval.every_steps, 500 // config.eval.every_steps
        * config.eval.every_steps)
    config.train.jit_compile = bool(jit_compile)
    config.export.enabled = bool(export)
    for field, value in dict(prune or {}).items():
        if field not in config.prune:
            raise ValueError(
                f"`prune` has no field {field!r}; its fields: "
                f"{', '.join(sorted(config.prune))}. Received: prune="
                f"{dict(prune)!r}")
        config.prune[field] = value
    config.prune.rewind_step = rewind_step
    try:
        run_config.check_config(_as_checkable(config))
    except ValueError as e:
        # Name the argument, not the config field it became.
        message = str(e)
        for field, argument in (
                ("train.num_steps", "num_steps"),
                ("eval.every_steps", "eval_every_steps"),
                ("prune.rewind_step", "rewind_step"),
                ("train.learning_rate", "learning_rate")):
            message = message.replace(field, argument)
        raise ValueError(message) from None
    return config


def _as_checkable(config: ml_collections.ConfigDict
                  ) -> ml_collections.ConfigDict:
    """`config` with a built-in model name: init.keras is not written yet.
    """
    checkable = ml_collections.ConfigDict(config.to_dict())
    checkable.model.name = zoo.names()[0]
    return checkable


def _set_optimizer(train: ml_collections.ConfigDict, optimizer: object,
                   learning_rate: object) -> None:
    if isinstance(optimizer, str):
        if optimizer not in training.OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {', '.join(training.OPTIMIZERS)}"
                f" or a keras.optimizers.SGD, Adam or AdamW. Received: "
                f"optimizer={optimizer!r}")
        train.optimizer = optimizer
        if not isinstance(learning_rate, numbers.Real) or isinstance(
                learning_rate, bool):
            raise ValueError("`learning_rate` must be a number. Received: "
                             f"learning_rate={learning_rate!r}")
        train.learning_rate = float(learning_rate)
        return
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            f"`optimizer` must be one of {', '.join(training.OPTIMIZERS)} "
            "or a Keras optimizer. Received: optimizer of type "
            f"{type(optimizer).__name__}")
    name = _OPTIMIZERS.get(type(optimizer).__name__)
    rate = getattr(optimizer, "_learning_rate", None)
    if name is None or isinstance(
            rate, keras.optimizers.schedules.LearningRateSchedule):
        # Any other optimizer or schedule: kept whole, serialised. The
        # learning_rate field records its peak over the round, for reading.
        train.keras_optimizer = keras.optimizers.serialize(optimizer)
        training.check_keras_optimizer(train.keras_optimizer)
        steps = np.linspace(0, train.num_steps - 1, 101).round()
        rates = [rate(step) for step in steps] if callable(rate) else [
            optimizer.learning_rate]
        train.learning_rate = max(
            float(keras.ops.convert_to_numpy(r)) for r in rates)
        return
    config = optimizer.get_config()
    if name == "sgd" and config.get("momentum"):
        name = "momentum"
        train.momentum = float(config["momentum"])
    if name == "adamw":
        train.weight_decay = float(config["weight_decay"])
    train.optimizer = name
    train.learning_rate = float(keras.ops.convert_to_numpy(
        optimizer.learning_rate))


def _task(loss: object, metrics: object, monitor: object,
          monitor_mode: object) -> tasks.Task:
    """The task of `loss`, `metrics` and `monitor`, checked; today's
    classification keeps its own path (`tasks.Task.is_default`)."""
    spec = tasks.serialise_loss(loss)
    if (spec == tasks.DEFAULT_LOSS and not isinstance(metrics, str)
            and isinstance(metrics, (tuple, list))
            and all(m in _METRICS for m in metrics)):
        metrics = tasks.DEFAULT_METRICS  # what the engine reports for them
    if isinstance(metrics, (tuple, list)) and not all(
            isinstance(m, str) for m in metrics):
        raise ValueError(
            "`metrics` must be Keras metric names (strings such as 'mae', "
            f"'auc'). Received: metrics={list(metrics)!r}")
    return tasks.Task(spec, tuple(metrics) if isinstance(
        metrics, (tuple, list)) else metrics, monitor, monitor_mode,
        field="arguments")


def _check_pruning(config: ml_collections.ConfigDict,
                   model: keras.Model) -> None:
    """`trainer.check_pruning` on the built model, writing nothing."""
    wrapped = (model if wrapping.wrapped_layers(model)
               else wrapping.wrap(model))
    trainer.check_pruning(types.SimpleNamespace(
        config=config, build_model=lambda seed: wrapped))


def _save_inputs(workdir: str, config: ml_collections.ConfigDict,
                 splits: dict, model: keras.Model) -> None:
    """Saves the data and the initial model, or checks the saved ones.

    A workdir with `config.json` holds a run begun on them: the data and
    the model must be the same. Without it no run has begun, and files a
    killed call left are written again.

    Raises:
        ValueError: if the workdir's run was begun on other data or
            another model.
    """
    init = os.path.join(workdir, INIT_MODEL)
    data_dir = config.data.dir
    if os.path.exists(paths.config_file(workdir)):
        begun_on = files.read_json(paths.config_file(workdir))["data"]["dir"]
        if not splits and begun_on != data_dir:  # streamed: by import path
            raise ValueError(
                f"The data's functions ({data_dir}) differ from those the "
                f"run in `workdir` was begun on ({begun_on}): use a new "
                f"workdir. Received: workdir={workdir!r}")
        for split, (x, y) in splits.items():
            saved = files.read_arrays(os.path.join(data_dir, f"{split}.npz"))
            if not (np.array_equal(saved["x"], x)
                    and np.array_equal(saved["y"], y)):
                raise ValueError(
                    f"`{split}_data` differs from the data the run in "
                    f"`workdir` was begun on: use a new workdir. Received: "
                    f"workdir={workdir!r}")
        saved = keras.models.load_model(init, compile=False, safe_mode=True)
        same = len(saved.weights) == len(model.weights) and all(
            np.array_equal(keras.ops.convert_to_numpy(a.value),
                           keras.ops.convert_to_numpy(b.value))
            for a, b in zip(saved.weights, model.weights))
        if not same:
            raise ValueError(
                "`build_model` gives another model (or initialization) than"
                " the one the run in `workdir` was begun on: use a new "
                f"workdir. Received: workdir={workdir!r}")
        return
    try:
        # Streamed data (no `splits`) is never written here.
        os.makedirs(data_dir if splits else workdir, exist_ok=True)
    except OSError as e:
        raise ValueError(f"`workdir` cannot be written: {e.strerror}. "
                         f"Received: workdir={workdir!r}") from None
    for split, (x, y) in splits.items():
        files.write_arrays(os.path.join(data_dir, f"{split}.npz"),
                           {"x": x, "y": y})
    with files.atomic_path(init) as tmp:
        model.save(tmp)


@contextlib.contextmanager
def _verbosity(verbose: int) -> Iterator[None]:
    """Logs at INFO (what the binaries print) while `verbose` is 1."""
    before = logging.get_verbosity()
    logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logging.set_verbosity(before)

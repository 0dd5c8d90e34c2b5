"""The task a run trains: its loss, its metrics, and what early-stops it.

A `Task` is built from a config (`from_config`: `train.loss`,
`eval.metrics`, `eval.monitor`, `eval.monitor_mode`) or given to the
trainer directly. The model outputs logits, so the cross-entropy losses
named here (`sparse_categorical_crossentropy`, `categorical_crossentropy`,
`binary_crossentropy` and their focal forms) read logits
(`from_logits=True`), and metrics see the probabilities those losses make
of them (softmax, or sigmoid for the binary ones): `auc` and
`binary_accuracy` then mean what they mean under `model.compile` on a
sigmoid output. Any other loss (`mse`, `mae`, `huber`, a
`"package.module:function"` of `(y_true, y_pred)`, or a Keras loss object
serialised by `keras.saving.serialize_keras_object`) reads the outputs as
they are, and so do the metrics.

The default, sparse categorical cross-entropy on logits with accuracy, is
the task the engine always trained: it computes its loss and accuracy with
exactly the operations it always did (`is_default`), so classification
numbers stay bit-identical.

History keys are Keras's, spelled out: metric `mae` is reported as
`validation_mae` and `test_mae`, and monitored as `val_mae` (as
`keras.callbacks.EarlyStopping` names it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import keras
import tensorflow as tf

from keras_lottery.base import imports

DEFAULT_LOSS = "sparse_categorical_crossentropy"
DEFAULT_METRICS = ("accuracy",)
DEFAULT_MONITOR = "val_loss"
MONITOR_MODES = ("auto", "min", "max")

# Loss names that read logits here, and the activation that turns logits
# into what their metrics see.
_LOGIT_LOSSES = {
    "sparse_categorical_crossentropy": (
        keras.losses.SparseCategoricalCrossentropy, "softmax"),
    "categorical_crossentropy": (
        keras.losses.CategoricalCrossentropy, "softmax"),
    "categorical_focal_crossentropy": (
        keras.losses.CategoricalFocalCrossentropy, "softmax"),
    "binary_crossentropy": (keras.losses.BinaryCrossentropy, "sigmoid"),
    "binary_focal_crossentropy": (
        keras.losses.BinaryFocalCrossentropy, "sigmoid"),
}
_ALIASES = {"bce": "binary_crossentropy", "cce": "categorical_crossentropy"}
# What "accuracy" means for a loss, as `model.compile` maps it.
_ACCURACIES = {"softmax": keras.metrics.CategoricalAccuracy,
               "sigmoid": keras.metrics.BinaryAccuracy}
# The parameters of a loss named by import path.
LOSS_PARAMETERS = ("y_true", "y_pred")


class Task:
    """A loss, the metrics reported, and the monitored one.

    Args:
        loss: a loss name (`keras.losses.get`'s, cross-entropies on
            logits, see the module docstring), `"package.module:function"`
            of `(y_true, y_pred)`, or a serialised Keras loss (a dict).
        metrics: Keras metric names (`keras.metrics.get`'s); `"accuracy"`
            follows the loss as under `model.compile`.
        monitor: `"val_loss"` or `"val_<metric>"` for one of `metrics`:
            each round early-stops at its best value.
        monitor_mode: `"auto"` (the metric's own direction), `"min"` or
            `"max"`.
        field: how error messages name the arguments: `"config"` names
            config fields (`train.loss`), anything else the argument.

    Raises:
        ValueError: for an unknown loss or metric, a monitor that is never
            reported, or a bad mode, in one line.
    """

    def __init__(self, loss=DEFAULT_LOSS, metrics=DEFAULT_METRICS,
                 monitor=DEFAULT_MONITOR, monitor_mode="auto",
                 field: str = "config"):
        names = (("train.loss", "eval.metrics", "eval.monitor",
                  "eval.monitor_mode") if field == "config"
                 else ("loss", "metrics", "monitor", "monitor_mode"))
        self.loss_spec = _plain(loss)
        self.metric_names = _metric_names(metrics, names[1])
        self._loss, self.activation, self.sparse = _loss(self.loss_spec,
                                                         names[0])
        self.is_default = (self.loss_spec == DEFAULT_LOSS
                           and self.metric_names == DEFAULT_METRICS)
        for name in self.metric_names:
            self._metric(name, names[1])  # raises for an unknown one
        reported = [DEFAULT_MONITOR,
                    *(f"val_{k}" for k in self.metric_names)]
        if monitor not in reported:
            raise ValueError(
                f"`{names[2]}` must be a value each evaluation reports: "
                f"{', '.join(map(repr, reported))}. Received: "
                f"{names[2]}={monitor!r}")
        if monitor_mode not in MONITOR_MODES:
            raise ValueError(
                f"`{names[3]}` must be one of "
                f"{', '.join(map(repr, MONITOR_MODES))}. Received: "
                f"{names[3]}={monitor_mode!r}")
        self.monitor = monitor
        self.monitor_mode_given = monitor_mode
        metric = monitor[len("val_"):]
        self.monitor_key = f"validation_{metric}"
        self.monitor_mode = (monitor_mode if monitor_mode != "auto"
                             else self.direction(metric))
        # The test value a ticket is judged on: the monitored metric, or
        # with the loss monitored the first metric (accuracy by default).
        if metric != "loss":
            self.compared, self.compared_mode = metric, self.monitor_mode
        elif self.metric_names:
            self.compared = self.metric_names[0]
            self.compared_mode = self.direction(self.compared)
        else:
            self.compared, self.compared_mode = "loss", "min"

    def key(self) -> str:
        """What identifies the task (two trainers of one task agree)."""
        return json.dumps([self.loss_spec, self.metric_names], sort_keys=True)

    def direction(self, metric: str) -> str:
        """`"min"` or `"max"`: which way `metric` improves."""
        if metric == "loss":
            return "min"
        found = getattr(self._metric(metric, "metrics"), "_direction", None)
        if found in ("up", "down"):
            return "max" if found == "up" else "min"
        # keras.callbacks.EarlyStopping's guess for a metric with none.
        return ("max" if metric.endswith(("acc", "accuracy", "auc"))
                else "min")

    def per_example_loss(self, labels, logits):
        """The loss of each example of a batch, shape `(batch,)`."""
        if self.is_default:
            return keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
        if not self.sparse:
            labels = tf.cast(labels, logits.dtype)
        losses = self._loss(labels, logits)
        rank = len(losses.shape)
        return losses if rank == 1 else tf.reduce_mean(
            losses, axis=list(range(1, rank)))

    def scoring_loss(self):
        """What data-driven pruning criteria differentiate
        (`keras_lottery.pruning.scoring`'s `loss`): `(labels, outputs) ->
        the mean loss over the batch`; None for the default task, whose
        criteria keep the sparse categorical cross-entropy they always
        used."""
        if self.is_default:
            return None
        return lambda labels, outputs: tf.reduce_mean(
            self.per_example_loss(labels, outputs))

    def metric_values(self, labels, logits) -> dict[str, float]:
        """Each metric over all of `labels` and `logits` (eager)."""
        outputs = logits
        if self.activation == "softmax":
            outputs = tf.nn.softmax(logits)
        elif self.activation == "sigmoid":
            outputs = tf.sigmoid(logits)
        values = {}
        for name in self.metric_names:
            metric = self._metric(name, "metrics")
            metric.update_state(labels, outputs)
            values[name] = float(keras.ops.convert_to_numpy(metric.result()))
        return values

    def _metric(self, name: str, field: str) -> keras.metrics.Metric:
        """A fresh metric object of `name`."""
        if name in ("accuracy", "acc"):
            if self.sparse:
                return keras.metrics.SparseCategoricalAccuracy()
            if self.activation in _ACCURACIES:
                return _ACCURACIES[self.activation]()
        try:
            metric = keras.metrics.get(name)
        except (ValueError, TypeError) as e:
            metric = e
        if not isinstance(metric, keras.metrics.Metric):
            raise ValueError(
                f"`{field}` must hold Keras metric names (as "
                f"keras.metrics.get takes them, e.g. 'mae', 'auc'); "
                f"{name!r} is not one. Received: {field}="
                f"{list(self.metric_names)!r}")
        return metric

    def better(self, value: float, than: float) -> bool:
        """Whether the monitored `value` is strictly better than `than`."""
        return value > than if self.monitor_mode == "max" else value < than

    def best(self, history: Sequence[dict]) -> dict:
        """The evaluation early stopping keeps: the best monitored value,
        the earliest of equals."""
        sign = -1.0 if self.monitor_mode == "max" else 1.0
        return min(history,
                   key=lambda h: (sign * h[self.monitor_key], h["step"]))

    def is_best_yet(self, record: dict, history: Sequence[dict]) -> bool:
        """Whether `record`'s monitored value beats every one in
        `history` (the test set is evaluated there under `test_at=best`).
        """
        value = record[self.monitor_key]
        return all(self.better(value, h[self.monitor_key]) for h in history)


def from_config(config) -> Task:
    """The task of a config (fields added later may be missing)."""
    train, evaluation = config["train"], config["eval"]
    return Task(_get(train, "loss", DEFAULT_LOSS),
                _get(evaluation, "metrics", DEFAULT_METRICS),
                _get(evaluation, "monitor", DEFAULT_MONITOR),
                _get(evaluation, "monitor_mode", "auto"))


def compared(config) -> tuple[str, str]:
    """`(metric, "min" | "max")`: what a config's tickets are judged on."""
    task = from_config(config)
    return task.compared, task.compared_mode


def at_least_as_good(value: float, reference: float, mode: str) -> bool:
    """Whether `value` is at least as good as `reference` in direction
    `mode` (`"max"` or `"min"`)."""
    return value >= reference if mode == "max" else value <= reference


def integer_labels(config) -> bool:
    """Whether a config's loss takes integer class labels."""
    return _loss(_plain(_get(config["train"], "loss", DEFAULT_LOSS)),
                 "train.loss")[2]


def _get(section, name, default):
    value = section.get(name, default)
    return default if value is None else value


def _plain(value):
    """A ConfigDict's content as plain JSON types."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return json.loads(json.dumps(value)) if isinstance(value, dict) else value


def _metric_names(metrics, field: str) -> tuple[str, ...]:
    if isinstance(metrics, str) or not isinstance(
            metrics, (tuple, list)) or not all(
            isinstance(m, str) and m for m in metrics) or len(
            set(metrics)) != len(metrics):
        raise ValueError(
            f"`{field}` must be a list of distinct Keras metric names. "
            f"Received: {field}={metrics!r}")
    return tuple(metrics)


def _loss(spec, field: str):
    """`(per-example loss function of (y_true, y_pred), activation for
    metrics or None, whether labels are sparse)`."""
    def fail(why: str) -> ValueError:
        return ValueError(
            f"`{field}` must be a Keras loss name (e.g. 'mse', "
            "'binary_crossentropy'), 'package.module:function' or a "
            f"serialised Keras loss; {why}. Received: {field}={spec!r}")

    if isinstance(spec, str) and spec:
        name = _ALIASES.get(spec, spec)
        if name in _LOGIT_LOSSES:
            cls, activation = _LOGIT_LOSSES[name]
            return (cls(from_logits=True).call, activation,
                    cls is keras.losses.SparseCategoricalCrossentropy)
        if imports.is_import_path(spec):
            return imports.resolve(spec, field, LOSS_PARAMETERS), None, False
        try:
            found = keras.losses.get(spec)
        except (ValueError, TypeError):
            found = None
        if found is None:
            raise fail("it is not one")
        if isinstance(found, type):
            found = found()
        return (found.call if isinstance(found, keras.losses.Loss)
                else found), None, False
    if not isinstance(spec, dict):
        raise fail("it is neither")
    try:
        loss = keras.saving.deserialize_keras_object(spec)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise fail(f"it does not load ({' '.join(str(e).split())[:200]})"
                   ) from None
    if not isinstance(loss, keras.losses.Loss):
        raise fail(f"it loads as a {type(loss).__name__}")
    config = loss.get_config()
    activation = None
    for name, (cls, act) in _LOGIT_LOSSES.items():
        del name
        if isinstance(loss, cls) and config.get("from_logits"):
            activation = act
    return (loss.call, activation,
            isinstance(loss, keras.losses.SparseCategoricalCrossentropy))


def serialise_loss(loss) -> str | dict:
    """`loss` as `train.loss` holds it: a name stays a name; a Keras loss
    object becomes `keras.saving.serialize_keras_object`'s dict (checked to
    load back as the same loss)."""
    if isinstance(loss, str):
        return loss
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy) and (
            loss.get_config().get("from_logits")
            and loss.get_config().get("ignore_class") is None):
        return DEFAULT_LOSS  # today's loss, under its name
    if not isinstance(loss, keras.losses.Loss):
        raise ValueError(
            "`loss` must be a Keras loss name or a keras.losses.Loss "
            f"object. Received: loss of type {type(loss).__name__}")
    serialised = _plain(keras.saving.serialize_keras_object(loss))
    try:
        again = keras.saving.deserialize_keras_object(serialised)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        again = e
    if type(again) is not type(loss):
        raise ValueError(
            "`loss` must be a loss that keras.saving.serialize_keras_object"
            " can write and load back (register a custom class with "
            "keras.saving.register_keras_serializable): the workdir's "
            "config.json keeps it for the controls, export and resuming. "
            f"Received: loss={loss!r}")
    return serialised


"""Callbacks for `model.fit` users: late rewinding and the ticket verdict.

The lottery experiment, written with `model.fit` instead of the engine:
`RewindPoint(k)` records the rewind point at step k of the dense run
(late rewinding, Frankle et al. 2019); `EarlyStop` evaluates every
`every_steps` steps and records the early-stop step (by default the step
of minimum validation loss; any monitored metric of any task, as the
engine's `eval.monitor`) and the test value of the compared metric there
(accuracy for classification); `is_winning_ticket` compares a pruned
round's `EarlyStop` with the dense round's, as Frankle & Carbin (2019)
define a winning ticket and `summary.json` does.

Example:
    >>> model = keras_lottery.wrap(model)
    >>> rounds = []
    >>> for round_index in range(4):
    ...     model.compile("adam", loss, metrics=["accuracy"])
    ...     stop = keras_lottery.callbacks.EarlyStop((xv, yv), (xt, yt))
    ...     late = [keras_lottery.callbacks.RewindPoint(500)] if (
    ...         round_index == 0) else []
    ...     model.fit(x, y, epochs=2, callbacks=[stop, *late])
    ...     rounds.append(stop)
    ...     keras_lottery.prune(model, 0.2)
    ...     keras_lottery.rewind(model)
    >>> keras_lottery.callbacks.is_winning_ticket(rounds[-1], rounds[0])
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import keras
import numpy as np

from keras_lottery.core import state
from keras_lottery.engine import tasks


class RewindPoint(keras.callbacks.Callback):
    """Records the rewind point at optimizer step `step` of a `fit`.

    Step 0 is before the first update (rewinding to initialisation, W0);
    a step k > 0 gives late rewinding to Wk. Steps are counted by the
    optimizer's `iterations`, so they run on across epochs; with
    `steps_per_execution` > 1 the point is recorded at the first step at
    or after `step` that ends an execution (`recorded_step` says which).
    Use it in the dense round only: a later round rewinds to this point.

    Args:
        step: the optimizer step to record the rewind point at, >= 0.

    Raises:
        ValueError: if `step` is not an int >= 0.
    """

    def __init__(self, step: int):
        super().__init__()
        if isinstance(step, bool) or not isinstance(
                step, (int, np.integer)) or step < 0:
            raise ValueError(
                f"`step` must be an int >= 0. Received: step={step!r}")
        self.step = int(step)
        self.recorded_step: int | None = None

    def on_train_begin(self, logs=None):
        self.recorded_step = None
        self._maybe_record()

    def on_train_batch_end(self, batch, logs=None):
        self._maybe_record()

    def on_train_end(self, logs=None):
        if self.recorded_step is None:
            raise ValueError(
                f"`fit` ended at step {_iterations(self.model)}, before the "
                "rewind point: `step` must be at most the number of "
                f"training steps. Received: step={self.step}")

    def _maybe_record(self) -> None:
        now = _iterations(self.model)
        if self.recorded_step is None and now >= self.step:
            state.set_rewind_point(self.model)
            self.recorded_step = now


class EarlyStop(keras.callbacks.Callback):
    """Finds a `fit`'s early-stop step and the test value there.

    Every `every_steps` optimizer steps and at the end of training, it
    computes the validation loss and metrics and the test metrics with
    `model.predict_on_batch` (the compiled metrics are left alone). The
    early-stop step is the step of the best `monitor` value (the earlier
    one on a tie): by default the minimum validation loss, as in Frankle &
    Carbin (2019). A ticket is judged on the test value of the compared
    metric there, as `summary.json` judges it (`compared_metric`: the
    monitored metric, or with the loss monitored the first of `metrics`;
    accuracy for classification). The task is the engine's
    (`keras_lottery.engine.tasks.Task`): the model outputs logits, the
    cross-entropy names read logits, and metrics see their probabilities.
    Training is not stopped.

    Args:
        validation_data: `(x, y)`: integer class labels for the default
            loss, targets of any shape for others.
        test_data: `(x, y)`, as `validation_data`.
        every_steps: evaluate every this many optimizer steps, > 0.
        batch_size: the evaluation batch size, > 0.
        loss: a Keras loss name (`"mse"`, `"binary_crossentropy"`), a
            `"package.module:function"` or a `keras.losses.Loss` object
            (serialisable, as `run_experiment` takes it); or a function
            `fn(y, logits) -> per-example losses` on integer labels (the
            default task's metrics). By default sparse categorical
            cross-entropy on logits.
        metrics: Keras metric names, each recorded as `validation_<name>`
            and `test_<name>`.
        monitor: `"val_loss"` or `"val_<metric>"`: what early stopping
            keeps.
        monitor_mode: `"auto"` (the metric's own direction), `"min"` or
            `"max"`.

    Attributes:
        history: one dict per evaluation: `step`, `validation_loss`,
            `validation_<metric>` and `test_<metric>` for each metric (and
            the compared one); by default `validation_accuracy` and
            `test_accuracy`.
        compared_metric: the metric tickets are judged on (`"accuracy"`
            by default).
        compared_mode: `"max"` or `"min"`: its direction.

    Raises:
        ValueError: for an `every_steps` or `batch_size` that is not an
            int > 0, an unknown loss or metric, or a monitor that is never
            recorded, in one line.
    """

    def __init__(self, validation_data: tuple, test_data: tuple,
                 every_steps: int = 100, batch_size: int = 1000,
                 loss: str | keras.losses.Loss | Callable | None = None,
                 metrics: Sequence[str] = tasks.DEFAULT_METRICS,
                 monitor: str = tasks.DEFAULT_MONITOR,
                 monitor_mode: str = "auto"):
        super().__init__()
        for name, value in (("every_steps", every_steps),
                            ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < 1:
                raise ValueError(
                    f"`{name}` must be an int > 0. Received: "
                    f"{name}={value!r}")
        self.validation_data = validation_data
        self.test_data = test_data
        self.every_steps = int(every_steps)
        self.batch_size = int(batch_size)
        function = loss if callable(loss) and not isinstance(
            loss, keras.losses.Loss) else None
        spec = tasks.DEFAULT_LOSS if loss is None or function else (
            tasks.serialise_loss(loss))
        self.task = tasks.Task(spec, metrics, monitor, monitor_mode,
                               field="argument")
        self.compared_metric = self.task.compared
        self.compared_mode = self.task.compared_mode
        if function is not None:
            self.loss = function
        elif self.task.is_default:  # the operations it always used
            self.loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction=None)
        else:
            self.loss = self.task.per_example_loss
        self.history: list[dict] = []

    @property
    def early_stop_step(self) -> int:
        """The step of the best monitored value."""
        return self._best()["step"]

    @property
    def test_value(self) -> float:
        """The test value of the compared metric at the early-stop step."""
        return self._best()[f"test_{self.compared_metric}"]

    @property
    def final_test_value(self) -> float:
        """The test value of the compared metric at the last step."""
        return self._best(last=True)[f"test_{self.compared_metric}"]

    @property
    def test_accuracy(self) -> float:
        """The test accuracy at the early-stop step."""
        return self._best()[self._accuracy_key()]

    @property
    def final_test_accuracy(self) -> float:
        """The test accuracy at the last step."""
        return self._best(last=True)[self._accuracy_key()]

    def on_train_begin(self, logs=None):
        self.history = []

    def on_train_batch_end(self, batch, logs=None):
        step = _iterations(self.model)
        if step % self.every_steps == 0 and not self._done(step):
            self._evaluate(step)

    def on_train_end(self, logs=None):
        step = _iterations(self.model)
        if not self._done(step):
            self._evaluate(step)

    def _done(self, step: int) -> bool:
        return bool(self.history) and self.history[-1]["step"] == step

    def _evaluate(self, step: int) -> None:
        validation = self._values(*self.validation_data)
        test = self._values(*self.test_data)
        record = {"step": step}
        record.update({f"validation_{k}": v for k, v in validation.items()})
        for name in dict.fromkeys([*self.task.metric_names,
                                   self.compared_metric]):
            record[f"test_{name}"] = test[name]
        self.history.append(record)

    def _values(self, x, y) -> dict[str, float]:
        """`loss` (the mean per-example loss) and each metric on `(x, y)`.
        """
        y = np.asarray(y)
        if self.task.sparse:
            y = y.reshape(-1)
        losses, correct, outputs = 0.0, 0, []
        for start in range(0, len(y), self.batch_size):
            batch = slice(start, start + self.batch_size)
            logits = self.model.predict_on_batch(x[batch])
            losses += float(np.sum(keras.ops.convert_to_numpy(
                self.loss(y[batch], logits))))
            if self.task.is_default:
                correct += int(np.sum(np.argmax(logits, axis=-1) ==
                                      y[batch]))
            else:
                outputs.append(keras.ops.convert_to_numpy(logits))
        values = {"loss": losses / len(y)}
        if self.task.is_default:
            values["accuracy"] = correct / len(y)
        else:
            values.update(self.task.metric_values(
                y, np.concatenate(outputs).astype("float32")))
        return values

    def _accuracy_key(self) -> str:
        if "accuracy" not in self.task.metric_names:
            raise ValueError(
                "`EarlyStop` records no accuracy: use `test_value` (test "
                f"{self.compared_metric}). Received: metrics="
                f"{list(self.task.metric_names)!r}")
        return "test_accuracy"

    def _best(self, last: bool = False) -> dict:
        if not self.history:
            raise ValueError(
                "`EarlyStop` has no evaluation yet: pass it to `fit` "
                "(`callbacks=[...]`) and train first.")
        if last:
            return self.history[-1]
        return self.task.best(self.history)


def is_winning_ticket(ticket: EarlyStop, dense: EarlyStop) -> bool:
    """Frankle & Carbin's verdict: as good, as fast as the dense round.

    A pruned round is a winning ticket when its test value of the compared
    metric at early stop (accuracy by default) is at least as good as the
    dense round's, in the metric's direction, and its early-stop step at
    most the dense round's (the rule of `summary.json`'s
    `winning_ticket`).

    Args:
        ticket: the pruned round's `EarlyStop`, after `fit`.
        dense: the dense round's `EarlyStop`, after `fit`.

    Raises:
        ValueError: if the two compare different metrics.
    """
    if (ticket.compared_metric, ticket.compared_mode) != (
            dense.compared_metric, dense.compared_mode):
        raise ValueError(
            "`ticket` and `dense` must compare the same metric. Received: "
            f"ticket compares {ticket.compared_metric} "
            f"({ticket.compared_mode}), dense {dense.compared_metric} "
            f"({dense.compared_mode})")
    return bool(tasks.at_least_as_good(ticket.test_value, dense.test_value,
                                       ticket.compared_mode)
                and ticket.early_stop_step <= dense.early_stop_step)


class ExperimentCallback:
    """Hooks into a lottery run (`keras_lottery.run_experiment`).

    Subclass it and override what you need; each hook is called in the
    run's process, between training steps, so a slow hook slows the run.
    A resumed run calls the hooks of what it trains, not of rounds or
    evaluations done before it was interrupted.

    Example:
        >>> class Print(keras_lottery.callbacks.ExperimentCallback):
        ...     def on_round_end(self, round_index, metrics):
        ...         print(round_index, metrics["test_accuracy"])
    """

    def on_evaluation(self, round_index: int, record: dict) -> None:
        """After each evaluation: `record` has `step`, `train_loss`,
        `validation_loss`, `validation_accuracy` and, when the test set
        was evaluated, `test_loss` and `test_accuracy`."""

    def on_round_end(self, round_index: int, metrics: dict) -> None:
        """After a round is done: `metrics` is its `metrics.json`
        (`remaining_fraction`, `early_stop_step`, `test_accuracy`,
        `final_test_accuracy`, `history`, ...)."""


def _iterations(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))

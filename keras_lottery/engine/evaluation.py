"""Evaluation over examples placed on the devices once.

`EvalSet` splits a validation or test set over a strategy's replicas and
places each replica's part on its device once (per round); `Evaluator`
sums the loss and the hits over it in one compiled call: a `tf.range` loop
over fixed-size batches of each replica's part and one remainder batch,
XLA-compiled where the strategy allows, then one sum over replicas. No
dataset or iterator is built per evaluation, so an evaluation costs its
forward passes.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.core import masking
from keras_lottery.engine import precision


@dataclasses.dataclass
class EvalResult:
    """The mean loss, and each metric of the task by its name (`accuracy`
    is the `accuracy` metric's value, None when the task has none)."""

    loss: float
    accuracy: float | None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class EvalSet:
    """Examples split over `strategy`'s replicas, each part on its device.

    Replica `r` of `R` holds examples `[r * n // R, (r + 1) * n // R)`.

    Args:
        strategy: the strategy the model was built under.
        x: the inputs (a tensor made once: NumPy arrays are copied).
        y: the labels or targets.
        batch_size: the global batch of a forward pass; each replica
            evaluates its part in batches of `batch_size // R` (fewer if
            its part is smaller).
    """

    def __init__(self, strategy: tf.distribute.Strategy,
                 x: np.ndarray | tf.Tensor, y: np.ndarray | tf.Tensor,
                 batch_size: int):
        replicas = strategy.num_replicas_in_sync
        n = self.count = len(y)
        bounds = [r * n // replicas for r in range(replicas + 1)]
        parts = [b - a for a, b in zip(bounds, bounds[1:]) if b > a]
        self.batch_size = max(1, min([batch_size // replicas, *parts]))
        x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        self.all_y = y  # every label, for metrics over the whole set

        def part(tensor, context):
            r = context.replica_id_in_sync_group
            # Identity on the device the strategy chose for the replica:
            # a copy there, none where the tensor already is.
            return tf.identity(tensor if replicas == 1
                               else tensor[bounds[r]:bounds[r + 1]])

        self.x, self.y = (
            strategy.experimental_distribute_values_from_function(
                functools.partial(part, t)) for t in (x, y))


class Evaluator:
    """Mean loss and accuracy of `model` over an `EvalSet`.

    Every batch has the set's batch size, so one compiled forward pass
    serves the validation and the test set: the last batch of a part that
    does not divide evenly is its last `batch_size` examples, of which
    those already counted weigh 0.

    Args:
        model: the model; outputs logits; pruned weights are 0.
        strategy: the strategy it was built under.
        jit_compile: XLA-compile the forward pass.
        forward: computes the model's logits of a batch another way (a
            `keras_lottery.engine.sparse_compute.ComputeModel`); None calls
            `model`.
        task: the loss and metrics (`keras_lottery.engine.tasks.Task`);
            None or the default task sums the loss and the hits in the
            graph, as the engine always has; any other gathers the
            outputs and computes its loss and metrics over all of them.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy,
                 jit_compile: bool, forward=None, task=None):
        self.model = model
        self.forward = forward
        self.strategy = strategy
        self.task = None if task is None or task.is_default else task
        self._batch_fn = tf.function(self._batch, jit_compile=jit_compile)
        self._fn = tf.function(self._evaluate, reduce_retracing=True)
        self._logits_fn = tf.function(self._logits, jit_compile=jit_compile)
        self._outputs_fn = tf.function(self._outputs, reduce_retracing=True)

    def __call__(self, examples: EvalSet) -> EvalResult:
        if self.task is not None:
            return self._task_result(examples)
        loss_sum, correct = self._fn(examples.x, examples.y,
                                     examples.batch_size)
        accuracy = float(correct) / examples.count
        return EvalResult(float(loss_sum) / examples.count, accuracy,
                          {"accuracy": accuracy})

    def _task_result(self, examples: EvalSet) -> EvalResult:
        """The task's loss and metrics over every output of the set."""
        outputs = self.strategy.run(
            lambda x: self._outputs_fn(x, examples.batch_size),
            args=(examples.x,))
        # Replica r holds the r-th slice of the examples, in order.
        logits = tf.concat(
            self.strategy.experimental_local_results(outputs), 0)
        labels = examples.all_y
        loss = float(tf.reduce_mean(
            self.task.per_example_loss(labels, logits)))
        metrics = self.task.metric_values(labels, logits)
        return EvalResult(loss, metrics.get("accuracy"), metrics)

    def _outputs(self, x, batch_size):
        """This replica's outputs of every example, batch by batch."""
        n = tf.shape(x)[0]
        full = n // batch_size
        rest = n - full * batch_size
        zeros = [0] * (len(x.shape) - 1)
        parts = tf.TensorArray(tf.float32, size=0, dynamic_size=True,
                               infer_shape=False)
        for i in tf.range(full):
            parts = parts.write(i, self._logits_fn(tf.slice(
                x, [i * batch_size, *zeros], [batch_size, *x.shape[1:]])))
        if rest > 0:
            last = self._logits_fn(tf.slice(
                x, [n - batch_size, *zeros], [batch_size, *x.shape[1:]]))
            parts = parts.write(full, last[batch_size - rest:])
        return parts.concat()

    def _logits(self, images):
        if self.forward is not None:
            return tf.cast(self.forward(images), tf.float32)
        with masking.masked_gradients():
            return tf.cast(self.model(images, training=False), tf.float32)

    def _evaluate(self, x, y, batch_size):
        loss, hits = self.strategy.run(
            functools.partial(self._sums, batch_size=batch_size),
            args=(x, y))
        return (self.strategy.reduce("SUM", loss, axis=None),
                self.strategy.reduce("SUM", hits, axis=None))

    def _sums(self, x, y, batch_size):
        """This replica's summed loss and hits, batch by batch."""
        n = tf.shape(y)[0]
        full = n // batch_size
        rest = n - full * batch_size
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for i in tf.range(full):
            loss, hits = self._slice_batch(x, y, i * batch_size, batch_size,
                                           0)
            loss_sum += loss
            correct += hits
        if rest > 0:
            loss, hits = self._slice_batch(x, y, n - batch_size, batch_size,
                                           batch_size - rest)
            loss_sum += loss
            correct += hits
        return loss_sum, correct

    def _slice_batch(self, x, y, start, size, skip):
        """The sums over `size` examples from `start`, the first `skip`
        weighing 0; slices of a static size, one compiled shape."""
        zeros = [0] * (len(x.shape) - 1)
        return self._batch_fn(
            tf.slice(x, [start, *zeros], [size, *x.shape[1:]]),
            tf.slice(y, [start], [size]), skip)

    def _batch(self, images, labels, skip):
        if self.forward is not None:
            logits = self.forward(images)
        else:
            with masking.masked_gradients():
                logits = self.model(images, training=False)
        logits = precision.float32_outputs(logits)
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)
        predictions = tf.argmax(logits, -1, output_type=labels.dtype)
        correct = tf.cast(tf.equal(predictions, labels), tf.float32)
        counted = tf.range(tf.shape(labels)[0]) >= skip
        return (tf.reduce_sum(tf.where(counted, loss, 0.0)),
                tf.reduce_sum(tf.where(counted, correct, 0.0)))

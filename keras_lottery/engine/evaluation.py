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


@dataclasses.dataclass
class EvalResult:
    loss: float
    accuracy: float


class EvalSet:
    """Examples split over `strategy`'s replicas, each part on its device.

    Replica `r` of `R` holds examples `[r * n // R, (r + 1) * n // R)`.

    Args:
        strategy: the strategy the model was built under.
        x: the inputs (a tensor made once: NumPy arrays are copied).
        y: the integer labels.
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
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy,
                 jit_compile: bool, forward=None):
        self.model = model
        self.forward = forward
        self.strategy = strategy
        self._batch_fn = tf.function(self._batch, jit_compile=jit_compile)
        self._fn = tf.function(self._evaluate, reduce_retracing=True)

    def __call__(self, examples: EvalSet) -> EvalResult:
        loss_sum, correct = self._fn(examples.x, examples.y,
                                     examples.batch_size)
        return EvalResult(float(loss_sum) / examples.count,
                          float(correct) / examples.count)

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
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)
        predictions = tf.argmax(logits, -1, output_type=labels.dtype)
        correct = tf.cast(tf.equal(predictions, labels), tf.float32)
        counted = tf.range(tf.shape(labels)[0]) >= skip
        return (tf.reduce_sum(tf.where(counted, loss, 0.0)),
                tf.reduce_sum(tf.where(counted, correct, 0.0)))

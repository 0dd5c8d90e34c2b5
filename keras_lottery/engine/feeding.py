"""The engine's training data: its order, as a dataset or as indices.

The data order is a pure function of (seed, step): epoch e is a stateless
shuffle seeded by (seed, e), so a run resumed at step s sees the same
batches as an uninterrupted one, with no iterator state to checkpoint.
`train_dataset` yields those batches through `tf.data`; a `TrainingData`
also gives their indices (`TrainingData.indices`), which the trainer
gathers in the graph from examples placed on the device once.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from keras_lottery.engine import augment as augmentation

_BATCHES_PER_GATHER = 16


def train_dataset(x: np.ndarray | tf.Tensor, y: np.ndarray | tf.Tensor,
                  batch_size: int, seed: int, start_step: int = 0,
                  augment: augmentation.Augment | None = None
                  ) -> tf.data.Dataset:
    """Batches of `(x, y)` forever, reshuffled each epoch, from `start_step`.

    Epoch `e` visits a stateless shuffle of the examples seeded by
    `(seed, e)`, in `len(x) // batch_size` batches (the remainder is left
    out of that epoch). The batch at step `s` depends only on `(seed, s)`.
    Pass tensors (`tf.convert_to_tensor`) made once when building several
    datasets of the same data: NumPy arrays are copied into each dataset.
    `augment` (`keras_lottery.engine.augment`) maps the batch at step `s`
    with the seed `(seed, s)`.
    """
    n = len(x)
    per_epoch = _batches_per_epoch(n, batch_size)
    first_epoch, skip = divmod(start_step, per_epoch)
    images = tf.convert_to_tensor(x)
    labels = tf.convert_to_tensor(y)

    def epoch(e):
        order = tf.reshape(_shuffled(n, seed, e)[: per_epoch * batch_size],
                           [per_epoch, batch_size])
        return tf.data.Dataset.from_tensor_slices(order)

    dataset = (
        tf.data.Dataset.range(first_epoch, 2**62)
        .flat_map(epoch)
        .skip(skip)
        # Gathers a few batches per call: one op dispatch each, not per
        # batch, leaves more of the CPU to training.
        .batch(_BATCHES_PER_GATHER)
        .map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .unbatch()
    )
    if augment is not None:
        dataset = dataset.enumerate(start_step).map(
            lambda step, batch: augment(
                *batch, augmentation.step_seed(seed, step)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(_data_options())


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingData:
    """A training set and its order: the batches of `train_dataset`.

    Pass it to `Trainer.train`: under a one-replica strategy the trainer
    gathers the batches by index in the graph (`indices`); otherwise, and
    when called, it is `train_dataset(x, y, batch_size, seed, start_step)`.

    Example:
        >>> data = TrainingData(x, y, batch_size=60, seed=0)
        >>> trainer.train(data, 100)
    """

    x: tf.Tensor
    y: tf.Tensor
    batch_size: int
    seed: int
    # Maps each batch with its step's seed (`keras_lottery.engine.augment`).
    augment: augmentation.Augment | None = None

    def __post_init__(self):
        _batches_per_epoch(len(self.y), self.batch_size)

    def __call__(self, start_step: int = 0) -> tf.data.Dataset:
        return train_dataset(self.x, self.y, self.batch_size, self.seed,
                             start_step, self.augment)

    def indices(self, start_step: int, num_steps: int) -> np.ndarray:
        """`[num_steps, batch_size]` int32: the examples of each step's batch.

        Row `i` holds the indices of the batch `train_dataset` yields at
        step `start_step + i`.
        """
        n = len(self.y)
        per_epoch = _batches_per_epoch(n, self.batch_size)
        steps = np.arange(start_step, start_step + num_steps)
        epochs = steps // per_epoch
        out = np.empty((num_steps, self.batch_size), np.int32)
        for e in np.unique(epochs):
            here = epochs == e
            out[here] = _epoch_batches(n, self.batch_size, self.seed,
                                       int(e))[steps[here] % per_epoch]
        return out


def _batches_per_epoch(n: int, batch_size: int) -> int:
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(
            "`train.batch_size` must not exceed the training set size "
            f"({n}). Received: train.batch_size={batch_size}"
        )
    return per_epoch


def _shuffled(n: int, seed: int, epoch) -> tf.Tensor:
    """The order of the `n` examples in `epoch`: the same op in a dataset
    and eagerly, on the CPU, so both give the same order."""
    return tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64),
        seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)]))


@functools.lru_cache(maxsize=2)
def _epoch_batches(n: int, batch_size: int, seed: int,
                   epoch: int) -> np.ndarray:
    """`[batches, batch_size]` int32 indices of an epoch (cached: an epoch
    spans many calls of `steps_per_loop` steps)."""
    per_epoch = n // batch_size
    with tf.device("/cpu:0"):
        order = _shuffled(n, seed, epoch).numpy()
    order = order[: per_epoch * batch_size].astype(np.int32)
    order.flags.writeable = False
    return order.reshape(per_epoch, batch_size)


def _data_options() -> tf.data.Options:
    """Options of every dataset here: no tf.data autotuning thread.

    Deleting an iterator cancels its autotuning thread and waits for it,
    and that thread can miss the wake-up (it checks whether it is cancelled
    before the cancellation is marked done) and sleep out its optimisation
    period, up to a minute per iterator. With two runs on two cores this
    stalled a round start for 15 to 200 s about once in 20 rounds. Without
    the thread, `AUTOTUNE` still picks the parallel calls (one per core)
    and grows the prefetch buffer when the consumer waits.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    # Each worker of a multi-worker strategy takes its slice of every
    # global batch (an in-memory dataset has no files to shard by).
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return options

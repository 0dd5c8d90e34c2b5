"""A streamed training set's order, rebuilt deterministically at any step.

`StreamedData(source, count, batch_size, seed, shuffle_buffer)` is what
`Trainer.train` takes as its `start_step -> dataset`: epoch `e` reads the
source from its start through a shuffle buffer seeded by `(seed, e)` and
batches it (the last partial batch of an epoch is left out, as
`keras_lottery.engine.feeding` does), so the batch at step `s` depends only
on `(seed, s)` and the source's order. A run resumed at step `s` rebuilds
the pipeline there: it reads epoch `s // batches_per_epoch` again and skips
its first `s % batches_per_epoch` batches' examples. Nothing of the
pipeline is checkpointed, and a kill at any moment resumes to the batches
of an uninterrupted run. Under one replica `Trainer.train` takes each
call's batches at once and trains on them in its compiled loop
(`Trainer._train_fetched`).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_lottery.engine import augment as augmentation
from keras_lottery.engine import feeding

# Any fixed nonzero graph seed: see `_epoch`.
_GRAPH_SEED = 1


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedData:
    """A streamed training set and its order.

    Attributes:
        source: single `(x, y)` examples, finite, in a fixed order.
        count: how many examples `source` yields.
        batch_size: the global batch.
        seed: seeds each epoch's shuffle (the round's seed).
        shuffle_buffer: examples in the shuffle buffer (1: none).

    Example:
        >>> data = StreamedData(dataset, 50000, batch_size=60, seed=0,
        ...                     shuffle_buffer=10000)
        >>> trainer.train(data, 100)
    """

    source: tf.data.Dataset
    count: int
    batch_size: int
    seed: int
    shuffle_buffer: int
    # Maps each batch with its step's seed (`keras_lottery.engine.augment`).
    augment: augmentation.Augment | None = None

    def __post_init__(self):
        feeding._batches_per_epoch(self.count, self.batch_size)

    @property
    def batches_per_epoch(self) -> int:
        return feeding._batches_per_epoch(self.count, self.batch_size)

    def __call__(self, start_step: int = 0) -> tf.data.Dataset:
        """Batches of `(x, y)` forever, from step `start_step`."""
        per_epoch = self.batches_per_epoch
        first_epoch, skip = divmod(start_step, per_epoch)
        dataset = (
            tf.data.Dataset.range(first_epoch, 2**62)
            .flat_map(self._epoch)
            .skip(skip * self.batch_size)
            .batch(self.batch_size, drop_remainder=True,
                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        )
        if self.augment is not None:
            dataset = dataset.enumerate(start_step).map(
                lambda step, batch: self.augment(
                    *batch, augmentation.step_seed(self.seed, step)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return (dataset.prefetch(tf.data.AUTOTUNE)
                .with_options(feeding._data_options()))

    def _epoch(self, epoch: tf.Tensor) -> tf.data.Dataset:
        """The examples of `epoch`, shuffled, as many as fill its batches."""
        # `shuffle` pairs its seed with the graph's seed, which a function
        # traced here takes from the process's global seed (set by
        # `keras.utils.set_random_seed` wherever a model is built): pinning
        # it makes the order a function of (seed, epoch) alone.
        tf.compat.v1.get_default_graph().seed = _GRAPH_SEED
        seed = tf.random.stateless_uniform(
            [], tf.stack([tf.constant(self.seed, tf.int64), epoch]),
            minval=1, maxval=2**31 - 1, dtype=tf.int64)
        return (self.source
                .shuffle(self.shuffle_buffer, seed=seed,
                         reshuffle_each_iteration=False)
                .take(self.batches_per_epoch * self.batch_size))

"""A streamed training set's order, rebuilt deterministically at any step.

`StreamedData(source, count, batch_size, seed, shuffle_buffer)` is what
`Trainer.train` takes as its `start_step -> dataset`: epoch `e` reads the
source from its start in blocks of `shuffle_buffer` examples (rounded up to
whole batches), permutes each block with a stateless seed of `(seed, e,
block)` and cuts it into batches (the last partial batch of an epoch is
left out, as `keras_lottery.engine.feeding` does), so the batch at step `s`
depends only on `(seed, s)` and the source's order. A run resumed at step
`s` rebuilds the pipeline there: it reads epoch `s // batches_per_epoch`
again, skips the blocks before step `s`'s unpermuted, and skips the
batches of its block already taken. Nothing of the pipeline is
checkpointed, and a kill at any moment resumes to the batches of an
uninterrupted run. Under one replica `Trainer.train` takes each call's
batches at once and trains on them in its compiled loop
(`Trainer._train_fetched`).

A block is permuted as one tensor (a gather) and cut into batches with
one slice per batch, so past reading the source the pipeline handles each
example twice (`take`, and gathering it into its block), where a `tf.data`
shuffle buffer, `take`, `flat_map` and `batch` handled it four times: less
CPU per step (docs/STREAMED.md). A block mixes as a shuffle buffer of its
size does: examples move within about a block of where the source has
them. It holds up to two blocks in memory.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_lottery.data import streams
from keras_lottery.engine import augment as augmentation
from keras_lottery.engine import feeding

# Mixes `(seed, epoch)` into the first word of a block's stateless seed.
_EPOCH_STRIDE = 1_000_003


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedData:
    """A streamed training set and its order.

    Attributes:
        source: `(x, y)` examples, finite, in a fixed order: one at a
            time, or in batches of any sizes (`streams.is_batched`).
        count: how many examples `source` yields.
        batch_size: the global batch.
        seed: seeds each epoch's shuffle (the round's seed).
        shuffle_buffer: examples in a permuted block, rounded up to whole
            batches (1: batches of consecutive examples, no shuffle).

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
    def batched(self) -> bool:
        """Whether `source` yields batches of examples."""
        return streams.is_batched(self.source)

    @property
    def batches_per_epoch(self) -> int:
        return feeding._batches_per_epoch(self.count, self.batch_size)

    @property
    def block_size(self) -> int:
        """Examples permuted together: `shuffle_buffer`, in whole batches.
        """
        batches = max(1, -(-self.shuffle_buffer // self.batch_size))
        return batches * self.batch_size

    def __call__(self, start_step: int = 0) -> tf.data.Dataset:
        """Batches of `(x, y)` forever, from step `start_step`."""
        first_epoch, skip = divmod(start_step, self.batches_per_epoch)
        skip_blocks, skip_batches = divmod(
            skip, self.block_size // self.batch_size)
        dataset = (
            tf.data.Dataset.from_tensors(tf.constant(first_epoch, tf.int64))
            .flat_map(lambda epoch: self._epoch(epoch, skip_blocks))
            .skip(skip_batches)
            .concatenate(tf.data.Dataset.range(first_epoch + 1, 2**62)
                         .flat_map(lambda epoch: self._epoch(epoch, 0)))
        )
        if self.augment is not None:
            dataset = dataset.enumerate(start_step).map(
                lambda step, batch: self.augment(
                    *batch, augmentation.step_seed(self.seed, step)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return (dataset.prefetch(tf.data.AUTOTUNE)
                .with_options(feeding._data_options()))

    def _epoch(self, epoch: tf.Tensor, first_block: int) -> tf.data.Dataset:
        """The batches of `epoch` from block `first_block` on: as many
        examples as fill its batches, permuted block by block."""
        batch_size = self.batch_size
        base = (tf.constant(self.seed, tf.int64) * _EPOCH_STRIDE + epoch)

        def batches(index, block):
            x, y = block
            order = tf.argsort(tf.random.stateless_uniform(
                tf.shape(y)[:1], tf.stack([base, index])))
            x, y = tf.gather(x, order), tf.gather(y, order)
            # A block holds whole batches (the epoch's examples do too).
            return tf.data.Dataset.from_tensor_slices((
                tf.reshape(x, [-1, batch_size, *x.shape[1:]]),
                tf.reshape(y, [-1, batch_size, *y.shape[1:]])))

        return (self._blocks()
                .enumerate()
                .skip(first_block)
                .flat_map(batches))

    def _blocks(self) -> tf.data.Dataset:
        """The source's first `batches_per_epoch * batch_size` examples,
        in blocks of `block_size` (the last may be shorter)."""
        used = self.batches_per_epoch * self.batch_size
        if not self.batched:
            return self.source.take(used).batch(self.block_size)
        # Cut the source's batches into blocks with no element per example.
        blocks = -(-used // self.block_size)
        last = used - (blocks - 1) * self.block_size

        def cut(index, block):
            size = tf.where(index == blocks - 1, last, self.block_size)
            return tuple(t[:size] for t in block)

        return (self.source.rebatch(self.block_size).take(blocks)
                .enumerate().map(cut))

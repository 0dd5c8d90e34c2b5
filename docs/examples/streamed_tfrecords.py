"""A loader of streamed data: MNIST digits from TFRecord files, read in place.

`write` turns `(x, y)` arrays of uint8 images and integer labels into
sharded TFRecord files (`train-00000-of-00002.tfrecord`, ...) and a
`shape.json`; `load` is a loader by import path (docs/STREAMED.md) that
returns `tf.data.Dataset`s over those files. The lottery run streams the
training set in a seeded shuffled order and never copies it into the
workdir:

  python -m binaries.lottery --config=configs/lenet300_mnist.py:smoke \
      --config.data.name=docs.examples.streamed_tfrecords:load \
      --config.data.dir=/data/mnist_tfrecords \
      --config.data.normalization=none --workdir=/tmp/streamed

`tests/test_streamed.py` writes 700 MNIST digits this way and runs it.
"""

import glob
import json
import os

import numpy as np
import tensorflow as tf

_FEATURES = {"x": tf.io.FixedLenFeature([], tf.string),
             "y": tf.io.FixedLenFeature([], tf.int64)}


def write(x: np.ndarray, y: np.ndarray, folder: str, split: str,
          shards: int = 2) -> None:
    """Writes uint8 images `x` and labels `y` as `split`'s TFRecord shards."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "shape.json"), "w") as f:
        json.dump(list(x.shape[1:]), f)
    for shard, part in enumerate(np.array_split(np.arange(len(x)), shards)):
        path = os.path.join(
            folder, f"{split}-{shard:05d}-of-{shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for i in part:
                example = tf.train.Example(features=tf.train.Features(
                    feature={
                        "x": tf.train.Feature(bytes_list=tf.train.BytesList(
                            value=[x[i].astype(np.uint8).tobytes()])),
                        "y": tf.train.Feature(int64_list=tf.train.Int64List(
                            value=[int(y[i])]))}))
                writer.write(example.SerializeToString())


def load(data_dir: str):
    """`(train, test)` datasets of `(x, y)` batches: x float32 in [0, 1],
    y int32.

    Adds the validation dataset as a third value when `validation-*`
    shards exist (else the run holds out the first
    `data.validation_size` training examples).
    """
    with open(os.path.join(data_dir, "shape.json")) as f:
        shape = json.load(f)

    def parse(records):
        # A batch of records at a time: one parse op per 256 examples,
        # not one each (4x the examples per second on MNIST).
        examples = tf.io.parse_example(records, _FEATURES)
        x = tf.reshape(tf.io.decode_raw(examples["x"], tf.uint8),
                       [-1, *shape])
        return tf.cast(x, tf.float32) / 255.0, tf.cast(examples["y"],
                                                      tf.int32)

    def split(name):
        # Sorted: the files' order is the examples' order, which the
        # seeded shuffle and a resumed run rely on.
        paths = sorted(glob.glob(os.path.join(data_dir,
                                              f"{name}-*.tfrecord")))
        # Batches of 256 examples go on as they are: the run cuts them
        # into its own (docs/STREAMED.md).
        return (tf.data.TFRecordDataset(paths).batch(256)
                .map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True))

    splits = [split("train"), split("test")]
    if glob.glob(os.path.join(data_dir, "validation-*.tfrecord")):
        splits.append(split("validation"))
    return tuple(splits)

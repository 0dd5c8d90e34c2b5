"""Data augmentation of training batches, seeded by the step.

`data.augment` names what is done to each training batch (never to
validation or test data):

- `"none"` (the default): nothing;
- `"crop_flip"`: the papers' recipe for CIFAR-10 (He et al. 2016; open_lth
  for Frankle & Carbin 2019): pad 4 pixels on each side with zeros, crop
  back to the image size at a random offset, and flip left-right with
  probability 1/2, each example on its own. The batches are normalized
  already: the padding is 0 there (the mean of standardized pixels; open_lth
  pads raw pixels with black);
- `"package.module:function"`: a function of `(x, y, seed)` returning
  `(x, y)` for a batch, built from TensorFlow ops, whose randomness comes
  from `tf.random.stateless_*` ops seeded by `seed` (an int32 tensor of
  shape `[2]`).

The randomness of step `s` of a round seeded by `r` is seeded by `(r, s)`
alone, as the batch order is (`keras_lottery.engine.feeding`): a round
resumed at step `s` augments its batches as an uninterrupted one does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

from keras_lottery.base import imports

RECIPES = ("none", "crop_flip")
PARAMETERS = ("x", "y", "seed")
_PAD = 4

Augment = Callable[[tf.Tensor, tf.Tensor, tf.Tensor],
                   tuple[tf.Tensor, tf.Tensor]]


@functools.lru_cache(maxsize=8)
def get(spec: str, field: str = "data.augment") -> Augment | None:
    """The augmentation `spec` names, or None for `"none"`: the same
    function for the same `spec` (the trainer's compiled loop is traced
    once for it).

    Raises:
        ValueError: in one line, for an unknown recipe, a path that does
            not import, or a function that does not take `x`, `y` and
            `seed`.
    """
    if spec in ("none", ""):
        return None
    if spec == "crop_flip":
        return crop_flip
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"`{field}` must be one of {', '.join(map(repr, RECIPES))} or "
            f"'package.module:function'. Received: {field}={spec!r}")
    function = imports.resolve(spec, field, PARAMETERS)
    return lambda x, y, seed: function(x=x, y=y, seed=seed)


def check(spec: str, field: str = "data.augment") -> None:
    """Raises `get`'s one-line error for a bad `spec`."""
    get(spec, field)


def step_seed(seed, step) -> tf.Tensor:
    """The `[2]` int32 seed of the batch at `step` of a round seeded by
    `seed`."""
    return tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])


def crop_flip(x: tf.Tensor, y: tf.Tensor,
              seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Random crop of the zero-padded images and a random left-right flip,
    per example; `x` is `[batch, height, width, channels]`."""
    if x.shape.rank != 4:
        raise ValueError(
            "`data.augment`='crop_flip' takes images [batch, height, width, "
            f"channels]. Received: x of shape {tuple(x.shape)}")
    batch = tf.shape(x)[0]
    height, width = x.shape[1], x.shape[2]
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform(
        [batch, 2], crop_seed, minval=0, maxval=2 * _PAD + 1,
        dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]])
    # A crop as a gather of rows then columns: one shape for XLA.
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    flipped = tf.where(flip[:, None, None, None],
                       tf.reverse(cropped, axis=[2]), cropped)
    return flipped, y


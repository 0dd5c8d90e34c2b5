"""Mixed precision: the dtype policy a run builds its network under.

`train.precision` is a Keras dtype policy: `float32` (the default),
`mixed_bfloat16` or `mixed_float16`. Under a mixed policy each layer
computes in 16 bits and keeps its variables in float32
(`keras.mixed_precision`), so the masks and rewind points of
`keras_lottery.core.masking`, made with their weight's variable dtype, stay
float32, and a pruned weight is an exact 0 in every precision. The loss is
computed in float32 on the outputs cast back (`float32_outputs`), and
`mixed_float16` scales it against underflow
(`keras.optimizers.LossScaleOptimizer`, `optimizer_for`).

Example:
    >>> with precision.policy("mixed_bfloat16"):
    ...     model = keras_lottery.wrap(build_model())
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check(precision: str, field: str = "train.precision") -> None:
    """Raises a one-line `ValueError` unless `precision` is known."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"`{field}` must be one of {', '.join(map(repr, PRECISIONS))}. "
            f"Received: {field}={precision!r}")


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Layers built inside take the dtype policy `precision`; the global
    policy is restored on exit."""
    check(precision)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def optimizer_for(optimizer: keras.optimizers.Optimizer,
                  precision: str) -> keras.optimizers.Optimizer:
    """`optimizer`, wrapped in a dynamic loss scale under `mixed_float16`
    (float16 gradients underflow; bfloat16 has float32's range)."""
    check(precision)
    if precision == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def scaled(loss: tf.Tensor, optimizer: keras.optimizers.Optimizer):
    """The loss to differentiate: scaled by a `LossScaleOptimizer`, which
    unscales the gradients it applies; else `loss` itself."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def float32_outputs(outputs):
    """Outputs of a 16-bit computation as float32, for the loss."""
    if outputs.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(outputs, tf.float32)
    return outputs


def of_model(model: keras.Model) -> str:
    """The mixed policy some layer of `model` computes under, or
    `"float32"`."""
    for layer in model._flatten_layers(include_self=True):
        name = getattr(getattr(layer, "dtype_policy", None), "name", "")
        if name in PRECISIONS[1:]:
            return name
    return "float32"

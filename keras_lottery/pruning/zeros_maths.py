"""When a channel of a Keras layer is identically zero: pure maths.

What `keras_lottery.pruning.dependency` tracks through a graph for
`keras_lottery.shrink`: arrays in, arrays out (`keeps_zero` evaluates an
activation once).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np


def keeps_zero(activation: Callable) -> bool:
    """Returns whether `activation(0) == 0` exactly (then a zero channel
    stays zero after it).

    Args:
        activation: an elementwise function of a tensor, e.g.
            `keras.activations.gelu` or a ReLU layer.
    """
    value = keras.ops.convert_to_numpy(activation(np.zeros((1, 2), "float32")))
    return bool(np.all(value == 0))


def producer_zeros(kernel: np.ndarray, bias: np.ndarray | None,
                   input_zeros: np.ndarray, axes: tuple[int, int],
                   activation_keeps_zero: bool) -> np.ndarray:
    """Returns which output channels of a Dense or conv layer are
    identically zero.

    Args:
        kernel: the layer's kernel.
        bias: its bias, or None.
        input_zeros: bool over the kernel's input rows (its `axes[1]`): the
            inputs known to be identically zero; their weights do not
            count.
        axes: (output axis, input axis) of the kernel.
        activation_keeps_zero: whether the activation maps 0 to 0.

    Returns:
        A bool array over the output channels.
    """
    out_axis, in_axis = axes
    live = np.moveaxis(kernel, (out_axis, in_axis), (-1, -2))
    live = live[..., ~input_zeros, :]
    silent = ~np.any(live.reshape(-1, live.shape[-1]) != 0, axis=0)
    if bias is not None:
        silent &= bias == 0
    return silent & activation_keeps_zero


def ignored_rows(kernel: np.ndarray, in_axis: int) -> np.ndarray:
    """Returns which input rows (along `in_axis`) of `kernel` are all 0."""
    rows = np.moveaxis(kernel, in_axis, 0)
    return ~np.any(rows.reshape(rows.shape[0], -1) != 0, axis=1)


def batch_norm_zeros(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                     input_zeros: np.ndarray) -> np.ndarray:
    """Returns which channels of a BatchNormalization's inference output
    (`gamma * (x - mean) / sqrt(var + eps) + beta`) are identically zero.

    Zero when gamma == beta == 0 whatever comes in; or when the input is
    zero, beta == 0 and gamma * mean == 0 (exactly, so no rounding can make
    it nonzero).
    """
    always = (gamma == 0) & (beta == 0)
    return always | (input_zeros & (beta == 0) & ((gamma == 0) | (mean == 0)))


def channel_rows(keep: np.ndarray, repeat: int) -> np.ndarray:
    """Expands a bool array over C channels to the `repeat * C` rows of a
    flattened channels-last map (row p carries channel p % C)."""
    return np.tile(keep, repeat)


def rows_to_channels(rows: np.ndarray, repeat: int) -> np.ndarray:
    """Returns, per channel, whether all of its `repeat` rows are set."""
    return rows.reshape(repeat, -1).all(axis=0)

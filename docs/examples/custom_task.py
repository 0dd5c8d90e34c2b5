"""A model and a dataset of one's own, for configs to name by import path.

With this folder on the Python path, any config runs on them:

  PYTHONPATH=docs/examples python -m binaries.lottery \
      --config=configs/mnist1d_mlp.py \
      --config.model.name=custom_task:build \
      --config.data.name=custom_task:load --workdir=/tmp/custom

`build` is called with the keyword arguments of
`keras_lottery.models.BUILDER_PARAMETERS`, `load` with those of
`keras_lottery.datasets.LOADER_PARAMETERS` (docs/CUSTOM.md).
"""

import os

import keras
import numpy as np

from keras_lottery.data import mnist1d


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.Model:
    """A small 1-D Conv + BatchNorm network that outputs logits.

    Args:
        input_shape: one example's shape, `(length, channels)`.
        num_classes: the number of logits.
        weight_decay: L2 factor on the kernels; 0 for none.
        seed: seeds every initializer (None: unseeded).

    Returns:
        A functional model whose logits layer is named "output".
    """
    draws = np.random.default_rng(seed)
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None

    def kernel_args():
        # One seed per layer from `seed`: one seed, one initialization.
        layer_seed = None if seed is None else int(draws.integers(2**31))
        return {"kernel_initializer": keras.initializers.HeNormal(layer_seed),
                "kernel_regularizer": regularizer}

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv1D(32, 5, strides=2, use_bias=False, name="conv1",
                            **kernel_args())(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv1D(32, 3, strides=2, use_bias=False, name="conv2",
                            **kernel_args())(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, name="output",
                                 **kernel_args())(x)
    return keras.Model(inputs, outputs)


def load(data_dir: str) -> tuple[tuple[np.ndarray, np.ndarray],
                                 tuple[np.ndarray, np.ndarray]]:
    """`((train_x, train_y), (test_x, test_y))`, as Keras's `load_data()`.

    Args:
        data_dir: a folder with `train.npz` and `test.npz` (arrays `x` and
            `y`), or "" for a fresh MNIST-1D drawn with seed 1 (the
            official set is seed 42).
    """
    if not data_dir:
        train_x, train_y, test_x, test_y = mnist1d.generate(seed=1)
        return ((train_x[..., None], train_y), (test_x[..., None], test_y))
    splits = []
    for split in ("train", "test"):
        # allow_pickle=False: data files are data, never code.
        with np.load(os.path.join(data_dir, f"{split}.npz"),
                     allow_pickle=False) as arrays:
            splits.append((arrays["x"], arrays["y"]))
    return tuple(splits)

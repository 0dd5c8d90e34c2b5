"""Two real tasks that are not classification into classes, for a config.

Both datasets ship inside scikit-learn (a keras-tuner dependency), so
nothing is downloaded:

- `load_diabetes`: a regression. Ten standardised measurements of 442
  diabetes patients; the target is a measure of disease progression one
  year later (Efron et al., 2004), standardised with the training split's
  mean and standard deviation (so an MAE of 1 is one standard deviation,
  77.0 in the original units).
- `load_breast_cancer`: a binary task. Thirty features of 569 breast
  masses (Wisconsin diagnostic data set); the target is 1 for benign,
  0 for malignant, as floats for binary cross-entropy on one logit.

Each keeps a seeded 20% as the test set and standardises the features with
the training split's statistics. `build` is a small MLP whose `output`
layer has one unit per value of a target. Use them by import path
(docs/CUSTOM.md):

  PYTHONPATH=docs/examples python -m binaries.lottery \
      --config=configs/mnist1d_mlp.py \
      --config.data.name=tabular_tasks:load_diabetes \
      --config.model.name=tabular_tasks:build \
      --config.train.loss=mse "--config.eval.metrics=('mae',)" \
      --config.eval.monitor=val_mae --workdir=/tmp/diabetes
"""

import keras
import numpy as np
from sklearn import datasets

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _split(x: np.ndarray, y: np.ndarray, standardise_y: bool):
    """A seeded train/test split, standardised by the training split."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    test, train = np.split(order, [round(TEST_FRACTION * len(x))])
    x = (x - x[train].mean(0)) / x[train].std(0)
    if standardise_y:
        y = (y - y[train].mean()) / y[train].std()
    x, y = x.astype(np.float32), y.astype(np.float32)
    return (x[train], y[train]), (x[test], y[test])


def load_diabetes(data_dir: str):
    """The diabetes regression: ((train_x, train_y), (test_x, test_y)).

    `data_dir` is ignored: the data ships with scikit-learn.
    """
    del data_dir
    x, y = datasets.load_diabetes(return_X_y=True)
    return _split(x, y, standardise_y=True)


def load_breast_cancer(data_dir: str):
    """The breast-cancer binary task: targets 0.0 or 1.0."""
    del data_dir
    x, y = datasets.load_breast_cancer(return_X_y=True)
    return _split(x, y, standardise_y=False)


def build(input_shape, num_classes, weight_decay, seed) -> keras.Model:
    """An MLP 64-64 with ReLU; `output` has `num_classes` units (one per
    value of a target: 1 for a scalar regression or one logit)."""
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for i, units in enumerate((64, 64)):
        x = keras.layers.Dense(
            units, activation="relu", name=f"dense{i + 1}",
            kernel_initializer=keras.initializers.GlorotUniform(seed + i),
            kernel_regularizer=regularizer)(x)
    outputs = keras.layers.Dense(
        num_classes, name="output",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 2),
        kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs)

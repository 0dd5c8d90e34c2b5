"""MNIST-1D (Greydanus, 2020), generated offline.

The published procedure of the `mnist1d` package's `make_dataset`, with its
default arguments (`get_dataset_args()`): ten 12-point templates of digit
shapes are padded, stretched, scaled, translated, noised, sheared and
resampled to 40 points, 500 examples per class; the 5,000 examples are
shuffled, standardized as a whole, and split 4,000 / 1,000. With seed 42
the arrays equal the package's, and so the official `mnist1d_data.pkl`.

Why not the package itself: it draws from NumPy's (and Python's) global
random state, which it reseeds; it imports `requests`, `matplotlib` and
`pickle` for its downloader and plots. Here the draws come from a private
`np.random.RandomState(seed)`, which yields the same numbers as the
package's `np.random.seed(seed)`; nothing is downloaded or unpickled.
`tests/test_datasets.py` checks the arrays against a checksum and, where
the package is installed, against `mnist1d.data.make_dataset`.

Example:
    train_x, train_y, test_x, test_y = mnist1d.generate(seed=42)
    train_x.shape  # (4000, 40)
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import interpolate
from scipy import ndimage

# `mnist1d.data.get_dataset_args()`.
NUM_SAMPLES = 5000
TRAIN_SPLIT = 0.8
TEMPLATE_LENGTH = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
LENGTH = 40
OFFICIAL_SEED = 42

# The digit templates of `mnist1d.data.get_templates()`, before whitening.
_TEMPLATES = (
    (5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5),
    (5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5),
    (5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5),
    (5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5),
    (5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5),
    (5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5),
    (5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5),
    (5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5),
    (5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5),
)


def _templates() -> np.ndarray:
    """The ten templates, whitened, starting at 0, scaled by 1/6."""
    x = np.asarray(_TEMPLATES, dtype=np.float64)
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of `x` onto `length` evenly spaced points."""
    old = np.linspace(0, 1, len(x))
    new = np.linspace(0, 1, length)
    return interpolate.interp1d(old, x, axis=0, kind="linear")(new)


def _transform(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """One example from a template: the package's `transform`, step by step.

    The draws from `rng` come in the package's order; changing it changes
    every example after.
    """
    x = x + 1e-8
    low, high = PADDING
    pad = low + int(rng.rand() * (high - low + 1))
    x = np.concatenate([x, np.zeros(pad)])
    x = _resample(x, TEMPLATE_LENGTH + PADDING[-1])
    x *= 1 + SCALE_COEFF * (rng.rand() - 0.5)
    shift = rng.choice(MAX_TRANSLATION)
    x = np.concatenate([x[-shift:], x[:-shift]])
    mask = x != 0
    noise = ndimage.gaussian_filter(CORR_NOISE_SCALE * rng.randn(*x.shape), 2)
    x = mask * x + (1 - mask) * noise
    x = x + IID_NOISE_SCALE * rng.randn(*x.shape)
    coeff = SHEAR_SCALE * (rng.rand() - 0.5)
    x = x - coeff * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, LENGTH)


@functools.lru_cache(maxsize=4)
def generate(
    seed: int = OFFICIAL_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generates MNIST-1D with the package's default arguments.

    A few seconds; the result is cached per seed in this process.

    Args:
        seed: seeds every draw; 42 gives the official dataset, another seed
            a new dataset from the same distribution.

    Returns:
        `(train_x, train_y, test_x, test_y)`: read-only float64 signals of
        shape `(4000, 40)` and `(1000, 40)`, int64 labels in [0, 10).

    Raises:
        ValueError: if `seed` is not an int in [0, 2**32).
    """
    if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
            or not 0 <= seed < 2**32):
        raise ValueError(
            f"`seed` must be an int in [0, 2**32). Received: seed={seed!r}")
    rng = np.random.RandomState(seed)
    templates = _templates()
    per_class = NUM_SAMPLES // len(templates)
    xs, ys = [], []
    for label, template in enumerate(templates):
        for _ in range(per_class):
            xs.append(_transform(template, rng))
            ys.append(label)
    order = rng.permutation(len(ys))
    x = np.stack(xs)[order]
    y = np.asarray(ys)[order]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * TRAIN_SPLIT)
    arrays = (x[:split], y[:split], x[split:], y[split:])
    for array in arrays:
        array.flags.writeable = False
    return arrays

"""Classification datasets as NumPy arrays, split three ways.

`load` returns a `Splits`: a training set, a validation set held out of the
official training set by a seeded permutation, and the official test set.
Images are float32 NHWC (1-D signals: `(N, length, channels)`), labels
int32.

Data comes either from `tensorflow_datasets` (`data_dir=""`; the dataset must
already be prepared, nothing is downloaded) or, offline, from the standard raw
files in a folder:

- `mnist`, `fashion_mnist`: the four IDX files `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte`, gzip-compressed (`.gz`) or not.
- `cifar10`: the binary version, `data_batch_1.bin` .. `data_batch_5.bin` and
  `test_batch.bin`, in the folder or in its `cifar-10-batches-bin/` subfolder.

`mnist1d` (Greydanus, 2020) is generated, not read (`data_dir` is ignored):
the official 4,000 / 1,000 signals of length 40, as `(N, 40, 1)` float
arrays already standardized by the generator (`keras_lottery.data.mnist1d`);
another `generation_seed` draws a new set from the same distribution.

`npz` reads arrays of one's own from a folder: `train.npz` and `test.npz`,
each with arrays `x` (numbers, one shape per example, channels last) and
`y` (integer labels >= 0), and optionally `validation.npz`, which is then
the validation set (`validation_size` is ignored). The number of classes
is the largest label plus one. With `integer_labels=False` (a run whose
loss is not sparse categorical cross-entropy: regression, binary,
multi-label, one-hot), `y` may be numbers of any shape `(N, ...)`, kept as
float32 (int32 if integers), and `num_classes` is the number of outputs
one example's target holds. `keras_lottery.lottery.experiment.run_experiment`
saves the arrays it is given this way.

`classes` keeps the examples of some classes only, relabelled by their
position in it: `classes=(5, 6, 7, 8, 9)` gives MNIST's digits 5-9 as
labels 0-4 (ticket transfer between tasks, `keras_lottery.lottery.transfer`).

Nothing is ever unpickled.

Example:
    splits = datasets.load("mnist", data_dir="/data/mnist")
    splits.train_x.shape  # (55000, 28, 28, 1)
"""

import dataclasses
import os
import zipfile
import zlib
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

from keras_lottery.base import imports
from keras_lottery.data import mnist1d
from keras_lottery.data import readers


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation and test sets of one dataset.

    Attributes:
        train_x: float32 images, shape `(N, height, width, channels)`, or
            signals `(N, length, channels)`.
        train_y: int32 labels in `[0, num_classes)`, shape `(N,)`.
        validation_x: float32 images held out of the official training set.
        validation_y: int32 labels of `validation_x`.
        test_x: float32 images of the official test set.
        test_y: int32 labels of `test_x`.
        num_classes: the number of classes.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    validation_x: np.ndarray
    validation_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one image, `(height, width, channels)`."""
        return tuple(self.train_x.shape[1:])


_DATASETS: dict[str, readers.DatasetSpec] = {
    "mnist": readers.DatasetSpec(readers.read_idx_files, (28, 28, 1), 10),
    "fashion_mnist": readers.DatasetSpec(
        readers.read_idx_files, (28, 28, 1), 10),
    "cifar10": readers.DatasetSpec(
        readers.read_cifar10_files, (32, 32, 3), 10),
    "mnist1d": readers.DatasetSpec(
        readers.generate_mnist1d, (mnist1d.LENGTH, 1), 10, generated=True),
}


# The keyword argument a loader named by import path is called with:
# `data_dir` (str, the config's `data.dir`, which it may ignore). It
# returns `((train_x, train_y), (test_x, test_y))`, as
# `keras.datasets.*.load_data()` does: NumPy arrays (or array-likes), x of
# one shape per example, channels last (uint8 pixels or floats), y integer
# labels in [0, num_classes); the number of classes is the largest label
# plus one.
LOADER_PARAMETERS = ("data_dir",)


def check_name(name: str, field: str = "name") -> None:
    """Raises ValueError unless `name` is known or names a valid loader.

    A loader's module is imported and its signature checked; it is not
    called.

    Args:
        name: as `load` takes it.
        field: how error messages call `name`, e.g. `"data.name"`.
    """
    if readers.is_tfds(name):  # streamed (keras_lottery.data.streams)
        if not name[len(readers.TFDS_PREFIX):]:
            raise ValueError(
                f"`{field}` must name a tfds dataset after 'tfds:', e.g. "
                f"'tfds:cifar10'. Received: {field}={name!r}")
        return
    imports.check_name(name, field, names(), LOADER_PARAMETERS)


def _imported_dataset(name: str, data_dir: str,
                      integer_labels: bool = True,
                      loaded: object = None) -> readers.DatasetSpec:
    """Calls the loader `name` names and checks what it returns
    (`loaded`: what it already returned, if it was called).

    Raises:
        DataError: if it returns anything but two pairs of arrays of equal
            lengths, numeric examples of one shape, and integer labels >= 0.
    """
    loader = imports.resolve(name, "name", LOADER_PARAMETERS)
    result = loader(data_dir=data_dir) if loaded is None else loaded
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(pair, (tuple, list)) and len(pair) == 2
                    for pair in result)):
        raise readers.DataError(
            f"`name` must name a function that returns ((train_x, "
            f"train_y), (test_x, test_y)); it returned a "
            f"{type(result).__name__}. Received: name={name!r}")
    arrays = checked_arrays(
        dict(zip(("train", "test"), result)),
        lambda problem: readers.DataError(
            f"`name` must name a function that returns ((train_x, "
            f"train_y), (test_x, test_y)); {problem}. Received: "
            f"name={name!r}"), integer_labels)
    raw = readers.RawData(*arrays["train"], *arrays["test"])
    return readers.DatasetSpec(lambda _: raw, arrays["train"][0].shape[1:],
                    _num_classes(arrays, integer_labels), generated=True)


def checked_arrays(
    splits: dict[str, tuple], fail: Callable[[str], Exception],
    integer_labels: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Checks `{split: (x, y)}` and returns them as NumPy arrays.

    Args:
        splits: e.g. `{"train": (x, y), "test": (x, y)}`.
        fail: `problem -> exception` to raise, e.g. one naming the argument
            the arrays came from.
        integer_labels: whether `y` must be class labels; False takes
            targets, numbers of any shape `(N, ...)`.

    Raises:
        What `fail` returns, if an `x` is not numbers with a batch
        dimension, a `y` not integer labels of shape `(N,)`, >= 0, as many
        as the examples, or the splits' examples differ in shape.
    """
    arrays = {}
    for split, (x, y) in splits.items():
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind not in "fiu" or x.ndim < 2:
            raise fail(f"{split}_x is {x.dtype} of shape {x.shape}, not "
                       "numbers with a batch dimension")
        if not integer_labels and (y.dtype.kind not in "fiub" or y.ndim < 1):
            raise fail(f"{split}_y is {y.dtype} of shape {y.shape}, not "
                       "numbers with a batch dimension")
        if integer_labels and (y.dtype.kind not in "iu" or y.ndim != 1):
            raise fail(f"{split}_y is {y.dtype} of shape {y.shape}, not "
                       "integer labels of shape (N,) (a loss other than "
                       "sparse categorical cross-entropy takes targets "
                       "of any shape)")
        if len(x) != len(y) or not len(y):
            raise fail(f"{split}_x has {len(x)} examples and {split}_y "
                       f"{len(y)} labels")
        if not integer_labels:
            if not np.all(np.isfinite(y)):
                raise fail(f"{split}_y has a value that is not finite")
        elif y.min() < 0:
            raise fail(f"{split}_y has a negative label, {y.min()}")
        arrays[split] = (x, y)
    first, (x0, _) = next(iter(arrays.items()))
    for split, (x, _) in arrays.items():
        if x.shape[1:] != x0.shape[1:]:
            raise fail(f"{first}_x's examples have shape {x0.shape[1:]} "
                       f"and {split}_x's {x.shape[1:]}")
    return arrays


def _num_classes(arrays: dict[str, tuple[np.ndarray, np.ndarray]],
                 integer_labels: bool = True) -> int:
    """Classes (the largest label + 1), or the values of one target."""
    if not integer_labels:
        return int(np.prod(next(iter(arrays.values()))[1].shape[1:]))
    return int(max(y.max() for _, y in arrays.values())) + 1


NPZ_SPLITS = ("train", "validation", "test")


def _npz_dataset(
    data_dir: str, integer_labels: bool = True,
) -> tuple[readers.DatasetSpec, tuple[np.ndarray, np.ndarray] | None]:
    """Reads `npz`'s files; returns the dataset and the validation pair.

    Raises:
        DataError: if a file is missing, unreadable or malformed.
    """
    splits = {}
    for split in NPZ_SPLITS:
        path = os.path.join(data_dir, f"{split}.npz")
        if split == "validation" and not os.path.exists(path):
            continue
        try:
            # allow_pickle=False: data files are data, never code.
            with np.load(path, allow_pickle=False) as archive:
                splits[split] = (archive["x"], archive["y"])
        except (OSError, ValueError, KeyError, zlib.error,
                zipfile.BadZipFile) as e:
            raise readers.DataError(
                f"Dataset 'npz' needs {path} with arrays x and y: "
                f"{type(e).__name__}: {e}") from None
    arrays = checked_arrays(splits, lambda problem: readers.DataError(
        f"Dataset 'npz' in {data_dir!r}: {problem}."), integer_labels)
    raw = readers.RawData(*arrays["train"], *arrays["test"])
    spec = readers.DatasetSpec(lambda _: raw, arrays["train"][0].shape[1:],
                    _num_classes(arrays, integer_labels), generated=True)
    return spec, arrays.get("validation")


def _keep_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """The examples of `classes`, each labelled by its index in `classes`.

    Raises:
        ValueError: if `classes` is not distinct ints in [0, num_classes).
    """
    if (not isinstance(classes, (tuple, list)) or len(set(classes)) != len(
            classes) or not all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool)
            and 0 <= c < num_classes for c in classes)):
        raise ValueError(
            f"`classes` must be distinct labels in [0, {num_classes}). "
            f"Received: classes={classes!r}")
    relabel = np.full(num_classes, -1)
    relabel[list(classes)] = np.arange(len(classes))
    keep = relabel[y] >= 0
    return x[keep], relabel[y[keep]]


def names() -> list[str]:
    """Returns the names of the datasets that `load` knows, sorted."""
    return sorted([*_DATASETS, "npz"])


def _zero_one(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maps 0..255 to 0..1."""
    del train_x
    return np.zeros(1), np.full(1, 255.0)


def _standardize(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of `train_x` (channels last).

    Sums run over chunks in float64 so that no float64 copy of the whole set
    is made; with integer pixels they are exact. A constant channel gets
    scale 1 instead of 0.
    """
    channels = train_x.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, len(train_x), 1024):
        chunk = train_x[start : start + 1024].astype(np.float64)
        axes = tuple(range(chunk.ndim - 1))
        total += chunk.sum(axis=axes)
        total_sq += np.square(chunk).sum(axis=axes)
    count = train_x.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return mean, np.where(std > 0, std, 1.0)


def _none(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keeps raw 0..255 values."""
    del train_x
    return np.zeros(1), np.ones(1)


# Each normalization maps the uint8 training images to a per-channel (or
# broadcast) `(offset, scale)`; images become `(x - offset) / scale`.
_NORMALIZATIONS: dict[
    str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
] = {
    "zero_one": _zero_one,
    "standardize": _standardize,
    "none": _none,
}


def _normalize(
    x: np.ndarray, offset: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Returns `(x - offset) / scale` as a new float32 array."""
    out = x.astype(np.float32)
    out -= offset.astype(np.float32)
    out /= scale.astype(np.float32)
    return out


def load(
    name: str,
    data_dir: str = "",
    validation_size: int = 5000,
    seed: int = 0,
    normalization: str = "zero_one",
    classes: Sequence[int] = (),
    generation_seed: int = mnist1d.OFFICIAL_SEED,
    integer_labels: bool = True,
    loaded: object = None,
) -> Splits:
    """Loads a dataset and splits off a validation set.

    `validation_size` training examples, chosen by a permutation seeded with
    `seed`, become the validation set; the others stay in the training set,
    in file order. The test set is the official one.

    Args:
        name: the dataset, one of `names()`, or the import path of a loader
            of your own, `"package.module:function"` (see
            `LOADER_PARAMETERS`).
        data_dir: a folder with the raw files (see the module docstring), or
            `""` to read a prepared `tensorflow_datasets` dataset from
            `$TFDS_DATA_DIR` (nothing is downloaded); ignored for a
            generated dataset (`mnist1d`).
        validation_size: how many training examples to hold out, in
            `[0, number of training examples)`.
        seed: seeds the choice of the validation examples.
        normalization: `"zero_one"` (x / 255, for uint8 images only),
            `"standardize"` (per-channel mean 0 and standard deviation 1
            over the training split, after the hold-out) or `"none"` (the
            values as they are, as float32).
        classes: the labels to keep, each relabelled by its position
            here; `()` keeps every class.
        generation_seed: the seed of a generated dataset (`mnist1d`; 42 is
            the official set); must stay 42 for the others.
        integer_labels: whether `y` holds class labels (sparse categorical
            cross-entropy); False takes targets of any shape (regression,
            binary, multi-label, one-hot), as float32 or int32.
        loaded: what the loader `name` names already returned (arrays),
            so that it is not called again; None calls it.

    Returns:
        The splits, images float32 NHWC, labels int32.

    Raises:
        ValueError: if `name`, `validation_size` or `normalization` is
            invalid.
        DataError: if the data is missing or malformed.

    Example:
        splits = load("mnist", data_dir="/data/mnist", validation_size=5000)
        model.fit(splits.train_x, splits.train_y,
                  validation_data=(splits.validation_x, splits.validation_y))
    """
    if name not in names() and not imports.is_import_path(name):
        raise ValueError(
            f"`name` must be one of {names()}. Received: name={name!r}"
        )
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of {sorted(_NORMALIZATIONS)}. "
            f"Received: normalization={normalization!r}"
        )
    if (
        isinstance(validation_size, bool)
        or not isinstance(validation_size, (int, np.integer))
        or validation_size < 0
    ):
        raise ValueError(
            "`validation_size` must be a non-negative integer. "
            f"Received: validation_size={validation_size!r}"
        )
    if generation_seed != mnist1d.OFFICIAL_SEED and name != "mnist1d":
        raise ValueError(
            "`generation_seed` draws a generated dataset (mnist1d) anew; "
            f"{name!r} is read, not generated. Received: "
            f"generation_seed={generation_seed!r}")
    if classes and not integer_labels:
        raise ValueError(
            "`classes` keeps examples by class label; this run's loss "
            f"takes targets, not labels. Received: classes={classes!r}")
    validation = None
    if name == "npz":
        spec, validation = _npz_dataset(data_dir, integer_labels)
    else:
        spec = (_DATASETS[name] if name in _DATASETS
                else _imported_dataset(name, data_dir, integer_labels,
                                       loaded))
    if name == "mnist1d":
        raw = readers.generate_mnist1d(data_dir, generation_seed)
        source = "generated"
    elif spec.generated:
        raw = spec.read_files(data_dir)
        source = "its loader" if name != "npz" else data_dir
    elif data_dir:
        raw = spec.read_files(data_dir)
        source = data_dir
    else:
        raw = readers.read_tfds(name)
        source = "tensorflow_datasets"
    readers.check_raw(raw, name, spec, source, labels=integer_labels)
    if normalization == "zero_one" and raw.train_x.dtype != np.uint8:
        raise ValueError(
            f"`normalization` 'zero_one' divides 0..255 pixels by 255, but "
            f"{name!r} holds {raw.train_x.dtype} values: use 'none' or "
            f"'standardize'. Received: normalization={normalization!r}"
        )

    num_classes = spec.num_classes
    if classes:
        raw = readers.RawData(
            *_keep_classes(raw.train_x, raw.train_y, classes, num_classes),
            *_keep_classes(raw.test_x, raw.test_y, classes, num_classes))
        if validation is not None:
            validation = _keep_classes(*validation, classes, num_classes)
        num_classes = len(classes)
    if validation is not None:
        # The given validation set; `validation_size` does not apply.
        train_x, train_y = raw.train_x, raw.train_y
        validation_x, validation_y = validation
    else:
        num_train = len(raw.train_x)
        if validation_size >= num_train:
            raise ValueError(
                "`validation_size` must be smaller than the number of "
                f"training examples of {name!r}, {num_train}. "
                f"Received: validation_size={validation_size}"
            )
        order = np.random.default_rng(seed).permutation(num_train)
        validation_index = np.sort(order[:validation_size])
        train_index = np.sort(order[validation_size:])
        train_x, train_y = raw.train_x[train_index], raw.train_y[train_index]
        validation_x = raw.train_x[validation_index]
        validation_y = raw.train_y[validation_index]

    offset, scale = _NORMALIZATIONS[normalization](train_x)
    kind = (np.int32 if integer_labels or train_y.dtype.kind in "iu"
            else np.float32)
    return Splits(
        train_x=_normalize(train_x, offset, scale),
        train_y=train_y.astype(kind),
        validation_x=_normalize(validation_x, offset, scale),
        validation_y=validation_y.astype(kind),
        test_x=_normalize(raw.test_x, offset, scale),
        test_y=raw.test_y.astype(kind),
        num_classes=num_classes,
    )


def load_config(data, seed: int, integer_labels: bool = True,
                loaded: object = None) -> Splits:
    """`load` as a config's `data` section and `seed` ask.

    Args:
        data: a config's `data` section, a ConfigDict or its JSON dict
            (`config.json`); fields added later (`classes`,
            `generation_seed`) may be missing.
        seed: the config's `seed`.
        integer_labels: as `load` takes it (whether the config's loss
            takes class labels).
        loaded: as `load` takes it.
    """
    return load(data["name"], data["dir"], data["validation_size"], seed,
                data["normalization"], classes=tuple(data.get("classes", ())),
                generation_seed=data.get("generation_seed",
                                         mnist1d.OFFICIAL_SEED),
                integer_labels=integer_labels, loaded=loaded)

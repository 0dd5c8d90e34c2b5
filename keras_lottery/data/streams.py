"""Streamed data: `tf.data.Dataset`s read in place, never copied.

A loader named by import path (`data.name="package.module:function"`,
called with `data_dir`) may return datasets instead of arrays:
`(train, test)` or `(train, test, validation)`, each a finite
`tf.data.Dataset` of `(x, y)` examples of one fixed shape (x numbers,
channels last; y an integer label for sparse categorical cross-entropy,
else a target of any shape), one at a time or in batches of any size
(`is_batched`: x and y both have an unknown first axis; batches are read
as they come, which spares the pipeline an `unbatch` and a `batch` of
every example). TFRecord files, say:

    def load(data_dir):
        def split(pattern):
            files = sorted(glob.glob(os.path.join(data_dir, pattern)))
            return tf.data.TFRecordDataset(files).map(parse)
        return split("train-*.tfrecord"), split("test-*.tfrecord")

The data stays where the loader reads it: nothing is written into the
workdir, whose `config.json` names the loader and `data.dir`. The training
set is streamed in seeded permuted blocks of `data.shuffle_buffer` examples
each epoch (`keras_lottery.engine.streaming`); the validation and test sets
are read once per process into memory, in order, as the engine evaluates
them. Without a validation dataset, the first `data.validation_size`
training examples, in the loader's order, are the validation set (a stream
has no random access to hold out a seeded sample). The loader's examples
are used as they come: normalize them in its `map`.

`data.name="tfds:NAME"` streams a prepared tfds dataset the same way
(`from_tfds`): the splits `data.train_split`, `data.test_split` and
`data.validation_split` name, as tfds writes them (`"train[:90%]"`), read
from the TFDS folder `data.dir` in file order; x as float32 (divided by
255 for `data.normalization="zero_one"`), y as int32 labels or float32
targets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_lottery.base import imports
from keras_lottery.data import datasets
from keras_lottery.data import readers


@dataclasses.dataclass(frozen=True, eq=False)
class Streams:
    """A streamed training set and the evaluation sets in memory.

    Attributes:
        train: the training examples, `(x, y)`, finite: one at a time, or
            in batches (`is_batched`).
        train_count: how many examples there are.
        validation_x, validation_y, test_x, test_y: as `datasets.Splits`.
        num_classes: the number of classes (the largest label + 1), or the
            values of one target.
        source: where the data comes from, for logs.
    """

    train: tf.data.Dataset
    train_count: int
    validation_x: np.ndarray
    validation_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example."""
        return tuple(self.test_x.shape[1:])


def holds_datasets(result: object) -> bool:
    """Whether a loader's `result` is datasets (else it must be arrays)."""
    return isinstance(result, (tuple, list)) and any(
        isinstance(part, tf.data.Dataset) for part in result)


def is_batched(dataset: tf.data.Dataset) -> bool:
    """Whether `dataset` yields batches: x and y both have an unknown
    first axis, and their other axes are known. (Single examples must
    have a fixed shape, so they never look like this.)"""
    x, y = dataset.element_spec
    return all(s.shape.rank >= 1 and s.shape[0] is None
               and s.shape[1:].is_fully_defined() for s in (x, y)) and (
        x.shape.rank >= 2)


def example_shapes(dataset: tf.data.Dataset) -> tuple[tuple, tuple]:
    """The shapes of one example's x and y."""
    x, y = dataset.element_spec
    skip = 1 if is_batched(dataset) else 0
    return tuple(x.shape[skip:]), tuple(y.shape[skip:])


def _batches(dataset: tf.data.Dataset, size: int = 4096) -> tf.data.Dataset:
    """`dataset`'s examples in batches: its own, or of `size`."""
    return dataset if is_batched(dataset) else dataset.batch(size)


def skip_examples(dataset: tf.data.Dataset, count: int) -> tf.data.Dataset:
    """A batched `dataset` without its first `count` examples."""

    def cut(seen, batch):
        size = tf.shape(batch[1], out_type=tf.int64)[0]
        start = tf.clip_by_value(count - seen, 0, size)
        return seen + size, tuple(t[start:] for t in batch)

    return dataset.scan(tf.constant(0, tf.int64), cut).filter(
        lambda x, y: tf.shape(y)[0] > 0)


def check_dataset(dataset: object, name: str,
                  integer_labels: bool = True) -> tf.data.Dataset:
    """Checks that `dataset` is a finite dataset of `(x, y)` examples, one
    at a time or in batches (`is_batched`).

    Args:
        dataset: what a loader returned for one split.
        name: how errors call it, e.g. `"data.name's test set"`.
        integer_labels: whether `y` must be an integer label (a scalar).

    Returns:
        `dataset`.

    Raises:
        readers.DataError: in one line naming `name` and what it holds.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise readers.DataError(
            f"{name} must be a tf.data.Dataset of (x, y) examples. "
            f"Received: {type(dataset).__name__}")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(
            isinstance(s, tf.TensorSpec) for s in spec)):
        raise readers.DataError(
            f"{name} must yield (x, y) pairs of tensors. Received: a "
            f"dataset of {spec}")
    x, y = spec
    if not (is_batched(dataset) or (
            x.shape.is_fully_defined() and x.shape.rank >= 1
            and y.shape.is_fully_defined())):
        raise readers.DataError(
            f"{name} must yield examples of one fixed shape, one at a time "
            "or in batches (x and y with an unknown first axis). Received:"
            f" x of shape {x.shape}, y of shape {y.shape}")
    y = tf.TensorSpec(example_shapes(dataset)[1], y.dtype)
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise readers.DataError(
            f"{name} must yield numbers as x. Received: x of {x.dtype.name}")
    if integer_labels and not (y.dtype.is_integer and y.shape.rank == 0):
        raise readers.DataError(
            f"{name} must yield integer labels as y, one per example (a "
            "loss other than sparse categorical cross-entropy takes "
            f"targets). Received: y of {y.dtype.name} and shape {y.shape}")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise readers.DataError(
            f"{name} must be finite (no repeat()): each epoch and each "
            f"evaluation reads it to its end. Received: {dataset!r}")
    return dataset


def arrays(dataset: tf.data.Dataset, name: str) -> tuple[np.ndarray,
                                                         np.ndarray]:
    """All of `dataset`'s examples, in order, as `(x, y)` NumPy arrays.

    Raises:
        readers.DataError: if it is empty.
    """
    xs, ys = [], []
    for x, y in _batches(dataset).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise readers.DataError(f"{name} is empty.")
    return np.concatenate(xs), np.concatenate(ys)


def _labels_seen(dataset: tf.data.Dataset) -> tuple[int, int]:
    """How many examples `dataset` has, and its largest label (or -1)."""
    count, largest = 0, -1
    labels = _batches(dataset).map(lambda x, y: y)
    for y in labels.as_numpy_iterator():
        count += len(y)
        if y.dtype.kind in "iu" and y.size:
            largest = max(largest, int(y.max()))
    return count, largest


def from_loader(result: object, name: str, data,
                integer_labels: bool = True,
                naming: str = "`data.name`'s {} dataset") -> Streams:
    """The `Streams` of a loader's datasets, checked.

    Args:
        result: what the loader `name` returned; `holds_datasets(result)`.
        name: the loader's import path.
        data: the config's `data` section (`validation_size`,
            `normalization`, `classes`).
        integer_labels: whether `y` holds class labels.
        naming: how errors call a split's dataset, `{}` its name.

    Raises:
        readers.DataError: for datasets of the wrong structure, infinite
            or empty ones, or examples of different shapes.
        ValueError: for a `data` field streamed data cannot take.
    """
    if len(result) not in (2, 3):
        raise readers.DataError(
            "`data.name` must name a function that returns (train, test) "
            f"or (train, test, validation) datasets; it returned {len(result)}"
            f" values. Received: data.name={name!r}")
    if data["normalization"] != "none":
        raise ValueError(
            "`data.normalization` must be 'none' for a loader's datasets: "
            "they are used as they come (normalize in the loader's map). "
            f"Received: data.normalization={data['normalization']!r}")
    if tuple(data.get("classes", ())):
        raise ValueError(
            "`data.classes` takes arrays; a loader's datasets are used as "
            "they come (filter them in the loader). Received: "
            f"data.classes={tuple(data['classes'])!r}")
    splits = dict(zip(("train", "test", "validation"), result))
    for split, dataset in splits.items():
        check_dataset(dataset, naming.format(split), integer_labels)
    shapes = {split: example_shapes(d)[0] for split, d in splits.items()}
    targets = {split: example_shapes(d)[1] for split, d in splits.items()}
    for what, seen in (("examples", shapes), ("targets", targets)):
        if len(set(seen.values())) > 1:
            raise readers.DataError(
                f"`data.name`'s datasets must hold {what} of one shape; "
                f"they hold {seen}. Received: data.name={name!r}")
    train = splits["train"]
    if "validation" in splits:
        validation = splits["validation"]
    else:
        size = data["validation_size"]
        if is_batched(train):
            validation = train.unbatch().take(size)
            train = skip_examples(train, size)
        else:
            validation, train = train.take(size), train.skip(size)
    where = naming + f" ({name})"
    validation_x, validation_y = arrays(validation,
                                        where.format("validation"))
    test_x, test_y = arrays(splits["test"], where.format("test"))
    count, largest = _labels_seen(train)
    if not count:
        raise readers.DataError(
            f"{where.format('training')} has no example left after the "
            f"{len(validation_y)} held out for validation.")
    if integer_labels:
        num_classes = max(largest, int(validation_y.max()),
                          int(test_y.max())) + 1
    else:
        num_classes = int(np.prod(targets["train"]))
    return Streams(train, count, validation_x, validation_y, test_x,
                   test_y, num_classes,
                   source=f"{name}(data_dir={data.get('dir', '')!r})")


# tfds split fields: (config field, default). An empty validation split
# holds out the first `data.validation_size` training examples.
TFDS_SPLITS = {"train": ("train_split", "train"),
               "test": ("test_split", "test"),
               "validation": ("validation_split", "")}
# What `data.normalization` does to a tfds dataset's x (as float32).
_TFDS_NORMALIZATIONS = ("none", "zero_one")


def from_tfds(data, integer_labels: bool = True) -> Streams:
    """The `Streams` of `data.name="tfds:NAME"`, checked.

    Args:
        data: the config's `data` section (`dir`: the TFDS folder, the
            split fields of `TFDS_SPLITS`, `normalization`,
            `validation_size`).
        integer_labels: whether `y` holds class labels.

    Raises:
        readers.DataError: for a dataset or split tfds does not have (see
            `readers.tfds_splits`), or datasets `from_loader` refuses.
        ValueError: for a `data.normalization` a stream cannot apply.
    """
    name = data["name"]
    normalization = data["normalization"]
    if normalization not in _TFDS_NORMALIZATIONS:
        raise ValueError(
            "`data.normalization` must be 'none' or 'zero_one' for a tfds "
            "dataset: it is streamed, and 'standardize' needs statistics "
            "over the whole training set. Received: data.normalization="
            f"{normalization!r}")
    wanted = {role: (f"data.{field}", data.get(field, default))
              for role, (field, default) in TFDS_SPLITS.items()}
    if not wanted["validation"][1]:
        del wanted["validation"]
    opened = readers.tfds_splits(name[len(readers.TFDS_PREFIX):],
                                 data["dir"], wanted)
    x_type = opened["train"].element_spec[0].dtype
    if normalization == "zero_one" and x_type != tf.uint8:
        raise ValueError(
            "`data.normalization` 'zero_one' divides 0..255 pixels by 255, "
            f"but {name!r} holds {x_type.name} values: use 'none'. "
            f"Received: data.normalization={normalization!r}")

    def cast(x, y):
        x = tf.cast(x, tf.float32)
        if normalization == "zero_one":
            x = x / 255.0
        return x, tf.cast(y, tf.int32 if y.dtype.is_integer else tf.float32)

    def converted(dataset):
        # A batch at a time: one map call per 256 examples, not per one;
        # the batches go on as they are (`is_batched`).
        return (dataset.batch(256)
                .map(cast, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True))

    result = tuple(converted(opened[role]) for role in wanted)
    plain = {"validation_size": data["validation_size"],
             "normalization": "none", "classes": data.get("classes", ()),
             "dir": data["dir"]}
    return from_loader(result, name, plain, integer_labels,
                       naming=f"{name}'s {{}} split")


def load_config(data, seed: int,
                integer_labels: bool = True) -> datasets.Splits | Streams:
    """`datasets.load_config`, or the `Streams` of a loader's datasets.

    A loader by import path is called once: its arrays go on to
    `datasets.load_config` (`loaded=`), its datasets become `Streams`.
    A `tfds:NAME` dataset is streamed (`from_tfds`).
    """
    name = data["name"]
    if readers.is_tfds(name):
        return from_tfds(data, integer_labels)
    if not imports.is_import_path(name):
        return datasets.load_config(data, seed, integer_labels)
    loader = imports.resolve(name, "name", datasets.LOADER_PARAMETERS)
    result = loader(data_dir=data["dir"])
    if holds_datasets(result):
        return from_loader(result, name, data, integer_labels)
    return datasets.load_config(data, seed, integer_labels, loaded=result)


# The loader `keras_lottery.run_experiment` names for datasets given by
# import path: `data.dir` holds
# "train=pkg.mod:fn;test=pkg.mod:fn[;validation=pkg.mod:fn]", each a
# function of no argument that returns the split's dataset.
FUNCTIONS_LOADER = "keras_lottery.data.streams:from_functions"
_SPLITS = ("train", "test", "validation")


def functions_spec(paths: dict[str, str]) -> str:
    """`data.dir` for `from_functions`: `{split: "pkg.mod:fn"}` joined."""
    return ";".join(f"{split}={paths[split]}" for split in _SPLITS
                    if split in paths)


def from_functions(data_dir: str) -> tuple[tf.data.Dataset, ...]:
    """A loader: calls the functions `data_dir` names (`functions_spec`).

    Returns:
        `(train, test)` or `(train, test, validation)`: what they return.

    Raises:
        ValueError: if a function cannot be imported or takes arguments,
            naming the `run_experiment` argument it came from.
    """
    paths = dict(part.split("=", 1) for part in data_dir.split(";")
                 if "=" in part)
    if not {"train", "test"} <= set(paths) <= set(_SPLITS):
        raise ValueError(
            "`data.dir` must name the train and test functions as "
            "'train=pkg.mod:fn;test=pkg.mod:fn[;validation=pkg.mod:fn]'. "
            f"Received: data.dir={data_dir!r}")
    return tuple(imports.resolve(paths[split], f"{split}_data", ())()
                 for split in _SPLITS if split in paths)


# The loader `keras_lottery.run_experiment` names for datasets given as
# objects: only the process that was given them holds them (`give`), so
# the binaries cannot rebuild them.
GIVEN_LOADER = "keras_lottery.data.streams:from_given"
_GIVEN_PREFIX = "given:"
_GIVEN: dict[str, tf.data.Dataset] = {}


def give(datasets: dict[str, tf.data.Dataset]) -> str:
    """Holds `datasets` (`{split: dataset}`, train and test at least) for
    `from_given` in this process, in place of any given before; returns
    the `data.dir` that names them."""
    _GIVEN.clear()
    _GIVEN.update(datasets)
    return _GIVEN_PREFIX + ",".join(s for s in _SPLITS if s in datasets)


def from_given(data_dir: str) -> tuple[tf.data.Dataset, ...]:
    """A loader: the datasets `give` holds, as `data_dir` names them.

    Raises:
        ValueError: in a process that was not given them (a binary run on
            the workdir, or a new Python process).
    """
    splits = data_dir.removeprefix(_GIVEN_PREFIX).split(",")
    if not (data_dir.startswith(_GIVEN_PREFIX) and _GIVEN
            and splits == [s for s in _SPLITS if s in _GIVEN]):
        raise ValueError(
            "`data.dir` names datasets given as objects to "
            "keras_lottery.run_experiment, which only the process that "
            "called it holds: call run_experiment with them again (it "
            "resumes), or give it the import paths ('pkg.mod:fn') of "
            "functions that return them, which the binaries can call. "
            f"Received: data.dir={data_dir!r}")
    return tuple(_GIVEN[s] for s in splits)


def count(dataset: tf.data.Dataset) -> int:
    """How many examples a finite `dataset` yields (reads it once, unless
    it yields single examples and its cardinality is known)."""
    known = -1 if is_batched(dataset) else int(dataset.cardinality())
    return known if known >= 0 else _labels_seen(dataset)[0]

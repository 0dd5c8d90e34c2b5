"""Tests for keras_lottery.datasets."""

import gzip
import hashlib
import os
import re

import numpy as np
import pytest

from keras_lottery.data import datasets
from keras_lottery.data import mnist1d
from keras_lottery.data import readers

_MNIST_TRAIN_COUNTS = [
    5923,
    6742,
    5958,
    6131,
    5842,
    5421,
    5918,
    6265,
    5851,
    5949,
]
_MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

# Fake IDX data: training image i is filled with the value i, test image i
# with 200 + i, so every image carries its own id.
_NUM_TRAIN = 50
_NUM_TEST = 20


def _write_bytes(path: str, data: bytes) -> None:
    if path.endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)


def _idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encodes `array` as an IDX file of unsigned bytes."""
    if magic is None:
        magic = 0x800 | array.ndim
    header = magic.to_bytes(4, "big")
    for dim in array.shape:
        header += dim.to_bytes(4, "big")
    return header + array.astype(np.uint8).tobytes()


def _idx_name(prefix: str, kind: str, gz: bool) -> str:
    ndim = 3 if kind == "images" else 1
    return f"{prefix}-{kind}-idx{ndim}-ubyte" + (".gz" if gz else "")


def _write_fake_idx(folder, gz: bool = True) -> str:
    """Writes the four fake MNIST IDX files into `folder`; returns it."""
    os.makedirs(folder, exist_ok=True)
    for prefix, ids in (
        ("train", np.arange(_NUM_TRAIN)),
        ("t10k", 200 + np.arange(_NUM_TEST)),
    ):
        images = np.broadcast_to(ids[:, None, None], (len(ids), 28, 28))
        _write_bytes(
            os.path.join(folder, _idx_name(prefix, "images", gz)),
            _idx_bytes(images),
        )
        _write_bytes(
            os.path.join(folder, _idx_name(prefix, "labels", gz)),
            _idx_bytes(ids % 10),
        )
    return str(folder)


def _cifar_bytes(images_hwc: np.ndarray, labels: np.ndarray) -> bytes:
    """Encodes images as CIFAR-10 binary records (label byte, then CHW)."""
    chw = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)
    return (
        np.concatenate([labels[:, None], chw], axis=1)
        .astype(np.uint8)
        .tobytes()
    )


def _write_fake_cifar(folder, per_batch: int = 3, seed: int = 0):
    """Writes five fake training batches and a test batch into `folder`.

    Returns:
        `(train_x, train_y, test_x, test_y)` as the files hold them, HWC.
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (6 * per_batch, 32, 32, 3), np.uint8)
    labels = rng.integers(0, 10, 6 * per_batch, np.uint8)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for i, name in enumerate(names):
        part = slice(i * per_batch, (i + 1) * per_batch)
        _write_bytes(
            os.path.join(folder, name), _cifar_bytes(images[part], labels[part])
        )
    cut = 5 * per_batch
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def _ids(x: np.ndarray) -> np.ndarray:
    """The ids of fake IDX images loaded with `normalization="none"`."""
    return x[:, 0, 0, 0].astype(np.int64)


@pytest.fixture(scope="module")
def mnist_full(mnist_dir):
    return datasets.load(
        "mnist", mnist_dir, validation_size=0, normalization="none"
    )


@pytest.fixture
def fake_idx_dir(tmp_path):
    return _write_fake_idx(tmp_path / "idx")


# Real MNIST.


def test_mnist_label_counts_and_mean_pixel(mnist_full):
    assert np.bincount(mnist_full.train_y).tolist() == _MNIST_TRAIN_COUNTS
    assert np.bincount(mnist_full.test_y).tolist() == _MNIST_TEST_COUNTS
    assert mnist_full.train_x.mean(dtype=np.float64) == pytest.approx(
        33.318, abs=5e-4
    )
    assert mnist_full.train_x.min() == 0 and mnist_full.train_x.max() == 255


def test_mnist_default_split(mnist_dir, mnist_full):
    splits = datasets.load("mnist", mnist_dir)
    assert splits.train_x.shape == (55000, 28, 28, 1)
    assert splits.validation_x.shape == (5000, 28, 28, 1)
    assert splits.test_x.shape == (10000, 28, 28, 1)
    assert splits.input_shape == (28, 28, 1)
    assert splits.num_classes == 10
    for x in (splits.train_x, splits.validation_x, splits.test_x):
        assert x.dtype == np.float32
    for y in (splits.train_y, splits.validation_y, splits.test_y):
        assert y.dtype == np.int32
    # The split only moves training examples around.
    counts = np.bincount(splits.train_y) + np.bincount(splits.validation_y)
    assert counts.tolist() == _MNIST_TRAIN_COUNTS
    np.testing.assert_array_equal(splits.test_x, mnist_full.test_x / 255)
    assert splits.train_x.min() == 0.0 and splits.train_x.max() == 1.0


# Splits.


def test_names():
    assert datasets.names() == ["cifar10", "fashion_mnist", "mnist", "mnist1d",
                                "npz"]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files(tmp_path, name, gz):
    folder = _write_fake_idx(tmp_path / "idx", gz=gz)
    splits = datasets.load(
        name, folder, validation_size=0, normalization="none"
    )
    np.testing.assert_array_equal(_ids(splits.train_x), np.arange(_NUM_TRAIN))
    np.testing.assert_array_equal(splits.train_y, np.arange(_NUM_TRAIN) % 10)
    np.testing.assert_array_equal(
        _ids(splits.test_x), 200 + np.arange(_NUM_TEST)
    )
    np.testing.assert_array_equal(splits.test_y, np.arange(_NUM_TEST) % 10)
    assert splits.validation_x.shape == (0, 28, 28, 1)
    assert splits.validation_y.shape == (0,)
    assert splits.input_shape == (28, 28, 1)


@pytest.mark.parametrize("validation_size", [1, 10, _NUM_TRAIN - 1])
@pytest.mark.parametrize("seed", [0, 7])
def test_validation_split_partitions_training_set(
    fake_idx_dir, validation_size, seed
):
    splits = datasets.load(
        "mnist",
        fake_idx_dir,
        validation_size=validation_size,
        seed=seed,
        normalization="none",
    )
    train_ids = _ids(splits.train_x)
    validation_ids = _ids(splits.validation_x)
    assert len(validation_ids) == validation_size
    assert len(train_ids) == _NUM_TRAIN - validation_size
    assert not set(train_ids) & set(validation_ids)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_ids, validation_ids])),
        np.arange(_NUM_TRAIN),
    )
    # Labels travel with their images; the rest keep their file order.
    np.testing.assert_array_equal(splits.train_y, train_ids % 10)
    np.testing.assert_array_equal(splits.validation_y, validation_ids % 10)
    np.testing.assert_array_equal(train_ids, np.sort(train_ids))
    np.testing.assert_array_equal(
        _ids(splits.test_x), 200 + np.arange(_NUM_TEST)
    )


def test_validation_split_is_seeded(fake_idx_dir):
    def validation_ids(seed):
        splits = datasets.load(
            "mnist",
            fake_idx_dir,
            validation_size=10,
            seed=seed,
            normalization="none",
        )
        return _ids(splits.validation_x)

    np.testing.assert_array_equal(validation_ids(3), validation_ids(3))
    assert len({tuple(validation_ids(seed)) for seed in range(5)}) == 5


@pytest.mark.parametrize("validation_size", [-1, 1.5, True, "10"])
def test_validation_size_must_be_non_negative_integer(
    fake_idx_dir, validation_size
):
    message = (
        "`validation_size` must be a non-negative integer. "
        f"Received: validation_size={validation_size!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir, validation_size=validation_size)


@pytest.mark.parametrize("validation_size", [_NUM_TRAIN, _NUM_TRAIN + 1])
def test_validation_size_must_leave_training_examples(
    fake_idx_dir, validation_size
):
    message = (
        "`validation_size` must be smaller than the number of training "
        f"examples of 'mnist', {_NUM_TRAIN}. "
        f"Received: validation_size={validation_size}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir, validation_size=validation_size)


# Normalization.


def test_normalizations(tmp_path):
    folder = str(tmp_path / "cifar")
    _write_fake_cifar(folder, per_batch=4)

    def load(normalization):
        return datasets.load(
            "cifar10", folder, validation_size=5, normalization=normalization
        )

    raw = load("none")
    zero_one = load("zero_one")
    standardized = load("standardize")
    mean = raw.train_x.mean(axis=(0, 1, 2), dtype=np.float64)
    std = raw.train_x.std(axis=(0, 1, 2), dtype=np.float64)
    for field in ("train_x", "validation_x", "test_x"):
        x = getattr(raw, field)
        assert x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 255
        np.testing.assert_array_equal(x, np.round(x))
        np.testing.assert_allclose(getattr(zero_one, field), x / 255)
        # Statistics of the training split after the hold-out, per channel.
        np.testing.assert_allclose(
            getattr(standardized, field), (x - mean) / std, atol=1e-5
        )
    np.testing.assert_allclose(
        standardized.train_x.mean(axis=(0, 1, 2)), 0, atol=1e-5
    )
    np.testing.assert_allclose(
        standardized.train_x.std(axis=(0, 1, 2)), 1, atol=1e-5
    )
    assert not np.allclose(mean, mean[0])  # Really per channel.
    for splits in (raw, zero_one, standardized):
        np.testing.assert_array_equal(splits.train_y, raw.train_y)


def test_standardize_keeps_constant_channel_finite(tmp_path):
    images = np.zeros((4, 32, 32, 3), np.uint8)
    images[..., 0] = np.arange(4)[:, None, None]
    labels = np.zeros(4, np.uint8)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)]:
        _write_bytes(os.path.join(tmp_path, name), _cifar_bytes(images, labels))
    _write_bytes(
        os.path.join(tmp_path, "test_batch.bin"), _cifar_bytes(images, labels)
    )
    splits = datasets.load(
        "cifar10", str(tmp_path), validation_size=0, normalization="standardize"
    )
    assert np.isfinite(splits.train_x).all()
    np.testing.assert_array_equal(splits.train_x[..., 1:], 0)


def test_unknown_normalization(fake_idx_dir):
    message = (
        "`normalization` must be one of ['none', 'standardize', 'zero_one']. "
        "Received: normalization='minmax'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir, normalization="minmax")


def test_unknown_dataset(tmp_path):
    message = (
        "`name` must be one of ['cifar10', 'fashion_mnist', 'mnist', "
        "'mnist1d', 'npz']. "
        "Received: name='imagenet'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.load("imagenet", str(tmp_path))


# IDX errors.


def test_data_error_is_value_error():
    assert issubclass(readers.DataError, ValueError)


def test_missing_folder(tmp_path):
    folder = str(tmp_path / "nowhere")
    message = f"`data_dir` is not a folder. Received: data_dir={folder!r}"
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", folder)


def test_missing_idx_file(fake_idx_dir):
    os.remove(os.path.join(fake_idx_dir, "t10k-labels-idx1-ubyte.gz"))
    paths = [
        os.path.join(fake_idx_dir, "t10k-labels-idx1-ubyte.gz"),
        os.path.join(fake_idx_dir, "t10k-labels-idx1-ubyte"),
    ]
    message = f"Missing data file: none of {paths} exists."
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


@pytest.mark.parametrize(
    "kind, magic, expected",
    [("images", 2049, 2051), ("labels", 2051, 2049), ("images", 0, 2051)],
)
def test_wrong_magic_number(fake_idx_dir, kind, magic, expected):
    path = os.path.join(fake_idx_dir, _idx_name("train", kind, gz=True))
    array = np.zeros((_NUM_TRAIN, 28, 28) if kind == "images" else _NUM_TRAIN)
    _write_bytes(path, _idx_bytes(array, magic=magic))
    message = (
        f"Wrong magic number in {path!r}: expected {expected}, found {magic}."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_truncated_idx_data(tmp_path):
    folder = _write_fake_idx(tmp_path / "idx", gz=False)
    path = os.path.join(folder, "t10k-images-idx3-ubyte")
    with open(path, "rb") as f:
        data = f.read()
    _write_bytes(path, data[:-10])
    message = (
        f"Truncated IDX file {path!r}: header shape ({_NUM_TEST}, 28, 28) "
        f"needs {_NUM_TEST * 784} bytes of data, found {_NUM_TEST * 784 - 10}."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", folder)


@pytest.mark.parametrize(
    "size, message",
    [
        (2, "2 bytes, no header."),
        (10, "10 bytes, header needs 16."),
    ],
)
def test_truncated_idx_header(fake_idx_dir, size, message):
    path = os.path.join(fake_idx_dir, "train-images-idx3-ubyte.gz")
    _write_bytes(path, _idx_bytes(np.zeros((_NUM_TRAIN, 28, 28)))[:size])
    message = f"Truncated IDX file {path!r}: {message}"
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_idx_trailing_bytes(fake_idx_dir):
    path = os.path.join(fake_idx_dir, "train-labels-idx1-ubyte.gz")
    _write_bytes(path, _idx_bytes(np.zeros(_NUM_TRAIN)) + b"xyz")
    message = (
        f"IDX file {path!r} has 3 bytes after the {_NUM_TRAIN} bytes that "
        f"header shape ({_NUM_TRAIN},) declares."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_truncated_gzip(fake_idx_dir):
    path = os.path.join(fake_idx_dir, "train-images-idx3-ubyte.gz")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    message = f"Truncated gzip file {path!r}: "
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_not_a_gzip_file(fake_idx_dir):
    path = os.path.join(fake_idx_dir, "train-labels-idx1-ubyte.gz")
    with open(path, "wb") as f:
        f.write(_idx_bytes(np.zeros(_NUM_TRAIN)))
    message = f"Cannot read {path!r}: Not a gzipped file"
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_image_and_label_counts_differ(fake_idx_dir):
    labels_path = os.path.join(fake_idx_dir, "train-labels-idx1-ubyte.gz")
    _write_bytes(labels_path, _idx_bytes(np.zeros(_NUM_TRAIN - 1)))
    images_path = os.path.join(fake_idx_dir, "train-images-idx3-ubyte.gz")
    message = (
        f"{images_path!r} has {_NUM_TRAIN} images but {labels_path!r} has "
        f"{_NUM_TRAIN - 1} labels."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_wrong_image_shape(fake_idx_dir):
    path = os.path.join(fake_idx_dir, "train-images-idx3-ubyte.gz")
    _write_bytes(path, _idx_bytes(np.zeros((_NUM_TRAIN, 27, 28))))
    message = (
        f"Dataset 'mnist' from {fake_idx_dir!r}: train images have shape "
        "(27, 28, 1), expected (28, 28, 1)."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


def test_label_out_of_range(fake_idx_dir):
    path = os.path.join(fake_idx_dir, "t10k-labels-idx1-ubyte.gz")
    _write_bytes(path, _idx_bytes(np.arange(_NUM_TEST)))
    message = (
        f"Dataset 'mnist' from {fake_idx_dir!r}: test labels range over "
        f"[0, {_NUM_TEST - 1}], expected [0, 10)."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist", fake_idx_dir)


# CIFAR-10.


def test_cifar_record_is_converted_from_chw_to_hwc(tmp_path):
    _write_fake_cifar(tmp_path, per_batch=2)
    # One crafted record: byte 1 + c * 1024 + h * 32 + w is pixel (h, w, c).
    record = np.arange(3073, dtype=np.int64) % 251
    record[0] = 7
    _write_bytes(
        os.path.join(tmp_path, "test_batch.bin"),
        record.astype(np.uint8).tobytes(),
    )
    splits = datasets.load(
        "cifar10", str(tmp_path), validation_size=0, normalization="none"
    )
    assert splits.test_y.tolist() == [7]
    image = splits.test_x[0]
    assert image.shape == (32, 32, 3)
    assert image[0, 0].tolist() == [1, 1025 % 251, 2049 % 251]
    assert image[0, 1, 0] == 2
    assert image[1, 0, 0] == 33
    assert image[31, 31, 2] == 3072 % 251
    for h, w, c in [(5, 9, 0), (17, 3, 1), (30, 22, 2)]:
        assert image[h, w, c] == (1 + c * 1024 + h * 32 + w) % 251
    assert splits.test_x.flags.c_contiguous


@pytest.mark.parametrize("subfolder", ["", "cifar-10-batches-bin"])
def test_reads_cifar_files(tmp_path, subfolder):
    train_x, train_y, test_x, test_y = _write_fake_cifar(
        os.path.join(tmp_path, subfolder)
    )
    splits = datasets.load(
        "cifar10", str(tmp_path), validation_size=0, normalization="none"
    )
    np.testing.assert_array_equal(splits.train_x, train_x)
    np.testing.assert_array_equal(splits.train_y, train_y)
    np.testing.assert_array_equal(splits.test_x, test_x)
    np.testing.assert_array_equal(splits.test_y, test_y)
    assert splits.input_shape == (32, 32, 3)
    assert splits.num_classes == 10
    assert splits.train_y.dtype == np.int32


@pytest.mark.parametrize("size", [0, 3072, 2 * 3073 + 5])
def test_cifar_file_size_not_multiple_of_record(tmp_path, size):
    _write_fake_cifar(tmp_path)
    path = os.path.join(tmp_path, "data_batch_3.bin")
    _write_bytes(path, bytes(size))
    message = (
        f"CIFAR-10 file {path!r} has {size} bytes, not a positive multiple "
        "of the record size 3073."
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("cifar10", str(tmp_path))


def test_missing_cifar_file(tmp_path):
    _write_fake_cifar(tmp_path)
    os.remove(os.path.join(tmp_path, "data_batch_5.bin"))
    paths = [
        os.path.join(tmp_path, "data_batch_5.bin"),
        os.path.join(tmp_path, "cifar-10-batches-bin", "data_batch_5.bin"),
    ]
    message = f"Missing data file: none of {paths} exists."
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("cifar10", str(tmp_path))


def test_cifar_label_out_of_range(tmp_path):
    _write_fake_cifar(tmp_path)
    images = np.zeros((1, 32, 32, 3), np.uint8)
    _write_bytes(
        os.path.join(tmp_path, "data_batch_2.bin"),
        _cifar_bytes(images, np.array([10])),
    )
    message = r"train labels range over \[\d+, 10\], expected \[0, 10\)\."
    with pytest.raises(readers.DataError, match=message):
        datasets.load("cifar10", str(tmp_path))


# tensorflow_datasets.


def test_tfds_dataset_not_prepared(tmp_path, monkeypatch):
    tfds_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    message = (
        f"TFDS dataset 'mnist' is not prepared in {str(tfds_dir)!r} and is "
        "never downloaded here: run `tfds build mnist`"
    )
    with pytest.raises(readers.DataError, match=re.escape(message)):
        datasets.load("mnist")
    assert not tfds_dir.exists()


class _FakeBuilder:
    """Stands in for a prepared TFDS builder; records how it is called."""

    def __init__(self, splits):
        self.splits = splits
        self.calls = []

    def is_prepared(self):
        return True

    def as_dataset(self, **kwargs):
        import tensorflow as tf  # Only this test needs it.

        self.calls.append(kwargs)
        images, labels = self.splits[kwargs["split"]]
        return tf.constant(images), tf.constant(labels, tf.int64)


def test_tfds_prepared_dataset(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    fake = _FakeBuilder(
        {
            "train": (
                rng.integers(0, 256, (30, 28, 28, 1), np.uint8),
                np.arange(30) % 10,
            ),
            "test": (np.zeros((8, 28, 28, 1), np.uint8), np.arange(8)),
        }
    )
    builder_args = []

    def builder(name, data_dir):
        builder_args.append((name, data_dir))
        return fake

    monkeypatch.setattr(tfds, "builder", builder)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    splits = datasets.load(
        "fashion_mnist", validation_size=5, normalization="none"
    )
    assert builder_args == [("fashion_mnist", str(tmp_path))]
    assert fake.calls == [
        {"split": split, "batch_size": -1, "as_supervised": True}
        for split in ("train", "test")
    ]
    assert splits.train_x.shape == (25, 28, 28, 1)
    assert splits.validation_x.shape == (5, 28, 28, 1)
    assert splits.test_x.shape == (8, 28, 28, 1)
    assert splits.train_x.dtype == np.float32
    assert splits.train_y.dtype == np.int32
    np.testing.assert_array_equal(splits.test_y, np.arange(8))
    np.testing.assert_array_equal(
        np.sort(np.concatenate([splits.train_y, splits.validation_y])),
        np.sort(np.arange(30) % 10),
    )


# MNIST-1D, generated.

# SHA-256 of the official set (seed 42): train_x, train_y, test_x, test_y in
# that order, signals as float32 and labels as int32 bytes.
_MNIST1D_SHA256 = (
    "88f08da0dd64d2d6d06fa706a5ca0cdb81d4d57d67b5468c783c28f431defe26"
)
_MNIST1D_TRAIN_COUNTS = [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
_MNIST1D_TEST_COUNTS = [102, 104, 89, 106, 106, 98, 99, 96, 98, 102]


def _mnist1d_sha256(arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        kind = np.float32 if array.dtype.kind == "f" else np.int32
        digest.update(np.ascontiguousarray(array, kind).tobytes())
    return digest.hexdigest()


def test_mnist1d_is_the_official_set():
    train_x, train_y, test_x, test_y = mnist1d.generate()
    assert train_x.shape == (4000, 40) and test_x.shape == (1000, 40)
    assert np.bincount(train_y).tolist() == _MNIST1D_TRAIN_COUNTS
    assert np.bincount(test_y).tolist() == _MNIST1D_TEST_COUNTS
    assert _mnist1d_sha256((train_x, train_y, test_x, test_y)) == (
        _MNIST1D_SHA256
    )
    assert not train_x.flags.writeable  # cached: nobody may change it


def test_mnist1d_equals_the_packages_make_dataset():
    # The published generator, where installed (it is not a dependency).
    package = pytest.importorskip("mnist1d.data")
    data = package.make_dataset(package.get_dataset_args())
    for ours, theirs in zip(
        mnist1d.generate(42), (data["x"], data["y"], data["x_test"],
                               data["y_test"]), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", [-1, 1.5, True, 2**32])
def test_mnist1d_rejects_bad_seed(seed):
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"`seed` must be an int in [0, 2**32). Received: seed={seed!r}"
        ),
    ):
        mnist1d.generate(seed)


def test_load_mnist1d_splits_and_keeps_values():
    # Generated: no folder and no TFDS needed; values already standardized.
    splits = datasets.load("mnist1d", validation_size=200, seed=0,
                           normalization="none")
    assert splits.train_x.shape == (3800, 40, 1)
    assert splits.validation_x.shape == (200, 40, 1)
    assert splits.test_x.shape == (1000, 40, 1)
    assert splits.input_shape == (40, 1) and splits.num_classes == 10
    assert splits.train_x.dtype == np.float32
    assert splits.train_y.dtype == np.int32
    train_x, _, test_x, test_y = mnist1d.generate()
    np.testing.assert_array_equal(splits.test_x[..., 0],
                                  test_x.astype(np.float32))
    np.testing.assert_array_equal(splits.test_y, test_y)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([splits.train_x, splits.validation_x])[..., 0],
                axis=0),
        np.sort(train_x.astype(np.float32), axis=0),
    )
    standardized = datasets.load("mnist1d", validation_size=0,
                                 normalization="standardize")
    assert abs(standardized.train_x.mean()) < 1e-6


def test_load_mnist1d_refuses_zero_one():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`normalization` 'zero_one' divides 0..255 pixels by 255, but "
            "'mnist1d' holds float64 values: use 'none' or 'standardize'. "
            "Received: normalization='zero_one'"
        ),
    ):
        datasets.load("mnist1d")


def test_npz_reads_arrays_and_a_given_validation_set(tmp_path):
    rng = np.random.default_rng(0)
    splits = {name: (rng.normal(size=(n, 4, 2)).astype(np.float32),
                     rng.integers(0, 3, n)) for name, n in (
        ("train", 50), ("validation", 7), ("test", 9))}
    for name, (x, y) in splits.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
    data = datasets.load("npz", str(tmp_path), 1, normalization="none")
    for name, (x, y) in splits.items():
        assert np.array_equal(getattr(data, f"{name}_x"), x)
        assert np.array_equal(getattr(data, f"{name}_y"), y)
    assert data.num_classes == 3
    os.remove(tmp_path / "validation.npz")  # then held out of train
    data = datasets.load("npz", str(tmp_path), 10, normalization="none")
    assert (len(data.train_y), len(data.validation_y)) == (40, 10)
    np.savez(tmp_path / "test.npz", x=np.zeros((9, 5, 2)), y=np.zeros(9, int))
    with pytest.raises(readers.DataError, match=re.escape(
            "Dataset 'npz' in " f"{str(tmp_path)!r}: train_x's examples have "
            "shape (4, 2) and test_x's (5, 2).")):
        datasets.load("npz", str(tmp_path), 10, normalization="none")


def test_classes_keep_and_relabel(mnist_dir):
    data = datasets.load("mnist", mnist_dir, 1000, classes=(5, 6, 7, 8, 9))
    full = datasets.load("mnist", mnist_dir, 1000)
    assert data.num_classes == 5
    assert sorted(set(data.test_y)) == [0, 1, 2, 3, 4]
    assert np.array_equal(data.test_x, full.test_x[full.test_y >= 5])
    assert np.array_equal(data.test_y, full.test_y[full.test_y >= 5] - 5)
    assert len(data.train_y) + len(data.validation_y) == np.sum(
        np.concatenate([full.train_y, full.validation_y]) >= 5)
    with pytest.raises(ValueError, match=re.escape(
            "`classes` must be distinct labels in [0, 10). Received: "
            "classes=(5, 5)")):
        datasets.load("mnist", mnist_dir, 1000, classes=(5, 5))


def test_generation_seed_draws_another_mnist1d():
    official = datasets.load("mnist1d", "", 200, normalization="none")
    other = datasets.load("mnist1d", "", 200, normalization="none",
                          generation_seed=1)
    assert other.train_x.shape == official.train_x.shape
    assert not np.allclose(other.train_x, official.train_x)
    with pytest.raises(ValueError, match=re.escape(
            "`generation_seed` draws a generated dataset (mnist1d) anew; "
            "'mnist' is read, not generated. Received: generation_seed=1")):
        datasets.load("mnist", "", generation_seed=1)

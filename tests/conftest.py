"""Shared pytest fixtures."""

import os

import pytest
import tensorflow as tf

# Two logical CPU devices, so that MirroredStrategy tests run with two
# replicas on any machine. This must happen before TensorFlow initialises.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    """The real MNIST IDX files in `../shared/data/mnist`; fails if absent."""
    path = os.path.join(_REPO_ROOT, "..", "shared", "data", "mnist")
    if not os.path.isdir(path):
        pytest.fail(f"MNIST test data is missing: {path} is not a folder.")
    return path


# The longest test files (minutes each on the 2-core CI machine), longest
# first. `pytest -n 2 --dist loadfile` hands files to the workers in
# collection order, so these go first: a long file started last would
# keep one worker busy while the other sits idle (the "longest processing
# time first" rule). The rest keep their order.
LONGEST_FIRST = (
    "test_early_study.py", "test_applications.py", "test_structure_study.py",
    "test_studies.py", "test_reliability.py", "test_sparse_compute.py",
    "test_streamed.py", "test_tasks.py", "test_configs.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))

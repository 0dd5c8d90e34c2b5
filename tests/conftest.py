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

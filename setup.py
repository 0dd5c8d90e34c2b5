"""Packaging for keras_lottery."""

import pathlib

import setuptools

setuptools.setup(
    name="keras_lottery",
    version="0.1.0",
    description=(
        "Lottery-ticket pruning (iterative magnitude pruning with rewinding)"
        " for Keras 3 and TensorFlow."
    ),
    long_description=pathlib.Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    # `binaries` and `configs` too: `keras-lottery lottery
    # --config=lenet300_mnist` runs from any folder (README, "Install").
    packages=setuptools.find_packages(
        include=["keras_lottery*", "binaries*", "configs*"]),
    entry_points={
        "console_scripts": ["keras-lottery = binaries.command:main"],
    },
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21",
        "keras>=3.12",
        "absl-py",
        "ml_collections",
        "tensorflow-datasets",
        # tfds 4.9.10 imports it to build a dataset but does not declare it.
        "importlib_resources",
        # [bayesian]: scikit-learn and scipy, for the Bayesian tuner.
        "keras-tuner[bayesian]",
        # keras-tuner needs it (every trial fails without it, quietly).
        "tensorboard",
        "matplotlib",
        "numpy",
        # keras_lottery.data.mnist1d: MNIST-1D's filter and interpolation.
        "scipy",
        # The models users bring: KerasHub's backbones (built from their
        # constructors; presets are never downloaded by keras_lottery).
        "keras-hub>=0.32",
        # TensorFlow Lite's interpreter: TF 2.21 points tf.lite to it.
        "ai-edge-litert",
        # keras_lottery.studies: a study's runs as Ray tasks, on this
        # machine or a cluster (docs/STUDIES.md); the slim package.
        "ray",
        # The live progress display of `keras-lottery study`.
        "rich",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist"],
        # Optional: tfmot 0.8.1 rejects Keras 3 models, pins tf_keras and
        # absl-py~=1.2, and importing it switches tf.keras to Keras 2. Used
        # only by benchmarks/tfmot_baseline.py, in its own process.
        "tfmot": ["tensorflow-model-optimization", "tf-keras"],
    },
)

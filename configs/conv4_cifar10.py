r"""Conv-4 on CIFAR-10, as in Frankle & Carbin (ICLR 2019), Figure 2.

Adam 3e-4, batch 60, 25,000 iterations per round; layerwise pruning
of 10% of the conv weights and 20% of the fully-connected weights per
round (10% for the output layer); 5,000 validation examples held out of
training, evaluation every 100 iterations, rewinding to initialisation.
Pixels are standardized per channel; there is no data augmentation.

Run offline, from the repository root, on the binary version of CIFAR-10:

  python -m binaries.lottery --config=configs/conv4_cifar10.py \
      --config.data.dir=/path/to/cifar-10-batches-bin --workdir=/tmp/conv4

Without `--config.data.dir` it reads tensorflow_datasets (prepared with
`tfds build cifar10`). Smoke run (under a minute):
`--config=configs/conv4_cifar10.py:smoke`.
"""

import ml_collections

from configs import base


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = base.get_defaults("cifar10", "conv4")
    config.train.num_steps = 25_000
    config.train.learning_rate = 3e-4
    config.prune.conv_fraction_per_round = 0.1
    if arg == "smoke":
        base.shrink_for_smoke(config)
    return config

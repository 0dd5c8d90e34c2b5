r"""Conv-2 on MNIST: Frankle & Carbin's Conv-2 on 28x28x1 digits.

Two 3x3 convolutions of 64 filters, a 2x2 max pool, then fully-connected
256, 256, 10 (Frankle & Carbin, ICLR 2019, Figure 2), with their Conv-2
hyperparameters: Adam 2e-4, batch 60, 20,000 iterations per round;
layerwise pruning of 10% of the conv weights and 20% of the fully-connected
weights per round (10% for the output layer); 5,000 validation examples,
evaluation every 100 iterations, rewinding to initialisation. CIFAR-10
cannot be read offline here, so filters and channels are studied on MNIST.

Run offline, from the repository root, on the raw IDX files:

  python -m binaries.lottery --config=configs/conv2_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/conv2_mnist

Filters instead of weights (fully-connected layers by neuron, the output
layer by weight):

  python -m binaries.lottery --config=configs/conv2_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/conv2_filters \
      --config.prune.granularity=neuron --config.prune.conv_granularity=filter

Smoke run (well under a minute): `--config=configs/conv2_mnist.py:smoke`.
"""

import ml_collections

from configs import base
from configs import conv2_cifar10


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    config = conv2_cifar10.get_config(arg)  # the paper's Conv-2 recipe
    mnist = base.get_defaults("mnist", "conv2").data
    config.data.name = mnist.name
    config.data.normalization = mnist.normalization
    return config

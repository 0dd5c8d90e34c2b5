r"""The MNIST-1D CNN of Greydanus (2020), with lottery-ticket pruning.

The paper's CNN (the repository's `ConvBase`: three ReLU convs of 25
channels, kernels 5, 3, 3, stride 2, then the logits layer), with PyTorch's
default init, trained as the repository's `train.py` trains it: Adam 1e-2,
batch 100, 6,000 steps. The repository's README gives it 94% test accuracy,
dense; docs/RESULTS_MNIST1D.md checks this config's dense round against
it.
Pruning follows Frankle & Carbin (20% per round, 10% for the output
layer, rewinding to initialisation); 200 of the 4,000 training examples
are held out for early stopping. MNIST-1D is generated (the official
seed-42 set, no files).

Run:

  python -m binaries.lottery --config=configs/mnist1d_cnn.py \
      --workdir=/tmp/mnist1d_cnn

The dense network only: add `--config.prune.num_rounds=0`. Smoke run
(seconds): `--config=configs/mnist1d_cnn.py:smoke`.
"""

import ml_collections

from configs import base
from configs import mnist1d_mlp


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = mnist1d_mlp.full_config("mnist1d_cnn")
    if arg == "smoke":
        mnist1d_mlp.shrink_for_smoke(config)
    return config

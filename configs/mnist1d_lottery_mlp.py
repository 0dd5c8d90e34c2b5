r"""The MNIST-1D lottery-ticket notebook's residual MLP (Greydanus, 2020).

The 40-500-500-10 MLP of `notebooks/5. lottery_tickets.ipynb`
(`h = relu(fc1(x)); h = h + relu(fc2(h))`, PyTorch's default init), Adam
2e-2, batch 100, 1,501 steps per round, evaluation every 100 steps;
layerwise magnitude pruning of every layer's weights and biases at one rate,
rewinding to initialisation. MNIST-1D is generated (the official seed-42
set, no files). Where it differs from the notebook, and why
(docs/RESULTS_MNIST1D.md): 20% of the remaining weights per round
(geometric, 10 rounds to 89% sparsity) instead of 1% of the layer per
round (linear, 90 rounds); each weight tensor pruned on its own instead of
kernel and bias ranked together; 200 of the 4,000 training examples held
out for early stopping; batches shuffled every epoch.

Run:

  python -m binaries.lottery --config=configs/mnist1d_lottery_mlp.py \
      --workdir=/tmp/mnist1d_lottery_mlp

The notebook's random-mask baseline is the random-prune control:

  python -m binaries.controls --workdir=/tmp/mnist1d_lottery_mlp \
      --control=random_prune

Smoke run (seconds): `--config=configs/mnist1d_lottery_mlp.py:smoke`.
"""

import ml_collections

from configs import base
from configs import mnist1d_mlp


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = mnist1d_mlp.full_config("mnist1d_lottery_mlp")
    config.train.num_steps = 1501
    config.train.learning_rate = 2e-2
    config.train.checkpoint_every_steps = 500
    # The notebook prunes every layer, the output too, at one rate.
    config.prune.output_fraction_per_round = 0.2
    if arg == "smoke":
        mnist1d_mlp.shrink_for_smoke(config)
    return config

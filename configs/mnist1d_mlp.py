r"""The MNIST-1D MLP of Greydanus (2020), with lottery-ticket pruning.

The paper's MLP (the repository's `MLPBase`: 40-100-100-10,
`h = relu(fc1(x)); h = h + relu(fc2(h))`), with PyTorch's default init,
trained as the repository's `train.py` trains it: Adam 1e-2, batch 100,
6,000 steps. The repository's README gives it 68% test accuracy, dense;
docs/RESULTS_MNIST1D.md checks this config's dense round against it.
Pruning follows Frankle & Carbin (20% per round, 10% for the output
layer, rewinding to initialisation); 200 of the 4,000 training examples
are held out for early stopping. MNIST-1D is generated (the official
seed-42 set, no files).

Run:

  python -m binaries.lottery --config=configs/mnist1d_mlp.py \
      --workdir=/tmp/mnist1d_mlp

The dense network only: add `--config.prune.num_rounds=0`. Smoke run
(seconds): `--config=configs/mnist1d_mlp.py:smoke`.
"""

import ml_collections

from configs import base


def full_config(model_name: str = "mnist1d_mlp") -> ml_collections.ConfigDict:
    """The full-size config for `model_name`, which the MNIST-1D configs share.
    """
    config = base.get_defaults("mnist1d", model_name)
    config.data.validation_size = 200
    config.train.batch_size = 100
    config.train.num_steps = 6000
    config.train.learning_rate = 1e-2
    config.eval.batch_size = 1000
    config.prune.num_rounds = 10
    return config


def shrink_for_smoke(config: ml_collections.ConfigDict) -> None:
    """Shrinks an MNIST-1D config in place into a run of seconds."""
    base.shrink_for_smoke(
        config, num_steps=100, batch_size=100, validation_size=200,
        num_rounds=2, every_steps=50, steps_per_loop=50)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = full_config()
    if arg == "smoke":
        shrink_for_smoke(config)
    return config

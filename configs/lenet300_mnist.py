r"""LeNet-300-100 on MNIST, as in Frankle & Carbin (ICLR 2019).

Adam 1.2e-3, batch 60, 50,000 iterations per round, layerwise pruning of 20%
per round (10% for the output layer), 5,000 validation examples held out of
training, evaluation every 100 iterations, rewinding to initialisation.

Run (tensorflow_datasets, prepared with `tfds build mnist`):

  python -m binaries.lottery --config=configs/lenet300_mnist.py \
      --workdir=/tmp/lenet300

Offline, on the raw IDX files:

  python -m binaries.lottery --config=configs/lenet300_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/lenet300

Smoke run (under a minute): `--config=configs/lenet300_mnist.py:smoke`.
"""

import ml_collections

from configs import base


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = base.get_defaults("mnist", "lenet_300_100")
    config.train.num_steps = 50000
    config.train.learning_rate = 1.2e-3

    # The search of `python -m binaries.tune` (docs/TUNING.md).
    config.tune = ml_collections.ConfigDict()
    # sparsest_winning_ticket (min) | accuracy_at_sparsity (max)
    config.tune.objective = "sparsest_winning_ticket"
    # A round wins: test accuracy >= the dense one's minus this.
    config.tune.accuracy_tolerance = 0.0
    config.tune.max_remaining_fraction = 0.05  # for accuracy_at_sparsity
    config.tune.seed = 1  # the oracle's, at least 1
    config.tune.max_consecutive_failed_trials = 3
    config.tune.num_initial_trials = 5  # bayesian: random trials first
    config.tune.hyperband_factor = 3  # hyperband's budget: pruning rounds
    # Name -> range: float/int (min_value, max_value, step, sampling:
    # linear | log | reverse_log) or choice (choices).
    config.tune.space = ml_collections.ConfigDict({
        "fraction_per_round": {
            "type": "float", "min_value": 0.1, "max_value": 0.6},
        "output_fraction_per_round": {
            "type": "float", "min_value": 0.0, "max_value": 0.3},
        "scope": {"type": "choice", "choices": ("layerwise", "global")},
        "rewind_step": {
            "type": "int", "min_value": 0, "max_value": 2000, "step": 500},
        "learning_rate": {
            "type": "float", "min_value": 3e-4, "max_value": 3e-3,
            "sampling": "log"},
    })
    if arg == "smoke":
        base.shrink_for_smoke(
            config, num_steps=300, batch_size=60, validation_size=1000,
            num_rounds=3, every_steps=100, steps_per_loop=50,
            jit_compile=True)
        config.tune.space.rewind_step.max_value = 50
        config.tune.space.rewind_step.step = 50
    return config

r"""A small Vision Transformer on MNIST, for the transformer structure study.

`vit_tiny` (keras_lottery/models/vit.py): 7x7 patches (16 tokens and a
class token), hidden size 64, 4 heads, 4 pre-norm blocks, MLP 128; about
139,000 parameters. AdamW (learning rate 1e-3, decoupled weight decay
1e-4), 500 warmup steps then cosine decay, batch 128, 10,000 steps per
round; layerwise pruning of 20% per round (10% for the output layer), as
the structure study prunes LeNet and Conv-2; 5,000 validation examples,
evaluation every 250 steps, the test set only where validation improves.
Rewinding to initialisation unless `prune.rewind_step` says otherwise.

Run offline, from the repository root, on the raw IDX files:

  python -m binaries.lottery --config=configs/vit_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/vit_mnist

Attention heads instead of weights (a head's query, key, value and output
slices together; the patch embedding keeps its weights):

  python -m binaries.lottery --config=configs/vit_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/vit_heads \
      --config.prune.granularity=head --config.prune.conv_fraction_per_round=0

Smoke run (well under a minute): `--config=configs/vit_mnist.py:smoke`.
"""

import ml_collections

from configs import base


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = base.get_defaults("mnist", "vit_tiny")
    config.train.batch_size = 128
    config.train.num_steps = 10000
    config.train.optimizer = "adamw"
    config.train.learning_rate = 1e-3
    config.train.weight_decay = 1e-4
    config.train.schedule = "cosine"
    config.train.warmup_steps = 500
    config.train.steps_per_loop = 250
    config.eval.every_steps = 250
    config.eval.batch_size = 1000
    config.eval.test_at = "best"
    config.prune.num_rounds = 11  # 0.8^11 = 8.6% of the weights left
    if arg == "smoke":
        base.shrink_for_smoke(
            config, num_steps=60, batch_size=32, validation_size=200,
            num_rounds=2, every_steps=20, steps_per_loop=20)
    return config

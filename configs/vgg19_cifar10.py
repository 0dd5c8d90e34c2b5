r"""VGG-19 on CIFAR-10, with late rewinding (Frankle et al., 2019).

The VGG-19 recipe of Frankle & Carbin (ICLR 2019), Section 4 and Figure 2:
SGD with momentum 0.9, batch 64, 112,480 iterations per round (160 epochs of
the 45,000 training examples left after the 5,000 validation ones), the rate
0.1 after a linear warmup over 10,000 iterations and divided by 10 at
iterations 56,240 and 84,360 (epochs 80 and 120), weight decay 1e-4, global
pruning of 20% of the remaining weights per round. Rewinding goes to
iteration 1,000 of the dense run instead of to initialisation, as
"Stabilizing the Lottery Ticket Hypothesis" (Frankle, Dziugaite, Roy &
Carbin, 2019) proposes. Pixels are standardized per channel, and each
training batch is augmented as the paper's code (open_lth) does: padded by
4 pixels, randomly cropped back to 32x32 and flipped left-right with
probability 1/2 (`data.augment="crop_flip"`).

The weight decay is an L2 term in the loss (`model.weight_decay`), since
the momentum optimizer here has no decoupled decay: SGD's weight decay `d`
adds `d * w` to the gradient, which is the gradient of `(d / 2) * w**2`, so
`model.weight_decay` is `1e-4 / 2`.

Run offline, from the repository root, on the binary version of CIFAR-10:

  python -m binaries.lottery --config=configs/vgg19_cifar10.py \
      --config.data.dir=/path/to/cifar-10-batches-bin --workdir=/tmp/vgg19

Without `--config.data.dir` it reads tensorflow_datasets (prepared with
`tfds build cifar10`). Smoke run (under a minute):
`--config=configs/vgg19_cifar10.py:smoke`.
"""

import ml_collections

from configs import base


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    base.check_variant(arg)
    config = base.get_defaults("cifar10", "vgg19")
    config.model.weight_decay = 1e-4 / 2
    config.train.batch_size = 64
    config.train.num_steps = 112_480
    config.train.optimizer = "momentum"
    config.train.learning_rate = 0.1
    config.train.schedule = "step"
    config.train.warmup_steps = 10_000
    config.train.decay_steps = (56_240, 84_360)
    config.eval.every_steps = 1000
    config.prune.scope = "global"
    config.prune.rewind_step = 1000
    config.data.augment = "crop_flip"
    if arg == "smoke":
        # Half the usual smoke run: 20M weights make each step and each
        # round's model file (300 MB) slow on a CPU.
        base.shrink_for_smoke(
            config, num_steps=10, batch_size=8, every_steps=5, steps_per_loop=5
        )
    return config

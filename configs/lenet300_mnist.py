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


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    """Returns the config; `arg == "smoke"` shrinks it for tests."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Turns on tf.config.experimental.enable_op_determinism().
    config.deterministic = False

    config.data = ml_collections.ConfigDict()
    config.data.name = "mnist"
    config.data.dir = ""  # "" reads tensorflow_datasets; else raw files
    config.data.validation_size = 5000
    config.data.normalization = "zero_one"

    config.model = ml_collections.ConfigDict()
    config.model.name = "lenet_300_100"
    config.model.weight_decay = 0.0

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 60
    config.train.num_steps = 50000
    config.train.optimizer = "adam"  # sgd | momentum | adam | adamw
    config.train.learning_rate = 1.2e-3
    config.train.momentum = 0.9  # for optimizer=momentum
    config.train.weight_decay = 0.0  # decoupled, for optimizer=adamw
    config.train.schedule = "constant"  # constant | step
    config.train.warmup_steps = 0
    config.train.decay_steps = ()  # steps at which the rate is multiplied
    config.train.decay_factor = 0.1
    config.train.steps_per_loop = 100
    config.train.jit_compile = True
    config.train.strategy = "default"
    config.train.tpu = ""  # TPU name or address, for strategy=tpu
    config.train.checkpoint_every_steps = 5000

    config.eval = ml_collections.ConfigDict()
    config.eval.every_steps = 100
    config.eval.batch_size = 5000

    config.prune = ml_collections.ConfigDict()
    config.prune.mode = "iterative"  # iterative | one_shot
    config.prune.method = "magnitude"
    config.prune.scope = "layerwise"  # layerwise | global
    config.prune.fraction_per_round = 0.2
    config.prune.output_fraction_per_round = 0.1  # layerwise only
    config.prune.num_rounds = 18  # rounds after the dense round 0
    config.prune.rewind_step = 0  # k > 0: late rewinding to step k

    config.export = ml_collections.ConfigDict()
    config.export.enabled = True

    if arg == "smoke":
        config.data.validation_size = 1000
        config.train.num_steps = 300
        config.train.steps_per_loop = 50
        config.train.checkpoint_every_steps = 100
        config.eval.every_steps = 100
        config.prune.num_rounds = 3
    elif arg:
        raise ValueError(
            f"Unknown config variant. Received: {arg!r}; known: 'smoke'"
        )
    return config

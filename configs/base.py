"""What every config shares: the full schema, its defaults, and `smoke`.

Not a config to run. Each `configs/<model>_<dataset>.py` starts from
`get_defaults(...)` and overrides the fields its paper sets; every field is
documented here, once. The defaults are the settings Frankle & Carbin (ICLR
2019) share across LeNet and Conv-2/4/6 (batch 60, Adam, 5,000 validation
examples, evaluation every 100 iterations, layerwise pruning of 20% per round
with 10% for the output layer, rewinding to initialisation).

Configs import this module as `configs.base`, so run them from the repository
root (as the commands in their docstrings do).
"""

import ml_collections
from ml_collections import config_dict

VARIANTS = ("smoke",)

# Pixel scaling per dataset, as the papers train on it.
_NORMALIZATIONS = {
    "mnist": "zero_one",
    "fashion_mnist": "zero_one",
    "cifar10": "standardize",
    # Generated already standardized over the whole set, as published.
    "mnist1d": "none",
    "npz": "none",  # arrays of one's own (keras_lottery.datasets)
}


def get_defaults(data_name: str, model_name: str) -> ml_collections.ConfigDict:
    """Returns the full schema with shared defaults, unlocked.

    `train.learning_rate` and `train.num_steps` have no default: every
    config must set them (reading them unset raises `RequiredValueError`).

    Args:
        data_name: the dataset, a name `keras_lottery.datasets` knows or
            the import path of a loader, `"package.module:function"`.
        model_name: the network, a name `keras_lottery.models` knows or
            the import path of a builder.

    Raises:
        ValueError: for a dataset with no normalization here.
    """
    if data_name not in _NORMALIZATIONS and ":" not in data_name:
        raise ValueError(
            f"`data_name` must be one of {sorted(_NORMALIZATIONS)}. "
            f"Received: data_name={data_name!r}"
        )
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Turns on tf.config.experimental.enable_op_determinism().
    config.deterministic = False

    config.data = ml_collections.ConfigDict()
    config.data.name = data_name
    config.data.dir = ""  # "" reads tensorflow_datasets; else raw files
    config.data.validation_size = 5000
    # A loader of one's own (an import path) returns values to train on.
    config.data.normalization = _NORMALIZATIONS.get(data_name, "none")
    # The labels to keep, relabelled 0, 1, ... in this order; () keeps all.
    # (5, 6, 7, 8, 9): MNIST's digits 5-9 as a 5-class task.
    config.data.classes = ()
    # Draws a generated dataset (mnist1d) anew; 42 is the official set.
    config.data.generation_seed = 42
    # A loader's streamed training set (tf.data.Dataset): the examples each
    # epoch permutes together, in seeded blocks (keras_lottery.engine.
    # streaming).
    config.data.shuffle_buffer = 10000
    # What is done to each training batch (keras_lottery/engine/augment.py):
    # none | crop_flip (pad 4, random crop, random left-right flip) |
    # "package.module:function" of (x, y, seed), seeded by the step.
    config.data.augment = "none"
    # data.name="tfds:NAME" (a prepared tfds dataset in data.dir, streamed):
    # the tfds split strings of each set, e.g. "train[:90%]"; an empty
    # validation split holds out the first validation_size training examples.
    config.data.train_split = "train"
    config.data.test_split = "test"
    config.data.validation_split = ""

    config.model = ml_collections.ConfigDict()
    config.model.name = model_name
    config.model.weight_decay = 0.0  # L2 factor on kernels, in the loss

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 60
    config.train.num_steps = config_dict.required_placeholder(int)
    config.train.optimizer = "adam"  # sgd | momentum | adam | adamw
    config.train.learning_rate = config_dict.required_placeholder(float)
    config.train.momentum = 0.9  # for optimizer=momentum
    config.train.weight_decay = 0.0  # decoupled, for optimizer=adamw
    config.train.schedule = "constant"  # constant | step | cosine
    # Any Keras optimizer, serialised (`keras.optimizers.serialize`) with
    # its learning-rate schedule; None: the fields above make one. Set by
    # `run_experiment(optimizer=...)`; when set, it replaces optimizer,
    # learning_rate, momentum, weight_decay and the schedule fields. Each
    # round deserialises a fresh copy, whose schedule counts its steps.
    config.train.keras_optimizer = ml_collections.FieldReference(
        None, field_type=object)
    # The loss (keras_lottery/engine/tasks.py): a Keras loss name ("mse",
    # "binary_crossentropy"; the cross-entropies read logits), an import
    # path "package.module:function" of (y_true, y_pred), or a serialised
    # Keras loss (set by `run_experiment(loss=...)`). Sparse categorical
    # cross-entropy takes integer labels; any other loss takes targets of
    # any shape.
    config.train.loss = ml_collections.FieldReference(
        "sparse_categorical_crossentropy", field_type=object)
    # The dtype policy the network is built under (keras_lottery/engine/
    # precision.py): float32 | mixed_bfloat16 | mixed_float16 (with a loss
    # scale). Masks and rewind points stay float32 in every precision.
    config.train.precision = "float32"
    config.train.warmup_steps = 0
    config.train.decay_steps = ()  # steps at which the rate is multiplied
    config.train.decay_factor = 0.1
    config.train.steps_per_loop = 100
    config.train.jit_compile = True
    # How each round's steps run (keras_lottery.engine.sparse_compute): "auto"
    # trains a Dense-chain ticket on its live weights only where that is
    # faster, "off" always on the dense kernels, "compact" or "sparse" on
    # that path. The same training up to the order of float sums.
    config.train.sparse_compute = "auto"
    config.train.strategy = "default"
    config.train.tpu = ""  # TPU name or address, for strategy=tpu
    config.train.checkpoint_every_steps = 5000

    config.eval = ml_collections.ConfigDict()
    config.eval.every_steps = 100
    config.eval.batch_size = 5000
    # When the test set is evaluated: "every" evaluation, or "best": only
    # where the validation loss reaches a new minimum, and at the end. Both
    # give the same early-stop and final test accuracies; "best" skips most
    # test passes (LeNet-300-100 on MNIST: 2/3 of the evaluation compute).
    config.eval.test_at = "every"
    # Keras metric names each evaluation reports ("accuracy", "mae", "auc",
    # "binary_accuracy", ...), as validation_<name> and test_<name>.
    config.eval.metrics = ("accuracy",)
    # What early stopping keeps the best of: "val_loss" or "val_<metric>",
    # in the direction eval.monitor_mode says (auto | min | max; auto: the
    # metric's own). A ticket wins when it is at least as good as the dense
    # network on the monitored test metric (the first of eval.metrics when
    # the loss is monitored) with no later early stop.
    config.eval.monitor = "val_loss"
    config.eval.monitor_mode = "auto"

    config.prune = ml_collections.ConfigDict()
    config.prune.mode = "iterative"  # iterative | one_shot
    # The criterion that scores (keras_lottery.criteria): magnitude |
    # gradient | activation | apoz | random | snip | grasp | synflow.
    config.prune.method = "magnitude"
    # What is pruned: weight | neuron (Dense units) | filter | channel
    # (conv) | "m:n" such as "2:4" (at most m of n consecutive inputs).
    config.prune.granularity = "weight"
    # Conv layers' granularity; None: granularity.
    config.prune.conv_granularity = config_dict.placeholder(str)
    # The output layer's: pruning its neurons would remove classes.
    config.prune.output_granularity = "weight"
    # Training batches the gradient, activation and apoz criteria read.
    config.prune.score_batches = 10
    config.prune.scope = "layerwise"  # layerwise | global
    config.prune.fraction_per_round = 0.2
    config.prune.output_fraction_per_round = 0.1  # layerwise only
    # Conv layers' rate, layerwise only; None: fraction_per_round.
    config.prune.conv_fraction_per_round = config_dict.placeholder(float)
    config.prune.num_rounds = 18  # rounds after the dense round 0
    # Layers never pruned (layerwise scope), e.g. ("patch_embed",): rate 0
    # and weight granularity, whatever the fields above say.
    config.prune.dense_layers = ()
    # one_shot mode: the rounds (sparsities) to train after round 0, each
    # pruned straight from the dense weights; () trains every round.
    config.prune.one_shot_rounds = ()
    # k > 0: late rewinding to step k; "auto": the smallest stable step of
    # auto_rewind_steps, found before round 0 (keras_lottery/rewind_search).
    config.prune.rewind_step = ml_collections.FieldReference(
        0, field_type=object)  # an int or "auto"
    config.prune.auto_rewind_steps = (0, 100, 500, 2000)
    # one_shot mode: prune each round at initialisation (W0, or Wk for
    # rewind_step k) instead of from the trained dense round 0, e.g. with
    # method snip | grasp | synflow (keras_lottery/pruning/at_init.py).
    config.prune.at_init = False
    # Early-bird rounds (iterative mode; keras_lottery/lottery/early_bird):
    # every every_steps steps, the mask the next pruning would make; a
    # round ends once the last `window` such masks are all within
    # `threshold` (normalised Hamming distance) of the newest.
    config.prune.early_bird = ml_collections.ConfigDict()
    config.prune.early_bird.enabled = False
    config.prune.early_bird.every_steps = 1000
    config.prune.early_bird.threshold = 0.1
    config.prune.early_bird.window = 5

    config.export = ml_collections.ConfigDict()
    config.export.enabled = True
    return config


def check_variant(arg: str) -> None:
    """Raises ValueError unless `arg` is "" or one of `VARIANTS`."""
    if arg and arg not in VARIANTS:
        raise ValueError(
            f"Unknown config variant. Received: {arg!r}; known: "
            f"{', '.join(map(repr, VARIANTS))}"
        )


def shrink_for_smoke(
    config: ml_collections.ConfigDict,
    *,
    num_steps: int = 20,
    batch_size: int = 16,
    validation_size: int = 100,
    num_rounds: int = 2,
    every_steps: int = 10,
    steps_per_loop: int = 10,
    jit_compile: bool = False,
) -> None:
    """Shrinks `config` in place into a run of seconds, for tests.

    The defaults fit a CIFAR-10 folder of a few hundred examples. Every
    step-valued field that is not set here scales with `num_steps` (warmup,
    decay steps, the rewind step and the steps the rewind search tries,
    early-bird's check interval), so a smoke run still warms up, decays,
    rewinds late (to step 1 at least) and checks early-bird masks.

    Args:
        config: a full config, unlocked.
        num_steps: training steps per round.
        batch_size: the training batch.
        validation_size: examples held out for early stopping.
        num_rounds: pruning rounds after the dense round 0.
        every_steps: evaluation and checkpoint interval, in steps.
        steps_per_loop: steps per `tf.function` call.
        jit_compile: XLA-compile the steps. Off by default: on a CPU,
            compiling a conv net's steps takes longer than a smoke run's
            few steps save (VGG-19: over 5 minutes instead of 2).
    """
    scale = num_steps / config.train.num_steps
    config.train.warmup_steps = round(config.train.warmup_steps * scale)
    config.train.decay_steps = tuple(
        round(step * scale) for step in config.train.decay_steps
    )
    if isinstance(config.prune.rewind_step, int) and (
            config.prune.rewind_step):
        config.prune.rewind_step = max(
            1, round(config.prune.rewind_step * scale)
        )
    # Steps past the run's end (a config whose search list outruns its
    # own num_steps) are left out.
    config.prune.auto_rewind_steps = tuple(sorted({
        round(step * scale) for step in config.prune.auto_rewind_steps
        if round(step * scale) < num_steps})) or (0,)
    config.prune.early_bird.every_steps = max(
        1, round(config.prune.early_bird.every_steps * scale))
    config.train.num_steps = num_steps
    config.train.batch_size = batch_size
    config.train.steps_per_loop = steps_per_loop
    config.train.jit_compile = jit_compile
    config.train.checkpoint_every_steps = every_steps
    config.data.validation_size = validation_size
    config.eval.every_steps = every_steps
    config.prune.num_rounds = num_rounds

"""The training engine: a custom loop under any `tf.distribute` strategy.

Several steps run per `tf.function` call (`steps_per_loop`), each step
XLA-compiled where the device supports it (`jit_compile`). The trainer
zeroes pruned weights once, then multiplies every gradient by its mask
(`masking.masked_gradients`), so pruned weights stay exactly 0 under every
optimizer here (a zero gradient moves no SGD, momentum or Adam state;
decoupled weight decay shrinks 0 to 0), and the forward pass skips the
`weight * mask` product that layers compute under plain `model.fit`. The
loop never assigns a mask.

The data order is a pure function of (seed, step): epoch e is a stateless
shuffle seeded by (seed, e), so a run resumed at step s sees the same
batches as an uninterrupted one, with no iterator state to checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

# Public TensorFlow can turn op determinism on but not ask or turn it off.
from tensorflow.python.framework import config as _tf_config

from keras_lottery import masking
from keras_lottery import wrapping

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored",
              "tpu")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "step")
_BATCHES_PER_GATHER = 16


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """Deterministic kernels within the context when `enabled`.

    TensorFlow's switch is process-wide; the previous setting comes back on
    exit, so one deterministic run does not change the numerics of what the
    process runs next (another run, a test, the user's own training).
    """
    before = _tf_config.is_op_determinism_enabled()
    if enabled and not before:
        _tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not before:
            _tf_config.disable_op_determinism()


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy called `name`.

    One strategy per name in a process: two MirroredStrategy objects over
    the same devices can collide in their collective-op instance keys, and
    a TPU system is initialised once.

    Args:
        name: one of `STRATEGIES`. `mirrored` uses every GPU, or every
            logical CPU device when there is no GPU.
        tpu: the TPU name or address for `name="tpu"` ("" for local).

    Raises:
        ValueError: for an unknown name.
    """
    _check_choice("train.strategy", name, STRATEGIES)
    return _strategy(name, tpu)


@functools.cache
def _strategy(name: str, tpu: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker_mirrored":
        # First: listing devices starts TensorFlow, and collective ops must
        # be configured before it starts (keras_lottery.distributed).
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(
            gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def supports_jit(strategy: tf.distribute.Strategy) -> bool:
    """Whether XLA can compile a step under `strategy`.

    XLA places a compiled step on one device; replicas on accelerators each
    compile their own, but several logical CPU devices share one XLA CPU
    device and their mirrored variables cannot be reached from it.
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    devices = strategy.extended.worker_devices
    return all(
        "GPU" in d.upper() or "TPU" in d.upper() for d in devices)


class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then the rate times `factor` at each decay step."""

    def __init__(self, rate: float, warmup_steps: int,
                 decay_steps: Sequence[int], factor: float):
        self.rate = rate
        self.warmup_steps = warmup_steps
        self.decay_steps = tuple(int(s) for s in decay_steps)
        self.factor = factor

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.rate, tf.float32)
        for boundary in self.decay_steps:
            rate = tf.where(step >= boundary, rate * self.factor, rate)
        if self.warmup_steps:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {
            "rate": self.rate, "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps, "factor": self.factor}


def make_optimizer(train) -> keras.optimizers.Optimizer:
    """Returns a fresh optimizer for the `train` section of a config."""
    _check_choice("train.optimizer", train.optimizer, OPTIMIZERS)
    _check_choice("train.schedule", train.schedule, SCHEDULES)
    decay = tuple(train.decay_steps) if train.schedule == "step" else ()
    rate = _Schedule(train.learning_rate, train.warmup_steps, decay,
                     train.decay_factor)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate)
    if train.optimizer == "momentum":
        return keras.optimizers.SGD(rate, momentum=train.momentum)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay)


def train_dataset(x: np.ndarray | tf.Tensor, y: np.ndarray | tf.Tensor,
                  batch_size: int, seed: int,
                  start_step: int = 0) -> tf.data.Dataset:
    """Batches of `(x, y)` forever, reshuffled each epoch, from `start_step`.

    Epoch `e` visits a stateless shuffle of the examples seeded by
    `(seed, e)`, in `len(x) // batch_size` batches (the remainder is left
    out of that epoch). The batch at step `s` depends only on `(seed, s)`.
    Pass tensors (`tf.convert_to_tensor`) made once when building several
    datasets of the same data: NumPy arrays are copied into each dataset.
    """
    n = len(x)
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(
            "`train.batch_size` must not exceed the training set size "
            f"({n}). Received: train.batch_size={batch_size}"
        )
    first_epoch, skip = divmod(start_step, per_epoch)
    images = tf.convert_to_tensor(x)
    labels = tf.convert_to_tensor(y)

    def epoch(e):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64),
            seed=tf.stack([tf.cast(seed, tf.int64), e]))
        order = tf.reshape(order[: per_epoch * batch_size],
                           [per_epoch, batch_size])
        return tf.data.Dataset.from_tensor_slices(order)

    return (
        tf.data.Dataset.range(first_epoch, 2**62)
        .flat_map(epoch)
        .skip(skip)
        # Gathers a few batches per call: one op dispatch each, not per
        # batch, leaves more of the CPU to training.
        .batch(_BATCHES_PER_GATHER)
        .map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .unbatch()
        .prefetch(tf.data.AUTOTUNE)
        .with_options(_data_options())
    )


@dataclasses.dataclass
class EvalResult:
    loss: float
    accuracy: float


class Trainer:
    """Trains and evaluates one model under one strategy.

    Build the model (and call `keras_lottery.wrap`) under
    `strategy.scope()` before creating the trainer; the trainer creates its
    optimizer there too. Create a new trainer (a fresh optimizer) for each
    round, as the paper does.

    Args:
        model: the model; outputs logits.
        strategy: the `tf.distribute` strategy the model was built under.
        optimizer: a fresh Keras optimizer, made under `strategy.scope()`.
        batch_size: the global batch size.
        jit_compile: XLA-compile the step.
        steps_per_loop: steps per `tf.function` call; `train` runs a
            multiple of it.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy,
                 optimizer: keras.optimizers.Optimizer, batch_size: int,
                 jit_compile: bool = True, steps_per_loop: int = 100):
        self.model = model
        self.strategy = strategy
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.steps_per_loop = steps_per_loop
        with strategy.scope():
            optimizer.build(model.trainable_variables)
        # Pruned weights are zeroed once here and their gradients masked in
        # every step (`masking.masked_gradients`), so they stay exactly 0.
        for wrapper in wrapping.wrapped_layers(model):
            for variable, mask in wrapper.masked_pairs():
                variable.assign(variable.value * mask.value)
        if jit_compile and not supports_jit(strategy):
            logging.info("XLA off: it cannot run one step over several CPU "
                         "devices.")
            jit_compile = False
        self.jit_compile = jit_compile
        self._step_fn = tf.function(self._step, jit_compile=jit_compile)
        self._loop_fn = tf.function(self._loop)
        self._eval_step = tf.function(self._eval_batch,
                                      jit_compile=jit_compile)
        self._eval_fn = tf.function(self._eval_loop)
        self._iterator = None
        self._iterator_step = None

    @property
    def step(self) -> int:
        """The number of optimizer steps taken (the optimizer's counter)."""
        return int(self.optimizer.iterations.numpy())

    def _step(self, images, labels):
        with tf.GradientTape() as tape, masking.masked_gradients():
            logits = self.model(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=self.batch_size)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(
                    tf.add_n(self.model.losses))
        variables = self.model.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return loss

    def _loop(self, iterator, num_steps):
        total = tf.constant(0.0)
        for _ in tf.range(num_steps):
            images, labels = next(iterator)
            losses = self.strategy.run(self._step_fn, args=(images, labels))
            total += self.strategy.reduce("SUM", losses, axis=None)
        return total / tf.cast(num_steps, tf.float32)

    def train(self, dataset_fn: Callable[[int], tf.data.Dataset],
              num_steps: int) -> float:
        """Takes `num_steps` steps; returns the mean training loss.

        Args:
            dataset_fn: `start_step -> dataset` of global batches, e.g.
                `functools.partial(train_dataset, x, y, batch, seed)`.
            num_steps: how many steps to take now.
        """
        if self._iterator is None or self._iterator_step != self.step:
            dataset = dataset_fn(self.step)
            self._iterator = iter(
                self.strategy.experimental_distribute_dataset(dataset))
        loss = self._loop_fn(self._iterator, tf.constant(num_steps))
        self._iterator_step = self.step
        return float(loss)

    def _eval_batch(self, images, labels):
        with masking.masked_gradients():
            logits = self.model(images, training=False)
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)
        predictions = tf.argmax(logits, -1, output_type=labels.dtype)
        correct = tf.cast(tf.equal(predictions, labels), tf.float32)
        return tf.reduce_sum(loss), tf.reduce_sum(correct)

    def _eval_loop(self, dataset):
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for images, labels in dataset:
            loss, hits = self.strategy.run(self._eval_step,
                                           args=(images, labels))
            loss_sum += self.strategy.reduce("SUM", loss, axis=None)
            correct += self.strategy.reduce("SUM", hits, axis=None)
        return loss_sum, correct

    def eval_dataset(self, x: np.ndarray, y: np.ndarray,
                     batch_size: int):
        """Returns a distributed dataset for `evaluate`.

        Pass tensors made once (`tf.convert_to_tensor`): NumPy arrays are
        copied into each dataset. The examples are in memory already, so
        the dataset keeps no cache of its own.
        """
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(
            batch_size).prefetch(tf.data.AUTOTUNE).with_options(
                _data_options())
        return self.strategy.experimental_distribute_dataset(dataset)

    def evaluate(self, dataset, count: int) -> EvalResult:
        """Mean loss and accuracy over a dataset from `eval_dataset`."""
        loss_sum, correct = self._eval_fn(dataset)
        return EvalResult(float(loss_sum) / count, float(correct) / count)


def _data_options() -> tf.data.Options:
    """Options of every dataset here: no tf.data autotuning thread.

    Deleting an iterator cancels its autotuning thread and waits for it,
    and that thread can miss the wake-up (it checks whether it is cancelled
    before the cancellation is marked done) and sleep out its optimisation
    period, up to a minute per iterator. With two runs on two cores this
    stalled a round start for 15 to 200 s about once in 20 rounds. Without
    the thread, `AUTOTUNE` still picks the parallel calls (one per core)
    and grows the prefetch buffer when the consumer waits.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    # Each worker of a multi-worker strategy takes its slice of every
    # global batch (an in-memory dataset has no files to shard by).
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return options


def _check_choice(name: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, known))}. "
            f"Received: {name}={value!r}"
        )

"""The training engine: a custom loop under any `tf.distribute` strategy.

Several steps run per `tf.function` call (`steps_per_loop`), each step
XLA-compiled where the device supports it and XLA helps (`jit_compile`,
`compiles_steps`: not for convolutions on a CPU). The trainer
zeroes pruned weights once per round and the forward pass uses the raw
weights, skipping the `weight * mask` product that layers compute under
plain `model.fit`. Pruned weights then stay exactly 0 in one of two ways:
with an optimizer whose update of an entry reads only that entry's
gradients (SGD, momentum, Adam, AdamW and Keras's other elementwise ones,
without norm clipping or EMA) under one replica, every step multiplies the
updated weights by their masks, one product fused into the update
(`masking.raw_weights`); otherwise every gradient is multiplied by its mask
(`masking.masked_gradients`): a zero gradient moves no SGD, momentum or
Adam state, and decoupled weight decay shrinks 0 to 0. The kept weights'
numbers are the same either way. The loop never assigns a mask.

Given a `TrainingData` (`keras_lottery.engine.feeding`) under a one-replica
strategy, the trainer feeds its batches in the graph: the examples are
placed on the device once and each call gathers its steps' batches by index
inside one XLA-compiled loop of `steps_per_loop` steps, with no `tf.data`
pipeline; under several replicas the batches come through `tf.data`, the
same batches either way. Evaluation runs over examples placed on the
devices once (`keras_lottery.engine.evaluation`). A trainer restarts on the next
round's model (`restart`, `trainer_for`), so a run traces and compiles its
functions once, not once per round; a round on a sparse compute path
(`train.sparse_compute`, `keras_lottery.engine.sparse_compute`) traces its own,
for its shapes.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

# Public TensorFlow can turn op determinism on but not ask or turn it off.
from tensorflow.python.framework import config as _tf_config

from keras_lottery.core import masking
from keras_lottery.core import wrapping
from keras_lottery.engine import evaluation
from keras_lottery.engine import feeding
from keras_lottery.engine import precision
from keras_lottery.engine import sparse_compute
from keras_lottery.engine import streaming
from keras_lottery.engine import tasks

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored",
              "tpu")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
# Optimizers whose update of an entry reads only that entry's gradients:
# the trainer may let pruned entries' gradients in and zero their weights
# after the update (see the module docstring).
_ELEMENTWISE = (keras.optimizers.SGD, keras.optimizers.Adam,
                keras.optimizers.AdamW, keras.optimizers.Adamax,
                keras.optimizers.Nadam, keras.optimizers.RMSprop,
                keras.optimizers.Adagrad)
# constant; step: times `decay_factor` at each of `decay_steps`; cosine:
# from the rate down to 0 over the round (Loshchilov & Hutter, 2017). Each
# after a linear warmup of `warmup_steps`.
SCHEDULES = ("constant", "step", "cosine")
SPARSE_COMPUTE = sparse_compute.MODES  # train.sparse_compute


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
        # be configured before it starts (keras_lottery.engine.distributed).
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
    return strategy.num_replicas_in_sync == 1 or _on_accelerator(strategy)


# Layers whose steps XLA's CPU code runs slower than TensorFlow's kernels:
# Conv-2 on MNIST trained at 0.11 steps/s with the trainer's loop of steps
# compiled by XLA, against 12.7 without XLA, one thread each; each step
# compiled alone was also slower than the kernels (docs/BENCHMARKS.md, "XLA
# and convolutions on a CPU").
_CONVOLUTIONS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose, keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D, keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D)


def compiles_steps(jit_compile: bool, strategy: tf.distribute.Strategy,
                   model: keras.Model) -> bool:
    """Whether a trainer asked for XLA (`jit_compile`) compiles its steps:
    where XLA can (`supports_jit`), and on a CPU only for models without
    convolutions."""
    return jit_compile and _xla_off_because(strategy, model) is None


def _xla_off_because(strategy, model) -> str | None:
    """Why a trainer asked for XLA would not compile its steps, or None."""
    if not supports_jit(strategy):
        return "it cannot run one step over several CPU devices"
    if not _on_accelerator(strategy) and any(
            isinstance(layer, _CONVOLUTIONS)
            for layer in model._flatten_layers(include_self=False)):
        return ("on a CPU, XLA's code trains convolutions slower than "
                "TensorFlow's kernels (about 100 times in a compiled loop)")
    return None


def _on_accelerator(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` runs on GPUs or TPUs."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has none: where ops go
        devices = [d.name for d in tf.config.list_logical_devices()]
        devices = [d for d in devices if "CPU" not in d.upper()][:1] or [
            "CPU"]
    return all("GPU" in d.upper() or "TPU" in d.upper() for d in devices)


class _Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then the rate times `factor` at each decay step, and,
    with `cosine_steps`, times a cosine from 1 at the warmup's end down to
    0 at step `cosine_steps`.

    A pure function of the optimizer's step, which checkpoints carry: a
    resumed round goes on at the rate it stopped at.
    """

    def __init__(self, rate: float, warmup_steps: int,
                 decay_steps: Sequence[int], factor: float,
                 cosine_steps: int = 0):
        self.rate = rate
        self.warmup_steps = warmup_steps
        self.decay_steps = tuple(int(s) for s in decay_steps)
        self.factor = factor
        self.cosine_steps = cosine_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.rate, tf.float32)
        for boundary in self.decay_steps:
            rate = tf.where(step >= boundary, rate * self.factor, rate)
        if self.cosine_steps:
            span = float(max(1, self.cosine_steps - self.warmup_steps))
            done = tf.clip_by_value((step - self.warmup_steps) / span, 0.0,
                                    1.0)
            rate = rate * 0.5 * (1.0 + tf.cos(np.pi * done))
        if self.warmup_steps:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {
            "rate": self.rate, "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps, "factor": self.factor,
            "cosine_steps": self.cosine_steps}


def check_keras_optimizer(serialised) -> None:
    """Raises ValueError unless `serialised` is None or a serialised Keras
    optimizer (`train.keras_optimizer`)."""
    if serialised is None:
        return
    try:
        optimizer = keras.optimizers.deserialize(_plain(serialised))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        optimizer = e
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "`train.keras_optimizer` must be None or a Keras optimizer as "
            "keras.optimizers.serialize(optimizer) writes it "
            f"({' '.join(str(optimizer).split())[:200]}). Received: "
            f"train.keras_optimizer={_plain(serialised)!r}")


def _plain(value):
    """A ConfigDict's content as plain dicts (JSON's types)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return json.loads(json.dumps(value))


def make_optimizer(train) -> keras.optimizers.Optimizer:
    """Returns a fresh optimizer for the `train` section of a config, with
    a loss scale under `train.precision=mixed_float16`."""
    return precision.optimizer_for(_optimizer(train),
                                   train.get("precision", "float32"))


def _optimizer(train) -> keras.optimizers.Optimizer:
    serialised = train.get("keras_optimizer")
    if serialised is not None:
        return keras.optimizers.deserialize(_plain(serialised))
    _check_choice("train.optimizer", train.optimizer, OPTIMIZERS)
    _check_choice("train.schedule", train.schedule, SCHEDULES)
    decay = tuple(train.decay_steps) if train.schedule == "step" else ()
    rate = _Schedule(train.learning_rate, train.warmup_steps, decay,
                     train.decay_factor,
                     train.num_steps if train.schedule == "cosine" else 0)
    if train.optimizer == "sgd":
        return keras.optimizers.SGD(rate)
    if train.optimizer == "momentum":
        return keras.optimizers.SGD(rate, momentum=train.momentum)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay)


EvalResult = evaluation.EvalResult
# The training data, re-exported: callers build it next to the trainer.
TrainingData = feeding.TrainingData
train_dataset = feeding.train_dataset


def trainer_for(model: keras.Model, strategy: tf.distribute.Strategy,
                train, previous: Trainer | None = None,
                task: tasks.Task | None = None) -> Trainer:
    """A trainer of `model` with a fresh optimizer for the `train` section
    of a config: `previous` restarted (nothing traced or compiled again)
    when it takes `model` (`Trainer.takes`) and was made for the same
    strategy, optimizer, batch size, steps per call, XLA setting and task;
    else a new one. `task`: the loss and metrics (None: the default)."""
    task = task or tasks.Task()
    _check_choice("train.sparse_compute", train.sparse_compute,
                  SPARSE_COMPUTE)
    with strategy.scope():
        optimizer = make_optimizer(train)
    if (previous is not None and previous.strategy is strategy
            and previous.batch_size == train.batch_size
            and previous.steps_per_loop == train.steps_per_loop
            and previous.jit_compile == compiles_steps(
                train.jit_compile, strategy, model)
            and _optimizer_json(previous.optimizer)
            == _optimizer_json(optimizer)
            and previous.task.key() == task.key()
            and previous.takes(model)):
        previous.sparse_compute = train.sparse_compute
        previous.restart(model)
        return previous
    with strategy.scope():
        return Trainer(model, strategy, optimizer, train.batch_size,
                       train.jit_compile, train.steps_per_loop,
                       sparse_compute=train.sparse_compute,
                       make_optimizer=lambda: make_optimizer(train),
                       task=task)


class Trainer:
    """Trains and evaluates one model under one strategy.

    Build the model (and call `keras_lottery.wrap`) under
    `strategy.scope()` before creating the trainer; the trainer creates its
    optimizer there too. Each round starts with a fresh optimizer, as the
    paper does: a new trainer, or this one restarted (`restart`).

    Args:
        model: the model; outputs logits.
        strategy: the `tf.distribute` strategy the model was built under.
        optimizer: a fresh Keras optimizer, made under `strategy.scope()`.
        batch_size: the global batch size.
        jit_compile: XLA-compile the step where XLA can and helps
            (`compiles_steps`); `self.jit_compile` says whether it does.
        steps_per_loop: steps per `tf.function` call; `train` runs a
            multiple of it.
        sparse_compute: one of `SPARSE_COMPUTE`: `"off"` trains on the
            dense kernels; `"auto"` picks a round's path by its masks, and
            `"compact"` or `"sparse"` force one, for a chain of Dense
            (and, compact, conv) layers under one replica
            (`keras_lottery.engine.sparse_compute`). The
            path is chosen at a round's first `train` call, after any
            checkpoint is restored; `sync` before saving the optimizer.
        make_optimizer: makes a fresh optimizer like `optimizer`, for the
            compute paths; without it the trainer trains dense.
        task: the loss it trains on and the metrics it evaluates
            (`keras_lottery.engine.tasks.Task`); None: sparse categorical
            cross-entropy on logits, with accuracy.
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy,
                 optimizer: keras.optimizers.Optimizer, batch_size: int,
                 jit_compile: bool = True, steps_per_loop: int = 100,
                 sparse_compute: str = "off",
                 make_optimizer: Callable[
                     [], keras.optimizers.Optimizer] | None = None,
                 task: tasks.Task | None = None):
        _check_choice("sparse_compute", sparse_compute, SPARSE_COMPUTE)
        self.model = model
        self.task = task or tasks.Task()
        self.sparse_compute = sparse_compute
        self._make_optimizer = make_optimizer
        self._compute = None  # the round's `sparse_compute.Training`
        self._path = None  # its path, once the round's first call chose
        self.strategy = strategy
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.steps_per_loop = steps_per_loop
        with strategy.scope():
            optimizer.build(model.trainable_variables)
        # What `restart` gives back: a fresh optimizer's state.
        self._fresh = [v.numpy() for v in optimizer.variables]
        self._zero_pruned()
        if jit_compile and not compiles_steps(jit_compile, strategy, model):
            logging.info("XLA off: %s.", _xla_off_because(strategy, model))
            jit_compile = False
        self.jit_compile = jit_compile
        self._dense_fns = self._functions()
        self._set_functions(self._dense_fns)
        # On a CPU, TensorFlow's own kernels (oneDNN) run the large batches
        # of evaluation about a third faster than XLA's code does.
        self._evaluator = evaluation.Evaluator(
            model, strategy, jit_compile and _on_accelerator(strategy),
            task=self.task)
        self._round_evaluator = None  # on a compute path's model
        self._iterator = None
        self._iterator_step = None
        self._placed = None  # (data, x, y): `TrainingData` on the device
        self._chunk = None  # streamed: the chunk of batches being taken

    def _zero_pruned(self) -> None:
        # Pruned weights are zeroed once per round and their gradients
        # masked in every step (`masking.masked_gradients`), so they stay
        # exactly 0.
        for wrapper in wrapping.wrapped_layers(self.model):
            for variable, mask in wrapper.masked_pairs():
                variable.assign(variable.value * mask.value)

    def takes(self, model: keras.Model) -> bool:
        """Whether `restart(model)` can run: the same layers, config and
        weight shapes as this trainer's model."""
        return (type(model) is type(self.model)
                and _config_json(model) == _config_json(self.model)
                and [(v.shape, v.dtype) for v in model.weights]
                == [(v.shape, v.dtype) for v in self.model.weights])

    def restart(self, model: keras.Model) -> None:
        """Starts a round on this trainer's compiled functions.

        Its model takes `model`'s weights, masks and rewind points, its
        optimizer a fresh one's state: the trainer is then in the state a
        new `Trainer` of `model` and a fresh optimizer would be in, without
        tracing or compiling anything again.

        Raises:
            ValueError: if `takes(model)` is False.
        """
        if not self.takes(model):
            raise ValueError(
                "`model` must have the layers and weight shapes of the "
                f"trainer's model. Received: model={model.name!r}")
        for mine, theirs in zip(self.model.weights, model.weights):
            mine.assign(theirs.value)
        for variable, value in zip(self.optimizer.variables, self._fresh):
            variable.assign(value)
        self._zero_pruned()
        self._iterator = self._iterator_step = self._placed = None
        self._compute = self._path = self._round_evaluator = None
        self._set_functions(self._dense_fns)

    def _functions(self):
        """Fresh `tf.function`s of the steps (each traces on first call)."""
        return (tf.function(self._step, jit_compile=self.jit_compile),
                tf.function(self._loop),
                tf.function(self._indexed_loop,
                            jit_compile=self.jit_compile),
                tf.function(self._indexed))

    def _set_functions(self, functions) -> None:
        (self._step_fn, self._loop_fn, self._indexed_loop_fn,
         self._indexed_fn) = functions

    @property
    def path(self) -> str | None:
        """The path of the round's steps, one of `sparse_compute.PATHS`
        (None until the round's first `train` call chooses it)."""
        return self._path

    def _choose_path(self) -> None:
        """At a round's first call: its `sparse_compute.Training`, and
        functions traced for it, unless it trains dense."""
        self._path = "dense"
        if (self.sparse_compute == "off" or self._make_optimizer is None
                or self.strategy.num_replicas_in_sync != 1
                or precision.of_model(self.model) != "float32"):
            return
        with self.strategy.scope():
            self._compute = sparse_compute.training_for(
                self.model, self.sparse_compute, self.optimizer,
                self._make_optimizer,
                per_example_loss=self.task.per_example_loss)
        if self._compute is not None:
            self._path = self._compute.compute.path
            # The compute model's shapes are the round's: new functions.
            self._set_functions(self._functions())
            if self._path == "compact":
                # Evaluating 5,000 examples of LeNet-300-100 on a 2-core
                # CPU: the compact blocks under XLA took 35 and 30 ms at
                # rounds 15 and 18, the dense model 42 and 39 ms; the
                # sparse entries 99 and 57 ms (a gather per entry and
                # example), so sparse rounds evaluate dense.
                self._round_evaluator = evaluation.Evaluator(
                    self.model, self.strategy, self.jit_compile,
                    forward=self._compute.compute, task=self.task)
            logging.info("This round trains on the %s path (%s).",
                         self._path, self.sparse_compute)

    def sync(self) -> None:
        """Brings the model and optimizer up to date with the compute
        path's training, if it trains one: call before saving the
        optimizer (the model's weights are written after each `train`)."""
        if self._compute is not None:
            self._compute.sync()

    @property
    def step(self) -> int:
        """The number of optimizer steps taken (the optimizer's counter)."""
        optimizer = (self.optimizer if self._compute is None
                     else self._compute.optimizer)
        return int(optimizer.iterations.numpy())

    def _step(self, images, labels):
        if self._compute is not None:
            return self._compute.step(images, labels, self.batch_size)
        masked_updates = self._masks_updates()
        with tf.GradientTape() as tape, (
                masking.raw_weights() if masked_updates
                else masking.masked_gradients()):
            logits = precision.float32_outputs(
                self.model(images, training=True))
            per_example = self.task.per_example_loss(labels, logits)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=self.batch_size)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(
                    tf.add_n(self.model.losses))
            scaled = precision.scaled(loss, self.optimizer)
        variables = self.model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        if masked_updates:
            for wrapper in wrapping.wrapped_layers(self.model):
                for variable, mask in wrapper.masked_pairs():
                    if variable.trainable:
                        variable.assign(variable.value * mask.value)
        return loss

    def _masks_updates(self) -> bool:
        """Whether steps zero pruned weights after the update rather than
        masking their gradients (see the module docstring)."""
        optimizer = self.optimizer
        return (type(optimizer) in _ELEMENTWISE
                and self.strategy.num_replicas_in_sync == 1
                and not (optimizer.clipnorm or optimizer.global_clipnorm
                         or optimizer.use_ema))

    def _loop(self, iterator, num_steps):
        total = tf.constant(0.0)
        for _ in tf.range(num_steps):
            images, labels = next(iterator)
            losses = self.strategy.run(self._step_fn, args=(images, labels))
            total += self.strategy.reduce("SUM", losses, axis=None)
        return total / tf.cast(num_steps, tf.float32)

    def _indexed_loop(self, x, y, indices, num_steps, seeds=None,
                      augment=None):
        """`num_steps` steps on the batches `x[indices[i]]`, compiled as one
        loop: no input pipeline and one dispatch per call; `augment`
        (`keras_lottery.engine.augment`) maps batch `i` with `seeds[i]`."""
        total = tf.constant(0.0)
        for i in tf.range(num_steps):
            images = tf.gather(x, indices[i])
            labels = tf.gather(y, indices[i])
            if augment is not None:
                images, labels = augment(images, labels, seeds[i])
            total += self._step(images, labels)
        return total

    def _indexed(self, x, y, indices, num_steps, seeds=None, augment=None):
        total = self.strategy.run(self._indexed_loop_fn,
                                  args=(x, y, indices, num_steps, seeds,
                                        augment))
        return self.strategy.reduce("SUM", total, axis=None)

    def train(self, dataset_fn: TrainingData | Callable[[int],
                                                        tf.data.Dataset],
              num_steps: int) -> float:
        """Takes `num_steps` steps; returns the mean training loss.

        Args:
            dataset_fn: a `TrainingData` (fed in the graph under a
                one-replica strategy), or any `start_step -> dataset` of
                global batches.
            num_steps: how many steps to take now.
        """
        if self._path is None:
            self._choose_path()
        if (isinstance(dataset_fn, TrainingData)
                and self.strategy.num_replicas_in_sync == 1):
            loss = self._train_indexed(dataset_fn, num_steps)
        elif (isinstance(dataset_fn, streaming.StreamedData)
                and self.strategy.num_replicas_in_sync == 1):
            loss = self._train_fetched(dataset_fn, num_steps)
        else:
            if self._iterator is None or self._iterator_step != self.step:
                dataset = dataset_fn(self.step)
                self._iterator = iter(
                    self.strategy.experimental_distribute_dataset(dataset))
            loss = float(self._loop_fn(self._iterator,
                                       tf.constant(num_steps)))
            self._iterator_step = self.step
        if self._compute is not None:
            self._compute.store()
        return loss

    def _train_fetched(self, data: streaming.StreamedData,
                       num_steps: int) -> float:
        """Streamed batches under one replica: the pipeline stacks each
        `steps_per_loop` batches into one chunk in its own threads, and
        each call trains on rows of a chunk in the compiled loop
        `_train_indexed` uses (no XLA call, no host work per step)."""
        per, size = self.steps_per_loop, data.batch_size
        if self._iterator is None or self._iterator_step != self.step:
            chunks = data(self.step).batch(per, drop_remainder=True).map(
                lambda x, y: (tf.reshape(x, [per * size, *x.shape[2:]]),
                              tf.reshape(y, [per * size, *y.shape[2:]])))
            # The next chunk is made while this one trains.
            self._iterator = iter(chunks.prefetch(1))
            self._chunk = None  # (x, y, batches of it already taken)
        total = tf.constant(0.0)
        for start in range(0, num_steps, per):
            count = min(per, num_steps - start)
            x, y, first = self._take_batches(count, per, size)
            rows = np.zeros((per, size), np.int32)
            rows[:count] = (np.arange(first, first + count)[:, None] * size
                            + np.arange(size))
            total += self._indexed_fn(x, y, rows, tf.constant(count))
        self._iterator_step = self.step
        return float(total) / num_steps

    def _take_batches(self, count, per, size):
        """`(x, y, first)`: a chunk of `per` batches holding the next
        `count` batches from its batch `first` on."""
        if self._chunk is None:
            self._chunk = (*next(self._iterator), 0)
        x, y, used = self._chunk
        if used + count <= per:
            self._chunk = (x, y, used + count) if used + count < per else (
                None)
            return x, y, used
        # The rest of this chunk, then the start of the next one: one
        # chunk's rows again, so one compiled loop serves every call.
        next_x, next_y = next(self._iterator)
        self._chunk = (next_x, next_y, used + count - per)
        rows = used * size
        return (tf.concat([x[rows:], next_x[:rows]], 0),
                tf.concat([y[rows:], next_y[:rows]], 0), 0)

    def _train_indexed(self, data: TrainingData, num_steps: int) -> float:
        if self._placed is None or self._placed[0] is not data:
            x, y = (self.strategy.experimental_distribute_values_from_function(
                lambda _, t=t: tf.identity(t)) for t in (data.x, data.y))
            self._placed = (data, x, y)
        _, x, y = self._placed
        step, total = self.step, tf.constant(0.0)
        for start in range(0, num_steps, self.steps_per_loop):
            count = min(self.steps_per_loop, num_steps - start)
            # A call always takes `steps_per_loop` rows, so one compiled
            # loop serves every count.
            indices = np.zeros((self.steps_per_loop, data.batch_size),
                               np.int32)
            indices[:count] = data.indices(step + start, count)
            seeds = None
            if data.augment is not None:
                # Step s's batch is augmented with the seed (seed, s), as
                # `feeding.train_dataset` does.
                steps = np.arange(step + start,
                                  step + start + self.steps_per_loop)
                seeds = np.stack([np.full_like(steps, data.seed), steps],
                                 axis=1).astype(np.int32)
            total += self._indexed_fn(x, y, indices, tf.constant(count),
                                      seeds, data.augment)
        return float(total) / num_steps

    def eval_dataset(self, x: np.ndarray | tf.Tensor,
                     y: np.ndarray | tf.Tensor,
                     batch_size: int) -> evaluation.EvalSet:
        """The examples for `evaluate`, placed on the devices once.

        Pass tensors made once (`tf.convert_to_tensor`): NumPy arrays are
        copied for each call.
        """
        return evaluation.EvalSet(self.strategy, x, y, batch_size)

    def evaluate(self, examples: evaluation.EvalSet,
                 count: int | None = None) -> EvalResult:
        """Mean loss and the task's metrics over examples from
        `eval_dataset`.

        `count`, if given, must be their number (a check).
        """
        if count is not None and count != examples.count:
            raise ValueError(
                f"`count` must be the number of examples ({examples.count})"
                f". Received: count={count}")
        return (self._round_evaluator or self._evaluator)(examples)


def _config_json(model: keras.Model) -> str:
    # A loaded model's config has lists where the built one has tuples.
    return json.dumps(model.get_config(), sort_keys=True, default=repr)


def _optimizer_json(optimizer: keras.optimizers.Optimizer) -> str:
    # Each optimizer gets a name of its own ("adam", "adam_1").
    config = {k: v for k, v in optimizer.get_config().items() if k != "name"}
    return json.dumps(config, sort_keys=True, default=repr)


def _check_choice(name: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, known))}. "
            f"Received: {name}={value!r}"
        )

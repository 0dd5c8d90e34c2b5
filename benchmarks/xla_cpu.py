r"""Training steps/s on a CPU with and without XLA, model by model.

Why the engine XLA-compiles a CPU step only for models without
convolutions (`keras_lottery.engine.training.compiles_steps`). Each model trains
as the engine's step does (wrapped, Adam, batch 60, real MNIST, the
batches gathered in the graph from examples placed once) three ways,
alternating, in one process:

- `xla_loop`: a call's steps compiled by XLA as one loop, as the engine
  compiles them when it uses XLA;
- `xla_step`: each step compiled by XLA, the loop around them not;
- `kernels`: no XLA, TensorFlow's own kernels (oneDNN on x86).

  python -m benchmarks.xla_cpu [--models=lenet_300_100,conv2] \
      [--seconds=20] [--repeats=2]

Each measurement runs calls of --per_call steps until --seconds have
passed (after one call that compiles), so a slow side still finishes.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery.core import masking
from keras_lottery.models import zoo

_MODELS = flags.DEFINE_list("models", ["lenet_300_100", "conv2"],
                            "Models of keras_lottery.models to measure.")
_SECONDS = flags.DEFINE_float("seconds", 20.0, "Seconds per measurement.")
_PER_CALL = flags.DEFINE_integer("per_call", 10, "Steps per call.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Measurements per side.")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")
BATCH = 60


MODES = ("xla_loop", "xla_step", "kernels")


def steps_per_second(name: str, data, mode: str):
    """A function measuring `name`'s training steps/s in `mode`."""
    import keras

    model = keras_lottery.wrap(
        zoo.build(name, data.input_shape, 10, seed=0))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    x, y = tf.constant(data.train_x), tf.constant(data.train_y)

    def step(images, labels):
        with tf.GradientTape() as tape, masking.masked_gradients():
            logits = model(images, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                      variables))
        return loss

    if mode == "xla_step":
        step = tf.function(step, jit_compile=True)

    def loop(indices):
        total = tf.constant(0.0)
        for i in tf.range(tf.shape(indices)[0]):
            total += step(tf.gather(x, indices[i]), tf.gather(y, indices[i]))
        return total

    loop = tf.function(loop, jit_compile=mode == "xla_loop")

    rng = np.random.default_rng(0)

    def batches():
        return rng.integers(0, len(data.train_y), (_PER_CALL.value, BATCH),
                            dtype=np.int32)

    loop(batches())  # trace and compile

    def measure() -> float:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < _SECONDS.value:
            loop(batches()).numpy()
            steps += _PER_CALL.value
        return steps / (time.perf_counter() - start)

    return measure


def main(argv):
    del argv
    data = common.mnist(_DATA.value)
    print(f"machine: {common.machine()}")
    print("| model | " + " | ".join(f"{m} steps/s" for m in MODES)
          + " | xla_loop / kernels |")
    print("|---" * (len(MODES) + 2) + "|")
    for name in _MODELS.value:
        sides = {mode: steps_per_second(name, data, mode) for mode in MODES}
        rates = {mode: [] for mode in MODES}
        for i in range(_REPEATS.value):
            for mode in (MODES if i % 2 == 0 else MODES[::-1]):
                rates[mode].append(sides[mode]())
        median = {mode: float(np.median(rates[mode])) for mode in MODES}
        print(f"| {name} | "
              + " | ".join(f"{median[m]:.2f}" for m in MODES)
              + f" | {median['xla_loop'] / median['kernels']:.3f} |",
              flush=True)


if __name__ == "__main__":
    app.run(main)

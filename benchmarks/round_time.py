r"""Seconds per 1,000 training steps of LeNet-300-100 or Conv-2 tickets,
by path.

The engine's step (fwd + bwd + Adam, batch 60, XLA where the engine uses
it, 100 steps per call, real MNIST) on the dense kernels and on each path
of `keras_lottery.engine.sparse_compute`, interleaved in one process, best of
`--repeats`, at the paper's rounds of iterative magnitude pruning (20% per
round, output 10%) and at rounds of a unit ticket (20% of the units per
round, output dense) whose pruned units are dead: neurons, or for Conv-2
the filters or channels of its conv layers (`--units`):

  python -m benchmarks.round_time [--steps=1000] [--repeats=3]
  python -m benchmarks.round_time --model=conv2 --units=filter \
      --rounds=0 --neuron_rounds=1,3,5,8 --steps=200 --prune_steps=0

The masks come from a quick IMP run made here (`--prune_steps` steps of
training before each pruning, none for magnitudes at initialisation; no
rewinding), or from a lottery workdir's
`round_XX/masks.npz` (`--weight_dir`, `--neuron_dir`). Budget: none; the
figures set `sparse_compute`'s thresholds (docs/BENCHMARKS.md).
"""

import functools
import time

import keras
import numpy as np
from absl import app
from absl import flags

import keras_lottery
from benchmarks import common
from keras_lottery.engine import sparse_compute
from keras_lottery.engine import training
from keras_lottery.models import zoo

_STEPS = flags.DEFINE_integer("steps", 1000, "Steps per measurement.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Measurements per path.")
_MODEL = flags.DEFINE_enum("model", "lenet_300_100",
                           ["lenet_300_100", "conv2"], "The network.")
_UNITS = flags.DEFINE_enum(
    "units", "neuron", ["neuron", "filter", "channel"],
    "What the unit ticket prunes in conv layers (Dense layers: neurons).")
_ROUNDS = flags.DEFINE_list("rounds", ["0", "7", "12", "15", "18"],
                            "Rounds of the weight ticket.")
_NEURON_ROUNDS = flags.DEFINE_list("neuron_rounds", ["7", "10"],
                                   "Rounds of the unit ticket.")
_PRUNE_STEPS = flags.DEFINE_integer(
    "prune_steps", 300, "Training steps before each pruning of the quick "
    "IMP run that makes the masks.")
_WEIGHT_DIR = flags.DEFINE_string(
    "weight_dir", "", "A lottery workdir of weight tickets to read masks "
    "from, instead of the quick IMP run.")
_NEURON_DIR = flags.DEFINE_string("neuron_dir", "", "The same, neurons.")
_SPARSE_ABOVE = flags.DEFINE_float(
    "sparse_max_live", 0.25, "Measure the sparse path only below this live "
    "fraction of the multiply-adds (it takes ~40 s per 1,000 steps dense).")
_DATA = flags.DEFINE_string("data_dir", common.MNIST_DIR, "MNIST IDX files.")

_BATCH = 60


def main(argv):
    del argv
    data = common.mnist(_DATA.value)
    dataset_fn = functools.partial(training.train_dataset, data.train_x,
                                   data.train_y, _BATCH, 0)
    build = functools.partial(zoo.build, _MODEL.value,
                              data.input_shape, 10, seed=0)
    units = _UNITS.value
    cases = [("weight", int(r)) for r in _ROUNDS.value] + [
        (units, int(r)) for r in _NEURON_ROUNDS.value]
    masks = {}
    for kind, folder in (("weight", _WEIGHT_DIR.value),
                         (units, _NEURON_DIR.value)):
        rounds = [r for k, r in cases if k == kind]
        if rounds:
            masks.update(_masks(kind, folder, rounds, build, dataset_fn))
    print(f"machine: {common.machine()}")
    print("| ticket | round | remaining | live MACs | compact MACs | "
          "16x16 blocks | dense | compact | sparse | auto |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, round_index in cases:
        row = _measure(build, masks[kind, round_index], dataset_fn)
        print(f"| {kind} | {round_index} | {row}", flush=True)


def _masks(kind, folder, rounds, build, dataset_fn):
    """`{(kind, round): masks}` from `folder`, or a quick IMP run."""
    if folder:
        return {(kind, r): {
            **np.load(f"{folder}/round_{r:02d}/masks.npz"),
            **np.load(f"{folder}/round_{r:02d}/units.npz")} for r in rounds}
    model = keras_lottery.wrap(build())
    found = {}
    for round_index in range(max(rounds) + 1):
        if round_index:
            if _PRUNE_STEPS.value:
                trainer = training.Trainer(
                    model, training.make_strategy("default"),
                    keras.optimizers.Adam(1.2e-3), _BATCH)
                trainer.train(dataset_fn, _PRUNE_STEPS.value)
            keras_lottery.prune(model, **_prune_arguments(model, kind))
        if round_index in rounds:
            found[kind, round_index] = keras_lottery.get_masks(model,
                                                               units=True)
    return found


def _prune_arguments(model, kind: str) -> dict:
    """`keras_lottery.prune`'s arguments for one round of `kind`."""
    if kind == "weight":
        return {"fraction": 0.2, "fractions": {"output": 0.1}}
    convs = [layer.name for layer in model.layers
             if isinstance(getattr(layer, "layer", layer),
                           keras.layers.Conv2D)]
    return {"fraction": 0.2, "granularity": "neuron",
            "fractions": {"output": 0.0},
            "granularities": {"output": "weight",
                              **{name: kind for name in convs}}}


def _measure(build, masks, dataset_fn) -> str:
    """One table row (from `remaining` on) for one ticket."""
    model = keras_lottery.wrap(build())
    keras_lottery.set_masks(model, masks)
    plan = sparse_compute.model_layout(model)
    live = plan.live_size / plan.dense_size
    paths = ["off", "compact"] + (
        ["sparse"] if live < _SPARSE_ABOVE.value
        and not plan.convolutional else [])
    runs = {}
    for path in paths:
        trainer = training.Trainer(
            model, training.make_strategy("default"),
            keras.optimizers.Adam(1.2e-3), _BATCH, jit_compile=True,
            steps_per_loop=100, sparse_compute=path,
            make_optimizer=lambda: keras.optimizers.Adam(1.2e-3))
        trainer.train(dataset_fn, 200)  # compile and warm up
        runs[path] = functools.partial(_seconds, trainer, dataset_fn)
    seconds = common.interleaved(runs, _REPEATS.value, min)
    per_1000 = {p: s * 1000 / _STEPS.value for p, s in seconds.items()}
    auto = sparse_compute.choose(plan)
    kernels = [m for key, m in masks.items() if key.endswith("/kernel")]
    remaining = (sum(float(m.sum()) for m in kernels)
                 / sum(m.size for m in kernels))
    cells = [f"{remaining:.1%}", f"{live:.1%}",
             f"{plan.compact_size / plan.dense_size:.1%}",
             f"{_live_blocks(plan, 16):.0%}"]
    cells += [f"{per_1000[p]:.2f} s" if p in per_1000 else "—"
              for p in ("off", "compact", "sparse")]
    chosen = "off" if auto == "dense" else auto
    cells.append(f"{auto} ({per_1000['off'] / per_1000[chosen]:.2f}x)"
                 if chosen in per_1000 else auto)
    return " | ".join(cells) + " |"


def _seconds(trainer, dataset_fn) -> float:
    start = time.perf_counter()
    trainer.train(dataset_fn, _STEPS.value)
    return time.perf_counter() - start


def _live_blocks(plan, size: int) -> float:
    """The fraction of `size` x `size` blocks of the whole kernels that hold
    a weight that is not pruned: what block-sparse kernels would compute."""
    live = total = 0
    for mask in plan.kernel_masks:
        mask = mask.reshape(-1, mask.shape[-1])  # a conv's window: rows
        rows = -(-mask.shape[0] // size) * size
        cols = -(-mask.shape[1] // size) * size
        padded = np.zeros((rows, cols))
        padded[: mask.shape[0], : mask.shape[1]] = mask
        blocks = padded.reshape(rows // size, size, cols // size, size)
        live += int(blocks.any(axis=(1, 3)).sum())
        total += blocks.shape[0] * blocks.shape[2]
    return live / total


if __name__ == "__main__":
    app.run(main)

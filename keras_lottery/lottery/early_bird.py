"""Early-bird rounds: end a round once the next pruning's mask settles.

You et al. (ICLR 2020, "Drawing Early-Bird Tickets: Towards More
Efficient Training of Deep Networks") find that the mask pruning would
produce stops changing early in training. With `prune.early_bird.enabled`,
every round but the last of an iterative run computes, every
`prune.early_bird.every_steps` steps, the masks the next round's pruning
would produce from the weights of that moment (same criterion, scope,
granularities, seed and score batches as the next round uses). It keeps
the last `window` of them; once the newest is within `threshold` of every
other one (normalised Hamming distance: the fraction of entries, or of
units for structured granularities, on which two masks differ), the round
ends at that step: it is evaluated there, saved, and the next round prunes
those weights, which gives exactly that mask. With `window` 1 the round
ends at the first check: pruning after `every_steps` steps.

The window travels with each checkpoint (`ckpt-<step>.early_bird.npz`,
written before the checkpoint is named in TensorFlow's index), so a round
killed at any moment resumes to the same checks and the same mask.

    python -m binaries.lottery --config=configs/lenet300_mnist.py \
        --config.data.dir=../shared/data/mnist --workdir=/tmp/early \
        --config.prune.early_bird.enabled=True \
        --config.prune.early_bird.every_steps=500
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from collections.abc import Mapping

import keras
import ml_collections
import numpy as np

from keras_lottery.base import faults
from keras_lottery.base import files
from keras_lottery.engine import tasks
from keras_lottery.pruning import criteria
from keras_lottery.pruning import pruner
from keras_lottery.pruning import selection

# After a checkpoint's prefix: the window of masks at that checkpoint.
SUFFIX = ".early_bird.npz"


def distance(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
             groupings: Mapping[str, selection.Grouping]) -> float:
    """The normalised Hamming distance between two sets of masks.

    Args:
        a, b: `{key: 0/1 array}` with the same keys and shapes.
        groupings: `{key: Grouping}`; unit granularities compare units
            (kept or not), others entries. Keys left out compare entries.

    Returns:
        The fraction of compared entries (or units) that differ, in [0, 1].
    """
    differ = total = 0
    for key in sorted(a):
        grouping = groupings.get(key, selection.Grouping())
        x, y = np.asarray(a[key]) != 0, np.asarray(b[key]) != 0
        if grouping.is_units:
            x = selection.alive_units(x, grouping.axis)
            y = selection.alive_units(y, grouping.axis)
        differ += int(np.count_nonzero(x != y))
        total += x.size
    return differ / total if total else 0.0


def watch(config: ml_collections.ConfigDict, round_index: int,
          plan: Callable[[], pruner.Plan],
          data: Callable[[], list]) -> Watch | None:
    """The early-bird checks of a round of an iterative run, or None.

    Args:
        config: the run's config.
        round_index: the round.
        plan: `() -> the next round's pruning plan on the round's model`.
        data: `() -> the next round's score batches`.

    Returns:
        None when early-bird rounds are off, and for the last round (no
        pruning follows it: it trains to its end).
    """
    settings = config.prune.get("early_bird")
    if (settings is None or not settings.enabled
            or round_index >= config.prune.num_rounds):
        return None
    needs = criteria.get(config.prune.method).needs_data
    return Watch(settings, plan(), config.seed + round_index + 1,
                 data if needs else None,
                 config.prune.rewind_step if round_index == 0 else 0,
                 tasks.from_config(config).scoring_loss())


class Watch:
    """The early-bird checks of one round.

    Args:
        settings: the `prune.early_bird` config section.
        plan: the next round's pruning plan on the round's model.
        seed: the seed the next round prunes with.
        data: `() -> batches` of the next round's scoring, or None for a
            criterion that reads none; called once, at the first check.
        rewind_step: no check before this step (its weights are the
            rewind point: a round may not end before it is set).
        loss: what a criterion that reads data differentiates
            (`pruner.prune`'s `loss`; the run's task's).
    """

    def __init__(self, settings: ml_collections.ConfigDict,
                 plan: pruner.Plan, seed: int,
                 data: Callable[[], list] | None, rewind_step: int = 0,
                 loss: Callable | None = None):
        self.every_steps = settings.every_steps
        self.threshold = settings.threshold
        self.window = settings.window
        self.plan = plan
        self.seed = seed
        self._data = data
        self._batches = None
        self.rewind_step = rewind_step
        self.loss = loss
        self.masks: list[dict[str, np.ndarray]] = []
        self.checks: list[dict] = []  # {"step", "max_distance"}
        self.stopped_at: int | None = None
        self.seconds = 0.0  # spent checking, by this process

    def steps(self, num_steps: int) -> set[int]:
        """The steps at which the round checks (before its end)."""
        return {s for s in range(self.every_steps, num_steps,
                                 self.every_steps) if s > self.rewind_step}

    def check(self, step: int, model: keras.Model) -> bool:
        """Checks the mask at `step`; True when the round ends here."""
        start = time.perf_counter()
        if self._data is not None and self._batches is None:
            self._batches = self._data()
        masks = pruner.next_masks(model, self.plan, self.seed,
                                 self._batches, self.loss)
        self.seconds += time.perf_counter() - start
        faults.point("early_bird")
        self.masks = [*self.masks, masks][-self.window:]
        distances = [distance(masks, other, self.plan.groupings)
                     for other in self.masks[:-1]]
        full = len(self.masks) == self.window
        self.checks.append({"step": step, "max_distance": (
            max(distances, default=0.0) if full else None)})
        if full and max(distances, default=0.0) <= self.threshold:
            self.stopped_at = step
        return self.stopped_at is not None

    def record(self) -> dict:
        """What metrics.json says of the checks."""
        return {"stopped_at": self.stopped_at, "checks": self.checks,
                "threshold": self.threshold, "window": self.window,
                "every_steps": self.every_steps}

    def save(self, prefix: str) -> None:
        """Writes the window and the checks beside checkpoint `prefix`."""
        arrays = {f"{i}/{key}": value.astype(np.bool_)
                  for i, masks in enumerate(self.masks)
                  for key, value in masks.items()}
        arrays["steps"] = np.array([c["step"] for c in self.checks],
                                   np.int64)
        arrays["distances"] = np.array(
            [np.nan if c["max_distance"] is None else c["max_distance"]
             for c in self.checks], np.float64)
        files.write_arrays(prefix + SUFFIX, arrays)

    def restore(self, prefix: str, step: int) -> None:
        """Reads what `save` wrote beside checkpoint `prefix` (at `step`).

        Raises:
            OSError: if the file is missing; ValueError if damaged.
        """
        arrays = files.read_arrays(prefix + SUFFIX)
        windows: dict[int, dict[str, np.ndarray]] = {}
        for name, value in arrays.items():
            index, _, key = name.partition("/")
            if key:
                windows.setdefault(int(index), {})[key] = value.astype(
                    np.float32)
        self.masks = [windows[i] for i in sorted(windows)]
        self.checks = [
            {"step": int(s), "max_distance": None if np.isnan(d)
             else float(d)}
            for s, d in zip(arrays["steps"], arrays["distances"])
            if s <= step]


def sidecars(directory: str, keep: str) -> list[str]:
    """The files beside checkpoints in `directory` but those of `keep`.

    Args:
        directory: a round's checkpoint folder.
        keep: the base name of the checkpoint whose files stay.
    """
    return [os.path.join(directory, name) for name in os.listdir(directory)
            if name.endswith((".history.json", SUFFIX))
            and not name.startswith(keep + ".")]

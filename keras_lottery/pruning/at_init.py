"""Pruning at initialisation: a criterion applied once at W0, then trained.

With `prune.mode="one_shot"` and `prune.at_init=True`, round r > 0 starts
from the dense network at initialisation (W0; at `prune.rewind_step` = k
> 0, from round 0's weights at step k), prunes it to the sparsity r
rounds of IMP reach (the same counts per layer, by the same rounding
rule), and trains it. Round 0 trains the dense network, the reference of
every ticket; round r's ticket cost is round r alone
(`keras_lottery.lottery.cost.ticket_rounds`).

The criterion scores, `keras_lottery.pruning.selection.select` selects: SNIP
(`snip`) and GraSP (`grasp`) score once and keep the best; SynFlow
(`synflow`, `Criterion.at_init_iterations` = 100) rescores the pruned
network 100 times, each time pruning to the next point of an exponential
schedule: after k of n iterations, `n0 * (target / n0) ** (k / n)` of a
layer's n0 weights remain (Tanaka et al. 2020), the last exactly the
target.

    python -m binaries.lottery --config=configs/lenet300_mnist.py \
        --config.prune.mode=one_shot --config.prune.at_init=True \
        --config.prune.method=synflow --config.prune.one_shot_rounds=3,7 \
        --config.data.dir=../shared/data/mnist --workdir=/tmp/synflow
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping

import keras
import numpy as np

from keras_lottery.base import paths
from keras_lottery.core import state
from keras_lottery.pruning import pruner
from keras_lottery.pruning import scoring
from keras_lottery.pruning import selection

# The largest fraction below 1: prunes every remaining weight of a layer.
_ALL = float(np.nextafter(1.0, 0.0))


def starting_model(experiment, workdir: str) -> keras.Model:
    """The dense network a round pruned at initialisation starts from.

    Args:
        experiment: the run's `lottery.Experiment`.
        workdir: the run's workdir (round 0's model, for a rewind step).

    Returns:
        W0 for `prune.rewind_step` 0, else round 0's model rewound to its
        step-k weights.
    """
    config = experiment.config
    if not config.prune.rewind_step:
        return experiment.build_model(config.seed)
    model = experiment.load_model(paths.model_file(workdir, 0))
    with experiment.strategy.scope():
        state.rewind(model)
    return model


def prune(model: keras.Model, plan: pruner.Plan, rounds: int,
          seed: int | None = None, data: Iterable | None = None,
          loss: scoring.Loss | None = None) -> dict[str, np.ndarray]:
    """Prunes `model` to the sparsity `rounds` rounds of `plan` reach.

    Each layer (each weight of a layerwise plan; all weights, or all
    units, together for a global one) keeps the count `rounds` prunings at
    `plan.fractions` would keep (`selection.remaining_after`), chosen by the
    criterion in `plan.criterion.at_init_iterations` score-and-prune steps.

    Args:
        model: a wrapped model, masks all ones or not.
        plan: `pruner.plan_pruning`'s for `model`.
        rounds: the round whose sparsity to reach, at least 1.
        seed: seeds random criteria.
        data: training batches, for criteria that read them.
        loss: as for `pruner.prune`.

    Returns:
        The new weight masks.

    Raises:
        ValueError: for scores that are NaN or infinite (naming the
            weight), or a criterion that needs `data` without it.

    Example:
        >>> plan = keras_lottery.pruning.pruner.plan_pruning(model, 0.2,
        ...                                         method="synflow")
        >>> at_init.prune(model, plan, rounds=15)  # 3.5% remain
    """
    start = pruner.current_masks(plan)
    targets = _targets(start, plan, rounds)
    iterations = plan.criterion.at_init_iterations
    masks = start
    for k in range(1, iterations + 1):
        scores = pruner.score(model, plan, seed, data, loss)
        masks = selection.select(
            scores, masks, _fractions(masks, targets, plan, k / iterations),
            plan.groupings, plan.scope)
        # The next scoring sees the network pruned so far.
        state.set_masks(model, masks)
    pruner.remove_dead_units(model, plan.output_unit_layers)
    return masks


def _count(mask: np.ndarray, grouping: selection.Grouping) -> int:
    """Remaining entries, or remaining units for a unit granularity."""
    if grouping.is_units:
        return int(selection.alive_units(mask, grouping.axis).sum())
    return int(np.count_nonzero(mask))


def _pools(plan: pruner.Plan) -> dict[str, list[str]]:
    """The weights whose remaining counts are pruned together, by pool.

    Layerwise: each weight alone. Global: all weight-granularity weights
    in one pool, all unit-granularity weights in another (each group of
    weights sharing units counted once, by its first weight).
    """
    pools: dict[str, list[str]] = {}
    shared = set()
    for _, key, _, _ in plan.slots:
        grouping = plan.groupings[key]
        if grouping.is_m_by_n:
            continue  # keeps m of n whatever the fraction
        if plan.scope == "layerwise":
            pools[key] = [key]
        elif grouping.is_units:
            if grouping.group is None or grouping.group not in shared:
                pools.setdefault("units", []).append(key)
                shared.add(grouping.group)
        else:
            pools.setdefault("weights", []).append(key)
    return pools


def _targets(start: Mapping[str, np.ndarray], plan: pruner.Plan,
             rounds: int) -> dict[str, tuple[int, int]]:
    """`{pool: (count now, count after rounds)}`."""
    targets = {}
    for pool, keys in _pools(plan).items():
        count = sum(_count(start[k], plan.groupings[k]) for k in keys)
        targets[pool] = (count, selection.remaining_after(
            count, plan.fractions[keys[0]], rounds))
    return targets


def _fractions(masks: Mapping[str, np.ndarray],
               targets: Mapping[str, tuple[int, int]], plan: pruner.Plan,
               progress: float) -> dict[str, float]:
    """The fractions that bring each pool to its schedule at `progress`.

    The schedule is exponential: `n0 * (target / n0) ** progress` remain,
    rounded; at `progress` 1 exactly the target.
    """
    fractions = dict.fromkeys(plan.fractions, 0.0)
    pools = _pools(plan)
    for pool, (initial, target) in targets.items():
        keys = pools[pool]
        alive = sum(_count(masks[k], plan.groupings[k]) for k in keys)
        wanted = target if progress >= 1 or not initial else round(
            initial * (target / initial) ** progress)
        fraction = min((alive - wanted) / alive, _ALL) if (
            alive > wanted) else 0.0
        members = keys if plan.scope == "layerwise" else [
            k for k in plan.fractions
            if plan.groupings[k].is_units == (pool == "units")]
        for key in members:
            fractions[key] = fraction
    if plan.scope == "global":
        # One fraction for all: the weights' pool, else the units'.
        one = fractions[pools["weights"][0]] if "weights" in pools else (
            max(fractions.values(), default=0.0))
        fractions = dict.fromkeys(fractions, one)
    return fractions

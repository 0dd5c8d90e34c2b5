"""Pure mask maths: arrays in, arrays out.

Every function here takes and returns `{name: np.ndarray}` dicts and never
touches a Keras or TensorFlow variable; `keras_lottery.core.state` does that.

Rounding rule: pruning a fraction `p` of `n` remaining weights removes
`floor(p * n + 0.5)` of them (round half up), so after one round
`n - floor(p * n + 0.5)` remain. `remaining_after(n, p, rounds)` applies the
rule round by round. Ties in magnitude break by position: of two equal
magnitudes, the one earlier in the row-major flattened weight (and, for the
global scope, in the earlier weight by sorted name) is pruned first.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import numpy as np

METHODS = ("magnitude", "random")
SCOPES = ("layerwise", "global")
# "m:n" stands for any "<m>:<n>" with 0 < m < n, e.g. "2:4".
GRANULARITIES = ("weight", "neuron", "filter", "channel", "head", "m:n")
UNIT_GRANULARITIES = ("neuron", "filter", "channel", "head")
_M_BY_N = re.compile(r"([0-9]+):([0-9]+)")


def count_to_prune(remaining: int, fraction: float) -> int:
    """Returns how many of `remaining` weights pruning `fraction` removes.

    Args:
        remaining: the number of weights still unpruned.
        fraction: the fraction of them to prune, in [0, 1).

    Returns:
        `floor(fraction * remaining + 0.5)`.
    """
    check_fraction(fraction)
    return int(math.floor(fraction * remaining + 0.5))


def remaining_after(count: int, fraction: float, rounds: int) -> int:
    """Returns how many of `count` weights remain after `rounds` rounds.

    Args:
        count: the number of weights before the first round.
        fraction: the fraction of the remaining weights pruned each round.
        rounds: the number of rounds.

    Returns:
        The remaining count under the module's rounding rule.
    """
    for _ in range(rounds):
        count -= count_to_prune(count, fraction)
    return count


def check_fraction(fraction: float, name: str = "fraction") -> None:
    """Raises ValueError unless `fraction` is a number in [0, 1)."""
    if isinstance(fraction, bool) or not isinstance(
        fraction, (int, float, np.floating, np.integer)
    ):
        raise ValueError(
            f"`{name}` must be a number in [0, 1). "
            f"Received: {name}={fraction!r}"
        )
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={fraction!r}"
        )




def prune(
    weights: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    fractions: Mapping[str, float],
    method: str = "magnitude",
    scope: str = "layerwise",
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Prunes a fraction of the remaining weights, returning new masks.

    Args:
        weights: `{name: array}`; only the entries where the mask is 1 count.
        masks: `{name: 0/1 array}` of the same shapes; entries that are 0
            stay 0.
        fractions: `{name: fraction}` for `scope="layerwise"`; for
            `scope="global"`, one fraction under any name applies to all
            weights together (all values must be equal).
        method: `"magnitude"` prunes the smallest `|weight|`; `"random"`
            prunes uniformly at random (the random-pruning control).
        scope: `"layerwise"` prunes each weight on its own; `"global"` ranks
            all remaining weights together.
        seed: seed of the random generator for `method="random"`.

    Returns:
        `{name: float32 0/1 array}`: new masks, a subset of the old ones.

    Raises:
        ValueError: for an unknown method or scope, or a bad fraction.

    Example:
        >>> prune({"w": np.array([3., -1., 2.])}, {"w": np.ones(3)},
        ...       {"w": 0.34})["w"]
        array([1., 0., 1.], dtype=float32)
    """
    check_choice("method", method, METHODS)
    check_choice("scope", scope, SCOPES)
    if method == "magnitude":
        scores = {name: np.abs(np.asarray(w, np.float64))
                  for name, w in weights.items()}
        if not all(np.all(np.isfinite(s)) for s in scores.values()):
            raise ValueError(
                "Cannot prune by magnitude: the weights hold NaN or inf.")
        return select(scores, masks, fractions, scope=scope)
    # Random: as many draws as a magnitude round prunes, uniform over the
    # remaining entries (of all weights together for the global scope).
    rng = np.random.default_rng(seed)
    names = sorted(weights)
    scores = {}
    for name in names:
        mask = np.asarray(masks[name])
        score = np.ones(mask.shape)
        if scope == "layerwise":
            _random_lowest(score, mask, fractions[name], rng)
        scores[name] = score
    if scope == "global":
        flat = [scores[n].reshape(-1) for n in names]
        _random_lowest_together(flat, [np.asarray(masks[n]).reshape(-1)
                                       for n in names],
                                next(iter(fractions.values())), rng)
    return select(scores, masks, fractions, scope=scope)


def _random_lowest(score, mask, fraction, rng) -> None:
    _random_lowest_together([score.reshape(-1)], [mask.reshape(-1)],
                            fraction, rng)


def _random_lowest_together(scores, masks, fraction, rng) -> None:
    """Scores 0, in place, `fraction` of the alive entries drawn at random.
    """
    alive = np.concatenate([np.flatnonzero(m) for m in masks])
    owner = np.concatenate([np.full(np.count_nonzero(m), i)
                            for i, m in enumerate(masks)]).astype(np.int64)
    k = count_to_prune(alive.size, fraction)
    chosen = rng.choice(alive.size, size=k, replace=False)
    for i, flat in enumerate(scores):
        flat[alive[chosen[owner[chosen] == i]]] = 0.0


def random_masks_like(
    masks: Mapping[str, np.ndarray], seed: int | None = None,
    groupings: Mapping[str, Grouping] | None = None,
) -> dict[str, np.ndarray]:
    """Returns random masks with the same number of ones per weight.

    Args:
        masks: `{name: 0/1 array}` whose per-weight sparsity to copy.
        seed: seed of the random generator.
        groupings: `{name: Grouping}` of structured masks: a unit
            granularity keeps the mask's number of whole units, at random
            units; `m:n` keeps each group's count at random positions in
            the group. Names left out are weight granularity.

    Returns:
        `{name: float32 0/1 array}`, each with as many ones as `masks[name]`
        at uniformly random positions (whole units for unit granularities).
    """
    rng = np.random.default_rng(seed)
    groupings = groupings or {}
    out, drawn = {}, {}
    for name in sorted(masks):
        mask = np.asarray(masks[name])
        grouping = groupings.get(name, Grouping())
        if grouping.is_units:
            alive = alive_units(mask, grouping.axis)
            keep = drawn.get(grouping.group)  # the same units in a group
            if keep is None:
                keep = np.zeros(alive.size, np.float32)
                keep[rng.choice(alive.size, size=int(alive.sum()),
                                replace=False)] = 1.0
                if grouping.group is not None:
                    drawn[grouping.group] = keep
            out[name] = _expand_units(keep, mask.shape, grouping.axis)
        elif grouping.is_m_by_n:
            groups = _groups(np.asarray(mask, np.float32), grouping)
            order = rng.random(groups.shape).argsort(axis=-1)
            ranks = order.argsort(axis=-1)
            kept = (ranks < groups.sum(axis=-1, keepdims=True))
            out[name] = _ungroup(kept.astype(np.float32), mask.shape,
                                 grouping)
        else:
            flat = np.zeros(mask.size, np.float32)
            keep = rng.choice(mask.size, size=int(np.count_nonzero(mask)),
                              replace=False)
            flat[keep] = 1.0
            out[name] = flat.reshape(mask.shape)
    return out


def shuffle_masks(masks: Mapping[str, np.ndarray],
                  seed: int | None = None) -> dict[str, np.ndarray]:
    """Returns each mask with its entries permuted at random.

    The shuffled-mask control of Frankle et al. (ICLR 2021, "Pruning
    Neural Networks at Initialization: Why are We Missing the Mark?"):
    each layer keeps its number of weights, anywhere in the layer. Entries
    are shuffled whatever the granularity, so a structured mask becomes an
    unstructured one of the same per-weight sparsity.

    Args:
        masks: `{name: 0/1 array}`.
        seed: seed of the random generator.

    Returns:
        `{name: float32 0/1 array}`: a uniformly random permutation of
        each mask's entries.
    """
    rng = np.random.default_rng(seed)
    return {name: rng.permutation(
        np.asarray(masks[name], np.float32).reshape(-1)).reshape(
            np.shape(masks[name])) for name in sorted(masks)}


def parse_granularity(value: str, name: str = "granularity") -> str:
    """Returns `value` checked: one of `GRANULARITIES`, "m:n" as "<m>:<n>".

    Raises:
        ValueError: naming `name` for an unknown granularity or an m:n
            pattern without 0 < m < n.
    """
    if isinstance(value, str):
        if value in GRANULARITIES and value != "m:n":
            return value
        match = _M_BY_N.fullmatch(value)
        if match and 0 < int(match[1]) < int(match[2]):
            return value
    raise ValueError(
        f"`{name}` must be one of {', '.join(map(repr, GRANULARITIES[:-1]))}"
        f" or 'm:n' with integers 0 < m < n, such as '2:4'. Received: "
        f"{name}={value!r}")


@dataclasses.dataclass(frozen=True)
class Grouping:
    """What pruning removes of one weight: entries, units or m:n groups.

    Attributes:
        granularity: a checked granularity (see `parse_granularity`).
        axis: the weight's axis of units (`neuron`, `filter`, `channel`,
            `head`) or along which m:n groups run; None for `weight`.
        group: weights with the same group share their units: a unit's
            score is the sum of its scores in each, and it goes from all
            of them (an attention head from the query, key, value and
            output kernels). None: the weight alone.
    """

    granularity: str = "weight"
    axis: int | None = None
    group: str | None = None

    @property
    def is_units(self) -> bool:
        return self.granularity in UNIT_GRANULARITIES

    @property
    def is_m_by_n(self) -> bool:
        return bool(_M_BY_N.fullmatch(self.granularity))

    @property
    def m_by_n(self) -> tuple[int, int]:
        m, n = self.granularity.split(":")
        return int(m), int(n)


def alive_units(mask: np.ndarray, axis: int) -> np.ndarray:
    """Whether each unit along `axis` keeps any entry, as a bool vector."""
    mask = np.asarray(mask)
    others = tuple(a for a in range(mask.ndim) if a != axis % mask.ndim)
    return np.any(mask != 0, axis=others)


def unit_sums(values: np.ndarray, axis: int) -> np.ndarray:
    """Sums `values` over every axis but `axis`: one number per unit."""
    values = np.asarray(values, np.float64)
    others = tuple(a for a in range(values.ndim) if a != axis % values.ndim)
    return values.sum(axis=others)


def select(
    scores: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    fractions: Mapping[str, float],
    groupings: Mapping[str, Grouping] | None = None,
    scope: str = "layerwise",
) -> dict[str, np.ndarray]:
    """Prunes the lowest-scored remaining entries or units; new masks.

    Criteria score (`keras_lottery.criteria`), this selects: the same
    rounding rule, tie-breaking and scopes for every criterion.

    Args:
        scores: `{name: array}`, higher is more important. The weight's
            shape for `weight` and m:n granularity; one score per unit
            (the length of the unit axis) for unit granularities.
        masks: `{name: 0/1 array}`; entries that are 0 stay 0, and pruned
            units are zeroed whole.
        fractions: `{name: fraction}` of the remaining entries (or units) to
            prune, as for `prune`. Ignored for m:n, which keeps at most m
            of each group of n consecutive entries along its axis.
        groupings: `{name: Grouping}`; names left out prune entries.
        scope: `"layerwise"`, or `"global"`: the remaining entries of all
            weight-granularity weights are ranked together, and so are the
            units of all unit-granularity weights, each weight's unit
            scores first divided by their mean over its remaining units
            (units of different layers have different sizes and scales,
            as in Torch-Pruning's mean normalizer); m:n stays per weight.

    Returns:
        `{name: float32 0/1 array}`, each a subset of the old mask.

    Raises:
        ValueError: for a bad scope or fraction, scores of the wrong shape,
            NaN or infinite scores, or unequal fractions under global
            scope.
    """
    check_choice("scope", scope, SCOPES)
    for name, fraction in fractions.items():
        check_fraction(fraction, f"fractions[{name!r}]")
    groupings = groupings or {}
    names = sorted(masks)
    new = {name: np.asarray(masks[name], np.float32).copy() for name in names}
    kinds = {name: groupings.get(name, Grouping()) for name in names}
    unit_scores = {}
    for name in names:
        unit_scores[name] = check_scores(scores[name], new[name].shape,
                                         kinds[name], f"The scores of {name!r}")
    if scope == "global" and len(set(fractions.values())) > 1:
        raise ValueError(
            "`scope='global'` prunes one fraction of all weights together."
            f" Received: fractions={dict(fractions)!r}")
    for name in names:
        if kinds[name].is_m_by_n:
            new[name] = _keep_m_by_n(unit_scores[name], new[name],
                                     kinds[name])
    entry_names = [n for n in names if kinds[n].granularity == "weight"]
    unit_names = [n for n in names if kinds[n].is_units]
    if scope == "layerwise":
        for name in entry_names:
            _prune_scored([unit_scores[name]], [new[name]], fractions[name])
        for members in _unit_groups(unit_names, kinds):
            _prune_units([[unit_scores[n] for n in members]],
                         [[new[n] for n in members]],
                         [[kinds[n] for n in members]],
                         fractions[members[0]], normalize=False)
    elif fractions:
        fraction = next(iter(fractions.values()))
        _prune_scored([unit_scores[n] for n in entry_names],
                      [new[n] for n in entry_names], fraction)
        groups = _unit_groups(unit_names, kinds)
        _prune_units([[unit_scores[n] for n in g] for g in groups],
                     [[new[n] for n in g] for g in groups],
                     [[kinds[n] for n in g] for g in groups], fraction,
                     normalize=True)
    return new


def check_scores(scores: np.ndarray, shape: tuple[int, ...],
                 grouping: Grouping, what: str) -> np.ndarray:
    """Returns `scores` as float64, checked for a weight of `shape`.

    Args:
        scores: per entry, or per unit for a unit granularity.
        shape: the weight's shape.
        grouping: the weight's grouping.
        what: how the error names the scores.

    Raises:
        ValueError: for the wrong shape, or NaN or infinite scores.
    """
    scores = np.asarray(scores, np.float64)
    want = (shape[grouping.axis],) if grouping.is_units else tuple(shape)
    if scores.shape != want:
        raise ValueError(
            f"{what} must have shape {want} for granularity "
            f"{grouping.granularity!r}. Received: shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{what} hold NaN or inf; refusing to prune with "
                         "them.")
    return scores


def _prune_scored(scores, masks, fraction) -> None:
    """Zeroes, in place, the lowest-scored `fraction` of the alive entries.
    """
    if not masks:
        return
    flat_masks = [m.reshape(-1) for m in masks]  # views: writes go to masks
    alive = np.concatenate([np.flatnonzero(m) for m in flat_masks])
    owner = np.concatenate(
        [np.full(np.count_nonzero(m), i) for i, m in enumerate(flat_masks)]
    ).astype(np.int64)
    k = count_to_prune(alive.size, fraction)
    if k == 0:
        return
    flat_scores = np.concatenate(
        [s.reshape(-1)[m != 0] for s, m in zip(scores, flat_masks)])
    chosen = _lowest(flat_scores, k)
    for i, flat in enumerate(flat_masks):
        flat[alive[chosen[owner[chosen] == i]]] = 0.0


def _lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """The positions of the `k` lowest scores, ties to the earlier one.

    The same set as `np.argsort(scores, kind="stable")[:k]`, in linear
    time (a partition, then the ties at the threshold by position): a
    ResNet50's 23M weights take a second, not ten.
    """
    if k >= scores.size:
        return np.arange(scores.size)
    threshold = np.partition(scores, k - 1)[k - 1]
    below = np.flatnonzero(scores < threshold)
    ties = np.flatnonzero(scores == threshold)[:k - below.size]
    return np.concatenate([below, ties])


def _unit_groups(names, kinds) -> list[list[str]]:
    """`names` in groups that share units, in order of their first name."""
    groups = {}
    for name in names:
        groups.setdefault(kinds[name].group or name, []).append(name)
    return list(groups.values())


def _prune_units(scores, masks, groupings, fraction, normalize) -> None:
    """Zeroes, in place, the lowest-scored `fraction` of the alive units.

    Each argument holds one list per group of weights that share units:
    a unit's score is the sum over the group, and it goes from all.
    """
    if not masks:
        return
    alive, ranked = [], []
    for group_scores, group_masks, group_kinds in zip(scores, masks,
                                                      groupings):
        live = np.logical_or.reduce([
            alive_units(m, g.axis) for m, g in zip(group_masks,
                                                   group_kinds)])
        score = np.sum(group_scores, axis=0)[live]
        mean = score.mean() if score.size else 0.0
        alive.append(live)
        ranked.append(score / mean if normalize and mean > 0 else score)
    flat_scores = np.concatenate(ranked)
    owner = np.concatenate([np.full(int(a.sum()), i)
                            for i, a in enumerate(alive)]).astype(np.int64)
    index = np.concatenate([np.flatnonzero(a) for a in alive])
    k = count_to_prune(flat_scores.size, fraction)
    chosen = np.argsort(flat_scores, kind="stable")[:k]
    for i, (group_masks, group_kinds) in enumerate(zip(masks, groupings)):
        units = index[chosen[owner[chosen] == i]]
        for mask, grouping in zip(group_masks, group_kinds):
            where = [slice(None)] * mask.ndim
            where[grouping.axis] = units
            mask[tuple(where)] = 0.0


def _groups(values: np.ndarray, grouping: Grouping) -> np.ndarray:
    """`values` with its group axis last, split in groups of n: (..., n)."""
    _, n = grouping.m_by_n
    moved = np.moveaxis(values, grouping.axis, -1)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // n, n)


def _ungroup(groups: np.ndarray, shape: tuple[int, ...],
             grouping: Grouping) -> np.ndarray:
    moved = groups.reshape(*groups.shape[:-2], -1)
    return np.ascontiguousarray(np.moveaxis(moved, -1, grouping.axis)
                                ).reshape(shape)


def _keep_m_by_n(scores, mask, grouping) -> np.ndarray:
    """Keeps the m best-scored alive entries of each group of n."""
    m, _ = grouping.m_by_n
    groups = _groups(mask, grouping)
    keyed = np.where(groups != 0, _groups(scores, grouping), -np.inf)
    # Ascending and stable: dead entries first, then the lowest scores;
    # of equal scores the earlier position goes first.
    order = np.argsort(keyed, axis=-1, kind="stable")
    ranks = np.argsort(order, axis=-1, kind="stable")
    kept = (ranks >= groups.shape[-1] - m) & (groups != 0)
    return _ungroup(kept.astype(np.float32), mask.shape, grouping)


def _expand_units(keep: np.ndarray, shape: tuple[int, ...],
                  axis: int) -> np.ndarray:
    """A mask of `shape` that is `keep[u]` across unit u along `axis`."""
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(keep.reshape(view), shape).astype(np.float32)


def check_choice(name: str, value: str, known: tuple[str, ...]) -> None:
    """Raises ValueError unless `value` is one of `known`."""
    if value not in known:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, known))}. "
            f"Received: {name}={value!r}"
        )

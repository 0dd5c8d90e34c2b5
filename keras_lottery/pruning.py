"""Pure mask maths: arrays in, arrays out.

Every function here takes and returns `{name: np.ndarray}` dicts and never
touches a Keras or TensorFlow variable; `keras_lottery.state` does that.

Rounding rule: pruning a fraction `p` of `n` remaining weights removes
`floor(p * n + 0.5)` of them (round half up), so after one round
`n - floor(p * n + 0.5)` remain. `remaining_after(n, p, rounds)` applies the
rule round by round. Ties in magnitude break by position: of two equal
magnitudes, the one earlier in the row-major flattened weight (and, for the
global scope, in the earlier weight by sorted name) is pruned first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

METHODS = ("magnitude", "random")
SCOPES = ("layerwise", "global")


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


def check_mask(name: str, mask: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raises ValueError unless `mask` has `shape` and holds only 0 and 1."""
    mask = np.asarray(mask)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"The mask for `{name}` must have shape {tuple(shape)}. "
            f"Received: masks[{name!r}].shape={tuple(mask.shape)}"
        )
    bad = mask[(mask != 0) & (mask != 1)]
    if bad.size:
        raise ValueError(
            f"The mask for `{name}` must hold only 0 and 1. "
            f"Received: a value of {bad.flat[0].item()!r} in masks[{name!r}]"
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
    for name, fraction in fractions.items():
        check_fraction(fraction, f"fractions[{name!r}]")
    names = sorted(weights)
    rng = np.random.default_rng(seed)
    new = {name: np.asarray(masks[name], np.float32).copy() for name in names}
    if scope == "layerwise":
        for name in names:
            _prune_flat(
                [weights[name]], [new[name]], fractions[name], method, rng
            )
    else:
        if len(set(fractions.values())) > 1:
            raise ValueError(
                "`scope='global'` prunes one fraction of all weights together."
                f" Received: fractions={dict(fractions)!r}"
            )
        fraction = next(iter(fractions.values()))
        _prune_flat(
            [weights[n] for n in names], [new[n] for n in names], fraction,
            method, rng,
        )
    return new


def _prune_flat(weights, masks, fraction, method, rng) -> None:
    """Zeroes, in place, `fraction` of the 1 entries of `masks` together."""
    flat_masks = [m.reshape(-1) for m in masks]  # views: writes go to masks
    alive = np.concatenate([np.flatnonzero(m) for m in flat_masks])
    owner = np.concatenate(
        [np.full(np.count_nonzero(m), i) for i, m in enumerate(flat_masks)]
    ).astype(np.int64)
    k = count_to_prune(alive.size, fraction)
    if k == 0:
        return
    if method == "magnitude":
        scores = np.concatenate(
            [np.abs(np.asarray(w, np.float64).reshape(-1))[m != 0]
             for w, m in zip(weights, flat_masks)]
        )
        if not np.all(np.isfinite(scores)):
            raise ValueError(
                "Cannot prune by magnitude: the weights hold NaN or inf."
            )
        chosen = np.argsort(scores, kind="stable")[:k]
    else:
        chosen = rng.choice(alive.size, size=k, replace=False)
    for i, flat in enumerate(flat_masks):
        flat[alive[chosen[owner[chosen] == i]]] = 0.0


def random_masks_like(
    masks: Mapping[str, np.ndarray], seed: int | None = None
) -> dict[str, np.ndarray]:
    """Returns random masks with the same number of ones per weight.

    Args:
        masks: `{name: 0/1 array}` whose per-weight sparsity to copy.
        seed: seed of the random generator.

    Returns:
        `{name: float32 0/1 array}`, each with as many ones as `masks[name]`
        at uniformly random positions.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(masks):
        mask = np.asarray(masks[name])
        flat = np.zeros(mask.size, np.float32)
        keep = rng.choice(mask.size, size=int(np.count_nonzero(mask)),
                          replace=False)
        flat[keep] = 1.0
        out[name] = flat.reshape(mask.shape)
    return out


def check_choice(name: str, value: str, known: tuple[str, ...]) -> None:
    """Raises ValueError unless `value` is one of `known`."""
    if value not in known:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, known))}. "
            f"Received: {name}={value!r}"
        )

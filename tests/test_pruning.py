"""Tests of the pure mask maths in keras_lottery.pruning.selection."""

import numpy as np
import pytest

from keras_lottery.core import state
from keras_lottery.pruning import selection


@pytest.mark.parametrize(
    "remaining,fraction,expected",
    [(10, 0.2, 2), (5, 0.1, 1), (4, 0.1, 0), (15, 0.1, 2), (25, 0.1, 3),
     (235200, 0.2, 47040), (1000, 0.1, 100), (0, 0.5, 0), (7, 0.0, 0)],
)
def test_count_to_prune_rounds_half_up(remaining, fraction, expected):
    assert selection.count_to_prune(remaining, fraction) == expected


def test_remaining_after_matches_round_by_round_rule():
    count = 30000
    for _ in range(7):
        count -= int(np.floor(0.2 * count + 0.5))
    assert selection.remaining_after(30000, 0.2, 7) == count


@pytest.mark.parametrize("rounds", [1, 3, 7])
def test_iterated_pruning_hits_exact_counts(rounds):
    rng = np.random.default_rng(0)
    weights = {"a": rng.normal(size=(37, 23)), "b": rng.normal(size=(11,))}
    masks = {k: np.ones(v.shape, np.float32) for k, v in weights.items()}
    fractions = {"a": 0.2, "b": 0.1}
    for _ in range(rounds):
        new = selection.prune(weights, masks, fractions)
        for k in masks:  # masks only ever lose entries
            assert np.all(new[k] <= masks[k])
        masks = new
    for k, v in weights.items():
        assert int(masks[k].sum()) == selection.remaining_after(
            v.size, fractions[k], rounds)


def test_magnitude_prunes_smallest_and_ties_break_by_position():
    weights = {"w": np.array([3.0, -1.0, 1.0, 2.0, -1.0])}
    masks = {"w": np.ones(5)}
    new = selection.prune(weights, masks, {"w": 0.4})
    np.testing.assert_array_equal(new["w"], [1, 0, 0, 1, 1])


def test_pruned_entries_never_come_back():
    weights = {"w": np.array([0.0, 5.0, 4.0, 3.0])}  # 0 is pruned already
    masks = {"w": np.array([0.0, 1.0, 1.0, 1.0])}
    new = selection.prune(weights, masks, {"w": 0.34})
    np.testing.assert_array_equal(new["w"], [0, 1, 1, 0])


def test_global_scope_ranks_all_weights_together():
    weights = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([10.0, 0.5])}
    masks = {k: np.ones_like(v) for k, v in weights.items()}
    new = selection.prune(weights, masks, {"a": 0.4, "b": 0.4}, scope="global")
    np.testing.assert_array_equal(new["a"], [0, 1, 1])
    np.testing.assert_array_equal(new["b"], [1, 0])


def test_random_method_is_seeded_and_keeps_counts():
    weights = {"w": np.arange(100.0)}
    masks = {"w": np.ones(100)}
    a = selection.prune(weights, masks, {"w": 0.3}, method="random", seed=1)
    b = selection.prune(weights, masks, {"w": 0.3}, method="random", seed=1)
    c = selection.prune(weights, masks, {"w": 0.3}, method="random", seed=2)
    np.testing.assert_array_equal(a["w"], b["w"])
    assert not np.array_equal(a["w"], c["w"])
    assert a["w"].sum() == 70


def test_random_masks_like_keeps_per_weight_counts():
    masks = {"a": (np.arange(50) % 3 == 0).astype(np.float32).reshape(5, 10)}
    out = selection.random_masks_like(masks, seed=0)
    assert out["a"].shape == (5, 10)
    assert out["a"].sum() == masks["a"].sum()
    assert not np.array_equal(out["a"], masks["a"])


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, "0.2", None, True])
def test_bad_fraction_is_named(fraction):
    with pytest.raises(ValueError, match=r"`fraction` must be"):
        selection.check_fraction(fraction)


def test_unknown_method_and_scope_list_known():
    w = {"w": np.ones(3)}
    with pytest.raises(ValueError, match=r"`method` must be one of "
                       r"'magnitude', 'random'. Received: method='l1'"):
        selection.prune(w, w, {"w": 0.1}, method="l1")
    with pytest.raises(ValueError, match=r"`scope` must be one of "
                       r"'layerwise', 'global'. Received: scope='net'"):
        selection.prune(w, w, {"w": 0.1}, scope="net")


def test_nan_weights_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        selection.prune({"w": np.array([1.0, np.nan])}, {"w": np.ones(2)},
                      {"w": 0.5})


def test_check_mask_messages():
    with pytest.raises(ValueError, match=r"must have shape \(2, 2\). "
                       r"Received: masks\['x'\].shape=\(4,\)"):
        state.check_mask("x", np.ones(4), (2, 2))
    with pytest.raises(ValueError, match=r"only 0 and 1. Received: a value "
                       r"of 0.5"):
        state.check_mask("x", np.array([0.5, 1.0]), (2,))

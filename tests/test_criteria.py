"""Criteria score, selection prunes: hand-computed examples of both.

Criteria (`keras_lottery.criteria`) turn weights, gradients and
activations into scores; `keras_lottery.pruning.selection.select` picks what to
prune under a granularity and scope. Both are pure functions on arrays.
"""

import numpy as np
import pytest

from keras_lottery.pruning import criteria
from keras_lottery.pruning import selection


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Criteria a test registers are gone after it."""
    monkeypatch.setattr(criteria, "_REGISTRY", dict(criteria._REGISTRY))



def data(weight, **fields):
    weight = np.asarray(weight, np.float64)
    defaults = {"mask": np.ones(weight.shape), "unit_axis": weight.ndim - 1,
                "channel_axis": 0, "rng": np.random.default_rng(0)}
    return criteria.WeightData(key="fc/kernel", weight=weight,
                               **{**defaults, **fields})


W = np.array([[1.0, -2.0, 0.5],
              [-3.0, 0.25, 1.0]])  # 2 inputs, 3 units
G = np.array([[0.5, 1.0, -4.0],
              [1.0, 2.0, 1.0]])
ENTRIES = selection.Grouping()
NEURONS = selection.Grouping("neuron", 1)
CHANNELS = selection.Grouping("channel", 0)


def score(name, grouping, **fields):
    return criteria.get(name).score(data(W, **fields), grouping)


def test_magnitude_scores_entries_and_unit_l1_norms():
    np.testing.assert_array_equal(score("magnitude", ENTRIES), np.abs(W))
    np.testing.assert_array_equal(score("magnitude", NEURONS),
                                  [4.0, 2.25, 1.5])
    np.testing.assert_array_equal(score("magnitude", CHANNELS), [3.5, 4.25])


def test_gradient_is_first_order_taylor():
    np.testing.assert_array_equal(score("gradient", ENTRIES, gradient=G),
                                  [[0.5, 2.0, 2.0], [3.0, 0.5, 1.0]])
    # Per unit |sum of w * g| (Molchanov et al. 2019): the terms of a unit
    # may cancel: unit 2 is 0.5 * -4 + 1 * 1 = -1.
    np.testing.assert_array_equal(score("gradient", NEURONS, gradient=G),
                                  [2.5, 1.5, 1.0])


def test_activation_is_wanda_per_weight_and_mean_output_per_unit():
    stats = {"input_norm": np.array([2.0, 10.0]),
             "input_mean_abs": np.array([0.5, 0.1]),
             "output_mean_abs": np.array([0.0, 3.0, 1.0])}
    np.testing.assert_array_equal(
        score("activation", ENTRIES, **stats),
        [[2.0, 4.0, 1.0], [30.0, 2.5, 10.0]])
    np.testing.assert_array_equal(score("activation", NEURONS, **stats),
                                  [0.0, 3.0, 1.0])
    np.testing.assert_array_equal(score("activation", CHANNELS, **stats),
                                  [0.5, 0.1])


def test_apoz_scores_units_by_their_nonzero_share():
    stats = {"output_zero_fraction": np.array([0.9, 0.0, 0.25]),
             "input_zero_fraction": np.array([0.5, 1.0])}
    np.testing.assert_allclose(score("apoz", NEURONS, **stats),
                               [0.1, 1.0, 0.75])
    np.testing.assert_allclose(score("apoz", CHANNELS, **stats), [0.5, 0.0])
    with pytest.raises(ValueError, match=r"Criterion 'apoz' scores units "
                       r"only.*Received: granularity='weight'"):
        score("apoz", ENTRIES, **stats)


def test_random_is_seeded():
    a = score("random", ENTRIES, rng=np.random.default_rng(3))
    b = score("random", ENTRIES, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert len(set(a.ravel())) == a.size


def test_bad_scores_are_refused():
    criteria.register("nan_scores", lambda d: np.full(d.weight.shape,
                                                      np.nan))
    criteria.register("wrong_shape", lambda d: np.ones(3))
    with pytest.raises(ValueError, match=r"The scores criterion "
                       r"'nan_scores' gave 'fc/kernel' hold NaN or inf"):
        score("nan_scores", ENTRIES)
    with pytest.raises(ValueError, match=r"The scores criterion "
                       r"'wrong_shape' gave 'fc/kernel' must have shape "
                       r"\(2, 3\) for granularity 'weight'. Received: "
                       r"shape \(3,\)"):
        score("wrong_shape", ENTRIES)


def test_register_checks_its_arguments():
    with pytest.raises(ValueError, match=r"`name` must be a new, non-empty "
                       r"string.*Received: name='magnitude'"):
        criteria.register("magnitude", np.abs)
    with pytest.raises(ValueError, match=r"needs `weights` or `units`"):
        criteria.register("nothing")
    with pytest.raises(ValueError, match=r"`needs` must hold only "
                       r"'gradients', 'activations', 'hessian_gradient', "
                       r"'synflow'. Received: needs=\('hessians',\)"):
        criteria.register("second_order", np.abs, needs=("hessians",))
    with pytest.raises(ValueError, match=r"^`at_init_iterations` must be an "
                       r"int >= 1. Received: at_init_iterations=0$"):
        criteria.register("never", np.abs, at_init_iterations=0)
    with pytest.raises(ValueError, match=r"`method` must be one of "
                       r"'magnitude', 'gradient', 'activation', 'apoz', "
                       r"'random', 'snip', 'grasp', 'synflow'.*Received: "
                       r"method='snap'"):
        criteria.get("snap")


# Selection.


def ones(*shape):
    return np.ones(shape, np.float32)


def test_units_are_pruned_whole_lowest_score_first():
    masks = {"w": ones(4, 5)}
    new = selection.select({"w": np.array([5.0, 1.0, 3.0, 1.0, 2.0])}, masks,
                         {"w": 0.4}, {"w": selection.Grouping("neuron", 1)})
    # Two of five units go: the lowest, 1.0 and 1.0 (ties: earlier first).
    np.testing.assert_array_equal(new["w"], np.tile([1, 0, 1, 0, 1], (4, 1)))


@pytest.mark.parametrize("granularity,axis", [("neuron", 1), ("filter", 3),
                                              ("channel", 2)])
def test_unit_counts_follow_the_rounding_rule(granularity, axis):
    rng = np.random.default_rng(0)
    shape = (23, 37) if axis == 1 else (3, 3, 29, 31)
    grouping = selection.Grouping(granularity, axis)
    masks = {"w": ones(*shape)}
    for rounds in range(1, 6):
        scores = {"w": rng.normal(size=shape[axis])}
        new = selection.select(scores, masks, {"w": 0.2}, {"w": grouping})
        assert np.all(new["w"] <= masks["w"])  # masks only lose entries
        alive = selection.alive_units(new["w"], axis)
        assert alive.sum() == selection.remaining_after(shape[axis], 0.2,
                                                      rounds)
        # Whole units: every entry of a unit is kept or none is.
        per_unit = np.moveaxis(new["w"], axis, 0).reshape(shape[axis], -1)
        assert set(per_unit.min(1)) == set(per_unit.max(1)) <= {0.0, 1.0}
        assert np.array_equal(per_unit.min(1), per_unit.max(1))
        masks = new


def test_global_units_compare_scores_relative_to_their_layer_mean():
    masks = {"a": ones(2, 4), "b": ones(2, 2)}
    # Layer a's units score around 100, b's around 1: raw scores would
    # prune only b. Divided by each layer's mean (100 and 1): a's units
    # are 0.5, 1.5, 1, 1 and b's 0.2, 1.8; the lowest two of six go.
    scores = {"a": np.array([50.0, 150.0, 100.0, 100.0]),
              "b": np.array([0.2, 1.8])}
    groupings = {"a": selection.Grouping("neuron", 1),
                 "b": selection.Grouping("neuron", 1)}
    new = selection.select(scores, masks, {"a": 0.3, "b": 0.3}, groupings,
                         scope="global")
    np.testing.assert_array_equal(new["a"][0], [0, 1, 1, 1])
    np.testing.assert_array_equal(new["b"][0], [0, 1])


def test_m_by_n_keeps_the_best_m_of_each_group_of_n():
    scores = np.array([[4.0, 1.0], [3.0, 2.0], [2.0, 3.0], [1.0, 4.0],
                       [1.0, 1.0], [1.0, 1.0], [5.0, 0.0], [0.0, 5.0]])
    mask = ones(8, 2)
    mask[0, 0] = 0.0  # already pruned: never comes back
    new = selection.select({"w": scores}, {"w": mask}, {"w": 0.0},
                         {"w": selection.Grouping("2:4", 0)})
    # Of equal scores the earlier entry goes first (rows 4 and 5).
    np.testing.assert_array_equal(new["w"], [
        [0, 0], [1, 0], [1, 1], [0, 1],
        [0, 0], [1, 1], [1, 0], [0, 1]])
    assert np.all(_groups_sum(new["w"], 4) <= 2)


def _groups_sum(mask, n):
    return mask.reshape(-1, n, mask.shape[1]).sum(1)


def test_random_masks_keep_unit_counts_and_m_by_n_counts():
    mask = ones(6, 10)
    mask[:, [1, 4, 5]] = 0.0
    out = selection.random_masks_like(
        {"u": mask, "m": np.tile([[1], [0], [1], [0]], (2, 3)).astype(
            np.float32)},
        seed=0, groupings={"u": selection.Grouping("neuron", 1),
                           "m": selection.Grouping("2:4", 0)})
    alive = selection.alive_units(out["u"], 1)
    assert alive.sum() == 7
    assert set(out["u"].min(0)) == {0.0, 1.0}
    assert np.array_equal(out["u"].min(0), out["u"].max(0))
    assert np.all(_groups_sum(out["m"], 4) == 2)


def test_select_refuses_wrong_shapes_and_nan():
    with pytest.raises(ValueError, match=r"scores of 'w' must have shape "
                       r"\(3,\) for granularity 'neuron'"):
        selection.select({"w": np.ones((2, 3))}, {"w": ones(2, 3)},
                       {"w": 0.5}, {"w": selection.Grouping("neuron", 1)})
    with pytest.raises(ValueError, match=r"scores of 'w' hold NaN"):
        selection.select({"w": np.array([1.0, np.nan])}, {"w": ones(2)},
                       {"w": 0.5})


@pytest.mark.parametrize("value", ["block", "4:2", "2:2", "0:4", "2-4", 3,
                                   None])
def test_unknown_granularity_lists_the_known_ones(value):
    with pytest.raises(ValueError, match=r"`granularity` must be one of "
                       r"'weight', 'neuron', 'filter', 'channel', 'head' or "
                       r"'m:n' "
                       rf"with integers 0 < m < n.*Received: "
                       rf"granularity={value!r}"):
        selection.parse_granularity(value)

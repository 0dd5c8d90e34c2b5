"""Pruning criteria: what "superfluous" means, as scores.

A criterion only scores: it turns one prunable weight (and, where it needs
them, gradients or activations on a few training batches) into one score per
entry, or one per unit; `keras_lottery.pruning.selection.select` then prunes
the lowest scores under the granularity, scope and rounding rule shared by all
criteria. Every function here is pure: arrays in, arrays out.

Built-in criteria (`names()`):

- `magnitude`: |w|; per unit the L1 norm of the unit's weights (Li et al.,
  ICLR 2017, "Pruning Filters for Efficient ConvNets").
- `gradient`: |w * g|, g the gradient of the loss summed over the score
  batches (first-order Taylor; SNIP's connection sensitivity, Lee et al.
  2019); per unit |sum over the unit of w * g|, the first-order change of
  the loss when the unit is removed (Molchanov et al., CVPR 2019).
- `activation`: |w_ij| * ||x_j||_2, x_j input feature j over every example
  (and position) of the score batches (Wanda, Sun et al. 2023); per output
  unit (neuron, filter) the mean |output| of the unit, per input channel
  the mean |input| of the channel.
- `apoz`: units only: 1 - the average percentage of zeros of the unit's
  output (Hu et al. 2016), or of the input channel for `channel`.
- `random`: uniform random scores (the random-pruning control).

Pruning at initialisation (`prune.at_init`; `keras_lottery.pruning.at_init`):

- `snip`: |w * g| at W0 on `prune.score_batches` batches (Lee et al.,
  ICLR 2019, "SNIP: Single-shot Network Pruning based on Connection
  Sensitivity"); the `gradient` criterion under the paper's name.
- `grasp`: w * Hg, H the Hessian and g the gradient of the loss of the
  logits divided by a temperature of 200 (Wang et al., ICLR 2020,
  "Picking Winning Tickets Before Training by Preserving Gradient Flow",
  and its code). The paper scores S = -w * Hg and removes the highest S:
  here higher means kept, so the score is -S.
- `synflow`: |w * dR/dw| for R the sum of the outputs of the network
  with every parameter replaced by its absolute value, on an all-ones
  input: no data (Tanaka et al., NeurIPS 2020, "Pruning neural networks
  without any data by iteratively conserving synaptic flow"). Pruning at
  initialisation applies it 100 times, rescoring the pruned network, on
  an exponential schedule to the target sparsity.

Register your own with one call:

    >>> def taylor_squared(data):
    ...     return (data.weight * data.gradient) ** 2
    >>> keras_lottery.register_criterion(
    ...     "taylor_squared", taylor_squared, needs=("gradients",))
    >>> keras_lottery.prune(model, 0.2, method="taylor_squared", data=batches)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

from keras_lottery.pruning import selection

NEEDS = ("gradients", "activations", "hessian_gradient", "synflow")
# Needs met without training batches.
DATA_FREE_NEEDS = frozenset({"synflow"})


@dataclasses.dataclass(frozen=True)
class WeightData:
    """What a criterion sees of one prunable weight.

    Attributes:
        key: the mask's key, `"<layer>/<weight>"`.
        weight: the effective weight (weight times mask), float64.
        mask: its 0/1 mask; pruned entries are never selected again, so a
            criterion may score them anyhow.
        unit_axis: the weight's axis of output units (neuron, filter), or
            None.
        channel_axis: the weight's axis of input channels, or None.
        rng: a seeded generator, for random criteria.
        gradient: d(loss)/d(weight) summed over the score batches (needs
            "gradients"), else None.
        input_norm: per input channel, ||x_c||_2 over every example and
            position of the score batches (needs "activations").
        input_mean_abs: per input channel, the mean |x_c|.
        input_zero_fraction: per input channel, the fraction of zeros.
        output_norm: per output unit, ||y_u||_2 of the layer's output
            (after its activation) over every example and position.
        output_mean_abs: per output unit, the mean |y_u|.
        output_zero_fraction: per output unit, the fraction of zeros.
        hessian_gradient: Hg, the Hessian of the loss (logits over the
            temperature `scoring.GRASP_TEMPERATURE`) times its gradient,
            over the score batches (needs "hessian_gradient").
        synflow_gradient: dR/dw in the absolute-value network on an
            all-ones input (needs "synflow"; no batches).
    """

    key: str
    weight: np.ndarray
    mask: np.ndarray
    unit_axis: int | None = None
    channel_axis: int | None = None
    rng: np.random.Generator | None = None
    gradient: np.ndarray | None = None
    input_norm: np.ndarray | None = None
    input_mean_abs: np.ndarray | None = None
    input_zero_fraction: np.ndarray | None = None
    output_norm: np.ndarray | None = None
    output_mean_abs: np.ndarray | None = None
    output_zero_fraction: np.ndarray | None = None
    hessian_gradient: np.ndarray | None = None
    synflow_gradient: np.ndarray | None = None


# (data) -> one score per entry of the weight.
WeightScore = Callable[[WeightData], np.ndarray]
# (data, axis, outputs) -> one score per unit along `axis`; `outputs` is
# True for output units (neuron, filter), False for input channels.
UnitScore = Callable[[WeightData, int, bool], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A named criterion: a per-entry and/or per-unit scoring function.

    Attributes:
        name: the name `prune(method=...)` takes.
        weights: scores each entry; None if the criterion scores units only.
        units: scores units; None sums `weights` over each unit.
        needs: of `NEEDS`: what `WeightData` must carry.
        at_init_iterations: how many times pruning at initialisation
            scores and prunes, on an exponential schedule to the target
            sparsity (SynFlow: 100); 1 scores once.
    """

    name: str
    weights: WeightScore | None
    units: UnitScore | None
    needs: frozenset[str]
    at_init_iterations: int = 1

    @property
    def needs_data(self) -> bool:
        """Whether scoring reads training batches (`data`)."""
        return bool(self.needs - DATA_FREE_NEEDS)

    def score(self, data: WeightData,
              grouping: selection.Grouping) -> np.ndarray:
        """Scores `data` for `grouping`: per entry, or per unit.

        Raises:
            ValueError: if the criterion cannot score this granularity, or
                returns scores of the wrong shape or NaN.
        """
        if grouping.is_units:
            outputs = grouping.granularity in ("neuron", "filter")
            # A head spans several kernels: its score is their sum of
            # per-weight scores (`units` scores one layer's own units).
            if self.units is not None and grouping.granularity != "head":
                scores = self.units(data, grouping.axis, outputs)
            else:
                scores = selection.unit_sums(self._weights(data, grouping),
                                           grouping.axis)
        else:
            scores = self._weights(data, grouping)
        return selection.check_scores(
            scores, data.mask.shape, grouping,
            f"The scores criterion {self.name!r} gave {data.key!r}")

    def _weights(self, data, grouping) -> np.ndarray:
        if self.weights is None:
            raise ValueError(
                f"Criterion {self.name!r} scores units only; use it with "
                "granularity 'neuron', 'filter' or 'channel'. Received: "
                f"granularity={grouping.granularity!r} for {data.key!r}")
        return self.weights(data)


def _magnitude(data: WeightData) -> np.ndarray:
    return np.abs(data.weight)


def _gradient(data: WeightData) -> np.ndarray:
    return np.abs(data.weight * data.gradient)


def _gradient_units(data: WeightData, axis: int, outputs: bool
                    ) -> np.ndarray:
    del outputs  # a unit's weights are the same slice either way
    return np.abs(selection.unit_sums(data.weight * data.gradient, axis))


def _activation(data: WeightData) -> np.ndarray:
    norm = data.input_norm
    if norm is not None and norm.ndim > 1:
        # The kernel's leading input axes: an attention output
        # projection's (heads, dim), one norm per entry.
        return np.abs(data.weight) * norm.reshape(
            norm.shape + (1,) * (data.weight.ndim - norm.ndim))
    if data.channel_axis is None:
        raise ValueError(
            "Criterion 'activation' scores a weight by the norm of its "
            f"input channel, and {data.key!r} has no input-channel axis: "
            "use it on Dense or conv kernels.")
    shape = [1] * data.weight.ndim
    shape[data.channel_axis] = data.weight.shape[data.channel_axis]
    return np.abs(data.weight) * data.input_norm.reshape(shape)


def _activation_units(data: WeightData, axis: int, outputs: bool
                      ) -> np.ndarray:
    del axis
    return data.output_mean_abs if outputs else data.input_mean_abs


def _apoz_units(data: WeightData, axis: int, outputs: bool) -> np.ndarray:
    del axis
    zeros = data.output_zero_fraction if outputs else (
        data.input_zero_fraction)
    return 1.0 - zeros


def _grasp(data: WeightData) -> np.ndarray:
    return data.weight * data.hessian_gradient


def _synflow(data: WeightData) -> np.ndarray:
    return np.abs(data.weight * data.synflow_gradient)


def _random(data: WeightData) -> np.ndarray:
    return data.rng.random(data.weight.shape)


def _random_units(data: WeightData, axis: int, outputs: bool) -> np.ndarray:
    del outputs
    return data.rng.random(data.weight.shape[axis])


_BUILT_IN = {
    "magnitude": Criterion("magnitude", _magnitude, None, frozenset()),
    "gradient": Criterion("gradient", _gradient, _gradient_units,
                          frozenset({"gradients"})),
    "activation": Criterion("activation", _activation, _activation_units,
                            frozenset({"activations"})),
    "apoz": Criterion("apoz", None, _apoz_units, frozenset({"activations"})),
    "random": Criterion("random", _random, _random_units, frozenset()),
    "snip": Criterion("snip", _gradient, _gradient_units,
                      frozenset({"gradients"})),
    "grasp": Criterion("grasp", _grasp, None,
                       frozenset({"hessian_gradient"})),
    "synflow": Criterion("synflow", _synflow, None, frozenset({"synflow"}),
                         at_init_iterations=100),
}
_REGISTRY: dict[str, Criterion] = dict(_BUILT_IN)


def names() -> list[str]:
    """The registered criteria, built-in ones first."""
    return list(_REGISTRY)


def get(name: str, argument: str = "method") -> Criterion:
    """Returns the criterion called `name`.

    Raises:
        ValueError: naming `argument` and listing the known criteria.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"`{argument}` must be one of "
            f"{', '.join(map(repr, _REGISTRY))}. Received: "
            f"{argument}={name!r}")
    return _REGISTRY[name]


def register(name: str, weights: WeightScore | None = None,
             units: UnitScore | None = None,
             needs: Sequence[str] = (),
             at_init_iterations: int = 1) -> None:
    """Registers a criterion under `name`, for `prune(method=name)`.

    Args:
        name: the criterion's name; a built-in name cannot be replaced.
        weights: `fn(data: WeightData) -> array` of the weight's shape,
            higher meaning more important.
        units: `fn(data: WeightData, axis: int, outputs: bool) -> array` of
            one score per unit along `axis` (`outputs`: output units, else
            input channels). Without it, units score the sum of `weights`
            over the unit.
        needs: some of `NEEDS`: what `data` must carry ("gradients",
            "activations", "hessian_gradient": `prune` then needs `data=`
            batches; "synflow" needs none).
        at_init_iterations: score-and-prune iterations when pruning at
            initialisation (see `Criterion`), at least 1.

    Raises:
        ValueError: for a built-in or empty name, neither function given,
            an unknown need, or fewer than 1 iteration.

    Example:
        >>> keras_lottery.register_criterion(
        ...     "taylor_squared", lambda d: (d.weight * d.gradient) ** 2,
        ...     needs=("gradients",))
    """
    if not isinstance(name, str) or not name or name in _BUILT_IN:
        raise ValueError(
            "`name` must be a new, non-empty string (built-in criteria: "
            f"{', '.join(_BUILT_IN)}). Received: name={name!r}")
    if weights is None and units is None:
        raise ValueError(
            "A criterion needs `weights` or `units` (or both). Received: "
            "weights=None, units=None")
    needs = (needs,) if isinstance(needs, str) else tuple(needs)
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(
            f"`needs` must hold only {', '.join(map(repr, NEEDS))}. "
            f"Received: needs={needs!r}")
    if (isinstance(at_init_iterations, bool)
            or not isinstance(at_init_iterations, int)
            or at_init_iterations < 1):
        raise ValueError(
            "`at_init_iterations` must be an int >= 1. Received: "
            f"at_init_iterations={at_init_iterations!r}")
    _REGISTRY[name] = Criterion(name, weights, units, frozenset(needs),
                                at_init_iterations)

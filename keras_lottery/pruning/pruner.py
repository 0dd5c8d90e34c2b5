"""Prunes a wrapped model: plans, scores, selects and applies masks.

`prune(model, fraction, ...)` is the public entry point. A criterion
(`keras_lottery.pruning.criteria`) turns weights, and data where it needs
them (`keras_lottery.pruning.scoring`), into scores; the selection maths of
`keras_lottery.pruning.selection` picks what to remove at the granularity,
scope and rounding rule asked for, the same for every criterion; the masks
are then written through `keras_lottery.core.state`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

import keras
import numpy as np

from keras_lottery.core import masking
from keras_lottery.core import prunable
from keras_lottery.core import state
from keras_lottery.pruning import criteria
from keras_lottery.pruning import dependency
from keras_lottery.pruning import scoring
from keras_lottery.pruning import selection


def prune(
    model: keras.Model,
    fraction: float,
    method: str = "magnitude",
    scope: str = "layerwise",
    fractions: Mapping[str, float] | None = None,
    seed: int | None = None,
    granularity: str = "weight",
    granularities: Mapping[str, str] | None = None,
    data: Iterable | None = None,
    loss: scoring.Loss | None = None,
) -> dict[str, np.ndarray]:
    """Prunes `fraction` of the remaining weights or units; they become 0.

    A criterion (`method`) scores the effective weights (weight times mask),
    with gradients or activations on `data` where it needs them; selection is
    the same for every criterion (`keras_lottery.pruning.selection`: rounding
    rule, tie-breaking, scopes). A pruned neuron or filter loses its kernel
    slice and its bias, and a BatchNormalization right after it (through
    activations, dropout or pooling) its gamma and beta there, so the unit
    outputs exactly 0 and `keras_lottery.shrink` can remove it.

    Args:
        model: a model holding `MaskedWrapper` layers.
        fraction: fraction of the remaining weights (units, for unit
            granularities) to prune, in [0, 1).
        method: a criterion of `keras_lottery.criteria.names()`:
            "magnitude", "gradient", "activation", "apoz", "random", or one
            registered with `keras_lottery.register_criterion`.
        scope: `"layerwise"` (each weight on its own) or `"global"` (see
            `keras_lottery.pruning.selection.select` for how units are
            compared).
        fractions: `{layer name: fraction}` overriding `fraction` for those
            layers, e.g. `{"output": 0.1}` as in the paper;
            `scope="layerwise"` only.
        seed: seed for random criteria.
        granularity: what is pruned: "weight"; "neuron" (a Dense output
            unit); "filter" (a conv output channel); "channel" (a conv
            input channel, in every filter); or "m:n" such as "2:4" (at
            most m kept of every n consecutive weights along the input
            axis; `fraction` does not apply). For the whole model,
            "neuron" and "filter" both prune the output units of every
            Dense and conv layer but the model's outputs, dependency-aware
            (`keras_lottery.pruning.dependency`): the layers whose
            channels are coupled (the branches of a residual add, a
            depthwise conv and its producer, a squeeze-and-excitation
            scale) form one group, scored together (the sum of each
            member's unit scores divided by their mean) and pruned at the
            same channels; BatchNormalization follows. Channels coupled
            to a layer that cannot lose them (LayerNormalization,
            attention, a nested model) stay, named in one warning.
        granularities: `{layer name: granularity}` overriding `granularity`
            for those layers (e.g. `{"output": "weight"}`); a layer named
            here with "neuron" or "filter" joins its group where it has
            one, else prunes its own units.
        data: `(inputs, labels)` batches for criteria that need gradients
            or activations (a list, or a batched `tf.data.Dataset`; all of
            it is used), or `(x, y)` arrays as `model.fit(x, y)` takes them.
        loss: `loss(labels, outputs) -> scalar` for the gradients; by
            default sparse categorical cross-entropy of logits.

    Returns:
        The new weight masks, as `get_masks` would return them.

    Raises:
        ValueError: for a bad fraction, method, scope or granularity, a
            granularity a layer does not have, an unknown layer name in
            `fractions` or `granularities`, or a criterion that needs
            `data` without it. Nothing is changed then.

    Example:
        >>> keras_lottery.prune(model, 0.2, fractions={"output": 0.1})
        >>> keras_lottery.prune(model, 0.2, method="gradient",
        ...                     granularity="neuron", data=batches,
        ...                     granularities={"output": "weight"})
    """
    plan = plan_pruning(model, fraction, method, scope, fractions,
                        granularity, granularities, data is not None)
    new = next_masks(model, plan, seed, data, loss)
    state.set_masks(model, new)
    remove_dead_units(model, plan.output_unit_layers)
    return new


def next_masks(model: keras.Model, plan: Plan, seed: int | None = None,
               data: Iterable | None = None,
               loss: scoring.Loss | None = None) -> dict[str, np.ndarray]:
    """The weight masks `prune` would set, changing nothing in `model`.

    Args:
        model: a model holding `MaskedWrapper` layers.
        plan: `plan_pruning`'s for `model`.
        seed, data, loss: as for `prune`.

    Returns:
        `{mask key: 0/1 array}`, each a subset of the current mask.

    Example:
        >>> plan = pruner.plan_pruning(model, 0.2)
        >>> masks = pruner.next_masks(model, plan)  # the model is unchanged
    """
    masks = current_masks(plan)
    grouped = any(g.granularity != "weight" for g in plan.groupings.values())
    if plan.criterion.name in selection.METHODS and not grouped:
        # The paper's rule, and the random control's draws, as ever.
        weights = {key: keras.ops.convert_to_numpy(variable.value)
                   for _, key, variable, _ in plan.slots}
        return selection.prune(weights, masks, plan.fractions,
                             method=plan.criterion.name, scope=plan.scope,
                             seed=seed)
    return selection.select(score(model, plan, seed, data, loss), masks,
                          plan.fractions, plan.groupings, plan.scope)


def current_masks(plan: Plan) -> dict[str, np.ndarray]:
    """`{mask key: its 0/1 array now}` for every weight of `plan`."""
    return {key: keras.ops.convert_to_numpy(mask.value)
            for _, key, _, mask in plan.slots}


def score(model: keras.Model, plan: Plan, seed: int | None = None,
          data: Iterable | None = None,
          loss: scoring.Loss | None = None) -> dict[str, np.ndarray]:
    """The criterion's scores of every weight of `plan`, as `prune` reads
    them: per entry, or per unit for unit granularities (zeros where the
    plan prunes nothing).

    Args:
        model: a model holding `MaskedWrapper` layers.
        plan: `plan_pruning`'s for `model`.
        seed, data, loss: as for `prune`.

    Raises:
        ValueError: for scores that are NaN or infinite (naming the
            weight), or of the wrong shape.
    """
    needs = plan.criterion.needs
    gradients, layers, per_weight = {}, {}, {}
    if needs & {"gradients", "activations"}:
        gradients, layers = scoring.statistics(model, needs, data, loss)
    if needs & {"hessian_gradient", "synflow"}:
        per_weight = scoring.weight_statistics(model, needs, data, loss)
    rng = np.random.default_rng(seed)
    scores = {}
    for wrapper, key, variable, mask in plan.slots:
        mask = keras.ops.convert_to_numpy(mask.value)
        grouping = plan.groupings[key]
        if not plan.fractions[key] and not grouping.is_m_by_n:
            # Nothing to prune here: no need to score it.
            scores[key] = np.zeros(mask.shape[grouping.axis]
                                   if grouping.is_units else mask.shape)
            continue
        shape = prunable.structure(wrapper.layer, variable)
        data_of_weight = criteria.WeightData(
            key=key,
            weight=np.asarray(keras.ops.convert_to_numpy(variable.value),
                              np.float64) * mask,
            mask=mask,
            unit_axis=_positive(shape.unit_axis, variable),
            channel_axis=_positive(shape.channel_axis, variable),
            rng=rng,
            gradient=gradients.get(id(variable)),
            # A sublayer's kernel (an attention projection) reads its own
            # inputs; the layer's outputs are the layer's.
            **{**layers.get(wrapper.name, {}),
               **layers.get(scoring.sublayer_key(wrapper, variable), {})},
            **per_weight.get(id(variable), {}))
        scores[key] = plan.criterion.score(data_of_weight, grouping)
        if key in plan.coupled:
            scores[key] = _normalized(scores[key], mask, grouping.axis)
    return scores


def _normalized(scores: np.ndarray, mask: np.ndarray,
                axis: int) -> np.ndarray:
    """Unit scores divided by their mean over the alive units.

    The members of a dependency group (a residual add's producers, a
    depthwise conv and its producer) differ in fan-in and scale: a 3x3
    conv's filter sums 9x the weights of a 1x1 conv's. Normalised, each
    member has one equal vote in the group's sum, which a plain sum of
    L1 norms would give to the widest member (Torch-Pruning's
    GroupMagnitudeImportance sums, then normalises the group).
    """
    alive = selection.alive_units(mask, axis)
    mean = float(np.abs(scores[alive]).mean()) if alive.any() else 0.0
    return scores / mean if mean > 0 else scores


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked pruning call: what to score, and how to select.

    Attributes:
        criterion: the criterion.
        fractions: `{mask key: fraction}`.
        groupings: `{mask key: selection.Grouping}`.
        slots: `(wrapper, key, variable, mask)` of every masked weight.
        scope: "layerwise" or "global".
        coupled: the keys of kernels pruned with a dependency group
            (`keras_lottery.pruning.dependency`): their unit scores are
            divided by their mean before a group sums them.
    """

    criterion: criteria.Criterion
    fractions: dict[str, float]
    groupings: dict[str, selection.Grouping]
    slots: list
    scope: str = "layerwise"
    coupled: frozenset[str] = frozenset()

    @property
    def output_unit_layers(self) -> tuple[str, ...]:
        """The layers pruned by neuron or filter."""
        return tuple(dict.fromkeys(
            wrapper.name for wrapper, key, _, _ in self.slots
            if self.groupings[key].granularity
            in prunable.OUTPUT_GRANULARITIES))


def plan_pruning(
    model: keras.Model,
    fraction: float,
    method: str = "magnitude",
    scope: str = "layerwise",
    fractions: Mapping[str, float] | None = None,
    granularity: str = "weight",
    granularities: Mapping[str, str] | None = None,
    has_data: bool = False,
) -> Plan:
    """Checks the arguments of `prune` against `model`; changes nothing.

    Args are those of `prune`; `has_data` says whether `data` is given.

    Raises:
        ValueError: as `prune` does, one line naming the argument.
    """
    selection.check_fraction(fraction)
    criterion = criteria.get(method)
    selection.check_choice("scope", scope, selection.SCOPES)
    granularity = selection.parse_granularity(granularity)
    fractions = dict(fractions or {})
    granularities = dict(granularities or {})
    if fractions and scope == "global":
        raise ValueError(
            "`fractions` applies to `scope='layerwise'` only. "
            f"Received: scope={scope!r}, fractions={fractions!r}"
        )
    wrappers = [w for w in state.wrappers(model) if w.masks]
    known = {w.name for w in wrappers}
    for argument, mapping in (("fractions", fractions),
                              ("granularities", granularities)):
        for name in mapping:
            if name not in known:
                raise ValueError(
                    f"`{argument}` names a layer with no mask: {name!r}. "
                    f"Masked layers: {', '.join(sorted(known))}. "
                    f"Received: {argument}={mapping!r}")
    for name, layer_fraction in fractions.items():
        selection.check_fraction(layer_fraction, f"fractions[{name!r}]")
    if criterion.needs_data and not has_data:
        raise ValueError(
            f"Criterion {criterion.name!r} reads "
            f"{' and '.join(sorted(criterion.needs))} on training batches:"
            " pass them as `data`. Received: data=None")
    per_key, groupings, slots = {}, {}, []
    skipped = []  # (wrapper, key, why): weights the granularity leaves
    coupled = set()
    walked = _dependency_units(model, wrappers, granularity, granularities)
    members, kept = walked or ({}, {})
    for wrapper in wrappers:
        argument = ("granularity" if wrapper.name not in granularities
                    else f"granularities[{wrapper.name!r}]")
        layer_granularity = selection.parse_granularity(
            granularities.get(wrapper.name, granularity), argument)
        for key, variable, mask in zip(wrapper.mask_keys(),
                                       wrapper.masked_variables,
                                       wrapper.masks):
            slots.append((wrapper, key, variable, mask))
            per_key[key] = fractions.get(wrapper.name, fraction)
            model_wide = wrapper.name not in granularities
            unit = members.get(id(variable))
            by_units = walked is not None and (
                layer_granularity in prunable.OUTPUT_GRANULARITIES)
            if model_wide and by_units and unit is None:
                # A model-wide neuron or filter granularity prunes the
                # output units of every layer whose channels can go, with
                # every layer coupled to them; the others keep them.
                fits = (_applies(wrapper, variable, "neuron")
                        or _applies(wrapper, variable, "filter"))
                skipped.append((wrapper, key, kept.get(id(variable), (
                    "it is inside a layer the analysis does not see "
                    "through") if fits else None)))
            elif model_wide and not by_units and not _applies(
                    wrapper, variable, layer_granularity):
                # A model-wide granularity prunes the weights it fits (the
                # heads of the attention layers, the filters of the
                # convolutions); the others keep every entry.
                skipped.append((wrapper, key, None))
            if skipped and skipped[-1][1] == key:
                per_key[key] = 0.0
                groupings[key] = selection.Grouping()
                continue
            if model_wide and unit is not None and by_units:
                groupings[key] = selection.Grouping(
                    unit.granularity, unit.axis, f"channels of {unit.group}")
            else:
                groupings[key] = _grouping(wrapper, variable,
                                           layer_granularity, argument)
                if unit is not None and groupings[key].granularity in (
                        prunable.OUTPUT_GRANULARITIES):
                    groupings[key] = dataclasses.replace(
                        groupings[key], group=f"channels of {unit.group}")
            if groupings[key].group and groupings[key].group.startswith(
                    "channels of "):
                coupled.add(key)
            if (criterion.weights is None and not groupings[key].is_units
                    and (per_key[key] or groupings[key].is_m_by_n)):
                raise ValueError(
                    f"Criterion {criterion.name!r} scores units only, and "
                    f"layer {wrapper.name!r} prunes by "
                    f"{layer_granularity!r}: give it granularity 'neuron', "
                    "'filter' or 'channel', or a fraction of 0. Received: "
                    f"{argument}={layer_granularity!r}")
    governed = [key for wrapper, key, _, _ in slots
                if wrapper.name not in granularities]
    if skipped and len(skipped) == len(governed):
        _refuse(model, skipped, granularity)
    if (any(why != dependency.OUTPUT for _, _, why in skipped)
            and (fraction or any(fractions.get(w.name)
                                 for w, _, _ in skipped))):
        warnings.warn(_skipped_message(skipped, granularity), stacklevel=3)
    return Plan(criterion, per_key, groupings, slots, scope,
                frozenset(coupled))


def _dependency_units(model, wrappers, granularity: str,
                      granularities: Mapping[str, str]
                      ) -> tuple[dict, dict] | None:
    """`dependency.units(model)` where a neuron or filter granularity
    applies; None where none does or the graph cannot be walked."""
    if not any(granularities.get(w.name, granularity)
               in prunable.OUTPUT_GRANULARITIES for w in wrappers):
        return None
    try:
        return dependency.units(model)
    except ValueError:  # not a Sequential or Functional model
        return None


def _refuse(model, skipped: list, granularity: str) -> None:
    """Raises: the model-wide granularity fits none of the weights it
    governs."""
    if all(why is None for _, _, why in skipped):
        # The granularity divides none of them: the first one's error.
        wrapper, key, _ = skipped[0]
        variable = dict(zip(wrapper.mask_keys(), wrapper.masked_variables))
        _grouping(wrapper, variable[key], granularity, "granularity")
    reasons = {}
    for wrapper, key, why in skipped:
        reasons.setdefault(why or f"{type(wrapper.layer).__name__} has none",
                           []).append(key)
    named = [f"{why}: {', '.join(keys[:2])}{', ...' if len(keys) > 2 else ''}"
             for why, keys in reasons.items()]
    raise ValueError(
        f"Granularity {granularity!r} finds no units that can go in model "
        f"{model.name!r}: {'; '.join(named)}. Received: "
        f"granularity={granularity!r}")


def _skipped_message(skipped: list, granularity: str) -> str:
    """One warning naming the weights a model-wide granularity leaves."""
    parts = []
    unfit = [f"{key} ({type(wrapper.layer).__name__})"
             for wrapper, key, why in skipped if why is None]
    if unfit:
        parts.append(f"granularity {granularity!r} does not apply to these "
                     "weights, which keep every entry: " + ", ".join(unfit))
    reasons = {}
    for _, key, why in skipped:
        # A model output's units are classes: kept without a word.
        if why is not None and why != dependency.OUTPUT:
            reasons.setdefault(why, []).append(key)
    if reasons:
        parts.append("these keep their units, coupled to channels that "
                     "cannot go: " + "; ".join(
                         f"{why}: {', '.join(keys)}"
                         for why, keys in reasons.items()))
    return "keras_lottery.prune: " + "; and ".join(parts)


def _applies(wrapper, variable, granularity: str) -> bool:
    """Whether `granularity` divides `variable` of `wrapper`'s layer."""
    if granularity == "weight":
        return True
    kind = "m:n" if ":" in granularity else granularity
    return kind in prunable.structure(wrapper.layer, variable).granularities


def _grouping(wrapper, variable, granularity: str,
              argument: str) -> selection.Grouping:
    """The grouping of `variable` for `granularity`, checked."""
    if granularity == "weight":
        return selection.Grouping()
    shape = prunable.structure(wrapper.layer, variable)
    kind = "m:n" if ":" in granularity else granularity
    if kind not in shape.granularities:
        has = ", ".join(["weight", *shape.granularities])
        raise ValueError(
            f"Granularity {granularity!r} does not apply to layer "
            f"{wrapper.name!r} ({type(wrapper.layer).__name__}), which has:"
            f" {has}. Received: {argument}={granularity!r}")
    axis = shape.channel_axis if kind in ("channel", "m:n") else (
        shape.unit_axis)
    # A head goes from all of its layer's kernels together.
    grouping = selection.Grouping(
        granularity, _positive(axis, variable),
        prunable.owner_path(wrapper.name, wrapper.layer, variable)
        if kind == "head" else None)
    if grouping.is_m_by_n:
        size = variable.shape[grouping.axis]
        if size % grouping.m_by_n[1]:
            raise ValueError(
                f"Granularity {granularity!r} needs the input size of layer "
                f"{wrapper.name!r} to be a multiple of "
                f"{grouping.m_by_n[1]}; its kernel has {size} inputs. "
                f"Received: {argument}={granularity!r}")
    return grouping


def _positive(axis: int | None, variable) -> int | None:
    return None if axis is None else axis % len(variable.shape)


def remove_dead_units(model: keras.Model, layers: Sequence[str]) -> None:
    """Zeroes the unit mask of every output unit whose kernel slice is 0.

    For the named layers (pruned by neuron or filter): a unit whose kernel
    mask is all 0 loses its bias, and a BatchNormalization fed by the layer
    (directly, or through activations, dropout or pooling) its gamma and
    beta for that unit. Unit masks only lose entries.

    Args:
        model: a model holding `MaskedWrapper` layers.
        layers: names of layers whose units are pruned whole.
    """
    alive = {}
    for wrapper in state.wrappers(model):
        if wrapper.name not in layers or not wrapper.masks:
            continue
        kernel, mask = wrapper.masked_variables[0], wrapper.masks[0]
        axis = prunable.structure(wrapper.layer, kernel).unit_axis
        if axis is None:
            continue
        alive[wrapper.name] = selection.alive_units(
            keras.ops.convert_to_numpy(mask.value), axis)
    updates = {}
    for wrapper in state.wrappers(model):
        if wrapper.units_mask is None:
            continue
        source = wrapper if wrapper.name in alive else (
            _normalized_producer(wrapper))
        if source is None or source.name not in alive:
            continue
        units = alive[source.name]
        if units.shape != tuple(wrapper.units_mask.shape):
            continue
        current = keras.ops.convert_to_numpy(wrapper.units_mask.value)
        updates[f"{wrapper.name}/{state.UNITS}"] = current * units
    if updates:
        state.set_masks(model, updates)
    try:
        updates = dependency.dead_units(model, layers)
    except ValueError:  # not a Sequential or Functional model
        return
    if updates:
        state.set_masks(model, updates)


# Layers a pruned unit's zero passes through on its way to a normalization.
_PASS_THROUGH = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
    keras.layers.ELU, keras.layers.Dropout, keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)


def _normalized_producer(wrapper) -> masking.MaskedWrapper | None:
    """The masked layer whose units a BatchNormalization normalizes."""
    if not isinstance(wrapper.layer, keras.layers.BatchNormalization):
        return None
    layer = wrapper
    for _ in range(8):  # a short chain of pass-through layers
        nodes = layer._inbound_nodes  # Keras 3 keeps no public graph API
        if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
            return None
        layer = nodes[0].parent_nodes[0].operation
        if isinstance(layer, masking.MaskedWrapper):
            return layer
        if not isinstance(layer, _PASS_THROUGH):
            return None
    return None

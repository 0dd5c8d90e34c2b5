"""Per-layer pruning rates and granularities from a run's `prune` config.

The config says one rate for the network, another for the output layer and
optionally one for convolutions; `pruning_plan` turns that into
`keras_lottery.pruning.pruner.plan_pruning` for a given model.
"""

from __future__ import annotations

import keras
import ml_collections

from keras_lottery.core import wrapping
from keras_lottery.models import zoo
from keras_lottery.pruning import criteria
from keras_lottery.pruning import pruner

_CONV_CLASSES = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose, keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


def layer_fractions(prune: ml_collections.ConfigDict,
                    model: keras.Model) -> dict[str, float]:
    """Per-layer pruning rates for `pruner.prune`, from the `prune` config.

    Layerwise scope only (global ranks all weights at one rate): the
    output layer prunes at `output_fraction_per_round`, convolutions at
    `conv_fraction_per_round` when set, the rest at `fraction_per_round`.
    """
    if prune.scope != "layerwise":
        return {}
    return {**_conv_and_output(model, prune.get("conv_fraction_per_round"),
                               prune.output_fraction_per_round),
            **dict.fromkeys(prune.get("dense_layers", ()), 0.0)}


def layer_granularities(prune: ml_collections.ConfigDict,
                        model: keras.Model) -> dict[str, str]:
    """Per-layer granularities for `pruner.prune`, from the `prune` config.

    The output layer prunes at `output_granularity`, convolutions at
    `conv_granularity` when set, the rest at `granularity`; the layers of
    `dense_layers` by weight (at rate 0: `layer_fractions`), so that a
    granularity they do not have, such as "2:4" on a patch embedding of
    49 inputs, leaves them alone.
    """
    return {**_conv_and_output(model, prune.get("conv_granularity"),
                               prune.output_granularity),
            **dict.fromkeys(prune.get("dense_layers", ()), "weight")}


def _conv_and_output(model: keras.Model, conv, output) -> dict:
    """`{layer: conv}` for masked convolutions (unless `conv` is None), and
    `{output layer: output}`."""
    per_layer = {}
    if conv is not None:
        for wrapper in wrapping.wrapped_layers(model):
            if wrapper.masks and isinstance(wrapper.layer, _CONV_CLASSES):
                per_layer[wrapper.name] = conv
    per_layer[zoo.OUTPUT_LAYER_NAME] = output
    return per_layer


def pruning_plan(config: ml_collections.ConfigDict,
                 model: keras.Model) -> pruner.Plan:
    """`pruner.plan_pruning` for the config's `prune` section on `model`.

    Raises:
        ValueError: for a granularity a layer does not have, a layer of
            `prune.dense_layers` the model does not have, or a
            criterion that needs data with `prune.score_batches` 0.
    """
    prune = config.prune
    names = {wrapper.name for wrapper in wrapping.wrapped_layers(model)}
    unknown = [n for n in prune.get("dense_layers", ()) if n not in names]
    if unknown:
        raise ValueError(
            f"`prune.dense_layers` must name wrapped layers of the model "
            f"({', '.join(sorted(names))}). Received: "
            f"prune.dense_layers={tuple(prune.dense_layers)!r}")
    if criteria.get(prune.method, "prune.method").needs_data and not (
            prune.score_batches):
        raise ValueError(
            f"`prune.score_batches` must be at least 1: criterion "
            f"{prune.method!r} reads training batches. Received: "
            f"prune.score_batches={prune.score_batches!r}")
    return pruner.plan_pruning(
        model, prune.fraction_per_round, prune.method, prune.scope,
        layer_fractions(prune, model), prune.granularity,
        layer_granularities(prune, model), has_data=True)

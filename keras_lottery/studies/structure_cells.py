"""The cells of the structure study (`keras_lottery.studies.structure`): one
granularity x criterion (x scope) of a network each, and their settings."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Cell:
    """One granularity x criterion (x scope) of a network.

    Attributes:
        name: `<granularity>_<criterion>[_global]`.
        prune: `config.prune` fields.
        num_rounds: pruning rounds after the dense round 0.
        controls: the rounds at which both controls run.
    """

    name: str
    prune: dict
    num_rounds: int
    controls: tuple[int, ...] = ()


# LeNet-300-100: 20,000 iterations per round (early stop falls at 2,500 to
# 13,000 in the paper-length runs of docs/RESULTS.md). Weight granularity:
# the paper's rates (20%, output 10%) for 18 rounds, down to 1.8%; neuron
# granularity: 20% of the units of fc1 and fc2 per round for 10 rounds,
# down to 10.7% of them; the output layer's units are the classes and it is
# not pruned then.
_NEURON = {"granularity": "neuron", "output_fraction_per_round": 0.0}
LENET = (
    Cell("weight_magnitude", {"method": "magnitude"}, 18, (7, 12, 18)),
    Cell("neuron_magnitude", {**_NEURON, "method": "magnitude"}, 10,
         (3, 6, 10)),
    Cell("weight_gradient", {"method": "gradient"}, 18),
    Cell("weight_activation", {"method": "activation"}, 18),
    Cell("neuron_gradient", {**_NEURON, "method": "gradient"}, 10),
    Cell("neuron_activation", {**_NEURON, "method": "activation"}, 10),
    Cell("neuron_apoz", {**_NEURON, "method": "apoz"}, 10),
    # Which layers IMP thins when it chooses (one threshold for all).
    Cell("weight_magnitude_global",
         {"method": "magnitude", "scope": "global"}, 18),
    # A fixed 50% in every hidden layer (the output layer stays dense):
    # one round.
    Cell("2-4_magnitude", {"granularity": "2:4", "method": "magnitude",
                           "output_fraction_per_round": 0.0}, 1, (1,)),
)
# Conv-2: filters (output channels) or channels (input channels) of both
# convolutions, neurons of the dense layers, 20% per round for 8 rounds
# (16.8% of the units); 4,000 iterations per round (Conv-2 on MNIST stops
# early at 2,000-3,000 with Adam 2e-4). Weight granularity: the paper's
# conv rate (10%) is too slow to reach 2% here; 20% for 15 rounds (3.5%).
_CONV_STEPS = 4000
_STRUCTURED = {"granularity": "neuron", "output_fraction_per_round": 0.0,
               "conv_fraction_per_round": 0.2}
CONV2 = (
    Cell("weight_magnitude", {"method": "magnitude",
                              "conv_fraction_per_round": 0.2}, 15,
         (5, 10, 15)),
    Cell("filter_magnitude", {**_STRUCTURED, "conv_granularity": "filter",
                              "method": "magnitude"}, 8, (3, 8)),
    Cell("channel_magnitude", {**_STRUCTURED, "conv_granularity": "channel",
                               "method": "magnitude"}, 8, (3, 8)),
    Cell("filter_gradient", {**_STRUCTURED, "conv_granularity": "filter",
                             "method": "gradient"}, 8),
    Cell("filter_apoz", {**_STRUCTURED, "conv_granularity": "filter",
                         "method": "apoz"}, 8),
    Cell("channel_activation", {**_STRUCTURED, "conv_granularity": "channel",
                                "method": "activation"}, 8),
    Cell("weight_gradient", {"method": "gradient",
                             "conv_fraction_per_round": 0.2}, 15),
    Cell("weight_activation", {"method": "activation",
                               "conv_fraction_per_round": 0.2}, 15),
)
# The round-length check: Conv-2's narrow structured tickets are still
# improving at 4,000 iterations (their validation loss falls to the last
# evaluation), so the same filter and channel cells run 3x longer, from
# their own dense round of the same length: whether the 4,000-iteration
# rounds change which structured tickets win, and the structured headline
# rows of docs/STRUCTURE.md (accuracy against size, the controls).
_LONG_STEPS = 3 * _CONV_STEPS
CONV2_LONG = tuple(cell for cell in CONV2
                   if cell.name in ("filter_magnitude", "channel_magnitude"))
# The small Vision Transformer on MNIST (configs/vit_mnist.py; issue 38):
# weights by magnitude and by Wanda's |W| x ||X|| ("activation"), 20% per
# round for 11 rounds (8.6% of the weights); attention heads (a head's
# query, key, value and output slices together) by magnitude, a quarter of
# each layer's 4 heads per round until one is left (3 rounds); MLP neurons
# (the first MLP Dense's units, with the second's input rows) by
# magnitude, 20% per round for 10 rounds (10.7% of them); 2:4 in every
# Dense and attention kernel of the blocks, one round. Structured cells
# and 2:4 leave the output layer dense, and 2:4 the patch embedding too
# (its 49 inputs are not a multiple of 4).
_KEEP_OUTPUT = {"output_fraction_per_round": 0.0}
VIT = (
    Cell("weight_magnitude", {"method": "magnitude"}, 11, (4, 8, 11)),
    Cell("weight_activation", {"method": "activation"}, 11, (4, 8, 11)),
    Cell("head_magnitude", {**_KEEP_OUTPUT, "granularity": "head",
                            "fraction_per_round": 0.25,
                            "method": "magnitude"}, 3, (1, 2, 3)),
    Cell("neuron_magnitude", {**_KEEP_OUTPUT, "granularity": "neuron",
                              "method": "magnitude"}, 10, (3, 6, 10)),
    Cell("2-4_magnitude", {**_KEEP_OUTPUT, "granularity": "2:4",
                           "dense_layers": "patch_embed",
                           "method": "magnitude"}, 1, (1,)),
)
# Parts whose first seed gets an instability analysis (binaries.instability;
# Frankle et al., ICML 2020) at these rewind steps (SMOKE_REWIND_STEPS in a
# smoke study): of its dense round, which picks the late-rewind step, and
# of the LATE_REWIND cell's last round, its sparsest ticket (the paper's
# question: is the sparse network IMP finds stable when rewound to k?).
INSTABILITY = {"vit": (0, 100, 500, 2000)}
SMOKE_REWIND_STEPS = (0, 5, 20)
# The cell of a part that runs again, for every seed, with late rewinding
# to the step its instability analysis picks (`rewind_search.pick`: the
# smallest stable step, else the least unstable), once that analysis is
# recorded, and only if the step is not 0: `late_rewind_cell`.
LATE_REWIND = {"vit": "weight_magnitude"}
_REWOUND = "_rewind"
PARTS = {
    "lenet": ("configs/lenet300_mnist.py", LENET,
              ["--config.train.num_steps=20000"]),
    "conv2": ("configs/conv2_mnist.py", CONV2,
              [f"--config.train.num_steps={_CONV_STEPS}",
               "--config.eval.every_steps=200"]),
    "conv2_long": ("configs/conv2_mnist.py", CONV2_LONG,
                   [f"--config.train.num_steps={_LONG_STEPS}",
                    "--config.eval.every_steps=400"]),
    "vit": ("configs/vit_mnist.py", VIT, []),
}


def late_rewind_cell(part: str, rewind_step: int) -> Cell:
    """The cell LATE_REWIND[part] rewinding to `rewind_step`, named
    `<cell>_rewind`."""
    cell = next(c for c in PARTS[part][1] if c.name == LATE_REWIND[part])
    return dataclasses.replace(
        cell, name=cell.name + _REWOUND,
        prune={**cell.prune, "rewind_step": rewind_step})


def cell_names(part: str) -> list[str]:
    """The names of every cell a part may record, in the report's order."""
    names = [cell.name for cell in PARTS[part][1]]
    if part in LATE_REWIND:
        names.append(LATE_REWIND[part] + _REWOUND)
    return names

"""keras_lottery: lottery-ticket pruning for Keras 3.

Finds sparse subnetworks that, reset to their initial weights, train to the
accuracy of the dense network (Frankle & Carbin, ICLR 2019), by iterative
magnitude pruning with rewinding.

Example:
    >>> import keras_lottery
    >>> model = keras_lottery.wrap(model)      # masks + rewind point (W0)
    >>> ...train...
    >>> keras_lottery.prune(model, 0.2, fractions={"output": 0.1})
    >>> keras_lottery.rewind(model)            # surviving weights back to W0
"""

from keras_lottery import callbacks
from keras_lottery import criteria  # noqa: F401  (keras_lottery.criteria)

# Registers the models' own layer classes, so that saved models load.
from keras_lottery import models  # noqa: F401
from keras_lottery.criteria import register as register_criterion
from keras_lottery.masking import MaskedWrapper
from keras_lottery.prunable import register as register_prunable
from keras_lottery.shrinking import shrink
from keras_lottery.state import get_masks
from keras_lottery.state import prune
from keras_lottery.state import reinitialize
from keras_lottery.state import rewind
from keras_lottery.state import set_masks
from keras_lottery.state import set_rewind_point
from keras_lottery.state import sparsity
from keras_lottery.wrapping import strip
from keras_lottery.wrapping import wrap

__all__ = [
    "MaskedWrapper",
    "callbacks",
    "get_masks",
    "prune",
    "register_prunable",
    "register_criterion",
    "reinitialize",
    "rewind",
    "run_experiment",
    "set_masks",
    "set_rewind_point",
    "shrink",
    "sparsity",
    "strip",
    "wrap",
]

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: keras_lottery.experiment imports the engine,
    # which imports this package.
    if name == "run_experiment":
        from keras_lottery.experiment import run_experiment

        return run_experiment
    raise AttributeError(f"module 'keras_lottery' has no attribute {name!r}")

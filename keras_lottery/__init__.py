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

This file is the one place the public names live; the code is in rooms by
concern (docs/ARCHITECTURE.md), so modules can move without users noticing.
"""

# Registers the models' own layer classes, so that saved models load.
from keras_lottery import models  # noqa: F401
from keras_lottery.core import wrapping
from keras_lottery.core.masking import MaskedWrapper
from keras_lottery.core.prunable import register as register_prunable
from keras_lottery.core.state import get_masks
from keras_lottery.core.state import reinitialize
from keras_lottery.core.state import rewind
from keras_lottery.core.state import set_masks
from keras_lottery.core.state import set_rewind_point
from keras_lottery.core.state import sparsity
from keras_lottery.core.wrapping import strip
from keras_lottery.core.wrapping import wrap
from keras_lottery.engine import callbacks
from keras_lottery.pruning import criteria
from keras_lottery.pruning.criteria import register as register_criterion
from keras_lottery.pruning.pruner import prune
from keras_lottery.pruning.shrinking import shrink

__all__ = [
    "MaskedWrapper",
    "callbacks",
    "criteria",
    "datasets",
    "export",
    "get_masks",
    "models",
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
    "wrapping",
]

__version__ = "0.1.0"

# Imported on first use, to keep `import keras_lottery` light: the lottery
# runner brings the engine and tf.data, export brings TensorFlow Lite.
_LAZY = {
    "run_experiment": ("keras_lottery.lottery.experiment", "run_experiment"),
    "datasets": ("keras_lottery.data.datasets", None),
    "export": ("keras_lottery.serving.export", None),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module
    raise AttributeError(f"module 'keras_lottery' has no attribute {name!r}")

"""Networks built by name: the zoo of the lottery-ticket papers (`zoo`).

`keras_lottery.models.build(name, ...)`, `names()`, `check_name()`,
`OUTPUT_LAYER_NAME` and `BUILDER_PARAMETERS` are the zoo's public names,
re-exported here so that `keras_lottery.models.<name>` keeps working.
"""

from keras_lottery.models.zoo import BUILDER_PARAMETERS
from keras_lottery.models.zoo import OUTPUT_LAYER_NAME
from keras_lottery.models.zoo import BiasPrunableDense
from keras_lottery.models.zoo import build
from keras_lottery.models.zoo import check_name
from keras_lottery.models.zoo import is_saved_model
from keras_lottery.models.zoo import names

__all__ = [
    "BUILDER_PARAMETERS",
    "OUTPUT_LAYER_NAME",
    "BiasPrunableDense",
    "build",
    "check_name",
    "is_saved_model",
    "names",
]

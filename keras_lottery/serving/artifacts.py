"""What an export writes, and where: formats, names and tolerances.

Shared by the exporter (`keras_lottery.serving.export`), its checks
(`keras_lottery.serving.checks`) and the LiteRT runner
(`keras_lottery.serving.litert`).
"""

from __future__ import annotations

import re

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("none", "int8")
LAYOUTS = ("dense", "sparse")
# What the `probabilities` output is: the logits' softmax (classes), their
# sigmoid (binary or multi-label), or no such output (a regression).
PROBABILITIES = ("softmax", "sigmoid", "none")
SIGNATURE = "serving_default"
SPARSITY_ASSET = "sparsity.json"

# Outputs of an artifact may differ from the Keras model's by this much,
# absolutely plus relatively (float32 sums in another order).
TOLERANCE = 1e-5
# An int8 model may lose at most this much test accuracy (0.5 points).
MAX_ACCURACY_DROP = 0.005
# Examples drawn from `representative_data` to calibrate int8 ranges.
NUM_CALIBRATION_EXAMPLES = 500

PROBE_BATCH_SIZES= (1, 7)
# Suffixes of the two variables that hold a masked weight in the sparse
# layout: `<layer>/<weight>/values` and `<layer>/<weight>/positions`.
VALUES= "values"
POSITIONS= "positions"
NAME_PATTERN= re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


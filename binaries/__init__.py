"""The command-line programs: lottery, controls, export, report, tune.

Importing the package hides TensorFlow's start-up noise unless asked for
(`binaries.quiet`): `--verbosity=1` or `TF_CPP_MIN_LOG_LEVEL=0` shows it;
and keeps Keras's import from loading scikit-learn and matplotlib, which no
binary uses through Keras (`binaries.lean`).
"""

from binaries import lean
from binaries import quiet

quiet.hide_tensorflow_noise()
lean.skip_keras_extras()

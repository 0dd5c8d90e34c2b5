"""The binaries keep Keras's import from loading scikit-learn and matplotlib."""

import os
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_keras_loads_without_sklearn_and_matplotlib_which_still_import():
    code = (
        "import sys\n"
        "import binaries\n"
        "import keras\n"
        "assert 'sklearn' not in sys.modules, 'sklearn'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib'\n"
        "import sklearn.base, matplotlib.figure\n"
        "from keras_lottery.lottery import runner\n"
        "print('ok')\n")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=_ROOT, capture_output=True,
        text=True, check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": _ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"

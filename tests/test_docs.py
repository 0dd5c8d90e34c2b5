"""The runnable examples in the docs run, and give what they say."""

import os
import re

import numpy as np

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(name):
    with open(os.path.join(_REPO_ROOT, "docs", name), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_the_pruning_example_runs_and_prunes_whole_units(monkeypatch,
                                                         capsys):
    monkeypatch.chdir(_REPO_ROOT)  # it reads ../shared/data/mnist
    namespace = {}
    exec(compile(python_blocks("PRUNING.md")[0], "PRUNING.md", "exec"),
         namespace)
    units = {k: int(v.sum()) for k, v in namespace["masks"].items()
             if k.endswith("/units")}
    assert units == {"bn1/units": 8, "conv2/units": 8, "fc/units": 31,
                     "output/units": 10}
    assert str(units) in capsys.readouterr().out
    model = namespace["model"]
    dead = namespace["masks"]["fc/units"] == 0
    assert np.all(model.get_layer("fc").layer.kernel.numpy()[:, dead] == 0)

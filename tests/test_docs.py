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


def _readme_blocks():
    with open(os.path.join(_REPO_ROOT, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_the_readme_run_experiment_example_runs(monkeypatch, tmp_path,
                                                capsys):
    monkeypatch.chdir(_REPO_ROOT)  # it reads ../shared/data/mnist
    (code,) = [b for b in _readme_blocks() if "run_experiment(" in b]
    assert "/tmp/my_ticket" in code and "num_steps=300" in code
    # Its own workdir; rounds of 100 steps instead of 300, to stay fast.
    code = code.replace("/tmp/my_ticket", str(tmp_path / "run")).replace(
        "num_steps=300", "num_steps=100")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    summary = namespace["summary"]
    assert [e["round"] for e in summary] == [0, 1, 2]
    assert 1 > summary[1]["remaining_fraction"] > summary[2][
        "remaining_fraction"]
    assert all(e["test_accuracy"] > 0.5 for e in summary)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("0 1.0 ")
    # The workdir is a lottery workdir: a rerun resumes (nothing to train).
    assert os.path.exists(tmp_path / "run" / "summary.json")


def test_the_custom_regression_example_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(_REPO_ROOT)  # it imports docs.examples
    (code,) = [b for b in python_blocks("CUSTOM.md") if "load_diabetes" in b]
    assert '"/tmp/diabetes"' in code and "num_steps=300" in code
    # Its own workdir; rounds of 100 steps instead of 300, to stay fast.
    code = code.replace('"/tmp/diabetes"', repr(str(tmp_path / "run")))
    code = code.replace("num_steps=300", "num_steps=100")
    namespace = {}
    exec(compile(code, "CUSTOM.md", "exec"), namespace)
    summary = namespace["summary"]
    assert [(e["round"], e["compared_metric"], e["compared_mode"])
            for e in summary] == [(r, "mae", "min") for r in range(3)]
    # It learned: better than predicting the training mean.
    (_, train_y), (_, test_y) = namespace["tabular_tasks"].load_diabetes("")
    assert summary[0]["test_mae"] < 0.8 * np.mean(np.abs(
        test_y - train_y.mean()))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("0 1.0 ")
    assert len(printed) == 3

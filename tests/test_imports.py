"""Models and datasets named by import path (`package.module:function`)."""

import os
import re
import textwrap

import keras
import numpy as np
import pytest

from configs import mnist1d_mlp
from keras_lottery.base import files
from keras_lottery.base import imports
from keras_lottery.base import paths
from keras_lottery.data import datasets
from keras_lottery.data import readers
from keras_lottery.lottery import runner
from keras_lottery.models import zoo

_EXAMPLES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
    "examples")

# A module of builders and loaders, good and bad, importable as `user_task`.
_USER_TASK = '''
import keras
import numpy as np

NOT_A_FUNCTION = 3

def build(input_shape, num_classes, weight_decay, seed):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes,
                                                  name="output")(x))

def build_positional(shape, classes):
    return None

def build_list(input_shape, num_classes, weight_decay, seed):
    return [1, 2]

def build_unbuilt(input_shape, num_classes, weight_decay, seed):
    return keras.Sequential([keras.layers.Dense(num_classes, name="output")])

def build_no_output(input_shape, num_classes, weight_decay, seed):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes,
                                                  name="logits")(x))

def load(data_dir):
    rng = np.random.default_rng(0)
    return ((rng.random((30, 4, 1)), np.arange(30) % 3),
            (rng.random((12, 4, 1)), np.arange(12) % 3))

def load_dict(data_dir):
    return {"x": 1}

def load_uneven(data_dir):
    return ((np.zeros((30, 4)), np.zeros(29, int)),
            (np.zeros((12, 4)), np.zeros(12, int)))

def load_negative(data_dir):
    return ((np.zeros((30, 4)), np.full(30, -1)),
            (np.zeros((12, 4)), np.zeros(12, int)))

def load_float_labels(data_dir):
    return ((np.zeros((30, 4)), np.zeros(30)),
            (np.zeros((12, 4)), np.zeros(12, int)))

def load_other_shapes(data_dir):
    return ((np.zeros((30, 4)), np.zeros(30, int)),
            (np.zeros((12, 5)), np.zeros(12, int)))
'''


@pytest.fixture
def user_task(tmp_path, monkeypatch):
    (tmp_path / "user_task.py").write_text(textwrap.dedent(_USER_TASK))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_task"


_BUILD = ("input_shape", "num_classes", "weight_decay", "seed")


@pytest.mark.parametrize(("name", "message"), [
    ("user_task", "`model.name` must be a known name or an import path "
     "'package.module:function'. Received: model.name='user_task'"),
    ("user_task:build()", "`model.name` must be a known name or an import "
     "path 'package.module:function'. Received: "
     "model.name='user_task:build()'"),
    ("no_such_module:build", "`model.name` names a module that cannot be "
     "imported (No module named 'no_such_module'); is its package on the "
     "Python path? Received: model.name='no_such_module:build'"),
    ("user_task:missing", "`model.name` names an attribute that module "
     "'user_task' does not have: 'missing'. Received: "
     "model.name='user_task:missing'"),
    ("user_task:NOT_A_FUNCTION", "`model.name` must name a function; "
     "'NOT_A_FUNCTION' is of type int. Received: "
     "model.name='user_task:NOT_A_FUNCTION'"),
    ("user_task:build_positional", "`model.name` must name a function that "
     "takes the keyword arguments (input_shape, num_classes, weight_decay, "
     "seed); build_positional(shape, classes) does not (missing a "
     "required argument: 'shape'). Received: "
     "model.name='user_task:build_positional'"),
])
def test_resolve_refuses_in_one_line(user_task, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        imports.resolve(name, "model.name", _BUILD)


def test_resolve_returns_the_function(user_task):
    build = imports.resolve("user_task:build", "model.name", _BUILD)
    assert build.__name__ == "build" and build.__module__ == "user_task"


def test_build_by_import_path(user_task):
    model = zoo.build("user_task:build", (4, 1), 3, seed=0)
    assert isinstance(model, keras.Model)
    assert model.get_layer(zoo.OUTPUT_LAYER_NAME).units == 3


@pytest.mark.parametrize(("builder", "problem"), [
    ("build_list", "a function that returns a keras.Model; it returned a "
     "list"),
    ("build_unbuilt", "a function that returns a built model (start it "
     "with keras.Input); its model is not built"),
    ("build_no_output", "a function whose model has a layer named "
     "'output'"),
])
def test_build_refuses_what_a_builder_returns(user_task, builder, problem):
    message = f"`name` must name {problem}"
    with pytest.raises(ValueError, match=re.escape(message)):
        zoo.build(f"user_task:{builder}", (4, 1), 3)


def test_load_by_import_path_splits_as_built_in_datasets(user_task):
    splits = datasets.load("user_task:load", validation_size=6, seed=0,
                           normalization="none")
    assert splits.train_x.shape == (24, 4, 1)
    assert splits.validation_x.shape == (6, 4, 1)
    assert splits.test_x.shape == (12, 4, 1)
    assert splits.num_classes == 3
    assert splits.train_x.dtype == np.float32
    assert splits.train_y.dtype == np.int32


@pytest.mark.parametrize(("loader", "problem"), [
    ("load_dict", "it returned a dict"),
    ("load_uneven", "train_x has 30 examples and train_y 29 labels"),
    ("load_negative", "train_y has a negative label, -1"),
    ("load_float_labels", "train_y is float64 of shape (30,), not integer "
     "labels of shape (N,) (a loss other than sparse categorical "
     "cross-entropy takes targets of any shape)"),
    ("load_other_shapes", "train_x's examples have shape (4,) and test_x's "
     "(5,)"),
])
def test_load_refuses_what_a_loader_returns(user_task, loader, problem):
    with pytest.raises(readers.DataError, match=re.escape(
            "`name` must name a function that returns ((train_x, train_y), "
            f"(test_x, test_y)); {problem}. Received: "
            f"name='user_task:{loader}'")):
        datasets.load(f"user_task:{loader}", validation_size=6,
                      normalization="none")


def test_check_config_refuses_a_bad_import_path_before_the_workdir(
        user_task, tmp_path):
    config = mnist1d_mlp.get_config("smoke")
    config.data.name = "user_task:load_missing"
    with pytest.raises(ValueError, match=re.escape(
            "`data.name` names an attribute that module 'user_task' does "
            "not have: 'load_missing'")):
        runner.run(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_lottery_runs_the_documented_example(monkeypatch, tmp_path):
    # docs/examples/custom_task.py: a Conv + BatchNorm model on a fresh
    # MNIST-1D, named by import path; one pruning round.
    monkeypatch.syspath_prepend(_EXAMPLES)
    config = mnist1d_mlp.get_config("smoke")
    config.model.name = "custom_task:build"
    config.data.name = "custom_task:load"
    config.prune.num_rounds = 1
    config.export.enabled = False
    workdir = str(tmp_path)
    summary = runner.run(config, workdir)
    assert [entry["round"] for entry in summary] == [0, 1]
    masks = files.read_arrays(paths.masks_file(workdir, 1))
    assert sorted(masks) == ["conv1/kernel", "conv2/kernel", "output/kernel"]
    assert files.read_json(paths.config_file(workdir))["model"]["name"] == (
        "custom_task:build")

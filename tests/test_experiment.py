"""`keras_lottery.run_experiment`: the experiment as one library call."""

import os

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery.analysis import report
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.data import streams
from keras_lottery.lottery import controls
from keras_lottery.lottery import runner

_SHAPE = (20, 1)
_CLASSES = 3


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, _CLASSES, n)
    # Learnable: the class shifts the signal.
    x = (rng.normal(size=(n, *_SHAPE)) + y[:, None, None]).astype("float32")
    return x, y


def _build():
    inputs = keras.Input(_SHAPE)
    x = keras.layers.Conv1D(8, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(_CLASSES, name="output")(x))


class _Record(keras_lottery.callbacks.ExperimentCallback):

    def __init__(self, stop_at=None):
        self.evaluations, self.rounds, self.stop_at = [], [], stop_at

    def on_evaluation(self, round_index, record):
        self.evaluations.append((round_index, record["step"]))
        if (round_index, record["step"]) == self.stop_at:
            raise KeyboardInterrupt("interrupted")

    def on_round_end(self, round_index, metrics):
        self.rounds.append(round_index)


def _run(workdir, train=None, build=_build, **kwargs):
    x, y = _data()
    arguments = dict(
        test_data=_data(60, seed=1), workdir=str(workdir), num_steps=20,
        eval_every_steps=10, batch_size=16, jit_compile=False,
        prune={"num_rounds": 2, "fraction_per_round": 0.5}, verbose=0)
    arguments.update(kwargs)
    return keras_lottery.run_experiment(
        build, (x, y) if train is None else train, **arguments)


def test_runs_resumes_and_leaves_a_workdir_controls_and_report_accept(tmp_path):
    record = _Record()
    summary = _run(tmp_path / "run", callbacks=[record])
    assert [e["round"] for e in summary] == [0, 1, 2]
    assert summary[2]["remaining_fraction"] < summary[1][
        "remaining_fraction"] < 1
    assert record.rounds == [0, 1, 2]
    assert record.evaluations == [(r, s) for r in range(3) for s in (10, 20)]
    config = files.read_json(paths.config_file(str(tmp_path / "run")))
    assert config["data"]["name"] == "npz"
    assert config["model"]["name"] == str(tmp_path / "run" / "init.keras")
    # 10% of the 240 training examples held out for early stopping.
    assert config["data"]["validation_size"] == 24

    again = _Record()
    assert _run(tmp_path / "run", callbacks=[again]) == summary
    assert again.rounds == again.evaluations == []  # all done: skipped

    control = controls.run_control(str(tmp_path / "run"), "random_prune", [2])
    assert [e["round"] for e in control] == [2]
    masks = files.read_arrays(paths.masks_file(str(tmp_path / "run"), 2))
    random = files.read_arrays(paths.masks_file(
        paths.control_workdir(str(tmp_path / "run"), "random_prune"), 2))
    assert {k: v.sum() for k, v in masks.items()} == {
        k: v.sum() for k, v in random.items()}
    table = report.write_report([str(tmp_path / "run")],
                                str(tmp_path / "report"))
    assert os.path.exists(tmp_path / "report" / "report.md"), table


def test_an_interrupted_run_resumes_to_the_uninterrupted_masks(tmp_path):
    _run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", callbacks=[_Record(stop_at=(1, 10))])
    assert not os.path.exists(paths.metrics_file(str(tmp_path / "cut"), 1))
    _run(tmp_path / "cut")
    for round_index in (1, 2):
        whole = files.read_arrays(paths.masks_file(str(tmp_path / "whole"),
                                                   round_index))
        cut = files.read_arrays(paths.masks_file(str(tmp_path / "cut"),
                                                 round_index))
        assert all(np.array_equal(whole[k], cut[k]) for k in whole)


def _untimed(summary):
    return [{k: v for k, v in entry.items() if not k.endswith("seconds")}
            for entry in summary]


def test_arrays_are_saved_and_datasets_streamed_in_place(tmp_path):
    x, y = _data()
    validation = _data(30, seed=2)
    examples = tf.data.Dataset.from_tensor_slices((x, y))
    results = {}
    for name, train in (("arrays", (x, y)), ("batched", examples.batch(7)),
                        ("unbatched", examples)):
        results[name] = _run(tmp_path / name, train=train, prune={
            "num_rounds": 1}, validation_data=validation)
        config = files.read_json(paths.config_file(str(tmp_path / name)))
        assert config["data"]["validation_size"] == 30
        saved = os.path.isdir(tmp_path / name / "data")
        if name == "arrays":
            assert saved and config["data"]["name"] == "npz"
            continue
        # Nothing of a dataset is written; the config names it as given.
        assert not saved
        assert (config["data"]["name"], config["data"]["dir"]) == (
            streams.GIVEN_LOADER, "given:train,test,validation")
    # Batches or single examples: the same examples, the same run.
    assert _untimed(results["batched"]) == _untimed(results["unbatched"])
    # Run again with them, it resumes; in a process not given them (a
    # binary's), the run says what to do in one line.
    again = _run(tmp_path / "batched", train=examples.batch(7), prune={
        "num_rounds": 1}, validation_data=validation)
    assert _untimed(again) == _untimed(results["batched"])
    streams._GIVEN.clear()
    config = files.read_json(paths.config_file(str(tmp_path / "batched")))
    with pytest.raises(ValueError, match=(
            r"^`data.dir` names datasets given as objects to "
            r"keras_lottery.run_experiment, .*Received: data.dir="
            r"'given:train,test,validation'$")):
        runner.run(ml_collections.ConfigDict(config),
                   str(tmp_path / "batched"))


@keras.saving.register_keras_serializable(package="test_experiment")
class SubclassedNet(keras.Model):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras_lottery.MaskedWrapper(
            keras.layers.Conv1D(8, 3, name="conv"))
        self.norm = keras_lottery.MaskedWrapper(
            keras.layers.BatchNormalization(name="bn"), masked=False)
        self.pool = keras.layers.GlobalAveragePooling1D()
        self.out = keras_lottery.MaskedWrapper(
            keras.layers.Dense(_CLASSES, name="output"))

    def call(self, x, training=False):
        x = keras.ops.relu(self.norm(self.conv(x), training=training))
        return self.out(self.pool(x))


def test_a_subclassed_model_holding_its_wrappers_runs(tmp_path):
    summary = _run(tmp_path / "sub", build=SubclassedNet)
    assert [e["round"] for e in summary] == [0, 1, 2]
    assert summary[2]["remaining_fraction"] < 1


def _not_a_model():
    return "model"


def _no_output_layer():
    inputs = keras.Input(_SHAPE)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(
        keras.layers.Flatten()(inputs)))


_X, _Y = _data()


@pytest.mark.parametrize("arguments, message", [
    (dict(build=_not_a_model),
     r"^`build_model` must return a keras.Model; it returned a str"),
    (dict(build=_no_output_layer),
     r"^`build_model` must return a model whose logits layer is named "
     r"'output'.*its layers: .*logits"),
    (dict(train=(_X, _Y[:-1])),
     r"^`train_data` must be .*train_x has 240 examples and train_y 239 "
     r"labels"),
    (dict(train=(_X, _Y + 1)),
     r"^`train_data` has labels out of range: the model outputs 3 logits,"
     r" and a label is 3"),
    (dict(train=tf.data.Dataset.from_tensor_slices({"x": _X, "y": _Y})),
     r"^`train_data` must yield \(x, y\) pairs of tensors. Received: a "
     r"dataset of \{"),
    (dict(train=tf.data.Dataset.from_tensor_slices(
        (_X[:, :10], _Y)).batch(8)),
     r"^`train_data` must yield examples of the model's input shape "
     r"\(20, 1\)"),
    (dict(train=tf.data.Dataset.from_tensor_slices((_X, _Y)).repeat()),
     r"^`train_data` must be finite \(no repeat\(\)\)"),
    (dict(test_data=tf.data.Dataset.from_tensor_slices((_X, _Y)).map(
        lambda x, y: (x, tf.cast(y, tf.float32)))),
     r"^`test_data` must yield integer labels as y"),
    (dict(test_data=(_X[:, :10], _Y)),
     r"^`test_data` must hold examples of the model's input shape"),
    (dict(prune={"rounds": 3}),
     r"^`prune` has no field 'rounds'; its fields: .*num_rounds"),
    (dict(prune={"fraction_per_round": 1.5}),
     r"^`prune.fraction_per_round` must be in \[0, 1\).*Received: "
     r"prune.fraction_per_round=1.5"),
    (dict(rewind_step=20),
     r"^`rewind_step` must be an int in \[0, num_steps\), or 'auto'. "
     r"Received: "
     r"rewind_step=20"),
    (dict(optimizer=object()),
     r"^`optimizer` must be one of sgd, momentum, adam, adamw or a Keras "
     r"optimizer. Received: optimizer of type object"),
    (dict(loss="mean_cubed_error"), r"^`loss` must be a Keras loss name"
     r".*Received: loss='mean_cubed_error'"),
    (dict(batch_size=500),
     r"^`batch_size` must be at most the 216 training examples"),
])
def test_bad_input_is_one_line_naming_the_argument_and_writes_nothing(
        tmp_path, arguments, message):
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message) as caught:
        _run(workdir, **arguments)
    assert "\n" not in str(caught.value)
    assert not workdir.exists()


def test_a_workdir_begun_on_other_data_is_refused(tmp_path):
    _run(tmp_path / "run", num_steps=10, prune={"num_rounds": 0})
    x, y = _data(seed=5)
    with pytest.raises(ValueError, match=r"^`train_data` differs from the "
                       r"data the run in `workdir` was begun on"):
        _run(tmp_path / "run", train=(x, y), num_steps=10,
             prune={"num_rounds": 0})


@pytest.mark.parametrize("optimizer, fields", [
    ("sgd", {"optimizer": "sgd", "learning_rate": 0.05}),
    (keras.optimizers.SGD(0.1, momentum=0.8),
     {"optimizer": "momentum", "learning_rate": 0.1, "momentum": 0.8}),
    (keras.optimizers.AdamW(0.002, weight_decay=0.01),
     {"optimizer": "adamw", "learning_rate": 0.002, "weight_decay": 0.01}),
])
def test_the_optimizer_becomes_the_config_fields(optimizer, fields):
    from configs import base
    from keras_lottery.lottery import experiment

    train = base.get_defaults("npz", "m.keras").train
    experiment._set_optimizer(train, optimizer, 0.05)
    assert train.optimizer == fields.pop("optimizer")
    assert {k: train[k] for k in fields} == pytest.approx(fields)


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=15, warmup_target=0.01, warmup_steps=5)),
    keras.optimizers.RMSprop(0.005),
])
def test_any_keras_optimizer_and_schedule_trains_fresh_each_round(
        tmp_path, optimizer):
    from keras_lottery.base import files
    from keras_lottery.base import paths
    from keras_lottery.engine import training

    summary = _run(tmp_path / "run", optimizer=optimizer,
                   prune={"num_rounds": 1, "fraction_per_round": 0.5})
    assert [entry["round"] for entry in summary] == [0, 1]
    config = files.read_json(paths.config_file(str(tmp_path / "run")))
    serialised = config["train"]["keras_optimizer"]
    assert serialised["class_name"] == type(optimizer).__name__
    fresh = training.make_optimizer(
        ml_collections.ConfigDict(config["train"]))
    assert type(fresh) is type(optimizer)
    assert int(fresh.iterations.numpy()) == 0
    rate = fresh._learning_rate  # Keras keeps the schedule here
    if isinstance(rate, keras.optimizers.schedules.CosineDecay):
        assert float(rate(5)) == pytest.approx(0.01)
    # The same call again trains nothing: the workdir is done.
    again = _run(tmp_path / "run", optimizer=optimizer,
                 prune={"num_rounds": 1, "fraction_per_round": 0.5})
    assert again == summary

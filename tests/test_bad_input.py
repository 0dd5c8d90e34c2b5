"""Bad input through the binaries: one line naming the problem, exit status
1, no traceback, and earlier results untouched (docs/RELIABILITY.md).

Mistakes in the command line run the real binary in a subprocess (flag
parsing is part of what is tested; the lottery binary reports them before
TensorFlow loads, in a fraction of a second). Everything else calls the
binaries' `main` under `flagsaver`, in this process, on a small workdir
that each test copies; the workdir is hashed before and after.
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from binaries import export as export_binary
from binaries import lottery as lottery_binary
from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.engine import training
from keras_lottery.lottery import runner

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SMOKE = "--config=configs/lenet300_mnist.py:smoke"


def tiny_config(mnist_dir, **overrides):
    """Two rounds of 20 steps, a checkpoint at step 10, export on."""
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    config.train.num_steps = 20
    config.train.steps_per_loop = 10
    config.train.checkpoint_every_steps = 10
    config.train.jit_compile = False
    config.eval.every_steps = 10
    config.prune.num_rounds = 1
    for name, value in overrides.items():
        section, _, field = name.rpartition("__")
        (config[section] if section else config)[field] = value
    return config


def tree_hash(workdir):
    """`{path: sha256}` of a workdir, TensorBoard summaries and lock aside."""
    found = {}
    for folder, _, names in os.walk(workdir):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, workdir)
            if relative.startswith("tensorboard") or relative == "lock":
                continue
            with open(path, "rb") as f:
                found[relative] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def partial(mnist_dir, tmp_path_factory):
    """Round 0 done; round 1 stopped after its checkpoint at step 10."""
    workdir = str(tmp_path_factory.mktemp("partial") / "workdir")
    real_train = training.Trainer.train
    calls = []

    def stopping_train(self, dataset_fn, num_steps):
        calls.append(num_steps)
        if len(calls) == 4:  # round 1, steps 10 to 20
            raise KeyboardInterrupt("stopped")
        return real_train(self, dataset_fn, num_steps)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.Trainer, "train", stopping_train)
        with pytest.raises(KeyboardInterrupt):
            runner.run(tiny_config(mnist_dir), workdir)
    assert os.listdir(paths.checkpoint_dir(workdir, 1))
    return workdir


@pytest.fixture(scope="module")
def finished(partial, mnist_dir, tmp_path_factory):
    """Both rounds done, summary and export written."""
    workdir = str(tmp_path_factory.mktemp("finished") / "workdir")
    shutil.copytree(partial, workdir)
    runner.run(tiny_config(mnist_dir), workdir)
    return workdir


@pytest.fixture
def parsed_flags():
    # pytest does not parse absl flags; flagsaver sets them by hand.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def copy_of(workdir, tmp_path):
    target = str(tmp_path / "workdir")
    shutil.copytree(workdir, target)
    return target


def lottery_error(config, workdir) -> str:
    """Runs the lottery binary's main; returns its one-line error."""
    with (flagsaver.flagsaver((lottery_binary._CONFIG, config),
                              (lottery_binary._WORKDIR, workdir)),
          pytest.raises(SystemExit) as raised):
        lottery_binary.main(["lottery"])
    message = raised.value.code
    assert isinstance(message, str) and "\n" not in message, message
    assert message.startswith("lottery: "), message
    return message


def export_error(**flag_values) -> str:
    with (flagsaver.flagsaver(**flag_values),
          pytest.raises(SystemExit) as raised):
        export_binary.main(["export"])
    message = raised.value.code
    assert isinstance(message, str) and "\n" not in message, message
    assert message.startswith("export: "), message
    return message


def refused_unchanged(config, workdir, expected) -> str:
    """The binary refuses with `expected` in its line; workdir unchanged."""
    before = tree_hash(workdir)
    message = lottery_error(config, workdir)
    assert expected in message, message
    assert tree_hash(workdir) == before
    return message


def cli(module, *args, cwd=_REPO_ROOT):
    """Runs a binary; returns its last stderr line, checking the rest."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
        text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


# The command line, through the real binary.


@pytest.mark.parametrize("args,expected", [
    pytest.param(
        ["--config.foo=1"],
        "lottery: --config.foo names no config field: 'foo' does not "
        "exist. Received: --config.foo=1", id="unknown_config_key"),
    pytest.param(
        ["--config.train.nesterov=1"],
        "lottery: --config.train.nesterov names no config field: "
        "'nesterov' does not exist. Received: --config.train.nesterov=1",
        id="unknown_nested_config_key"),
    pytest.param(
        ["--config.train.num_step=3"],
        "lottery: --config.train.num_step names no config field: "
        "'num_step' does not exist (did you mean 'num_steps'?). Received: "
        "--config.train.num_step=3", id="config_key_typo"),
    pytest.param(
        ["--config.train.num_steps=abc"],
        "lottery: flag --config.train.num_steps=abc: invalid literal for "
        "int() with base 10: 'abc'", id="wrong_type_int"),
    pytest.param(
        ["--config.prune.fraction_per_round=most"],
        "lottery: flag --config.prune.fraction_per_round=most: could not "
        "convert string to float: 'most'", id="wrong_type_float"),
    pytest.param(
        ["--config.deterministic=maybe"],
        "lottery: flag --config.deterministic=maybe: ('Non-boolean argument "
        "to boolean flag', 'maybe')", id="wrong_type_bool"),
    pytest.param(
        ["extra", "args"],
        "lottery: unexpected arguments: extra args (every option is a "
        "--flag=value; see --helpshort).", id="stray_arguments"),
    pytest.param(
        ["--work_dir=/tmp/x"],
        "lottery: Unknown command line flag 'work_dir'. Did you mean: "
        "workdir ?", id="unknown_flag"),
])
def test_command_line_mistakes(args, expected, finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    before = tree_hash(workdir)
    line = cli("binaries.lottery", _SMOKE, f"--workdir={workdir}", *args)
    assert line == expected
    assert tree_hash(workdir) == before


@pytest.mark.parametrize("config,expected", [
    pytest.param(
        "configs/nope.py",
        "lottery: cannot read the config file: [Errno 2] No such file or "
        "directory: 'configs/nope.py'", id="missing_config_file"),
    pytest.param(
        "configs/nope.py:smoke",
        "lottery: cannot read the config file: [Errno 2] No such file or "
        "directory: 'configs/nope.py'", id="missing_config_file_variant"),
    pytest.param(
        "configs/lenet300_mnist.py:smok",
        "lottery: flag --config=configs/lenet300_mnist.py:smok: ValueError: "
        "Unknown config variant. Received: 'smok'; known: 'smoke'",
        id="unknown_config_variant"),
    pytest.param(
        "{tmp}/notes.py",
        "lottery: cannot load the config: SyntaxError: invalid syntax "
        "(notes.py, line 1)", id="config_file_not_python"),
])
def test_config_files_that_do_not_load(config, expected, finished,
                                       tmp_path):
    (tmp_path / "notes.py").write_text("these are notes, not Python\n")
    workdir = copy_of(finished, tmp_path)
    before = tree_hash(workdir)
    line = cli("binaries.lottery", f"--config={config.format(tmp=tmp_path)}",
               f"--workdir={workdir}")
    assert line == expected
    assert tree_hash(workdir) == before


def test_missing_workdir_flag():
    line = cli("binaries.lottery", _SMOKE)
    assert line == ("lottery: flag --workdir=None: Flag --workdir must have "
                    "a value other than None.")


def test_controls_refuse_a_control_name_that_is_a_path(finished):
    # The control's name becomes a folder under the workdir.
    line = cli("binaries.controls", f"--workdir={finished}",
               "--control=../../escaped")
    assert line.startswith(
        "controls: flag --control=../../escaped: value should be one of "
        "<random_reinit|random_prune|shuffle>")
    assert not os.path.exists(os.path.join(finished, "..", "escaped"))


@pytest.mark.parametrize("rounds,expected", [
    ("3,x", "controls: `--rounds` must be a comma-separated list of "
     "integers. Received: --rounds=3,x"),
    ("1,7", "controls: `rounds` must name done rounds of the run (now 1)."
     " Received: rounds=[1, 7]"),
])
def test_controls_refuse_rounds_the_run_does_not_have(rounds, expected,
                                                      finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    before = tree_hash(workdir)
    line = cli("binaries.controls", f"--workdir={workdir}",
               "--control=random_prune", f"--rounds={rounds}")
    assert line == expected
    assert tree_hash(workdir) == before


def test_controls_refuse_a_workdir_with_no_pruned_round(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    shutil.rmtree(paths.round_dir(workdir, 1))
    before = tree_hash(workdir)
    line = cli("binaries.controls", f"--workdir={workdir}",
               "--control=random_reinit")
    assert line == (
        "controls: `workdir` must hold a finished pruned round (round 1 or "
        "later) to run a control at; it has none yet: run or resume "
        f"binaries.lottery on it first. Received: workdir={workdir!r}")
    assert tree_hash(workdir) == before
    assert not os.path.exists(paths.control_workdir(workdir,
                                                    "random_reinit"))


def test_export_stray_arguments(finished, tmp_path):
    line = cli("binaries.export", f"--workdir={finished}", "--round=0",
               f"--output={tmp_path / 'out'}", "extra")
    assert line == ("export: unexpected arguments: extra (every option is a "
                    "--flag=value; see --helpshort).")
    assert not (tmp_path / "out").exists()


# Config values the flags parse but the run refuses; nothing is written.


@pytest.mark.parametrize("overrides,expected", [
    pytest.param(
        {"prune__fraction_per_round": 1.0},
        "lottery: `prune.fraction_per_round` must be in [0, 1). Received: "
        "prune.fraction_per_round=1.0", id="fraction_one"),
    pytest.param(
        {"prune__fraction_per_round": -0.2},
        "lottery: `prune.fraction_per_round` must be in [0, 1). Received: "
        "prune.fraction_per_round=-0.2", id="fraction_negative"),
    pytest.param(
        {"prune__num_rounds": -1},
        "lottery: `prune.num_rounds` must be at least 0. Received: "
        "prune.num_rounds=-1", id="negative_rounds"),
    pytest.param(
        {"prune__rewind_step": 20},
        "lottery: `prune.rewind_step` must be an int in [0, train.num_steps), "
        "or 'auto'. "
        "Received: prune.rewind_step=20", id="rewind_step_beyond_training"),
    pytest.param(
        {"eval__every_steps": 50},
        "lottery: `eval.every_steps` must be in [1, train.num_steps]. "
        "Received: eval.every_steps=50", id="eval_interval_beyond_training"),
    pytest.param(
        {"train__decay_steps": ("10",)},
        "lottery: `train.decay_steps` must be a tuple of ints >= 0. "
        "Received: train.decay_steps=('10',)", id="decay_steps_wrong_type"),
    pytest.param(
        {"train__learning_rate": float("inf")},
        "lottery: `train.learning_rate` must be positive and finite. "
        "Received: train.learning_rate=inf", id="infinite_learning_rate"),
    pytest.param(
        {"prune__one_shot_rounds": (1,)},
        "lottery: `prune.one_shot_rounds` needs prune.mode='one_shot': each "
        "iterative round starts from the one before. Received: "
        "prune.one_shot_rounds=(1,), prune.mode='iterative'",
        id="one_shot_rounds_of_an_iterative_run"),
    pytest.param(
        {"prune__mode": "one_shot", "prune__one_shot_rounds": (0, 9)},
        "lottery: `prune.one_shot_rounds` must be a tuple of rounds in [1, "
        "prune.num_rounds]. Received: prune.one_shot_rounds=(0, 9)",
        id="one_shot_rounds_out_of_range"),
    pytest.param(
        {"eval__test_at": "never"},
        "lottery: `eval.test_at` must be one of 'every', 'best'. Received: "
        "eval.test_at='never'", id="unknown_test_at"),
    pytest.param(
        {"model__name": "../../lenet_300_100"},
        "lottery: `model.name` must be one of", id="model_name_is_a_path"),
    pytest.param(
        {"data__name": "../mnist"},
        "lottery: `data.name` must be one of", id="data_name_is_a_path"),
])
def test_config_values_are_refused(overrides, expected, mnist_dir, tmp_path,
                                   parsed_flags):
    workdir = tmp_path / "w"
    message = lottery_error(tiny_config(mnist_dir, **overrides),
                            str(workdir))
    assert message.startswith(expected), message
    assert not workdir.exists()


def test_config_value_of_the_wrong_type_in_a_config_file(mnist_dir, tmp_path,
                                                         parsed_flags):
    # Flags parse to the field's type; a config file can hold anything.
    config = tiny_config(mnist_dir)
    with config.unlocked(), config.ignore_type():
        config.train.num_steps = "20"
    message = lottery_error(config, str(tmp_path / "w"))
    assert message == ("lottery: `train.num_steps` must be an int. "
                       "Received: train.num_steps='20'")


# TF_CONFIG (docs/DISTRIBUTED.md): refused before TensorFlow starts.
@pytest.mark.parametrize("text, expected", [
    ("", "`TF_CONFIG` must be set"),
    ("{cluster: 1", "`TF_CONFIG` must be JSON"),
    ('["worker"]', "with a \"cluster\" object and a \"task\" object"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "cluster jobs must be among chief, worker"),
    ('{"cluster": {"worker": ["no-port"]}, "task": {"type": "worker"}}',
     "as \"host:port\" strings"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, '
     '"task": {"type": "worker", "index": 2}}',
     "task must be a task of its cluster (worker: 2 task(s))"),
    ('{"cluster": {"worker": ["a:1"]}, '
     '"task": {"type": "chief", "index": 0}}',
     "task must be a task of its cluster"),
], ids=["missing", "not_json", "not_an_object", "unknown_job", "no_port",
        "index_beyond_cluster", "task_type_not_in_cluster"])
def test_bad_tf_config(text, expected, mnist_dir, tmp_path, monkeypatch,
                       parsed_flags):
    monkeypatch.setenv("TF_CONFIG", text)
    workdir = tmp_path / "w"
    message = lottery_error(
        tiny_config(mnist_dir, train__strategy="multi_worker_mirrored"),
        str(workdir))
    assert expected in message, message
    assert not workdir.exists()


# Bad data: the run stops before training, earlier rounds untouched.


@pytest.fixture
def data_copy(mnist_dir, tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(mnist_dir, folder)
    return folder


def _rewrite_idx(path, change):
    with gzip.open(path, "rb") as f:
        data = bytearray(f.read())
    with gzip.open(path, "wb") as f:
        f.write(change(data))


def test_missing_data_folder(finished, mnist_dir, tmp_path, parsed_flags):
    workdir = copy_of(finished, tmp_path)
    missing = str(tmp_path / "no_such_folder")
    refused_unchanged(
        tiny_config(mnist_dir, data__dir=missing), workdir,
        f"lottery: `data_dir` is not a folder. Received: data_dir={missing!r}")


def test_truncated_gz(finished, mnist_dir, data_copy, tmp_path,
                      parsed_flags):
    path = data_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])
    refused_unchanged(
        tiny_config(mnist_dir, data__dir=str(data_copy)),
        copy_of(finished, tmp_path),
        f"lottery: Truncated gzip file {str(path)!r}")


def test_idx_file_with_a_wrong_magic_number(finished, mnist_dir, data_copy,
                                            tmp_path, parsed_flags):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    _rewrite_idx(path, lambda d: bytes([0, 0, 8, 3]) + d[4:])
    refused_unchanged(
        tiny_config(mnist_dir, data__dir=str(data_copy)),
        copy_of(finished, tmp_path),
        f"lottery: Wrong magic number in {str(path)!r}: expected 2049, "
        "found 2051.")


def test_images_and_labels_of_different_counts(finished, mnist_dir,
                                               data_copy, tmp_path,
                                               parsed_flags):
    path = data_copy / "t10k-labels-idx1-ubyte.gz"
    _rewrite_idx(path, lambda d: d[:4] + (9999).to_bytes(4, "big")
                 + d[8:-1])
    refused_unchanged(
        tiny_config(mnist_dir, data__dir=str(data_copy)),
        copy_of(finished, tmp_path),
        "has 10000 images but")


# The workdir.


def test_workdir_of_another_config(finished, mnist_dir, tmp_path,
                                   parsed_flags):
    refused_unchanged(
        tiny_config(mnist_dir, train__learning_rate=0.1),
        copy_of(finished, tmp_path),
        "lottery: `workdir` holds a run of another config")


def test_workdir_under_a_file(mnist_dir, tmp_path, parsed_flags):
    (tmp_path / "a_file").write_text("")
    workdir = str(tmp_path / "a_file" / "workdir")
    message = lottery_error(tiny_config(mnist_dir), workdir)
    assert message == ("lottery: `workdir` cannot be written: Not a "
                       f"directory. Received: workdir={workdir!r}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_workdir(finished, mnist_dir, tmp_path, parsed_flags):
    workdir = copy_of(finished, tmp_path)
    os.chmod(workdir, 0o555)
    try:
        refused_unchanged(tiny_config(mnist_dir), workdir,
                          "lottery: `workdir` cannot be written: "
                          "Permission denied")
    finally:
        os.chmod(workdir, 0o755)


def test_workdir_in_use_by_another_process(finished, mnist_dir, tmp_path,
                                           parsed_flags):
    workdir = copy_of(finished, tmp_path)
    with files.exclusive(paths.lock_file(workdir)):
        refused_unchanged(tiny_config(mnist_dir), workdir,
                          "lottery: `workdir` is in use by another process")


def test_damaged_config_json(finished, mnist_dir, tmp_path, parsed_flags):
    workdir = copy_of(finished, tmp_path)
    with open(paths.config_file(workdir), "r+b") as f:
        f.truncate(40)
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {paths.config_file(workdir)} is not valid "
                      "JSON")


def _garbage(path):
    with open(path, "wb") as f:
        f.write(b"\x00garbage" * 50)


def test_damaged_masks_of_the_round_being_resumed(partial, mnist_dir,
                                                  tmp_path, parsed_flags):
    workdir = copy_of(partial, tmp_path)
    _garbage(paths.masks_file(workdir, 1))
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {paths.masks_file(workdir, 1)} is not a "
                      "readable .npz file")


def test_masks_of_another_run_in_the_round_being_resumed(
        partial, mnist_dir, tmp_path, parsed_flags):
    workdir = copy_of(partial, tmp_path)
    masks = files.read_arrays(paths.masks_file(workdir, 1))
    masks = {k: np.ones_like(v) for k, v in masks.items()}
    files.write_arrays(paths.masks_file(workdir, 1), masks)
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {paths.masks_file(workdir, 1)} does not "
                      "match the masks this run makes")


def test_damaged_masks_of_a_done_round(finished, mnist_dir, tmp_path,
                                       parsed_flags):
    workdir = copy_of(finished, tmp_path)
    _garbage(paths.masks_file(workdir, 0))
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {paths.masks_file(workdir, 0)} is damaged "
                      "(not a readable zip archive")


def test_damaged_model_of_a_done_round(partial, mnist_dir, tmp_path,
                                       parsed_flags):
    workdir = copy_of(partial, tmp_path)
    path = paths.model_file(workdir, 0)
    with open(path, "r+b") as f:  # flip bytes inside the weights
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 16)
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {path} is damaged (member")


@pytest.mark.parametrize("damage", ["truncated_data", "garbage_index"])
def test_damaged_checkpoint(partial, mnist_dir, tmp_path, damage,
                            parsed_flags):
    workdir = copy_of(partial, tmp_path)
    prefix = os.path.join(paths.checkpoint_dir(workdir, 1), "ckpt-10")
    if damage == "truncated_data":
        with open(prefix + ".data-00000-of-00001", "r+b") as f:
            f.truncate(100)
    else:
        _garbage(prefix + ".index")
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: The checkpoint {prefix} of round 1 is "
                      "damaged")


def test_damaged_metrics_of_a_done_round(finished, mnist_dir, tmp_path,
                                         parsed_flags):
    workdir = copy_of(finished, tmp_path)
    with open(paths.metrics_file(workdir, 1), "w") as f:
        f.write('{"round": 1, "hist')
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {paths.metrics_file(workdir, 1)} is not "
                      "valid JSON")


def _save_over_round_0(workdir, model):
    # As a whole, valid .keras file, so that only loading it can fail.
    path = paths.model_file(workdir, 0)
    os.remove(path)
    model.save(path)
    return path


def test_model_with_no_prunable_layer(partial, mnist_dir, tmp_path,
                                      parsed_flags):
    workdir = copy_of(partial, tmp_path)
    plain = keras.Sequential([keras.Input((28, 28, 1)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(10, name="output")])
    path = _save_over_round_0(workdir, plain)
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {path} holds a model with no MaskedWrapper "
                      "layer, so nothing in it can be pruned")
    message = export_error(workdir=workdir, round=0,
                           output=str(tmp_path / "out"))
    assert "holds no MaskedWrapper layer" in message
    assert not (tmp_path / "out").exists()


# Input is never run or unpickled.


def test_model_file_with_code_is_refused(partial, mnist_dir, tmp_path,
                                         parsed_flags):
    # A Lambda layer is Python bytecode: Keras's safe_mode refuses it.
    workdir = copy_of(partial, tmp_path)
    evil = keras.Sequential([keras.Input((28, 28, 1)),
                             keras.layers.Lambda(lambda x: x * 2),
                             keras.layers.Flatten(),
                             keras.layers.Dense(10, name="output")])
    path = _save_over_round_0(workdir, evil)
    message = refused_unchanged(tiny_config(mnist_dir), workdir,
                                f"lottery: {path} cannot be loaded")
    assert "Lambda" in message and "safe_mode" in message


def test_pickled_masks_are_refused(partial, mnist_dir, tmp_path,
                                   parsed_flags):
    workdir = copy_of(partial, tmp_path)
    path = paths.masks_file(workdir, 1)
    np.savez(path, **{"fc1/kernel": np.array([{"a": 1}], dtype=object)})
    refused_unchanged(tiny_config(mnist_dir), workdir,
                      f"lottery: {path} is not a readable .npz file: Object "
                      "arrays cannot be loaded when allow_pickle=False")


# Training that diverges.


def test_nan_loss_stops_the_round(mnist_dir, tmp_path, parsed_flags):
    workdir = str(tmp_path / "w")
    message = lottery_error(
        tiny_config(mnist_dir, train__learning_rate=1e30), workdir)
    assert message.startswith(
        "lottery: Round 0: the training loss is nan at step 10. The round "
        "is not done and nothing of it is exported; earlier rounds are "
        "intact.")
    assert sorted(os.listdir(paths.round_dir(workdir, 0))) == [
        "masks.npz", "units.npz"]
    assert not os.path.exists(paths.export_dir(workdir))


def test_nan_weights_are_never_saved_pruned_or_exported(
        finished, mnist_dir, tmp_path, monkeypatch, parsed_flags):
    workdir = copy_of(finished, tmp_path)
    for path in (paths.round_dir(workdir, 1), paths.export_dir(workdir)):
        shutil.rmtree(path)
    os.remove(paths.summary_file(workdir))
    real_train = training.Trainer.train

    def diverging_train(self, dataset_fn, num_steps):
        loss = real_train(self, dataset_fn, num_steps)
        kernel = self.model.trainable_variables[0]
        kernel.assign(kernel * np.nan)  # the loss reported stays finite
        return loss

    monkeypatch.setattr(training.Trainer, "train", diverging_train)
    before = tree_hash(workdir)
    message = lottery_error(tiny_config(mnist_dir), workdir)
    assert message.startswith(
        "lottery: Round 1: weights became NaN or infinite by step 10")
    # No checkpoint, model or metrics of the round: only its masks.
    assert sorted(os.listdir(paths.round_dir(workdir, 1))) == [
        "masks.npz", "units.npz"]
    assert not os.path.exists(paths.export_dir(workdir))
    after = tree_hash(workdir)
    del after[os.path.join("round_01", "masks.npz")]
    del after[os.path.join("round_01", "units.npz")]
    assert after == before


# The export binary.


def test_export_of_a_round_that_does_not_exist(finished, tmp_path,
                                               parsed_flags):
    message = export_error(workdir=finished, round=7,
                           output=str(tmp_path / "out"))
    assert message == (f"export: round 7 of {finished} does not exist. "
                       "Finished rounds: 0, 1. Received: round=7")
    assert not (tmp_path / "out").exists()


def test_export_names_that_are_paths(finished, tmp_path, parsed_flags):
    output = tmp_path / "out"
    message = export_error(workdir=finished, round=1, output=str(output),
                           model_name="../../escaped")
    assert message == (
        "export: `model_name` must be a folder name of letters, digits, "
        "'_', '-' and '.'. Received: model_name='../../escaped'")
    assert not output.exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_damaged_model_file_is_not_exported(finished, tmp_path,
                                            parsed_flags):
    workdir = copy_of(finished, tmp_path)
    path = paths.model_file(workdir, 1)
    with open(path, "r+b") as f:
        f.truncate(1000)
    message = export_error(workdir=workdir, round=1,
                           output=str(tmp_path / "out"))
    assert message.startswith(f"export: {path} cannot be loaded")
    assert not (tmp_path / "out").exists()
    assert zipfile.is_zipfile(paths.model_file(workdir, 0))

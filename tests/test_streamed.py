"""Streamed data: a loader's `tf.data.Dataset`s, read in place.

A TFRecord-backed loader (docs/examples/streamed_tfrecords.py, the example
docs/STREAMED.md shows) over 700 real MNIST digits runs through the
lottery binary; killed with SIGKILL at several moments, the run resumes to
the uninterrupted run's masks, metrics and export; the data never enters
the workdir; bad datasets are refused in one line with the workdir
untouched.
"""

import os
import signal
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import test_bad_input
import test_docs
import test_reliability

import keras_lottery
from docs.examples import streamed_tfrecords
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.data import readers
from keras_lottery.data import streams
from keras_lottery.engine import streaming
from keras_lottery.engine import training
from keras_lottery.lottery import runner

LOADER = "docs.examples.streamed_tfrecords:load"
# 600 training examples, of which the first 100 validate: 500 streamed,
# 8 batches of 60 an epoch, so the step-20 checkpoint is mid-epoch.
STREAMED = (
    f"--config.data.name={LOADER}", "--config.data.normalization=none",
    "--config.data.validation_size=100", "--config.data.shuffle_buffer=128",
)


@pytest.fixture(scope="module")
def tfrecord_dir(mnist_dir, tmp_path_factory):
    """600 training and 100 test MNIST digits as TFRecord shards."""
    folder = str(tmp_path_factory.mktemp("tfrecords"))
    raw = readers.read_idx_files(mnist_dir)
    streamed_tfrecords.write(raw.train_x[:600], raw.train_y[:600], folder,
                             "train")
    streamed_tfrecords.write(raw.test_x[:100], raw.test_y[:100], folder,
                             "test")
    return folder


@pytest.fixture(scope="module")
def reference(tfrecord_dir, tmp_path_factory):
    """An uninterrupted streamed run of the binary."""
    workdir = str(tmp_path_factory.mktemp("reference") / "workdir")
    status, log = test_reliability.run_binary(tfrecord_dir, workdir,
                                              extra=STREAMED)
    assert status == 0, log[-3000:]
    assert (f"500 examples streamed from {LOADER}(data_dir='{tfrecord_dir}')"
            in log), log[-3000:]
    return workdir


def test_the_order_at_a_step_is_the_order_of_a_run_from_the_start():
    # Rebuilt at step 11 (epoch 2, batch 3 of 4), under another global
    # seed, the stream gives the batches an uninterrupted one gives there.
    source = tf.data.Dataset.range(250).map(lambda i: (i, i % 10))
    data = streaming.StreamedData(source, 250, batch_size=60, seed=3,
                                  shuffle_buffer=50)
    keras.utils.set_random_seed(1)
    whole = [x for x, _ in data(0).take(20).as_numpy_iterator()]
    keras.utils.set_random_seed(2)
    resumed = [x for x, _ in data(11).take(9).as_numpy_iterator()]
    for a, b in zip(whole[11:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    # Each epoch is a different shuffle of examples, none twice.
    epochs = [np.concatenate(whole[e * 4:(e + 1) * 4]) for e in range(3)]
    assert all(len(set(e)) == 240 for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])
    other = streaming.StreamedData(source, 250, 60, seed=4,
                                   shuffle_buffer=50)
    assert not np.array_equal(
        next(other(0).as_numpy_iterator())[0], whole[0])


def test_batches_from_the_loader_stream_as_its_examples_would():
    # A loader's batches (of 7, the last one short) give the run the
    # validation and test sets, the count and the training batches at
    # every step that its examples one at a time give.
    x = tf.random.stateless_uniform([130, 3], seed=[1, 2])
    examples = tf.data.Dataset.from_tensor_slices((x, tf.range(130) % 4))
    data = {"validation_size": 11, "normalization": "none"}
    test = examples.take(20)
    one, batched = (streams.from_loader(splits, "m:f", data) for splits in (
        (examples, test), (examples.batch(7), test.batch(7))))
    assert [streams.is_batched(s.train) for s in (one, batched)] == [
        False, True]
    assert batched.train_count == one.train_count == 119
    for name in ("validation_x", "validation_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(batched, name),
                                      getattr(one, name))
    assert batched.input_shape == (3,)
    streamed = [streaming.StreamedData(s.train, s.train_count, 20, seed=0,
                                       shuffle_buffer=40)
                for s in (one, batched)]
    assert [d.batched for d in streamed] == [False, True]
    for step in (0, 3, 7):  # mid-block, then the second epoch
        a, b = ([x for x, _ in d(step).take(8).as_numpy_iterator()]
                for d in streamed)
        for got, want in zip(b, a, strict=True):
            np.testing.assert_array_equal(got, want)


def test_streamed_batches_train_as_the_same_batches_through_tf_data():
    # The trainer takes a call's streamed batches at once and trains on
    # them in its compiled loop; the weights are those of one XLA-free
    # step per batch through the plain tf.data path, in chunks that do
    # and do not fill a call.
    x = tf.random.stateless_uniform([130, 6], seed=[1, 2])
    source = tf.data.Dataset.from_tensor_slices((x, tf.range(130) % 3))
    data = streaming.StreamedData(source, 130, batch_size=20, seed=0,
                                  shuffle_buffer=40)

    def trained(feed):
        keras.utils.set_random_seed(0)
        model = keras_lottery.wrap(keras.Sequential([
            keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, name="output")]))
        trainer = training.Trainer(model, training.make_strategy("default"),
                                   keras.optimizers.Adam(0.01), 20,
                                   jit_compile=False, steps_per_loop=10)
        # 7 + 10 spans two chunks of 10 batches; 7 + 3 ends one.
        losses = [trainer.train(feed, n) for n in (10, 7, 10, 3, 10)]
        return losses, [v.numpy() for v in model.weights]

    fetched = trained(data)
    piped = trained(lambda step: data(step))  # a plain callable
    np.testing.assert_allclose(fetched[0], piped[0], rtol=1e-6)
    for a, b in zip(fetched[1], piped[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_killed_at_several_moments_ends_as_an_uninterrupted_run(
        reference, tfrecord_dir, tmp_path):
    # SIGKILLs from outside at random moments of rounds 0 and 1 (inside a
    # step, an evaluation or a write) and at the moments a checkpoint is
    # half or wholly written, each followed by the same command.
    rng = np.random.default_rng(7)
    plan = [
        ("", (0, rng.uniform(0.0, 0.5))),
        ("checkpoint_saved", None),   # resumes mid-epoch, at step 20
        ("", (1, rng.uniform(0.0, 0.5))),
        ("checkpoint_files", None),
    ]
    workdir = str(tmp_path / "workdir")
    done, logs = {}, []
    for fault, delay in plan:
        status, log = test_reliability.run_binary(
            tfrecord_dir, workdir, fault, delay, extra=STREAMED)
        assert status == -signal.SIGKILL, (fault, delay, log[-3000:])
        assert "Traceback" not in log
        test_reliability.check_nothing_half_written(workdir, done)
        logs.append(log)
    status, log = test_reliability.run_binary(tfrecord_dir, workdir,
                                              extra=STREAMED)
    assert status == 0, log[-3000:]
    # At least one rerun rebuilt the stream mid-epoch (step 20 is batch 4
    # of epoch 2).
    assert "resumes at step 20." in "".join(logs[1:] + [log])
    assert test_reliability.leftovers(workdir) == []
    test_reliability.assert_same_results(workdir, reference)


def test_the_loader_docs_show_is_the_one_the_tests_run():
    (shown,) = test_docs.python_blocks("STREAMED.md")
    with open(streamed_tfrecords.__file__, encoding="utf-8") as f:
        source = f.read()
    missing = [line for line in shown.splitlines()
               if line.strip() and line not in source.splitlines()]
    assert missing == []


def test_the_data_stays_where_it_is_and_the_run_names_it(reference,
                                                         tfrecord_dir):
    config = files.read_json(paths.config_file(reference))
    assert config["data"]["name"] == LOADER
    assert config["data"]["dir"] == tfrecord_dir
    found = [os.path.relpath(os.path.join(folder, name), reference)
             for folder, _, names in os.walk(reference) for name in names]
    # Only what every run writes: no data, in any form.
    others = [f for f in found if not (
        f in ("config.json", "summary.json", "lock")
        or f.startswith(("export/", "tensorboard/"))
        or os.path.basename(f) in ("masks.npz", "units.npz", "model.keras",
                                   "metrics.json"))]
    assert others == [], others


def bad_loader(data_dir):
    """Datasets that are wrong in the way `data_dir` names."""
    x = tf.random.stateless_uniform([50, 4], seed=[0, 0])
    y = tf.range(50) % 3
    good = tf.data.Dataset.from_tensor_slices((x, y))
    if data_dir == "x_only":
        return tf.data.Dataset.from_tensor_slices(x), good
    if data_dir == "ragged":  # examples of different lengths
        return good.map(lambda x, y: (x[:y + 1], y)), good
    if data_dir == "infinite_test":
        return good, good.repeat()
    if data_dir == "float_labels":
        return good.map(lambda x, y: (x, tf.cast(y, tf.float32))), good
    return good, good


@pytest.mark.parametrize("data_dir, normalization, message", [
    ("x_only", "none", "`data.name`'s train dataset must yield (x, y) pairs"
     " of tensors. Received: a dataset of TensorSpec(shape=(4,)"),
    ("ragged", "none", "`data.name`'s train dataset must yield examples of "
     "one fixed shape, one at a time or in batches (x and y with an "
     "unknown first axis). Received: x of shape (None,), y of shape ()"),
    ("infinite_test", "none", "`data.name`'s test dataset must be finite "
     "(no repeat())"),
    ("float_labels", "none", "`data.name`'s train dataset must yield integer"
     " labels as y"),
    ("good", "zero_one", "`data.normalization` must be 'none' for a "
     "loader's datasets"),
])
def test_bad_datasets_are_one_line_and_the_workdir_is_untouched(
        tmp_path, data_dir, normalization, message):
    config = test_bad_input.tiny_config(data_dir)
    config.data.name = "test_streamed:bad_loader"
    config.data.normalization = normalization
    config.data.validation_size = 10
    assert_refused(config, tmp_path, message)


def assert_refused(config, tmp_path, message):
    """`runner.run` ends in one line starting with `message`, and leaves
    a workdir holding a file of the user's as it was."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    before = test_bad_input.tree_hash(str(workdir))
    with pytest.raises(ValueError) as raised:
        runner.run(config, str(workdir))
    text = str(raised.value)
    assert "\n" not in text and text.startswith(message), text
    assert test_bad_input.tree_hash(str(workdir)) == before


# Where `train_split` and `held_out_split` read: set by the test that
# names them (functions of no argument, as run_experiment takes them).
_FOLDER = ""


def train_split():
    return streamed_tfrecords.load(_FOLDER)[0]


def held_out_split():
    return streamed_tfrecords.load(_FOLDER)[1]


def test_run_experiment_streams_data_given_by_import_path(
        tfrecord_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "_FOLDER", tfrecord_dir)

    def build_model():
        return keras.Sequential([
            keras.Input((28, 28, 1)), keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, name="output")])

    workdir = str(tmp_path / "run")
    arguments = dict(test_data="test_streamed:held_out_split", workdir=workdir,
                     num_steps=20, eval_every_steps=10, batch_size=50,
                     prune={"num_rounds": 1}, verbose=0)
    summary = keras_lottery.run_experiment(
        build_model, "test_streamed:train_split", **arguments)
    assert [r["round"] for r in summary] == [0, 1]
    config = files.read_json(paths.config_file(workdir))
    assert config["data"]["name"] == streams.FUNCTIONS_LOADER
    assert config["data"]["dir"] == (
        "train=test_streamed:train_split;test=test_streamed:held_out_split")
    assert config["data"]["validation_size"] == 60  # 10% of 600
    assert not os.path.exists(os.path.join(workdir, "data"))
    # Called again, it resumes: every round is done.
    again = keras_lottery.run_experiment(
        build_model, "test_streamed:train_split", **arguments)
    assert [r["early_stop_step"] for r in again] == [
        r["early_stop_step"] for r in summary]
    with pytest.raises(ValueError, match=(
            r"^`train_data`, `test_data` and `validation_data` \(if given\)"
            r" must all be import paths .* Received: import paths for "
            r"train$")):
        keras_lottery.run_experiment(
            build_model, "test_streamed:train_split",
            **{**arguments, "test_data": (np.zeros((5, 28, 28, 1)),
                                          np.zeros(5, np.int32))})


# A tfds dataset by name: 600 training and 100 test MNIST digits prepared
# with tfds (as `tfds build` would) into a folder of the test's own; the
# run reads it from the files, as for any prepared dataset. Nothing is
# downloaded.
TFDS = (
    "--config.data.name=tfds:tiny_mnist",
    "--config.data.train_split=train[:80%]",
    "--config.data.validation_split=train[80%:]",
    "--config.data.test_split=test", "--config.data.shuffle_buffer=128",
)


@pytest.fixture(scope="module")
def tfds_dir(mnist_dir, tmp_path_factory):
    """The tfds folder holding `tiny_mnist`, prepared from real digits."""
    import tensorflow_datasets as tfds

    raw = readers.read_idx_files(mnist_dir)

    class TinyMnist(tfds.core.GeneratorBasedBuilder,
                    skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self, features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10)}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            del dl_manager  # nothing to download
            return {"train": self._generate_examples(raw.train_x[:600],
                                                     raw.train_y[:600]),
                    "test": self._generate_examples(raw.test_x[:100],
                                                    raw.test_y[:100])}

        def _generate_examples(self, x, y):
            for i, (image, label) in enumerate(zip(x, y)):
                yield i, {"image": image, "label": int(label)}

    folder = str(tmp_path_factory.mktemp("tfds"))
    TinyMnist(data_dir=folder).download_and_prepare()
    return folder


def test_a_tfds_dataset_streams_its_split_strings(tfds_dir, mnist_dir):
    """The splits are the examples their strings name, in order, scaled;
    the stream rebuilt at a step gives an uninterrupted stream's batches
    (what exact resumption needs of it)."""
    config = test_bad_input.tiny_config(tfds_dir)
    for flag in TFDS:
        field, value = flag.removeprefix("--config.").split("=", 1)
        section, name = field.split(".")
        config[section][name] = int(value) if value.isdigit() else value
    config.data.normalization = "zero_one"
    data = streams.load_config(config.data, 0)
    raw = readers.read_idx_files(mnist_dir)
    assert (data.train_count, data.num_classes) == (480, 10)
    assert data.source == f"tfds:tiny_mnist(data_dir={tfds_dir!r})"
    x, y = streams.arrays(data.train, "train")
    assert x.dtype == np.float32 and y.dtype == np.int32
    # tfds's own reading of the split strings (its files hold the examples
    # in an order of its own), scaled to [0, 1].
    import tensorflow_datasets as tfds

    builder = tfds.builder("tiny_mnist", data_dir=tfds_dir)
    for split, got in (("train[:80%]", (x, y)),
                       ("train[80%:]", (data.validation_x,
                                        data.validation_y)),
                       ("test", (data.test_x, data.test_y))):
        want = tfds.as_numpy(builder.as_dataset(
            split=split, batch_size=-1, as_supervised=True))
        np.testing.assert_array_equal(got[0], want[0] / np.float32(255))
        np.testing.assert_array_equal(got[1], want[1])
    # Together, the two parts of the training split are its 600 digits.
    for ours, real in ((np.concatenate([x, data.validation_x]),
                        raw.train_x[:600]),
                       (data.test_x, raw.test_x[:100])):
        assert sorted(map(bytes, (ours * 255).round().astype(np.uint8))) == (
            sorted(map(bytes, real)))
    stream = streaming.StreamedData(data.train, data.train_count, 60,
                                    seed=3, shuffle_buffer=128)
    whole = [b for b, _ in stream(0).take(20).as_numpy_iterator()]
    again = streams.load_config(config.data, 0)  # a new process's reading
    resumed = streaming.StreamedData(again.train, again.train_count, 60,
                                     seed=3, shuffle_buffer=128)
    for a, b in zip(whole[11:], [b for b, _ in resumed(11).take(9)
                                 .as_numpy_iterator()], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_tfds_dataset_by_name_runs_through_the_binary(tfds_dir,
                                                        tmp_path):
    workdir = str(tmp_path / "workdir")
    status, log = test_reliability.run_binary(tfds_dir, workdir,
                                              extra=TFDS)
    assert status == 0, log[-3000:]
    assert (f"480 examples streamed from tfds:tiny_mnist(data_dir="
            f"'{tfds_dir}')" in log), log[-3000:]
    summary = files.read_json(paths.summary_file(workdir))
    assert [e["round"] for e in summary] == [0, 1, 2]
    assert summary[0]["test_accuracy"] > 0.5  # 40 steps of 480 digits
    config = files.read_json(paths.config_file(workdir))
    assert (config["data"]["train_split"],
            config["data"]["validation_split"]) == (
        "train[:80%]", "train[80%:]")


@pytest.mark.parametrize("fields, message", [
    ({"train_split": "trian"}, "`data.train_split` must be a split of TFDS "
     "dataset 'tiny_mnist' (train, test) as tfds writes it, e.g. "
     "'train[:90%]' (Unknown split 'trian'"),
    ({"test_split": "test[:200%]"}, "`data.test_split` must be a split of "
     "TFDS dataset 'tiny_mnist'"),
    ({"name": "tfds:no_such_dataset"}, "`data.name` must name a tfds "
     "dataset, registered or prepared in"),
    ({"normalization": "standardize"}, "`data.normalization` must be "
     "'none' or 'zero_one' for a tfds dataset"),
    ({"name": "mnist", "train_split": "train[:90%]"}, "`data.train_split` "
     "chooses a split of a tfds dataset (data.name='tfds:NAME'); 'mnist' "
     "is not one. Received: data.train_split='train[:90%]'"),
])
def test_bad_tfds_input_is_one_line_and_the_workdir_is_untouched(
        tfds_dir, tmp_path, fields, message):
    config = test_bad_input.tiny_config(tfds_dir)
    config.data.name = "tfds:tiny_mnist"
    config.data.validation_size = 60
    config.data.normalization = "zero_one"
    for name, value in fields.items():
        config.data[name] = value
    assert_refused(config, tmp_path, message)

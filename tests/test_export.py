"""Tests of the SavedModel and TFLite exports and of `binaries.export`."""

import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import app
from absl import flags
from absl.testing import flagsaver

import keras_lottery
from binaries import export as export_binary
from configs import lenet300_mnist
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import wrapping
from keras_lottery.data import datasets
from keras_lottery.models import zoo
from keras_lottery.pruning import selection
from keras_lottery.serving import artifacts
from keras_lottery.serving import export
from keras_lottery.serving import litert

NUM_ROUNDS = 7  # fc layers keep 0.8**7 = 21% of their weights


@pytest.fixture(scope="module")
def splits(mnist_dir):
    return datasets.load("mnist", mnist_dir, validation_size=1000)


@pytest.fixture(scope="module")
def model(splits):
    """LeNet-300-100 pruned at initialisation, then trained with masks."""
    wrapped = keras_lottery.wrap(
        zoo.build("lenet_300_100", (28, 28, 1), 10, seed=0))
    for _ in range(NUM_ROUNDS):
        keras_lottery.prune(wrapped, 0.2, fractions={"output": 0.1})
    keras.utils.set_random_seed(0)
    wrapped.compile(
        optimizer=keras.optimizers.Adam(1.2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    wrapped.fit(splits.train_x[:18000], splits.train_y[:18000],
                batch_size=60, epochs=1, verbose=0)  # 300 steps
    return wrapped


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("serving"))
    return export.export_saved_model(model, output)


@pytest.fixture(scope="module")
def sparse_saved_model(model, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("serving_sparse"))
    return export.export_saved_model(model, output, layout="sparse")


# The variables of each SavedModel layout, as the loaded object lists them.
LOADED_VARIABLES = {
    "dense": "loaded.variables",
    "sparse": "[*loaded.kept_values, *loaded.kept_positions, "
              "*loaded.unmasked_weights]",
}


def probe(batch_size, seed=1):
    return np.random.default_rng(seed).uniform(
        size=(batch_size, 28, 28, 1)).astype(np.float32)


def keras_outputs(model, x):
    logits = keras.ops.convert_to_numpy(model(x))
    return logits, keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def cli(*args):
    """Runs saved_model_cli from the venv of the running interpreter."""
    tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([tool, *args], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_saved_model_layout_for_tf_serving(saved_model, tmp_path):
    base, version = os.path.split(saved_model)
    assert version == "1" and os.path.basename(base) == "lottery"
    assert sorted(os.listdir(base)) == ["1"]  # no temporary folder left
    assert {"saved_model.pb", "variables", "assets"} <= set(
        os.listdir(saved_model))


def serve_in_subprocess(saved_model, tmp_path, inputs, layout="dense"):
    """Loads `saved_model` in a fresh process that cannot import
    keras_lottery; returns `{"<input key>/<output>": array}` for every batch
    in `inputs` and `{"var/<name>": array}` for every variable."""
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["keras_lottery"] = None
        import numpy as np
        import tensorflow as tf
        try:
            import keras_lottery  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("keras_lottery was importable")
        loaded = tf.saved_model.load({saved_model!r})
        serve = loaded.signatures["serving_default"]
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        out = {{}}
        for key in inputs.files:
            for name, value in serve(input=tf.constant(inputs[key])).items():
                out[f"{{key}}/{{name}}"] = value.numpy()
        for variable in {LOADED_VARIABLES[layout]}:
            out["var/" + variable.name.split(":")[0]] = variable.numpy()
        np.savez({str(tmp_path / "outputs.npz")!r}, **out)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "outputs.npz"))


def assert_outputs_match(model, out, inputs):
    for key, x in inputs.items():
        logits, probabilities = keras_outputs(model, x)
        assert out[f"{key}/logits"].shape == (len(x), 10)
        np.testing.assert_allclose(out[f"{key}/logits"], logits,
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[f"{key}/probabilities"],
                                   probabilities, rtol=1e-5, atol=1e-5)


def test_saved_model_runs_without_keras_lottery(model, saved_model,
                                                tmp_path):
    """A fresh process that cannot import keras_lottery serves the model."""
    inputs = {"batch1": probe(1), "batch7": probe(7)}
    out = serve_in_subprocess(saved_model, tmp_path, inputs)
    assert_outputs_match(model, out, inputs)
    masks = keras_lottery.get_masks(model)
    assert set(masks) == {"fc1/kernel", "fc2/kernel", "output/kernel"}
    for key, mask in masks.items():
        saved = out[f"var/{key}"]
        assert np.all(saved[mask == 0] == 0), key  # exactly zero
        assert np.count_nonzero(saved) == np.count_nonzero(mask), key
        effective = model.get_layer(key.split("/")[0]).layer.kernel.numpy()
        np.testing.assert_array_equal(saved, effective * mask)


def test_sparse_saved_model_runs_without_keras_lottery(
        model, sparse_saved_model, tmp_path):
    """The sparse layout serves from TF alone, and its kept values and
    positions densify to exactly weight * mask."""
    inputs = {"batch1": probe(1), "batch7": probe(7)}
    out = serve_in_subprocess(sparse_saved_model, tmp_path, inputs,
                              layout="sparse")
    assert_outputs_match(model, out, inputs)
    masks = keras_lottery.get_masks(model)
    assert sorted(out) == sorted(
        [f"{key}/{name}" for key in inputs
         for name in ("logits", "probabilities")]
        + [f"var/{key}/{part}" for key in masks
           for part in ("values", "positions")]
        + ["var/fc1/bias", "var/fc2/bias", "var/output/bias"])
    for key, mask in masks.items():
        positions = out[f"var/{key}/positions"]
        # fc1's 235,200 positions need int32; the others fit 16 bits.
        assert positions.dtype == (np.int32 if key == "fc1/kernel"
                                   else np.uint16), key
        np.testing.assert_array_equal(positions, np.flatnonzero(mask))
        densified = np.zeros(mask.size, np.float32)
        densified[positions] = out[f"var/{key}/values"]
        effective = model.get_layer(key.split("/")[0]).layer.kernel.numpy()
        np.testing.assert_array_equal(densified.reshape(mask.shape),
                                      effective * mask)


def test_sparse_saved_model_is_smaller(model, saved_model,
                                       sparse_saved_model):
    """79% pruned: no kernel is stored dense, and the folder is smaller
    than the dense layout's, as written and gzipped."""
    prefix = os.path.join(sparse_saved_model, "variables", "variables")
    shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    kernels = {tuple(m.shape) for m in keras_lottery.get_masks(model).values()}
    assert not kernels & {tuple(shape) for shape in shapes.values()}

    def sizes(path):
        raw = gzipped = 0
        for folder, _, names in os.walk(path):
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    content = f.read()
                raw += len(content)
                gzipped += len(gzip.compress(content, 9))
        return raw, gzipped

    sparse, dense = sizes(sparse_saved_model), sizes(saved_model)
    assert sparse[0] < 0.6 * dense[0]
    assert sparse[1] < dense[1]


def test_sparse_layout_densifies_conv_kernels(tmp_path):
    """Any masked weight works, here a Conv2D kernel (36 entries: uint8
    positions) before a Dense one (320 entries: uint16)."""
    conv = keras_lottery.wrap(keras.Sequential([
        keras.Input((6, 6, 1), name="pixels"),
        keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(5, name="head")]))
    keras_lottery.prune(conv, 0.5)
    path = export.export_saved_model(conv, str(tmp_path), layout="sparse")
    loaded = tf.saved_model.load(path)
    assert [(v.name, v.dtype) for v in loaded.kept_positions] == [
        ("conv/kernel/positions:0", tf.uint8),
        ("head/kernel/positions:0", tf.uint16)]
    serve = loaded.signatures["serving_default"]
    x = np.random.default_rng(2).uniform(size=(3, 6, 6, 1)).astype(
        np.float32)
    np.testing.assert_allclose(serve(pixels=tf.constant(x))["logits"],
                               conv(x), rtol=1e-5, atol=1e-5)


def test_saved_model_cli_shows_the_sparse_signature(sparse_saved_model):
    shown = cli("show", "--dir", sparse_saved_model, "--tag_set", "serve",
                "--signature_def", "serving_default")
    assert "inputs['input']" in shown
    assert "shape: (-1, 28, 28, 1)" in shown
    assert "outputs['logits']" in shown
    assert "outputs['probabilities']" in shown
    assert "Method name is: tensorflow/serving/predict" in shown


def test_saved_model_cli_show_and_run(model, saved_model, tmp_path):
    shown = cli("show", "--dir", saved_model, "--all")
    assert "signature_def['serving_default']" in shown
    assert "inputs['input']" in shown
    assert "shape: (-1, 28, 28, 1)" in shown
    assert "outputs['logits']" in shown
    assert "outputs['probabilities']" in shown
    # TF 2.21's --input_exprs takes Python literals only (no np.zeros).
    x = probe(2)
    np.save(tmp_path / "x.npy", x)
    cli("run", "--dir", saved_model, "--tag_set", "serve",
        "--signature_def", "serving_default", "--inputs",
        f"input={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out"))
    logits, probabilities = keras_outputs(model, x)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "logits.npy"),
                               logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.load(tmp_path / "out" / "probabilities.npy"), probabilities,
        rtol=1e-5, atol=1e-5)


def test_saved_model_stores_each_weight_once(model, saved_model):
    prefix = os.path.join(saved_model, "variables", "variables")
    saved = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    saved.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    stripped = keras_lottery.strip(model)
    assert sorted(map(tuple, saved.values())) == sorted(
        tuple(v.shape) for v in stripped.variables)
    size = os.path.getsize(prefix + ".data-00000-of-00001")
    assert size < 1.01 * 4 * sum(int(np.prod(v.shape))
                                 for v in stripped.variables)


def test_sparsity_asset(model, saved_model):
    with open(os.path.join(saved_model, "assets", artifacts.SPARSITY_ASSET),
              encoding="utf-8") as f:
        report = json.load(f)
    fractions = keras_lottery.sparsity(model)
    masks = keras_lottery.get_masks(model)
    assert set(report["weights"]) == set(masks)
    for key, mask in masks.items():
        assert report["weights"][key] == {
            "remaining": fractions[key], "kept": int(mask.sum()),
            "total": mask.size}
    assert report["total"] == {
        "remaining": fractions["total"],
        "kept": sum(int(m.sum()) for m in masks.values()),
        "total": 266200}
    assert report["weights"]["fc1/kernel"]["kept"] == (
        selection.remaining_after(235200, 0.2, NUM_ROUNDS))


def test_existing_version_is_never_overwritten(model, saved_model):
    output = os.path.dirname(os.path.dirname(saved_model))
    before = sorted(os.listdir(saved_model))
    stamp = os.path.getmtime(os.path.join(saved_model, "saved_model.pb"))
    with pytest.raises(ValueError, match=r"already exists.*Pick a new "
                       r"`version`. Received: path='.*lottery/1'"):
        export.export_saved_model(model, output)
    assert sorted(os.listdir(saved_model)) == before
    assert os.path.getmtime(
        os.path.join(saved_model, "saved_model.pb")) == stamp


@pytest.mark.parametrize("layout, message", [
    ("dense", "nonzero values at pruned positions of 'fc2/kernel'; "
              "refusing it"),
    ("sparse", r"stores a 'fc2/kernel' that densifies to other values "
               r"than weight \* mask at \d+ positions; refusing it"),
], ids=["dense", "sparse"])
def test_failed_check_removes_the_saved_model(model, tmp_path, monkeypatch,
                                              layout, message):
    real_strip = wrapping.strip

    def leaky_strip(wrapped):
        stripped = real_strip(wrapped)
        kernel = stripped.get_layer("fc2").kernel
        kernel.assign(keras.ops.ones(kernel.shape))
        return stripped

    monkeypatch.setattr(wrapping, "strip", leaky_strip)
    with pytest.raises(ValueError, match=message):
        export.export_saved_model(model, str(tmp_path), version=4,
                                  layout=layout)
    assert os.listdir(tmp_path / "lottery") == []  # no version, no temp


def test_tflite_float_matches_keras_and_is_sparse(model, tmp_path):
    path = export.export_tflite(model, str(tmp_path / "sparse.tflite"))
    for batch_size in (1, 7):
        x = probe(batch_size)
        out = litert.predict_tflite(path, x)
        logits, probabilities = keras_outputs(model, x)
        np.testing.assert_allclose(out["logits"], logits, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(out["probabilities"], probabilities,
                                   rtol=1e-5, atol=1e-5)
    dense = keras_lottery.wrap(
        zoo.build("lenet_300_100", (28, 28, 1), 10, seed=0))
    dense_path = export.export_tflite(dense, str(tmp_path / "dense.tflite"))
    # About a fifth of the weights remain: the sparse encoding must show.
    assert os.path.getsize(path) < 0.5 * os.path.getsize(dense_path)
    assert sorted(os.listdir(tmp_path)) == ["dense.tflite", "sparse.tflite"]


def test_tflite_int8_keeps_accuracy(model, splits, tmp_path):
    x, y = splits.test_x[:1000], splits.test_y[:1000]
    path = export.export_tflite(model, str(tmp_path / "m.tflite"), "int8",
                                representative_data=splits.train_x,
                                test_data=(x, y))
    keras_accuracy = np.mean(
        np.argmax(keras_outputs(model, x)[0], -1) == y)
    lite_accuracy = np.mean(
        np.argmax(litert.predict_tflite(path, x)["logits"], -1) == y)
    assert keras_accuracy > 0.85  # trained enough for the check to mean it
    assert keras_accuracy - lite_accuracy <= 0.005


def test_tflite_int8_refuses_bad_calibration(model, splits, tmp_path):
    """Calibrated on inputs 100 times too small, int8 saturates."""
    path = str(tmp_path / "m.tflite")
    with pytest.raises(ValueError, match=r"The int8 TFLite model is .* less "
                       r"accurate than the Keras model on 1000 test examples"):
        export.export_tflite(
            model, path, "int8", representative_data=splits.train_x / 100,
            test_data=(splits.test_x[:1000], splits.test_y[:1000]))
    assert os.listdir(tmp_path) == []


def test_errors(model, tmp_path):
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        export.export_saved_model("model.keras", str(tmp_path))
    with pytest.raises(ValueError, match=r"`quantize` must be one of "
                       r"\['none', 'int8'\]. Received: quantize='int4'"):
        export.export_tflite(model, str(tmp_path / "m.tflite"), "int4")
    with pytest.raises(ValueError, match=r"`formats` must be a non-empty "
                       r"list of \['saved_model', 'tflite'\]. Received: "
                       r"formats=\['onnx'\]"):
        export.export_model(model, str(tmp_path), ["onnx"])
    with pytest.raises(ValueError, match="`quantize` applies to the tflite "
                       "format only"):
        export.export_model(model, str(tmp_path), ["saved_model"],
                            quantize="int8")
    with pytest.raises(ValueError, match=r"`representative_data` must be a "
                       r"non-empty batch of inputs of shape \(N, 28, 28, 1\)"
                       r".*Received: representative_data of shape None"):
        export.export_tflite(model, str(tmp_path / "m.tflite"), "int8")
    with pytest.raises(ValueError, match=r"`test_data` must be `\(inputs, "
                       r"labels\)`.*Received: test_data of shapes "
                       r"\[\(3, 28, 28, 1\), \(2,\)\]"):
        export.export_tflite(model, str(tmp_path / "m.tflite"), "int8",
                             representative_data=probe(3),
                             test_data=(probe(3), np.zeros(2)))
    with pytest.raises(ValueError, match=r"`version` must be an int >= 0. "
                       r"Received: version=-1"):
        export.export_saved_model(model, str(tmp_path), version=-1)
    with pytest.raises(ValueError, match=r"`model_name` must be a folder "
                       r"name.*Received: model_name='../up'"):
        export.export_saved_model(model, str(tmp_path), model_name="../up")
    with pytest.raises(ValueError, match=r"`path` must end with '.tflite'"):
        export.export_tflite(model, str(tmp_path / "m.bin"))
    with pytest.raises(ValueError, match=r"`layout` must be one of "
                       r"\['dense', 'sparse'\]. Received: layout='csr'"):
        export.export_saved_model(model, str(tmp_path), layout="csr")
    with pytest.raises(ValueError, match=r"`layout` must be one of "
                       r"\['dense', 'sparse'\]. Received: layout='Sparse'"):
        export.export_model(model, str(tmp_path), layout="Sparse")
    with pytest.raises(ValueError, match=r"`layout` applies to the "
                       r"saved_model format only. Received: "
                       r"layout='sparse', formats=\['tflite'\]"):
        export.export_model(model, str(tmp_path), ["tflite"],
                            layout="sparse")
    assert os.listdir(tmp_path) == []


def test_export_model_writes_all_or_nothing(model, tmp_path, monkeypatch):
    def failing_saved_model(*args, **kwargs):
        raise ValueError("SavedModel check failed")

    monkeypatch.setattr(export, "export_saved_model", failing_saved_model)
    with pytest.raises(ValueError, match="SavedModel check failed"):
        export.export_model(model, str(tmp_path), ["saved_model", "tflite"])
    assert os.listdir(tmp_path) == []  # the TFLite file was removed again


# The binary.


@pytest.fixture(scope="module")
def workdir(model, mnist_dir, tmp_path_factory):
    """A finished round 0 and an unfinished round 1, written by hand."""
    path = str(tmp_path_factory.mktemp("workdir"))
    config = lenet300_mnist.get_config("smoke")
    config.data.dir = mnist_dir
    files.write_json(paths.config_file(path), config.to_dict())
    os.makedirs(paths.round_dir(path, 0))
    model.save(paths.model_file(path, 0))
    files.write_json(paths.metrics_file(path, 0), {"test_accuracy": [0.9]})
    os.makedirs(paths.round_dir(path, 1))
    return path


@pytest.fixture
def parsed_flags():
    # pytest does not parse absl flags; flagsaver sets them by hand.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def run_binary(**flag_values):
    with flagsaver.flagsaver(**flag_values):
        export_binary.main(["export"])


def exit_message(**flag_values) -> str:
    with pytest.raises(SystemExit) as raised:
        run_binary(**flag_values)
    message = raised.value.code
    assert isinstance(message, str) and "\n" not in message, message
    return message


def test_binary_exports_both_formats_int8(model, workdir, tmp_path,
                                          parsed_flags, capsys):
    output = str(tmp_path / "out")
    run_binary(workdir=workdir, round=0, output=output,
               format=["saved_model", "tflite"], quantize="int8", version=3)
    written = capsys.readouterr().out.split()
    saved = os.path.join(output, "lottery", "3")
    lite = os.path.join(output, "lottery_v3_int8.tflite")
    assert written == [lite, saved]
    assert sorted(os.listdir(output)) == ["lottery", "lottery_v3_int8.tflite"]
    x = probe(7)
    loaded = keras.models.load_model(paths.model_file(workdir, 0))
    np.testing.assert_array_equal(loaded(x), model(x))
    with open(os.path.join(saved, "assets", "sparsity.json")) as f:
        assert json.load(f)["total"]["remaining"] == keras_lottery.sparsity(
            model)["total"]
    out = litert.predict_tflite(lite, x)
    assert out["logits"].shape == (7, 10)


def test_binary_exports_sparse_saved_model(model, workdir, tmp_path,
                                           parsed_flags, capsys):
    output = str(tmp_path / "out")
    run_binary(workdir=workdir, round=0, output=output,
               format=["saved_model"], saved_model_layout="sparse")
    saved = os.path.join(output, "lottery", "1")
    assert capsys.readouterr().out.split() == [saved]
    loaded = tf.saved_model.load(saved)
    assert [v.name for v in loaded.kept_values] == [
        f"{key}/values:0" for key in keras_lottery.get_masks(model)]


def test_binary_user_errors(workdir, tmp_path, parsed_flags):
    output = tmp_path / "out"
    base = {"workdir": workdir, "round": 0, "output": str(output)}
    message = exit_message(**{**base, "round": 5})
    assert message == (
        f"export: round 5 of {workdir} does not exist. Finished rounds: 0. "
        "Received: round=5")
    message = exit_message(**{**base, "round": 1})
    assert message.startswith(f"export: round 1 of {workdir} is not finished")
    assert paths.metrics_file(workdir, 1) in message
    message = exit_message(**{**base, "workdir": str(tmp_path / "nowhere")})
    assert message == ("export: `--workdir` is not a folder. Received: "
                       f"workdir='{tmp_path / 'nowhere'}'")
    message = exit_message(**{**base, "quantize": "int4"})
    assert message == ("export: `quantize` must be one of ['none', 'int8']. "
                       "Received: quantize='int4'")
    message = exit_message(**{**base, "saved_model_layout": "csr"})
    assert message == ("export: `layout` must be one of ['dense', 'sparse']. "
                       "Received: layout='csr'")
    message = exit_message(**{**base, "format": ["savedmodel"]})
    assert message.startswith("export: `formats` must be a non-empty list of "
                              "['saved_model', 'tflite']")
    with (pytest.raises(app.UsageError, match="Unexpected arguments: extra"),
          flagsaver.flagsaver(**base)):
        export_binary.main(["export", "extra"])
    assert not output.exists()  # nothing written on any failure


def test_binary_refuses_existing_version(workdir, tmp_path, parsed_flags):
    output = tmp_path / "out"
    (output / "lottery" / "2").mkdir(parents=True)
    message = exit_message(workdir=workdir, round=0, output=str(output),
                           format=["tflite", "saved_model"], version=2)
    assert message.startswith(f"export: {output}/lottery/2 already exists")
    assert sorted(os.listdir(output)) == ["lottery"]
    assert os.listdir(output / "lottery" / "2") == []


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_binary_refuses_damaged_model_file(workdir, tmp_path, parsed_flags,
                                           damage):
    damaged = str(tmp_path / "run")
    os.makedirs(paths.round_dir(damaged, 0))
    for path in (paths.config_file, functools.partial(paths.metrics_file,
                                                      round_index=0)):
        shutil.copy(path(workdir), path(damaged))
    model_file = paths.model_file(damaged, 0)
    with open(paths.model_file(workdir, 0), "rb") as f:
        content = f.read()
    with open(model_file, "wb") as f:
        f.write(b"not a model" if damage == "garbage"
                else content[:len(content) // 2])
    output = tmp_path / "out"
    message = exit_message(workdir=damaged, round=0, output=str(output))
    assert message.startswith(
        f"export: {model_file} cannot be loaded: it is damaged or not a "
        ".keras file. Move its round folder away")
    assert not output.exists()

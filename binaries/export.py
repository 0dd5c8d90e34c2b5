r"""Exports the trained model of one lottery round for serving.

  python -m binaries.export --workdir=/tmp/lenet300 --round=5 \
      --output=/tmp/serving [--format=saved_model,tflite] \
      [--quantize=none|int8] [--saved_model_layout=dense|sparse] \
      [--shrink] [--model_name=lottery] [--version=1]

writes `/tmp/serving/lottery/1/` (a SavedModel for TF Serving; with
`--saved_model_layout=sparse` it stores each pruned kernel as its kept
values and their positions, see keras_lottery/serving/export.py) and
`/tmp/serving/lottery_v1.tflite` (`lottery_v1_int8.tflite` with
`--quantize=int8`, which reads the run's dataset, named in its config.json,
to calibrate and to check accuracy on 1,000 test examples). With
`--shrink` the round's model goes through `keras_lottery.shrink` first:
dead units and filters are removed, so the artifacts are smaller and faster
(docs/SHRINK.md). Existing artifacts are never overwritten: pick a new
`--version`. The serving signature outputs `logits` and, as the run's
loss reads them, `probabilities`: their softmax (classes), their sigmoid
(binary cross-entropy), or none (a regression's loss).
"""

import os
import zipfile

import keras
import numpy as np
from absl import app
from absl import flags

import keras_lottery  # noqa: F401  (registers MaskedWrapper for loading)
from binaries import cli
from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.core import wrapping
from keras_lottery.data import streams
from keras_lottery.engine import tasks
from keras_lottery.lottery import run_config
from keras_lottery.pruning import shrinking
from keras_lottery.serving import artifacts
from keras_lottery.serving import export

# `--workdir` is also defined by the other binaries; allow_override lets
# their modules share one process (as tests do).
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "The lottery run's folder.", allow_override=True)
_ROUND = flags.DEFINE_integer("round", None, "The round to export (0: dense).")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Folder to export into (TF Serving's base path is "
    "OUTPUT/MODEL_NAME).")
_FORMAT = flags.DEFINE_list(
    "format", list(artifacts.FORMATS),
    f"Some of {', '.join(artifacts.FORMATS)}.")
_QUANTIZE = flags.DEFINE_string(
    "quantize", "none",
    f"TFLite quantization: {' or '.join(artifacts.QUANTIZATIONS)}.")
_LAYOUT = flags.DEFINE_string(
    "saved_model_layout", "dense",
    f"SavedModel layout: {' or '.join(artifacts.LAYOUTS)} (kept values and "
    "positions of each pruned kernel; smaller for sparse tickets).")
_SHRINK = flags.DEFINE_boolean(
    "shrink", False, "Removes dead units and filters first "
    "(keras_lottery.shrink): a smaller, faster model, same outputs.")
_MODEL_NAME = flags.DEFINE_string(
    "model_name", "lottery", "The SavedModel's folder under --output.")
_VERSION = flags.DEFINE_integer(
    "version", 1, "The SavedModel's version folder; must not exist yet.")

# Examples of the test split the int8 accuracy check runs on.
NUM_TEST_EXAMPLES = 1000


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        written = run(_WORKDIR.value, _ROUND.value, _OUTPUT.value,
                      _FORMAT.value, _QUANTIZE.value, _MODEL_NAME.value,
                      _VERSION.value, layout=_LAYOUT.value,
                      shrink=_SHRINK.value)
    except (ValueError, OSError) as e:
        cli.fail("export", e)
    for path in written.values():
        print(path)


def run(workdir: str, round_index: int, output: str, formats: list[str],
        quantize: str, model_name: str, version: int,
        layout: str = "dense", shrink: bool = False) -> dict[str, str]:
    """Exports round `round_index` of `workdir`; see the module docstring.

    With `shrink`, the model is `keras_lottery.shrink`'s copy without its
    dead units; its sparsity.json counts the nonzero weights it has left.

    Returns:
        `{format: path written}`.

    Raises:
        ValueError: for a missing workdir or output, an unfinished round,
            a model file without masks, a bad format, quantization,
            layout, name or version, or an existing artifact.
        FileNotFoundError: for a missing config.json (int8 only).
    """
    if not workdir or not os.path.isdir(workdir):
        raise ValueError(
            f"`--workdir` is not a folder. Received: workdir={workdir!r}")
    if not output:
        raise ValueError(f"`--output` is required. Received: output={output!r}")
    _check_round(workdir, round_index)
    model_file = paths.model_file(workdir, round_index)
    if not os.path.isfile(model_file):
        raise FileNotFoundError(
            f"Round {round_index} is finished but has no model file: "
            f"{model_file} does not exist.")
    # Cheap checks first: loading the model and the data takes a while.
    export.targets(output, formats, model_name, version, quantize, layout)
    representative_data = test_data = None
    if quantize == "int8":
        representative_data, test_data = _int8_data(workdir)
    model = _load(model_file)
    if not wrapping.wrapped_layers(model):
        # keras_lottery.export takes plain models (e.g. shrunk ones), but a
        # round's model file always holds the run's masks.
        raise ValueError(
            f"{model_file} holds no MaskedWrapper layer: it is not a model "
            "the lottery run wrote.")
    if shrink:
        model = shrinking.shrink(model)
    return export.export_model(
        model, output, formats, model_name=model_name, version=version,
        quantize=quantize, representative_data=representative_data,
        test_data=test_data, layout=layout,
        probabilities=_probabilities(workdir))


def _check_round(workdir: str, round_index: int | None) -> None:
    """Raises ValueError unless `round_index` is a finished round."""
    finished = []
    index = 0
    while os.path.isdir(paths.round_dir(workdir, index)):
        if os.path.isfile(paths.metrics_file(workdir, index)):
            finished.append(index)
        index += 1
    if round_index in finished:
        return
    known = ", ".join(map(str, finished)) or "none"
    if round_index is None or round_index < 0:
        problem = "`--round` must be an int >= 0"
    elif os.path.isdir(paths.round_dir(workdir, round_index)):
        problem = (f"round {round_index} of {workdir} is not finished "
                   f"({paths.metrics_file(workdir, round_index)} does not "
                   "exist)")
    else:
        problem = f"round {round_index} of {workdir} does not exist"
    raise ValueError(
        f"{problem}. Finished rounds: {known}. Received: round={round_index}")


def _probabilities(workdir: str) -> str:
    """The `probabilities` output the run's task asks for: the softmax
    (classes), the sigmoid (binary cross-entropy), or none (any other
    loss); `keras_lottery.engine.tasks`."""
    config_file = paths.config_file(workdir)
    if not os.path.isfile(config_file):
        return "softmax"  # a bare round folder: a classifier, as always
    config = run_config.with_added_fields(files.read_json(config_file))
    return tasks.from_config(config).activation or "none"


def _int8_data(
    workdir: str,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Calibration inputs and 1,000 test examples, as the run loaded them."""
    config_file = paths.config_file(workdir)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"--quantize=int8 needs the run's data, named in {config_file}, "
            "which does not exist.")
    config = run_config.with_added_fields(files.read_json(config_file))
    if not tasks.integer_labels(config):
        raise ValueError(
            "--quantize=int8 checks the int8 model's accuracy on class "
            "labels, and this run's loss takes targets (train.loss="
            f"{config['train']['loss']!r}): export it with "
            "--quantize=none.")
    try:
        splits = streams.load_config(config["data"], config["seed"])
    except KeyError as e:
        raise ValueError(f"{config_file} has no field {e}.") from None
    # A streamed training set is not held: its validation examples, in
    # memory, come from the same distribution.
    calibration = (splits.validation_x
                   if isinstance(splits, streams.Streams) else splits.train_x)
    return calibration, (splits.test_x[:NUM_TEST_EXAMPLES],
                            splits.test_y[:NUM_TEST_EXAMPLES])


def _load(model_file: str) -> keras.Model:
    # keras_lottery is imported above, so MaskedWrapper is registered.
    try:
        return keras.models.load_model(model_file, compile=False,
                                       safe_mode=True)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        # Keras reports a damaged archive as "File not found".
        raise ValueError(
            f"{model_file} cannot be loaded: it is damaged or not a .keras "
            "file. Move its round folder away and rerun the lottery to "
            f"redo the round. Keras says: {e}") from None


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery export`)."""
    flags.mark_flags_as_required(["workdir", "round", "output"])
    cli.run(main, "export")


if __name__ == "__main__":
    start()

"""The checks an export passes before it is written in place.

Every artifact is reloaded and compared with the Keras model it came from:
weights (dense or sparse layout), outputs at several batch sizes, and an
int8 model's accuracy; arguments are checked before anything is written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.core import wrapping
from keras_lottery.serving import artifacts
from keras_lottery.serving import litert


def outputs(logits, probabilities: str = "softmax") -> dict:
    """An artifact's outputs of `logits`: `logits`, and `probabilities`
    unless `probabilities` is "none" (`artifacts.PROBABILITIES`)."""
    if probabilities == "none":
        return {"logits": logits}
    activation = (keras.ops.softmax if probabilities == "softmax"
                  else keras.ops.sigmoid)
    if probabilities == "softmax":
        return {"logits": logits,
                "probabilities": activation(logits, axis=-1)}
    return {"logits": logits, "probabilities": activation(logits)}


def check_saved_model(directory: str, model: keras.Model,
                       stripped: keras.Model, layout: str,
                       probabilities: str = "softmax") -> None:
    """Raises ValueError unless the SavedModel holds weight * mask for every
    masked weight and computes what `model` computes."""
    loaded = tf.saved_model.load(directory)
    if layout == "sparse":
        _check_sparse_weights(loaded, directory, model, stripped)
    else:
        _check_dense_weights(loaded, directory, model, stripped)
    signature = loaded.signatures[artifacts.SIGNATURE]
    name = input_name(model)

    def predict(x):
        outputs = signature(**{name: tf.constant(x)})
        return {key: value.numpy() for key, value in outputs.items()}

    check_outputs(predict, model, f"The SavedModel in {directory}",
                  probabilities)


def _check_sparse_weights(loaded, directory: str, model: keras.Model,
                          stripped: keras.Model) -> None:
    """Raises ValueError unless every masked weight's kept values and
    positions densify to exactly weight * mask, and the other weights are
    stored as they are in `stripped`."""
    masks = masks_of_stripped(model, stripped)
    want = [tuple(v.shape) for v in stripped.variables if id(v) not in masks]
    unmasked = list(getattr(loaded, "unmasked_weights", []))
    if [tuple(v.shape) for v in unmasked] != want:
        raise ValueError(
            f"The SavedModel in {directory} does not hold the unmasked "
            f"variables of the stripped model: shapes "
            f"{[tuple(v.shape) for v in unmasked]} vs {want}."
        )
    stored = {v.name.split(":")[0]: v for v in [
        *getattr(loaded, "kept_values", []),
        *getattr(loaded, "kept_positions", [])]}
    for wrapper in wrapping.wrapped_layers(model):
        for key, variable, mask in zip(wrapper.mask_keys(),
                                       wrapper.masked_variables,
                                       wrapper.masks):
            expected = keras.ops.convert_to_numpy(
                variable.value * mask.value).reshape(-1)
            values = stored.get(f"{key}/{artifacts.VALUES}")
            positions = stored.get(f"{key}/{artifacts.POSITIONS}")
            if values is None or positions is None:
                raise ValueError(
                    f"The SavedModel in {directory} stores no kept values "
                    f"and positions of {key!r}; refusing it."
                )
            flat = positions.numpy().astype(np.int64)
            if (flat.shape != tuple(values.shape)
                    or np.any(np.diff(flat) <= 0)
                    or (flat.size and (flat[0] < 0
                                       or flat[-1] >= expected.size))):
                raise ValueError(
                    f"The SavedModel in {directory} stores positions of "
                    f"{key!r} that are not increasing indices into its "
                    f"{expected.size} weights, one per kept value; "
                    "refusing it."
                )
            densified = np.zeros_like(expected)
            densified[flat] = values.numpy()
            differ = int(np.count_nonzero(densified != expected))
            if differ:
                raise ValueError(
                    f"The SavedModel in {directory} stores a {key!r} that "
                    f"densifies to other values than weight * mask at "
                    f"{differ} positions; refusing it."
                )


def _check_dense_weights(loaded, directory: str, model: keras.Model,
                         stripped: keras.Model) -> None:
    """Raises ValueError unless the SavedModel holds the stripped model's
    variables, zero where pruned."""
    saved = list(loaded.variables)
    expected = stripped.variables
    if [tuple(v.shape) for v in saved] != [tuple(v.shape) for v in expected]:
        raise ValueError(
            f"The SavedModel in {directory} does not hold the variables of "
            f"the stripped model: {[v.name for v in saved]} vs "
            f"{[v.path for v in expected]}."
        )
    masks = masks_of_stripped(model, stripped)
    for variable, original in zip(saved, expected):
        if id(original) not in masks:
            continue
        key, mask = masks[id(original)]
        leaked = int(np.count_nonzero(variable.numpy()[mask == 0]))
        if leaked:
            raise ValueError(
                f"The SavedModel in {directory} holds {leaked} nonzero "
                f"values at pruned positions of {key!r}; refusing it."
            )


def masks_of_stripped(model: keras.Model, stripped: keras.Model
                       ) -> dict[int, tuple[str, np.ndarray]]:
    """Maps `id(stripped variable)` to `(mask key, mask)` for masked ones.

    `strip` keeps layer names and the order of each layer's weights.
    """
    layers = {layer.name: layer for layer in
              stripped._flatten_layers(include_self=False)
              if not isinstance(layer, keras.Model)}
    found = {}
    for wrapper in wrapping.wrapped_layers(model):
        weights = layers[wrapper.name].weights
        position = {id(v): i for i, v in enumerate(wrapper.layer.weights)}
        for key, variable, mask in zip(wrapper.mask_keys(),
                                       wrapper.masked_variables,
                                       wrapper.masks):
            copy = weights[position[id(variable)]]
            found[id(copy)] = (key, keras.ops.convert_to_numpy(mask.value))
    return found


def check_outputs(predict, model: keras.Model, what: str,
                  probabilities: str = "softmax") -> None:
    """Raises ValueError unless `predict(x)` matches `model(x)` on probes."""
    rng = np.random.default_rng(0)
    shape = tuple(model.inputs[0].shape[1:])
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    for batch_size in artifacts.PROBE_BATCH_SIZES:
        x = rng.uniform(size=(batch_size, *shape))
        # Token ids (an Embedding's input): 0 and 1 fit every vocabulary.
        x = (x < 0.5).astype(dtype) if "int" in dtype else x.astype(
            np.float32)
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        reference = {key: keras.ops.convert_to_numpy(value) for key, value
                     in outputs(logits, probabilities).items()}
        got_outputs = predict(x)
        if set(got_outputs) != set(reference):
            raise ValueError(
                f"{what} has outputs {sorted(got_outputs)}, not "
                f"{sorted(reference)}; refusing it.")
        for key, want in reference.items():
            got = got_outputs[key]
            if got.shape != want.shape or not np.allclose(
                    got, want, rtol=artifacts.TOLERANCE,
                    atol=artifacts.TOLERANCE):
                error = (np.max(np.abs(got - want)) if got.shape == want.shape
                         else f"shape {got.shape} instead of {want.shape}")
                raise ValueError(
                    f"{what} computes other {key!r} than the Keras model at "
                    f"batch size {batch_size} (largest difference {error}, "
                    f"tolerance {artifacts.TOLERANCE}); refusing it."
                )


def check_tflite_accuracy(path: str, model: keras.Model,
                           test_data: tuple[np.ndarray, np.ndarray],
                           max_accuracy_drop: float) -> None:
    """Raises ValueError if the file loses too much accuracy on test_data."""
    x, y = test_data
    x = np.asarray(x, np.float32)
    y = np.asarray(y).reshape(-1)
    keras_logits = keras.ops.convert_to_numpy(
        model.predict(x, batch_size=1000, verbose=0))
    keras_accuracy = float(np.mean(np.argmax(keras_logits, -1) == y))
    lite_logits = litert.predict_tflite(path, x)["logits"]
    lite_accuracy = float(np.mean(np.argmax(lite_logits, -1) == y))
    if keras_accuracy - lite_accuracy > max_accuracy_drop:
        raise ValueError(
            f"The int8 TFLite model is {keras_accuracy - lite_accuracy:.2%} "
            f"less accurate than the Keras model on {len(y)} test examples "
            f"({lite_accuracy:.2%} vs {keras_accuracy:.2%}; at most "
            f"{max_accuracy_drop:.2%} allowed); refusing it."
        )


def calibration(data: np.ndarray):
    """The converter's representative dataset: a seeded random subset."""
    data = np.asarray(data, np.float32)
    rng = np.random.default_rng(0)
    size = min(len(data), artifacts.NUM_CALIBRATION_EXAMPLES)
    chosen = rng.choice(len(data), size=size, replace=False)

    def examples() -> Iterator[list[np.ndarray]]:
        for i in chosen:
            yield [data[i:i + 1]]

    return examples


def input_name(model: keras.Model) -> str:
    # The name of the input layer (`keras.Input(name=...)`), which the
    # symbolic input tensor of a functional model does not carry itself.
    return model.inputs[0]._keras_history.operation.name


def check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model. Received: model={model!r}"
        )
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            "`model` must have one input and one output (logits). "
            f"Received: model={model.name!r} with {len(inputs)} inputs "
            f"and {len(outputs)} outputs"
        )
    if any(dim is None for dim in inputs[0].shape[1:]):
        raise ValueError(
            "`model` must have a fixed input shape apart from the batch "
            f"dimension. Received: model={model.name!r} with input shape "
            f"{tuple(inputs[0].shape)}"
        )


def check_name_and_version(model_name: str, version: int) -> None:
    if not (isinstance(model_name, str)
            and artifacts.NAME_PATTERN.fullmatch(model_name)):
        raise ValueError(
            "`model_name` must be a folder name of letters, digits, '_', "
            f"'-' and '.'. Received: model_name={model_name!r}"
        )
    if (isinstance(version, bool)
            or not isinstance(version, (int, np.integer)) or version < 0):
        raise ValueError(
            f"`version` must be an int >= 0. Received: version={version!r}"
        )


def check_layout(layout: str) -> None:
    if layout not in artifacts.LAYOUTS:
        raise ValueError(
            f"`layout` must be one of {list(artifacts.LAYOUTS)}. "
            f"Received: layout={layout!r}"
        )


def check_quantize(quantize: str) -> None:
    if quantize not in artifacts.QUANTIZATIONS:
        raise ValueError(
            f"`quantize` must be one of {list(artifacts.QUANTIZATIONS)}. "
            f"Received: quantize={quantize!r}"
        )


def check_int8_data(model: keras.Model, quantize: str,
                     representative_data: np.ndarray | None,
                     test_data: tuple[np.ndarray, np.ndarray] | None) -> None:
    if quantize != "int8":
        return
    shape = tuple(model.inputs[0].shape[1:])
    wanted = f"(N, {', '.join(map(str, shape))})"
    if (representative_data is None
            or np.ndim(representative_data) != len(shape) + 1
            or tuple(np.shape(representative_data)[1:]) != shape
            or not len(representative_data)):
        received = (None if representative_data is None
                    else np.shape(representative_data))
        raise ValueError(
            "`representative_data` must be a non-empty batch of inputs of "
            f"shape {wanted} for quantize='int8'. Received: "
            f"representative_data of shape {received}"
        )
    if (not isinstance(test_data, (tuple, list)) or len(test_data) != 2
            or tuple(np.shape(test_data[0])[1:]) != shape
            or len(test_data[0]) != len(test_data[1])
            or not len(test_data[1])):
        received = (None if not isinstance(test_data, (tuple, list))
                    else [np.shape(part) for part in test_data])
        raise ValueError(
            "`test_data` must be `(inputs, labels)` with inputs of shape "
            f"{wanted} and N labels, for quantize='int8'. Received: "
            f"test_data of shapes {received}"
        )


def check_free(path: str) -> None:
    if os.path.exists(path):
        raise ValueError(
            f"{path} already exists: an exported artifact is never "
            "overwritten (a server may be serving it). Pick a new "
            f"`version`. Received: path={path!r}"
        )


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)

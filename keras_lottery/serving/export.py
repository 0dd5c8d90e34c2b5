"""Exports a pruned model for serving: TF SavedModel and TFLite.

Every export starts from `wrapping.strip(model)`, a plain Keras model whose
pruned weights are exactly 0, so the artifacts need nothing from
keras_lottery to load or run. Each artifact is written under a temporary
name, re-read and checked against the Keras model, and only then renamed
into place; a check that fails removes it and raises `ValueError`. A plain
model without masks (e.g. `keras_lottery.shrink`'s) is exported as it is.

Layout under `output_dir`, as TF Serving expects (`--model_base_path` is
`output_dir/model_name`):

    output_dir/
      lottery/1/                 SavedModel, version 1
        saved_model.pb
        variables/               see "SavedModel layouts" below
        assets/sparsity.json     per-weight counts of kept weights
      lottery_v1.tflite          TFLite, float32 (`tflite_path`)
      lottery_v1_int8.tflite     TFLite, full-integer

Both formats have one signature, `serving_default`, with one input named
after the model's input layer (batch dimension dynamic) and two outputs:
`logits` (what the model computes) and `probabilities` (their softmax;
with `probabilities="sigmoid"` their sigmoid, for a binary or multi-label
task; with `"none"`, for a regression, `logits` alone).

SavedModel layouts (`LAYOUTS`), chosen with `layout=`:
- "dense" (the default): every weight as a dense float tensor, pruned
  weights exactly 0; the variables have the stripped model's names.
- "sparse": each masked weight as two variables, `<layer>/<weight>/values`
  (the kept weights, float) and `<layer>/<weight>/positions` (their flat,
  row-major indices, increasing, in the narrowest of uint8, uint16, int32
  and int64 that holds the weight's size). The serving function rebuilds
  the dense weight on every call (SparseToDense) and runs the same layers
  on it. Other weights stay dense. At 3.6% of LeNet-300-100's weights it
  gzips to about half of the dense layout; see docs/SERVING.md.

Example:
    >>> paths = export.export_model(model, "/serving", ["saved_model"])
    >>> paths["saved_model"]
    '/serving/lottery/1'
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.base import files
from keras_lottery.core import prunable
from keras_lottery.core import state
from keras_lottery.core import wrapping
from keras_lottery.serving import artifacts
from keras_lottery.serving import checks
from keras_lottery.serving import litert


def export_model(
    model: keras.Model,
    output_dir: str,
    formats: Sequence[str] = ("saved_model",),
    model_name: str = "lottery",
    version: int = 1,
    quantize: str = "none",
    representative_data: np.ndarray | None = None,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    layout: str = "dense",
    probabilities: str = "softmax",
) -> dict[str, str]:
    """Exports `model` in several formats; all of them or none.

    Every argument is checked, and every target is checked to be free,
    before anything is written. The TFLite file is written before the
    SavedModel (the artifact TF Serving picks up), and removed again if
    the SavedModel fails its checks.

    Args:
        model: a model with one input and one output (logits), holding
            `MaskedWrapper` layers or plain (e.g. `keras_lottery.shrink`'s);
            a subclassed one is exported through
            `wrapping.functional(model)`, at the shape it was built with.
        output_dir: the folder to export into; see the module docstring.
        formats: some of `FORMATS`.
        model_name: the SavedModel's folder under `output_dir`.
        version: the SavedModel's version folder under `model_name`.
        quantize: `"none"` or `"int8"`; for the `"tflite"` format only.
        representative_data: for `quantize="int8"`, see `export_tflite`.
        test_data: for `quantize="int8"`, see `export_tflite`.
        layout: the SavedModel's layout, one of `LAYOUTS`; for the
            `"saved_model"` format only.
        probabilities: the `probabilities` output, one of
            `artifacts.PROBABILITIES` (see the module docstring).

    Returns:
        `{format: path written}`.

    Raises:
        ValueError: for a bad argument, a target that already exists, or an
            artifact that fails its checks (nothing is left written then).
        TypeError: if `model` is not a `keras.Model`.
    """
    model = wrapping.functional(model)  # a subclassed one gets inputs
    checks.check_model(model)
    found = targets(output_dir, formats, model_name, version, quantize,
                    layout)
    checks.check_int8_data(model, quantize, representative_data, test_data)
    _check_probabilities(probabilities)
    written = {}
    try:
        if "tflite" in found:
            written["tflite"] = export_tflite(
                model, found["tflite"], quantize=quantize,
                representative_data=representative_data, test_data=test_data,
                probabilities=probabilities)
        if "saved_model" in found:
            written["saved_model"] = export_saved_model(
                model, output_dir, model_name=model_name, version=version,
                layout=layout, probabilities=probabilities)
    except BaseException:
        for path in written.values():
            checks.remove(path)
        raise
    return written


def targets(
    output_dir: str,
    formats: Sequence[str],
    model_name: str = "lottery",
    version: int = 1,
    quantize: str = "none",
    layout: str = "dense",
) -> dict[str, str]:
    """Returns `{format: path}` that `export_model` would write.

    Args:
        output_dir: as for `export_model`.
        formats: some of `FORMATS`.
        model_name: as for `export_model`.
        version: as for `export_model`.
        quantize: as for `export_model`.
        layout: as for `export_model`.

    Raises:
        ValueError: for an unknown format, quantization or layout,
            `quantize` other than "none" without the tflite format, `layout`
            other than "dense" without the saved_model format, a bad
            `model_name` or `version`, or a path that already exists.
    """
    formats = list(formats)
    unknown = [f for f in formats if f not in artifacts.FORMATS]
    if not formats or unknown:
        raise ValueError(
            f"`formats` must be a non-empty list of {list(artifacts.FORMATS)}. "
            f"Received: formats={formats!r}"
        )
    checks.check_quantize(quantize)
    if quantize != "none" and "tflite" not in formats:
        raise ValueError(
            "`quantize` applies to the tflite format only. "
            f"Received: quantize={quantize!r}, formats={formats!r}"
        )
    checks.check_layout(layout)
    if layout != "dense" and "saved_model" not in formats:
        raise ValueError(
            "`layout` applies to the saved_model format only. "
            f"Received: layout={layout!r}, formats={formats!r}"
        )
    found = {}
    if "tflite" in formats:
        found["tflite"] = tflite_path(output_dir, model_name, version,
                                      quantize)
    if "saved_model" in formats:
        found["saved_model"] = saved_model_path(output_dir, model_name,
                                                version)
    for path in found.values():
        checks.check_free(path)
    return found


def saved_model_path(output_dir: str, model_name: str = "lottery",
                     version: int = 1) -> str:
    """Returns `output_dir/model_name/version`, checking name and version.

    Raises:
        ValueError: if `model_name` is not a plain folder name or `version`
            is not an int >= 0.
    """
    checks.check_name_and_version(model_name, version)
    return os.path.join(output_dir, model_name, str(version))


def tflite_path(output_dir: str, model_name: str = "lottery",
                version: int = 1, quantize: str = "none") -> str:
    """Returns `output_dir/<model_name>_v<version>[_int8].tflite`.

    Raises:
        ValueError: for a bad `model_name`, `version` or `quantize`.
    """
    checks.check_name_and_version(model_name, version)
    checks.check_quantize(quantize)
    suffix = "" if quantize == "none" else f"_{quantize}"
    return os.path.join(output_dir,
                        f"{model_name}_v{version}{suffix}.tflite")


def export_saved_model(
    model: keras.Model,
    output_dir: str,
    model_name: str = "lottery",
    version: int = 1,
    layout: str = "dense",
    probabilities: str = "softmax",
) -> str:
    """Writes the stripped model as a SavedModel for TF Serving.

    The SavedModel lands in `output_dir/model_name/version/`, written in a
    temporary folder and renamed into place once it has been re-read with
    `tf.saved_model.load` and found to hold every masked weight as exactly
    weight * mask (dense layout: exact zeros at every pruned weight; sparse
    layout: the kept values and positions densify to weight * mask) and to
    compute what `model` computes (within `TOLERANCE`) at batch sizes 1
    and 7. Its `assets/sparsity.json` holds, for every mask, the kept
    fraction (`keras_lottery.sparsity`) and the counts of kept and all
    weights. Both layouts load with TensorFlow alone and have the same
    `serving_default` signature; see the module docstring.

    Args:
        model: a model with one input and one output (logits), holding
            `MaskedWrapper` layers or plain (e.g. `keras_lottery.shrink`'s).
        output_dir: the base folder (TF Serving's `--model_base_path` is
            `output_dir/model_name`).
        model_name: the model's folder under `output_dir`.
        version: the version folder; it must not exist yet: a served
            version is never overwritten, pick a new one.
        layout: one of `LAYOUTS`: "dense" stores every weight dense,
            "sparse" stores masked weights as kept values and positions.
        probabilities: one of `artifacts.PROBABILITIES`: the softmax or
            sigmoid of the logits as output `probabilities`, or none.

    Returns:
        The version folder.

    Raises:
        ValueError: for a model with several inputs or outputs, a bad
            `model_name`, `version` or `layout`, an existing version
            folder, or a SavedModel that fails its checks (nothing is left
            written then).
        TypeError: if `model` is not a `keras.Model`.

    Example:
        >>> export.export_saved_model(model, "/serving", version=3,
        ...                           layout="sparse")
        '/serving/lottery/3'
    """
    target = saved_model_path(output_dir, model_name, version)
    checks.check_layout(layout)
    _check_probabilities(probabilities)
    model = wrapping.functional(model)  # a subclassed one gets inputs
    checks.check_model(model)
    checks.check_free(target)
    stripped = wrapping.strip(model)
    with tempfile.TemporaryDirectory() as scratch:
        asset = os.path.join(scratch, artifacts.SPARSITY_ASSET)
        with open(asset, "w", encoding="utf-8") as f:
            json.dump(sparsity_report(model), f, indent=2, sort_keys=True)
            f.write("\n")
        # `files.atomic_path` removes the temporary folder if a check fails.
        # Its name starts with a dot, so TF Serving never loads it.
        with files.atomic_path(target, directory=True) as tmp:
            if layout == "sparse":
                _write_sparse_saved_model(stripped, model, tmp, asset,
                                          probabilities)
            else:
                _write_saved_model(stripped, model, tmp, asset,
                                   probabilities)
            checks.check_saved_model(tmp, model, stripped, layout,
                                     probabilities)
    return target


def export_tflite(
    model: keras.Model,
    path: str,
    quantize: str = "none",
    representative_data: np.ndarray | None = None,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    max_accuracy_drop: float = artifacts.MAX_ACCURACY_DROP,
    probabilities: str = "softmax",
) -> str:
    """Writes the stripped model as a TFLite flatbuffer, sparse-encoded.

    The converter runs with `tf.lite.Optimize.EXPERIMENTAL_SPARSITY`, which
    stores weights that are sparse enough in a compressed format. With
    `quantize="int8"` it also quantizes weights and activations to int8,
    inputs and outputs included (full-integer post-training quantization,
    for integer-only accelerators), calibrated on up to
    `NUM_CALIBRATION_EXAMPLES` examples drawn from `representative_data`.

    The file is written under a temporary name, run with the TFLite
    interpreter, and renamed to `path` only if: float32, its outputs are
    within `TOLERANCE` of `model`'s at batch sizes 1 and 7; int8, its
    accuracy on `test_data` is at most `max_accuracy_drop` below `model`'s.
    `predict_tflite` runs the file.

    Args:
        model: a model with one input and one output (logits), holding
            `MaskedWrapper` layers or plain (e.g. `keras_lottery.shrink`'s).
        path: the `.tflite` file; an existing one is replaced atomically.
        quantize: one of `QUANTIZATIONS`.
        representative_data: for int8, inputs from the training
            distribution (a few hundred or more), shaped like the model's
            input with a batch dimension.
        test_data: for int8, `(inputs, integer labels)` held out of
            training, e.g. 1,000 test examples.
        max_accuracy_drop: for int8, the largest accuracy loss accepted, as
            a fraction (0.005 is half a point).
        probabilities: one of `artifacts.PROBABILITIES` (see the module
            docstring).

    Returns:
        `path`.

    Raises:
        ValueError: for a model with several inputs or outputs, an unknown
            `quantize`, missing or misshapen int8 data, or a file that fails
            its checks (nothing is left written then).
        TypeError: if `model` is not a `keras.Model`.

    Example:
        >>> export.export_tflite(model, "/tmp/lenet_int8.tflite", "int8",
        ...                      representative_data=splits.train_x,
        ...                      test_data=(x_test[:1000], y_test[:1000]))
    """
    checks.check_quantize(quantize)
    model = wrapping.functional(model)  # a subclassed one gets inputs
    checks.check_model(model)
    checks.check_int8_data(model, quantize, representative_data, test_data)
    _check_probabilities(probabilities)
    if not str(path).endswith(".tflite"):
        raise ValueError(
            f"`path` must end with '.tflite'. Received: path={path!r}"
        )
    stripped = wrapping.strip(model)
    with tempfile.TemporaryDirectory() as scratch:
        _write_saved_model(stripped, model, scratch,
                           probabilities=probabilities)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        if quantize == "int8":
            converter.optimizations.append(tf.lite.Optimize.DEFAULT)
            converter.representative_dataset = checks.calibration(
                representative_data)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
        if quantize == "int8":
            checks.check_tflite_accuracy(tmp, model, test_data,
                                         max_accuracy_drop)
        else:
            checks.check_outputs(lambda x: litert.predict_tflite(tmp, x), model,
                           f"The TFLite file {path}", probabilities)
    return path


def _check_probabilities(probabilities: str) -> None:
    if probabilities not in artifacts.PROBABILITIES:
        raise ValueError(
            "`probabilities` must be one of "
            f"{', '.join(map(repr, artifacts.PROBABILITIES))}. Received: "
            f"probabilities={probabilities!r}")


def sparsity_report(model: keras.Model) -> dict:
    """Returns what `assets/sparsity.json` holds.

    Returns:
        `{"weights": {"<layer>/<weight>": {"remaining": fraction, "kept":
        count, "total": count}}, "total": {...same for all masks...}}`;
        `remaining` is `keras_lottery.sparsity(model)`, `kept` the number of
        ones in the mask. A plain model (e.g. one made by
        `keras_lottery.shrink`) has no masks: there the nonzero entries of
        each prunable weight count as kept.
    """
    if wrapping.wrapped_layers(model):
        counts = {key: (int(np.count_nonzero(mask)), int(mask.size))
                  for key, mask in state.get_masks(model).items()}
    else:
        counts = {
            f"{layer.name}/{variable.name}": (
                int(np.count_nonzero(keras.ops.convert_to_numpy(
                    variable.value))),
                int(math.prod(variable.shape)))
            for layer in model._flatten_layers(include_self=False)
            if not isinstance(layer, keras.Model)
            and prunable.is_prunable(layer)
            for variable in prunable.prunable_weights(layer)}
    weights = {key: {"remaining": kept / total, "kept": kept, "total": total}
               for key, (kept, total) in counts.items()}
    kept = sum(w["kept"] for w in weights.values())
    size = sum(w["total"] for w in weights.values())
    total = {"remaining": kept / size if size else 1.0, "kept": kept,
             "total": size}
    return {"weights": weights, "total": total}


def _write_saved_model(stripped: keras.Model, model: keras.Model,
                       directory: str, asset: str | None = None,
                       probabilities: str = "softmax") -> None:
    """Writes `stripped` as a SavedModel with the serving signature."""
    archive = keras.export.ExportArchive()
    archive.track(stripped)
    # `track` lists the Keras variables, the endpoint captures the
    # tf.Variables they wrap, and the SavedModel saved both: every weight
    # twice (2.1 MB for LeNet-300-100's 1.07 MB). Listing the wrapped
    # tf.Variables instead saves each one once, under the same names.
    trackable = archive._tf_trackable
    for attribute in ("variables", "trainable_variables",
                      "non_trainable_variables"):
        setattr(trackable, attribute,
                [v.value for v in getattr(trackable, attribute)])

    def serve(x):
        logits = stripped(x, training=False)
        return checks.outputs(logits, probabilities)

    (spec,) = model.inputs
    archive.add_endpoint(
        name=artifacts.SIGNATURE, fn=serve,
        input_signature=[tf.TensorSpec((None, *spec.shape[1:]), spec.dtype,
                                       name=checks.input_name(model))])
    if asset is not None:
        # `ExportArchive.track` saves lookup tables but not plain assets,
        # and has no public hook for them: attach the asset to the object
        # it saves, so that the SavedModel declares it (and
        # `tf.saved_model.load(...).sparsity.asset_path` finds it).
        archive._tf_trackable.sparsity = tf.saved_model.Asset(asset)
    archive.write_out(directory, verbose=False)


def _write_sparse_saved_model(stripped: keras.Model, model: keras.Model,
                              directory: str, asset: str,
                              probabilities: str = "softmax") -> None:
    """Writes `stripped` as a SavedModel in the sparse layout.

    A plain `tf.Module` holds, for every masked weight, its kept values and
    their positions, and the other weights as they are. The serving
    function rebuilds each masked weight and runs `stripped`'s layers in a
    `keras.StatelessScope` that maps the weight to the rebuilt tensor, so
    the graph reads the sparse variables and never the dense ones.
    """
    masks = checks.masks_of_stripped(model, stripped)
    kernels = []  # (Keras variable, kept values, their positions)
    unmasked = []
    for variable in stripped.variables:
        if id(variable) not in masks:
            unmasked.append(variable.value)  # the tf.Variable it wraps
            continue
        key, mask = masks[id(variable)]
        # Positions come from the mask, so a kept weight that happens to
        # be 0 is stored too and `kept` in sparsity.json counts them all.
        kept = np.flatnonzero(mask)
        flat = keras.ops.convert_to_numpy(variable.value).reshape(-1)
        values = tf.Variable(flat[kept], trainable=False,
                             name=f"{key}/{artifacts.VALUES}")
        positions = tf.Variable(kept.astype(_position_dtype(mask.size)),
                                trainable=False,
                                name=f"{key}/{artifacts.POSITIONS}")
        kernels.append((variable, values, positions))
    root = tf.Module()
    root.kept_values = [values for _, values, _ in kernels]
    root.kept_positions = [positions for _, _, positions in kernels]
    root.unmasked_weights = unmasked
    (spec,) = model.inputs

    @tf.function(input_signature=[tf.TensorSpec(
        (None, *spec.shape[1:]), spec.dtype, name=checks.input_name(model))])
    def serve(x):
        state = [(variable, _densify(values, positions, variable.shape))
                 for variable, values, positions in kernels]
        with keras.StatelessScope(state_mapping=state):
            logits = stripped(x, training=False)
        return checks.outputs(logits, probabilities)

    root.serve = serve
    root.sparsity = tf.saved_model.Asset(asset)
    tf.saved_model.save(root, directory, signatures={
        artifacts.SIGNATURE: serve.get_concrete_function()})


def _densify(values: tf.Tensor, positions: tf.Tensor,
             shape: Sequence[int]) -> tf.Tensor:
    """Returns the tensor of `shape` holding `values` at the flat
    `positions` and 0 elsewhere."""
    size = math.prod(shape)
    index_dtype = tf.int32 if size <= np.iinfo(np.int32).max else tf.int64
    # SparseToDense rather than scatter_nd: rebuilding LeNet-300-100's
    # kernels with it adds 6 to 16 times less to a call on one CPU thread
    # (docs/SERVING.md), and it checks that the positions increase and lie
    # inside the weight.
    flat = tf.raw_ops.SparseToDense(
        sparse_indices=tf.cast(positions, index_dtype),
        output_shape=tf.constant([size], index_dtype),
        sparse_values=values, default_value=tf.zeros((), values.dtype),
        validate_indices=True)
    return tf.reshape(flat, shape)


def _position_dtype(size: int) -> type:
    """The narrowest integer type holding every flat index below `size`.

    Unsigned 8 and 16 bits halve or quarter the positions of small weights;
    TF's SparseToDense takes int32 or int64 indices, so bigger weights use
    those directly and need no cast per call.
    """
    for dtype in (np.uint8, np.uint16, np.int32):
        if size - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.int64

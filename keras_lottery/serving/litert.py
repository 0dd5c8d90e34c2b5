"""Runs an exported TensorFlow Lite model with the LiteRT interpreter."""

from __future__ import annotations

import numpy as np

from keras_lottery.serving import artifacts


def predict_tflite(path: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the `serving_default` signature of a TFLite file on a batch.

    Int8 inputs and outputs are quantized and dequantized here, so `x` and
    the results are floats whatever the file holds.

    Args:
        path: a `.tflite` file written by `export_tflite`.
        x: a float batch shaped like the model's input.

    Returns:
        `{"logits": ..., "probabilities": ...}` as float32 arrays.
    """
    runner = interpreter(path).get_signature_runner(artifacts.SIGNATURE)
    (name, detail), = runner.get_input_details().items()
    x = np.asarray(x, np.float32)
    scale, zero_point = detail["quantization"]
    if scale:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    outputs = runner(**{name: x.astype(detail["dtype"])})
    result = {}
    for key, detail in runner.get_output_details().items():
        value = outputs[key].astype(np.float32)
        scale, zero_point = detail["quantization"]
        result[key] = (value - zero_point) * scale if scale else value
    return result


def interpreter(path: str, num_threads: int | None = None):
    """Returns a TFLite interpreter for `path`, tensors allocated.

    It comes from the `ai_edge_litert` package (LiteRT, where TensorFlow
    2.21 points `tf.lite.Interpreter`), with the default op resolver: the
    XNNPACK delegate takes the ops it supports, the builtin kernels run the
    rest. An int8 model runs on the builtin kernels alone: LiteRT 2.x's
    XNNPACK refuses some int8 layers of a pruned model once a batch is
    resized ("failed to delegate FULLY_CONNECTED node"), and the builtin
    kernels compute the same int8 arithmetic.

    Args:
        path: a `.tflite` file.
        num_threads: CPU threads for the kernels and XNNPACK; None lets the
            runtime choose.

    Example:
        >>> lite = litert.interpreter("/serving/lottery_v1.tflite", 1)
        >>> lite.get_signature_runner("serving_default")(input=x)["logits"]
    """
    # Imported here: LiteRT is slow to import, and only export needs it.
    from ai_edge_litert import interpreter as litert

    result = litert.Interpreter(model_path=path, num_threads=num_threads)
    if any(detail["dtype"] in (np.int8, np.uint8)
           for detail in result.get_input_details()):
        result = litert.Interpreter(
            model_path=path, num_threads=num_threads,
            experimental_op_resolver_type=(
                litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    result.allocate_tensors()
    return result

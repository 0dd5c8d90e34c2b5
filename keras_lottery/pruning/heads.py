"""Which attention heads `shrink` removes, and the weights without them.

A `keras.layers.MultiHeadAttention` adds up its heads' contributions:
`output = sum_h attention_h(V_h) @ W_o[h] + b_o`, where `attention_h`
averages the rows of head h's values `V_h = x @ W_v[:, h] + b_v[h]` with
softmax weights that sum to 1 (a gate, `use_gate=True`, multiplies
`attention_h(V_h)` elementwise). So head h contributes exactly 0 when its
rows of the output kernel `W_o[h]` are all 0, or when its value kernel
slice `W_v[:, h]` and value bias `b_v[h]` are all 0 (every row of `V_h` is
0, so their average is). Its query and key slices being 0 is not enough:
softmax of zeros is uniform, and the head still averages its values.
`prune(model, f, granularity="head")` masks a head's slices of all four
kernels, so after `strip` its output rows are 0 and the head is dead.

`shrink` rebuilds such a layer with `num_heads` = the heads alive, the same
`key_dim`, `value_dim` and output shape, and the heads' slices of every
projection (query, key, value, gate: axis 1 of the kernel, axis 0 of the
bias; output: axis 0 of the kernel). If every head is dead (the output is
then the output bias whatever the input), one head stays: dead, it still
adds 0, so the layer still computes its bias.

Only the exact class is rebuilt: a subclass may compute something else. A
composite layer holding attention (KerasHub's `TransformerEncoder`,
`TransformerDecoder`, ViT's blocks) is rebuilt from its own config, which
derives `key_dim = hidden_dim // num_heads`: it cannot hold fewer heads of
the same size, so its heads stay, named in a warning (`composite_heads`).
"""

from __future__ import annotations

import keras
import numpy as np

# The projections whose kernels are (input, heads, dim) and biases
# (heads, dim); the output projection's kernel is (heads, dim, output).
_PER_HEAD = ("query_dense", "key_dense", "value_dense", "_gate_dense")


def _value(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable.value)


def dead_heads(layer: keras.layers.MultiHeadAttention) -> np.ndarray:
    """Per head of a built layer: whether it contributes exactly 0.

    Dead: its output kernel rows are all 0, or its value kernel slice and
    value bias are all 0.
    """
    output = _value(layer.output_dense.kernel)  # (heads, dim, ...)
    dead = ~np.any(output.reshape(output.shape[0], -1) != 0, axis=1)
    value = _value(layer.value_dense.kernel)  # (input, heads, dim)
    silent = ~np.any(np.moveaxis(value, 1, 0).reshape(value.shape[1], -1)
                     != 0, axis=1)
    if layer.value_dense.bias is not None:
        bias = _value(layer.value_dense.bias)  # (heads, dim)
        silent &= ~np.any(bias.reshape(bias.shape[0], -1) != 0, axis=1)
    return dead | silent


def kept_heads(layer, outputs: int) -> tuple[np.ndarray | None, str | None]:
    """`(keep, why)` for a graph layer: the heads `shrink` keeps.

    Args:
        layer: a layer of the model's graph.
        outputs: how many output tensors the layer's calls have at most.

    Returns:
        `(bool per head, None)` for a MultiHeadAttention that loses heads
        (one head stays if all are dead); `(None, why)` for one whose dead
        heads must stay; `(None, None)` otherwise.
    """
    if not isinstance(layer, keras.layers.MultiHeadAttention):
        return None, None
    if not layer.built or _special(layer):
        return None, None
    dead = dead_heads(layer)
    if not dead.any():
        return None, None
    if type(layer) is not keras.layers.MultiHeadAttention:
        return None, "it is a subclass of MultiHeadAttention"
    if outputs > 1:
        return None, "its attention scores, one per head, are an output"
    keep = ~dead
    if not keep.any():
        keep[0] = True  # the layer then computes its output bias
    return (None, None) if keep.all() else (keep, None)


def _special(layer) -> bool:
    """Whether a projection is LoRA or quantized (other variables)."""
    return any(
        getattr(dense, "lora_enabled", False)
        or getattr(dense, "quantization_mode", None)
        for dense in (layer.query_dense, layer.key_dense, layer.value_dense,
                      layer.output_dense))


def sliced_weights(layer: keras.layers.MultiHeadAttention,
                   keep: np.ndarray) -> list[np.ndarray]:
    """`layer.get_weights()` with the heads `keep` drops sliced away."""
    axes = {}
    for name in _PER_HEAD:
        dense = getattr(layer, name, None)
        if dense is not None:
            axes[id(dense.kernel)] = 1
            if dense.bias is not None:
                axes[id(dense.bias)] = 0
    axes[id(layer.output_dense.kernel)] = 0
    return [np.compress(keep, _value(w), axis=axes[id(w)])
            if id(w) in axes else _value(w) for w in layer.weights]


def composite_heads(layer) -> str | None:
    """Why the dead heads inside a composite `layer` stay, or None.

    A layer that is not a MultiHeadAttention but holds one at any depth
    (a KerasHub block, a nested model) with a dead head.
    """
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return None
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if (isinstance(sub, keras.layers.MultiHeadAttention) and sub.built
                and not _special(sub)):
            dead = dead_heads(sub)
            if not dead.any():
                continue
            why = (f"{int(dead.sum())} of {dead.size} heads of its "
                   f"attention {sub.name!r} are dead, but ")
            if isinstance(layer, keras.Model):
                return why + "nested models are not analysed"
            return why + (
                "the layer is rebuilt from its own config, which cannot "
                "hold fewer heads of the same size (KerasHub's blocks "
                "derive key_dim = hidden_dim // num_heads)")
    return None

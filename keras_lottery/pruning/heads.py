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

Only the exact class is rebuilt at the top of a model: a subclass may
compute something else. A composite layer holding attention (KerasHub's
`TransformerEncoder`, `TransformerDecoder`, `ViTEncoder`) derives
`key_dim = hidden_dim // num_heads` from its own config, so it is rebuilt
as a subclass that replaces the attention sublayers with fewer heads
(`keras_lottery.pruning.block_heads`; `composite_heads` says which). Heads
inside a nested model stay, named in a warning.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_lottery.pruning import block_heads

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


def sliced_weights(layer, keeps) -> list[np.ndarray]:
    """`layer.get_weights()` with the heads dropped by `keeps`, a list of
    `(attention, keep)` for `layer` itself or attention sublayers of it,
    sliced away."""
    axes = {}
    for attention, keep in keeps:
        for name in _PER_HEAD:
            dense = getattr(attention, name, None)
            if dense is not None:
                axes[id(dense.kernel)] = (1, keep)
                if dense.bias is not None:
                    axes[id(dense.bias)] = (0, keep)
        axes[id(attention.output_dense.kernel)] = (0, keep)
    return [np.compress(axes[id(w)][1], _value(w), axis=axes[id(w)][0])
            if id(w) in axes else _value(w) for w in layer.weights]


def composite_heads(layer) -> tuple[dict, str | None]:
    """The heads a composite `layer` keeps in its attention sublayers.

    For a layer that is not a MultiHeadAttention but holds one at any depth
    (a KerasHub block) with dead heads.

    Returns:
        `({path: (attention, keep)}, None)` for the attention sublayers
        that lose heads (`block_heads.path_of`; one head stays if all are
        dead), or `({}, why)` when the dead heads must stay.
    """
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return {}, None
    keeps = {}
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if not (isinstance(sub, keras.layers.MultiHeadAttention) and sub.built
                and not _special(sub)):
            continue
        dead = dead_heads(sub)
        if not dead.any():
            continue
        why = (f"{int(dead.sum())} of {dead.size} heads of its attention "
               f"{sub.name!r} are dead, but ")
        if isinstance(layer, keras.Model):
            return {}, why + "nested models are not analysed"
        if not block_heads.rebuildable(sub):
            return {}, why + (f"its class {type(sub).__name__} may compute "
                              "something else than independent heads")
        path = block_heads.path_of(layer, sub)
        if path is None:
            return {}, why + ("the layer holds it where a rebuilt one "
                              "cannot be put back (not an attribute of "
                              "its parent, or a name twice)")
        keep = ~dead
        if not keep.any():
            keep[0] = True
        keeps[path] = (sub, keep)
    return keeps, None

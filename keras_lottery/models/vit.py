"""A small Vision Transformer of plain Keras layers, for the structure study.

Patches of 7x7 pixels (a Dense embedding of each patch), a class token
and learned position embeddings, then pre-norm transformer blocks:
LayerNormalization, `keras.layers.MultiHeadAttention`, a residual `Add`;
LayerNormalization, an MLP of two Dense layers (GELU), a residual `Add`;
a final LayerNormalization, and the class token's logits (Dosovitskiy et
al., ICLR 2021, at a size MNIST trains on a CPU).

Why not KerasHub's `ViTBackbone`: its blocks are composite layers that
derive `key_dim` from `hidden_dim // num_heads`, so a block cannot be
rebuilt with fewer heads, and the dependency walk does not see inside them
(docs/MODELS.md). Built of plain layers, every attention head and MLP
neuron is visible to `keras_lottery.prune` and removable by
`keras_lottery.shrink`, which is what the structure study measures.

Example:
    model = keras_lottery.models.build("vit_tiny", (28, 28, 1), 10, seed=0)
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lottery")
class ClassTokenAndPosition(keras.layers.Layer):
    """Prepends a learned class token and adds learned position embeddings.

    Takes `(batch, tokens, dim)`, returns `(batch, tokens + 1, dim)`. The
    class token starts at zero and the position embeddings at
    N(0, 0.02^2), as in the ViT reference code; neither is pruned.

    Args:
        seed: seeds the position embeddings' initializer (None: unseeded).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        # Named `<weight>_initializer`, as Keras layers name theirs: the
        # random-reinit control draws each weight afresh from it.
        self.class_token_initializer = keras.initializers.Zeros()
        self.position_initializer = keras.initializers.RandomNormal(
            stddev=0.02, seed=seed)

    def build(self, input_shape):
        tokens, dim = int(input_shape[1]), int(input_shape[2])
        self.class_token = self.add_weight(
            shape=(1, 1, dim), initializer=self.class_token_initializer,
            name="class_token")
        self.position = self.add_weight(
            shape=(1, tokens + 1, dim), name="position",
            initializer=self.position_initializer)

    def call(self, tokens):
        batch = ops.shape(tokens)[0]
        cls = ops.broadcast_to(
            ops.cast(self.class_token, tokens.dtype),
            (batch, 1, tokens.shape[-1]))
        return (ops.concatenate([cls, tokens], axis=1)
                + ops.cast(self.position, tokens.dtype))

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def vision_transformer(
    inputs: keras.KerasTensor,
    num_classes: int,
    layers,
    *,
    patch_size: int = 7,
    hidden: int = 64,
    num_heads: int = 4,
    depth: int = 4,
    mlp: int = 128,
    output_name: str = "output",
) -> keras.KerasTensor:
    """Returns the logits of a ViT on `inputs`, an image batch.

    Args:
        inputs: `(height, width, channels)` images; height and width must be
            multiples of `patch_size`.
        num_classes: the logits.
        layers: the zoo's layer factory (`dense(name, units, activation)`,
            `next_seed()`): seeded initializers and the L2 factor on
            kernels.
        patch_size, hidden, num_heads, depth, mlp: the sizes; `hidden`
            must be a multiple of `num_heads` (key_dim = hidden/num_heads).
        output_name: the logits layer's name.

    Raises:
        ValueError: naming `input_shape` for images whose sides are not
            multiples of `patch_size`.
    """
    shape = tuple(inputs.shape[1:])
    if len(shape) != 3 or shape[0] % patch_size or shape[1] % patch_size:
        raise ValueError(
            "`input_shape` must be (height, width, channels) with height "
            f"and width multiples of {patch_size} for a Vision Transformer. "
            f"Received: input_shape={shape}")
    rows, cols = shape[0] // patch_size, shape[1] // patch_size
    tokens = rows * cols
    # Patches as rows of pixels (a Dense embedding, not a strided conv: a
    # model without convolutions trains under XLA on a CPU).
    x = keras.layers.Reshape(
        (rows, patch_size, cols, patch_size * shape[2]), name="patch_grid")(
            inputs)
    x = keras.layers.Permute((1, 3, 2, 4), name="patch_order")(x)
    x = keras.layers.Reshape(
        (tokens, patch_size * patch_size * shape[2]), name="patches")(x)
    x = layers.dense("patch_embed", hidden)(x)
    x = ClassTokenAndPosition(seed=layers.next_seed(), name="tokens")(x)
    for block in range(1, depth + 1):
        name = f"block{block}"
        y = keras.layers.LayerNormalization(
            epsilon=1e-6, name=f"{name}_norm1")(x)
        y = keras.layers.MultiHeadAttention(
            num_heads, hidden // num_heads, name=f"{name}_attention",
            kernel_initializer=keras.initializers.GlorotUniform(
                layers.next_seed()),
        )(y, y)
        x = keras.layers.Add(name=f"{name}_add1")([x, y])
        y = keras.layers.LayerNormalization(
            epsilon=1e-6, name=f"{name}_norm2")(x)
        y = layers.dense(f"{name}_mlp1", mlp, activation="gelu")(y)
        y = layers.dense(f"{name}_mlp2", hidden)(y)
        x = keras.layers.Add(name=f"{name}_add2")([x, y])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    # The class token's features: crop the patch tokens away.
    x = keras.layers.Cropping1D((0, tokens), name="class_token")(x)
    x = keras.layers.Flatten(name="class_features")(x)
    return layers.dense(output_name, num_classes)(x)

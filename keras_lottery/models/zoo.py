"""Networks from the lottery-ticket papers, built by name.

Every model is a Keras 3 functional model that outputs logits (no softmax).
Every layer has an explicit name that is the same in every build, because the
pruning code keys its masks by layer name; the final logits layer is always
named `OUTPUT_LAYER_NAME`, so it can be pruned at its own rate.

The architectures follow Frankle & Carbin (2019), "The Lottery Ticket
Hypothesis", Figure 2 (LeNet-300-100, Conv-2/4/6, VGG-19), Frankle et al.
(2019), "Stabilizing the Lottery Ticket Hypothesis" (VGG-19, ResNet-20), and
Greydanus (2020), "Scaling down deep learning" (the MNIST-1D MLP and CNN, and
the 40-500-500-10 residual MLP of its lottery-ticket notebook).

Example:
    model = models.build("lenet_300_100", (28, 28, 1), num_classes=10, seed=0)
    logits = model(images)
"""

import functools
import os
import zipfile
from collections.abc import Callable

import keras
import numpy as np

from keras_lottery.base import imports
from keras_lottery.models import vit

OUTPUT_LAYER_NAME = "output"

# PyTorch's batch-norm defaults, which open_lth (the reference implementation
# of the VGG-19 and ResNet-20 experiments) trains with; Keras defaults to
# momentum 0.99 and epsilon 1e-3.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5

# The VGG-19 of the lottery-ticket papers: ints are 3x3 convs, "M" a max pool.
_VGG19_PLAN = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512,
)  # fmt: skip


def _glorot_normal(seed: int | None) -> keras.initializers.Initializer:
    return keras.initializers.GlorotNormal(seed=seed)


def _he_normal(seed: int | None) -> keras.initializers.Initializer:
    # Untruncated, as torch.nn.init.kaiming_normal_ (used by open_lth);
    # keras.initializers.HeNormal draws from a truncated normal.
    return keras.initializers.VarianceScaling(
        scale=2.0,
        mode="fan_in",
        distribution="untruncated_normal",
        seed=seed,
    )


class _LayerFactory:
    """Makes named conv and dense layers with seeded initializers.

    The n-th kernel initializer handed out gets a seed derived from
    `(seed, n)`, so two builds with the same seed have identical weights.
    Seeds go through `np.random.SeedSequence` rather than `seed + n` so that
    builds with nearby seeds do not share layers (with `seed + n`, layer n of
    a build with seed 1 would equal layer n + 1 of a build with seed 0).

    Args:
        make_initializer: Maps a seed (or None) to a kernel initializer.
        weight_decay: L2 factor for kernels; 0 adds no regularizer.
        seed: Base seed, or None for unseeded initializers.
    """

    def __init__(
        self,
        make_initializer: Callable[
            [int | None], keras.initializers.Initializer
        ],
        weight_decay: float,
        seed: int | None,
    ):
        self._make_initializer = make_initializer
        self._weight_decay = weight_decay
        self._seed = seed
        self._num_initializers = 0

    def next_seed(self) -> int | None:
        """The seed of the next initializer handed out."""
        if self._seed is None:
            layer_seed = None
        else:
            sequence = np.random.SeedSequence(
                [self._seed, self._num_initializers]
            )
            layer_seed = int(sequence.generate_state(1)[0] & 0x7FFFFFFF)
        self._num_initializers += 1
        return layer_seed

    def _kernel_args(self) -> dict:
        layer_seed = self.next_seed()
        regularizer = (
            keras.regularizers.L2(self._weight_decay)
            if self._weight_decay > 0
            else None
        )
        return {
            "kernel_initializer": self._make_initializer(layer_seed),
            "kernel_regularizer": regularizer,
            "bias_initializer": "zeros",
        }

    def conv(
        self,
        name: str,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
    ) -> keras.layers.Conv2D:
        """Returns a 'same'-padded Conv2D layer named `name`."""
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            activation=activation,
            use_bias=use_bias,
            name=name,
            **self._kernel_args(),
        )

    def dense(
        self, name: str, units: int, activation: str | None = None
    ) -> keras.layers.Dense:
        """Returns a Dense layer named `name`."""
        return keras.layers.Dense(
            units, activation=activation, name=name, **self._kernel_args()
        )


def _torch_uniform(seed: int | None) -> keras.initializers.Initializer:
    # PyTorch's default for nn.Linear and nn.Conv1d kernels,
    # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    return keras.initializers.VarianceScaling(
        scale=1 / 3, mode="fan_in", distribution="uniform", seed=seed
    )


@keras.saving.register_keras_serializable(package="keras_lottery")
class BiasPrunableDense(keras.layers.Dense):
    """A `Dense` layer whose bias is pruned along with its kernel.

    `keras_lottery.core.prunable` prunes kernels only; this layer's
    `get_prunable_weights()` adds the bias, as the MNIST-1D lottery notebook
    (Greydanus, 2020) prunes every parameter of a layer. Each weight gets
    its own mask, pruned at the layer's rate.
    """

    def get_prunable_weights(self) -> list[keras.Variable]:
        """The kernel and, when the layer has one, the bias."""
        return [self.kernel] + ([self.bias] if self.use_bias else [])


class _TorchLayerFactory(_LayerFactory):
    """Dense and 1-D conv layers initialized as PyTorch initializes them.

    Kernels and biases are drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    the defaults of `nn.Linear` and `nn.Conv1d` that the MNIST-1D models
    were trained with.

    Args:
        weight_decay: L2 factor for kernels; 0 adds no regularizer.
        seed: Base seed, or None for unseeded initializers.
        prunable_biases: whether dense layers prune their biases too
            (`BiasPrunableDense`).
    """

    def __init__(self, weight_decay: float, seed: int | None,
                 prunable_biases: bool = False):
        super().__init__(_torch_uniform, weight_decay, seed)
        self._prunable_biases = prunable_biases

    def _args(self, fan_in: int) -> dict:
        args = self._kernel_args()
        limit = 1 / np.sqrt(fan_in)
        args["bias_initializer"] = keras.initializers.RandomUniform(
            -limit, limit, seed=self.next_seed()
        )
        return args

    def dense(
        self, name: str, units: int, activation: str | None = None,
        *, fan_in: int = 1,
    ) -> keras.layers.Dense:
        """Returns a Dense layer named `name` with `fan_in` inputs."""
        cls = BiasPrunableDense if self._prunable_biases else keras.layers.Dense
        return cls(units, activation=activation, name=name,
                   **self._args(fan_in))

    def conv1d(
        self, name: str, filters: int, kernel_size: int, strides: int,
        fan_in: int,
    ) -> keras.layers.Conv1D:
        """A 'valid' Conv1D with ReLU; `fan_in` = kernel size x channels."""
        return keras.layers.Conv1D(
            filters, kernel_size, strides=strides, activation="relu",
            name=name, **self._args(fan_in),
        )


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(
        momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name
    )


def _require_image(inputs: keras.KerasTensor) -> None:
    input_shape = tuple(inputs.shape[1:])
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels) for a "
            f"convolutional model. Received: input_shape={input_shape}"
        )


def _lenet_300_100(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.KerasTensor:
    layers = _LayerFactory(_glorot_normal, weight_decay, seed)
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = layers.dense("fc1", 300, activation="relu")(x)
    x = layers.dense("fc2", 100, activation="relu")(x)
    return layers.dense(OUTPUT_LAYER_NAME, num_classes)(x)


def _conv_net(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
    num_blocks: int,
) -> keras.KerasTensor:
    """Conv-2/4/6: blocks of two 3x3 convs and a max pool, then FC 256, 256."""
    _require_image(inputs)
    layers = _LayerFactory(_glorot_normal, weight_decay, seed)
    x = inputs
    for block in range(num_blocks):
        filters = 64 * 2**block
        for conv in (2 * block + 1, 2 * block + 2):
            x = layers.conv(f"conv{conv}", filters, activation="relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = layers.dense("fc1", 256, activation="relu")(x)
    x = layers.dense("fc2", 256, activation="relu")(x)
    return layers.dense(OUTPUT_LAYER_NAME, num_classes)(x)


def _vgg19(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.KerasTensor:
    _require_image(inputs)
    layers = _LayerFactory(_he_normal, weight_decay, seed)
    x = inputs
    conv = pool = 0
    for entry in _VGG19_PLAN:
        if entry == "M":
            pool += 1
            x = keras.layers.MaxPooling2D(2, name=f"pool{pool}")(x)
            continue
        conv += 1
        # No conv bias: the batch norm's beta that follows plays its part.
        x = layers.conv(f"conv{conv}", entry, use_bias=False)(x)
        x = _batch_norm(f"bn{conv}")(x)
        x = keras.layers.ReLU(name=f"relu{conv}")(x)
    # On 32x32 inputs the last feature map is 2x2, so this is the papers'
    # 2x2 average pool; global pooling also accepts other input sizes.
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.dense(OUTPUT_LAYER_NAME, num_classes)(x)


def _resnet_block(
    x: keras.KerasTensor,
    layers: _LayerFactory,
    prefix: str,
    filters: int,
    strides: int,
) -> keras.KerasTensor:
    """A basic block: conv-BN-relu-conv-BN, plus shortcut, then relu."""
    shortcut = x
    x = layers.conv(
        f"{prefix}_conv1", filters, strides=strides, use_bias=False
    )(x)
    x = _batch_norm(f"{prefix}_bn1")(x)
    x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
    x = layers.conv(f"{prefix}_conv2", filters, use_bias=False)(x)
    x = _batch_norm(f"{prefix}_bn2")(x)
    if strides != 1 or shortcut.shape[-1] != filters:
        # Option B of He et al. (2016): a 1x1 projection where shapes change.
        shortcut = layers.conv(
            f"{prefix}_shortcut_conv",
            filters,
            kernel_size=1,
            strides=strides,
            use_bias=False,
        )(shortcut)
        shortcut = _batch_norm(f"{prefix}_shortcut_bn")(shortcut)
    x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{prefix}_relu2")(x)


def _resnet20(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.KerasTensor:
    """The CIFAR ResNet-20 of He et al. (2016), Section 4.2, with n = 3."""
    _require_image(inputs)
    layers = _LayerFactory(_he_normal, weight_decay, seed)
    x = layers.conv("conv1", 16, use_bias=False)(inputs)
    x = _batch_norm("bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, 4):
            strides = 2 if stage > 1 and block == 1 else 1
            x = _resnet_block(
                x, layers, f"stage{stage}_block{block}", filters, strides
            )
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.dense(OUTPUT_LAYER_NAME, num_classes)(x)


def _mnist1d_mlp(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
    hidden: int,
    prunable_biases: bool,
) -> keras.KerasTensor:
    """The MNIST-1D MLP (Greydanus, 2020): `models.py`'s `MLPBase`.

    relu(fc1(x)) = h; h + relu(fc2(h)); output. Hidden width 100 in the
    paper's benchmark, 500 in its lottery-ticket notebook.
    """
    layers = _TorchLayerFactory(weight_decay, seed, prunable_biases)
    x = keras.layers.Flatten(name="flatten")(inputs)
    h = layers.dense("fc1", hidden, "relu", fan_in=x.shape[-1])(x)
    r = layers.dense("fc2", hidden, "relu", fan_in=hidden)(h)
    h = keras.layers.Add(name="residual")([h, r])
    return layers.dense(OUTPUT_LAYER_NAME, num_classes, fan_in=hidden)(h)


def _mnist1d_cnn(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.KerasTensor:
    """The MNIST-1D CNN (Greydanus, 2020): `models.py`'s `ConvBase`.

    Three ReLU convs of 25 channels (kernel 5, then 3, 3; stride 2; padding
    1), flattened into the logits layer: 40 points give 19, 10, 5.
    """
    input_shape = tuple(inputs.shape[1:])
    if len(input_shape) != 2:
        raise ValueError(
            "`input_shape` must be (length, channels) for a 1-D "
            f"convolutional model. Received: input_shape={input_shape}"
        )
    layers = _TorchLayerFactory(weight_decay, seed)
    x = inputs
    for index, kernel_size in enumerate((5, 3, 3), start=1):
        x = keras.layers.ZeroPadding1D(1, name=f"pad{index}")(x)
        x = layers.conv1d(f"conv{index}", 25, kernel_size, 2,
                          fan_in=kernel_size * x.shape[-1])(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return layers.dense(OUTPUT_LAYER_NAME, num_classes,
                        fan_in=x.shape[-1])(x)


def _vit_tiny(
    inputs: keras.KerasTensor,
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.KerasTensor:
    """A ViT of 7x7 patches, hidden 64, 4 heads, 4 blocks, MLP 128."""
    layers = _LayerFactory(keras.initializers.GlorotUniform, weight_decay,
                           seed)
    return vit.vision_transformer(inputs, num_classes, layers,
                                  output_name=OUTPUT_LAYER_NAME)


# name -> function(inputs, num_classes, weight_decay, seed) -> logits.
_BUILDERS: dict[
    str,
    Callable[[keras.KerasTensor, int, float, int | None], keras.KerasTensor],
] = {
    "lenet_300_100": _lenet_300_100,
    "conv2": functools.partial(_conv_net, num_blocks=1),
    "conv4": functools.partial(_conv_net, num_blocks=2),
    "conv6": functools.partial(_conv_net, num_blocks=3),
    "vgg19": _vgg19,
    "resnet20": _resnet20,
    "mnist1d_mlp": functools.partial(
        _mnist1d_mlp, hidden=100, prunable_biases=False),
    "mnist1d_lottery_mlp": functools.partial(
        _mnist1d_mlp, hidden=500, prunable_biases=True),
    "mnist1d_cnn": _mnist1d_cnn,
    "vit_tiny": _vit_tiny,
}


# The keyword arguments a builder named by import path is called with:
# `input_shape` (a tuple of ints, without the batch dimension),
# `num_classes` (int), `weight_decay` (float: an L2 factor for kernels, 0
# for none) and `seed` (int or None: seed the initializers with it, so that
# one seed gives one initialization). It returns a built Sequential or
# Functional `keras.Model` that outputs logits from a layer named
# `OUTPUT_LAYER_NAME` (pruned at `prune.output_fraction_per_round`).
BUILDER_PARAMETERS = ("input_shape", "num_classes", "weight_decay", "seed")


def check_name(name: str, field: str = "name") -> None:
    """Raises ValueError unless `name` is known or names a valid builder.

    A builder's module is imported and its signature checked; it is not
    called.

    Args:
        name: as `build` takes it.
        field: how error messages call `name`, e.g. `"model.name"`.
    """
    if is_saved_model(name):
        if not os.path.isfile(name):
            raise ValueError(
                f"`{field}` names a .keras file that does not exist. "
                f"Received: {field}={name!r}")
        return
    imports.check_name(name, field, list(_BUILDERS), BUILDER_PARAMETERS)


def is_saved_model(name: object) -> bool:
    """Whether `name` is the path of a `.keras` file, not a builder's name.

    `keras_lottery.run_experiment` saves the model its builder returns as
    `init.keras` in the workdir and names it in `config.json`'s
    `model.name`: resuming, the controls and export load it from there.
    """
    return isinstance(name, str) and name.endswith(".keras")


def _load_saved(name: str, input_shape: tuple[int, ...],
                num_classes: int) -> keras.Model:
    """Loads the initial model a `.keras` file holds, and checks it.

    The file is its own initialization: every seed gives its weights.
    `safe_mode` refuses a file that would run code (a `Lambda` layer).
    """
    try:
        model = keras.models.load_model(name, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError,
            zipfile.BadZipFile) as e:
        raise ValueError(
            f"`name` names a .keras file that cannot be loaded (is every "
            f"custom class registered and imported?): {type(e).__name__}: "
            f"{' '.join(str(e).split())[:300]}. Received: name={name!r}"
        ) from None
    shape = tuple(model.input_shape[1:]) if hasattr(
        model, "input_shape") else None
    if shape is not None and shape != tuple(input_shape):
        raise ValueError(
            f"`name` names a model of input shape {shape}; the data's "
            f"examples have shape {tuple(input_shape)}. Received: "
            f"name={name!r}")
    del num_classes  # the data's labels are checked against the logits
    return model


def _build_imported(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    weight_decay: float,
    seed: int | None,
) -> keras.Model:
    """Calls the builder `name` names and checks what it returns."""
    builder = imports.resolve(name, "name", BUILDER_PARAMETERS)
    model = builder(input_shape=input_shape, num_classes=num_classes,
                    weight_decay=weight_decay, seed=seed)
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`name` must name a function that returns a keras.Model; it "
            f"returned a {type(model).__name__}. Received: name={name!r}"
        )
    if not model.built:
        raise ValueError(
            "`name` must name a function that returns a built model (start "
            "it with keras.Input); its model is not built. "
            f"Received: name={name!r}"
        )
    if OUTPUT_LAYER_NAME not in (layer.name for layer in model.layers):
        raise ValueError(
            f"`name` must name a function whose model has a layer named "
            f"{OUTPUT_LAYER_NAME!r}, its logits (pruned at their own rate); "
            f"its layers: {', '.join(layer.name for layer in model.layers)}."
            f" Received: name={name!r}"
        )
    return model


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def names() -> list[str]:
    """Returns the names `build` accepts, sorted."""
    return sorted(_BUILDERS)


def build(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    weight_decay: float = 0.0,
    seed: int | None = None,
) -> keras.Model:
    """Builds the named network as a functional model that outputs logits.

    Args:
        name: The import path of a builder of your own,
            `"package.module:function"` (see `BUILDER_PARAMETERS`), or one
            of `names()`: "lenet_300_100", "conv2", "conv4", "conv6",
            "vgg19", "resnet20", or for MNIST-1D "mnist1d_mlp",
            "mnist1d_cnn" and "mnist1d_lottery_mlp" (whose dense layers
            prune their biases too: `BiasPrunableDense`), or "vit_tiny"
            (a small Vision Transformer of plain Keras layers,
            `keras_lottery.models.vit`).
        input_shape: Shape of one example, without the batch dimension, e.g.
            `(28, 28, 1)`. Convolutional models need `(height, width,
            channels)`; LeNet flattens whatever it gets.
        num_classes: Number of logits the model outputs.
        weight_decay: Factor of an L2 penalty on every conv and dense kernel
            (not biases or batch-norm parameters); 0 adds none.
        seed: When not None, every kernel initializer gets a seed derived
            from it and the layer's position, so builds with the same seed
            have identical weights. When None, initializers are unseeded
            (and follow `keras.utils.set_random_seed`).

    Returns:
        A built `keras.Model` whose layers have fixed names; its last layer
        is a `keras.layers.Dense` named `OUTPUT_LAYER_NAME`.

    Raises:
        ValueError: If `name` is unknown or names a builder that cannot be
            imported, takes other arguments or returns something else than
            a built `keras.Model` with a layer named `OUTPUT_LAYER_NAME`;
            or if `input_shape`, `num_classes`, `weight_decay` or `seed` is
            invalid for the model.

    Example:
        model = build("resnet20", (32, 32, 3), 10, weight_decay=1e-4, seed=0)
        model.get_layer(OUTPUT_LAYER_NAME)  # The logits layer.
    """
    if (name not in _BUILDERS and not imports.is_import_path(name)
            and not is_saved_model(name)):
        raise ValueError(
            f"Unknown model `name`. Received: name={name!r}. "
            f"Known names: {names()}"
        )
    shape = tuple(input_shape) if isinstance(input_shape, tuple | list) else ()
    if not shape or not all(_is_int(dim) and dim > 0 for dim in shape):
        raise ValueError(
            "`input_shape` must be a non-empty tuple of positive ints. "
            f"Received: input_shape={input_shape!r}"
        )
    if not (_is_int(num_classes) and num_classes > 0):
        raise ValueError(
            "`num_classes` must be a positive int. "
            f"Received: num_classes={num_classes!r}"
        )
    if not weight_decay >= 0:
        raise ValueError(
            "`weight_decay` must be >= 0. "
            f"Received: weight_decay={weight_decay!r}"
        )
    if seed is not None and not (_is_int(seed) and seed >= 0):
        raise ValueError(
            f"`seed` must be None or an int >= 0. Received: seed={seed!r}"
        )
    if is_saved_model(name):
        return _load_saved(name, tuple(int(d) for d in shape),
                           int(num_classes))
    if name not in _BUILDERS:
        return _build_imported(name, tuple(int(dim) for dim in shape),
                               int(num_classes), float(weight_decay), seed)
    inputs = keras.Input(shape=tuple(int(dim) for dim in shape), name="input")
    logits = _BUILDERS[name](
        inputs,
        int(num_classes),
        float(weight_decay),
        None if seed is None else int(seed),
    )
    return keras.Model(inputs, logits, name=name)

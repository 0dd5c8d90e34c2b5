"""Fewer attention heads inside a composite layer (a KerasHub block).

A composite layer such as KerasHub's `TransformerEncoder`,
`TransformerDecoder` or `ViTEncoder` builds its attention sublayers in its
own `build`, with `key_dim = hidden_dim // num_heads`: its config cannot
say "3 heads of size 16" when it was built with 4. `shrink` therefore
rebuilds it as `kept_heads_class(type(layer))`, a subclass that takes one
more config entry, `kept_heads` (`{path of an attention sublayer: number
of heads}`), builds the block as its class does, then replaces each named
attention sublayer with one of the same class and config but fewer
`num_heads` (same `key_dim`, `value_dim` and output shape), at the same
place among its parent's sublayers: the block's weights keep their order
and only the attention kernels are smaller. The block's own `call` runs
unchanged.

The subclass is made once per base class, and saves as
`keras_lottery>KeptHeads` with its base class's registered name in its
config, so a `.keras` file of a shrunk KerasHub model loads in a process
that imported `keras_lottery` and the base class's package (`keras_hub`).

Only attention layers whose heads are independent sums are rebuilt:
`keras.layers.MultiHeadAttention` and KerasHub's `CachedMultiHeadAttention`
(which adds a key/value cache). A decoder's cache for generation is sized
by its backbone's `num_heads`, so a shrunk GPT-2 runs on whole sequences,
not with a cache (docs/MODELS.md).
"""

from __future__ import annotations

import functools

import keras

# Attention classes whose output is the sum of independent heads, by
# registered name: these can lose heads (`heads.dead_heads`).
SAME_HEAD_MATHS = ("MultiHeadAttention", "keras_hub>CachedMultiHeadAttention")

_NAME = "keras_lottery>KeptHeads"
_CLASSES: dict[type, type] = {}


def rebuildable(attention) -> bool:
    """Whether `attention` is of a class whose heads can go."""
    return (type(attention) is keras.layers.MultiHeadAttention
            or keras.saving.get_registered_name(type(attention))
            in SAME_HEAD_MATHS)


def path_of(layer, sub) -> str | None:
    """The names from `layer` down to its sublayer `sub`, joined by "/",
    or None if a name on the way is not unique among its siblings or
    `sub`'s parent does not hold it in an attribute of its own."""
    for names, parent, child in _walk(layer, ()):
        if child is sub:
            found = _find(layer, names) is sub
            held = _attribute(parent, sub) is not None
            return "/".join(names) if found and held else None
    return None


def _walk(layer, names):
    """(names, parent, sublayer) for every sublayer below `layer`."""
    for child in _children(layer):
        yield names + (child.name,), layer, child
        yield from _walk(child, names + (child.name,))


def _children(layer) -> list:
    # Private: Keras 3 exposes no public list of a layer's sublayers.
    return layer._flatten_layers(include_self=False, recursive=False)


def _find(layer, names):
    """The sublayer at `names` below `layer`, with its parent; None if a
    name is missing or not unique."""
    for name in names:
        found = [child for child in _children(layer) if child.name == name]
        if len(found) != 1:
            return None
        layer = found[0]
    return layer


def _attribute(parent, sub) -> str | None:
    """The attribute of `parent` that holds `sub`, or None."""
    for key, value in vars(parent).items():
        if value is sub and not key.startswith("__"):
            return key
    return None


def _replace(parent, old, new) -> None:
    """Puts `new` where `old` was: the same attribute of `parent`, the same
    place among its sublayers (so that the weights keep their order)."""
    attribute = _attribute(parent, old)
    layers = parent._layers  # private: the tracker's list of sublayers
    index = next(i for i, layer in enumerate(layers) if layer is old)
    # Keras locks a built layer's state; `Dense.enable_lora` unlocks it
    # the same way to add variables after `build`.
    locked = parent._tracker.locked
    parent._tracker.unlock()
    parent._tracker.untrack(old)
    setattr(parent, attribute, new)
    layers.insert(index, layers.pop())
    if locked:
        parent._tracker.lock()


def _shrink_attention(layer, kept_heads: dict[str, int]) -> None:
    """Replaces each attention sublayer named in `kept_heads` by one with
    that many heads, built on the shapes the old one was built on."""
    for path, num_heads in kept_heads.items():
        names = path.split("/")
        parent = _find(layer, names[:-1])  # `layer` itself for no names
        old = _find(parent, names[-1:]) if parent is not None else None
        if old is None or not rebuildable(old):
            raise ValueError(
                f"`kept_heads` must name attention sublayers of layer "
                f"{layer.name!r}. Received: kept_heads={kept_heads}")
        config = old.get_config()
        config["num_heads"] = int(num_heads)
        new = type(old).from_config(config)
        # Private: open the parent's name scope, so that the new variables
        # have the paths the old ones had.
        with parent._open_name_scope():
            new.build_from_config(old.get_build_config())
        _replace(parent, old, new)


class KeptHeads:
    """What `.keras` files name a composite layer with fewer heads:
    `from_config` rebuilds it as `kept_heads_class(base)`."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        base_name = config.pop("kept_heads_base")
        base = keras.saving.get_registered_object(base_name)
        if base is None:
            raise ValueError(
                f"A layer with fewer attention heads is a {base_name}, a "
                f"class Keras does not know in this process: import the "
                f"package that defines it (e.g. keras_hub) before loading. "
                f"Received: kept_heads_base={base_name!r}")
        return kept_heads_class(base).from_config(config)


keras.saving.get_custom_objects()[_NAME] = KeptHeads


def base_of(cls: type) -> type:
    """The class `kept_heads_class` made `cls` from, or `cls` itself."""
    for base, made in _CLASSES.items():
        if made is cls:
            return base
    return cls


def kept_heads_class(base: type) -> type:
    """The subclass of the composite layer class `base` whose attention
    sublayers named in its `kept_heads` config have that many heads."""
    if base in _CLASSES:
        return _CLASSES[base]

    def __init__(self, *args, kept_heads=None, **kwargs):
        # Before the base's `__init__`, which may build (KerasHub's decoder
        # does when given shapes); a plain attribute, not tracked state.
        object.__setattr__(self, "kept_heads", dict(kept_heads or {}))
        base.__init__(self, *args, **kwargs)

    @functools.wraps(base.build)  # the same signature: Keras reads it
    def build(self, *args, **kwargs):
        base.build(self, *args, **kwargs)
        _shrink_attention(self, self.kept_heads)

    def get_config(self):
        return {**base.get_config(self), "kept_heads": dict(self.kept_heads),
                "kept_heads_base": keras.saving.get_registered_name(base)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("kept_heads_base", None)
        return base.from_config.__func__(cls, config)

    made = type(f"KeptHeads{base.__name__}", (base,), {
        "__init__": __init__, "build": build, "get_config": get_config,
        "from_config": from_config, "__module__": __name__,
        "__doc__": f"{base.__name__} with fewer heads in some attention "
                   "sublayers (`keras_lottery.pruning.block_heads`)."})
    # Saved under one name; loading goes through `KeptHeads.from_config`.
    keras.saving.register_keras_serializable("keras_lottery", "KeptHeads")(
        made)
    keras.saving.get_custom_objects()[_NAME] = KeptHeads
    _CLASSES[base] = made
    return made

"""Functions named by import path, `"package.module:function"`.

Configs name a model or a dataset either by a registry name
(`keras_lottery.models.names()`, `keras_lottery.datasets.names()`) or by the
import path of the user's own function, e.g. `my_pkg.models:build`. This
module turns such a path into the function and checks that it takes the
arguments it will be called with, so a mistake is one line naming the
config field before anything is written.

Importing a module runs its code: a config (or a workdir's `config.json`)
that names an import path is trusted as a config file is (README).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from collections.abc import Sequence

# `module.path:attribute`, each part a dotted Python identifier.
_IMPORT_PATH = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
    r":[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)


def is_import_path(name: object) -> bool:
    """Whether `name` has the form `"package.module:function"`."""
    return isinstance(name, str) and ":" in name


def resolve(
    name: str, field: str, parameters: Sequence[str]
) -> Callable[..., object]:
    """Imports the function `name` names and checks its parameters.

    Args:
        name: `"package.module:function"` (the attribute may be dotted,
            `module:Class.method`).
        field: the config field that holds `name`, for error messages.
        parameters: the keyword arguments the function will be called
            with; it must accept them all, and need no other.

    Returns:
        The function.

    Raises:
        ValueError: if `name` is malformed, the module cannot be imported,
            the attribute is missing or not callable, or its signature does
            not take `parameters`.

    Example:
        build = resolve("my_pkg.models:build", "model.name",
                        ("input_shape", "num_classes", "weight_decay",
                         "seed"))
    """
    if not isinstance(name, str) or not _IMPORT_PATH.match(name):
        raise ValueError(
            f"`{field}` must be a known name or an import path "
            f"'package.module:function'. Received: {field}={name!r}"
        )
    module_name, attribute = name.split(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"`{field}` names a module that cannot be imported ({e}); is "
            f"its package on the Python path? Received: {field}={name!r}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(
                f"`{field}` names an attribute that module {module_name!r} "
                f"does not have: {attribute!r}. Received: {field}={name!r}"
            )
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(
            f"`{field}` must name a function; {attribute!r} is of type "
            f"{type(target).__name__}. Received: {field}={name!r}"
        )
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return target  # some builtins have none; the call will tell
    try:
        signature.bind(**dict.fromkeys(parameters))
    except TypeError as e:
        raise ValueError(
            f"`{field}` must name a function that takes the keyword "
            f"arguments ({', '.join(parameters)}); {attribute}{signature} "
            f"does not ({e}). Received: {field}={name!r}"
        ) from None
    return target


def check_name(
    name: str, field: str, known: Sequence[str], parameters: Sequence[str]
) -> None:
    """Raises ValueError unless `name` is in `known` or a valid import path.

    The import path's module is imported and its function's signature
    checked against `parameters`; the function is not called.

    Args:
        name: a registry name or `"package.module:function"`.
        field: the config field that holds `name`, for error messages.
        known: the registry's names.
        parameters: as `resolve` takes them.
    """
    if is_import_path(name):
        resolve(name, field, parameters)
    elif not isinstance(name, str) or name not in known:
        raise ValueError(
            f"`{field}` must be one of {sorted(known)} or an import path "
            f"'package.module:function'. Received: {field}={name!r}"
        )

"""What the binaries share: a user's mistake ends in one line, no traceback.

`run(main, program)` replaces `app.run(main)`. Every error in the command
line (an unknown flag or config field, a value of the wrong type, a config
file that is missing or raises, stray arguments) exits with status 1 and
one line, `<program>: <what is wrong, naming the value>`. `fail` does the
same for errors that `main` catches. A `--config` that names no file here
is looked up by name among the installed configs (`resolve_config`).
"""

import functools
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import NoReturn

from absl import app
from absl import flags


def run(main: Callable[[list[str]], None], program: str,
        config_flags: Sequence[str] = ()) -> None:
    """Parses the flags as `parse_flags` does, then runs `main`.

    Args:
        main: the binary's `main(argv)`.
        program: the name that starts every error line.
        config_flags: the names of `config_flags.DEFINE_config_file` flags.
    """
    app.run(main, flags_parser=functools.partial(
        parse_flags, program=program, config_flags=tuple(config_flags)))


def parse_flags(argv: list[str], program: str,
                config_flags: Sequence[str] = ()) -> list[str]:
    """Parses `argv` into `flags.FLAGS`; exits with one line on an error.

    Args:
        argv: the command line, program name first.
        program: the name that starts the error line.
        config_flags: names of config-file flags to load now: ml_collections
            defers a config file it cannot read to the config's first use.

    Returns:
        `argv[:1]`: a binary takes no positional arguments.
    """
    argv = _with_resolved_configs(argv, config_flags)
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        fail(program, _without_traceback(str(e)))
    except Exception as e:  # noqa: BLE001
        # A config file is Python code: whatever it raises is the user's
        # error, told with its type and message.
        fail(program, _unknown_field(e, argv, config_flags)
             or f"cannot load the config: {type(e).__name__}: {e}")
    for name in config_flags:
        try:
            flags.FLAGS[name].value.keys()
        except OSError as e:
            cause = str(e.__cause__ or e).strip().splitlines()
            fail(program, f"cannot read the config file: {cause[-1]}")
    if len(rest) > 1:
        fail(program, f"unexpected arguments: {' '.join(rest[1:])} (every "
             "option is a --flag=value; see --helpshort).")
    return rest[:1]


def resolve_config(value: str) -> str:
    """Finds a config given by name in the installed `configs` package.

    `--config=configs/lenet300_mnist.py:smoke` names a file relative to
    the current folder, as ml_collections reads it. When that file does
    not exist and the value names no other folder (`configs/NAME.py`,
    `NAME.py` or `NAME`, each with an optional `:variant`), the config
    `NAME.py` of the installed `configs` package is used, so the binaries
    run from any folder after `pip install`.

    Args:
        value: the `--config` flag's value.

    Returns:
        `value`, or the installed config's path with the same variant.
    """
    path, colon, variant = value.partition(":")
    if os.path.exists(path) or os.path.dirname(path) not in ("", "configs"):
        return value
    name = os.path.basename(path)
    name = name if name.endswith(".py") else f"{name}.py"
    spec = importlib.util.find_spec("configs")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return f"{candidate}{colon}{variant}"
    return value


def _with_resolved_configs(argv: list[str],
                           config_flags: Sequence[str]) -> list[str]:
    """`argv` with each config flag's value passed to `resolve_config`."""
    out = list(argv[:1])
    args = list(argv[1:])
    for i, arg in enumerate(args):
        name, equals, value = arg.lstrip("-").partition("=")
        flag = arg.startswith("-") and name in config_flags
        if flag and equals:
            arg = f"--{name}={resolve_config(value)}"
        elif i and args[i - 1].startswith("-") and (
                args[i - 1].lstrip("-") in config_flags):
            arg = resolve_config(arg)
        out.append(arg)
    return out


def fail(program: str, message: object) -> NoReturn:
    """Exits with status 1 and `<program>: <message>` on one line."""
    sys.exit(f"{program}: {' '.join(str(message).split())}")


def _unknown_field(error: Exception, argv: list[str],
                   config_flags: Sequence[str]) -> str | None:
    """Names the `--config.<field>` flag that names no field, if one does.

    ml_collections raises AttributeError or KeyError (`'<name>'`) for it,
    with a suggestion for a near miss; the AttributeError may hold the
    KeyError's quoted text (escaped quotes, a literal `\\n`).
    """
    if not isinstance(error, (AttributeError, KeyError)):
        return None
    text = str(error).replace("\\'", "'").replace("\\n", "\n")
    unknown = set(re.findall(r"'([\w.]+)'", text))
    near = re.search(r'Did you mean "([^"]+)"', text)
    hint = f" (did you mean {near[1]!r}?)" if near else ""
    for arg in argv[1:]:
        name, _, value = arg.lstrip("-").partition("=")
        config, _, path = name.partition(".")
        missing = [p for p in path.split(".") if p in unknown]
        if config in config_flags and missing:
            return (f"--{name} names no config field: {missing[0]!r} does "
                    f"not exist{hint}. Received: --{name}={value}")
    return None


def _without_traceback(message: str) -> str:
    """Keeps the first line and the last (the exception) of a traceback."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1:
        first = lines[0].replace("Error whilst parsing config file:", "")
        return f"{first.rstrip(': ')}: {lines[-1]}"
    return lines[0] if lines else message


def parse_ints(name: str, values: Sequence[str]) -> list[int]:
    """`["3", "7"]` -> `[3, 7]`; a ValueError naming flag `name` if not ints.
    """
    try:
        return [int(value) for value in values]
    except ValueError:
        raise ValueError(
            f"`--{name}` must be a comma-separated list of integers. "
            f"Received: --{name}={','.join(values)}") from None

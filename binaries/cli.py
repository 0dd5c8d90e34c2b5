"""What the binaries share: a user's mistake ends in one line, no traceback.

`run(main, program)` replaces `app.run(main)`. Every error in the command
line (an unknown flag or config field, a value of the wrong type, a config
file that is missing or raises, stray arguments) exits with status 1 and
one line, `<program>: <what is wrong, naming the value>`. `fail` does the
same for errors that `main` catches. A `--config` that names no file here
is looked up by name among the installed configs (`resolve_config`).

`--help` (`-h`) prints the command's docstring and its own flags and exits
0 (`help_text`). A command that takes a `--config` also takes
`--show_config`: it prints the config as the run would use it, every
`--config.FIELD=VALUE` override applied, and exits 0 before `main` runs,
so nothing is written and no other flag (`--workdir`) is needed.
"""

import contextlib
import functools
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import NoReturn

import ml_collections
from absl import app
from absl import flags

# What asks a command for its help. absl's own `--help` exits with status 1
# and lists the flags of `__main__`, which under `keras-lottery` is
# `binaries.command`, not the command.
_HELP = ("--help", "-help", "-h", "--helpshort", "-helpshort", "-?")
_HELPFULL = ("--helpfull", "-helpfull")
_SHOW_CONFIG = "show_config"


def run(main: Callable[[list[str]], None], program: str,
        config_flags: Sequence[str] = ()) -> None:
    """Parses the flags as `parse_flags` does, then runs `main`.

    Args:
        main: the binary's `main(argv)`.
        program: the name that starts every error line.
        config_flags: the names of `config_flags.DEFINE_config_file` flags;
            with any, the command takes `--show_config`.
    """
    app.run(main, flags_parser=functools.partial(
        parse_flags, program=program, config_flags=tuple(config_flags),
        module=main.__module__))


def parse_flags(argv: list[str], program: str,
                config_flags: Sequence[str] = (),
                module: str = "__main__") -> list[str]:
    """Parses `argv` into `flags.FLAGS`; exits with one line on an error.

    Exits with status 0 after printing the command's help for `--help`,
    or its config for `--show_config`.

    Args:
        argv: the command line, program name first.
        program: the name that starts the error line.
        config_flags: names of config-file flags to load now: ml_collections
            defers a config file it cannot read to the config's first use.
            With any, `--show_config` is defined and prints them.
        module: the name of the module that defines the command's flags,
            whose docstring and flags `--help` prints.

    Returns:
        `argv[:1]`: a binary takes no positional arguments.
    """
    if config_flags and _SHOW_CONFIG not in flags.FLAGS:
        flags.DEFINE_boolean(
            _SHOW_CONFIG, False, "Prints the config as the run would use it "
            "(every --config.FIELD=VALUE applied) and exits: nothing is "
            "written, no other flag is needed.",
            module_name=_module_key(module))
    options = _options(argv)
    if any(arg in _HELP + _HELPFULL for arg in options):
        full = any(arg in _HELPFULL for arg in options)
        print(help_text(program, module, full=full))
        sys.exit(0)
    argv = _with_resolved_configs(argv, config_flags)
    try:
        # The other flags' checks (`--workdir` is required) wait until it
        # is known that the config is not only to be shown.
        with _checks_only_of(config_flags):
            rest = flags.FLAGS(argv)
        if not _shows_config(config_flags):
            flags.FLAGS.validate_all_flags()
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
    if _shows_config(config_flags):
        for name in config_flags:
            print("\n".join(config_lines(name, flags.FLAGS[name].value)))
        sys.exit(0)
    return rest[:1]


def help_text(program: str, module: str, full: bool = False) -> str:
    """What `keras-lottery PROGRAM --help` prints.

    Args:
        program: the command's name.
        module: the name of the module that defines the command's flags
            (`"__main__"` under `python -m binaries.PROGRAM`).
        full: list every flag of the process, absl's too (`--helpfull`).

    Returns:
        The usage line, the module's docstring, its key flags with their
        help (every flag if `full`), and where to find the rest.
    """
    own = sorted(flags.FLAGS.get_key_flags_for_module(module),
                 key=lambda flag: flag.name)
    lines = [f"usage: keras-lottery {program} [--flag=value ...]", "",
             (sys.modules[module].__doc__ or "").strip(), "", "flags:",
             flags.FLAGS.get_help() if full else "\n".join(
                 map(_flag_help, own)), ""]
    if any(flag.name == _SHOW_CONFIG for flag in own):
        lines.append(flags.text_wrap(
            "Every config field and its default: --config=NAME "
            "--show_config. Any field can be set with --config.FIELD=VALUE."))
    if not full:
        lines.append(flags.text_wrap("--helpfull also lists absl's flags "
                                     "(--verbosity, --flagfile, ...)."))
    return "\n".join(lines)


def config_lines(name: str, config: ml_collections.ConfigDict) -> list[str]:
    """`["config.train.num_steps = 20", ...]`: every field of `config`.

    Args:
        name: the config flag's name, the first part of each field's.
        config: the config; its field references are resolved.

    Returns:
        One `NAME.FIELD = repr(value)` line per field, as in a config file,
        in the config's order.
    """
    lines = []
    for field, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            lines += config_lines(f"{name}.{field}", value)
        else:
            lines.append(f"{name}.{field} = {value!r}")
    return lines


def _flag_help(flag: flags.Flag) -> str:
    """One flag as absl's help shows it, without a default of None."""
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    notes = [flags.text_wrap(f"{name}: {flag.help}", indent="    ",
                             firstline_indent="  ")]
    # ml_collections' config flag shows its default of None as 'None'.
    if flag.default is not None and flag.default_as_str:
        notes.append(flags.text_wrap(f"(default: {flag.default_as_str})",
                                     indent="    "))
    if flag.parser.syntactic_help:
        notes.append(flags.text_wrap(f"({flag.parser.syntactic_help})",
                                     indent="    "))
    return "\n".join(notes)


def _options(argv: Sequence[str]) -> list[str]:
    """`argv`'s arguments before a `--`, which ends the options."""
    args = list(argv[1:])
    return args[:args.index("--")] if "--" in args else args


def _module_key(module: str) -> str:
    """The name absl files `module`'s flags under (`__main__`: argv[0])."""
    return sys.argv[0] if module == "__main__" else module


def _shows_config(config_flags: Sequence[str]) -> bool:
    """Whether `--show_config` was given (it exists with `config_flags`)."""
    return bool(config_flags) and flags.FLAGS[_SHOW_CONFIG].value


@contextlib.contextmanager
def _checks_only_of(names: Sequence[str]) -> Iterator[None]:
    """Holds back the validators of every flag but `names` in the block."""
    held = {}
    for name in flags.FLAGS:
        flag = flags.FLAGS[name]
        if flag.name not in names and id(flag) not in held:
            held[id(flag)] = (flag, flag.validators)
            flag.validators = []
    try:
        yield
    finally:
        for flag, validators in held.values():
            flag.validators = validators


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

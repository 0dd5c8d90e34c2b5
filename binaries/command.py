r"""`keras-lottery COMMAND --flag=value ...`: every binary, from any folder.

  keras-lottery lottery --config=lenet300_mnist:smoke \
      --config.data.dir=/data/mnist --workdir=/tmp/lenet300
  keras-lottery controls --workdir=/tmp/lenet300 --control=random_reinit
  keras-lottery export --workdir=/tmp/lenet300 --round=5 --output=/tmp/serve
  keras-lottery transfer --source=/tmp/lenet300 --round=5 \
      --config=lenet300_mnist --workdir=/tmp/transfer

The console script `pip install` makes (setup.py), and `python -m
binaries COMMAND ...`. Each command is the binary `python -m
binaries.COMMAND` runs from the repository root, with the same flags;
`--config` also takes a config of the installed `configs` package by name
(see `cli.resolve_config`).

`keras-lottery` alone, `--help`, `-h` or `help` lists the commands, each
with the first line of its module's docstring (`usage`);
`keras-lottery COMMAND --help` (or `help COMMAND`) lists its flags.
"""

import ast
import importlib
import importlib.util
import sys
import textwrap

from binaries import cli

COMMANDS = ("lottery", "controls", "export", "report", "tune", "transfer",
            "instability", "study")
# A first argument that asks for `usage()`; "" is none at all.
_HELP = ("", "help", "-h", "--help")


def main() -> None:
    """Runs `sys.argv[1]`'s binary on the rest of the command line.

    Prints `usage()` instead for no command or a request for help.
    """
    args = sys.argv[1:]
    if args[:1] == ["help"] and len(args) > 1:
        args = [args[1], "--help"]
    name = args[0] if args else ""
    if name in _HELP:
        print(usage())
        return
    if name not in COMMANDS:
        cli.fail("keras-lottery", (
            f"the first argument must be one of {', '.join(COMMANDS)}, e.g."
            " keras-lottery lottery --config=lenet300_mnist --workdir=W. "
            f"Received: {name}"))
    sys.argv = [f"keras-lottery {name}", *args[1:]]
    importlib.import_module(f"binaries.{name}").start()


def usage() -> str:
    """What `keras-lottery --help` prints: every command, one line each."""
    lines = ["usage: keras-lottery COMMAND [--flag=value ...]", "",
             "Lottery-ticket pruning for Keras 3. The commands:", ""]
    for name in COMMANDS:
        lines.append(textwrap.fill(summary(name), width=79,
                                   initial_indent=f"  {name:<13}",
                                   subsequent_indent=" " * 15))
    lines += ["", textwrap.fill(
        "keras-lottery COMMAND --help (or keras-lottery help COMMAND) "
        "lists a command's flags; with a --config, --show_config prints "
        "every config field.", width=79)]
    return "\n".join(lines)


def summary(name: str) -> str:
    """The first line of command `name`'s module docstring.

    Read from the source, not imported: some binaries load TensorFlow
    when imported, and `lottery` and `transfer` both define `--config`.
    """
    module = f"binaries.{name}"
    source = importlib.util.find_spec(module).loader.get_source(module)
    return ast.get_docstring(ast.parse(source)).splitlines()[0].rstrip(".")

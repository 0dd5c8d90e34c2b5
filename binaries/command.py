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
"""

import importlib
import sys

from binaries import cli

COMMANDS = ("lottery", "controls", "export", "report", "tune", "transfer",
            "instability")


def main() -> None:
    """Runs `sys.argv[1]`'s binary on the rest of the command line."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in COMMANDS:
        cli.fail("keras-lottery", (
            f"the first argument must be one of {', '.join(COMMANDS)}, e.g."
            " keras-lottery lottery --config=lenet300_mnist --workdir=W. "
            f"Received: {name or 'nothing'}"))
    sys.argv = [f"keras-lottery {name}", *sys.argv[2:]]
    importlib.import_module(f"binaries.{name}").start()

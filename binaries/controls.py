r"""Runs a control of a finished lottery run, in WORKDIR/controls/CONTROL.

  python -m binaries.controls --workdir=/tmp/lenet300 --control=random_reinit
  python -m binaries.controls --workdir=/tmp/lenet300 --control=random_prune
"""

from absl import app
from absl import flags

from binaries import cli
from keras_lottery import lottery
from keras_lottery import paths

_WORKDIR = flags.DEFINE_string("workdir", None, "A lottery run's workdir.")
_CONTROL = flags.DEFINE_enum("control", None, list(paths.CONTROLS),
                             "Which control to run.")
flags.mark_flags_as_required(["workdir", "control"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        lottery.run_control(_WORKDIR.value, _CONTROL.value)
    except (ValueError, lottery.TrainingError, OSError) as e:
        cli.fail("controls", e)


if __name__ == "__main__":
    cli.run(main, "controls")

r"""Runs a control of a finished lottery run, e.g. random_reinit.

  python -m binaries.controls --workdir=/tmp/lenet300 --control=random_reinit
  python -m binaries.controls --workdir=/tmp/lenet300 --control=random_prune \
      --rounds=3,7,12,15,18

Writes its outputs under WORKDIR/controls/CONTROL.
"""

from absl import app
from absl import flags

from binaries import cli
from keras_lottery.base import paths
from keras_lottery.engine import distributed
from keras_lottery.lottery import controls
from keras_lottery.lottery import trainer

_WORKDIR = flags.DEFINE_string("workdir", None, "A lottery run's workdir.")
_CONTROL = flags.DEFINE_enum("control", None, list(paths.CONTROLS),
                             "Which control to run.")
_ROUNDS = flags.DEFINE_list(
    "rounds", [], "The run's rounds to run the control at, e.g. 3,7,12 "
    "(default: every done round).")
flags.mark_flags_as_required(["workdir", "control"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        rounds = cli.parse_ints("rounds", _ROUNDS.value)
        distributed.start_for_workdir(_WORKDIR.value)  # before any TF op
        controls.run_control(_WORKDIR.value, _CONTROL.value, rounds)
    except (ValueError, trainer.TrainingError, OSError) as e:
        cli.fail("controls", e)
    except distributed.LOST_WORKER_ERRORS as e:
        cli.fail("controls", distributed.lost_worker_message(e))


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery controls`)."""
    cli.run(main, "controls")


if __name__ == "__main__":
    start()

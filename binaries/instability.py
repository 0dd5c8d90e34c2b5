r"""Instability analysis of a lottery round (Frankle et al., 2020).

  python -m binaries.instability --workdir=/tmp/lenet300 --round=7 \
      --rewind_steps=0,100,500,2000

From the round's masks at each rewind step k, trains two copies on
different data orders and evaluates the test error along the line between
them (`keras_lottery.lottery.instability`); writes instability.md, .json and one
plot per k under WORKDIR/instability/round_RR/ and prints their paths.
Rerunning resumes. Processes given different rewind steps of the same
round run side by side; a call for every step then writes the whole
table without training. Bad input (no such workdir, a round not done, rewind
steps beyond train.num_steps) ends in one line naming it, nothing written.
"""

from absl import app
from absl import flags

from binaries import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A lottery run's workdir.")
_ROUND = flags.DEFINE_integer("round", None, "A done round of the run.")
_REWIND_STEPS = flags.DEFINE_list(
    "rewind_steps", ["0"], "Steps k to rewind to, e.g. 0,100,500,2000.")
flags.mark_flags_as_required(["workdir", "round"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from keras_lottery.lottery import instability
    from keras_lottery.lottery import trainer

    try:
        steps = cli.parse_ints("rewind_steps", _REWIND_STEPS.value)
        table = instability.run(_WORKDIR.value, _ROUND.value, steps)
    except (ValueError, trainer.TrainingError, OSError) as e:
        cli.fail("instability", e)
    for path in table["files"]:
        print(path)


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery instability`)."""
    cli.run(main, "instability")


if __name__ == "__main__":
    start()

r"""Tables and plots of lottery runs across seeds, and of their cost.

Across seeds (issue 4):

  python -m binaries.report \
      --workdirs=workdirs/lenet300/seed0,workdirs/lenet300/seed1 \
      --one_shot_workdirs=workdirs/lenet300/oneshot_seed0 \
      --tfmot=benchmarks/results/tfmot.json --output=docs/results

Test accuracy against the training iterations each ticket cost, for runs of
any configs (cost.md, cost.png; see `keras_lottery.lottery.cost`):

  python -m binaries.report --cost_workdirs=workdirs/imp,workdirs/snip \
      --output=docs/early

Writes report.md, report.json and PNG plots to --output (see
`keras_lottery.analysis.tables`) and prints their paths. Bad input (a missing
workdir, a run without summary.json, runs of different configs) ends in one
line naming it, exit status 1.
"""

from absl import app
from absl import flags

from binaries import cli

_WORKDIRS = flags.DEFINE_list(
    "workdirs", None, "Lottery workdirs of one config, one per seed; their "
    "controls are read from WORKDIR/controls/.")
_ONE_SHOT_WORKDIRS = flags.DEFINE_list(
    "one_shot_workdirs", [], "One-shot runs of the same config, one per "
    "seed.")
_TFMOT = flags.DEFINE_string(
    "tfmot", None, "JSON of benchmarks/tfmot_baseline.py, to compare with.")
_COST_WORKDIRS = flags.DEFINE_list(
    "cost_workdirs", [], "Lottery workdirs of any configs: plots their "
    "test accuracy against cumulative training iterations.")
_OUTPUT = flags.DEFINE_string("output", None, "Folder for the report.")
# As keras_lottery.analysis.tables.ERROR_BARS, which is not imported before the
# flags are parsed (see main).
_ERROR_BARS = flags.DEFINE_enum(
    "error_bars", "std", ["std", "range"],
    "std: ± one std over seeds; range: min to max, as in the paper.")
flags.mark_flags_as_required(["output"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Imported here, so that a mistake in the flags is told in a second,
    # before TensorFlow loads.
    if not _WORKDIRS.value and not _COST_WORKDIRS.value:
        raise app.UsageError("--workdirs or --cost_workdirs is required.")
    from keras_lottery.analysis import cost_report
    from keras_lottery.analysis import report

    written = []
    try:
        if _WORKDIRS.value:
            written += report.write_report(
                _WORKDIRS.value, _OUTPUT.value, _ONE_SHOT_WORKDIRS.value,
                _TFMOT.value, _ERROR_BARS.value)["files"]
        if _COST_WORKDIRS.value:
            written += cost_report.write_cost_report(_COST_WORKDIRS.value,
                                              _OUTPUT.value)
    except (ValueError, OSError) as e:
        cli.fail("report", e)
    for path in written:
        print(path)


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery report`)."""
    cli.run(main, "report")


if __name__ == "__main__":
    start()

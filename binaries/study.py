r"""Runs a study's grid of lottery runs on Ray, here or on a cluster.

  python -m binaries.study structure_lenet --workdir=workdirs/structure
  python -m binaries.study structure --workdir=/tmp/s --smoke --seeds=0
  python -m binaries.study lenet300 --workdir=/tmp/l --smoke
  python -m binaries.study mypackage.studies:my_study --workdir=W \
      --records=R --address=10.0.0.1:6379

NAME is a built-in study (lenet300, early, structure, structure_lenet,
structure_conv2, structure_conv2_long, transformer, mnist1d, transfer,
transfer_mnist1d) or module:function returning a
`keras_lottery.studies.Study` (docs/STUDIES.md). Without --address, Ray
runs embedded on this machine (on 127.0.0.1); with it, the study joins
the cluster whose head is there (`ray start --head`), which shares the
workdir, the records and this folder. Each finished run is recorded
under --records; what is recorded is not run again, and a run lost with
its node starts again elsewhere from its last checkpoint. Runs a study
declares once earlier runs are recorded (the transformer study's
late-rewind cell) run in a further pass of the same command. Shows the
progress, then prints the report's path. Bad input (an unknown study, bad
--seeds, no Ray at --address, records of another study) ends in one line,
exit status 1, nothing written.
"""

import sys

from absl import flags

from binaries import cli

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder of the runs and their logs (scratch; on a "
    "cluster, shared storage).")
_RECORDS = flags.DEFINE_string(
    "records", None, "Where finished runs are recorded (default: the "
    "study's own, e.g. docs/results_structure/runs; with --smoke, "
    "WORKDIR/records).")
_ADDRESS = flags.DEFINE_string(
    "address", None, "HOST:PORT of a Ray cluster's head (default: an "
    "embedded Ray on this machine).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds, e.g. 0,1,2 (default: "
                           "the study's).")
_SMOKE = flags.DEFINE_bool("smoke", False, "Tiny runs: the pipeline in "
                           "minutes (their numbers mean nothing).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", "../shared/data/mnist", "The dataset's folder (MNIST IDX "
    "files for the built-in studies).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the runs still to "
                             "do, in order, and exit (nothing is written).")
_THREADS = flags.DEFINE_integer("threads", 1, "CPU threads (Ray CPUs) of "
                                "each run.")
_RETRIES = flags.DEFINE_integer("retries", 3, "How often a run lost with "
                                "its node starts again.")
flags.mark_flags_as_required(["workdir"])


# The study's NAME, the one argument that is not a --flag (`start`).
_NAME: list[str] = []


def main(argv: list[str]) -> None:
    if len(_NAME) != 1:
        cli.fail("study", "give one study, NAME or module:function, e.g. "
                 "keras-lottery study structure_lenet --workdir=W. Received: "
                 f"{' '.join(_NAME) or 'none'}")
    try:  # before TensorFlow loads with the package: a quick answer
        seeds = None if _SEEDS.value is None else tuple(
            cli.parse_ints("seeds", _SEEDS.value))
        if seeds is not None and (not seeds or min(seeds) < 0):
            raise ValueError("`--seeds` must be non-negative integers. "
                             f"Received: --seeds={','.join(_SEEDS.value)}")
        if _THREADS.value < 1:
            raise ValueError("`--threads` must be at least 1. Received: "
                             f"--threads={_THREADS.value}")
    except ValueError as e:
        cli.fail("study", e)
    from keras_lottery.studies import catalog  # noqa: PLC0415
    from keras_lottery.studies import grid  # noqa: PLC0415

    try:
        options = catalog.Options(_WORKDIR.value, _RECORDS.value, seeds,
                                  _SMOKE.value, _DATA_DIR.value)
        study = catalog.load(_NAME[0], options)
        catalog.check_records(study)
    except ValueError as e:
        cli.fail("study", e)
    if _DRY_RUN.value:
        todo = grid.needed(study.runs)
        print("\n".join(run.name for run in todo)
              or "nothing to run: every run is recorded")
        return
    from keras_lottery.studies import runner  # noqa: PLC0415

    if grid.needed(study.runs):  # a finished study needs no Ray
        try:
            runner.connect(_ADDRESS.value)
        except ValueError as e:
            cli.fail("study", e)
    catalog.claim(study)
    outcome = runner.run_passes(
        lambda: catalog.load(_NAME[0], options), threads=_THREADS.value,
        retries=_RETRIES.value)
    if outcome.failed or outcome.skipped:
        sys.exit(1)


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery study`): the study's
    NAME comes off the command line, the rest are flags."""
    _NAME[:] = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg.startswith("-")]
    cli.run(main, "study")


if __name__ == "__main__":
    start()

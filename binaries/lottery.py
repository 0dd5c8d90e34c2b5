r"""Runs a lottery-ticket experiment: IMP rounds, summary, export.

  python -m binaries.lottery --config=configs/lenet300_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/lenet300

Rerunning the same command resumes an interrupted run (killed at any
moment, SIGKILL included: docs/RELIABILITY.md). A mistake in the command,
the config or the data ends in one line naming it, exit status 1.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from binaries import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/lenet300_mnist.py[:smoke].",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for every output.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Imported here, so that a mistake in the flags is told in a second,
    # before TensorFlow loads.
    from keras_lottery.engine import distributed
    from keras_lottery.lottery import runner
    from keras_lottery.lottery import trainer

    try:
        train = _CONFIG.value.train
        distributed.start(train.strategy, train.tpu)  # before any TF op
        runner.run(_CONFIG.value, _WORKDIR.value)
    except (ValueError, trainer.TrainingError, OSError) as e:
        cli.fail("lottery", e)
    except distributed.LOST_WORKER_ERRORS as e:
        cli.fail("lottery", distributed.lost_worker_message(e))


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery lottery`)."""
    cli.run(main, "lottery", config_flags=["config"])


if __name__ == "__main__":
    start()

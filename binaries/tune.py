r"""Searches lottery hyperparameters with keras-tuner.

  python -m binaries.tune --config=configs/lenet300_mnist.py \
      --config.data.dir=../shared/data/mnist --workdir=/tmp/search \
      --tuner=random --max_trials=20

Rerunning the same command resumes an interrupted search; a larger
--max_trials extends a finished one. The best trial's config is written to
WORKDIR/best_config.py, every trial to WORKDIR/trials.csv. Distributed: run
the same command in every process with KERASTUNER_TUNER_ID (chief, tuner0,
...), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set (docs/TUNING.md).
"""

from absl import flags
from ml_collections import config_flags

from binaries import cli
from keras_lottery.engine import distributed
from keras_lottery.tuning import search

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file with a `tune` section, e.g. "
    "configs/lenet300_mnist.py[:smoke].", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for every output.")
_TUNER = flags.DEFINE_string(
    "tuner", "random", f"keras-tuner oracle: {' | '.join(search.TUNERS)}.")
_MAX_TRIALS = flags.DEFINE_integer(
    "max_trials", 10, "Trials in all, counting those of earlier runs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv  # cli.parse_flags refuses stray arguments
    try:
        distributed.start(_CONFIG.value.train.strategy,  # before any TF op
                          _CONFIG.value.train.tpu, multi_worker=False)
        search.search(_CONFIG.value, _WORKDIR.value, _TUNER.value,
                      _MAX_TRIALS.value)
    except (ValueError, OSError, search.SearchError) as e:
        cli.fail("tune", e)


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery tune`)."""
    cli.run(main, "tune", config_flags=["config"])


if __name__ == "__main__":
    start()

r"""Trains a ticket found on one task on another: ticket transfer.

  python -m binaries.transfer --source=/tmp/mnist1d_seed0 --round=11 \
      --config=configs/mnist1d_lottery_mlp.py \
      --config.data.generation_seed=1 --workdir=/tmp/transfer_seed0

Round R's masks of the lottery run in --source are trained on the task of
--config (same input shape, same network) from the source's rewind point
(--init=rewind) or the target network's own initialization (--init=fresh),
against random masks of the same per-layer sparsity, the dense network,
and the ticket found on the target itself (keras_lottery/lottery/transfer.py).
Rerunning the same command resumes. The result is WORKDIR/summary.json.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from binaries import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The target task's config, e.g. "
    "configs/mnist1d_lottery_mlp.py[:smoke].", lock_config=True)
_SOURCE = flags.DEFINE_string("source", None,
                              "The workdir of the lottery run to take from.")
_ROUND = flags.DEFINE_integer("round", None,
                              "The source's round whose masks transfer.")
_INIT = flags.DEFINE_enum("init", "rewind", ["rewind", "fresh"],
                          "rewind: the source's rewind point; fresh: the "
                          "target network's initialization.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for every output.")
flags.mark_flags_as_required(["config", "source", "round", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from keras_lottery.lottery import trainer
    from keras_lottery.lottery import transfer

    try:
        summary = transfer.run_transfer(_SOURCE.value, _ROUND.value,
                                        _CONFIG.value, _WORKDIR.value,
                                        _INIT.value)
    except (ValueError, trainer.TrainingError, OSError) as e:
        cli.fail("transfer", e)
    for entry in summary:
        metric = entry["compared_metric"]
        print(f"{entry['arm']:>13}: {100 * entry['remaining_fraction']:5.1f}%"
              f" of weights, test {metric.replace('_', ' ')} "
              f"{entry[f'test_{metric}']:.4f} at step "
              f"{entry['early_stop_step']}, "
              f"{entry[f'final_test_{metric}']:.4f} at the end "
              f"({'higher' if entry['compared_mode'] == 'max' else 'lower'}"
              " is better)")


def start() -> None:
    """Runs the binary on `sys.argv` (`keras-lottery transfer`)."""
    cli.run(main, "transfer", config_flags=["config"])


if __name__ == "__main__":
    start()

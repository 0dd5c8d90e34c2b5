"""Every file name under a lottery workdir, in one place.

    WORKDIR/
      config.json              the run's config; a rerun must match it
      lock                     held (flock) by the one process running here
      summary.json             one entry per finished round
      rewind_step.json         prune.rewind_step="auto": the step chosen
      instability/round_00/    its instability analyses (and the binary's)
      round_00/                one folder per round
        masks.npz              the masks this round trains with
        units.npz              its unit masks (structured pruning)
        checkpoints/           in-round checkpoints (resume mid-round)
        model.keras            the trained wrapped model (masks, rewind point)
        metrics.json           evaluation history; written last: round done
      tensorboard/round_00/    TensorBoard summaries
      controls/random_reinit/  a control run, laid out like a workdir
      export/                  the sparse SavedModel of the last round
"""

from __future__ import annotations

import os

CONTROLS = ("random_reinit", "random_prune", "shuffle")


def config_file(workdir: str) -> str:
    return os.path.join(workdir, "config.json")


def lock_file(workdir: str) -> str:
    return os.path.join(workdir, "lock")


def summary_file(workdir: str) -> str:
    return os.path.join(workdir, "summary.json")


def rewind_step_file(workdir: str) -> str:
    return os.path.join(workdir, "rewind_step.json")


def round_dir(workdir: str, round_index: int) -> str:
    return os.path.join(workdir, f"round_{round_index:02d}")


def instability_dir(workdir: str, round_index: int) -> str:
    """A round's instability analysis (`keras_lottery.lottery.instability`)."""
    return os.path.join(workdir, "instability", f"round_{round_index:02d}")


def rewind_dir(instability_folder: str, k: int) -> str:
    """Rewind step `k`'s trainings in an `instability_dir`."""
    return os.path.join(instability_folder, f"rewind_{k:05d}")


def path_file(instability_folder: str, k: int) -> str:
    """Rewind step `k`'s errors along the path: written last, step done."""
    return os.path.join(rewind_dir(instability_folder, k), "path.json")


def masks_file(workdir: str, round_index: int) -> str:
    return os.path.join(round_dir(workdir, round_index), "masks.npz")


def units_file(workdir: str, round_index: int) -> str:
    return os.path.join(round_dir(workdir, round_index), "units.npz")


def checkpoint_dir(workdir: str, round_index: int) -> str:
    return os.path.join(round_dir(workdir, round_index), "checkpoints")


def model_file(workdir: str, round_index: int) -> str:
    return os.path.join(round_dir(workdir, round_index), "model.keras")


def metrics_file(workdir: str, round_index: int) -> str:
    return os.path.join(round_dir(workdir, round_index), "metrics.json")


def tensorboard_dir(workdir: str, round_index: int) -> str:
    return os.path.join(workdir, "tensorboard", f"round_{round_index:02d}")


def control_workdir(workdir: str, control: str) -> str:
    return os.path.join(workdir, "controls", control)


def export_dir(workdir: str) -> str:
    return os.path.join(workdir, "export")


# A keras-tuner search (`binaries.tune`):
#
#   SEARCH_WORKDIR/
#     search.json            the search's config and tuner
#     tuner/                 keras-tuner's oracle state (resume)
#     trials/<id>/           each trial's lottery workdir
#     trials.csv, trials.md  the table of all trials
#     best_config.py         the best trial, for binaries.lottery --config


def search_file(workdir: str) -> str:
    return os.path.join(workdir, "search.json")


TUNER_PROJECT = "tuner"  # keras-tuner's project_name, under the workdir


def tuner_dir(workdir: str) -> str:
    return os.path.join(workdir, TUNER_PROJECT)


def trial_workdir(workdir: str, trial_id: str) -> str:
    return os.path.join(workdir, "trials", trial_id)


def table_file(workdir: str, extension: str = "csv") -> str:
    return os.path.join(workdir, f"trials.{extension}")


def best_config_file(workdir: str) -> str:
    return os.path.join(workdir, "best_config.py")

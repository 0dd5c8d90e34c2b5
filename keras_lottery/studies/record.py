r"""Records a finished lottery run (or one of its controls) in a few kB.

The structure study (`keras_lottery.studies.structure`) keeps its workdirs
out of git (a LeNet round holds 5 MB of models and masks) and commits this
record of each instead:

  RECORD/config.json     the run's config
  RECORD/rounds.json     per round: metrics.json without the history, and
                         `shrunk`: what `keras_lottery.shrink` makes of the
                         round's ticket (parameters, nonzero kernel
                         entries in all and per layer, units per layer:
                         an attention layer's are its heads)
  RECORD/models.json     the shrunk models' Keras configs, one per shape,
                         by `structure_table.shape_key(units)`
  RECORD/summary.json    the run's summary, written last
  RECORD/controls/C/     the same for control C (no `shrunk`)

RECORD is then a workdir as `binaries.report` reads it.

  python -m keras_lottery.studies.record --workdir=W --record=R \
      [--control=random_reinit]

(the structure study runs it as a step of each run; its flags are defined
only then, so importing the module defines none).
"""

from __future__ import annotations

import os

import numpy as np
from absl import app
from absl import flags

from keras_lottery.base import files
from keras_lottery.base import paths
from keras_lottery.studies import structure_table


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    workdir, target = flags.FLAGS.workdir, flags.FLAGS.record
    control = flags.FLAGS.control
    if control:
        record(paths.control_workdir(workdir, control),
               os.path.join(target, "controls", control), shrunk=False)
    else:
        record(workdir, target, shrunk=True)


def record(workdir: str, target: str, shrunk: bool) -> None:
    """Writes the record of `workdir` to `target`; summary.json last."""
    summary_path = paths.summary_file(workdir)
    if not os.path.exists(summary_path):
        raise ValueError(f"`workdir` has no summary.json: it has not "
                         f"finished. Received: workdir={workdir!r}")
    summary = files.read_json(summary_path)
    rounds, configs = [], {}
    for entry in summary:
        metrics = files.read_json(paths.metrics_file(workdir, entry["round"]))
        metrics.pop("history", None)
        if shrunk:
            metrics["shrunk"] = shrunk_stats(
                paths.model_file(workdir, entry["round"]))
            configs[structure_table.shape_key(metrics["shrunk"]["units"])] = (
                metrics["shrunk"].pop("config"))
        rounds.append(metrics)
    os.makedirs(target, exist_ok=True)
    files.write_json(os.path.join(target, "config.json"),
                     files.read_json(paths.config_file(workdir)))
    files.write_json(os.path.join(target, "rounds.json"), rounds)
    if shrunk:
        files.write_json(os.path.join(target, "models.json"), configs)
    files.write_json(os.path.join(target, "summary.json"), summary)


def shrunk_stats(model_path: str) -> dict:
    """What `keras_lottery.shrink` leaves of a round's saved ticket."""
    import keras  # noqa: PLC0415  (TensorFlow only when a model is read)

    from keras_lottery.pruning import shrinking  # noqa: PLC0415

    model = keras.models.load_model(model_path, compile=False)
    small = shrinking.shrink(model)
    # By the kernel's path less its name: the layer's name, or an
    # attention layer's projection ("block1_attention/query_dense").
    kernels = {w.path.rsplit("/", 1)[0]: w for layer in small.layers
               for w in layer.weights
               if w.name in ("kernel", "depthwise_kernel")}
    nonzero = {name: int(np.count_nonzero(w.numpy()))
               for name, w in kernels.items()}
    # Units, filters, or an attention layer's heads.
    units = {layer.name: int(getattr(layer, "units", None)
                             or getattr(layer, "filters", None)
                             or layer.num_heads)
             for layer in small.layers
             if any(hasattr(layer, a)
                    for a in ("units", "filters", "num_heads"))}
    return {
        "parameters": int(small.count_params()),
        "kernel_entries": int(sum(np.prod(w.shape)
                                  for w in kernels.values())),
        "kernel_nonzero": int(sum(nonzero.values())),
        "layer_nonzero": nonzero,
        "units": units,
        "config": keras.saving.serialize_keras_object(small),
    }


if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "A finished lottery run.")
    flags.DEFINE_string("record", None, "Where its record goes.")
    flags.DEFINE_enum("control", None, list(paths.CONTROLS),
                      "Record this control of the run instead.")
    flags.mark_flags_as_required(["workdir", "record"])
    app.run(main)

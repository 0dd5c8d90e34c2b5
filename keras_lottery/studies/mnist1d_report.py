r"""The reports of the MNIST-1D study (`keras_lottery.studies.mnist1d`)
from its records: `binaries.report`'s of the lottery runs of both
schedules, 20% pruned per round into OUTPUT, 10% into OUTPUT/fine.

  python -m keras_lottery.studies.mnist1d_report \
      --records=docs/results_mnist1d/runs --seeds=0,1,2 \
      --output=docs/results_mnist1d

(the study runs it once every run is recorded; its flags are defined only
then, so importing the module defines none).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from absl import app
from absl import flags

from keras_lottery.analysis import report


def write_reports(records: str, seeds: Sequence[int], output: str
                  ) -> list[str]:
    """The reports of both schedules from the records: OUTPUT (20% per
    round) and OUTPUT/fine (10%); returns the files written."""
    written = []
    for name, folder in (("lottery_mlp", output),
                         ("lottery_mlp_fine", os.path.join(output, "fine"))):
        written += report.write_report(
            [os.path.join(records, f"{name}_seed{s}") for s in seeds],
            folder)["files"]
    return written


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        written = write_reports(flags.FLAGS.records,
                                [int(s) for s in flags.FLAGS.seeds],
                                flags.FLAGS.output)
    except (ValueError, OSError) as e:
        raise SystemExit(f"mnist1d_report: {e}") from None
    print("\n".join(written))


if __name__ == "__main__":
    flags.DEFINE_string("records", None, "The study's records.")
    flags.DEFINE_list("seeds", None, "Its seeds, e.g. 0,1,2.")
    flags.DEFINE_string("output", None, "The reports' folder.")
    flags.mark_flags_as_required(["records", "seeds", "output"])
    app.run(main)

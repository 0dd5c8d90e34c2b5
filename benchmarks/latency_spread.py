r"""How far apart two measurements of one shrunk shape's latency are.

benchmarks/structure_latency.py measures each shape once: one SavedModel,
the best of --repeats interleaved medians. Here each --shape is exported
--instances times (the same shape, separate SavedModels with fresh
weights) and all are measured in one interleaved run, the same way, so the
spread between the instances of one shape is what a figure in
latency.json can carry on this machine.

  python -m benchmarks.latency_spread --part=conv2 \
      --shape=conv1=64,conv2=64,fc1=256,fc2=256,output=10 \
      --shape=conv1=64,conv2=64,fc1=227,fc2=233,output=10

Prints, per shape and batch size, each instance's latency and the largest
over the smallest. --threads, --calls, --repeats and --data_dir are the
report's own flags.
"""

from __future__ import annotations

import os
import sys
import tempfile

from absl import app
from absl import flags

from benchmarks import common
from benchmarks import structure_latency as structure_report
from keras_lottery.studies import structure_table
from keras_lottery.studies.structure_cells import cell_names

_SHAPES = flags.DEFINE_multi_string(
    "shape", [], "A shrunk shape as latency.json names it "
    "(conv1=64,...,output=10); repeat the flag for several.")
_INSTANCES = flags.DEFINE_integer("instances", 3,
                                  "SavedModels exported of each shape.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if _INSTANCES.value < 2:
        sys.exit("--instances must be at least 2. Received: "
                 f"--instances={_INSTANCES.value}")
    part = flags.FLAGS.part  # the report's --part and --records
    records = os.path.join(flags.FLAGS.records, part)
    configs = structure_report.shape_configs(
        structure_table.load_cells(records, cell_names(part)))
    unknown = [s for s in _SHAPES.value if s not in configs]
    if not _SHAPES.value or unknown:
        sys.exit(f"--shape must name shapes recorded in {records}. "
                 f"Received: --shape={' --shape='.join(unknown) or '(none)'}")
    structure_report.set_threads()
    shapes = list(dict.fromkeys(_SHAPES.value))  # once each, in order
    todo = {f"{shape} #{i}": configs[shape]
            for shape in shapes for i in range(_INSTANCES.value)}
    columns = structure_table.part_latency_columns(part)
    with tempfile.TemporaryDirectory(prefix="latency_spread_") as tmp:
        best = common.interleaved(structure_report.timed_calls(
            todo, {name: list(columns) for name in todo}, tmp),
            flags.FLAGS.repeats, best=min)
    print(structure_report.latency_note())
    print("| Shape | Column | Each instance, µs | Largest / smallest |")
    print("|---|---|---|---|")
    for shape in shapes:
        for column in columns:
            times = [best[f"{shape} #{i}", column]
                     for i in range(_INSTANCES.value)]
            print(f"| {shape} | {structure_table.column_label(column)} | "
                  f"{', '.join(f'{1e6 * t:,.0f}' for t in times)} | "
                  f"{max(times) / min(times):.2f} |")


if __name__ == "__main__":
    app.run(main)

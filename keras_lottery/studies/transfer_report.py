r"""The table of the transfer study (`keras_lottery.studies.transfer`)
from its records (was benchmarks/transfer_table.py).

  python -m keras_lottery.studies.transfer_report \
      --records=docs/results_transfer/runs \
      --output=docs/results_transfer/transfer.md

Reads each RECORDS/<part>_transfer_seed<N>/summary.json and writes one
Markdown table per part: test accuracy at early stop and at the end of
training, %, per seed and mean, for each arm. Its flags are defined only
when it runs, so importing the module defines none.
"""

from __future__ import annotations

import collections
import glob
import os
import re

from absl import app
from absl import flags

from keras_lottery.base import files

ARMS = ("dense", "target_ticket", "transferred", "random")


def table(records: str) -> str:
    """The Markdown tables of every transfer recorded under `records`
    (RECORDS/<part>_transfer_seed<N>/summary.json): test accuracy at early
    stop and at the end of training, %, per seed and mean, for each arm."""
    parts = collections.defaultdict(dict)
    found = []
    for path in sorted(glob.glob(os.path.join(
            records, "*_transfer_seed*", "summary.json"))):
        match = re.fullmatch(r"(.*)_transfer_seed(\d+)",
                             os.path.basename(os.path.dirname(path)))
        if match:
            found.append((path, match))
    if not found:
        raise ValueError(f"--records holds no <part>_transfer_seed<N>/"
                         f"summary.json. Received: --records={records}")
    for path, match in found:
        arms = {e["arm"]: e for e in files.read_json(path)}
        missing = [arm for arm in ARMS if arm not in arms]
        if missing:
            raise ValueError(
                f"{path} lacks the arm(s) {', '.join(missing)} (is its run "
                f"finished?). Received: --records={records}")
        parts[match[1]][int(match[2])] = arms
    lines = []
    for part, seeds in parts.items():
        order = sorted(seeds)
        lines += [f"### {part} (seeds {', '.join(map(str, order))})", "",
                  "| Arm | Weights left | Test acc. at early stop | "
                  "Test acc. at the end |", "|---|---|---|---|"]
        for arm in ARMS:
            entries = [seeds[s][arm] for s in order]
            cells = []
            for key in ("test_accuracy", "final_test_accuracy"):
                values = [100 * e[key] for e in entries]
                cells.append(" / ".join(f"{v:.1f}" for v in values)
                             + f" = **{sum(values) / len(values):.1f}**")
            left = 100 * entries[0]["remaining_fraction"]
            lines.append(f"| {arm} | {left:.1f}% | {cells[0]} | "
                         f"{cells[1]} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        text = table(flags.FLAGS.records)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    files.write_text(flags.FLAGS.output, text)
    print(text)


if __name__ == "__main__":
    flags.DEFINE_string("records", None, "The study's records.")
    flags.DEFINE_string("output", None, "The Markdown file to write.")
    flags.mark_flags_as_required(["records", "output"])
    app.run(main)

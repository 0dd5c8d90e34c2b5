r"""The table of benchmarks/reproduce_transfer.sh, from its summaries.

  python -m benchmarks.transfer_table --workdirs=workdirs/transfer \
      --output=workdirs/transfer/transfer.md

Reads each `<study>_transfer_seed<N>/summary.json` under --workdirs and
writes one Markdown table per study: test accuracy at early stop and at
the end of training, %, per seed and mean, for each arm.
"""

import collections
import glob
import os
import re
import sys

from absl import app
from absl import flags

from keras_lottery.base import files

_WORKDIRS = flags.DEFINE_string("workdirs", None, "The studies' folder.")
_OUTPUT = flags.DEFINE_string("output", None, "The Markdown file to write.")
flags.mark_flags_as_required(["workdirs", "output"])

_ARMS = ("dense", "target_ticket", "transferred", "random")


def table(workdirs: str) -> str:
    """The Markdown tables of every study under `workdirs`."""
    studies = collections.defaultdict(dict)
    found = []
    for path in sorted(glob.glob(os.path.join(
            workdirs, "*_transfer_seed*", "summary.json"))):
        match = re.fullmatch(r"(.*)_transfer_seed(\d+)",
                             os.path.basename(os.path.dirname(path)))
        if match:
            found.append((path, match))
    if not found:
        raise ValueError(f"--workdirs holds no <study>_transfer_seed<N>/"
                         f"summary.json. Received: --workdirs={workdirs}")
    for path, match in found:
        arms = {e["arm"]: e for e in files.read_json(path)}
        missing = [arm for arm in _ARMS if arm not in arms]
        if missing:
            raise ValueError(
                f"{path} lacks the arm(s) {', '.join(missing)} (is its run "
                f"finished?). Received: --workdirs={workdirs}")
        studies[match[1]][int(match[2])] = arms
    lines = []
    for study, seeds in studies.items():
        order = sorted(seeds)
        lines += [f"### {study} (seeds {', '.join(map(str, order))})", "",
                  "| Arm | Weights left | Test acc. at early stop | "
                  "Test acc. at the end |", "|---|---|---|---|"]
        for arm in _ARMS:
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
        text = table(_WORKDIRS.value)
    except ValueError as e:
        sys.exit(str(e))
    with files.atomic_path(_OUTPUT.value) as tmp, open(
            tmp, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    app.run(main)

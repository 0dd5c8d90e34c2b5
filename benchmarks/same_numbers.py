r"""Does a rerun give the reproduction's numbers, seed for seed?

  python -m benchmarks.same_numbers --reference=docs/results/report.json \
      --runs=docs/results_early/runs/imp/seed0,docs/results_early/runs/imp/seed1

--reference is the `report.json` that `binaries.report` wrote for the
reproduction (docs/RESULTS.md); --runs are workdirs (or recorded runs: a
folder with `config.json` and `summary.json`) of the same config, one per
seed. For every round of every run it compares the ticket's test accuracy
at early stop, its early-stop iteration and its test accuracy at the end
with the reference's value for that seed, and prints the rounds that
differ (points, iterations) and a count of those that agree exactly (to
the 4 decimals the summaries keep).
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

from keras_lottery.base import files

_REFERENCE = flags.DEFINE_string("reference", "docs/results/report.json",
                                 "The reproduction's report.json.")
_RUNS = flags.DEFINE_list("runs", [], "Workdirs of the rerun, one per seed.")

FIELDS = ("test_accuracy", "early_stop_step", "final_test_accuracy")


def reference_values(report: dict) -> dict[tuple[int, int], tuple]:
    """`{(seed, round): (test acc, early stop, final acc)}` of the ticket
    rows of a `binaries.report` report.json."""
    values = {}
    for row in report["rows"]:
        ticket = row["ticket"]
        for i, seed in enumerate(ticket["test_accuracy"]["seeds"]):
            acc, stop, final = (ticket[field]["values"][i]
                                for field in FIELDS)
            values[seed, row["round"]] = (acc, int(stop), final)
    return values


def compare(reference: dict, workdir: str) -> tuple[int, list[str]]:
    """(rounds that agree, a line per round that differs) for one run."""
    seed = files.read_json(os.path.join(workdir, "config.json"))["seed"]
    agree, lines = 0, []
    for entry in files.read_json(os.path.join(workdir, "summary.json")):
        want = reference.get((seed, entry["round"]))
        if want is None:
            lines.append(f"seed {seed} round {entry['round']}: not in the "
                         "reference")
            continue
        got = tuple(entry[field] for field in FIELDS)
        if all(round(a, 4) == round(b, 4) for a, b in zip(got, want)):
            agree += 1
            continue
        lines.append(
            f"seed {seed} round {entry['round']:2d}: early stop "
            f"{100 * got[0]:.2f}% at {got[1]:,} (reference "
            f"{100 * want[0]:.2f}% at {want[1]:,}, "
            f"{100 * (got[0] - want[0]):+.2f} points); end "
            f"{100 * got[2]:.2f}% ({100 * (got[2] - want[2]):+.2f})")
    return agree, lines


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not _RUNS.value:
        sys.exit("--runs must name at least one workdir. Received: --runs=")
    for workdir in _RUNS.value:
        if not os.path.exists(os.path.join(workdir, "summary.json")):
            sys.exit("--runs must be finished workdirs (with summary.json)."
                     f" Received: --runs={','.join(_RUNS.value)}")
    reference = reference_values(files.read_json(_REFERENCE.value))
    for workdir in _RUNS.value:
        agree, lines = compare(reference, workdir)
        print(f"{workdir}: {agree} of {agree + len(lines)} rounds the same")
        for line in lines:
            print(f"  {line}")


if __name__ == "__main__":
    app.run(main)

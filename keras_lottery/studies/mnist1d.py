r"""MNIST-1D's lottery-ticket notebook and the paper's models (issue 15,
docs/RESULTS_MNIST1D.md).

For each seed (default 0, 1, 2):

    lottery_mlp_seedS    the notebook's 40-500-500-10 residual MLP
                         (configs/mnist1d_lottery_mlp.py), rounds 0 to 10
    random_prune_seedS, random_reinit_seedS
                         its controls at ROUNDS (2, 4, 6, 8, 10)
    dense_mlp_seedS, dense_cnn_seedS
                         the paper's dense MLP and CNN (configs/mnist1d_mlp.py,
                         configs/mnist1d_cnn.py), against Greydanus's table
    lottery_mlp_fine_seedS
                         the lottery run with 10% pruned per round, rounds 0
                         to 22 (to 90% sparsity too)
    random_prune_fine_seedS
                         its random-prune control at FINE_ROUNDS (7, 13, 18,
                         22)

MNIST-1D is generated in each process (seconds): nothing is read. Each run
is recorded (`seeds`) into RECORDS/NAME (default docs/results_mnist1d/runs);
the reports are `binaries.report`'s of the records (`mnist1d_report`),
into docs/results_mnist1d and its fine/ (with other records,
RECORDS/../report).

  keras-lottery study mnist1d --workdir=workdirs/mnist1d
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from keras_lottery.studies import grid
from keras_lottery.studies import seeds as seeds_lib

RECORDS = "docs/results_mnist1d/runs"
REPORT = "docs/results_mnist1d"
ROUNDS = (2, 4, 6, 8, 10)
FINE_ROUNDS = (7, 13, 18, 22)
SMOKE_ROUNDS = (1, 2)
SMOKE_FINE_ROUNDS = (2, 3)
SMOKE_SEEDS = (0, 1)


def study(workdir: str, records: str | None, seeds: Sequence[int] | None,
          smoke: bool) -> grid.Study:
    """The study's grid (see the module's docstring)."""
    seeds = tuple(seeds if seeds is not None else
                  SMOKE_SEEDS if smoke else (0, 1, 2))
    rounds = SMOKE_ROUNDS if smoke else ROUNDS
    fine_rounds = SMOKE_FINE_ROUNDS if smoke else FINE_ROUNDS
    records, output = seeds_lib.outputs(records, workdir, smoke, RECORDS,
                                        REPORT)
    variant = ":smoke" if smoke else ""
    extra = ["--config.eval.test_at=best", "--config.export.enabled=false"]
    runs: list[grid.Run] = []

    def lottery(name, config, seed, args=(), outputs=()):
        return seeds_lib.lottery(
            name, [f"--config=configs/{config}.py{variant}",
                   f"--config.seed={seed}", *args], os.path.join(
                       workdir, name), os.path.join(records, name), outputs)

    for seed in seeds:
        ticket = lottery(f"lottery_mlp_seed{seed}", "mnist1d_lottery_mlp",
                         seed, extra, rounds)
        runs += [ticket, *(seeds_lib.control(
            f"{c}_seed{seed}", ticket, os.path.join(workdir, ticket.name),
            os.path.join(records, ticket.name), c, rounds)
            for c in ("random_prune", "random_reinit"))]
        runs += [lottery(f"dense_{model}_seed{seed}", f"mnist1d_{model}",
                         seed, ["--config.prune.num_rounds=0", *extra])
                 for model in ("mlp", "cnn")]
        fine = lottery(
            f"lottery_mlp_fine_seed{seed}", "mnist1d_lottery_mlp", seed,
            [*extra, "--config.prune.fraction_per_round=0.1",
             "--config.prune.output_fraction_per_round=0.1",
             f"--config.prune.num_rounds={max(fine_rounds)}"], fine_rounds)
        runs += [fine, seeds_lib.control(
            f"random_prune_fine_seed{seed}", fine,
            os.path.join(workdir, fine.name),
            os.path.join(records, fine.name), "random_prune", fine_rounds)]
    return grid.Study(
        "mnist1d", runs, records, workdir,
        report=grid.Command((
            "-m", "keras_lottery.studies.mnist1d_report",
            f"--records={records}",
            f"--seeds={','.join(map(str, seeds))}", f"--output={output}")),
        report_path=os.path.join(output, "report.md"))

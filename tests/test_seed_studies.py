"""The studies of one experiment over seeds (keras_lottery.studies:
lenet300, mnist1d, transfer): their runs are the commands the scripts
they replace ran (benchmarks/reproduce_*.sh, as of issue 37), their
committed reports regenerate from what is committed, and the transfer
table. Nothing here starts Ray or trains (the smoke of a study:
docs/STUDIES.md; the runner itself: tests/test_studies.py)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_lottery.analysis import tables
from keras_lottery.base import files
from keras_lottery.studies import catalog
from keras_lottery.studies import grid
from keras_lottery.studies import lenet300
from keras_lottery.studies import mnist1d_report
from keras_lottery.studies import seeds
from keras_lottery.studies import transfer_report

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _commands(study, seed=0):
    """Each run of `seed` (and the seedless ones): its commands' args."""
    return {run.name: [step.args for step in run.steps
                       if isinstance(step, grid.Command)]
            for run in study.runs
            if f"seed{seed}" in run.name or "seed" not in run.name}


def _load(name, tmp_path, **kwargs):
    return catalog.load(name, catalog.Options(
        str(tmp_path / "w"), data_dir="D", **kwargs))


def test_lenet300_runs_what_reproduce_lenet300_sh_ran(tmp_path):
    # The script's commands for seed 0 (WORKDIRS=W, DATA_DIR=D): the
    # lottery run, one-shot from its round 0, both controls; the tfmot
    # baseline of the committed results (TFMOT_SEEDS=0), recorded already.
    w = tmp_path / "w"
    lottery = ("-m", "binaries.lottery", "--config=configs/lenet300_mnist.py",
               "--config.seed=0", "--config.data.dir=D",
               "--config.eval.test_at=best")
    assert _commands(_load("lenet300", tmp_path)) == {
        "lottery_seed0": [(*lottery, f"--workdir={w}/seed0")],
        "oneshot_seed0": [(*lottery, "--config.prune.mode=one_shot",
                           "--config.prune.one_shot_rounds=(3,7,12,15,18,)",
                           f"--workdir={w}/oneshot_seed0")],
        **{f"{c}_seed0": [("-m", "binaries.controls", f"--workdir={w}/seed0",
                           f"--control={c}", "--rounds=3,7,12,15,18")]
           for c in ("random_reinit", "random_prune")},
        "tfmot": [("-c", lenet300._TFMOT, f"{w}/tfmot_venv",
                   "--data_dir=D", "--output=benchmarks/results/tfmot.json",
                   "--steps=50000", "--seeds=0")]}
    study = _load("lenet300", tmp_path)
    assert study.runs[-1].name == "tfmot" and study.runs[-1].recorded()
    elsewhere = _load("lenet300", tmp_path, records=str(tmp_path / "r"))
    assert [r.name for r in grid.needed(elsewhere.runs)] == [
        f"{run}_seed{s}" for s in (0, 1, 2) for run in (
            "lottery", "oneshot", "random_reinit", "random_prune")] + [
        "tfmot"]
    assert elsewhere.runs[-1].records == (str(tmp_path / "tfmot.json"),)
    assert study.report.args == (
        "-m", "binaries.report",
        "--workdirs=" + ",".join(f"docs/results/runs/seed{s}"
                                 for s in (0, 1, 2)),
        "--one_shot_workdirs=" + ",".join(
            f"docs/results/runs/oneshot_seed{s}" for s in (0, 1, 2)),
        "--tfmot=benchmarks/results/tfmot.json", "--output=docs/results")
    smoke = _load("lenet300", tmp_path, smoke=True)
    assert _commands(smoke)["oneshot_seed0"] == [(
        "-m", "binaries.lottery", "--config=configs/lenet300_mnist.py:smoke",
        "--config.seed=0", "--config.data.dir=D",
        "--config.eval.test_at=best", "--config.export.enabled=false",
        "--config.prune.mode=one_shot", "--config.prune.one_shot_rounds=(2,3,)",
        f"--workdir={w}/oneshot_seed0")]
    assert smoke.records == str(w / "records")
    assert "tfmot" not in [r.name for r in smoke.runs]


def test_the_one_shot_run_starts_once_the_dense_round_exists(tmp_path):
    study = _load("lenet300", tmp_path, seeds=(0,), smoke=True)
    runs = {run.name: run for run in study.runs}
    one_shot = runs["oneshot_seed0"]
    assert one_shot.alongside == (runs["lottery_seed0"],)
    assert not one_shot.is_ready()
    os.makedirs(tmp_path / "w" / "seed0" / "round_00")
    (tmp_path / "w" / "seed0" / "round_00" / "metrics.json").write_text("{}")
    assert one_shot.is_ready()
    assert grid.Schedule(study.runs).next_runs(2) == [
        runs["lottery_seed0"], one_shot]


def test_mnist1d_runs_what_reproduce_mnist1d_sh_ran(tmp_path):
    w = tmp_path / "w"
    extra = ("--config.eval.test_at=best", "--config.export.enabled=false")

    def lottery(config, *args, workdir):
        return [("-m", "binaries.lottery", f"--config=configs/{config}.py",
                 "--config.seed=0", *args, f"--workdir={w}/{workdir}")]

    def controls(workdir, control, rounds):
        return [("-m", "binaries.controls", f"--workdir={w}/{workdir}",
                 f"--control={control}", f"--rounds={rounds}")]

    assert _commands(_load("mnist1d", tmp_path)) == {
        "lottery_mlp_seed0": lottery("mnist1d_lottery_mlp", *extra,
                                     workdir="lottery_mlp_seed0"),
        "random_prune_seed0": controls("lottery_mlp_seed0", "random_prune",
                                       "2,4,6,8,10"),
        "random_reinit_seed0": controls("lottery_mlp_seed0",
                                        "random_reinit", "2,4,6,8,10"),
        **{f"dense_{m}_seed0": lottery(
            f"mnist1d_{m}", "--config.prune.num_rounds=0", *extra,
            workdir=f"dense_{m}_seed0") for m in ("mlp", "cnn")},
        "lottery_mlp_fine_seed0": lottery(
            "mnist1d_lottery_mlp", *extra,
            "--config.prune.fraction_per_round=0.1",
            "--config.prune.output_fraction_per_round=0.1",
            "--config.prune.num_rounds=22", workdir="lottery_mlp_fine_seed0"),
        "random_prune_fine_seed0": controls(
            "lottery_mlp_fine_seed0", "random_prune", "7,13,18,22")}
    smoke = _commands(_load("mnist1d", tmp_path, smoke=True), seed=1)
    assert smoke["lottery_mlp_fine_seed1"][0][2:4] == (
        "--config=configs/mnist1d_lottery_mlp.py:smoke", "--config.seed=1")
    assert "--config.prune.num_rounds=3" in smoke["lottery_mlp_fine_seed1"][0]
    assert smoke["random_prune_seed1"][0][-1] == "--rounds=1,2"


def test_transfer_runs_what_reproduce_transfer_sh_ran(tmp_path):
    # MNIST=1: both parts, as docs/TRANSFER.md's tables ran.
    w = tmp_path / "w"
    extra = ("--config.export.enabled=false", "--config.eval.test_at=best")
    mnist = ("--config=configs/lenet300_mnist.py", "--config.data.dir=D")
    steps = ("--config.train.num_steps=2000", "--config.eval.every_steps=100",
             "--config.train.checkpoint_every_steps=2000")
    transfer_ = ("-m", "binaries.transfer")
    assert _commands(_load("transfer", tmp_path)) == {
        "mnist1d_source_seed0": [(
            "-m", "binaries.lottery",
            "--config=configs/mnist1d_lottery_mlp.py", "--config.seed=0",
            "--config.prune.num_rounds=11", *extra,
            f"--workdir={w}/mnist1d_source_seed0")],
        "mnist1d_transfer_seed0": [(
            *transfer_, f"--source={w}/mnist1d_source_seed0", "--round=11",
            "--init=rewind", "--config=configs/mnist1d_lottery_mlp.py",
            "--config.seed=0", "--config.data.generation_seed=1", *extra,
            f"--workdir={w}/mnist1d_transfer_seed0")],
        "mnist04_source_seed0": [(
            "-m", "binaries.lottery", *mnist, "--config.seed=0",
            "--config.data.classes=(0, 1, 2, 3, 4)", *steps,
            "--config.prune.num_rounds=11", *extra,
            f"--workdir={w}/mnist04_source_seed0")],
        "mnist59_transfer_seed0": [(
            *transfer_, f"--source={w}/mnist04_source_seed0", "--round=11",
            "--init=rewind", *mnist, "--config.seed=0",
            "--config.data.classes=(5, 6, 7, 8, 9)", *steps, *extra,
            f"--workdir={w}/mnist59_transfer_seed0")]}
    smoke = _load("transfer_mnist1d", tmp_path, smoke=True)
    assert [r.name for r in smoke.runs] == ["mnist1d_source_seed0",
                                            "mnist1d_transfer_seed0"]
    assert smoke.runs[1].after == (smoke.runs[0],)
    assert "--round=2" in smoke.runs[1].steps[0].args
    assert smoke.report_path == str(w / "transfer.md")


@pytest.mark.parametrize("folder", [
    "results", "results_rerun", "results_mnist1d", "results_mnist1d/fine"])
def test_the_committed_reports_regenerate_from_their_report_json(folder):
    # Their workdirs are not committed: report.json (and the plots) cannot
    # be drawn again, report.md can.
    path = os.path.join(_REPO, "docs", folder)
    with open(os.path.join(path, "report.md"), encoding="utf-8") as f:
        assert seeds.markdown(files.read_json(
            os.path.join(path, "report.json"))) == f.read()


def test_the_rerun_records_give_its_reports_ticket_column():
    # docs/results_rerun/runs keeps each seed's lottery run as the lenet300
    # study records it (config.json, summary.json); not its controls.
    rerun = os.path.join(_REPO, "docs", "results_rerun")
    runs = tables.load_runs([os.path.join(rerun, "runs", f"seed{s}")
                             for s in (0, 1, 2)])
    table = tables.build_table(runs)
    committed = files.read_json(os.path.join(rerun, "report.json"))
    assert table["config"] == committed["config"]
    assert [r["ticket"] for r in table["rows"]] == [
        r["ticket"] for r in committed["rows"]]


def _transfer_records(root, accuracies=((0, 0.90), (1, 0.95))):
    for seed, accuracy in accuracies:
        folder = root / f"mnist1d_transfer_seed{seed}"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps([
            {"arm": arm, "test_accuracy": accuracy - i / 100,
             "final_test_accuracy": accuracy - i / 50,
             "remaining_fraction": 1.0 if arm == "dense" else 0.086}
            for i, arm in enumerate(transfer_report.ARMS)]))


def test_the_transfer_table_gives_each_seed_and_the_mean(tmp_path):
    _transfer_records(tmp_path)
    (tmp_path / "mnist1d_source_seed0").mkdir()  # a source: not a row
    lines = transfer_report.table(str(tmp_path)).splitlines()
    assert lines[0] == "### mnist1d (seeds 0, 1)"
    assert [line.split(" | ")[0] for line in lines[4:8]] == [
        f"| {arm}" for arm in transfer_report.ARMS]
    assert lines[4] == ("| dense | 100.0% | 90.0 / 95.0 = **92.5** | "
                        "90.0 / 95.0 = **92.5** |")
    assert lines[7] == ("| random | 8.6% | 87.0 / 92.0 = **89.5** | "
                        "84.0 / 89.0 = **86.5** |")


def test_the_transfer_table_names_a_missing_arm_in_one_line(tmp_path):
    def table():
        return subprocess.run(
            [sys.executable, "-m", "keras_lottery.studies.transfer_report",
             f"--records={tmp_path}", f"--output={tmp_path / 'transfer.md'}"],
            cwd=_REPO, capture_output=True, text=True, timeout=120)

    (tmp_path / "transfer.md").write_text("kept")
    (tmp_path / "mnist1d_transfer_seedA").mkdir()
    (tmp_path / "mnist1d_transfer_seedA" / "summary.json").write_text("[]")
    with pytest.raises(ValueError, match=(
            r"^--records holds no <part>_transfer_seed<N>/summary.json. "
            rf"Received: --records={tmp_path}$")):
        transfer_report.table(str(tmp_path))
    folder = tmp_path / "mnist1d_transfer_seed0"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps([
        {"arm": "dense", "test_accuracy": 0.9, "final_test_accuracy": 0.9,
         "remaining_fraction": 1.0}]))
    result = table()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1:] == [
        f"{folder / 'summary.json'} lacks the arm(s) target_ticket, "
        "transferred, random (is its run finished?). "
        f"Received: --records={tmp_path}"]
    assert (tmp_path / "transfer.md").read_text() == "kept"


def test_mnist1d_reports_both_schedules_from_the_records(tmp_path):
    # The rerun's records stand in for both schedules' runs: the report
    # reads records as workdirs.
    rerun = os.path.join(_REPO, "docs", "results_rerun", "runs")
    for name in ("lottery_mlp", "lottery_mlp_fine"):
        for s in (0, 1, 2):
            target = tmp_path / "records" / f"{name}_seed{s}"
            target.mkdir(parents=True)
            for f in ("config.json", "summary.json"):
                shutil.copyfile(os.path.join(rerun, f"seed{s}", f),
                                target / f)
    written = mnist1d_report.write_reports(str(tmp_path / "records"), (0, 1, 2),
                                    str(tmp_path / "out"))
    assert sorted(os.path.relpath(p, tmp_path / "out") for p in written
                  if p.endswith(".md")) == ["fine/report.md", "report.md"]
    assert (tmp_path / "out" / "fine" / "report.json").exists()

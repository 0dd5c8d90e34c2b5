"""The binaries as a user runs them: installed, from any folder, quiet.

`pip install` (here `--target` a temporary folder, so that the test's
environment is left as it is) gives a `keras-lottery` script that runs
every binary from any folder, with configs found by name; its logs are
free of TensorFlow's start-up noise and end with one line naming the
summary, the export and the last round's verdict.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from binaries import cli
from binaries import command
from binaries import quiet
from configs import lenet300_mnist
from keras_lottery.base import paths

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NOISE = ("cuInit", "oneDNN", "cpu_feature_guard", "absl::InitializeLog",
          "Sharding callback duration", "Ignoring Assert operator",
          "Writing fingerprint")
_TINY = ("--config.train.num_steps=20", "--config.train.steps_per_loop=10",
         "--config.train.checkpoint_every_steps=10",
         "--config.train.jit_compile=False", "--config.eval.every_steps=10",
         "--config.prune.num_rounds=1")


def _environment(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project installed with pip into a temporary folder."""
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=_REPO_ROOT,
        capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if os.path.isfile(os.path.join(_REPO_ROOT, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy(os.path.join(_REPO_ROOT, name), source / name)
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300)
    return target


def _keras_lottery(installed, *args, cwd):
    return subprocess.run(
        [str(installed / "bin" / "keras-lottery"), *args], cwd=cwd,
        capture_output=True, text=True, timeout=300,
        env=_environment(PYTHONPATH=str(installed)))


@pytest.fixture(scope="module")
def run_elsewhere(installed, mnist_dir, tmp_path_factory):
    """`keras-lottery lottery` run from a folder outside the repository."""
    folder = tmp_path_factory.mktemp("elsewhere")
    workdir = folder / "workdir"
    result = _keras_lottery(
        installed, "lottery", "--config=lenet300_mnist:smoke",
        f"--config.data.dir={os.path.abspath(mnist_dir)}", *_TINY,
        f"--workdir={workdir}", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(workdir), result.stderr


def test_installed_script_runs_from_any_folder(run_elsewhere):
    workdir, _ = run_elsewhere
    assert os.path.exists(paths.summary_file(workdir))
    assert os.path.isdir(os.path.join(paths.export_dir(workdir), "lottery",
                                      "1"))


def test_logs_are_free_of_tensorflow_noise(run_elsewhere):
    _, stderr = run_elsewhere
    for noise in _NOISE:
        assert noise not in stderr, stderr[-3000:]
    assert "round 1 of 1, step 20/20" in stderr
    assert "run ETA" in stderr


def test_the_run_ends_with_one_line_naming_summary_export_verdict(
        run_elsewhere):
    workdir, stderr = run_elsewhere
    last = stderr.strip().splitlines()[-1]
    assert (f"Done: summary in {paths.summary_file(workdir)}, export in "
            f"{paths.export_dir(workdir)}/lottery/1; round 1 (") in last
    assert "is a winning ticket" in last or "is not a winning ticket" in last


def test_installed_controls_refuse_a_workdir_with_no_pruned_round(
        installed, run_elsewhere, tmp_path):
    workdir = str(tmp_path / "workdir")
    shutil.copytree(run_elsewhere[0], workdir)
    shutil.rmtree(paths.round_dir(workdir, 1))
    before = sorted(os.walk(workdir))
    result = _keras_lottery(installed, "controls", f"--workdir={workdir}",
                            "--control=random_reinit", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "controls: `workdir` must hold a finished pruned round (round 1 or "
        "later) to run a control at; it has none yet: run or resume "
        f"binaries.lottery on it first. Received: workdir={workdir!r}"]
    assert sorted(os.walk(workdir)) == before


def test_unknown_command_is_one_line(installed, tmp_path):
    result = _keras_lottery(installed, "prune", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "keras-lottery: the first argument must be one of lottery, "
        "controls, export, report, tune, transfer, instability, study, "
        "e.g. "
        "keras-lottery lottery --config=lenet300_mnist --workdir=W. "
        "Received: prune")


def _binaries(*args):
    """`python -m binaries ARGS`: quick, TensorFlow is not imported."""
    return subprocess.run(
        [sys.executable, "-m", "binaries", *args], cwd=_REPO_ROOT,
        capture_output=True, text=True, timeout=120, env=_environment())


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["help"]])
def test_help_lists_every_command_with_one_line(args):
    result = _binaries(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines if re.match("  [a-z]", line)]
    assert listed == list(command.COMMANDS)
    for name in command.COMMANDS:
        assert f"  {name:<13}{command.summary(name)}" in lines
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert "keras-lottery COMMAND --help" in result.stdout


def test_a_command_is_described_by_its_docstring():
    from binaries import lottery as lottery_binary

    assert command.summary("lottery") == (
        lottery_binary.__doc__.splitlines()[0].rstrip("."))


def test_installed_script_prints_its_help(installed, tmp_path):
    result = _keras_lottery(installed, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == command.usage() + "\n"


@pytest.mark.parametrize("args", [
    ["lottery", "--help"], ["help", "lottery"], ["lottery", "-h"]])
def test_command_help_lists_its_own_flags(args):
    result = _binaries(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "usage: keras-lottery lottery [--flag=value ...]\n\nRuns a lottery")
    flags_part = result.stdout.partition("\nflags:\n")[2]
    assert re.findall(r"^  --(?:\[no\])?(\w+):", flags_part, re.M) == [
        "config", "show_config", "workdir"]
    assert ("  --config: Config file, e.g. configs/lenet300_mnist.py"
            "[:smoke].\n") in flags_part
    assert "  --workdir: Folder for every output.\n" in flags_part
    assert "--config=NAME --show_config" in flags_part


def test_help_of_a_binary_run_as_a_module_lists_its_flags():
    # Its flags are those of __main__, which absl files under argv[0].
    as_command = _binaries("lottery", "--help").stdout
    result = subprocess.run(
        [sys.executable, "-m", "binaries.lottery", "--help"], cwd=_REPO_ROOT,
        capture_output=True, text=True, timeout=120, env=_environment())
    assert result.returncode == 0, result.stderr
    assert result.stdout == as_command


@pytest.mark.parametrize("with_workdir", [True, False])
def test_show_config_prints_the_config_and_writes_nothing(tmp_path,
                                                          with_workdir):
    workdir = tmp_path / "workdir"
    result = _binaries(
        "lottery", "--config=configs/lenet300_mnist.py:smoke",
        "--config.train.num_steps=7", "--show_config",
        *([f"--workdir={workdir}"] if with_workdir else []))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "config.train.num_steps = 7" in lines
    config = lenet300_mnist.get_config("smoke")
    config.train.num_steps = 7
    assert lines == cli.config_lines("config", config)
    assert os.listdir(tmp_path) == []


def test_help_for_an_unknown_command_is_one_line():
    result = _binaries("help", "prune")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("keras-lottery: the first argument must be one "
                           "of lottery, controls, export, report, tune, ")
    assert line.endswith("Received: prune")


def test_a_config_path_that_exists_is_read_as_given(tmp_path):
    # A file of the user's wins over the installed config of that name.
    from binaries import cli

    mine = tmp_path / "configs" / "lenet300_mnist.py"
    mine.parent.mkdir()
    mine.write_text("")
    os.chdir(tmp_path)
    try:
        assert cli.resolve_config("configs/lenet300_mnist.py:smoke") == (
            "configs/lenet300_mnist.py:smoke")
    finally:
        os.chdir(_REPO_ROOT)
    assert cli.resolve_config("lenet300_mnist:smoke") == (
        f"{_REPO_ROOT}/configs/lenet300_mnist.py:smoke")
    assert cli.resolve_config("/elsewhere/lenet300_mnist.py") == (
        "/elsewhere/lenet300_mnist.py")


@pytest.mark.parametrize("argv,environ,wanted", [
    (["lottery"], {}, False),
    (["lottery", "--verbosity=1"], {}, True),
    (["lottery", "-v", "2"], {}, True),
    (["lottery", "--verbosity=0"], {}, False),
    (["lottery"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, True),
    (["lottery"], {"TF_CPP_MIN_LOG_LEVEL": "2"}, False),
])
def test_tensorflow_logs_come_back_when_asked_for(argv, environ, wanted):
    assert quiet.wants_tensorflow_logs(argv, environ) is wanted

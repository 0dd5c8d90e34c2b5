"""benchmarks/vs_open_lth.py: skipped without open_lth; the timing harness
against a stand-in for open_lth.py."""

import os
import subprocess
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.vs_open_lth", *args],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_it_is_skipped_without_open_lth():
    result = _run()
    assert result.returncode == 0
    assert result.stdout.startswith("vs_open_lth: skipped")


def test_a_folder_without_open_lth_is_one_line(tmp_path):
    result = _run(f"--open_lth={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "vs_open_lth: `--open_lth` must be a checkout holding open_lth.py. "
        f"Received: --open_lth={tmp_path}")


def test_both_sides_are_timed_and_the_budget_judged(tmp_path, mnist_dir):
    # A stand-in that exits at once: far faster than any training, so the
    # lottery binary misses the 5x budget and the benchmark exits 1.
    (tmp_path / "open_lth.py").write_text("import sys\nprint(sys.argv[1:])\n")
    result = _run(f"--open_lth={tmp_path}",
                  f"--open_lth_python={sys.executable}", "--steps=100",
                  "--eval_every=100", "--repeats=1", f"--data_dir={mnist_dir}")
    assert result.returncode == 1, result.stderr[-2000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("dense LeNet-300-100, 100 iterations, one thread "
                           "each, best of 1: lottery "), line
    assert line.endswith("(budget >= 5x)")

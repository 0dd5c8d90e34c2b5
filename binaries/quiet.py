"""Hides TensorFlow's start-up and progress noise in the binaries.

TensorFlow prints a dozen lines from C++ when it is imported (oneDNN,
missing CUDA drivers, CPU instructions: most before its logging reads
`TF_CPP_MIN_LOG_LEVEL`, so that variable cannot hide them), a `cuInit`
error on a machine without a GPU, and INFO lines from Python at every
checkpoint and export ("Sharding callback duration", "Writing
fingerprint"). Every binary hides them by default (`binaries/__init__.py`
calls `hide_tensorflow_noise`): TensorFlow's import writes its C++ lines
into a temporary file instead of stderr (replayed if the import fails),
`TF_CPP_MIN_LOG_LEVEL` is set to 3, and TensorFlow's Python modules log
warnings and errors only (an absl filter drops their INFO lines).
TensorFlow is still imported when a binary first needs it, not here.

They are shown, as TensorFlow prints them, with `--verbosity=1` (or
`-v 1`) on any binary's command line, or when `TF_CPP_MIN_LOG_LEVEL` is set
to 0 or 1 in the environment.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence

from absl import logging as absl_logging


def wants_tensorflow_logs(argv: Sequence[str],
                          environ: Mapping[str, str]) -> bool:
    """Whether the user asked for TensorFlow's own logs.

    Args:
        argv: the command line, program name first.
        environ: the environment.

    Returns:
        True for `--verbosity=N` / `-v N` with N >= 1 in `argv`, or
        `TF_CPP_MIN_LOG_LEVEL` set to 0 or 1.
    """
    if environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("0", "1"):
        return True
    args = list(argv[1:])
    for i, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name not in ("--verbosity", "-verbosity", "-v", "--v"):
            continue
        if not equals:
            value = args[i + 1] if i + 1 < len(args) else ""
        try:
            return int(value) >= 1
        except ValueError:
            return False  # absl reports the bad value itself
    return False


def hide_tensorflow_noise(argv: Sequence[str] | None = None) -> None:
    """Hides TensorFlow's noise for this process, unless it was asked for.

    Call before TensorFlow is imported. Does nothing when
    `wants_tensorflow_logs` says the user wants the logs, or when
    TensorFlow is already imported (a test process, say).

    Args:
        argv: the command line; `sys.argv` by default.
    """
    argv = sys.argv if argv is None else argv
    if wants_tensorflow_logs(argv, os.environ):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    absl_logger = absl_logging.get_absl_logger()
    if not any(isinstance(f, _TensorFlowInfo) for f in absl_logger.filters):
        absl_logger.addFilter(_TensorFlowInfo())
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _TensorFlowInfo(logging.Filter):
    """Drops INFO lines that TensorFlow's own modules log through absl."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.WARNING
                or f"{os.sep}tensorflow{os.sep}" not in record.pathname)


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
    """Sends file descriptor 2 to a temporary file; replays it on error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Imports the `tensorflow` package with stderr held back, once."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _HeldLoader(spec.loader)
        return spec


class _HeldLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The package's own loader, for importlib.resources and reloads.
        module.__loader__ = module.__spec__.loader = self._loader
        with _stderr_held():
            self._loader.exec_module(module)

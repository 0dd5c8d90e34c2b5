"""Atomic writes: a reader sees the old file or the whole new one, never half.

Each write goes to a temporary name in the same folder, is flushed to disk,
then renamed over the target (rename is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str, directory: bool = False) -> Iterator[str]:
    """Yields a temporary path; on success renames it to `path`.

    Args:
        path: the final file or folder.
        directory: whether the temporary path is a fresh, empty folder.

    On an exception the temporary path is removed and `path` is untouched.
    A folder replaces an existing `path` only if that is a folder too.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(path)
    if directory:
        tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", dir=parent,
                                   suffix=os.path.splitext(path)[1])
        os.close(fd)
    try:
        yield tmp
        if directory:
            if os.path.isdir(path):
                old = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
                os.rename(path, os.path.join(old, base))
                os.rename(tmp, path)
                shutil.rmtree(old)
            else:
                os.rename(tmp, path)
        else:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        _fsync_dir(parent)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, value: Any) -> None:
    """Writes `value` as indented JSON, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path: str) -> Any:
    """Reads a JSON file, with an error naming the file if it is damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def write_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes `{name: array}` as an .npz file (no pickles), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """Reads an .npz file written by `write_arrays`, refusing pickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable .npz file: {e}") from None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

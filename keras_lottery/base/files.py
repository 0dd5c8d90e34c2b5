"""Atomic writes: a reader sees the old file or the whole new one, never half.

Each write goes to a temporary name in the same folder, is flushed to disk,
then renamed over the target (rename is atomic on POSIX file systems). A
process killed mid-write leaves its temporary (`.<name>.tmp-*`) behind, under
a name nothing reads; `remove_stale` clears those away.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_lottery.base import faults
from keras_lottery.base import paths

# `.<name>.tmp-<random>[suffix]` and `.<name>.old-<random>`, as
# `atomic_path` names its temporaries.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]+"
                        r"(\.[A-Za-z0-9]+)?")


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
        faults.point(f"write:{base}")
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


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def make_output_dir(output: str) -> None:
    """Creates the folder `output` (argument `output`) if missing.

    Raises:
        ValueError: naming `output` if it cannot be created.
    """
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        raise ValueError(f"`output` cannot be written: {e.strerror}. "
                         f"Received: output={output!r}") from None


def read_json(path: str) -> Any:
    """Reads a JSON file, with an error naming the file if it is damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
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


def is_temporary(path: str) -> bool:
    """Whether `path` is, or lies in, a temporary of `atomic_path`."""
    return any(_TEMPORARY.fullmatch(part) for part in path.split(os.sep))


def remove_stale(folder: str) -> list[str]:
    """Removes what writes killed mid-way left in `folder`; not recursive.

    A temporary (`.<name>.tmp-*`) is never complete, whatever it holds, so
    it goes. A folder that `atomic_path` was replacing when it was killed
    (moved aside to `.<name>.old-*/<name>`, the new one not yet renamed
    into place) is moved back first. Call it only where no other process
    writes (see `exclusive`).

    Args:
        folder: the folder to clean; a missing one is left alone.

    Returns:
        The paths removed.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.listdir(folder)):
        match = _TEMPORARY.fullmatch(entry)
        if not match:
            continue
        path = os.path.join(folder, entry)
        if match["kind"] == "old":
            target = os.path.join(folder, match["name"])
            kept = os.path.join(path, match["name"])
            if not os.path.exists(target) and os.path.exists(kept):
                os.rename(kept, target)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """Holds an exclusive lock on the file `path` (created if missing).

    The kernel drops the lock when the process ends, however it ends
    (SIGKILL included), so a killed run never leaves a stale lock behind.

    Raises:
        BlockingIOError: if another process holds the lock.
        OSError: if `path` cannot be created or opened for writing.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def zip_problem(path: str) -> str | None:
    """What is wrong with the .npz or .keras (zip) file `path`, if anything.

    Checks every member's CRC: cheap next to a round's training.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except FileNotFoundError:
        return "it does not exist"
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        return f"not a readable zip archive: {e}"
    return f"member {bad} fails its CRC check" if bad else None


def copy_rounds(source: str, target: str, rounds) -> None:
    """Copies the finished `rounds` of workdir `source` into `target`.

    Each round folder appears whole, by one rename (`atomic_path`), so a
    workdir never holds half a round; rounds `target` has finished already,
    and rounds `source` has not finished, are left out.
    """
    for round_index in rounds:
        if (os.path.exists(paths.metrics_file(target, round_index))
                or not os.path.exists(paths.metrics_file(source,
                                                         round_index))):
            continue
        with atomic_path(paths.round_dir(target, round_index),
                         directory=True) as tmp:
            shutil.copytree(paths.round_dir(source, round_index), tmp,
                            dirs_exist_ok=True)

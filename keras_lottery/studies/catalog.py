"""The studies `keras-lottery study NAME` knows, and a user's own.

NAME is a built-in study (`BUILT_IN`) or `module:function`: a function
that takes an `Options` and returns a `grid.Study`. The records folder
remembers its study (`claim`): a study's records never mix with
another's.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable

from keras_lottery.base import files
from keras_lottery.studies import early
from keras_lottery.studies import grid
from keras_lottery.studies import lenet300
from keras_lottery.studies import mnist1d
from keras_lottery.studies import structure
from keras_lottery.studies import transfer

_MARK = "study.json"


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line says about a study.

    Attributes:
        workdir: the folder of the runs (scratch) and their logs.
        records: the folder of its records; None: the study's default.
        seeds: the seeds; None: the study's default.
        smoke: tiny runs, to try the pipeline (their numbers mean nothing).
        data_dir: the dataset's folder, where a study reads files.
    """
    workdir: str
    records: str | None = None
    seeds: tuple[int, ...] | None = None
    smoke: bool = False
    data_dir: str = ""


def _structure(parts: tuple[str, ...]) -> Callable[[Options], grid.Study]:
    def build(options: Options) -> grid.Study:
        # One name for every part: they share a records folder.
        return structure.study(
            "structure", parts, options.workdir, options.records,
            options.seeds if options.seeds is not None else (0, 1, 2),
            options.data_dir, options.smoke)
    return build


def _early(options: Options) -> grid.Study:
    return early.study(options.workdir, options.records,
                       options.seeds if options.seeds is not None
                       else (0, 1, 2), options.data_dir, options.smoke)


def _lenet300(options: Options) -> grid.Study:
    return lenet300.study(options.workdir, options.records, options.seeds,
                          options.data_dir, options.smoke)


def _mnist1d(options: Options) -> grid.Study:
    return mnist1d.study(options.workdir, options.records, options.seeds,
                         options.smoke)


def _transfer(parts: tuple[str, ...]) -> Callable[[Options], grid.Study]:
    def build(options: Options) -> grid.Study:
        return transfer.study(options.workdir, options.records,
                              options.seeds, options.data_dir,
                              options.smoke, parts)
    return build


BUILT_IN: dict[str, Callable[[Options], grid.Study]] = {
    "lenet300": _lenet300,
    "early": _early,
    "mnist1d": _mnist1d,
    "structure": _structure(("lenet", "conv2", "conv2_long")),
    "structure_lenet": _structure(("lenet",)),
    "structure_conv2": _structure(("conv2",)),
    "structure_conv2_long": _structure(("conv2_long",)),
    # Issue 38: the structure study of a small Vision Transformer
    # (docs/TRANSFORMER.md); its records sit beside the other parts'.
    "transformer": _structure(("vit",)),
    "transfer": _transfer(transfer.PARTS),
    "transfer_mnist1d": _transfer(("mnist1d",)),
}


def load(name: str, options: Options) -> grid.Study:
    """The study NAME (built-in or `module:function`) for `options`.

    Raises ValueError naming NAME when there is no such study, or when
    the function raises or returns no `grid.Study`.
    """
    if name in BUILT_IN:
        return BUILT_IN[name](options)
    module_name, _, function_name = name.partition(":")
    if not module_name or not function_name:
        raise ValueError(
            f"The study must be one of {', '.join(BUILT_IN)} or "
            f"module:function. Received: {name}")
    try:
        function = getattr(importlib.import_module(module_name),
                           function_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"The study {name} cannot be loaded: "
                         f"{type(e).__name__}: {e}") from None
    try:
        study = function(options)
    except Exception as e:  # noqa: BLE001 - the user's function
        raise ValueError(f"The study function {name} raised "
                         f"{type(e).__name__}: {e}") from None
    if not isinstance(study, grid.Study):
        raise ValueError(f"The study function {name} must return a "
                         f"keras_lottery.studies.Study. Received: "
                         f"{type(study).__name__}")
    return study


def check_records(study: grid.Study) -> None:
    """Raises ValueError when the study's records folder holds another
    study's records."""
    path = os.path.join(study.records, _MARK)
    if os.path.exists(path):
        owner = files.read_json(path).get("study")
        if owner != study.name:
            raise ValueError(
                f"`records` holds the records of study {owner}, not "
                f"{study.name}. Received: records={study.records}")


def claim(study: grid.Study) -> None:
    """Marks the records folder as the study's (after `check_records`)."""
    path = os.path.join(study.records, _MARK)
    if not os.path.exists(path):
        os.makedirs(study.records, exist_ok=True)
        files.write_json(path, {"study": study.name})

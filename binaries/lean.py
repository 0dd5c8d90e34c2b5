"""Keeps Keras's import from loading scikit-learn and matplotlib.

When they are installed, importing Keras imports scikit-learn (for
`keras.wrappers`) and `matplotlib.pyplot` (for `keras.visualization`),
about a second of a binary's start-up (`python -X importtime`;
docs/BENCHMARKS.md, "Start-up"), and no binary uses either Keras module.
While the `keras` package itself is being imported, those two imports fail
as if the packages were missing, which Keras handles; afterwards they import
as usual (the report's figures, keras-tuner's Bayesian oracle).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

_SKIPPED = ("sklearn", "matplotlib")


def skip_keras_extras() -> None:
    """Makes the coming `import keras` skip scikit-learn and matplotlib.

    Does nothing once Keras is imported (a test process, say).
    """
    if "keras" not in sys.modules and not any(
            isinstance(f, _KerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImport())


class _KerasImport(importlib.abc.MetaPathFinder):
    """Imports the `keras` package with `_SKIPPED` refused, once."""

    def __init__(self):
        self.loading = False

    def find_spec(self, name, path, target=None):
        if self.loading and name.partition(".")[0] in _SKIPPED:
            raise ImportError(f"{name} is skipped while Keras loads")
        if name != "keras" or self.loading:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, self)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, finder: _KerasImport):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The package's own loader, for importlib.resources and reloads.
        module.__loader__ = module.__spec__.loader = self._loader
        self._finder.loading = True
        try:
            self._loader.exec_module(module)
        finally:
            self._finder.loading = False
            sys.meta_path.remove(self._finder)

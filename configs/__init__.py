"""The experiments' configs, one file each (see configs/base.py).

A package, so that `pip install` carries them: the binaries find one by
name when its path does not exist (`binaries.cli.resolve_config`).
"""

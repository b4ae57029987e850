"""Lazy imports of the optional packages behind the adapters: none is a hard dependency."""

from __future__ import annotations

import importlib

#: adapter class name -> (module to import, pip package name)
PACKAGES = {
    "SortedDictIndex": ("sortedcontainers", "sortedcontainers"),
    "PGMIndex": ("pygm", "pygm"),
    "BTreesIndex": ("BTrees", "BTrees"),
}


def require(module: str, pip_name: str, user: str):
    """Import ``module`` for the adapter ``user``.

    Raises:
        ImportError: the package is missing, with the command that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{user} needs the optional package {pip_name!r}: pip install {pip_name}"
        ) from exc


def importable(module: str) -> bool:
    """True when ``module`` imports (a missing or broken install gives False)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True

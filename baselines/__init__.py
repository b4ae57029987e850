"""Baselines for the learned indexes: strong classic structures and what Python users have today.

Every class implements :class:`learnedidx.KeyValueIndex` exactly as :class:`learnedidx.RMI`
does: ``Cls(keys, values=None, *, assume_sorted=False, copy=True, **options)``, the same
methods and the same errors. Each also has ``key_copy_bytes()``: the bytes of its own copy of
the keys (0 for the array structures), so that the total memory is
``size_in_bytes() + key_copy_bytes()`` on top of the key and value arrays every index holds.

* :class:`BTree`: static cache-optimized B+tree in Numba (the serious opponent).
* :class:`BinarySearch`: Numba branch-free binary search over the keys (the floor).
* :class:`NumpySearchsorted`: ``np.searchsorted`` (what most users call today).
* Optional adapters, importable without their packages, raising ImportError when built
  without them: :class:`SortedDictIndex` (sortedcontainers), :class:`PGMIndex` (pygm),
  :class:`BTreesIndex` (BTrees).

>>> import numpy as np, baselines
>>> t = baselines.BTree(np.array([30, 10, 20], dtype=np.uint64), values=np.array([3, 1, 2]))
>>> t[20], t.lower_bound(15), t.upper_bound([10, 99]).tolist(), t.key_copy_bytes()
(np.int64(2), 1, [1, 3], 0)
"""

from ._optional import PACKAGES, importable
from .binary_search import BinarySearch, NumpySearchsorted
from .btree import BTree
from .btrees import BTreesIndex
from .pgm import PGMIndex
from .sorteddict import SortedDictIndex

#: Every baseline by name, whether or not its optional package is installed.
ALL = {
    "BTree": BTree,
    "BinarySearch": BinarySearch,
    "NumpySearchsorted": NumpySearchsorted,
    "SortedDictIndex": SortedDictIndex,
    "PGMIndex": PGMIndex,
    "BTreesIndex": BTreesIndex,
}


def available_indexes() -> dict:
    """The baselines whose packages import here, by name (a subset of :data:`ALL`, same order)."""
    return {
        name: cls
        for name, cls in ALL.items()
        if name not in PACKAGES or importable(PACKAGES[name][0])
    }


def missing_packages() -> dict:
    """Adapter name -> the ``pip install`` command for each adapter whose package is missing."""
    return {
        name: f"pip install {pip_name}"
        for name, (module, pip_name) in PACKAGES.items()
        if not importable(module)
    }


__all__ = [
    "ALL",
    "BTree",
    "BTreesIndex",
    "BinarySearch",
    "NumpySearchsorted",
    "PGMIndex",
    "SortedDictIndex",
    "available_indexes",
    "missing_packages",
]

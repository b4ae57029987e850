"""`SortedDictIndex`: the keys in a ``sortedcontainers.SortedList``, what pure-Python users reach for."""

from __future__ import annotations

import sys
from itertools import chain

import numpy as np

from learnedidx.toolkit import FIND, RIGHT
from learnedidx.base import KeyValueIndex

from ._common import check_options
from ._optional import require

_SIDES = ("bisect_left", "bisect_right")


def _entry(bisect_left, bisect_right, sl, x, mode):
    """One lookup for a Python number x (the scalar fast path's entry point)."""
    if mode == RIGHT:
        return bisect_right(x)
    r = bisect_left(x)
    if mode == FIND:
        return r if r < len(sl) and sl[r] == x else -1
    return r


class SortedDictIndex(KeyValueIndex):
    """The keys as Python numbers in a ``sortedcontainers.SortedList``, searched with its bisect.

    ``SortedDictIndex(keys, values=None, *, load=1000, assume_sorted=False, copy=True)``

    This is the structure behind ``sortedcontainers.SortedDict`` (whose key list is a SortedList)
    holding every key, duplicates included, so that its ``bisect_left``/``bisect_right`` are
    exactly ``lower_bound``/``upper_bound``; values come from the index's value array. Every
    dtype is supported: integer keys become Python ints, float keys Python floats, which
    compare exactly with each other. Batch calls are a Python loop, as a user would write.

    Args:
        load: the SortedList load factor (sublist length), sortedcontainers' default 1000.

    Lookups cost O(log n) Python-level bisects; building costs O(n) Python objects.

    Memory, measured with ``sys.getsizeof`` on the live structure (computed on the first call
    and cached): :meth:`key_copy_bytes` is the key objects themselves (a Python int or float
    per key, about 28 to 36 bytes); :meth:`size_in_bytes` is everything else: the sublists'
    pointer arrays (8 bytes per key and their spare capacity), the maxima and the positional
    index tree.

    Raises:
        ImportError: sortedcontainers is not installed. TypeError: unknown options.
        ValueError: an invalid option, or invalid keys/values.

    >>> import numpy as np
    >>> s = SortedDictIndex(np.array([5, 1, 5], dtype=np.uint64))
    >>> s.lower_bound(5), s.upper_bound(5), s[1], s.lower_bound(2**70)
    (1, 3, 0, 3)
    """

    name = "SortedDictIndex"

    def _build(self, **options):
        check_options(type(self).__name__, options, ("load",))
        sortedcontainers = require("sortedcontainers", "sortedcontainers", type(self).__name__)
        load = options.get("load", sortedcontainers.SortedList.DEFAULT_LOAD_FACTOR)
        if isinstance(load, bool) or not isinstance(load, (int, np.integer)) or load < 4:
            raise ValueError(f"load must be a whole number >= 4, got {load!r}")
        self.load = int(load)
        sl = sortedcontainers.SortedList()
        sl._reset(self.load)
        sl.update(self._keys.tolist())
        if sl._lists:
            sl._build_index()  # now, not on the first lookup: part of the build and of the size
        self._list = sl
        self._sizes = None

    def _search_scalar(self, q, mode):
        sl = self._list
        return _entry(sl.bisect_left, sl.bisect_right, sl, q.item(), mode)

    def _scalar_kernel(self):
        sl = self._list
        return _entry, sl.bisect_left, sl.bisect_right, sl

    def _search_array(self, queries, mode):
        bisect = getattr(self._list, _SIDES[mode])
        return np.fromiter(map(bisect, queries.tolist()), dtype=np.int64, count=len(queries))

    def _measure(self):
        if self._sizes is None:
            sl = self._list
            lists = sl._lists
            key_objects = sum(map(sys.getsizeof, chain.from_iterable(lists)))
            structure = (
                sys.getsizeof(sl) + sys.getsizeof(sl.__dict__)
                + sys.getsizeof(lists) + sum(map(sys.getsizeof, lists))
                + sys.getsizeof(sl._maxes)
                + sys.getsizeof(sl._index) + sum(map(sys.getsizeof, sl._index))
            )
            self._sizes = (int(structure), int(key_objects))
        return self._sizes

    def size_in_bytes(self) -> int:
        """Bytes of the SortedList without its key objects (see the class docstring)."""
        return self._measure()[0]

    def key_copy_bytes(self) -> int:
        """Bytes of the Python key objects the SortedList holds: its own copy of the keys."""
        return self._measure()[1]

    def _check(self) -> None:
        super()._check()
        sl = self._list
        sl._check()
        assert len(sl) == len(self._keys), f"the SortedList holds {len(sl)} keys, the index {len(self._keys)}"
        assert list(sl) == self._keys.tolist(), "the SortedList holds other keys than the key array"

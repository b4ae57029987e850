"""`BTreesIndex`: the ``BTrees`` package's 64-bit integer B-trees (``pip install BTrees``)."""

from __future__ import annotations

import sys

import numpy as np

from learnedidx.toolkit import FIND, RIGHT
from learnedidx.base import KeyValueIndex

from ._common import check_options
from ._memory import CHeap
from ._optional import require

_CHUNK = 1 << 20  #: pairs handed to ``update`` at a time, to bound the temporary lists


def _entry(tree, n, kmax, x, mode):
    """One lookup for a Python int x within the key dtype (the scalar fast path's entry point)."""
    if mode == FIND:
        return tree.get(x, -1)
    if mode == RIGHT:
        if x >= kmax:
            return n
        x += 1
    try:
        return tree[tree.minKey(x)]
    except ValueError:  # no key >= x
        return n


class BTreesIndex(KeyValueIndex):
    """A ``BTrees`` integer B-tree mapping each distinct key to its first position.

    ``BTreesIndex(keys, values=None, *, assume_sorted=False, copy=True)``

    Unsigned keys go into a ``QQBTree`` (uint64 keys and values), signed keys into an
    ``LLBTree`` (int64). ``lower_bound(q)`` is the position stored under ``tree.minKey(q)``, the
    smallest key ``>= q`` (n when there is none), ``upper_bound(q)`` the same for ``q + 1``, and
    a find is ``tree.get(q)``. Queries are converted to Python ints at the boundary: BTrees
    silently answers None for a ``np.uint64`` lookup. Batch calls are a Python loop, as a user
    would write.

    Float keys raise TypeError: BTrees has integer and object trees only (an ``OOBTree`` of
    Python floats would be another structure). No options.

    Memory is measured during the build: the C arrays of the buckets and inner nodes (BTrees
    calls ``malloc`` directly, invisible to ``tracemalloc``) as the growth of glibc's
    ``mallinfo2()`` bytes in use, plus ``sys.getsizeof`` of the bucket objects.
    :meth:`key_copy_bytes` is the tree's copy of the keys (8 bytes per distinct key);
    :meth:`size_in_bytes` is the rest: stored positions, half-empty buckets after sorted
    inserts, inner nodes, object headers.

    Lookups cost O(log n) C-level comparisons plus Python call overhead; building costs
    O(n log n) inserts.

    Raises:
        ImportError: BTrees is not installed. TypeError: float keys or any option.
        ValueError: invalid keys/values.

    >>> import numpy as np
    >>> b = BTreesIndex(np.array([7, 3, 7], dtype=np.uint64))
    >>> b.lower_bound(7), b.upper_bound(7), b.lower_bound(np.uint64(4)), b[7]
    (1, 3, 1, 1)
    """

    name = "BTreesIndex"
    _native_find = True

    def _build(self, **options):
        check_options(type(self).__name__, options, ())
        keys = self._keys
        if keys.dtype.kind == "f":
            raise TypeError(
                f"BTreesIndex needs integer keys, got {keys.dtype}: BTrees has integer-keyed "
                "trees (QQBTree, LLBTree) and object trees only; use SortedDictIndex or PGMIndex "
                "for float keys"
            )
        require("BTrees", "BTrees", type(self).__name__)
        if keys.dtype.kind == "u":
            from BTrees.QQBTree import QQBTree as Tree
        else:
            from BTrees.LLBTree import LLBTree as Tree
        n = len(keys)
        first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if n else np.zeros(0, np.int64)
        self._kmax = int(np.iinfo(keys.dtype).max)
        tree = Tree()
        with CHeap() as heap:
            for s in range(0, len(first), _CHUNK):
                chunk = first[s:s + _CHUNK]
                tree.update(list(zip(keys[chunk].tolist(), chunk.tolist())))
        self._tree = tree
        self._distinct = len(first)
        objects = sys.getsizeof(tree)
        bucket = tree._firstbucket if len(tree) else None
        while bucket is not None:
            objects += sys.getsizeof(bucket)
            bucket = bucket._next
        self._heap_bytes = heap.grown
        self._object_bytes = objects

    def _search_scalar(self, q, mode):
        return _entry(self._tree, len(self._keys), self._kmax, int(q), mode)

    def _scalar_kernel(self):
        return _entry, self._tree, len(self._keys), self._kmax

    def _search_array(self, queries, mode):
        tree, n, kmax = self._tree, len(self._keys), self._kmax
        qs = queries.tolist()
        return np.fromiter((_entry(tree, n, kmax, x, mode) for x in qs), dtype=np.int64, count=len(qs))

    def size_in_bytes(self) -> int:
        """Bytes of the tree without its copy of the keys (see the class docstring).

        Where glibc's mallinfo2 is unavailable, the C part is estimated as the payload alone
        (16 bytes per distinct key), a lower bound.
        """
        heap = self._heap_bytes if self._heap_bytes is not None else 16 * self._distinct
        return int(max(0, heap - self.key_copy_bytes()) + self._object_bytes)

    def key_copy_bytes(self) -> int:
        """Bytes of the tree's own copy of the keys: 8 per distinct key."""
        return 8 * self._distinct

    def _check(self) -> None:
        super()._check()
        keys, tree = self._keys, self._tree
        tree._check()
        assert len(tree) == self._distinct, f"the tree holds {len(tree)} keys, {self._distinct} are distinct"
        distinct = np.unique(keys)
        assert list(tree.keys()) == distinct.tolist(), "the tree holds other keys than the key array"
        first = np.searchsorted(keys, distinct, side="left")
        assert list(tree.values()) == first.tolist(), "a key maps to another position than its first"

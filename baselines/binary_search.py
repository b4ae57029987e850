"""`BinarySearch` and `NumpySearchsorted`: the sorted array alone, the floor every index must beat."""

from __future__ import annotations

import numpy as np

from learnedidx.toolkit import FIND, address
from learnedidx.base import KeyValueIndex, compile_scalar_entry

from . import _binary_kernels as K
from ._common import PARALLEL_THRESHOLD, check_options, flag, use_threads, whole_number

_SIDES = ("left", "right")


class BinarySearch(KeyValueIndex):
    """The sorted key array searched with a Numba branch-free binary search; no index at all.

    ``BinarySearch(keys, values=None, *, parallel_threshold=16384, interleaved=True,
    assume_sorted=False, copy=True)``

    Every lookup costs ``ceil(log2(n + 1))`` dependent reads of the key array, each a
    conditional move, so no branch mispredicts but one cache miss per step once the array
    outgrows the caches. Batch calls walk 32 lookups in lock-step, level by level, prefetching
    each lookup's next probe, so up to 32 of those misses are in flight at once; they run on
    every thread from ``parallel_threshold`` queries on. Building costs nothing beyond sorting.

    Group size and what to prefetch were measured on 1M random present lookups in lognormal
    uint64 keys (``python -m bench.kernels binary --n 100M --threads 1``, and ``--n 10M``,
    ``--threads 2``; ns/lookup, median of 5-7 rounds alternating the kernels)::

        keys   threads   plain loop   x8    x16   x32   x64   both candidates 2 ahead, x32
        10M    1            889       290   241   230   232   300
        10M    2            467       162   131   124   120   158
        100M   1           1890       452   370   366   358   455
        100M   2            840       231   188   170   167   238

    x32 was 3.8-5.2x faster than the plain loop (4.1-4.9x in a second run on a more loaded
    machine); 16-64 are within noise of each other. Prefetching the one probe a lookup reads
    next beat prefetching both candidates of the level after it (twice the prefetches, half
    of them wasted).

    Args:
        parallel_threshold: batches of at least this many queries use every Numba thread.
        interleaved: lock-step batches with prefetch (True) or one lookup after another
            (False; what the bench's loop mode times). Never changes an answer.

    Complexity: O(log n) per lookup, O(m log n) per batch of m.

    Raises:
        TypeError: unknown options, or ``interleaved`` not a bool. ValueError: an invalid
            option, or invalid keys/values.

    >>> import numpy as np
    >>> b = BinarySearch(np.array([1.5, 2.5, 2.5]))
    >>> b.lower_bound(2.5), b.upper_bound(2.5), b.lower_bound(2), 3 in b
    (1, 3, 1, False)
    """

    name = "BinarySearch"
    _native_find = True
    batch_variant = f"interleaved x{K.GROUP} + prefetch"

    def _build(self, **options):
        check_options(type(self).__name__, options, ("parallel_threshold", "interleaved"))
        self.parallel_threshold = whole_number(
            "parallel_threshold", options.get("parallel_threshold", PARALLEL_THRESHOLD), 1
        )
        self.interleaved = flag("interleaved", options.get("interleaved", True))
        if not self.interleaved:
            self.batch_variant = "loop"

    def _search_array(self, queries, mode):
        if not self.interleaved:
            return self._search_loop(queries, mode)
        out = np.empty(len(queries), dtype=np.int64)
        if use_threads(len(queries), self.parallel_threshold):
            K.lookup_batch_interleaved_parallel(self._keys, queries, out, mode, K.GROUP)
        else:
            K.lookup_batch_interleaved(self._keys, queries, out, mode, K.GROUP)
        return out

    def _search_loop(self, queries, mode):
        """One binary search after another (no lock-step, no prefetch), on every Numba thread
        from ``parallel_threshold`` queries as the batch path. O(m log n)."""
        out = np.empty(len(queries), dtype=np.int64)
        if use_threads(len(queries), self.parallel_threshold):
            K.lookup_batch_parallel(self._keys, queries, out, mode)
        else:
            K.lookup_batch(self._keys, queries, out, mode)
        return out

    def _scalar_kernel(self):
        args = (address(self._keys), len(self._keys), 0)
        return (compile_scalar_entry(K.lookup_scalar_at, *args, self._keys.dtype), *args)

    def size_in_bytes(self) -> int:
        """No structure beyond the key array: 0."""
        return 0

    def key_copy_bytes(self) -> int:
        """Bytes of keys copied beyond the key array: none."""
        return 0


def _searchsorted_entry(keys, scalar, unused, q, mode):
    """One ``keys.searchsorted`` call (``np.searchsorted`` less its dispatch) on q as a scalar of
    the key dtype: a Python int would be compared as float64 against uint64 keys, inexactly."""
    q = scalar(q)
    if mode == FIND:
        i = int(keys.searchsorted(q, side="left"))
        return i if i < len(keys) and keys[i] == q else -1
    return int(keys.searchsorted(q, side=_SIDES[mode]))


class NumpySearchsorted(KeyValueIndex):
    """The sorted key array searched with ``np.searchsorted``: what most Python users call today.

    ``NumpySearchsorted(keys, values=None, *, assume_sorted=False, copy=True)``

    Batch lookups are one ``np.searchsorted`` call (single-threaded, O(m log n)); a scalar
    lookup is one ``np.searchsorted`` call on a numpy scalar of the key dtype. No options.

    Raises:
        TypeError: any option. ValueError: invalid keys/values.

    >>> import numpy as np
    >>> s = NumpySearchsorted(np.array([3, 1, 2], dtype=np.int32))
    >>> s.lower_bound(2), s.upper_bound([1, 9]).tolist(), s[3]
    (1, [1, 3], 2)
    """

    name = "NumpySearchsorted"

    def _search_array(self, queries, mode):
        return np.searchsorted(self._keys, queries, side=_SIDES[mode]).astype(np.int64, copy=False)

    def _search_scalar(self, q, mode):
        return _searchsorted_entry(self._keys, q.dtype.type, None, q, mode)

    def _scalar_kernel(self):
        return _searchsorted_entry, self._keys, self._keys.dtype.type, None

    def size_in_bytes(self) -> int:
        """No structure beyond the key array: 0."""
        return 0

    def key_copy_bytes(self) -> int:
        """Bytes of keys copied beyond the key array: none."""
        return 0

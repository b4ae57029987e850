"""`PGMIndex`: PyGM (``pip install pygm``), the Python binding of the PGM-index, as an adapter."""

from __future__ import annotations

import struct
import weakref
from bisect import bisect_right

import numpy as np

from learnedidx.toolkit import FIND, NOT_FOUND, RIGHT
from learnedidx.base import KeyValueIndex

from ._common import check_options, whole_number
from ._optional import require

#: Largest key span (in ordinals) handed to one PyGM index; see the class docstring.
MAX_SPAN = 1 << 53
_SIGN64 = 1 << 63
_MAX_EPSILON = 1 << 32


def ordinals(arr: np.ndarray) -> np.ndarray:
    """Order- and equality-preserving map of keys to uint64 *ordinals* (a new array).

    Unsigned ints map to themselves; signed ints are shifted by 2**63; floats map to their
    IEEE bit pattern with the sign bit flipped (all bits flipped when negative), after -0.0
    becomes 0.0 so that the two zeros stay equal. float32 uses its 32-bit pattern.
    """
    kind = arr.dtype.kind
    if kind == "u":
        return arr.astype(np.uint64)
    if kind == "i":
        return arr.astype(np.int64).view(np.uint64) ^ np.uint64(_SIGN64)
    uint = np.uint32 if arr.dtype.itemsize == 4 else np.uint64
    bits = (arr + arr.dtype.type(0.0)).view(uint)
    sign = uint(1) << uint(8 * arr.dtype.itemsize - 1)
    return np.where(bits & sign, ~bits, bits | sign).astype(np.uint64)


def _scalar_ordinal(dtype: np.dtype):
    """The scalar version of :func:`ordinals` for one dtype, on Python numbers."""
    if dtype.kind == "u":
        return int
    if dtype.kind == "i":
        return lambda x: int(x) + _SIGN64
    fmt, ufmt, width = ("<f", "<I", 32) if dtype.itemsize == 4 else ("<d", "<Q", 64)
    sign = 1 << (width - 1)
    full = (1 << width) - 1

    def ordinal(x):
        (bits,) = struct.unpack(ufmt, struct.pack(fmt, float(x) + 0.0))
        return (~bits & full) if bits & sign else (bits | sign)

    return ordinal


def _entry(index_ref, unused_a, unused_b, x, mode):
    """The scalar fast path's entry point: the index's ``_search_number(x, mode)`` for a Python
    number x. The index is held by weak reference: only the index itself holds this entry (a
    bound method would make it a reference cycle, freed only by the cycle collector)."""
    return index_ref()._search_number(x, mode)


class PGMIndex(KeyValueIndex):
    """PyGM's PGM-index (``pygm.SortedList``) over the keys, searched with its bisect.

    ``PGMIndex(keys, values=None, *, epsilon=64, assume_sorted=False, copy=True)``

    Every dtype is supported, through a conversion that keeps PyGM exact. PyGM 1.0.1 (current on
    PyPI) answers wrongly or crashes the interpreter on some inputs (found while writing this
    adapter; ``tests/test_baselines.py`` tests the adapter on each):

    * keys spanning more than about 2**54 (its models lose precision): wrong positions;
    * a query above the largest key can get a wrong position;
    * a query equal to the dtype's largest value (its sentinel): segmentation fault;
    * infinite float keys: ``MemoryError`` while building; ``epsilon=0``: floating point crash.

    So the adapter maps every key to a uint64 *ordinal* (:func:`ordinals`: an order-preserving
    shift for integers, the IEEE bit pattern for floats), cuts the sorted ordinals into parts
    spanning at most 2**53, and builds one uint64 PyGM ``SortedList`` per part over the offsets
    from the part's first ordinal. Queries outside a part's keys are answered by the adapter;
    PyGM only sees queries between a part's first and last key, where it was found exact. Integer key sets spanning less than 2**53 (the benchmark's) are one part, and
    PyGM then models the keys themselves; float keys are modelled in ordinal space, where a
    binade is 2**52 ordinals wide.

    Args:
        epsilon: PyGM's error bound (its default 64): larger means fewer segments, longer
            last-mile searches. Never changes an answer.

    Lookups cost O(log parts + PGM search); batch calls are a Python loop over PyGM's bisect,
    as a user would write. Memory comes from PyGM's own ``stats()``: :meth:`size_in_bytes` is
    the segments (``'index size'``), :meth:`key_copy_bytes` the copy of the keys every PyGM
    ``SortedList`` keeps (``'data size'``, 8 bytes per key here).

    Raises:
        ImportError: pygm is not installed. TypeError: unknown options.
        ValueError: an invalid epsilon, or invalid keys/values.

    >>> import numpy as np
    >>> p = PGMIndex(np.array([-5, 3, 3, 9], dtype=np.int64), epsilon=8)
    >>> p.lower_bound(3), p.upper_bound(3), p.lower_bound(2**63), p.parts
    (1, 3, 4, 1)
    """

    name = "PGMIndex"

    def _build(self, **options):
        check_options(type(self).__name__, options, ("epsilon",))
        pygm = require("pygm", "pygm", type(self).__name__)
        self.epsilon = whole_number("epsilon", options.get("epsilon", 64), 1, _MAX_EPSILON)
        keys = self._keys
        ords = ordinals(keys)
        n = len(ords)
        self._ordinal = _scalar_ordinal(keys.dtype)
        starts, bases, spans, lists = [], [], [], []
        s = 0
        while s < n:
            base = int(ords[s])
            e = n if base > (1 << 64) - 1 - MAX_SPAN else int(
                np.searchsorted(ords, np.uint64(base + MAX_SPAN), side="right")
            )
            offsets = ords[s:e] - np.uint64(base)
            starts.append(s)
            bases.append(base)
            spans.append(int(offsets[-1]))
            # No typecode: PyGM reads the buffer's (uint64) format, 2-3x faster than iterating.
            lists.append(pygm.SortedList(offsets, epsilon=self.epsilon))
            s = e
        self._starts, self._bases, self._spans, self._lists = starts, bases, spans, lists
        self._ends = starts[1:] + [n]

    @property
    def parts(self) -> int:
        """Number of PyGM indexes the keys were cut into (1 unless they span more than 2**53)."""
        return len(self._lists)

    def _part(self, x):
        """``(part, offset)`` for ordinal x, or ``(-1, answer)`` when x lies outside the parts' keys."""
        p = bisect_right(self._bases, x) - 1
        if p < 0:
            return -1, 0
        off = x - self._bases[p]
        if off > self._spans[p]:
            return -1, self._ends[p]
        return p, off

    def _search_scalar(self, q, mode):
        return self._search_number(q.item(), mode)

    def _scalar_kernel(self):
        return _entry, weakref.ref(self), None, None

    def _search_number(self, x, mode):
        """One lookup for a Python number x of the key dtype's range."""
        if not self._lists:
            return NOT_FOUND if mode == FIND else 0
        p, off = self._part(self._ordinal(x))
        if mode == FIND:
            if p < 0:
                return -1
            r = self._starts[p] + self._lists[p].bisect_left(off)
            return r if self._keys[r] == x else -1
        if p < 0:
            return off
        part = self._lists[p]
        return self._starts[p] + (part.bisect_right(off) if mode == RIGHT else part.bisect_left(off))

    def _search_array(self, queries, mode):
        out = np.zeros(len(queries), dtype=np.int64)
        if not self._lists:
            return out
        ords = ordinals(queries)
        which = np.searchsorted(np.array(self._bases, dtype=np.uint64), ords, side="right") - 1
        side = "bisect_right" if mode == RIGHT else "bisect_left"
        for p in np.unique(which).tolist():
            if p < 0:
                continue  # below every key: 0
            mine = np.flatnonzero(which == p)
            off = ords[mine] - np.uint64(self._bases[p])
            above = off > np.uint64(self._spans[p])
            out[mine[above]] = self._ends[p]
            inside = mine[~above]
            bisect = getattr(self._lists[p], side)
            found = np.fromiter(map(bisect, off[~above].tolist()), dtype=np.int64, count=len(inside))
            out[inside] = self._starts[p] + found
        return out

    def size_in_bytes(self) -> int:
        """Bytes of PyGM's segments, from its ``stats()['index size']``, over every part."""
        return int(sum(part.stats()["index size"] for part in self._lists))

    def key_copy_bytes(self) -> int:
        """Bytes of PyGM's own copy of the keys, from its ``stats()['data size']``."""
        return int(sum(part.stats()["data size"] for part in self._lists))

    def _check(self) -> None:
        super()._check()
        keys = self._keys
        ords = ordinals(keys)
        assert len(ords) < 2 or bool((ords[1:] >= ords[:-1]).all()), "ordinals are not sorted"
        assert sum(len(part) for part in self._lists) == len(keys), "the parts do not hold every key"
        for p, part in enumerate(self._lists):
            assert part.stats()["typecode"] in "LQN", f"part {p} is not a uint64 PyGM index"
            s, e, base = self._starts[p], self._ends[p], self._bases[p]
            assert int(ords[s]) == base and self._spans[p] == int(ords[e - 1]) - base <= MAX_SPAN, (
                f"part {p} does not span its keys' ordinals"
            )
            assert p == 0 or base - self._bases[p - 1] > MAX_SPAN, f"part {p} could have joined part {p - 1}"
            offsets = (ords[s:e] - np.uint64(base)).tolist()
            lb = np.searchsorted(offsets, offsets, side="left")
            ub = np.searchsorted(offsets, offsets, side="right")
            got_lb = [part.bisect_left(x) for x in offsets]
            got_ub = [part.bisect_right(x) for x in offsets]
            assert got_lb == lb.tolist() and got_ub == ub.tolist(), f"PyGM part {p} misplaces one of its keys"

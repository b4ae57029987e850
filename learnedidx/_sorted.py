"""Batches of queries that arrive sorted: galloping from the previous answer (pure Numba).

When ``q[i - 1] <= q[i]``, the answer for ``q[i]`` is at or after the answer for ``q[i - 1]``:
every key before that answer lies before ``q[i - 1]``, hence before ``q[i]``. So each lookup
starts from the previous answer p: when the answer lies within the next ``WIDTH`` keys, a
branch-free count of those keys (SIMD compares, no mispredicted branch however far the
answer moved); otherwise it gallops right from ``p + WIDTH`` (probes at +0, +2, +6, +14, ...,
then a binary search in the last gap). O(log d) reads for an answer d positions further,
mostly in cache lines the previous lookups already brought in, instead of O(log n) scattered
reads. Unsorted batches are never sorted here: :func:`is_sorted` gives up at the first descent.

Measured on 10M lognormal uint64 keys, one thread, sorted present queries (ns/lookup, median
of 5): galloping alone 35 / 60 / 75 ns at n/m = 1 / 4 / 16, with a first count over 8 keys
10 / 31 / 49, over 16 keys 14 / 23 / 47 (``WIDTH``).

``mode``: 0 lower_bound, 1 upper_bound, 2 find (position of the first equal key, or -1), as in
:mod:`learnedidx._search`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._intrinsics import LEAN_JIT
from ._modes import FIND, RIGHT
from ._search import ZERO, before, binary_search, finish, gallop_right

WIDTH = 16  #: keys counted branch-free after the previous answer before galloping

_JIT = dict(nogil=True, cache=True)


@njit(**LEAN_JIT)
def is_sorted(values) -> bool:
    """True when ``values`` never decreases. O(m), stops at the first descent (random batches:
    after a couple of elements)."""
    for i in range(1, values.shape[0]):
        if values[i] < values[i - 1]:
            return False
    return True


@njit(inline="always", **_JIT)
def _gallop(keys, queries, out, start, stop, right):
    """``out[i]`` = first position not before ``queries[i]`` for sorted ``queries[start:stop]``."""
    n = keys.shape[0]
    p = binary_search(keys, queries[start], 0, n, right)
    out[start] = p
    for i in range(start + 1, stop):
        q = queries[i]
        if p + WIDTH <= n and not before(keys[p + WIDTH - 1], q, right):
            c = 0
            for k in range(WIDTH):  # unsigned index: no wraparound check, so LLVM vectorizes
                c += before(keys[np.uint64(p + k)], q, right)
            p += c
        else:
            p = gallop_right(keys, q, p + WIDTH if p + WIDTH <= n else p, n, right)
        out[i] = p


@njit(**LEAN_JIT)
def _sorted_range(keys, queries, out, start, stop, mode):
    if start >= stop:
        return
    if mode == RIGHT:
        _gallop(keys, queries, out, start, stop, True)
    else:
        _gallop(keys, queries, out, start, stop, False)
        if mode == FIND:
            for i in range(start, stop):
                out[i] = finish(keys, queries[i], out[i], 2)


@njit(**LEAN_JIT)
def search_sorted(keys, queries, out, mode):
    """Answers for non-decreasing ``queries`` (not checked) into ``out``, in one thread.

    Complexity: O(log n + sum of log(d_i + 1)) for answers d_i apart: O(m + log n) when the
    queries are as dense as the keys, O(m log(n / m)) at most.
    """
    _sorted_range(keys, queries, out, ZERO, queries.shape[0], mode)

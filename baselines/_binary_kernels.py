"""Branch-free binary search over the whole sorted key array (pure Numba over plain arrays).

The floor every index must beat: no structure at all, ``ceil(log2(n + 1))`` dependent reads per
lookup, each a conditional move (:func:`learnedidx._search.binary_search`).
"""

from __future__ import annotations

from numba import carray, njit, prange

from learnedidx._pointers import ptr_like
from learnedidx._search import binary_search, finish

CHUNK = 4096  #: queries per parallel task

_JIT = dict(nogil=True, cache=True)


@njit(inline="always", **_JIT)
def lookup_one(keys, q, mode):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1)."""
    n = keys.shape[0]
    if mode == 1:
        return binary_search(keys, q, 0, n, True)
    return finish(keys, q, binary_search(keys, q, 0, n, False), mode)


@njit(**_JIT)
def lookup_scalar_at(keys_address, n, unused, q, mode):
    """:func:`lookup_one` over the n keys at ``keys_address`` (see :mod:`learnedidx._pointers`);
    ``unused`` pads the three-argument scalar entry. Complexity O(log n)."""
    return lookup_one(carray(ptr_like(keys_address, q), n), q, mode)


@njit(**_JIT)
def lookup_batch(keys, queries, out, mode):
    """``out[i] = lookup_one(queries[i])`` in one thread. Complexity O(m log n)."""
    for i in range(queries.shape[0]):
        out[i] = lookup_one(keys, queries[i], mode)


@njit(parallel=True, **_JIT)
def lookup_batch_parallel(keys, queries, out, mode):
    """:func:`lookup_batch` split into contiguous chunks over the Numba thread pool."""
    m = queries.shape[0]
    for c in prange((m + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(m, (c + 1) * CHUNK)):
            out[i] = lookup_one(keys, queries[i], mode)

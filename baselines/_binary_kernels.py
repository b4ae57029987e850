"""Branch-free binary search over the whole sorted key array (pure Numba over plain arrays).

The floor every index must beat: no structure at all, ``ceil(log2(n + 1))`` dependent reads per
lookup, each a conditional move (:func:`learnedidx._search.binary_search`).

The batch kernels walk ``GROUP`` lookups in lock-step, level by level: a branch-free search
over ``[0, n)`` halves the same length for every query, so the whole group is at the same
level at the same time. Once a lookup has taken its step, its next probe is known and is
prefetched; the other lookups of the group take their steps while it arrives.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange

from learnedidx.toolkit import FIND, LEAN_JIT, RIGHT, before, binary_search, finish, prefetch, ptr_like, select_unpredictable

CHUNK = 4096  #: queries per parallel task
GROUP = 32  #: lookups walked in lock-step by the interleaved kernels

_JIT = dict(nogil=True, cache=True)


@njit(inline="always", **_JIT)
def lookup_one(keys, q, mode):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1)."""
    n = keys.shape[0]
    if mode == RIGHT:
        return binary_search(keys, q, 0, n, True)
    return finish(keys, q, binary_search(keys, q, 0, n, False), mode)


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def lookup_scalar_at(keys_address, n, unused, q, mode):
    """:func:`lookup_one` over the n keys at ``keys_address`` (see :mod:`learnedidx._pointers`);
    ``unused`` pads the three-argument scalar entry. Complexity O(log n)."""
    return lookup_one(carray(ptr_like(keys_address, q), n), q, mode)


@njit(**LEAN_JIT)
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


@njit(inline="always", **_JIT)
def _walk(keys, queries, out, start, stop, right, bases, targets):
    """``out[i]`` = first position not before ``queries[i]``, for ``start <= i < stop``, with
    ``len(bases)`` lookups in lock-step; ``bases``/``targets`` are the group's scratch."""
    n = keys.shape[0]
    group = bases.shape[0]
    for first in range(start, stop, group):
        size = min(group, stop - first)
        for g in range(size):
            bases[g] = 0
            targets[g] = queries[first + g]
        length = n
        while length > 1:
            half = length >> 1
            length -= half
            ahead = length >> 1  # the next level's offset from the new base
            for g in range(size):
                b = bases[g]
                b = select_unpredictable(before(keys[b + half], targets[g], right), b + half, b)
                bases[g] = b
                prefetch(keys, b + ahead)
        for g in range(size):
            b = bases[g]
            if length == 1:
                b = select_unpredictable(before(keys[b], targets[g], right), b + 1, b)
            out[first + g] = b


@njit(**LEAN_JIT)
def _walk_range(keys, queries, out, start, stop, mode, bases, targets):
    """:func:`lookup_one` for ``queries[start:stop]``, ``len(bases)`` lookups in lock-step."""
    if mode == RIGHT:
        _walk(keys, queries, out, start, stop, True, bases, targets)
    else:
        _walk(keys, queries, out, start, stop, False, bases, targets)
        if mode == FIND:
            for i in range(start, stop):
                out[i] = finish(keys, queries[i], out[i], 2)


@njit(**_JIT)
def _interleaved_range(keys, queries, out, start, stop, mode, group):
    """:func:`_walk_range` with its scratch (a kernel that allocates keeps reference counting)."""
    _walk_range(keys, queries, out, start, stop, mode, np.empty(group, dtype=np.int64),
                np.empty(group, dtype=queries.dtype))


@njit(**_JIT)
def lookup_batch_interleaved(keys, queries, out, mode, group):
    """:func:`lookup_batch` with ``group`` (>= 1) lookups in lock-step and prefetched probes.

    Same answers; same O(m log n) work, but up to ``group`` cache misses in flight at once.
    """
    _interleaved_range(keys, queries, out, 0, queries.shape[0], mode, group)


@njit(parallel=True, **_JIT)
def lookup_batch_interleaved_parallel(keys, queries, out, mode, group):
    """:func:`lookup_batch_interleaved` split into contiguous chunks over the Numba thread pool."""
    m = queries.shape[0]
    for c in prange((m + CHUNK - 1) // CHUNK):
        _interleaved_range(keys, queries, out, c * CHUNK, min(m, (c + 1) * CHUNK), mode, group)

"""Static B+tree over a sorted key array: build and lookup kernels (pure Numba over plain arrays).

The leaves are the sorted key array itself, cut into *blocks* of ``B`` keys (the last block may
be shorter). Above them sit ``L`` inner levels, stored top first in one array ``inner``:

* the bottom inner level holds, for every leaf block, its largest key (``keys[(j+1)B - 1]``);
* each level above holds the largest entry of every node (``B`` consecutive entries) below it;
* the top level fits in one node. Every level is padded to whole nodes with the largest key.

``meta`` (int64): ``[B, L, n, len(inner), start_0, ..., start_{L-1}, last_0, ..., last_{L-1}]``:
where level l starts in ``inner`` (level 0 is the root) and the index of its last real entry.

Every level, the leaves included, is a sorted array, and the levels obey one rule: entry j of a
level is the maximum of node j below. So the number of entries of a level that are ``< q`` is
the index of the node below that holds ``lower_bound(q)``: all nodes before it lie wholly
below q, and its maximum does not. Duplicates spanning many nodes need no special case. A
query above every key counts padding too; clamping the child to the level's last real entry
sends it to the last leaf block, whose search then answers n.

``upper_bound(q)`` (side="right") is ``lower_bound`` of q's successor in the key dtype (q + 1,
or the next float): no key lies strictly between the two, so this is exact, duplicates
included, and every search runs the same ``<`` descent. The dtype's largest value answers n.

Lookups read ``L`` nodes of ``B`` keys and one leaf block: ``ceil(log_B(n))`` groups of cache
lines instead of the ``log2(n)`` scattered reads of a binary search. Batch lookups walk groups
of queries level by level in lockstep and prefetch each query's next node, so the cache misses
of a group overlap.

Measured choices (lognormal uint64 keys, 10M-100M, see ``baselines/README.md``): the SIMD
count in a node beat a branch-free binary search over the node by 1.5-2x; counting in full
leaf blocks beat binary searching them by about 25%; walking 32 queries in lockstep with
prefetches made batches 3-5x faster than one query at a time (16 or 64 were not better).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from learnedidx.toolkit import LEAN_JIT, RIGHT, binary_search, finish, prefetch, ptr_like

META_B = 0  #: slot of the node size B in ``meta``
META_LEVELS = 1  #: slot of the number of inner levels L
META_KEYS = 2  #: slot of the number of keys n
META_INNER = 3  #: slot of the length of ``inner``
META_HEADER = 4  #: first slot of the level starts

CACHE_LINE = 64  #: bytes; inner nodes start on a line boundary
INTERLEAVE = 32  #: queries walked in lockstep by the batch kernels (measured: see above)
CHUNK = 4096  #: queries per parallel task

_JIT = dict(nogil=True, cache=True)


def level_sizes(n: int, node_keys: int) -> list:
    """Number of entries of each inner level, root first, for n keys and nodes of ``node_keys``."""
    sizes = []
    count = -(-n // node_keys)  # leaf blocks
    while count > 1:
        sizes.append(count)
        count = -(-count // node_keys)
    return sizes[::-1]


def build(keys: np.ndarray, node_keys: int):
    """``(inner, meta)`` of the B+tree over sorted ``keys``. Complexity O(n / B) time and memory.

    ``inner`` starts on a cache line so that every node of 8-byte keys covers whole lines.
    """
    n = len(keys)
    sizes = level_sizes(n, node_keys)
    padded = [-(-m // node_keys) * node_keys for m in sizes]
    total = sum(padded)
    itemsize = keys.dtype.itemsize
    raw = np.empty(total + CACHE_LINE // itemsize, dtype=keys.dtype)
    skip = (-raw.ctypes.data % CACHE_LINE) // itemsize
    inner = raw[skip:skip + total]
    levels = len(sizes)
    meta = np.zeros(META_HEADER + 2 * levels, dtype=np.int64)
    meta[META_B] = node_keys
    meta[META_LEVELS] = levels
    meta[META_KEYS] = n
    meta[META_INNER] = total
    starts = np.concatenate(([0], np.cumsum(padded)[:-1])).astype(np.int64) if levels else []
    if levels:
        inner[:] = keys[n - 1]
    below = keys
    for lvl in range(levels - 1, -1, -1):  # bottom up: each level summarizes the one below
        m = sizes[lvl]
        last_of_node = np.minimum(np.arange(1, m + 1, dtype=np.int64) * node_keys, len(below)) - 1
        start = int(starts[lvl])
        inner[start:start + m] = below[last_of_node]
        below = inner[start:start + m]
        meta[META_HEADER + lvl] = start
        meta[META_HEADER + levels + lvl] = m - 1
    inner.flags.writeable = False
    return inner, meta


def successor(q):
    """``(True, s)`` with s the smallest value of q's type above q, or ``(False, q)`` at the top."""


@overload(successor, jit_options=_JIT)
def _successor_impl(q):
    if isinstance(q, types.Integer):
        cast = as_dtype(q).type
        top = cast(np.iinfo(as_dtype(q)).max)
        one = cast(1)

        def impl(q):
            if q == top:
                return False, q
            return True, cast(q + one)

        return impl
    if isinstance(q, types.Float):
        cast = as_dtype(q).type
        inf = cast(np.inf)

        def impl(q):
            if q == inf:
                return False, q
            return True, cast(np.nextafter(q, inf))

        return impl
    return None


@njit(inline="always", **_JIT)
def count_below(arr, base, length, q):
    """How many of ``arr[base:base + length]`` are ``< q``: branch-free and vectorized.

    The loop's trip count is a runtime value, so LLVM's loop vectorizer (rather than full
    unrolling) handles it: 16 comparisons per iteration in SIMD registers, a scalar tail.
    Unsigned indices spare Numba's negative-index wraparound, which blocks vectorization.
    """
    c = 0
    for i in range(length):
        c += arr[np.uint64(base + i)] < q
    return c


@njit(inline="always", **_JIT)
def descend(inner, meta, q):
    """Index of the leaf block that holds ``lower_bound(q)``. Complexity O(L * B)."""
    node_keys = meta[META_B]
    levels = meta[META_LEVELS]
    j = 0
    for lvl in range(levels):
        base = meta[META_HEADER + lvl] + j * node_keys
        j = min(j * node_keys + count_below(inner, base, node_keys, q), meta[META_HEADER + levels + lvl])
    return j


@njit(inline="always", **_JIT)
def search_leaf(keys, q, block, node_keys):
    """``lower_bound(q)`` inside leaf block ``block``: the same SIMD count over a full block
    (measured faster than the ``log2 B`` dependent probes of a binary search), a branch-free
    binary search over the shorter last block."""
    lo = block * node_keys
    hi = min(lo + node_keys, keys.shape[0])
    if hi - lo == node_keys:
        return lo + count_below(keys, lo, node_keys, q)
    return binary_search(keys, q, lo, hi, False)


@njit(**LEAN_JIT)
def lookup_scalar(inner, meta, keys, q, mode):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1).

    Complexity O(L * B + B).
    """
    if mode == RIGHT:
        ok, q = successor(q)
        if not ok:
            return keys.shape[0]
    r = search_leaf(keys, q, descend(inner, meta, q), meta[META_B])
    return r if mode == RIGHT else finish(keys, q, r, mode)


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def lookup_scalar_at(inner_address, meta_address, keys_address, q, mode):
    """:func:`lookup_scalar` over arrays given by address (see :mod:`learnedidx._pointers`).

    The lengths come from ``meta`` itself; the caller keeps the three arrays alive.
    """
    header = carray(ptr_like(meta_address, np.int64(0)), META_HEADER)
    meta = carray(ptr_like(meta_address, np.int64(0)), META_HEADER + 2 * header[META_LEVELS])
    inner = carray(ptr_like(inner_address, q), header[META_INNER])
    keys = carray(ptr_like(keys_address, q), header[META_KEYS])
    return lookup_scalar(inner, meta, keys, q, mode)


@njit(inline="always", **_JIT)
def prefetch_span(arr, start, length):
    """Prefetch every cache line of ``arr[start:start + length]`` (length >= 1)."""
    step = max(1, CACHE_LINE // arr.itemsize)
    for k in range(0, length, step):
        prefetch(arr, start + k)
    prefetch(arr, start + length - 1)


@njit(**LEAN_JIT)
def lookup_range(inner, meta, keys, queries, out, start, stop, mode, targets, blocks):
    """``out[i]`` for ``start <= i < stop``, walking groups of ``INTERLEAVE`` queries level by
    level in lockstep.

    After a query picks its child at one level, the child's node (or leaf block) is prefetched;
    by the time the walk comes back to that query, the other queries' loads have overlapped
    with it. ``targets`` and ``blocks`` (INTERLEAVE each) are the group's scratch.
    """
    node_keys = meta[META_B]
    levels = meta[META_LEVELS]
    n = keys.shape[0]
    for group in range(start, stop, INTERLEAVE):
        size = min(INTERLEAVE, stop - group)
        for g in range(size):
            q = queries[np.uint64(group + g)]
            if mode == RIGHT:
                ok, q = successor(q)
                if not ok:
                    out[np.uint64(group + g)] = n  # nothing lies above the dtype's largest value
            targets[np.uint64(g)] = q
            blocks[np.uint64(g)] = 0
        for lvl in range(levels):
            base = meta[META_HEADER + lvl]
            last = meta[META_HEADER + levels + lvl]
            below = meta[META_HEADER + lvl + 1] if lvl + 1 < levels else 0
            for g in range(size):
                j = blocks[np.uint64(g)]
                j = min(j * node_keys + count_below(inner, base + j * node_keys, node_keys, targets[np.uint64(g)]),
                        last)
                blocks[np.uint64(g)] = j
                if lvl + 1 < levels:
                    prefetch_span(inner, below + j * node_keys, node_keys)
                else:
                    lo = j * node_keys
                    prefetch_span(keys, lo, min(node_keys, n - lo))
        for g in range(size):
            i = np.uint64(group + g)
            q = queries[i]
            target = targets[np.uint64(g)]
            if mode == RIGHT and target == q:
                continue  # q had no successor: out[i] is n already
            r = search_leaf(keys, target, blocks[np.uint64(g)], node_keys)
            out[i] = r if mode == RIGHT else finish(keys, q, r, mode)


@njit(inline="always", **_JIT)
def _scratch(queries):
    """The scratch of :func:`lookup_range`: ``(targets, blocks)``."""
    return np.empty(INTERLEAVE, dtype=queries.dtype), np.empty(INTERLEAVE, dtype=np.int64)


@njit(**_JIT)
def lookup_batch(inner, meta, keys, queries, out, mode):
    """``out[i] = lookup_scalar(queries[i])`` in one thread. Complexity O(m (L * B + B))."""
    targets, blocks = _scratch(queries)
    lookup_range(inner, meta, keys, queries, out, 0, queries.shape[0], mode, targets, blocks)


@njit(parallel=True, **_JIT)
def lookup_batch_parallel(inner, meta, keys, queries, out, mode):
    """:func:`lookup_batch` split into contiguous chunks over the Numba thread pool."""
    m = queries.shape[0]
    for c in prange((m + CHUNK - 1) // CHUNK):
        targets, blocks = _scratch(queries)
        lookup_range(inner, meta, keys, queries, out, c * CHUNK, min(m, (c + 1) * CHUNK), mode, targets, blocks)


@njit(**LEAN_JIT)
def lookup_batch_plain(inner, meta, keys, queries, out, mode):
    """``out[i] = lookup_scalar(queries[i])``, one query at a time: no lockstep, no prefetch
    (the ``interleaved=False`` path and the bench's loop mode). Complexity O(m (L * B + B))."""
    for i in range(queries.shape[0]):
        out[i] = lookup_scalar(inner, meta, keys, queries[i], mode)


@njit(parallel=True, **_JIT)
def lookup_batch_plain_parallel(inner, meta, keys, queries, out, mode):
    """:func:`lookup_batch_plain` split into contiguous chunks over the Numba thread pool."""
    m = queries.shape[0]
    for c in prange((m + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(m, (c + 1) * CHUNK)):
            out[i] = lookup_scalar(inner, meta, keys, queries[i], mode)

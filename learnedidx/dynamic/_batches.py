"""Write batches: sorting them as packed words and finding their keys in main (pure Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._intrinsics import LEAN_JIT, prefetch
from .._search import ZERO, binary_search
from ._layout import DIR_SHIFT, JIT


def _ordered(k):
    """An integer key as uint64, order kept (signed keys with the sign bit flipped)."""


@overload(_ordered, jit_options=LEAN_JIT)
def _ordered_impl(k):
    if k.signed:
        return lambda k: np.uint64(np.int64(k)) ^ np.uint64(1 << 63)
    return lambda k: np.uint64(k)


@njit(**LEAN_JIT)
def pack_batch(keys, packed):
    """Pack integer ``keys`` for one sort of uint64 words: ``packed[i]`` = the key's offset from
    the smallest key, cut to its top ``64 - b`` bits, then the index i in the low b bits (b
    bits hold every index). Returns b. Sorting ``packed`` orders the batch by key, and equal
    keys by index; keys that share their top bits (only when the keys span more than ``64 - b``
    bits) may come out of order, which :func:`unpack_batch` mends.
    Measured: the pack, numpy's sort and the unpack cost half of ``np.argsort`` and its two
    gathers. Complexity O(m).
    """
    m = keys.shape[0]
    low = _ordered(keys[0])
    high = low
    for i in range(m):
        u = _ordered(keys[i])
        low = min(low, u)
        high = max(high, u)
    span = high - low
    bits = 0
    while bits < 64 and (span >> np.uint64(bits)) != 0:
        bits += 1
    b = 0
    while (np.int64(1) << b) < m:
        b += 1
    shift = np.uint64(max(0, bits + b - 64))
    for i in range(m):
        packed[i] = (((_ordered(keys[i]) - low) >> shift) << np.uint64(b)) | np.uint64(i)
    return b


@njit(**LEAN_JIT)
def unpack_batch(packed, b, keys, vals, out_k, out_v):
    """Keys and values in the order of the sorted ``packed`` (see :func:`pack_batch`), keys that
    shared their packed top bits put in order by insertion (stable: equal keys keep batch
    order, the last one last). Returns ``(ordered, repeats)``: ordered is False when that
    insertion would move more than 4 keys per key (keys clustered far below their span: the
    caller sorts another way); repeats says a key occurs twice. Complexity O(m + moves)."""
    mask = (np.uint64(1) << np.uint64(b)) - np.uint64(1)
    m = packed.shape[0]
    budget = 4 * m + 64
    repeats = False
    for i in range(m):
        j = np.int64(packed[i] & mask)
        k = keys[j]
        p = i
        while p > 0 and out_k[p - 1] > k:
            if budget == 0:
                return False, False
            budget -= 1
            out_k[p] = out_k[p - 1]
            out_v[p] = out_v[p - 1]
            p -= 1
        out_k[p] = k
        out_v[p] = vals[j]
        if p > 0 and out_k[p - 1] == k:
            repeats = True
    return True, repeats


FIND_AHEAD = 16  #: :func:`find_sorted` prefetches the lines of query i + 16 while it searches query i


FIND_REACH = 8  #: keys either side of its interpolated position that a query's prefetch covers


def _gap(a, b):
    """``a - b`` for keys ``a >= b`` as float64, exact for integers up to float rounding."""


@overload(_gap, jit_options=LEAN_JIT)
def _gap_impl(a, b):
    if isinstance(a, types.Integer):  # in uint64 a - b cannot overflow, signed keys included
        return lambda a, b: np.float64(np.uint64(a) - np.uint64(b))
    return lambda a, b: np.float64(a) - np.float64(b)


@njit(**JIT)
def find_sorted(mk, samples, queries, out):
    """``out[i]`` = position of key queries[i] in main, or -1, for sorted queries (a write batch).

    No model: the batch walks the directory samples (``main[::64]``) forward, so each query
    lands in the block of 64 main keys after the last sample <= it; interpolating between
    that sample and the next predicts the query's position in the block. The lines within
    FIND_REACH keys of the guess are prefetched FIND_AHEAD queries ahead, then searched without
    branches (the whole block when the query lies outside them). On write batches (a query per
    ~100 main keys) the walk costs about 1.6 steps a query against three model evaluations to
    route it; three lines instead of the block's eight move less memory (the search was
    bandwidth-bound). Complexity O(m + n / 64), plus at most six probes a query.
    """
    _find_sorted_range(mk, samples, queries, out, ZERO, queries.shape[0], np.empty(2 * FIND_AHEAD, dtype=np.int64))


@njit(**LEAN_JIT)
def _find_sorted_range(mk, samples, queries, out, start, stop, guess):
    """:func:`find_sorted` for ``queries[start:stop]``; ``guess`` (2 * FIND_AHEAD) is scratch."""
    n = mk.shape[0]
    if n == 0 or start >= stop:
        out[start:stop] = -1
        return
    block = 1 << DIR_SHIFT
    ns = samples.shape[0]
    ring = 2 * FIND_AHEAD
    s = max(binary_search(samples, queries[start], ZERO, ns, True) - 1, 0)
    low = mk[0]
    high = mk[n - 1]
    for i in range(start - FIND_AHEAD, stop):
        a = i + FIND_AHEAD
        if a < stop:
            q = queries[a]
            while s + 1 < ns and samples[s + 1] <= q:
                s += 1
            lo = s << DIR_SHIFT
            last = min(lo + block, n - 1)  # mk[lo] <= q < mk[last], or last = n - 1
            p = lo
            den = _gap(samples[s + 1] if s + 1 < ns else high, samples[s])  # mk[last], not a miss
            if q > samples[s] and den > 0.0:
                frac = _gap(q, samples[s]) / den
                if frac > 0.0:  # not NaN (infinite float keys)
                    p = min(lo + np.int64(min(frac, 1.0) * (last - lo)), lo + block - 1)
            guess[a % ring] = p
            prefetch(mk, max(p - FIND_REACH, lo))
            prefetch(mk, p)
            prefetch(mk, min(p + FIND_REACH, last))
        if i >= start:
            q = queries[i]
            if q < low or q > high:
                out[i] = -1
                continue
            # q's lower bound lies in [lo, last] of its block; most often within reach of the guess.
            p = guess[i % ring]
            lo = (p >> DIR_SHIFT) << DIR_SHIFT
            last = min(lo + block, n - 1)
            near = max(p - FIND_REACH, lo)
            far = min(p + FIND_REACH, last)
            if mk[near] > q or mk[far] < q:
                near = lo
                far = last
            r = binary_search(mk, q, near, far, False)
            out[i] = r if mk[r] == q else -1

"""The directory: which delta keys lie between two main keys, one entry per 64 main positions."""

from __future__ import annotations

from numba import njit

from .._intrinsics import LEAN_JIT
from .._search import ZERO, binary_search
from ._layout import DIR_SHIFT, K_CHUNKS
from ._tombstones import t_below


@njit(**LEAN_JIT)
def dir_build(samples, n, delta, dirs):
    """``dirs[b]`` = order slot ``o * C + j`` of the first delta key >= ``samples[b]``, the main
    key at position ``b << DIR_SHIFT`` (``k * C``, the end, for the entries past main).

    ``samples`` is ``main[::64]``. Complexity O(n / 64 + d), one walk of both.
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
    cap_c = dk.shape[1]
    o = 0
    j = 0
    for b in range(dirs.shape[0]):
        if (b << DIR_SHIFT) >= n:
            dirs[b] = k * cap_c
            continue
        bound = samples[b]
        while o < k and dk[order[o], j] < bound:
            j += 1
            if j == dn[order[o]]:
                o += 1
                j = 0
        dirs[b] = o * cap_c + j


@njit(inline="always", **LEAN_JIT)
def d_locate_in(dk, dn, order, dmax, k, lo, hi, q, right):
    """``(o, j)``: the first delta key >= q (> q when right) is slot j of order position o,
    knowing it lies in order slots [lo, hi] (``hi`` may be ``k * C``, the end); ``o == k`` when
    every key is below. Its rank is ``dcum[o] + j``. Complexity O(log(chunks in range) + log C).
    """
    cap_c = dk.shape[1]
    o1 = lo // cap_c
    o2 = hi // cap_c
    if o1 >= k:
        return k, 0
    top = dmax[o1]
    if o1 == o2 or top > q or (not right and top == q):
        c = order[o1]
        j = lo - o1 * cap_c
        end = hi - o2 * cap_c if o1 == o2 else dn[c]
        j = binary_search(dk[c], q, j, end, right)
        return o1, j
    # q lies after chunk o1: search the maxima of chunks o1+1 .. min(o2, k-1).
    a = binary_search(dmax, q, o1 + 1, min(o2, k - 1) + 1, right)
    if a >= k:
        return k, 0
    return a, binary_search(dk[order[a]], q, ZERO, dn[order[a]], right)


@njit(inline="always", **LEAN_JIT)
def dir_range(use_dir, dirs, p, n, end):
    """Order slots [lo, hi] that hold every delta key between main keys p - 1 and p (the
    whole delta without the directory)."""
    if not use_dir:
        return 0, end
    lo = dirs[(p - 1) >> DIR_SHIFT] if p > 0 else 0
    hi = dirs[(p >> DIR_SHIFT) + 1] if p < n else end
    return lo, hi


@njit(**LEAN_JIT)
def rank_post(main_rank, queries, right, n, tomb, use_dir, dirs, delta, out):
    """Ranks from main ranks (in place in ``out``, which may be ``main_rank``):
    ``main_rank - tombstones below + delta rank``, the delta searched through the directory
    when ``use_dir``. Complexity O(1 + log(delta keys in range)) per query."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    tbits, tcum = tomb
    k = st[K_CHUNKS]
    end = k * dk.shape[1]
    for i in range(queries.shape[0]):
        p = main_rank[i]
        lo, hi = dir_range(use_dir, dirs, p, n, end)
        o, j = d_locate_in(dk, dn, order, dmax, k, lo, hi, queries[i], right)
        out[i] = p - t_below(tbits, tcum, p) + dcum[o] + j

"""Kernels of :class:`learnedidx.DynamicRMI` (pure Numba over plain arrays, no objects).

A DynamicRMI holds three parts; every function here works on their arrays.

**Main**: sorted unique keys ``mk`` and their values ``mv``, indexed by a static RMI
(:mod:`learnedidx._rmi_kernels`), plus the leaf *runs*: ``run_start[r] <= i < run_start[r + 1]``
means main key i is routed to leaf ``run_leaf[r]``. Sorted keys are routed to leaves in
nondecreasing order almost everywhere (inner models disagree near their borders, so a leaf may
own a few runs), so there are about as many runs as leaves; the runs let a merge refit every
leaf without routing every key again.

**Tombstones**: one bit per main position, ``tbits`` (uint64 words), and ``tcum[b]``, the number
of set bits in the 512-bit blocks before block b, so ``tombstones below p`` costs one load and at
most 8 popcounts.

**Delta**: the live keys that are not in main, sorted, in chunks of ``C`` slots (a two-level
sorted list, like sortedcontainers' ``SortedList``): chunk c holds ``dn[c]`` keys in
``dk[c, :dn[c]]`` and their values in ``dv``; ``order[o]`` is the chunk at order position o,
``dmax[o]`` its largest key and ``dcum[o]`` the number of delta keys before it. Unused chunks
sit on the ``free`` stack. ``st`` holds the counters (:data:`K_CHUNKS` ...). An *order slot*
``o * C + j`` names slot j of the chunk at order position o. The *directory* ``dirs[b]`` is the
order slot of the first delta key >= main key ``b * 64``: the delta keys between main keys
``p - 1`` and ``p`` lie between two directory entries, a few keys to search.

A key in main is never in the delta, dead (tombstoned) or alive: writing a dead main key clears
its tombstone. So ``rank(q) = main_rank(q) - tombstones_below(main_rank(q)) + delta_rank(q)``.

Values are passed as unsigned-integer views of their bytes (``values.view(np.uint64)`` for
8-byte values): kernels only move them, so one compilation serves every 8-byte value dtype.
Scalar entry points (:func:`rank_at`, :func:`find_at`) take one int64 *header* array by address
(slots ``H_*``) that holds the addresses and sizes of the others (see
:mod:`learnedidx._pointers`).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, prange, types
from numba.extending import overload

from . import _rmi_kernels as R
from ._pointers import ptr_like
from ._intrinsics import LEAN_JIT, prefetch
from ._search import ZERO, binary_search, search_window

#: Kernels that allocate, run in parallel or call one that does; the others are lean
#: (``LEAN_JIT``). A kernel without ``_nrt`` set inherits its caller's setting: called from a
#: lean kernel, its allocation fails to compile.
_JIT = dict(nogil=True, cache=True)

# Slots of the delta counter array ``st``.
K_CHUNKS = 0  #: chunks in use (order positions 0..K_CHUNKS-1)
D_KEYS = 1  #: keys in the delta
N_FREE = 2  #: chunk ids on the free stack
DIRTY = 3  #: dcum is valid up to this order position (inclusive); fix with :func:`d_fix`
ST_SIZE = 4

BLOCK_SHIFT = 9  #: tombstone counts per 512-bit block (8 words)
FIT_STRIDE = 4  #: a merge fits each leaf's line on every 4th key of its runs (measured: same windows)
#: a merge's mean log2 error samples every 16th key of a run (10M lognormal keys: 1.606
#: against 1.594 at every 4th; the refit 25-35% faster)
LOG2_STRIDE = 16
WORDS_PER_BLOCK = 8

# Slots of the header array that the scalar entry points read (addresses and sizes).
H_MK, H_N, H_META, H_PARAMS, H_TBITS, H_TCUM = 0, 1, 2, 3, 4, 5
H_ORDER, H_DMAX, H_DK, H_DN, H_DCUM, H_ST, H_C, H_CAP = 6, 7, 8, 9, 10, 11, 12, 13
H_SIZE = 14



# --- bits ---------------------------------------------------------------------------------


@njit(inline="always", **LEAN_JIT)
def popcount(x):
    """Number of set bits of a uint64 (LLVM turns this into one popcnt instruction)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(inline="always", **LEAN_JIT)
def t_test(tbits, p):
    """True when main position p is tombstoned."""
    return (tbits[p >> 6] >> np.uint64(p & 63)) & np.uint64(1) != np.uint64(0)


@njit(inline="always", **LEAN_JIT)
def t_below(tbits, tcum, p):
    """Number of tombstoned main positions < p (0 <= p <= n)."""
    b = p >> BLOCK_SHIFT
    count = tcum[b]
    w = p >> 6
    for i in range(b * WORDS_PER_BLOCK, w):
        count += popcount(tbits[i])
    rest = p & 63
    if rest:
        count += popcount(tbits[w] & ((np.uint64(1) << np.uint64(rest)) - np.uint64(1)))
    return count


@njit(**LEAN_JIT)
def t_fix(tbits, tcum, start_block):
    """Recompute ``tcum`` from ``start_block`` on; returns the total tombstone count."""
    nb = tcum.shape[0] - 1
    for b in range(start_block, nb):
        c = tcum[b]
        for i in range(b * WORDS_PER_BLOCK, min((b + 1) * WORDS_PER_BLOCK, tbits.shape[0])):
            c += popcount(tbits[i])
        tcum[b + 1] = c
    return tcum[nb]


@njit(**LEAN_JIT)
def t_set_many(tbits, positions):
    """Set the tombstone bit of every position (each must be clear)."""
    for p in positions:
        tbits[p >> 6] |= np.uint64(1) << np.uint64(p & 63)


@njit(**LEAN_JIT)
def t_clear_many(tbits, positions):
    """Clear the tombstone bit of every position that has it; returns how many were set."""
    cleared = 0
    for p in positions:
        bit = np.uint64(1) << np.uint64(p & 63)
        if tbits[p >> 6] & bit:
            tbits[p >> 6] &= ~bit
            cleared += 1
    return cleared


@njit(**_JIT)
def t_positions(tbits, n):
    """Sorted positions of every tombstone (for saving and checks)."""
    count = 0
    for w in tbits:
        count += popcount(w)
    out = np.empty(count, dtype=np.int64)
    j = 0
    for i in range(tbits.shape[0]):
        w = tbits[i]
        while w:
            low = w & (~w + np.uint64(1))
            out[j] = i * 64 + popcount(low - np.uint64(1))
            j += 1
            w ^= low
    return out


# --- the chunked delta --------------------------------------------------------------------


@njit(inline="always", **LEAN_JIT)
def _chunk_bound(dk, c, m, q, right):
    """First slot in chunk c (of m keys) whose key is >= q (> q when right)."""
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        key = dk[c, mid]
        if key < q or (right and key == q):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always", **LEAN_JIT)
def _order_bound(dmax, k, q, right):
    """First order position whose chunk's largest key is >= q (> q when right); k when none."""
    lo = 0
    hi = k
    while lo < hi:
        mid = (lo + hi) >> 1
        key = dmax[mid]
        if key < q or (right and key == q):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always", **LEAN_JIT)
def d_find(dk, dn, order, dmax, k, q):
    """Flat slot ``c * C + j`` of key q in the delta, or -1."""
    o = _order_bound(dmax, k, q, False)
    if o == k:
        return -1
    c = order[o]
    j = _chunk_bound(dk, c, dn[c], q, False)
    if j < dn[c] and dk[c, j] == q:
        return c * dk.shape[1] + j
    return -1


@njit(inline="always", **LEAN_JIT)
def d_rank(dk, dn, order, dmax, dcum, k, d, q, right):
    """Number of delta keys < q (<= q when right)."""
    o = _order_bound(dmax, k, q, right)
    if o == k:
        return d
    c = order[o]
    return dcum[o] + _chunk_bound(dk, c, dn[c], q, right)


@njit(**LEAN_JIT)
def d_fix(dn, order, dcum, st):
    """Recompute ``dcum`` from the first order position that changed."""
    k = st[K_CHUNKS]
    for o in range(st[DIRTY], k):
        dcum[o + 1] = dcum[o] + dn[order[o]]
    st[DIRTY] = k


@njit(inline="always", **LEAN_JIT)
def _dirty(st, o):
    if o < st[DIRTY]:
        st[DIRTY] = o


@njit(**LEAN_JIT)
def d_insert(dk, dv, dn, order, dmax, free, st, q, v):
    """Insert key q (absent from the delta) with value v; needs one free chunk.

    Complexity O(log k + C): a binary search over the chunks' maxima, one in the chunk, a
    shift inside the chunk, and when the chunk is full a split (O(k) to shift ``order``).
    """
    cap_c = dk.shape[1]
    k = st[K_CHUNKS]
    if k == 0:
        st[N_FREE] -= 1
        c = free[st[N_FREE]]
        order[0] = c
        dk[c, 0] = q
        dv[c, 0] = v
        dn[c] = 1
        dmax[0] = q
        st[K_CHUNKS] = 1
        st[D_KEYS] += 1
        _dirty(st, 0)
        return
    o = _order_bound(dmax, k, q, False)
    if o == k:
        o = k - 1
    _dirty(st, o)
    c = order[o]
    m = dn[c]
    j = _chunk_bound(dk, c, m, q, False)
    if m == cap_c:
        # Split: the upper half moves to a new chunk placed right after c.
        st[N_FREE] -= 1
        c2 = free[st[N_FREE]]
        half = m >> 1
        for i in range(half, m):
            dk[c2, i - half] = dk[c, i]
            dv[c2, i - half] = dv[c, i]
        dn[c2] = m - half
        dn[c] = half
        for p in range(k, o + 1, -1):
            order[p] = order[p - 1]
            dmax[p] = dmax[p - 1]
        order[o + 1] = c2
        dmax[o + 1] = dmax[o]
        dmax[o] = dk[c, half - 1]
        k += 1
        st[K_CHUNKS] = k
        if j > half:
            o += 1
            c = c2
            j -= half
        m = dn[c]
    for i in range(m, j, -1):
        dk[c, i] = dk[c, i - 1]
        dv[c, i] = dv[c, i - 1]
    dk[c, j] = q
    dv[c, j] = v
    dn[c] = m + 1
    if j == m:
        dmax[o] = q
    st[D_KEYS] += 1


@njit(**LEAN_JIT)
def d_remove(dk, dv, dn, order, dmax, free, st, q):
    """Remove key q from the delta; returns False when it is absent. Complexity O(log k + C)."""
    k = st[K_CHUNKS]
    o = _order_bound(dmax, k, q, False)
    if o == k:
        return False
    c = order[o]
    m = dn[c]
    j = _chunk_bound(dk, c, m, q, False)
    if j == m or dk[c, j] != q:
        return False
    for i in range(j, m - 1):
        dk[c, i] = dk[c, i + 1]
        dv[c, i] = dv[c, i + 1]
    m -= 1
    dn[c] = m
    if m == 0:
        for p in range(o, k - 1):
            order[p] = order[p + 1]
            dmax[p] = dmax[p + 1]
        free[st[N_FREE]] = c
        st[N_FREE] += 1
        st[K_CHUNKS] = k - 1
    elif j == m:
        dmax[o] = dk[c, m - 1]
    st[D_KEYS] -= 1
    _dirty(st, o)
    return True


@njit(**LEAN_JIT)
def d_upsert_sorted(dk, dv, dn, order, dmax, free, st, keys, vals):
    """Upsert sorted unique keys one by one; returns how many were new.

    Needs ``len(keys)`` free chunks in the worst case (the caller grows the pool first).
    """
    cap_c = dk.shape[1]
    inserted = 0
    for i in range(keys.shape[0]):
        q = keys[i]
        slot = d_find(dk, dn, order, dmax, st[K_CHUNKS], q)
        if slot >= 0:
            dv[slot // cap_c, slot % cap_c] = vals[i]
        else:
            d_insert(dk, dv, dn, order, dmax, free, st, q, vals[i])
            inserted += 1
    return inserted


@njit(**LEAN_JIT)
def d_find_many(dk, dn, order, dmax, st, keys, out):
    """``out[i]`` = flat slot of keys[i] in the delta, or -1."""
    k = st[K_CHUNKS]
    for i in range(keys.shape[0]):
        out[i] = d_find(dk, dn, order, dmax, k, keys[i])


@njit(**LEAN_JIT)
def d_remove_many(dk, dv, dn, order, dmax, free, st, keys):
    """Remove every key (each must be in the delta)."""
    for q in keys:
        d_remove(dk, dv, dn, order, dmax, free, st, q)


@njit(**LEAN_JIT)
def d_bulk_chunks(dk, dn, order, dmax, st, keys, fill):
    """Upper bound on the chunks :func:`d_bulk_upsert` needs for sorted ``keys``: O(k + b)."""
    return _chunks_needed(dk, dn, order, dmax, 0, st[K_CHUNKS], keys, 0, keys.shape[0], fill)


@njit(**LEAN_JIT)
def _chunks_needed(dk, dn, order, dmax, o_lo, o_hi, keys, b_lo, b_hi, fill):
    """:func:`d_bulk_chunks` for chunk positions ``o_lo:o_hi`` and batch keys ``b_lo:b_hi``
    (the last chunk of the range takes every key left)."""
    cap_c = dk.shape[1]
    if o_hi == o_lo:
        return (b_hi - b_lo + fill - 1) // fill
    total = 0
    bi = b_lo
    for o in range(o_lo, o_hi):
        e = bi
        if o == o_hi - 1:
            e = b_hi
        else:
            top = dmax[o]
            while e < b_hi and keys[e] <= top:
                e += 1
        m = dn[order[o]] + e - bi
        total += 1 if m <= cap_c else (m + fill - 1) // fill
        bi = e
    return total


@njit(**_JIT)
def d_bulk_upsert(dk, dv, dn, order, dmax, free, st, keys, vals, fill, order2, dmax2, tk, tv, parallel):
    """Upsert sorted unique keys chunk by chunk, in place; returns how many were new.

    Each chunk is merged with the batch keys that fall in it (``tk``/``tv`` hold the merge,
    at least ``2 C + len(keys)`` long); a chunk that overflows is cut into pieces of about
    ``fill`` keys taken from the free stack (the caller makes room with
    :func:`d_bulk_chunks`). Chunks that get no key are not touched. ``order2``/``dmax2`` are
    scratch for the new chunk order. With ``parallel`` and two chunks or more, the lower and
    the upper half of the chunks take their keys at once on two threads (see
    :func:`_bulk_upsert_halves`). Complexity O(k + b + C * chunks touched).
    """
    k = st[K_CHUNKS]
    b = keys.shape[0]
    if parallel and k >= 2:
        w2, inserted, top = _bulk_upsert_halves(dk, dv, dn, order, dmax, free, k, st[N_FREE], keys, vals, fill,
                                                order2, dmax2, tk, tv)
    else:
        w2, inserted, top = _bulk_upsert_range(dk, dv, dn, order, dmax, ZERO, k, keys, vals, ZERO, b, fill, free,
                                               st[N_FREE], order2, dmax2, 0, tk, tv)
    for z in range(w2):
        order[z] = order2[z]
        dmax[z] = dmax2[z]
    st[N_FREE] = top
    st[K_CHUNKS] = w2
    st[D_KEYS] += inserted
    st[DIRTY] = 0
    return inserted


@njit(parallel=True, **_JIT)
def _bulk_upsert_halves(dk, dv, dn, order, dmax, free, k, top, keys, vals, fill, order2, dmax2, tk, tv):
    """:func:`_bulk_upsert_range` for the lower and the upper half of the chunks on two threads;
    returns ``(chunks, inserted, free top)`` like it.

    The batch is cut after the lower half's largest key. Each half pops new chunks from its
    own share of the free stack (the lower half's is its :func:`_chunks_needed`, from the top)
    and writes its chunk order apart; the ids left are then packed back into one stack.
    """
    c = dk.shape[1]
    b = keys.shape[0]
    mid = k // 2
    # Not np.searchsorted(side="right"): typing it, Numba keeps a failed attempt whose traceback
    # holds the calling frames, so the first index to compile it was never freed.
    cut = binary_search(keys, dmax[mid - 1], ZERO, keys.shape[0], True)
    # The lower half pops from free[low_floor:top]; the upper half below low_floor, within the
    # room the caller made for the whole batch.
    low_floor = top - (_chunks_needed(dk, dn, order, dmax, 0, mid, keys, 0, cut, fill) - mid)
    high_order = np.empty(order2.shape[0], dtype=np.int64)
    high_dmax = np.empty(order2.shape[0], dtype=dmax2.dtype)
    split = c + cut
    results = np.zeros((2, 3), dtype=np.int64)
    for half in prange(2):
        if half == 0:
            w, ins, t = _bulk_upsert_range(dk, dv, dn, order, dmax, ZERO, mid, keys, vals, ZERO, cut, fill, free, top,
                                           order2, dmax2, 0, tk[:split], tv[:split])
        else:
            w, ins, t = _bulk_upsert_range(dk, dv, dn, order, dmax, mid, k, keys, vals, cut, b, fill, free,
                                           low_floor, high_order, high_dmax, 0, tk[split:], tv[split:])
        results[half, 0] = w
        results[half, 1] = ins
        results[half, 2] = t
    w_low = results[0, 0]
    for z in range(results[1, 0]):
        order2[w_low + z] = high_order[z]
        dmax2[w_low + z] = high_dmax[z]
    # The ids left: free[:high_top] and free[low_floor:low_left]; pack the second onto the first.
    high_top = results[1, 2]
    left = results[0, 2] - low_floor
    for z in range(left):
        free[high_top + z] = free[low_floor + z]
    return w_low + results[1, 0], results[0, 1] + results[1, 1], high_top + left


@njit(**LEAN_JIT)
def _bulk_upsert_range(dk, dv, dn, order, dmax, o_lo, o_hi, keys, vals, b_lo, b_hi, fill, free, top, order2,
                       dmax2, w2, tk, tv):
    """The chunks at order positions ``o_lo:o_hi`` take the batch keys ``b_lo:b_hi`` (the last
    of them every key left; none: the keys become new chunks). New chunks pop from
    ``free[:top]``; the chunk order is written to ``order2``/``dmax2`` from ``w2``.
    Returns ``(w2, inserted, top)`` after it."""
    cap_c = dk.shape[1]
    bi = b_lo
    inserted = 0
    o = o_lo
    empty = o_hi == o_lo
    while o < o_hi or (empty and bi < b_hi):
        if empty:
            c = -1
            m = 0
            e = b_hi
        else:
            c = order[o]
            m = dn[c]
            e = bi
            if o == o_hi - 1:
                e = b_hi
            else:
                limit = dmax[o]
                while e < b_hi and keys[e] <= limit:
                    e += 1
        if e == bi:
            order2[w2] = c
            dmax2[w2] = dmax[o]
            w2 += 1
            o += 1
            continue
        # Merge the chunk's keys with keys[bi:e] into tk/tv (batch values win).
        x = 0
        y = bi
        t = 0
        while x < m and y < e:
            kx = dk[c, x]
            ky = keys[y]
            if kx < ky:
                tk[t] = kx
                tv[t] = dv[c, x]
                x += 1
            else:
                tk[t] = ky
                tv[t] = vals[y]
                if kx == ky:
                    x += 1
                else:
                    inserted += 1
                y += 1
            t += 1
        while x < m:
            tk[t] = dk[c, x]
            tv[t] = dv[c, x]
            x += 1
            t += 1
        while y < e:
            tk[t] = keys[y]
            tv[t] = vals[y]
            inserted += 1
            y += 1
            t += 1
        pieces = 1 if (t <= cap_c and c >= 0) else (t + fill - 1) // fill
        start = 0
        for piece in range(pieces):
            size = t // pieces + (1 if piece < t % pieces else 0)
            if piece == 0 and c >= 0:
                cc = c
            else:
                top -= 1
                cc = free[top]
            for z in range(size):
                dk[cc, z] = tk[start + z]
                dv[cc, z] = tv[start + z]
            dn[cc] = size
            order2[w2] = cc
            dmax2[w2] = tk[start + size - 1]
            w2 += 1
            start += size
        bi = e
        o += 1
        if empty:
            break
    return w2, inserted, top


@njit(**LEAN_JIT)
def d_bulk_remove(dk, dv, dn, order, dmax, free, st, keys):
    """Remove sorted unique keys (absent ones are skipped) chunk by chunk, in place; empty
    chunks return to the free stack. Returns how many were removed. Complexity O(k + b + C *
    chunks touched)."""
    k = st[K_CHUNKS]
    b = keys.shape[0]
    bi = 0
    w2 = 0
    removed = 0
    for o in range(k):
        c = order[o]
        m = dn[c]
        top = dmax[o]
        e = bi
        while e < b and keys[e] <= top:
            e += 1
        if e > bi:
            y = bi
            t = 0
            for x in range(m):
                kx = dk[c, x]
                while y < e and keys[y] < kx:
                    y += 1
                if y < e and keys[y] == kx:
                    removed += 1
                    continue
                dk[c, t] = kx
                dv[c, t] = dv[c, x]
                t += 1
            m = t
            dn[c] = t
        bi = e
        if m == 0:
            free[st[N_FREE]] = c
            st[N_FREE] += 1
            continue
        order[w2] = c
        dmax[w2] = dk[c, m - 1]
        w2 += 1
    st[K_CHUNKS] = w2
    st[D_KEYS] -= removed
    st[DIRTY] = 0
    return removed


# --- the directory: where each stretch of main falls in the delta --------------------------

DIR_SHIFT = 6  #: one directory entry per 64 main positions


@njit(**LEAN_JIT)
def dir_build(samples, n, dk, dn, order, k, dirs):
    """``dirs[b]`` = order slot ``o * C + j`` of the first delta key >= ``samples[b]``, the main
    key at position ``b << DIR_SHIFT`` (``k * C``, the end, for the entries past main).

    ``samples`` is ``main[::64]``. Complexity O(n / 64 + d), one walk of both.
    """
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
        while j < end:
            half = (end - j) >> 1
            key = dk[c, j + half]
            if key < q or (right and key == q):
                j = j + half + 1
            else:
                end = j + half
        return o1, j
    # q lies after chunk o1: search the maxima of chunks o1+1 .. min(o2, k-1).
    a = o1 + 1
    z = min(o2, k - 1) + 1
    while a < z:
        mid = (a + z) >> 1
        key = dmax[mid]
        if key < q or (right and key == q):
            a = mid + 1
        else:
            z = mid
    if a >= k:
        return k, 0
    return a, _chunk_bound(dk, order[a], dn[order[a]], q, right)


@njit(inline="always", **LEAN_JIT)
def _dir_range(use_dir, dirs, p, n, end):
    """Order slots [lo, hi] that hold every delta key between main keys p - 1 and p (the
    whole delta without the directory)."""
    if not use_dir:
        return 0, end
    lo = dirs[(p - 1) >> DIR_SHIFT] if p > 0 else 0
    hi = dirs[(p >> DIR_SHIFT) + 1] if p < n else end
    return lo, hi


@njit(**LEAN_JIT)
def rank_post(main_rank, queries, right, n, tbits, tcum, use_dir, dirs, dk, dn, order, dmax, dcum, st, out):
    """Ranks from main ranks (in place in ``out``, which may be ``main_rank``):
    ``main_rank - tombstones below + delta rank``, the delta searched through the directory
    when ``use_dir``. Complexity O(1 + log(delta keys in range)) per query."""
    k = st[K_CHUNKS]
    end = k * dk.shape[1]
    for i in range(queries.shape[0]):
        p = main_rank[i]
        lo, hi = _dir_range(use_dir, dirs, p, n, end)
        o, j = d_locate_in(dk, dn, order, dmax, k, lo, hi, queries[i], right)
        out[i] = p - t_below(tbits, tcum, p) + dcum[o] + j


# --- write batches: sorting them, finding their keys in main ----------------------------------


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


@njit(**_JIT)
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


@njit(parallel=True, **_JIT)
def find_sorted_parallel(mk, samples, queries, out, parts):
    """:func:`find_sorted` with the batch cut in ``parts`` contiguous parts (one per thread)."""
    m = queries.shape[0]
    for p in prange(parts):
        _find_sorted_range(mk, samples, queries, out, m * p // parts, m * (p + 1) // parts,
                           np.empty(2 * FIND_AHEAD, dtype=np.int64))


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


# --- batch reads: main's RMI, then the delta ------------------------------------------------


@njit(**LEAN_JIT)  # not inlined: one compiled copy for _lookup_range and _rank_range
def _search_group(meta, params, mk, queries, g, top, mode, qbuf, leaf, pos, lo, hi):
    """Main ranks of ``queries[g:top]`` (mode 0: keys < q, 1: keys <= q) into ``pos``.

    The phases of the group variant of :func:`learnedidx._rmi_kernels.lookup_batch`: route every query
    and prefetch its leaf record, then compute the windows and prefetch their keys, then
    search; each phase's loads were requested a phase earlier.
    """
    n = mk.shape[0]
    pbits = params.view(np.int64)
    plan = R.routing_plan(meta, params, pbits, meta[0] - 1)
    for i in range(g, top):
        x = i - g
        q, answer = R.prepare_query(mk, queries[i], mode)
        qbuf[x] = q
        if answer != R.NEEDS_SEARCH:
            pos[x] = answer
            leaf[x] = -1
            continue
        j = R.plan_route(plan, meta, params, pbits, q)
        leaf[x] = j
        prefetch(params, plan.leaf_base + j * R.LINEAR_WIDTH)
    for x in range(top - g):
        if leaf[x] < 0:
            continue
        p, a, b = R.leaf_window(plan, params, pbits, qbuf[x], leaf[x])
        pos[x] = p
        lo[x] = a
        hi[x] = b
        prefetch(mk, min(a, n - 1))
        prefetch(mk, min((a + b) >> 1, n - 1))
        prefetch(mk, max(b - 1, 0))
    for x in range(top - g):
        if leaf[x] >= 0:
            pos[x] = search_window(mk, qbuf[x], pos[x], lo[x], hi[x], False, plan.method)


@njit(inline="always", **LEAN_JIT)
def _prefetch_delta(use_dir, dirs, dk, order, k, r, n, x, lo, hi):
    """Prefetch the delta chunk where keys between main ranks r - 1 and r sit (the directory
    entries were prefetched a phase earlier); keep the order-slot range in lo/hi[x]."""
    cap_c = dk.shape[1]
    a, b = _dir_range(use_dir, dirs, r, n, k * cap_c)
    lo[x] = a
    hi[x] = b
    o1 = a // cap_c
    if use_dir and o1 < k:
        prefetch(dk.reshape(dk.size), order[o1] * cap_c + a - o1 * cap_c)


@njit(inline="always", **LEAN_JIT)
def _prefetch_dirs(use_dir, dirs, r, n):
    if use_dir:
        if r > 0:
            prefetch(dirs, (r - 1) >> DIR_SHIFT)
        if r < n:
            prefetch(dirs, (r >> DIR_SHIFT) + 1)


@njit(**LEAN_JIT)
def _lookup_range(meta, params, mk, mv, tbits, has_tombstones, use_dir, dirs, dk, dv, dn, order, dmax, st,
                  queries, out, found, start, stop, qbuf, leaf, pos, lo, hi):
    """Values of ``queries[start:stop]``, GROUP lookups at a time in lock-step: the main
    search (:func:`_search_group`), then a main hit prefetches its value and tombstone word,
    a miss the directory entries around its rank and then the delta chunk they point to, and
    the last phase reads what was prefetched. ``qbuf ... hi``: scratch of :func:`_group_scratch`."""
    n = mk.shape[0]
    k = st[K_CHUNKS]
    for g in range(start, stop, R.GROUP):
        top = min(stop, g + R.GROUP)
        _search_group(meta, params, mk, queries, g, top, ZERO, qbuf, leaf, pos, lo, hi)
        for x in range(top - g):
            r = pos[x]
            if r < n and mk[r] == qbuf[x]:
                leaf[x] = 1
                prefetch(mv, r)
                if has_tombstones:
                    prefetch(tbits, r >> 6)
            else:
                leaf[x] = 0
                if k:
                    _prefetch_dirs(use_dir, dirs, r, n)
        if k:
            for x in range(top - g):
                if leaf[x] == 0:
                    _prefetch_delta(use_dir, dirs, dk, order, k, pos[x], n, x, lo, hi)
        for x in range(top - g):
            i = g + x
            found[i] = False
            out[i] = 0
            if leaf[x] == 1:
                r = pos[x]
                if not has_tombstones or not t_test(tbits, r):
                    found[i] = True
                    out[i] = mv[r]
            elif k:
                q = qbuf[x]
                o, j = d_locate_in(dk, dn, order, dmax, k, lo[x], hi[x], q, False)
                if o < k:
                    c = order[o]
                    if j < dn[c] and dk[c, j] == q:
                        found[i] = True
                        out[i] = dv[c, j]


@njit(**LEAN_JIT)
def _rank_range(meta, params, mk, tbits, tcum, has_tombstones, use_dir, dirs, dk, dn, order, dmax, dcum, st,
                queries, right, out, start, stop, qbuf, leaf, pos, lo, hi):
    """Ranks of ``queries[start:stop]`` (keys < q, or <= q when right): the main search, then
    prefetches of the tombstone counts and of the delta chunk, as in :func:`_lookup_range`."""
    n = mk.shape[0]
    k = st[K_CHUNKS]
    mode = 1 if right else 0
    for g in range(start, stop, R.GROUP):
        top = min(stop, g + R.GROUP)
        _search_group(meta, params, mk, queries, g, top, mode, qbuf, leaf, pos, lo, hi)
        for x in range(top - g):
            r = pos[x]
            if has_tombstones:
                prefetch(tcum, r >> BLOCK_SHIFT)
                prefetch(tbits, r >> 6)
            if k:
                _prefetch_dirs(use_dir, dirs, r, n)
        if k:
            for x in range(top - g):
                _prefetch_delta(use_dir, dirs, dk, order, k, pos[x], n, x, lo, hi)
        for x in range(top - g):
            i = g + x
            r = pos[x]
            rank = r
            if has_tombstones:
                rank -= t_below(tbits, tcum, r)
            if k:
                o, j = d_locate_in(dk, dn, order, dmax, k, lo[x], hi[x], queries[i], right)
                rank += dcum[o] + j
            out[i] = rank


@njit(inline="always", **_JIT)
def _group_scratch(mk):
    """Scratch of one chunk of the phased kernels: GROUP queries, leaves, positions, windows."""
    return (np.empty(R.GROUP, dtype=mk.dtype), np.empty(R.GROUP, dtype=np.int64), np.empty(R.GROUP, dtype=np.int64),
            np.empty(R.GROUP, dtype=np.int64), np.empty(R.GROUP, dtype=np.int64))


@njit(**_JIT)
def lookup_batch(meta, params, mk, mv, tbits, has_tombstones, use_dir, dirs, dk, dv, dn, order, dmax, st,
                 queries, out, found):
    """``(out[i], found[i])``: the value of key queries[i] among main and the delta, in one pass
    (see :func:`_lookup_range`). Complexity O(m (stages + log window + log(delta keys in
    range)))."""
    qbuf, leaf, pos, lo, hi = _group_scratch(mk)
    _lookup_range(meta, params, mk, mv, tbits, has_tombstones, use_dir, dirs, dk, dv, dn, order, dmax, st,
                  queries, out, found, ZERO, queries.shape[0], qbuf, leaf, pos, lo, hi)


@njit(parallel=True, **_JIT)
def lookup_batch_parallel(meta, params, mk, mv, tbits, has_tombstones, use_dir, dirs, dk, dv, dn, order, dmax,
                          st, queries, out, found):
    """:func:`lookup_batch` split into chunks over the Numba thread pool (each chunk calls the
    serial kernel on its slices: one compiled body for both)."""
    m = queries.shape[0]
    for c in prange((m + R.CHUNK - 1) // R.CHUNK):
        a = c * R.CHUNK
        b = min(m, a + R.CHUNK)
        lookup_batch(meta, params, mk, mv, tbits, has_tombstones, use_dir, dirs, dk, dv, dn, order, dmax, st,
                     queries[a:b], out[a:b], found[a:b])


@njit(**_JIT)
def rank_batch(meta, params, mk, tbits, tcum, has_tombstones, use_dir, dirs, dk, dn, order, dmax, dcum, st,
               queries, right, out):
    """``out[i]`` = number of keys < queries[i] (<= when right), in one pass (see
    :func:`_rank_range`)."""
    qbuf, leaf, pos, lo, hi = _group_scratch(mk)
    _rank_range(meta, params, mk, tbits, tcum, has_tombstones, use_dir, dirs, dk, dn, order, dmax, dcum, st,
                queries, right, out, ZERO, queries.shape[0], qbuf, leaf, pos, lo, hi)


@njit(parallel=True, **_JIT)
def rank_batch_parallel(meta, params, mk, tbits, tcum, has_tombstones, use_dir, dirs, dk, dn, order, dmax, dcum,
                        st, queries, right, out):
    """:func:`rank_batch` split into chunks over the Numba thread pool (each chunk calls the
    serial kernel on its slices)."""
    m = queries.shape[0]
    for c in prange((m + R.CHUNK - 1) // R.CHUNK):
        a = c * R.CHUNK
        b = min(m, a + R.CHUNK)
        rank_batch(meta, params, mk, tbits, tcum, has_tombstones, use_dir, dirs, dk, dn, order, dmax, dcum, st,
                   queries[a:b], right, out[a:b])


@njit(**LEAN_JIT)
def d_flatten(dk, dv, dn, order, k, out_k, out_v):
    """Copy the delta into flat sorted arrays."""
    w = 0
    for o in range(k):
        c = order[o]
        for j in range(dn[c]):
            out_k[w] = dk[c, j]
            out_v[w] = dv[c, j]
            w += 1
    return w


@njit(**LEAN_JIT)
def d_rebuild(dk, dv, dn, order, dmax, dcum, free, st, keys, vals, fill):
    """Lay flat sorted unique keys out in chunks of ``fill`` keys (the pool must hold them)."""
    cap = dk.shape[0]
    d = keys.shape[0]
    k = (d + fill - 1) // fill
    dcum[0] = 0
    for o in range(k):
        start = o * fill
        m = min(fill, d - start)
        for j in range(m):
            dk[o, j] = keys[start + j]
            dv[o, j] = vals[start + j]
        dn[o] = m
        order[o] = o
        dmax[o] = keys[start + m - 1]
        dcum[o + 1] = start + m
    for c in range(k, cap):
        dn[c] = 0
    nfree = 0
    for c in range(cap - 1, k - 1, -1):
        free[nfree] = c
        nfree += 1
    st[K_CHUNKS] = k
    st[D_KEYS] = d
    st[N_FREE] = nfree
    st[DIRTY] = k


# --- main ---------------------------------------------------------------------------------


@njit(**LEAN_JIT)
def materialize(mk, mv, tbits, i0, i1, dk, dv, dn, order, dcum, k, r0, r1, out_k, out_v):
    """Merge live main keys ``[i0, i1)`` with delta keys of ranks ``[r0, r1)`` into out."""
    # First order position holding delta rank r0.
    lo = 0
    hi = k
    while lo < hi:
        mid = (lo + hi) >> 1
        if dcum[mid + 1] <= r0:
            lo = mid + 1
        else:
            hi = mid
    o = lo
    j = r0 - dcum[o] if o < k else 0
    left = r1 - r0
    i = i0
    w = 0
    while True:
        while i < i1 and t_test(tbits, i):
            i += 1
        if left > 0:
            c = order[o]
            q = dk[c, j]
            if i < i1 and mk[i] < q:
                out_k[w] = mk[i]
                out_v[w] = mv[i]
                i += 1
            else:
                out_k[w] = q
                out_v[w] = dv[c, j]
                left -= 1
                j += 1
                if j == dn[c]:
                    o += 1
                    j = 0
        elif i < i1:
            out_k[w] = mk[i]
            out_v[w] = mv[i]
            i += 1
        else:
            break
        w += 1
    return w


# --- merging the delta into main, refitting the leaves ------------------------------------


def _set_anchor(params, pbits, base, a):
    """Store anchor key a in a record's first slot as the kernels read it."""


@overload(_set_anchor, jit_options=LEAN_JIT)
def _set_anchor_impl(params, pbits, base, a):
    if isinstance(a, types.Float):
        def impl(params, pbits, base, a):
            params[base] = np.float64(a)
        return impl

    def impl(params, pbits, base, a):
        pbits[base] = R._anchor_bits(a)
    return impl


@njit(**_JIT)
def leaf_runs(meta, params, keys):
    """``(run_start, run_leaf)``: maximal runs of consecutive keys routed to one leaf.

    ``run_start`` has one more entry than ``run_leaf``: n. Complexity O(n * stages).
    """
    n = keys.shape[0]
    pbits = params.view(np.int64)
    plan = R.routing_plan(meta, params, pbits, meta[0] - 1)
    cap = meta[R.META_HEADER + R.META_STRIDE * plan.depth + 1] + 16
    start = np.empty(cap + 1, dtype=np.int64)
    leaf = np.empty(cap, dtype=np.int64)
    r = 0
    cur = -1
    for i in range(n):
        j = R.plan_route(plan, meta, params, pbits, keys[i])
        if j != cur:
            if r == cap:
                cap *= 2
                grown_start = np.empty(cap + 1, dtype=np.int64)
                grown_leaf = np.empty(cap, dtype=np.int64)
                grown_start[:r] = start[:r]
                grown_leaf[:r] = leaf[:r]
                start = grown_start
                leaf = grown_leaf
            start[r] = i
            leaf[r] = j
            cur = j
            r += 1
    start[r] = n
    return start[:r + 1].copy(), leaf[:r].copy()


@njit(**_JIT)
def merge_delta(src_k, src_v, n, tbits, has_tombstones, dk, dv, dn, order, k, meta, params, run_start, run_leaf,
                kbuf, vbuf, in_place, parallel, out_start, out_leaf):
    """Merge main (``src_k``/``src_v``, n keys) and the delta into ``kbuf``/``vbuf``.

    ``in_place``: kbuf/vbuf are main's own buffers (capacity >= live main keys + delta), so no
    new memory is touched; the keys below the smallest delta key do not move. Otherwise they
    are new buffers (and there must be no tombstones). With tombstones, the live keys are first
    compacted forward (their runs too, in place in ``run_start``/``run_leaf``). The delta is
    merged in from the back, so in place every write lands at or after the read position.
    With ``parallel``, the lower and the upper half merge at once on two threads (see
    :func:`_merge_halves`). Writes the output runs into ``out_start``/``out_leaf`` (room for
    runs + 2 d + 4) and returns their number.
    Complexity O(n + d * stages); in place, O(runs) for the unmoved prefix.
    """
    nruns = run_leaf.shape[0]
    if has_tombstones and not in_place:
        raise ValueError("merge_delta: tombstones are compacted in place; copy main into the new buffers first")
    if has_tombstones:
        w = 0
        nr = 0
        for r in range(nruns):
            a = run_start[r]
            b = run_start[r + 1]
            leaf = run_leaf[r]
            start_w = w
            for i in range(a, b):
                if not t_test(tbits, i):
                    kbuf[w] = kbuf[i]
                    vbuf[w] = vbuf[i]
                    w += 1
            if w > start_w and (nr == 0 or run_leaf[nr - 1] != leaf):
                run_start[nr] = start_w
                run_leaf[nr] = leaf
                nr += 1
        run_start[nr] = w
        n = w
        nruns = nr
    d = ZERO
    for o in range(k):
        d += dn[order[o]]
    # The split: the first chunk whose keys all lie above main's middle key.
    split = 0
    if parallel and k >= 2 and n >= 2:
        mid = src_k[n // 2]
        lo_o = 0
        hi_o = k
        while lo_o < hi_o:
            x = (lo_o + hi_o) >> 1
            if dk[order[x], 0] > mid:
                hi_o = x
            else:
                lo_o = x + 1
        split = lo_o if lo_o < k else 0
    if split:
        nb = _merge_halves(src_k, src_v, n, d, nruns, split, k, dk, dv, dn, order, meta, params, run_start,
                           run_leaf, kbuf, vbuf, in_place, out_start, out_leaf)
    else:
        stage = 0 if in_place else n  # every main key read from kbuf itself, or from src
        nb = _merge_back(kbuf, vbuf, src_k, src_v, ZERO, ZERO, stage, n - 1, n + d - 1, nruns - 1, ZERO, k, dk, dv, dn,
                         order, meta, params, run_start, run_leaf, out_start, out_leaf)
        _reverse_runs(out_start, out_leaf, nb)
    out_start[nb] = n + d
    return nb


@njit(parallel=True, **_JIT)
def _merge_halves(src_k, src_v, n, d, nruns, split, k, dk, dv, dn, order, meta, params, run_start, run_leaf,
                  kbuf, vbuf, in_place, out_start, out_leaf):
    """The backward merge as two independent halves on two threads; returns the runs' number.

    The lower half merges main[:p] with the delta chunks before ``split`` (h keys) into
    positions [0, p + h); the upper half merges main[p:] with the others into [p + h, n + d),
    where p is the number of main keys below the split chunk's first key. In place, the lower
    half's writes land on main[p:p + h], which the upper half has yet to read: those keys are
    copied aside first (at most h of them) and read from the copy.
    """
    h = 0
    for o in range(split):
        h += dn[order[o]]
    p = binary_search(src_k, dk[order[split], 0], ZERO, n, False)
    if in_place:
        stage = min(p + h, n)
        saved_k = kbuf[p:stage].copy()
        saved_v = vbuf[p:stage].copy()
        offset = p
    else:
        stage = n
        saved_k = src_k[:n]
        saved_v = src_v[:n]
        offset = 0
    r_low = max(binary_search(run_start, p - 1, ZERO, nruns + 1, True) - 1, 0)
    up_start = np.empty(nruns - r_low + 2 * (d - h) + 2, dtype=np.int64)
    up_leaf = np.empty(nruns - r_low + 2 * (d - h) + 2, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    for half in prange(2):
        if half == 0:
            counts[0] = _merge_back(kbuf, vbuf, saved_k, saved_v, ZERO, ZERO, ZERO if in_place else n, p - 1,
                                    p + h - 1, r_low, ZERO, split, dk, dv, dn, order, meta, params, run_start, run_leaf,
                                    out_start, out_leaf)
        else:
            counts[1] = _merge_back(kbuf, vbuf, saved_k, saved_v, p, offset, stage, n - 1, n + d - 1, nruns - 1,
                                    split, k, dk, dv, dn, order, meta, params, run_start, run_leaf, up_start,
                                    up_leaf)
    nb = counts[0]
    _reverse_runs(out_start, out_leaf, nb)
    # The upper half's runs follow; a leaf straddling p continues the lower half's last run.
    for x in range(counts[1] - 1, -1, -1):
        if nb and out_leaf[nb - 1] == up_leaf[x]:
            continue
        out_start[nb] = up_start[x]
        out_leaf[nb] = up_leaf[x]
        nb += 1
    return nb


@njit(**LEAN_JIT)
def _merge_back(kbuf, vbuf, saved_k, saved_v, lo, offset, stage, i, w, r, o_lo, o_hi, dk, dv, dn, order, meta,
                params, run_start, run_leaf, out_start, out_leaf):
    """Merge main keys ``lo..i`` and delta chunks ``o_lo:o_hi`` backward into kbuf/vbuf, the
    largest at position w.

    Main keys at positions >= ``stage`` are read from kbuf itself (every write then lands at or
    after the read position), those below it from ``saved_k``/``saved_v`` at position -
    ``offset``. ``r`` is the run that holds position i. Records the output runs from the top
    down (``out_leaf`` and each run's lowest position in ``out_start``) and returns their number.
    """
    pbits = params.view(np.int64)
    plan = R.routing_plan(meta, params, pbits, meta[0] - 1)
    in_place = stage <= lo
    o = o_hi - 1
    j = dn[order[o]] - 1 if o >= o_lo else -1
    nb = 0
    cur = -1
    while True:
        have_q = o >= o_lo
        if have_q:
            c = order[o]
            q = dk[c, j]
        else:
            c = 0
            q = dk[0, 0]
        while i >= lo:
            a = max(run_start[r], lo)
            leaf = run_leaf[r]
            end_w = w
            if not have_q and in_place and w == i:
                w = a - 1
                i = a - 1
            else:
                # Read kbuf directly: passing it to _move_above as the source measured 2x slower.
                if i >= stage:
                    b = max(a, stage)
                    if have_q:
                        while i >= b and kbuf[i] > q:
                            kbuf[w] = kbuf[i]
                            vbuf[w] = vbuf[i]
                            w -= 1
                            i -= 1
                    else:
                        while i >= b:
                            kbuf[w] = kbuf[i]
                            vbuf[w] = vbuf[i]
                            w -= 1
                            i -= 1
                if i < stage:
                    i, w = _move_above(saved_k, saved_v, offset, kbuf, vbuf, i, a, w, q, have_q)
            if w < end_w and leaf != cur:
                if cur != -1:
                    out_start[nb - 1] = end_w + 1
                out_leaf[nb] = leaf
                nb += 1
                cur = leaf
            if i < a:
                r -= 1
            else:
                break
        if not have_q:
            break
        kbuf[w] = q
        vbuf[w] = dv[c, j]
        leaf = R.plan_route(plan, meta, params, pbits, q)
        if leaf != cur:
            if cur != -1:
                out_start[nb - 1] = w + 1
            out_leaf[nb] = leaf
            nb += 1
            cur = leaf
        w -= 1
        j -= 1
        if j < 0:
            o -= 1
            if o >= o_lo:
                j = dn[order[o]] - 1
    if nb:
        out_start[nb - 1] = w + 1
    return nb


@njit(inline="always", **LEAN_JIT)
def _move_above(src_k, src_v, offset, kbuf, vbuf, i, a, w, q, have_q):
    """Move the main keys at positions i, i-1, ... down to a (read from src at position -
    offset) up to w, w-1, ..., stopping at the first not above q when ``have_q``; returns the
    new (i, w)."""
    if have_q:
        while i >= a and src_k[i - offset] > q:
            kbuf[w] = src_k[i - offset]
            vbuf[w] = src_v[i - offset]
            w -= 1
            i -= 1
    else:
        while i >= a:
            kbuf[w] = src_k[i - offset]
            vbuf[w] = src_v[i - offset]
            w -= 1
            i -= 1
    return i, w


@njit(inline="always", **LEAN_JIT)
def _reverse_runs(out_start, out_leaf, nb):
    """Runs recorded top down, in forward order."""
    for x in range(nb // 2):
        y = nb - 1 - x
        out_start[x], out_start[y] = out_start[y], out_start[x]
        out_leaf[x], out_leaf[y] = out_leaf[y], out_leaf[x]


LOG2_SCALE = 1 << 20  #: the merge sums log2(error + 1) in fixed point: integer adds, no float chain


@njit(inline="always", **LEAN_JIT)
def _fit_sums(params, pbits, base, keys, a, b, first):
    """Least-squares sums over keys[a:b] (every FIT_STRIDE-th key of a long run) of x = key -
    anchor (the record's) and y = position - first: ``(m, sx, sxx, sxy, sy)``."""
    abits = pbits[base]
    aval = params[base]
    fits = _span_fits(keys[b - 1], abits)
    stride = FIT_STRIDE if b - a >= 16 * FIT_STRIDE else 1
    sx = 0.0
    sxx = 0.0
    sxy = 0.0
    sy = 0.0
    m = 0
    for i in range(a, b, stride):
        x = _offset(keys[i], abits, aval, fits)
        y = np.float64(i - first)
        sx += x
        sxx += x * x
        sxy += x * y
        sy += y
        m += 1
    return m, sx, sxx, sxy, sy


@njit(inline="always", **LEAN_JIT)
def _set_line(params, base, first, m, sx, sxx, sxy, sy):
    """The least-squares line through the sums (a constant at ``first`` when it degenerates)."""
    var = sxx - sx * sx / m
    slope = 0.0
    intercept = np.float64(first)
    if var > 0.0:
        s = (sxy - sx * sy / m) / var
        c0 = first + (sy - s * sx) / m
        if np.isfinite(s) and np.isfinite(c0) and s >= 0.0:
            slope = s
            intercept = c0
    params[base + 1] = slope
    params[base + 2] = intercept


def _span_fits(last, abits):
    """True when every key of a run from the anchor to ``last`` is an integer less than 2**63
    above the anchor: :func:`_offset` may then convert the difference as a signed integer."""


@overload(_span_fits, jit_options=LEAN_JIT)
def _span_fits_impl(last, abits):
    if isinstance(last, types.Integer):
        if last.signed:
            return lambda last, abits: np.uint64(np.int64(last)) - np.uint64(abits) < np.uint64(1 << 63)
        return lambda last, abits: np.uint64(last) - np.uint64(abits) < np.uint64(1 << 63)
    return lambda last, abits: False


def _offset(q, abits, aval, fits):
    """:func:`learnedidx._rmi_kernels.key_offset` for a key at or above the anchor, the same
    float64 bit for bit; when ``fits`` the difference converts as a signed integer, one
    instruction instead of the unsigned conversion's several (measured: the error pass runs
    about 15% faster)."""


@overload(_offset, jit_options=LEAN_JIT)
def _offset_impl(q, abits, aval, fits):
    if isinstance(q, types.Integer):
        if q.signed:
            def impl(q, abits, aval, fits):
                if fits:
                    return np.float64(np.int64(np.uint64(np.int64(q)) - np.uint64(abits)))
                return R.key_offset(q, abits, aval)
            return impl

        def impl(q, abits, aval, fits):
            if fits:
                return np.float64(np.int64(np.uint64(q) - np.uint64(abits)))
            return R.key_offset(q, abits, aval)
        return impl
    return lambda q, abits, aval, fits: R.key_offset(q, abits, aval)


@njit(inline="always", **LEAN_JIT)
def _run_errors(params, pbits, base, keys, a, b, n, log2_fixed):
    """``(lo, hi, sum)`` over keys[a:b] (all at or above the leaf's anchor) of e = position -
    prediction, with the expression inference evaluates: ``lo <= e < hi`` for every key. The
    sum of log2(|e| + 1), in LOG2_SCALE fixed point, is taken over every LOG2_STRIDE-th key of
    a run of 64 keys or more and scaled up: a statistic, and its per-key cost (a second
    prediction and a table lookup) was a third of the refit at every 4th key (measured)."""
    abits = pbits[base]
    aval = params[base]
    slope = params[base + 1]
    intercept = params[base + 2]
    fits = _span_fits(keys[b - 1], abits)
    e_lo = a - R._clamp_index(slope * _offset(keys[a], abits, aval, fits) + intercept, n)
    e_hi = e_lo + 1
    for i in range(a, b):
        e = i - R._clamp_index(slope * _offset(keys[i], abits, aval, fits) + intercept, n)
        e_lo = min(e_lo, e)
        e_hi = max(e_hi, e + 1)
    table_size = log2_fixed.shape[0]
    stride = LOG2_STRIDE if b - a >= 64 else 1
    total = 0
    for i in range(a, b, stride):
        err = abs(i - R._clamp_index(slope * _offset(keys[i], abits, aval, fits) + intercept, n))
        if err < table_size:
            total += log2_fixed[err]
        else:
            total += np.int64(np.log2(err + 1.0) * LOG2_SCALE)
    if stride > 1:
        total = np.int64(total * ((b - a) / ((b - a + stride - 1) // stride)))
    return e_lo, e_hi, total


REFIT_CHUNK = 1024  #: runs per task of the parallel refit


@njit(**LEAN_JIT)
def _refit_one_run_leaves(params, keys, run_start, run_leaf, r0, r1, runs_of, lo, hi, leaf_base, log2_fixed):
    """Fit and check every leaf that has a single run among runs ``r0:r1``, in one visit (its
    keys still in cache from the fit); returns their fixed-point log2 error sum."""
    n = keys.shape[0]
    pbits = params.view(np.int64)
    total = 0
    for ru in range(r0, r1):
        leaf = run_leaf[ru]
        if runs_of[leaf] != 1:
            continue
        base = leaf_base + leaf * R.LINEAR_WIDTH
        a = run_start[ru]
        b = run_start[ru + 1]
        _set_anchor(params, pbits, base, keys[a])
        m, sx, sxx, sxy, sy = _fit_sums(params, pbits, base, keys, a, b, a)
        _set_line(params, base, a, m, sx, sxx, sxy, sy)
        lo[leaf], hi[leaf], t = _run_errors(params, pbits, base, keys, a, b, n, log2_fixed)
        total += t
    return total


@njit(parallel=True, **_JIT)
def _refit_one_run_leaves_parallel(params, keys, run_start, run_leaf, nr, runs_of, lo, hi, leaf_base, log2_fixed):
    """:func:`_refit_one_run_leaves` over all runs, REFIT_CHUNK runs a task (leaves are
    independent: each run writes only its own leaf's record)."""
    total = 0
    for c in prange((nr + REFIT_CHUNK - 1) // REFIT_CHUNK):
        total += _refit_one_run_leaves(params, keys, run_start, run_leaf, c * REFIT_CHUNK,
                                       min(nr, (c + 1) * REFIT_CHUNK), runs_of, lo, hi, leaf_base, log2_fixed)
    return total


@njit(**_JIT)
def refit_leaves(meta, params, keys, run_start, run_leaf, nr, log2_fixed, parallel):
    """Pass B of a merge: refit every leaf by least squares on its keys, then record its errors.

    A leaf with one run (almost all: routing is monotone but near inner models' borders) is
    fitted and checked in one visit, on every thread when ``parallel`` (measured here: 38
    against 50 ms a merge at 10M keys); a leaf with runs far apart is fitted on all of them,
    with the anchor at its first key, like training does, then checked. Every key is evaluated
    with the very expression inference uses, so the error bounds hold bit for bit as in
    :func:`learnedidx.models.leaf_errors`. Leaves without keys become constants (the
    position where their keys would start), as training makes them. ``params`` is updated in
    place (leaf records only) and ``meta[1]`` must already be n. ``log2_fixed[e]`` is
    log2(e + 1) * LOG2_SCALE rounded.

    Returns ``(max_abs_error, sum_log2_error, sum_window)``. Complexity O(n + runs).
    """
    n = keys.shape[0]
    pbits = params.view(np.int64)
    perr = params.view(np.int32)
    rec = R.META_HEADER + R.META_STRIDE * (meta[0] - 1)
    leaves = meta[rec + 1]
    leaf_base = meta[rec + 2]
    runs_of = np.zeros(leaves, dtype=np.int64)
    first = np.full(leaves, -1, dtype=np.int64)
    for ru in range(nr):
        leaf = run_leaf[ru]
        runs_of[leaf] += 1
        if first[leaf] < 0:
            first[leaf] = run_start[ru]
    lo = np.zeros(leaves, dtype=np.int64)
    hi = np.zeros(leaves, dtype=np.int64)
    if parallel:
        total = _refit_one_run_leaves_parallel(params, keys, run_start, run_leaf, nr, runs_of, lo, hi, leaf_base,
                                               log2_fixed)
    else:
        total = _refit_one_run_leaves(params, keys, run_start, run_leaf, ZERO, nr, runs_of, lo, hi, leaf_base,
                                      log2_fixed)
    # Leaves of several runs: their sums, then their lines, then their errors.
    multi = 0
    count = np.zeros(leaves, dtype=np.int64)
    sum_x = np.zeros(leaves)
    sum_xx = np.zeros(leaves)
    sum_xy = np.zeros(leaves)
    sum_y = np.zeros(leaves)
    for ru in range(nr):
        leaf = run_leaf[ru]
        if runs_of[leaf] == 1:
            continue
        base = leaf_base + leaf * R.LINEAR_WIDTH
        a = run_start[ru]
        f = first[leaf]
        if a == f:
            _set_anchor(params, pbits, base, keys[a])
        m, sx, sxx, sxy, sy = _fit_sums(params, pbits, base, keys, a, run_start[ru + 1], f)
        multi += 1
        count[leaf] += m
        sum_x[leaf] += sx
        sum_xx[leaf] += sxx
        sum_xy[leaf] += sxy
        sum_y[leaf] += sy
    if multi:
        for leaf in range(leaves):
            if runs_of[leaf] > 1:
                base = leaf_base + leaf * R.LINEAR_WIDTH
                _set_line(params, base, first[leaf], count[leaf], sum_x[leaf], sum_xx[leaf], sum_xy[leaf],
                          sum_y[leaf])
                lo[leaf] = np.iinfo(np.int64).max
                hi[leaf] = np.iinfo(np.int64).min
        for ru in range(nr):
            leaf = run_leaf[ru]
            if runs_of[leaf] > 1:
                base = leaf_base + leaf * R.LINEAR_WIDTH
                e_lo, e_hi, t = _run_errors(params, pbits, base, keys, run_start[ru], run_start[ru + 1], n,
                                            log2_fixed)
                lo[leaf] = min(lo[leaf], e_lo)
                hi[leaf] = max(hi[leaf], e_hi)
                total += t
    nxt = n
    max_abs = 0
    sum_window = 0
    for leaf in range(leaves - 1, -1, -1):
        base = leaf_base + leaf * R.LINEAR_WIDTH
        if runs_of[leaf] == 0:
            params[base] = 0.0
            params[base + 1] = 0.0
            params[base + 2] = np.float64(nxt)
        else:
            nxt = first[leaf]
            max_abs = max(max_abs, -lo[leaf], hi[leaf] - 1)
        perr[2 * (base + R.ERROR_SLOT)] = min(max(lo[leaf], -(2**31)), 2**31 - 1)
        perr[2 * (base + R.ERROR_SLOT) + 1] = min(max(hi[leaf], -(2**31)), 2**31 - 1)
        sum_window += hi[leaf] - lo[leaf]
    return max_abs, total / LOG2_SCALE, sum_window


# --- scalar entry points (arrays by address, see learnedidx._pointers) ---------------------


@njit(inline="always", **LEAN_JIT)
def _views(h, q):
    """The arrays named by header h, rebuilt from their addresses."""
    n = h[H_N]
    mk = carray(ptr_like(h[H_MK], q), n)
    mh = carray(ptr_like(h[H_META], np.int64(0)), R.META_HEADER)
    meta = carray(ptr_like(h[H_META], np.int64(0)), R.META_HEADER + R.META_STRIDE * mh[0])
    rec = R.META_HEADER + R.META_STRIDE * (meta[0] - 1)
    params = carray(ptr_like(h[H_PARAMS], np.float64(0.0)), meta[rec + 2] + meta[rec + 1] * meta[rec + 3])
    tbits = carray(ptr_like(h[H_TBITS], np.uint64(0)), (n >> 6) + 1)
    tcum = carray(ptr_like(h[H_TCUM], np.int64(0)), (n >> BLOCK_SHIFT) + 2)
    cap = h[H_CAP]
    order = carray(ptr_like(h[H_ORDER], np.int64(0)), cap)
    dmax = carray(ptr_like(h[H_DMAX], q), cap)
    dk = carray(ptr_like(h[H_DK], q), (cap, h[H_C]))
    dn = carray(ptr_like(h[H_DN], np.int64(0)), cap)
    dcum = carray(ptr_like(h[H_DCUM], np.int64(0)), cap + 1)
    st = carray(ptr_like(h[H_ST], np.int64(0)), ST_SIZE)
    return mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def rank_at(h_address, q, right):
    """Number of live keys < q (<= q when right), for q of the key dtype."""
    h = carray(ptr_like(h_address, np.int64(0)), H_SIZE)
    mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st = _views(h, q)
    pbits = params.view(np.int64)
    p = R.lookup_one(meta, params, pbits, mk[:0], pbits[:0], mk, q, right, 0)  # lines only: no hybrid samples
    return p - t_below(tbits, tcum, p) + d_rank(dk, dn, order, dmax, dcum, st[K_CHUNKS], st[D_KEYS], q, right == 1)


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def find_at(h_address, q):
    """Location of key q: a live main position, ``-2 - delta slot``, or -1."""
    h = carray(ptr_like(h_address, np.int64(0)), H_SIZE)
    mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st = _views(h, q)
    pbits = params.view(np.int64)
    p = R.lookup_one(meta, params, pbits, mk[:0], pbits[:0], mk, q, 2, 0)  # lines only: no hybrid samples
    if p >= 0:
        return -1 if t_test(tbits, p) else p
    s = d_find(dk, dn, order, dmax, st[K_CHUNKS], q)
    return -2 - s if s >= 0 else -1

"""The chunked delta: sorted keys not in main, in chunks of ``C`` slots (pure Numba over plain arrays)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._intrinsics import LEAN_JIT
from .._search import ZERO, binary_search
from ._layout import DIRTY, D_KEYS, K_CHUNKS, N_FREE, JIT


@njit(inline="always", **LEAN_JIT)
def d_find(dk, dn, order, dmax, k, q):
    """Flat slot ``c * C + j`` of key q in the delta, or -1."""
    o = binary_search(dmax, q, ZERO, k, False)
    if o == k:
        return -1
    c = order[o]
    j = binary_search(dk[c], q, ZERO, dn[c], False)
    if j < dn[c] and dk[c, j] == q:
        return c * dk.shape[1] + j
    return -1


@njit(inline="always", **LEAN_JIT)
def d_rank(dk, dn, order, dmax, dcum, k, d, q, right):
    """Number of delta keys < q (<= q when right)."""
    o = binary_search(dmax, q, ZERO, k, right)
    if o == k:
        return d
    c = order[o]
    return dcum[o] + binary_search(dk[c], q, ZERO, dn[c], right)


@njit(**LEAN_JIT)
def d_fix(delta):
    """Recompute ``dcum`` from the first order position that changed."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
    for o in range(st[DIRTY], k):
        dcum[o + 1] = dcum[o] + dn[order[o]]
    st[DIRTY] = k


@njit(inline="always", **LEAN_JIT)
def _dirty(st, o):
    if o < st[DIRTY]:
        st[DIRTY] = o


@njit(**LEAN_JIT)
def d_insert(delta, q, v):
    """Insert key q (absent from the delta) with value v; needs one free chunk.

    Complexity O(log k + C): a binary search over the chunks' maxima, one in the chunk, a
    shift inside the chunk, and when the chunk is full a split (O(k) to shift ``order``).
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
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
    o = binary_search(dmax, q, ZERO, k, False)
    if o == k:
        o = k - 1
    _dirty(st, o)
    c = order[o]
    m = dn[c]
    j = binary_search(dk[c], q, ZERO, m, False)
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
def d_remove(delta, q):
    """Remove key q from the delta; returns False when it is absent. Complexity O(log k + C)."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
    o = binary_search(dmax, q, ZERO, k, False)
    if o == k:
        return False
    c = order[o]
    m = dn[c]
    j = binary_search(dk[c], q, ZERO, m, False)
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
def d_upsert_sorted(delta, keys, vals):
    """Upsert sorted unique keys one by one; returns how many were new.

    Needs ``len(keys)`` free chunks in the worst case (the caller grows the pool first).
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    cap_c = dk.shape[1]
    inserted = 0
    for i in range(keys.shape[0]):
        q = keys[i]
        slot = d_find(dk, dn, order, dmax, st[K_CHUNKS], q)
        if slot >= 0:
            dv[slot // cap_c, slot % cap_c] = vals[i]
        else:
            d_insert(delta, q, vals[i])
            inserted += 1
    return inserted


@njit(**LEAN_JIT)
def d_find_many(delta, keys, out):
    """``out[i]`` = flat slot of keys[i] in the delta, or -1."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
    for i in range(keys.shape[0]):
        out[i] = d_find(dk, dn, order, dmax, k, keys[i])


@njit(**LEAN_JIT)
def d_remove_many(delta, keys):
    """Remove every key (each must be in the delta)."""
    for q in keys:
        d_remove(delta, q)


@njit(**LEAN_JIT)
def d_bulk_chunks(delta, keys, fill):
    """Upper bound on the chunks :func:`d_bulk_upsert` needs for sorted ``keys``: O(k + b)."""
    st = delta.state
    return _chunks_needed(delta, ZERO, st[K_CHUNKS], keys, ZERO, keys.shape[0], fill)


@njit(inline="always", **LEAN_JIT)
def _batch_end(dmax, o, last, keys, bi, b_hi):
    """End of the sorted batch keys from ``bi`` that go into the chunk at order position o:
    those up to its largest key, or every key left when o is ``last``, the range's last chunk."""
    if o == last:
        return b_hi
    e = bi
    top = dmax[o]
    while e < b_hi and keys[e] <= top:
        e += 1
    return e


@njit(**LEAN_JIT)
def _chunks_needed(delta, o_lo, o_hi, keys, b_lo, b_hi, fill):
    """:func:`d_bulk_chunks` for chunk positions ``o_lo:o_hi`` and batch keys ``b_lo:b_hi``
    (the last chunk of the range takes every key left)."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    cap_c = dk.shape[1]
    if o_hi == o_lo:
        return (b_hi - b_lo + fill - 1) // fill
    total = 0
    bi = b_lo
    for o in range(o_lo, o_hi):
        e = _batch_end(dmax, o, o_hi - 1, keys, bi, b_hi)
        m = dn[order[o]] + e - bi
        total += 1 if m <= cap_c else (m + fill - 1) // fill
        bi = e
    return total


@njit(**JIT)
def d_bulk_upsert(delta, keys, vals, fill, scratch, parallel):
    """Upsert sorted unique keys chunk by chunk, in place; returns how many were new.

    ``scratch`` is ``(order2, dmax2, tk, tv)``. Each chunk is merged with the batch keys that
    fall in it (``tk``/``tv`` hold the merge, at least ``2 C + len(keys)`` long); a chunk that
    overflows is cut into pieces of about ``fill`` keys taken from the free stack (the caller
    makes room with :func:`d_bulk_chunks`). Chunks that get no key are not touched.
    ``order2``/``dmax2`` receive the new chunk order. With ``parallel`` and two chunks or more, the lower and
    the upper half of the chunks take their keys at once on two threads (see
    :func:`_bulk_upsert_halves`). Complexity O(k + b + C * chunks touched).
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    order2, dmax2, tk, tv = scratch
    k = st[K_CHUNKS]
    b = keys.shape[0]
    if parallel and k >= 2:
        w2, inserted, top = _bulk_upsert_halves(delta, keys, vals, fill, scratch)
    else:
        w2, inserted, top = _bulk_upsert_range(delta, ZERO, k, keys, vals, ZERO, b, fill, st[N_FREE], scratch)
    for z in range(w2):
        order[z] = order2[z]
        dmax[z] = dmax2[z]
    st[N_FREE] = top
    st[K_CHUNKS] = w2
    st[D_KEYS] += inserted
    st[DIRTY] = 0
    return inserted


@njit(parallel=True, **JIT)
def _bulk_upsert_halves(delta, keys, vals, fill, scratch):
    """:func:`_bulk_upsert_range` for the lower and the upper half of the chunks on two threads;
    returns ``(chunks, inserted, free top)`` like it.

    The batch is cut after the lower half's largest key. Each half pops new chunks from its
    own share of the free stack (the lower half's is its :func:`_chunks_needed`, from the top)
    and writes its chunk order apart; the ids left are then packed back into one stack.
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    order2, dmax2, tk, tv = scratch
    k = st[K_CHUNKS]
    top = st[N_FREE]
    c = dk.shape[1]
    b = keys.shape[0]
    mid = k // 2
    # Not np.searchsorted(side="right"): typing it, Numba keeps a failed attempt whose traceback
    # holds the calling frames, so the first index to compile it was never freed.
    cut = binary_search(keys, dmax[mid - 1], ZERO, keys.shape[0], True)
    # The lower half pops from free[low_floor:top]; the upper half below low_floor, within the
    # room the caller made for the whole batch.
    low_floor = top - (_chunks_needed(delta, ZERO, mid, keys, ZERO, cut, fill) - mid)
    high_order = np.empty(order2.shape[0], dtype=np.int64)
    high_dmax = np.empty(order2.shape[0], dtype=dmax2.dtype)
    split = c + cut
    results = np.zeros((2, 3), dtype=np.int64)
    for half in prange(2):
        if half == 0:
            w, ins, t = _bulk_upsert_range(delta, ZERO, mid, keys, vals, ZERO, cut, fill, top,
                                           (order2, dmax2, tk[:split], tv[:split]))
        else:
            w, ins, t = _bulk_upsert_range(delta, mid, k, keys, vals, cut, b, fill, low_floor,
                                           (high_order, high_dmax, tk[split:], tv[split:]))
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
def _bulk_upsert_range(delta, o_lo, o_hi, keys, vals, b_lo, b_hi, fill, top, out):
    """The chunks at order positions ``o_lo:o_hi`` take the batch keys ``b_lo:b_hi`` (the last
    of them every key left; none: the keys become new chunks). New chunks pop from
    ``free[:top]``; ``out`` is ``(order2, dmax2, tk, tv)``: the chunk order is written to
    ``order2``/``dmax2``, the merges go through ``tk``/``tv``.
    Returns ``(w2, inserted, top)`` after it."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    order2, dmax2, tk, tv = out
    w2 = 0
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
            e = _batch_end(dmax, o, o_hi - 1, keys, bi, b_hi)
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
def d_bulk_remove(delta, keys):
    """Remove sorted unique keys (absent ones are skipped) chunk by chunk, in place; empty
    chunks return to the free stack. Returns how many were removed. Complexity O(k + b + C *
    chunks touched)."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
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


@njit(**LEAN_JIT)
def d_flatten(delta, out_k, out_v):
    """Copy the delta into flat sorted arrays."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
    w = 0
    for o in range(k):
        c = order[o]
        for j in range(dn[c]):
            out_k[w] = dk[c, j]
            out_v[w] = dv[c, j]
            w += 1
    return w


@njit(**LEAN_JIT)
def d_rebuild(delta, keys, vals, fill):
    """Lay flat sorted unique keys out in chunks of ``fill`` keys (the pool must hold them)."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
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

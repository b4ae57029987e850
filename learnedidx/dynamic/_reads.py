"""Batch reads (main's RMI, then the delta) and the merged rows of main and delta (pure Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _rmi_kernels as R
from .._intrinsics import LEAN_JIT, prefetch
from .._modes import LEFT
from .._search import ZERO, prefetch_window, search_group
from ._directory import dir_range, d_locate_in
from ._layout import BLOCK_SHIFT, DIR_SHIFT, K_CHUNKS
from ._tombstones import t_below, t_test


@njit(**LEAN_JIT)  # not inlined: one compiled copy for lookup_batch and rank_batch
def _search_group(rmi, mk, queries, g, top, mode, scratch):
    """Main ranks of ``queries[g:top]`` (mode 0: keys < q, 1: keys <= q) into ``pos``.

    The phases of the group variant of :func:`learnedidx._rmi_kernels.lookup_batch`: route every query
    and prefetch its leaf record, then compute the windows and prefetch their keys, then
    search them in lock-step (:func:`learnedidx._search.search_group`); each phase's loads were
    requested a phase earlier.
    """
    meta, params, _, _ = rmi
    qbuf, leaf, pos, lo, hi = scratch
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
            lo[x] = -1  # answered: the search skips it
            continue
        p, a, b = R.leaf_window(plan, params, pbits, qbuf[x], leaf[x])
        leaf[x] = p  # the leaf is done with: its slot holds the predicted position
        lo[x] = a
        hi[x] = b
        prefetch_window(mk, a, b)
    search_group(mk, qbuf, leaf, lo, hi, top - g, pos, ZERO, LEFT, plan.method)


@njit(inline="always", **LEAN_JIT)
def _prefetch_delta(use_dir, dirs, dk, order, k, r, n, x, lo, hi):
    """Prefetch the delta chunk where keys between main ranks r - 1 and r sit (the directory
    entries were prefetched a phase earlier); keep the order-slot range in lo/hi[x]."""
    cap_c = dk.shape[1]
    a, b = dir_range(use_dir, dirs, r, n, k * cap_c)
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
def lookup_batch(rmi, mk, mv, tomb, has_tombstones, use_dir, dirs, delta, queries, out, found, scratch):
    """``(out[i], found[i])``: the value of key ``queries[i]`` among main and the delta,
    GROUP lookups at a time in lock-step: the main
    search (:func:`_search_group`), then a main hit prefetches its value and tombstone word,
    a miss the directory entries around its rank and then the delta chunk they point to, and
    the last phase reads what was prefetched. ``scratch``: :func:`learnedidx._search.group_buffers`
    of GROUP. Complexity O(m (stages + log window + log(delta keys in range)))."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    tbits, _ = tomb
    qbuf, leaf, pos, lo, hi = scratch
    stop = queries.shape[0]
    n = mk.shape[0]
    k = st[K_CHUNKS]
    for g in range(0, stop, R.GROUP):
        top = min(stop, g + R.GROUP)
        _search_group(rmi, mk, queries, g, top, ZERO, scratch)
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
def rank_batch(rmi, mk, tomb, has_tombstones, use_dir, dirs, delta, queries, right, out, scratch):
    """Ranks of ``queries`` (keys < q, or <= q when right): the main search, then
    prefetches of the tombstone counts and of the delta chunk, as in :func:`lookup_batch`."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    tbits, tcum = tomb
    qbuf, leaf, pos, lo, hi = scratch
    stop = queries.shape[0]
    n = mk.shape[0]
    k = st[K_CHUNKS]
    mode = 1 if right else 0
    for g in range(0, stop, R.GROUP):
        top = min(stop, g + R.GROUP)
        _search_group(rmi, mk, queries, g, top, mode, scratch)
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


@njit(**LEAN_JIT)
def materialize(mk, mv, tbits, delta, i0, i1, r0, r1, out_k, out_v):
    """Merge live main keys ``[i0, i1)`` with delta keys of ranks ``[r0, r1)`` into out."""
    dk, dv, dn, order, dmax, dcum, free, st = delta
    k = st[K_CHUNKS]
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

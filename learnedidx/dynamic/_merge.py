"""Merging the delta into main and refitting the RMI's leaves on the new keys (pure Numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .. import _rmi_kernels as R
from .._intrinsics import LEAN_JIT
from .._search import ZERO, binary_search
from ._layout import FIT_STRIDE, K_CHUNKS, LOG2_STRIDE, JIT
from ._tombstones import t_test


def _set_anchor(params, pbits, base, a):
    """Store anchor key a in a record's first slot as the kernels read it."""


@overload(_set_anchor, jit_options=LEAN_JIT)
def _set_anchor_impl(params, pbits, base, a):
    if isinstance(a, types.Float):
        def impl(params, pbits, base, a):
            params[base] = np.float64(a)
        return impl

    def impl(params, pbits, base, a):
        pbits[base] = R.anchor_bits(a)
    return impl


@njit(**JIT)
def leaf_runs(rmi, keys):
    """``(run_start, run_leaf)``: maximal runs of consecutive keys routed to one leaf.

    ``run_start`` has one more entry than ``run_leaf``: n. Complexity O(n * stages).
    """
    meta, params, _, _ = rmi
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


@njit(**JIT)
def merge_delta(src, n, tbits, has_tombstones, delta, rmi, runs, buf, in_place, parallel, out_runs):
    """Merge main (``src = (src_k, src_v)``, n keys) and the delta into ``buf = (kbuf, vbuf)``;
    ``runs``/``out_runs`` are ``(run_start, run_leaf)`` pairs, in and out.

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
    dk, dv, dn, order, dmax, dcum, free, st = delta
    src_k, src_v = src
    run_start, run_leaf = runs
    kbuf, vbuf = buf
    out_start, out_leaf = out_runs
    k = st[K_CHUNKS]
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
        nb = _merge_halves(src, n, d, nruns, split, delta, rmi, runs, buf, in_place, out_runs)
    else:
        stage = 0 if in_place else n  # every main key read from kbuf itself, or from src
        nb = _merge_back(buf, src, ZERO, ZERO, stage, n - 1, n + d - 1, nruns - 1, ZERO, k, delta, rmi, runs, out_runs)
        _reverse_runs(out_start, out_leaf, nb)
    out_start[nb] = n + d
    return nb


@njit(parallel=True, **JIT)
def _merge_halves(src, n, d, nruns, split, delta, rmi, runs, buf, in_place, out_runs):
    """The backward merge as two independent halves on two threads; returns the runs' number.

    The lower half merges main[:p] with the delta chunks before ``split`` (h keys) into
    positions [0, p + h); the upper half merges main[p:] with the others into [p + h, n + d),
    where p is the number of main keys below the split chunk's first key. In place, the lower
    half's writes land on main[p:p + h], which the upper half has yet to read: those keys are
    copied aside first (at most h of them) and read from the copy.
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    src_k, src_v = src
    run_start, run_leaf = runs
    kbuf, vbuf = buf
    out_start, out_leaf = out_runs
    k = st[K_CHUNKS]
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
            counts[0] = _merge_back(buf, (saved_k, saved_v), ZERO, ZERO, ZERO if in_place else n, p - 1, p + h - 1,
                                    r_low, ZERO, split, delta, rmi, runs, out_runs)
        else:
            counts[1] = _merge_back(buf, (saved_k, saved_v), p, offset, stage, n - 1, n + d - 1, nruns - 1, split, k,
                                    delta, rmi, runs, (up_start, up_leaf))
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
def _merge_back(buf, saved, lo, offset, stage, i, w, r, o_lo, o_hi, delta, rmi, runs, out_runs):
    """Merge main keys ``lo..i`` and delta chunks ``o_lo:o_hi`` backward into kbuf/vbuf, the
    largest at position w.

    Main keys at positions >= ``stage`` are read from kbuf itself (every write then lands at or
    after the read position), those below it from ``saved_k``/``saved_v`` at position -
    ``offset``. ``r`` is the run that holds position i. Records the output runs from the top
    down (``out_leaf`` and each run's lowest position in ``out_start``) and returns their number.
    """
    dk, dv, dn, order, dmax, dcum, free, st = delta
    meta, params, _, _ = rmi
    kbuf, vbuf = buf
    saved_k, saved_v = saved
    run_start, run_leaf = runs
    out_start, out_leaf = out_runs
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
    e_lo = a - R.clamp_index(slope * _offset(keys[a], abits, aval, fits) + intercept, n)
    e_hi = e_lo + 1
    for i in range(a, b):
        e = i - R.clamp_index(slope * _offset(keys[i], abits, aval, fits) + intercept, n)
        e_lo = min(e_lo, e)
        e_hi = max(e_hi, e + 1)
    table_size = log2_fixed.shape[0]
    stride = LOG2_STRIDE if b - a >= 64 else 1
    total = 0
    for i in range(a, b, stride):
        err = abs(i - R.clamp_index(slope * _offset(keys[i], abits, aval, fits) + intercept, n))
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


@njit(parallel=True, **JIT)
def _refit_one_run_leaves_parallel(params, keys, run_start, run_leaf, nr, runs_of, lo, hi, leaf_base, log2_fixed):
    """:func:`_refit_one_run_leaves` over all runs, REFIT_CHUNK runs a task (leaves are
    independent: each run writes only its own leaf's record)."""
    total = 0
    for c in prange((nr + REFIT_CHUNK - 1) // REFIT_CHUNK):
        total += _refit_one_run_leaves(params, keys, run_start, run_leaf, c * REFIT_CHUNK,
                                       min(nr, (c + 1) * REFIT_CHUNK), runs_of, lo, hi, leaf_base, log2_fixed)
    return total


@njit(**JIT)
def refit_leaves(rmi, keys, runs, nr, log2_fixed, parallel):
    """Pass B of a merge: refit every leaf by least squares on its keys, then record its errors.

    A leaf with one run (almost all: routing is monotone but near inner models' borders) is
    fitted and checked in one visit, on every thread when ``parallel`` (docs/design.md,
    "DynamicRMI"); a leaf with runs far apart is fitted on all of them,
    with the anchor at its first key, like training does, then checked. Every key is evaluated
    with the very expression inference uses, so the error bounds hold bit for bit as in
    :func:`learnedidx.models.leaf_errors`. Leaves without keys become constants (the
    position where their keys would start), as training makes them. ``params`` is updated in
    place (leaf records only) and ``meta[1]`` must already be n. ``log2_fixed[e]`` is
    log2(e + 1) * LOG2_SCALE rounded.

    Returns ``(max_abs_error, sum_log2_error, sum_window)``. Complexity O(n + runs).
    """
    meta, params, _, _ = rmi
    run_start, run_leaf = runs
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

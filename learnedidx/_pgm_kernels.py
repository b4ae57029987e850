"""PGM-index kernels: optimal piecewise-linear segments, their error bounds and lookups
(pure Numba over plain arrays).

A PGM is stored in three arrays:

``meta`` (int64): ``[n, levels, epsilon, epsilon_recursive]``, then one 4-slot record per level,
    bottom level first: ``(offset, count, err_lo, err_hi)``. Level 0's segments cover the keys;
    level l's cover the first keys of level l - 1's segments; the top level has one segment.
    ``err_lo``/``err_hi`` bound, for every query, ``lb - pos`` where ``pos`` is the level's
    prediction into the array below and ``lb`` the query's lower bound there (measured).
``seg_keys`` (key dtype): each segment's first key, level after level (each level sorted).
``params`` (float64): ``[slope, intercept]`` per segment, in the order of ``seg_keys``; the
    segment predicts ``intercept + slope * (q - first_key)``, the subtraction done exactly in
    64-bit integers before one rounding (as the RMI's anchors).

A lookup starts at the top segment; at each level it predicts a window in the level below,
searches it for the segment whose range holds q, and at level 0 predicts the key's window.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from ._intrinsics import LEAN_JIT, prefetch
from ._pointers import ptr_like
from ._rmi_kernels import anchor_bits, clamp_index, key_offset
from ._search import (
    SEARCH_BINARY,
    finish,
    predecessor,
    prefetch_window,
    prepare_group,
    prepare_query,
    NEEDS_SEARCH,
    search_group,
    search_in_window,
    step_class,
)

META_N = 0
META_LEVELS = 1
META_EPSILON = 2
META_EPSILON_RECURSIVE = 3
META_HEADER = 4
META_STRIDE = 4  #: per level: offset, count, err_lo, err_hi
GROUP = 32  #: lookups interleaved in lock-step by the batch kernel

_JIT = dict(nogil=True, cache=True)


# ---------------------------------------------------------------------------------------------
# Training: the streaming optimal piecewise-linear approximation (O'Rourke's algorithm, as
# the PGM-index paper uses it). Each point (x, y) asks for a line within [y - eps, y + eps].
# The feasible lines are bounded by the steepest and the flattest one; each is pinned by two
# points of a "rectangle" (r0..r3). Only the lower convex hull of the upper points and the upper
# convex hull of the lower points can pin them later, so those two chains are kept; a point
# outside both extreme lines closes the segment.


@njit(inline="always", **_JIT)
def _cross(ox, oy, ax, ay, bx, by):
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@njit(**_JIT)
def _grown(a):
    """``a`` copied into an array twice as long (the caller checked it is full)."""
    b = np.empty(2 * a.shape[0], dtype=a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(**_JIT)
def fit_segments(points, eps, start):
    """Optimal segments over sorted ``points[start:]`` (duplicates allowed: a run is one
    point at its first position; ``points[start]`` starts a run): every distinct point's first
    position is within ``eps`` of its segment's line, in exact arithmetic (float rounding is
    absorbed by the measured bounds, :func:`level_errors`). Complexity O(n) time, O(longest
    hull) scratch.

    Returns:
        ``(starts, slopes, intercepts)``: position in ``points`` of each segment's first
        point, and its line ``intercept + slope * (q - points[start])`` in absolute positions.
    """
    n = points.shape[0]
    starts = np.empty(64, dtype=np.int64)
    slopes = np.empty(64)
    intercepts = np.empty(64)
    ux = np.empty(64)
    uy = np.empty(64)
    lx = np.empty(64)
    ly = np.empty(64)
    count = 0
    i = start
    while i < n:
        j, slope, intercept, fitted = _fit_one(points, np.float64(eps), i, ux, uy, lx, ly)
        if not fitted:  # a hull outgrew its scratch: again with twice the room
            ux, uy, lx, ly = _grown(ux), _grown(uy), _grown(lx), _grown(ly)
            continue
        if count == starts.shape[0]:
            starts, slopes, intercepts = _grown(starts), _grown(slopes), _grown(intercepts)
        starts[count] = i
        slopes[count] = slope
        intercepts[count] = intercept + i
        count += 1
        i = j
    return starts[:count].copy(), slopes[:count].copy(), intercepts[:count].copy()


@njit(**LEAN_JIT)
def _fit_one(points, e, i, ux, uy, lx, ly):
    """The longest segment from ``points[i]``: ``(end, slope, intercept, fitted)`` with its
    line relative to its first point, or ``fitted`` False when a hull needs more room than
    the scratch chains ``ux, uy`` (upper points) and ``lx, ly`` (lower points) have.
    Without reference counting: this loop is the whole build (an array rebound in it cost
    several atomic operations a point)."""
    n = points.shape[0]
    anchor = points[i]
    bits = anchor_bits(anchor)
    value = np.float64(anchor)
    nu = 0
    nl = 0
    us = 0
    ls = 0
    npts = 0
    r0x = r0y = r1x = r1y = r2x = r2y = r3x = r3y = 0.0
    j = i
    while j < n:
        if j > i and points[j] == points[j - 1]:
            j += 1
            continue
        x = key_offset(points[j], bits, value)
        y = np.float64(j - i)
        if npts == 0:
            r0x, r0y, r1x, r1y = x, y + e, x, y - e
            ux[0], uy[0], lx[0], ly[0] = x, y + e, x, y - e
            nu = nl = 1
        elif npts == 1:
            r2x, r2y, r3x, r3y = x, y - e, x, y + e
            ux[1], uy[1], lx[1], ly[1] = x, y + e, x, y - e  # the chains hold at least 64
            nu = nl = 2
        else:
            s1x, s1y = r2x - r0x, r2y - r0y  # the flattest line, through r0 and r2
            s2x, s2y = r3x - r1x, r3y - r1y  # the steepest line, through r1 and r3
            if s1x * (y + e - r2y) - s1y * (x - r2x) < 0.0 or s2x * (y - e - r3y) - s2y * (x - r3x) > 0.0:
                break  # above the steepest or below the flattest line: no line fits
            if s2x * (y + e - r1y) - s2y * (x - r1x) < 0.0:
                # The upper point lowers the steepest line: it now pivots on the point of
                # the lower chain with the smallest slope to it.
                best = ls
                for t in range(ls + 1, nl):
                    if (y + e - ly[t]) * (x - lx[best]) < (y + e - ly[best]) * (x - lx[t]):
                        best = t
                    else:
                        break
                r1x, r1y, r3x, r3y = lx[best], ly[best], x, y + e
                ls = best
                while nu >= us + 2 and _cross(ux[nu - 2], uy[nu - 2], ux[nu - 1], uy[nu - 1], x, y + e) <= 0.0:
                    nu -= 1
                if nu == ux.shape[0]:
                    return j, 0.0, 0.0, False
                ux[nu], uy[nu] = x, y + e
                nu += 1
            if s1x * (y - e - r0y) - s1y * (x - r0x) > 0.0:
                # The lower point raises the flattest line: it pivots on the point of the
                # upper chain with the largest slope to it.
                best = us
                for t in range(us + 1, nu):
                    if (y - e - uy[t]) * (x - ux[best]) > (y - e - uy[best]) * (x - ux[t]):
                        best = t
                    else:
                        break
                r0x, r0y, r2x, r2y = ux[best], uy[best], x, y - e
                us = best
                while nl >= ls + 2 and _cross(lx[nl - 2], ly[nl - 2], lx[nl - 1], ly[nl - 1], x, y - e) >= 0.0:
                    nl -= 1
                if nl == lx.shape[0]:
                    return j, 0.0, 0.0, False
                lx[nl], ly[nl] = x, y - e
                nl += 1
        npts += 1
        j += 1
    slope = 0.0
    intercept = 0.0
    if npts >= 2:
        s1x, s1y = r2x - r0x, r2y - r0y
        s2x, s2y = r3x - r1x, r3y - r1y
        if s1x > 0.0 and s2x > 0.0:
            slope = 0.5 * (s1y / s1x + s2y / s2x)
            den = s1x * s2y - s1y * s2x
            if den != 0.0:
                # The extreme lines cross inside the feasible region: a line through the
                # crossing point with a slope between theirs fits every point.
                t = ((r1x - r0x) * s2y - (r1y - r0y) * s2x) / den
                intercept = (r0y + t * s1y) - slope * (r0x + t * s1x)
            if den == 0.0 or not np.isfinite(intercept):
                # Parallel (or overflowed): the line midway between the two.
                intercept = 0.5 * ((r0y - slope * r0x) + (r1y - slope * r1x))
    return j, slope, intercept, True


@njit(inline="always", **_JIT)
def segment_position(seg_keys, params, s, q, limit, end):
    """Position that segment ``s`` predicts for q, floored and clamped to [0, limit], and to
    at most the next segment's intercept when ``s + 1 < end`` (the end of its level): a line
    extrapolated into the gap before the next segment can overshoot it by more than epsilon,
    while the next segment's first key sits within epsilon of its intercept."""
    a = seg_keys[s]
    y = params[2 * s + 1] + params[2 * s] * key_offset(q, anchor_bits(a), np.float64(a))
    if s + 1 < end:
        y = min(y, params[2 * s + 3])
    return clamp_index(y, limit)


@njit(**LEAN_JIT)
def level_errors(points, starts, seg_keys, params, first, last, tail, has_tail, log2_table):
    """Bounds ``(lo, hi)`` with ``lo <= lb(q) - pos(q) <= hi`` for every query q that a level's
    segments (starting at ``points[starts]``, over sorted ``points``) are asked about, computed
    with the lookup's own arithmetic, and ``(max |error|, sum of log2(|error| + 1))`` over
    the points.

    A line is monotone, so the extremes over a segment are at its points (a run of equal
    points answers from its first position, and from its end just above it) and at the gap
    before the next segment (the predecessor of the next segment's first point). With
    ``has_tail`` the last segment is also asked about ``tail`` (up to the largest key).
    Segments ``first .. last - 1`` only, so that threads can share a level (the caller
    combines the bounds). ``log2_table[e]`` is ``log2(e + 1)`` for the errors most keys have
    (a table read instead of a logarithm: half the measuring time). Complexity O(points of
    those segments).
    """
    n = points.shape[0]
    lo = 0
    hi = 0
    max_abs = 0
    sum_log2 = 0.0
    seen = False
    count = starts.shape[0]
    i = starts[first]
    for s in range(first, last):
        end = starts[s + 1] if s + 1 < count else n
        while i < end:
            e = i + 1
            while e < end and points[e] == points[i]:
                e += 1
            pos = segment_position(seg_keys, params, s, points[i], n, count)
            if not seen:
                lo = i - pos
                hi = e - pos
                seen = True
            lo = min(lo, i - pos)
            hi = max(hi, e - pos)
            err = abs(i - pos)
            max_abs = max(max_abs, err)
            sum_log2 += (e - i) * (log2_table[err] if err < log2_table.shape[0] else np.log2(err + 1.0))
            i = e
        if end < n:
            pos = segment_position(seg_keys, params, s, predecessor(points[end]), n, count)
            lo = min(lo, end - pos)
            hi = max(hi, end - pos)
        elif has_tail and tail > points[n - 1]:
            pos = segment_position(seg_keys, params, s, tail, n, count)
            lo = min(lo, n - pos)
            hi = max(hi, n - pos)
    return lo, hi, max_abs, sum_log2


# ---------------------------------------------------------------------------------------------
# Lookups.


@njit(inline="always", **_JIT)
def _window(meta, level, pos, limit):
    """The level's window ``[lo, hi]`` around ``pos``, within [0, limit]."""
    rec = META_HEADER + META_STRIDE * level
    lo = pos + meta[rec + 2]
    hi = pos + meta[rec + 3]
    if lo < 0:
        lo = 0
    if hi > limit:
        hi = limit
    if lo > hi:
        lo = max(0, min(hi, limit))
        hi = lo
    return lo, hi


@njit(inline="always", **_JIT)
def _segment_of(meta, seg_keys, params, level, s, q):
    """The segment of level ``level - 1`` whose range holds q, from segment ``s`` of level
    ``level`` (an index into ``seg_keys``): a search of the predicted window, verified."""
    rec = META_HEADER + META_STRIDE * (level - 1)
    off = meta[rec]
    cnt = meta[rec + 1]
    below = seg_keys[off:off + cnt]
    pos = segment_position(seg_keys, params, s, q, cnt, _level_end(meta, level))
    lo, hi = _window(meta, level, pos, cnt)
    return off + _containing(below, q, search_in_window(below, q, pos, lo, hi, SEARCH_BINARY, 0))


@njit(inline="always", **_JIT)
def _containing(below, q, lb):
    """Index of the last entry of ``below`` not above q, from q's lower bound there (at least
    0: a crafted file cannot make it negative)."""
    if lb < below.shape[0] and below[lb] == q:
        return lb
    return max(lb - 1, 0)


@njit(inline="always", **_JIT)
def _level_end(meta, level):
    """One past the last index (into ``seg_keys``) of the level's segments."""
    rec = META_HEADER + META_STRIDE * level
    return meta[rec] + meta[rec + 1]


@njit(inline="always", **_JIT)
def _top(meta):
    levels = meta[META_LEVELS]
    return meta[META_HEADER + META_STRIDE * (levels - 1)]


@njit(inline="always", **_JIT)
def leaf_segment(meta, seg_keys, params, q):
    """Index (into ``seg_keys``) of the level-0 segment for q. Complexity O(levels log eps)."""
    s = _top(meta)
    for level in range(meta[META_LEVELS] - 1, 0, -1):
        s = _segment_of(meta, seg_keys, params, level, s, q)
    return s


@njit(inline="always", **_JIT)
def key_window(meta, seg_keys, params, q, s):
    """``(pos, lo, hi)`` in the keys from level-0 segment ``s``."""
    n = meta[META_N]
    pos = segment_position(seg_keys, params, s, q, n, meta[META_HEADER + 1])
    lo, hi = _window(meta, 0, pos, n)
    return pos, lo, hi


@njit(inline="always", **_JIT)
def lookup_one(meta, seg_keys, params, keys, q, mode, top):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1)."""
    q, answer = prepare_query(keys, q, mode)
    if answer != NEEDS_SEARCH:
        return answer
    pos, lo, hi = key_window(meta, seg_keys, params, q, leaf_segment(meta, seg_keys, params, q))
    prefetch_window(keys, lo, hi)
    return finish(keys, q, search_in_window(keys, q, pos, lo, hi, SEARCH_BINARY, top), mode)


@njit(**LEAN_JIT)
def lookup_loop(pgm, keys, queries, out, mode, top):
    """``out[i] = lookup_one(queries[i])``, one lookup after another.
    Complexity O(m (levels log eps_rec + log eps))."""
    meta, seg_keys, params = pgm
    for i in range(queries.shape[0]):
        out[i] = lookup_one(meta, seg_keys, params, keys, queries[i], mode, top)


@njit(**LEAN_JIT)
def lookup_group(pgm, keys, queries, out, mode, scratch):
    """Answer ``queries`` in groups of GROUP lookups that advance level by level in lock-step:
    each level's windows are prefetched one phase before they are searched, and each chosen
    segment's record one phase before it predicts. The key array is not empty; ``scratch``:
    :func:`learnedidx._search.group_buffers` of GROUP."""
    meta, seg_keys, params = pgm
    sq, ss, spos, slo, shi = scratch
    end = queries.shape[0]
    first = keys[0]
    last = keys[keys.shape[0] - 1]
    levels = meta[META_LEVELS]
    top_segment = _top(meta)
    for g in range(0, end, GROUP):
        stop = min(end, g + GROUP)
        count = stop - g
        prepare_group(keys, queries, out, g, stop, mode, first, last, sq, slo)
        for k in range(count):
            ss[k] = top_segment
        for level in range(levels - 1, 0, -1):
            rec = META_HEADER + META_STRIDE * (level - 1)
            off = meta[rec]
            cnt = meta[rec + 1]
            end_of_level = _level_end(meta, level)
            for k in range(count):
                if slo[k] >= 0:
                    pos = segment_position(seg_keys, params, ss[k], sq[k], cnt, end_of_level)
                    lo, hi = _window(meta, level, pos, cnt)
                    spos[k] = pos
                    shi[k] = hi
                    ss[k] = lo  # the window's start until the search below
                    prefetch(seg_keys, off + min(lo, cnt - 1))
                    prefetch(seg_keys, off + max(hi - 1, 0))
            below = seg_keys[off:off + cnt]
            step_class(below, sq, slo, ss, shi, count, -1, cnt, spos, ss)
            for k in range(count):
                if slo[k] >= 0:
                    s = off + _containing(below, sq[k], ss[k])
                    ss[k] = s
                    prefetch(params, 2 * s)
        for k in range(count):
            if slo[k] >= 0:
                spos[k], slo[k], shi[k] = key_window(meta, seg_keys, params, sq[k], ss[k])
        search_group(keys, sq, spos, slo, shi, count, out, g, mode, SEARCH_BINARY)


@njit(**LEAN_JIT)
def predict_batch(pgm, queries, pos, lo, hi):
    """Level-0 window of every query (no search of the keys). Complexity O(m levels log eps_rec)."""
    meta, seg_keys, params = pgm
    for i in range(queries.shape[0]):
        q = queries[i]
        pos[i], lo[i], hi[i] = key_window(meta, seg_keys, params, q, leaf_segment(meta, seg_keys, params, q))


@njit(cache=True)  # keeps the GIL: releasing and retaking it costs more than a lookup
def lookup_scalar_at(arrays_address, keys_address, top, q, mode):
    """:func:`lookup_one` over arrays given by address: ``arrays_address`` points to three
    int64 slots, the addresses of ``meta``, ``seg_keys`` and ``params`` (the index keeps all of
    them alive). The sizes come from ``meta``. Complexity O(levels log eps_rec + log eps)."""
    addresses = carray(ptr_like(arrays_address, np.int64(0)), 3)
    header = carray(ptr_like(addresses[0], np.int64(0)), META_HEADER)
    levels = header[META_LEVELS]
    meta = carray(ptr_like(addresses[0], np.int64(0)), META_HEADER + META_STRIDE * levels)
    segments = 0
    for level in range(levels):
        segments += meta[META_HEADER + META_STRIDE * level + 1]
    seg_keys = carray(ptr_like(addresses[1], q), segments)
    params = carray(ptr_like(addresses[2], np.float64(0.0)), 2 * segments)
    keys = carray(ptr_like(keys_address, q), header[META_N])
    return lookup_one(meta, seg_keys, params, keys, q, mode, top)

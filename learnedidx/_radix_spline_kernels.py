"""RadixSpline kernels (pure Numba over plain arrays): training, prediction, batch and scalar lookups.

A RadixSpline is stored in two arrays:

``meta`` (int64): a header of ``HEADER`` slots (``N`` keys, ``POINTS`` spline points, effective
    ``RADIX_BITS`` r, ``SHIFT``, ``MIN_IMAGE`` and ``RANGE`` of the key images as uint64 bit
    patterns, the window bounds ``ERR_LO`` and ``ERR_HI``), then the radix table: ``2**r + 1``
    uint32 entries packed two to a slot (read through ``meta[HEADER:].view(np.uint32)``).
``spline`` (uint64): ``POINTS`` pairs ``(image, position)``: a spline point's key image and the
    position of that key's first occurrence. Images strictly increase.

The *image* of a key is its order-preserving uint64 (:func:`key_image`): integers shifted to
unsigned, floats by the sortable-bits transform. The spline lives in image space, so
``q - spline_key`` is an exact unsigned subtraction whatever the dtype, rounded once to float64:
keys near 2**64 and dense nanosecond timestamps stay distinguishable. (For floats this is the
count of representable values between the two, a log-like scale.)

The radix table maps the top ``r`` bits of ``image - MIN_IMAGE`` (shifted right by ``SHIFT``, so
the table spans the keys' own range) to ``table[b]``: the number of spline points whose prefix is
below b. A query with prefix p therefore has its segment's right end among points
``table[p] .. table[p + 1]``, found by a short binary search; interpolation between the two
points gives the position, and ``[pos + ERR_LO, pos + ERR_HI]`` the window, both bounds measured
after training with this very interpolation.

Every index into ``table`` and ``spline`` is clamped into the ranges that
:meth:`learnedidx.radix_spline.RadixSpline._restore` checks, so no file can send a read out of
bounds; a wrong model only makes the last-mile search gallop further.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import carray, njit, types
from numba.extending import overload

from ._intrinsics import LEAN_JIT, prefetch, select_unpredictable
from ._pointers import ptr_like
from ._rmi_kernels import clamp_index
from ._search import (
    NEEDS_SEARCH,
    SEARCH_BINARY,
    finish,
    prepare_group,
    prepare_query,
    search_group,
    search_in_window,
    step_group,
)

N = 0
POINTS = 1
RADIX_BITS = 2
SHIFT = 3
MIN_IMAGE = 4
RANGE = 5
ERR_LO = 6
ERR_HI = 7
HEADER = 8

GROUP = 32  #: lookups interleaved in lock-step by the batch kernel (as the RMI's group variant)

VARIANT_LOOP = 0
VARIANT_GROUP = 1

_JIT = dict(nogil=True, cache=True)
_SIGN = np.uint64(1 << 63)
_ONES = np.uint64(2**64 - 1)


def key_image(q):
    """The order-preserving uint64 of a key: ``a < b`` exactly when ``image(a) < image(b)``."""


@overload(key_image, jit_options=_JIT)
def _key_image_impl(q):
    if isinstance(q, types.Integer) and q.signed:
        return lambda q: np.uint64(np.int64(q)) ^ _SIGN
    if isinstance(q, types.Integer):
        return lambda q: np.uint64(q)
    if isinstance(q, types.Float):
        def impl(q):
            # + 0.0 turns -0.0 into +0.0 (IEEE), so equal keys have equal images.
            bits = np.float64(np.float64(q) + 0.0).view(np.uint64)
            # Negative floats: every bit flipped; positive ones: the sign bit set.
            return bits ^ ((np.uint64(0) - (bits >> np.uint64(63))) | _SIGN)
        return impl
    return None


Plan = namedtuple("Plan", ["n", "last_segment", "shift", "min_image", "range", "err_lo", "err_hi"])
Plan.__doc__ = """What every lookup reads from ``meta``, read once per kernel call (kept in registers:
LLVM must assume a store to an answer may change ``meta``). ``last_segment``: ``POINTS - 2``."""


@njit(inline="always", **_JIT)
def read_plan(meta):
    """The :class:`Plan` of an index. Complexity O(1)."""
    return Plan(meta[N], meta[POINTS] - 2, np.uint64(meta[SHIFT]), np.uint64(meta[MIN_IMAGE]),
                np.uint64(meta[RANGE]), meta[ERR_LO], meta[ERR_HI])


@njit(inline="always", **_JIT)
def offset_of(plan, img):
    """``img - MIN_IMAGE`` clamped to ``[0, RANGE]``: queries outside the keys count as their ends."""
    d = img - plan.min_image
    d = select_unpredictable(img < plan.min_image, np.uint64(0), d)
    return select_unpredictable(d > plan.range, plan.range, d)


@njit(inline="always", **_JIT)
def radix_range(plan, table, d):
    """``(begin, end)``: the spline points among which the query at offset ``d`` ends its segment."""
    p = np.int64(d >> plan.shift)
    return np.int64(table[p]), np.int64(table[p + 1])


@njit(inline="always", **_JIT)
def spline_lower_bound(spline, img, lo, hi):
    """Number of spline points with image < img, given that it lies in ``[lo, hi]``.

    Branch-free binary search over the pairs' images; probes stay in ``[lo, hi - 1]``.
    Complexity O(log(hi - lo)).
    """
    base = lo
    length = hi - lo
    while length > 1:
        half = length >> 1
        base = select_unpredictable(spline[2 * (base + half)] < img, base + half, base)
        length -= half
    if length == 1:
        base = select_unpredictable(spline[2 * base] < img, base + 1, base)
    return base


@njit(inline="always", **_JIT)
def prefetch_points(spline, lo, hi):
    """Request the lines of spline points ``lo``, the middle and ``hi`` (clamped to the spline)."""
    last = spline.shape[0] - 2
    prefetch(spline, min(2 * lo, last))
    prefetch(spline, min(lo + hi, last) & ~1)
    prefetch(spline, min(2 * hi, last))


@njit(inline="always", **_JIT)
def prefetch_lines(keys, lo, hi):
    """Request every cache line of the window ``[lo, hi]`` (0 <= lo <= hi <= n, n > 0): a
    window of 2 epsilon keys spans several lines, and the search's later probes land on the
    lines between the first, middle and last that ``_search.prefetch_window`` requests."""
    step = max(1, 64 // keys.itemsize)
    last = min(hi, keys.shape[0] - 1)
    i = lo
    while i < last:
        prefetch(keys, i)
        i += step
    prefetch(keys, last)


@njit(inline="always", **_JIT)
def segment_of(plan, count):
    """The segment (its left point) of a query with ``count`` spline points below it."""
    s = min(count - 1, plan.last_segment)
    return max(s, 0)


@njit(inline="always", **_JIT)
def segment_line(spline, s):
    """``(x0, width, y0, rise)`` of the segment between spline points s and s + 1: what
    :func:`line_at` needs (a training pass computes it once per segment)."""
    x0 = spline[2 * s]
    y0 = np.float64(np.int64(spline[2 * s + 1]))  # positions < 2**63: the cheap conversion
    return x0, np.float64(spline[2 * s + 2] - x0), y0, np.float64(np.int64(spline[2 * s + 3])) - y0


@njit(inline="always", **_JIT)
def line_at(x0, width, y0, rise, img):
    """Position of ``img`` on a segment (float64). ``img - x0`` is an exact unsigned
    difference rounded once; t is 0 at the left point and 1 at the right one, so the spline
    points themselves come out exact and predictions never decrease with the query."""
    return y0 + np.float64(img - x0) / width * rise


@njit(inline="always", **_JIT)
def interpolate(spline, s, img):
    """Position of ``img`` on the line between spline points s and s + 1 (float64)."""
    x0, width, y0, rise = segment_line(spline, s)
    return line_at(x0, width, y0, rise, img)


@njit(inline="always", **_JIT)
def window_of(plan, pos):
    """``(pos, lo, hi)``: the measured window around ``pos``, clamped to [0, n]."""
    n = plan.n
    lo = max(pos + plan.err_lo, 0)
    hi = min(max(pos + plan.err_hi, 0), n)
    return pos, min(lo, hi), hi


@njit(inline="always", **_JIT)
def predict_window(plan, table, spline, q):
    """``(pos, lo, hi)`` for a left search of q (POINTS >= 2). Complexity O(log bucket)."""
    img = key_image(q)
    d = offset_of(plan, img)
    lo, hi = radix_range(plan, table, d)
    img = plan.min_image + d
    s = segment_of(plan, spline_lower_bound(spline, img, lo, hi))
    return window_of(plan, clamp_index(interpolate(spline, s, img), plan.n))


@njit(inline="always", **_JIT)
def lookup_one(plan, table, spline, keys, q, mode, top):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1)."""
    q, answer = prepare_query(keys, q, mode)
    if answer != NEEDS_SEARCH:
        return answer
    pos, lo, hi = predict_window(plan, table, spline, q)
    prefetch_lines(keys, lo, hi)
    return finish(keys, q, search_in_window(keys, q, pos, lo, hi, SEARCH_BINARY, top), mode)


@njit(cache=True)  # keeps the GIL: releasing and retaking it costs more than a lookup
def lookup_scalar_at(meta_address, spline_address, keys_address, q, mode):
    """:func:`lookup_one` over arrays given by address (see :mod:`learnedidx._pointers`).

    The sizes come from ``meta``'s header; the caller keeps the three arrays alive.
    Complexity O(log bucket + log window).
    """
    header = carray(ptr_like(meta_address, np.int64(0)), HEADER)
    table = carray(ptr_like(meta_address + 8 * HEADER, np.uint32(0)), (1 << header[RADIX_BITS]) + 1)
    spline = carray(ptr_like(spline_address, np.uint64(0)), 2 * header[POINTS])
    keys = carray(ptr_like(keys_address, q), header[N])
    return lookup_one(read_plan(header), table, spline, keys, q, mode, 0)


@njit(**LEAN_JIT)
def lookup_loop(rs, keys, queries, out, mode, top):
    """One lookup after another (SOSD's loop mode). Complexity O(m log window)."""
    meta, spline = rs
    table = meta[HEADER:].view(np.uint32)
    plan = read_plan(meta)
    for i in range(queries.shape[0]):
        out[i] = lookup_one(plan, table, spline, keys, queries[i], mode, top)


@njit(**LEAN_JIT)
def lookup_group(rs, keys, queries, out, mode, scratch):
    """Answer ``queries`` in groups of GROUP lookups that advance in lock-step (``scratch``:
    :func:`learnedidx._search.group_buffers` of GROUP).

    Per group: answer what the key array's ends decide; route every other query through the
    radix table; search the group's buckets of spline points in lock-step
    (:func:`learnedidx._search.step_group`); interpolate and prefetch each window's lines; then
    search the windows (:func:`search_group`). The key array is not empty (caller's check).
    """
    meta, spline = rs
    table = meta[HEADER:].view(np.uint32)
    sq, sleaf, spos, slo, shi = scratch
    simg = sleaf.view(np.uint64)
    end = queries.shape[0]
    plan = read_plan(meta)
    first = keys[0]
    last = keys[keys.shape[0] - 1]
    images = spline[0::2]
    points = images.shape[0]
    for g in range(0, end, GROUP):
        stop = min(end, g + GROUP)
        count = stop - g
        prepare_group(keys, queries, out, g, stop, mode, first, last, sq, slo)
        widest = 0
        for k in range(count):
            if slo[k] >= 0:
                d = offset_of(plan, key_image(sq[k]))
                simg[k] = plan.min_image + d
                a, b = radix_range(plan, table, d)
                spos[k] = a
                widest = max(widest, b - a)
                prefetch_points(spline, a, b)
            else:
                simg[k] = 0
                spos[k] = 0
        length = max(min(widest, points), 1)
        for k in range(count):
            spos[k] = min(spos[k], points - length)
        step_group(images, simg, count, length, spos)
        for k in range(count):
            if slo[k] >= 0:
                img = simg[k]
                s = segment_of(plan, spos[k])
                p, a, b = window_of(plan, clamp_index(interpolate(spline, s, img), plan.n))
                spos[k] = p
                slo[k] = a
                shi[k] = b
                prefetch_lines(keys, a, b)
        search_group(keys, sq, spos, slo, shi, count, out, g, mode, SEARCH_BINARY)


@njit(**LEAN_JIT)
def predict_batch(rs, queries, pos, lo, hi):
    """Window of every query (no search); needs at least two spline points. O(m log bucket)."""
    meta, spline = rs
    table = meta[HEADER:].view(np.uint32)
    plan = read_plan(meta)
    for i in range(queries.shape[0]):
        pos[i], lo[i], hi[i] = predict_window(plan, table, spline, queries[i])


# ---------------------------------------------------------------------------------------------
# Training: one pass fits the spline, a second measures the window bounds.


@njit(**_JIT)
def fit(keys, epsilon, max_points):
    """Fit the spline over sorted, non-empty keys and measure its window bounds. Complexity O(n).

    The spline buffer is sized from ``epsilon`` and grown fourfold (refitting) when too small,
    up to ``max_points``: a spline that needs more stops there and comes back empty (the
    caller then tries a larger epsilon). The passes themselves allocate nothing.

    Returns:
        ``(spline, err_lo, err_hi, max_abs_error, error_counts)``: ``error_counts[e]`` keys
        (duplicates count) have ``|lb(k) - pos(k)| == e``; the last slot counts the larger ones.
    """
    n = keys.shape[0]
    limit = min(n, max_points)
    cap = min(limit, n // epsilon + 16)
    counts = np.zeros(min(epsilon, 1 << 16) + 3, dtype=np.int64)
    while True:
        pts = np.empty(2 * cap, dtype=np.uint64)
        count = _fit_points(keys, np.float64(epsilon), pts)
        if count >= 0:
            break
        if cap == limit:
            return pts[:0].copy(), np.int64(0), np.int64(0), np.int64(0), counts
        cap = min(limit, 4 * cap)
    spline = pts[:2 * count].copy()
    err_lo, err_hi, max_abs = _measure_errors(keys, spline, counts)
    return spline, err_lo, err_hi, max_abs, counts


@njit(**LEAN_JIT)
def _fit_points(keys, eps, pts):
    """Greedy spline corridor over the distinct keys' ``(image, first position)``; the number
    of points written to ``pts`` as pairs, or -1 when it is too small.

    A segment starts at the last spline point and keeps the corridor of slopes whose line
    passes within ``eps`` positions of every point seen since; when a point falls outside it,
    the point before becomes a spline point and starts the next corridor. The first and last
    distinct keys are spline points. Complexity O(n), one division per distinct key.
    """
    n = keys.shape[0]
    cap = pts.shape[0] // 2
    if cap < 1:
        return -1
    base_x = key_image(keys[0])
    base_y = np.int64(0)
    pts[0] = base_x
    pts[1] = 0
    count = 1
    prev_x = base_x
    prev_y = np.int64(0)
    lower = 0.0
    upper = 0.0
    open_corridor = False
    for i in range(1, n):
        if keys[i] == keys[i - 1]:
            continue
        x = key_image(keys[i])
        inv = 1.0 / np.float64(x - base_x)
        dy = np.float64(i - base_y)
        slope = dy * inv
        if open_corridor and (slope > upper or slope < lower):
            if count == cap:
                return -1
            pts[2 * count] = prev_x
            pts[2 * count + 1] = np.uint64(prev_y)
            count += 1
            base_x = prev_x
            base_y = prev_y
            inv = 1.0 / np.float64(x - base_x)
            dy = np.float64(i - base_y)
            open_corridor = False
        if open_corridor:
            upper = min(upper, (dy + eps) * inv)
            lower = max(lower, (dy - eps) * inv)
        else:
            upper = (dy + eps) * inv
            lower = (dy - eps) * inv
            open_corridor = True
        prev_x = x
        prev_y = i
    if prev_x != base_x:
        if count == cap:
            return -1
        pts[2 * count] = prev_x
        pts[2 * count + 1] = np.uint64(prev_y)
        count += 1
    return count


@njit(**LEAN_JIT)
def _measure_errors(keys, spline, counts):
    """``(err_lo, err_hi, max_abs)`` over the distinct keys k, interpolated as a lookup does
    (:func:`segment_line` and :func:`line_at`) on the segment it searches (tracked in order):
    ``err_lo = min(lb(k) - pos(k))``, ``err_hi = max(lb(k) + 1 - pos(k))``. Adds each key's
    ``|lb(k) - pos(k)|`` (capped at the last slot) to ``counts``. Complexity O(n)."""
    n = keys.shape[0]
    last_segment = spline.shape[0] // 2 - 2
    top = counts.shape[0] - 1
    err_lo = np.int64(0)
    err_hi = np.int64(1)
    max_abs = np.int64(0)
    if last_segment < 0:
        counts[0] += n
        return err_lo, err_hi, max_abs
    s = 0
    x0, width, y0, rise = segment_line(spline, 0)
    slot = 0
    for i in range(n):
        if i > 0 and keys[i] == keys[i - 1]:
            counts[slot] += 1
            continue
        img = key_image(keys[i])
        if s < last_segment and spline[2 * (s + 1)] < img:
            while s < last_segment and spline[2 * (s + 1)] < img:
                s += 1
            x0, width, y0, rise = segment_line(spline, s)
        e = i - clamp_index(line_at(x0, width, y0, rise, img), n)
        err_lo = min(err_lo, e)
        err_hi = max(err_hi, e + 1)
        max_abs = max(max_abs, abs(e))
        slot = min(abs(e), top)
        counts[slot] += 1
    return err_lo, err_hi, max_abs

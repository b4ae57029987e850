"""RMI training kernels (pure Numba over plain arrays): routing sorted keys, fits and error bounds.

Keys are sorted, so the keys that the stages above route to one model form a
few *runs*: maximal ranges of consecutive positions with one route, held as ``bounds`` (run r
is ``keys[bounds[r]:bounds[r + 1]]``, ``bounds[-1] == n``) and ``owner`` (its model). A line
with a non-negative slope routes the sorted keys of each of its runs in order, so the next
stage's runs are found by searching on that line (:func:`split_range`); any other stage (a
cubic root) routes every key (:func:`route_scan`). The fits read only the runs, in blocks of
at most FIT_BLOCK positions. These kernels allocate nothing and release the GIL:
:mod:`learnedidx.models` lays out their arrays and runs them on ranges in threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._intrinsics import LEAN_JIT
from ._pointers import mutable_view
from ._rmi_kernels import (
    LINEAR_WIDTH,
    anchor_bits,
    clamp_index,
    key_offset,
    linear_output,
    plan_route,
    routing_plan,
    window_of,
)
from ._search import ZERO, binary_search

_JIT = dict(nogil=True, cache=True)

FIT_BLOCK = 2048  #: positions of a block: the unit of the fit and error passes and of their sums


def _gap(q, a):
    """``q - a`` for a key q at or above a, as :func:`key_offset` computes it bit for bit."""


@overload(_gap, jit_options=_JIT)
def _gap_impl(q, a):
    if isinstance(q, types.Integer):
        return lambda q, a: np.float64(np.uint64(anchor_bits(q)) - np.uint64(anchor_bits(a)))
    return lambda q, a: np.float64(q) - np.float64(a)


@njit(**LEAN_JIT)
def route_scan(meta, params, pbits, keys, stage, i, bounds, owner, r, cur):
    """Runs of the models of ``stage``, routing every key from position i with the inference
    kernel's :func:`plan_route`: each change of model starts run r, r + 1, ... (``cur``: the
    model of run r - 1, -1 for none). Stops when the keys end or ``owner`` is full and returns
    ``(i, r, cur)`` to resume from. Complexity O((n - i) * stage)."""
    plan = routing_plan(meta, params, pbits, stage)
    n = keys.shape[0]
    cap = owner.shape[0]
    while i < n:
        j = plan_route(plan, meta, params, pbits, keys[i])
        if j != cur:
            if r == cap:
                break
            bounds[r] = i
            owner[r] = j
            cur = j
            r += 1
        i += 1
    return i, r, cur


@njit(inline="always", **_JIT)
def _child(params, pbits, base, limit, q):
    """The model of the next stage that the line at ``base`` routes q to, as plan_route does."""
    return clamp_index(linear_output(params, pbits, base, q), limit)


@njit(**LEAN_JIT)
def split_range(params, pbits, keys, bounds, owner, base0, limit, ends_only, slot, out_start, out_owner, used,
                r0, r1):
    """Split runs ``r0 <= r < r1`` of one stage into the runs of the next. Run r's model is the
    line at ``base0 + owner[r] * LINEAR_WIDTH``, routing to models 0..limit, and must never
    decrease over the run's keys (``models.routes_in_order``). Its children's runs go to
    ``out_start[o]``, ``out_owner[o]`` for ``slot[r] <= o < slot[r + 1]``, ``used[r]`` of them.
    ``ends_only``: only write the children of each run's first and last keys, to
    ``out_start[r]`` and ``out_owner[r]``: the caller sizes ``slot`` from them.

    Each boundary is found by galloping from the one before, the first step the run's mean
    keys per child, then bisecting. Complexity O(children * log(keys per child))."""
    for r in range(r0, r1):
        a = bounds[r]
        e = bounds[r + 1]
        base = base0 + owner[r] * LINEAR_WIDTH
        j = _child(params, pbits, base, limit, keys[a])
        last = _child(params, pbits, base, limit, keys[e - 1])
        if ends_only:
            out_start[r] = j
            out_owner[r] = last
            continue
        width = max(1, (e - a) // (last - j + 1))
        o = slot[r]
        i = a
        while True:
            out_start[o] = i
            out_owner[o] = j
            o += 1
            if j >= last or o == slot[r + 1]:
                break  # the second: no room left, the line was not in order (errors_range notices)
            # The first key going past child j is in [lo, hi]: keys[e - 1] goes to a later child.
            lo = i + 1
            hi = e - 1
            step = width
            while lo + step <= hi:
                probe = lo + step - 1
                if _child(params, pbits, base, limit, keys[probe]) > j:
                    hi = probe
                    break
                lo = probe + 1
                step *= 2
            while lo < hi:
                mid = (lo + hi) >> 1
                if _child(params, pbits, base, limit, keys[mid]) > j:
                    hi = mid
                else:
                    lo = mid + 1
            i = lo
            j = _child(params, pbits, base, limit, keys[i])
        used[r] = o - slot[r]


@njit(fastmath={"reassoc"}, **LEAN_JIT)
def moments_range(keys, block_start, block_end, block_anchor, out, b0, b1):
    """Least-squares moments of blocks ``b0 <= b < b1`` (``keys[block_start[b]:block_end[b]]``):
    ``out[b] = (count, mean x, mean y, sum of squared x deviations, sum of x-y co-deviations)``
    over the block's distinct keys (a run of duplicates is one point, its first position), with
    x the key minus ``block_anchor[b]`` (as :func:`key_offset` computes it) and y the position.

    Sums are taken relative to the block's first key (an exact 64-bit difference) and
    position, which loses at most log10(FIT_BLOCK) digits to cancellation. Branch-free (a key
    equal to the one before weighs 0) and reassociated, so the sums vectorise (measured 2.9 ->
    1.6 ns a key on one thread, AVX-512). Complexity O(keys)."""
    for b in range(b0, b1):
        s = block_start[b]
        kb = keys[s]
        c = 1 if s == 0 else 0  # the first key: dx = dy = 0
        sx = 0.0
        sxx = 0.0
        sy = 0.0
        sxy = 0.0
        for i in range(max(s, 1), block_end[b]):
            q = keys[i]
            new = q != keys[i - 1]
            dx = _gap(q, kb) if new else 0.0
            dy = np.float64(i - s) if new else 0.0
            c += new
            sx += dx
            sxx += dx * dx
            sy += dy
            sxy += dx * dy
        out[b, 0] = c
        if c > 0:
            a = block_anchor[b]
            out[b, 1] = key_offset(kb, anchor_bits(a), np.float64(a)) + sx / c
            out[b, 2] = s + sy / c
            out[b, 3] = max(0.0, sxx - sx * sx / c)
            out[b, 4] = sxy - sx * sy / c


@njit(**LEAN_JIT)
def errors_range(meta, params, pbits, hkeys, hpos, keys, block_start, block_end, block_leaf, every_key, table, out,
                 log2_sums, b0, b1):
    """Error bounds of blocks ``b0 <= b < b1`` (``keys[block_start[b]:block_end[b]]``, all routed
    to leaf ``block_leaf[b]``), exactly as inference computes them.

    For each key k with predicted position p (:func:`window_of`, the inference kernel
    itself): ``lo <= lb(k) - p < hi``, where lb(k) is k's first position, read off the scan.
    So the window ``[p + lo, p + hi]`` brackets ``lb(k)`` and ``lb(k) + 1`` (the answer for a
    query just above k when k is unique) of every present key.

    Every key must route to its block's leaf (:func:`plan_route`): with ``every_key`` each
    key's route is checked, else the routes of the block's first and last keys at every stage,
    which suffices when the runs were found exactly (``models.stage_runs``): a stage's runs
    found by routing every key hold one route by construction, and below a stage that routes in
    order (``models.routes_in_order``) a model routing both ends of a block to one model of the
    next stage routes every key between there too. A block whose ends part at a stage above (a
    leaf fed by two models) has each key checked. (Checking every key took twice as long: 1.26 s
    against 0.63 for 100M lognormal keys on one thread.)

    ``out[b] = (lo, hi, max |lb(k) - p|, strays)``, strays nonzero when a key routes elsewhere
    (the bounds are then wrong), and ``log2_sums[b]`` the sum of log2(|lb(k) - p| + 1) over the
    block's keys (duplicates count; ``table[e]`` is log2(e + 1)). Complexity O(keys * stages).
    """
    # Writable-typed, as the lookup kernels pass them: the helpers both call compile once.
    meta, params, pbits = mutable_view(meta), mutable_view(params), mutable_view(pbits)
    hkeys, hpos, keys = mutable_view(hkeys), mutable_view(hpos), mutable_view(keys)
    depth = meta[0] - 1
    plan = routing_plan(meta, params, pbits, depth)
    size = table.shape[0]
    for b in range(b0, b1):
        s = block_start[b]
        e = block_end[b]
        leaf = block_leaf[b]
        stray = np.int64(0)
        check_keys = every_key
        if not every_key:
            for d in range(1, depth):
                above = routing_plan(meta, params, pbits, d)
                first_model = plan_route(above, meta, params, pbits, keys[s])
                if first_model != plan_route(above, meta, params, pbits, keys[e - 1]):
                    check_keys = True  # the block spans two models of a stage above: check each key
            stray |= plan_route(plan, meta, params, pbits, keys[s]) ^ leaf
            stray |= plan_route(plan, meta, params, pbits, keys[e - 1]) ^ leaf
        first = s
        if s > 0 and keys[s - 1] == keys[s]:  # the block starts inside a run of duplicates
            first = binary_search(keys, keys[s], ZERO, s, False)
        prev = keys[s]
        lo = np.int64(1) << 62
        hi = -lo
        max_abs = np.int64(0)
        total = 0.0
        for i in range(s, e):
            # Branch-free: a duplicate repeats its run's first key's error, as it should.
            q = keys[i]
            first = first if q == prev else i
            prev = q
            if check_keys:
                stray |= plan_route(plan, meta, params, pbits, q) ^ leaf
            pos, _, _ = window_of(plan, params, pbits, hkeys, hpos, q, leaf)
            e_lo = first - pos
            lo = min(lo, e_lo)
            hi = max(hi, e_lo + 1)
            err = abs(e_lo)
            max_abs = max(max_abs, err)
            total += table[err] if err < size else np.log2(err + 1.0)
        out[b, 0] = lo
        out[b, 1] = hi
        out[b, 2] = max_abs
        out[b, 3] = stray
        log2_sums[b] = total

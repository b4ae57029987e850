"""RMI inference kernels (pure Numba over plain arrays); the training kernels are in
:mod:`learnedidx._rmi_training`.

An RMI is stored in two arrays:

``meta`` (int64): ``[n_stages, n_keys, search_method, kind_0, count_0, offset_0, width_0, kind_1, ...]``
    one 4-slot record per stage: model kind, number of models, offset of the stage's first model
    in ``params`` and the width (slots) of one model.
``params`` (float64): every model's record, stage after stage. A record starts with the model's
    *anchor* (the smallest key it was trained on; float keys store the value, integer keys store
    the 64-bit pattern) so that the model sees ``x = q - anchor`` computed exactly in integers
    before one rounding to float: dense keys far from zero (ns timestamps, cell ids) stay
    distinguishable. Leaf records end with a slot holding two int32: the leaf's error bounds.
    A *hybrid* leaf (its window was wider than ``RMIConfig.max_window``) holds instead
    ``[offset, count, shift, HYBRID]`` as int64: its keys are indexed by a sorted sample,
    ``hybrid_keys[offset:offset + count]`` at positions ``hybrid_pos[offset:offset + count]``,
    of every ``2**shift``-th key of each of its runs (a B+tree node in place of the line,
    Kraska et al. section 3.3).
``hybrid_keys`` (key dtype), ``hybrid_pos`` (int64): the samples of every hybrid leaf.

Every stage but the last predicts the index of the model to use in the next stage; the last
predicts a position in the key array. The prediction is a guess: the search step verifies it.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import carray, njit, types
from numba.extending import overload

from ._pointers import mutable_view, ptr_like
from ._intrinsics import LEAN_JIT, STACK_DOUBLES, prefetch, select_unpredictable, stack_doubles
from ._search import (
    LIFT_MAX,
    NEEDS_SEARCH,
    ZERO,
    binary_search,
    finish,
    gallop_left,
    gallop_right,
    lift_search,
    lift_top,
    prefetch_window,
    prepare_between,
    prepare_query,
    search_group,
    search_in_window,
)

KIND_LINEAR = 0  #: record [anchor, slope, intercept, errors]; linear, linear_spline and radix
KIND_CUBIC = 1  #: record [anchor, scale, c0, c1, c2, c3]: c0 + c1 t + c2 t^2 + c3 t^3, t = x * scale
KIND_MLP = 2  #: record [anchor, scale, h1, h2, weights...]: a ReLU network of t = x * scale (:func:`mlp_output`)

META_HEADER = 3
META_STRIDE = 4
LINEAR_WIDTH = 4
CUBIC_WIDTH = 6
MLP_HEADER = 4  #: slots of an MLP record before its weights
MLP_LANES = 8  #: an MLP's layers are stored padded to a multiple of this many units (zero weights)
MLP_MAX_UNITS = STACK_DOUBLES  #: most units of a hidden layer (the second layer's sums live on the stack)
ERROR_SLOT = 3  #: slot of a leaf (linear) record holding its two int32 error bounds
GROUP = 32  #: lookups interleaved in lock-step by the batch kernels

_JIT = dict(nogil=True, cache=True)


def key_offset(q, anchor_bits, anchor_value):
    """``q - anchor`` as float64, the subtraction done exactly (see the module docstring)."""


@overload(key_offset, jit_options=_JIT)
def _key_offset_impl(q, anchor_bits, anchor_value):
    if isinstance(q, types.Integer) and q.signed:
        def impl(q, anchor_bits, anchor_value):
            a = anchor_bits
            v = np.int64(q)
            if v >= a:
                return np.float64(np.uint64(v) - np.uint64(a))
            return -np.float64(np.uint64(a) - np.uint64(v))
        return impl
    if isinstance(q, types.Integer):
        def impl(q, anchor_bits, anchor_value):
            a = np.uint64(anchor_bits)
            v = np.uint64(q)
            if v >= a:
                return np.float64(v - a)
            return -np.float64(a - v)
        return impl
    if isinstance(q, types.Float):
        def impl(q, anchor_bits, anchor_value):
            return np.float64(q) - anchor_value
        return impl
    return None


@njit(inline="always", **_JIT)
def clamp_index(y, limit):
    """floor(y) clamped to [0, limit]; NaN gives 0."""
    if y >= limit:
        return limit
    if y > 0.0:
        return np.int64(y)
    return 0


@njit(inline="always", **_JIT)
def linear_output(params, pbits, base, q):
    return params[base + 1] * key_offset(q, pbits[base], params[base]) + params[base + 2]


Plan = namedtuple("Plan", ["depth", "root_kind", "root_base", "root_bits", "root_value", "root_1", "root_2", "root_3",
                           "root_4", "root_5", "root_limit", "mid_base", "mid_limit", "leaf_base", "n", "method"])
Plan.__doc__ = """What every lookup of one RMI reads from ``meta`` and the root, read once per kernel call.

Kept in registers rather than re-read per lookup: LLVM must assume a store to an int64 answer
array may change ``meta``, so it reloads every slot after each answer unless the values are
locals (a prototype with them in locals was 15-20 ns faster per lookup than the kernel
that re-read them, out of 110-130 ns at 100M keys).
``depth``: stages routed through (routing reaches stage ``depth``); ``root_base``: the root
record's offset in ``params``; ``root_1..5``: slope and intercept of a linear root, scale and
c0..c3 of a cubic one, or the scale of an MLP (whose weights stay in ``params``); ``*_limit``: highest model index
of the next stage; ``mid_*``: the stage below the root when it is not the leaf stage."""


@njit(**LEAN_JIT)
def routing_plan(meta, params, pbits, depth):
    """The :class:`Plan` for routing down to stage ``depth`` (``meta[0] - 1``: the leaves).
    Complexity O(1)."""
    rb = meta[META_HEADER + 2]
    kind = meta[META_HEADER]
    r3 = 0.0
    r4 = 0.0
    r5 = 0.0
    if kind == KIND_CUBIC:
        r3 = params[rb + 3]
        r4 = params[rb + 4]
        r5 = params[rb + 5]
    root_limit = 0
    mid_base = 0
    mid_limit = 0
    if depth >= 1:
        root_limit = meta[META_HEADER + META_STRIDE + 1] - 1
    if depth >= 2:
        mid_base = meta[META_HEADER + META_STRIDE + 2]
        mid_limit = meta[META_HEADER + 2 * META_STRIDE + 1] - 1
    leaf_base = meta[META_HEADER + META_STRIDE * (meta[0] - 1) + 2]
    return Plan(depth, kind, rb, pbits[rb], params[rb], params[rb + 1], params[rb + 2], r3, r4, r5, root_limit,
                mid_base, mid_limit, leaf_base, meta[1], meta[2])


@njit(inline="always", **_JIT)
def _relu(v):
    # A select, not Python's max: a compare and branch per unit mispredicts.
    return v if v > 0.0 else 0.0


@njit(inline="always", **_JIT)
def _lanes(units):
    return (units + MLP_LANES - 1) // MLP_LANES * MLP_LANES


@njit(inline="always", **_JIT)
def _dot_lanes(w, base, x, count):
    """``sum(w[base + i] * x[i] for i < count)``, count a multiple of MLP_LANES, as MLP_LANES
    partial sums (lane i % MLP_LANES) added pairwise at the end: a fixed order, and a
    dependency chain count / MLP_LANES additions long instead of count."""
    y0 = y1 = y2 = y3 = y4 = y5 = y6 = y7 = 0.0
    for i in range(0, count, MLP_LANES):
        y0 += w[base + i] * x[i]
        y1 += w[base + i + 1] * x[i + 1]
        y2 += w[base + i + 2] * x[i + 2]
        y3 += w[base + i + 3] * x[i + 3]
        y4 += w[base + i + 4] * x[i + 4]
        y5 += w[base + i + 5] * x[i + 5]
        y6 += w[base + i + 6] * x[i + 6]
        y7 += w[base + i + 7] * x[i + 7]
    return ((y0 + y1) + (y2 + y3)) + ((y4 + y5) + (y6 + y7))


@njit(**LEAN_JIT)
def mlp_output(params, base, t):
    """Output of the MLP record at ``base`` for the input t, in float64, as training exports it.

    The record: ``[anchor, scale, h1, h2, w1[p1], b1[p1], W2[p1, p2], b2[p2], wo[p], bo]``, W2
    and b2 only when ``h2 > 0`` (two hidden layers), ``p1``, ``p2`` the layer sizes rounded up
    to multiples of MLP_LANES (the padding's weights are zeros: its units output 0), ``p`` the
    last hidden layer's. A unit is ``max(0, weights . inputs + bias)``, the output
    ``wo . units + bo``. Every sum runs in a fixed order without fast-math, so every kernel
    computes the same bits (the error bounds rely on it); sums over units run in MLP_LANES
    lanes (:func:`_dot_lanes`). ``h1``, ``h2`` <= MLP_MAX_UNITS were checked on loading.
    Complexity O(h1 * max(h2, 1)).
    """
    # Through a pointer: indexing the array by signed offsets adds a negative-index fix-up per
    # load, which turned the second layer's loads into gathers.
    w = ptr_like(params.ctypes.data + 8 * base, np.float64(0.0))
    p1 = _lanes(np.int64(w[2]))
    p2 = _lanes(np.int64(w[3]))
    w1 = MLP_HEADER
    b1 = w1 + p1
    units = stack_doubles()
    for i in range(p1):
        units[i] = _relu(w[w1 + i] * t + w[b1 + i])
    if p2 == 0:
        return _dot_lanes(w, b1 + p1, units, p1) + w[b1 + 2 * p1]
    w2 = b1 + p1
    b2 = w2 + p1 * p2
    # The second layer's sums MLP_LANES at a time, held in locals across the input units:
    # LLVM keeps them in one vector register (32 x 32 units: 875 -> 331 ns a call against
    # sums kept in memory, stored and reloaded per input unit).
    second = stack_doubles()
    for j in range(0, p2, MLP_LANES):
        s0 = w[b2 + j]
        s1 = w[b2 + j + 1]
        s2 = w[b2 + j + 2]
        s3 = w[b2 + j + 3]
        s4 = w[b2 + j + 4]
        s5 = w[b2 + j + 5]
        s6 = w[b2 + j + 6]
        s7 = w[b2 + j + 7]
        for i in range(p1):
            a = units[i]
            r = w2 + i * p2 + j
            s0 += w[r] * a
            s1 += w[r + 1] * a
            s2 += w[r + 2] * a
            s3 += w[r + 3] * a
            s4 += w[r + 4] * a
            s5 += w[r + 5] * a
            s6 += w[r + 6] * a
            s7 += w[r + 7] * a
        second[j] = _relu(s0)
        second[j + 1] = _relu(s1)
        second[j + 2] = _relu(s2)
        second[j + 3] = _relu(s3)
        second[j + 4] = _relu(s4)
        second[j + 5] = _relu(s5)
        second[j + 6] = _relu(s6)
        second[j + 7] = _relu(s7)
    return _dot_lanes(w, b2 + p2, second, p2) + w[b2 + 2 * p2]


def mlp_width(hidden: tuple) -> int:
    """Slots of an MLP record with ``hidden`` units per hidden layer (one or two layers)."""
    p1 = -(-hidden[0] // MLP_LANES) * MLP_LANES
    if len(hidden) == 1:
        return MLP_HEADER + 3 * p1 + 1
    p2 = -(-hidden[1] // MLP_LANES) * MLP_LANES
    return MLP_HEADER + 2 * p1 + p1 * p2 + 2 * p2 + 1


@njit(inline="always", **_JIT)
def _root_output(plan, params, q):
    x = key_offset(q, plan.root_bits, plan.root_value)
    if plan.root_kind == KIND_CUBIC:
        t = x * plan.root_1
        return plan.root_2 + t * (plan.root_3 + t * (plan.root_4 + t * plan.root_5))
    if plan.root_kind == KIND_MLP:
        return mlp_output(params, plan.root_base, x * plan.root_1)
    return plan.root_1 * x + plan.root_2


@njit(**LEAN_JIT)
def plan_route(plan, meta, params, pbits, q):
    """Index of the model of stage ``plan.depth`` that q is routed to (stage 0 is the root).

    Only the root may be cubic or an MLP (``models.MODELS``; ``RMI._restore`` checks saved stages): the
    stages below it are evaluated as lines, with no test of their kind per lookup. Stages past
    the third read ``meta`` (no default configuration has them).
    """
    if plan.depth == 0:
        return 0
    j = clamp_index(_root_output(plan, params, q), plan.root_limit)
    if plan.depth >= 2:
        j = clamp_index(linear_output(params, pbits, plan.mid_base + j * LINEAR_WIDTH, q), plan.mid_limit)
        for s in range(2, plan.depth):
            rec = META_HEADER + META_STRIDE * s
            j = clamp_index(linear_output(params, pbits, meta[rec + 2] + j * LINEAR_WIDTH, q),
                             meta[rec + META_STRIDE + 1] - 1)
    return j


@njit(inline="always", **_JIT)
def leaf_errors_of(pbits, base):
    """The two int32 error bounds stored in the last slot of the leaf record at ``base``.

    Read from the int64 view (low half first, as stored little-endian) rather than through an
    int32 view: a view made per lookup costs reference-count atomics that serialise memory.
    """
    e = pbits[base + ERROR_SLOT]
    return (e << 32) >> 32, e >> 32


@njit(**LEAN_JIT)
def leaf_window(plan, params, pbits, q, leaf):
    """``(pos, lo, hi)`` from the leaf model q was routed to; ``[lo, hi]`` lies within [0, n]."""
    n = plan.n
    base = plan.leaf_base + leaf * LINEAR_WIDTH
    pos = clamp_index(linear_output(params, pbits, base, q), n)
    e_lo, e_hi = leaf_errors_of(pbits, base)
    lo = pos + e_lo
    hi = pos + e_hi
    if lo < 0:
        lo = 0
    # hi < 0 happens: a leaf whose keys all sit below its predictions, asked about a query far
    # below them (or a crafted file); the search then gallops from the edge.
    if hi > n:
        hi = n
    elif hi < 0:
        hi = 0
    if lo > hi:
        lo = hi
    return pos, lo, hi


#: The error slot of a hybrid leaf: bounds (1, 0), which no measured leaf has (its upper bound
#: is at least its lower one).
HYBRID = 1


@njit(**LEAN_JIT)
def hybrid_window(n, pbits, hkeys, hpos, base, q):
    """``(pos, lo, hi)`` from the hybrid leaf record at ``base``: a binary search of its sample
    for the first sample not below q, then :func:`sample_window`. Complexity O(log count)."""
    off = pbits[base]
    return sample_window(n, pbits, hkeys, hpos, base, q, binary_search(hkeys, q, off, off + pbits[base + 1], False))


@njit(inline="always", **_JIT)
def sample_window(n, pbits, hkeys, hpos, base, q, t):
    """``(pos, lo, hi)`` for q from ``t``, the first sample of the hybrid leaf at ``base`` not
    below q: the positions between the samples around q, at most ``2**shift``. Samples of
    consecutive positions in a run are ``2**shift`` apart; where the leaf's runs part, a query
    equal to the next run's first key has that position as its answer, any other of the leaf's
    keys lies in the tail of the run before. So the window brackets the lower bound of every key
    of the leaf and the position after it. The record's fields were checked on loading
    (``RMI._restore``); the window is clamped to [0, n]."""
    off = pbits[base]
    end = off + pbits[base + 1]
    if t == off:
        lo = hpos[t]
        hi = lo + 1
    else:
        lo = hpos[t - 1] + 1
        hi = lo + (np.int64(1) << pbits[base + 2])
        if t < end:
            p = hpos[t]
            if p < hi:
                hi = p + 1
            elif hkeys[t] == q:
                lo = p
                hi = p + 1
    if hi > n:
        hi = n
    elif hi < 0:
        hi = 0
    if lo < 0:
        lo = 0
    if lo > hi:
        lo = hi
    return lo, lo, hi


@njit(**LEAN_JIT)
def window_of(plan, params, pbits, hkeys, hpos, q, leaf):
    """``(pos, lo, hi)`` from the leaf q was routed to, a line's or a hybrid leaf's."""
    base = plan.leaf_base + leaf * LINEAR_WIDTH
    if pbits[base + ERROR_SLOT] == HYBRID:
        return hybrid_window(plan.n, pbits, hkeys, hpos, base, q)
    return leaf_window(plan, params, pbits, q, leaf)


@njit(inline="always", **_JIT)
def predict_window(meta, params, pbits, hkeys, hpos, q):
    """``(pos, lo, hi)``: predicted position of q and the window ``[lo, hi]`` that brackets it.

    ``pbits`` is ``params.view(np.int64)``, made once by the caller.
    """
    plan = routing_plan(meta, params, pbits, meta[0] - 1)
    return window_of(plan, params, pbits, hkeys, hpos, q, plan_route(plan, meta, params, pbits, q))


@njit(inline="always", **_JIT)
def lookup_one(meta, params, pbits, hkeys, hpos, keys, q, mode, top):
    """Exact answer for one query: mode 0 lower_bound, 1 upper_bound, 2 find (index or -1).

    ``top``: see :func:`search_in_window` (0: binary search sized to each window)."""
    q, answer = prepare_query(keys, q, mode)
    if answer != NEEDS_SEARCH:
        return answer
    pos, lo, hi = predict_window(meta, params, pbits, hkeys, hpos, q)
    prefetch_window(keys, lo, hi)
    return finish(keys, q, search_in_window(keys, q, pos, lo, hi, meta[2], top), mode)


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def lookup_scalar_at(arrays_address, keys_address, hybrid_size, q, mode):
    """:func:`lookup_one` over arrays given by address (see :mod:`learnedidx._pointers`):
    the one scalar kernel. Complexity O(stages + log(window)).

    ``arrays_address`` points to four int64 slots, the addresses of ``meta``, ``params``,
    ``hybrid_keys`` and ``hybrid_pos`` (``hybrid_size`` entries each). The other sizes come from
    ``meta`` itself; the caller keeps every array alive.
    """
    addresses = carray(ptr_like(arrays_address, np.int64(0)), 4)
    header = carray(ptr_like(addresses[0], np.int64(0)), META_HEADER)
    meta = carray(ptr_like(addresses[0], np.int64(0)), META_HEADER + META_STRIDE * header[0])
    rec = META_HEADER + META_STRIDE * (header[0] - 1)
    size = meta[rec + 2] + meta[rec + 1] * meta[rec + 3]
    params = carray(ptr_like(addresses[1], np.float64(0.0)), size)
    pbits = carray(ptr_like(addresses[1], np.int64(0)), size)
    hkeys = carray(ptr_like(addresses[2], q), hybrid_size)
    hpos = carray(ptr_like(addresses[3], np.int64(0)), hybrid_size)
    keys = carray(ptr_like(keys_address, q), meta[1])
    return lookup_one_shared(meta, params, pbits, hkeys, hpos, keys, q, mode)


@njit(**LEAN_JIT)
def lookup_one_shared(meta, params, pbits, hkeys, hpos, keys, q, mode):
    """:func:`lookup_one` (``top`` 0) called rather than inlined, over writable-typed arrays:
    the scalar kernels of the RMI and of ``DynamicRMI`` share one compiled copy a key dtype."""
    return lookup_one(meta, params, pbits, hkeys, hpos, keys, q, mode, ZERO)


@njit(inline="always", **_JIT)
def _writable(rmi):
    """The four arrays of ``rmi`` typed writable (:func:`learnedidx._pointers.mutable_view`), as
    the scalar kernel's are, so that the helpers both call compile once."""
    meta, params, hkeys, hpos = rmi
    return mutable_view(meta), mutable_view(params), mutable_view(hkeys), mutable_view(hpos)


# ---------------------------------------------------------------------------------------------
# Batch kernels. Three variants answer a range of queries, all exactly as lookup_one:
#
# VARIANT_LOOP   one lookup after another (SOSD's loop): each waits on its leaf record and then
#                on its key lines, about two dependent misses per lookup out of cache.
# VARIANT_GROUP  GROUP lookups in lock-step phases (route all + prefetch leaves; windows + prefetch
#                keys; search all): a group waits on memory about once per phase.
# VARIANT_AMAC   ``slots`` independent per-lookup state machines visited round-robin (asynchronous
#                memory access chaining): each step issues the prefetch the next step needs and
#                yields, so a slot never waits for the others and wide windows are narrowed step
#                by step with a prefetch each, instead of with dependent misses.

# Each variant is an entry point of its own, chosen in Python: a batch compiles only the variant
# it runs (inlined into one kernel they took 29 s a key dtype to compile; apart, 5.6 s for the
# loop, 8 s for the group, 4 s for AMAC at uint64), and no parallel twin (learnedidx._threads).

VARIANT_LOOP = 0
VARIANT_GROUP = 1
VARIANT_AMAC = 2
VARIANTS = {"loop": VARIANT_LOOP, "group": VARIANT_GROUP, "amac": VARIANT_AMAC}

SMALL_WINDOW = 32  #: AMAC prefetches every line of a window narrower than this, then searches it
_FREE = 0
_WINDOW = 1
_SEARCH = 2
_DONE = 3


@njit(**LEAN_JIT)
def lookup_loop(rmi, keys, queries, out, mode, top):
    """``out[i] = lookup_one(queries[i])``, one lookup after another (``VARIANT_LOOP``) over the
    :class:`learnedidx.arrays.RMIArrays` ``rmi`` (``top`` of :func:`search_in_window`).
    Complexity O(m (stages + log window))."""
    meta, params, hkeys, hpos = _writable(rmi)
    keys = mutable_view(keys)
    pbits = params.view(np.int64)
    for i in range(queries.shape[0]):
        out[i] = lookup_one(meta, params, pbits, hkeys, hpos, keys, queries[i], mode, top)


@njit(**LEAN_JIT)
def lookup_group(rmi, keys, queries, out, mode, scratch):
    """Answer ``queries`` in groups of GROUP lookups that advance in lock-step.

    Phase 1 routes every query of the group through the cache-resident upper stages and
    prefetches its leaf record; phase 2 computes the windows and prefetches their key lines;
    phase 3 searches. Each phase's memory accesses were requested one phase earlier.
    The key array is not empty (the caller's check); ``scratch``: :func:`group_buffers` of GROUP.
    """
    meta, params, hkeys, hpos = _writable(rmi)
    keys = mutable_view(keys)
    pbits = params.view(np.int64)
    sq, sleaf, spos, slo, shi = scratch
    plan = routing_plan(meta, params, pbits, meta[0] - 1)
    first = keys[0]
    last = keys[keys.shape[0] - 1]
    end = queries.shape[0]
    for g in range(0, end, GROUP):
        stop = min(end, g + GROUP)
        for i in range(g, stop):
            k = i - g
            q, answer = prepare_between(keys, queries[i], mode, first, last)
            if answer != NEEDS_SEARCH:
                out[i] = answer
                sleaf[k] = -1
                slo[k] = -1
                continue
            sq[k] = q
            j = plan_route(plan, meta, params, pbits, q)
            sleaf[k] = j
            prefetch(params, plan.leaf_base + j * LINEAR_WIDTH)
        for k in range(stop - g):
            if sleaf[k] < 0:
                continue
            p, a, b = window_of(plan, params, pbits, hkeys, hpos, sq[k], sleaf[k])
            spos[k] = p
            slo[k] = a
            shi[k] = b
            prefetch_window(keys, a, b)
        search_group(keys, sq, spos, slo, shi, stop - g, out, g, mode, plan.method)


@njit(inline="always", **_JIT)
def _prefetch_lines(keys, a, b, step):
    """Prefetch every cache line holding ``keys[a..b]`` (0 <= a <= b < n), ``step`` keys a line."""
    i = a
    while i < b:
        prefetch(keys, i)
        i += step
    prefetch(keys, b)


@njit(inline="always", **_JIT)
def _prefetch_search(keys, lo, hi, step):
    """Prefetch what the next AMAC search step of window ``[lo, hi]`` reads: all its lines
    (with the neighbours ``lo - 1`` and ``hi`` that verify it) when small, else its middle."""
    n = keys.shape[0]
    if hi - lo < SMALL_WINDOW:
        _prefetch_lines(keys, max(lo - 1, 0), min(hi, n - 1), step)
    else:
        prefetch(keys, (lo + hi) >> 1)


@njit(**LEAN_JIT)
def lookup_amac(rmi, keys, queries, out, mode, top, scratch, sstate):
    """Answer ``queries`` with ``len(sstate)`` interleaved state machines (``scratch``:
    :func:`group_buffers` with at least as many slots).

    A slot's steps: take the next query, route it through the cache-resident upper stages and
    prefetch its leaf record; compute the window, check it against its neighbours' lines
    (requested with it) and prefetch its middle or, once it is small, all of it; halve it, or
    search it. A hybrid leaf's sample is searched at once, in the window step (stepping it
    with prefetches measured no faster: the samples are 1/128 of the keys, mostly cached).
    Windows that do not bracket the answer (absent keys) gallop out, as in
    :func:`learnedidx._search.search_window`. Each slot's next read was requested one round of
    the other slots earlier. Complexity O(m (stages + log window)); no allocation. The key
    array is not empty (the caller's check).
    """
    meta, params, hkeys, hpos = _writable(rmi)
    keys = mutable_view(keys)
    pbits = params.view(np.int64)
    sq, sidx, slo, shi, _ = scratch
    n = keys.shape[0]
    end = queries.shape[0]
    plan = routing_plan(meta, params, pbits, meta[0] - 1)
    first = keys[0]
    last = keys[n - 1]
    slots = sstate.shape[0]
    step = max(1, 64 // keys.itemsize)  # keys per cache line (a division: once, not per lookup)
    for k in range(slots):
        sstate[k] = _FREE
    nxt = 0
    live = slots
    k = 0
    while live > 0:
        state = sstate[k]
        if state == _WINDOW:
            q = sq[k]
            _, lo, hi = window_of(plan, params, pbits, hkeys, hpos, q, slo[k])
            slo[k] = lo
            shi[k] = hi
            _prefetch_search(keys, lo, hi, step)
            if hi - lo >= SMALL_WINDOW:
                # The neighbours that verify the window, checked once before it is halved.
                prefetch(keys, max(lo - 1, 0))
                prefetch(keys, min(hi, n - 1))
            sstate[k] = _SEARCH
        elif state == _SEARCH:
            q = sq[k]
            lo = slo[k]
            hi = shi[k]
            if lo < 0:
                lo = -lo - 1  # verified already (see below)
            else:
                if lo > 0 and keys[lo - 1] >= q:
                    hi = lo - 1
                    lo = gallop_left(keys, q, ZERO, hi, False)
                    hi = lo
                elif hi < n and keys[hi] < q:
                    lo = gallop_right(keys, q, hi + 1, n, False)
                    hi = lo
            if hi - lo >= SMALL_WINDOW:
                mid = (lo + hi) >> 1
                below = keys[mid] < q
                lo = select_unpredictable(below, mid + 1, lo)
                hi = select_unpredictable(below, hi, mid)
                slo[k] = -lo - 1  # negative: verified, keep halving
                shi[k] = hi
                _prefetch_search(keys, lo, hi, step)
            else:
                r = lift_search(keys, q, lo, hi, SMALL_WINDOW // 2) if top > 0 else binary_search(keys, q, lo, hi, False)
                out[sidx[k]] = finish(keys, q, r, mode)
                state = _FREE
        if state == _FREE:
            # Answer queries that the ends of the key array decide, up to one that needs a search.
            while nxt < end:
                i = nxt
                nxt += 1
                q, answer = prepare_between(keys, queries[i], mode, first, last)
                if answer != NEEDS_SEARCH:
                    out[i] = answer
                    continue
                j = plan_route(plan, meta, params, pbits, q)
                prefetch(params, plan.leaf_base + j * LINEAR_WIDTH)
                sq[k] = q
                sidx[k] = i
                slo[k] = j
                state = _WINDOW
                break
            if state == _FREE:
                state = _DONE
                live -= 1
            sstate[k] = state
        k += 1
        if k == slots:
            k = 0


@njit(**LEAN_JIT)
def predict_batch(rmi, queries, pos, lo, hi):
    """Window of every query (no search). Complexity O(m * stages)."""
    meta, params, hkeys, hpos = _writable(rmi)
    pbits = params.view(np.int64)
    for i in range(queries.shape[0]):
        pos[i], lo[i], hi[i] = predict_window(meta, params, pbits, hkeys, hpos, queries[i])


def anchor_bits(a):
    """The 64-bit pattern of an anchor as int64 (see the module docstring)."""


@overload(anchor_bits, jit_options=_JIT)
def _anchor_bits_impl(a):
    if isinstance(a, types.Integer) and a.signed:
        return lambda a: np.int64(a)
    if isinstance(a, types.Integer):
        return lambda a: np.int64(np.uint64(a))
    return lambda a: np.int64(0)

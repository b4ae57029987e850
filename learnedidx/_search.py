"""Last-mile search kernels over a sorted key array (pure Numba, no objects).

Every function answers ``np.searchsorted(keys, q, side)`` restricted to a window. ``right`` selects
the side: False counts keys ``< q`` (side="left"), True counts keys ``<= q`` (side="right"). Callers
pass it as a constant so LLVM specialises each loop for one comparison.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._intrinsics import LEAN_JIT, prefetch, select_unpredictable
from ._modes import FIND, NOT_FOUND, RIGHT

SEARCH_BINARY = 0  #: branch-free binary search inside the window
SEARCH_LINEAR = 1  #: linear scan from the window's start (best for windows of a few keys)
SEARCH_EXPONENTIAL = 2  #: galloping outward from the prediction (best when most errors are small)

SEARCHES = {"binary": SEARCH_BINARY, "linear": SEARCH_LINEAR, "exponential": SEARCH_EXPONENTIAL}

#: A typed 0 for kernel arguments: Numba compiles a callee once more for a literal 0 argument
#: (``Literal[int](0)`` is its own type) than for a variable, seconds a key dtype for a large
#: kernel; a numpy scalar global is typed int64.
ZERO = np.int64(0)

#: :func:`search_group` searches the windows up to this many keys wide over one common length;
#: a group's wider windows step apart, so that one of them does not lengthen every search.
WIDE_KEYS = np.int64(256)
LIFT_MAX = 255  #: widest window searched by fixed-step lifting (8 steps); wider ones by binary search

#: Options of the small helpers inlined into kernels (the caller's reference-counting setting
#: applies once inlined).
_JIT = dict(nogil=True, cache=True)


@njit(inline="always", **LEAN_JIT)
def before(key, q, right):
    """True when ``key`` lies before the answer position for query ``q``."""
    if right:
        return key <= q
    return key < q


@njit(**LEAN_JIT)
def binary_search(keys, q, lo, hi, right):
    """First position in ``[lo, hi]`` not before q, assuming the answer lies in ``[lo, hi]``.

    Branch-free: the loop runs ``ceil(log2(hi - lo))`` times whatever the data, and the update is a
    conditional move (kept one by :func:`learnedidx._intrinsics.select_unpredictable`), so no
    mispredictions. Complexity O(log(hi - lo)).
    """
    base = lo
    length = hi - lo
    while length > 1:
        half = length >> 1
        base = select_unpredictable(before(keys[base + half], q, right), base + half, base)
        length -= half
    if length == 1:
        base = select_unpredictable(before(keys[base], q, right), base + 1, base)
    return base


@njit(**LEAN_JIT)
def linear_search(keys, q, lo, hi, right):
    """First position in ``[lo, hi]`` not before q, scanning up from lo. Complexity O(hi - lo)."""
    i = lo
    while i < hi and before(keys[i], q, right):
        i += 1
    return i


@njit(**LEAN_JIT)
def gallop_right(keys, q, start, hi, right):
    """First position in ``[start, hi]`` not before q, probing start, start+1, start+3, ...

    Complexity O(log d) where d is the distance from ``start`` to the answer.
    """
    lo = start
    step = 1
    while lo < hi:
        probe = lo + step - 1
        if probe >= hi:
            probe = hi - 1
        if before(keys[probe], q, right):
            lo = probe + 1
            step <<= 1
        else:
            return binary_search(keys, q, lo, probe, right)
    return hi


@njit(**LEAN_JIT)
def gallop_left(keys, q, lo, end, right):
    """First position in ``[lo, end]`` not before q, probing end-1, end-2, end-4, ...

    Complexity O(log d) where d is the distance from ``end`` to the answer.
    """
    hi = end
    step = 1
    while hi > lo:
        probe = hi - step
        if probe < lo:
            probe = lo
        if before(keys[probe], q, right):
            return binary_search(keys, q, probe + 1, hi, right)
        hi = probe
        step <<= 1
    return lo


@njit(**LEAN_JIT)
def search_window(keys, q, pos, lo, hi, right, method):
    """Answer for q given a predicted position and window ``[lo, hi]`` (0 <= lo <= hi <= n).

    The window is a guess: when it does not bracket the answer (an absent key that the model
    misplaced), the search gallops outward from the window's edge, so the answer is always exact.
    Complexity: O(log(hi - lo)) when the window brackets the answer, O(log d) more otherwise.
    """
    if method == SEARCH_LINEAR:
        r = linear_search(keys, q, lo, hi, right)
    elif method == SEARCH_EXPONENTIAL:
        if pos < lo:
            pos = lo
        elif pos > hi:
            pos = hi
        if pos < hi and before(keys[pos], q, right):
            r = gallop_right(keys, q, pos + 1, hi, right)
        else:
            r = gallop_left(keys, q, lo, pos, right)
    else:
        r = binary_search(keys, q, lo, hi, right)
    return leave_window(keys, q, r, lo, hi, right)


@njit(inline="always", **LEAN_JIT)
def leave_window(keys, q, r, lo, hi, right):
    """r, the answer found inside window ``[lo, hi]``, or, when r sits on an edge whose
    neighbour shows the window missed the answer, the answer galloped to from that edge.
    Complexity O(1) when the window brackets the answer, O(log d) otherwise."""
    n = keys.shape[0]
    if r == lo and lo > 0 and not before(keys[lo - 1], q, right):
        return gallop_left(keys, q, ZERO, lo - 1, right)
    if r == hi and hi < n and before(keys[hi], q, right):
        return gallop_right(keys, q, hi + 1, n, right)
    return r


@njit(**LEAN_JIT)
def finish(keys, q, r, mode):
    """Turn a left answer into the mode's result: FIND gives r if keys[r] == q, else NOT_FOUND."""
    if mode == FIND:
        if r < keys.shape[0] and keys[r] == q:
            return r
        return NOT_FOUND
    return r


def successor(q):
    """The smallest value of q's type above q (q must not be the type's largest value)."""


@overload(successor, jit_options=_JIT)
def _successor_impl(q):
    if isinstance(q, types.Integer):
        ty = q
        return lambda q: ty(q + ty(1))
    fty = q
    return lambda q: np.nextafter(q, fty(np.inf))


def predecessor(q):
    """The largest value of q's type below q (q must not be the type's smallest value)."""


@overload(predecessor, jit_options=_JIT)
def _predecessor_impl(q):
    if isinstance(q, types.Integer):
        ty = q
        return lambda q: ty(q - ty(1))
    fty = q
    return lambda q: np.nextafter(q, fty(-np.inf))


NEEDS_SEARCH = -9  #: marker of :func:`prepare_query`: the answer needs the model and a search


@njit(inline="always", **_JIT)
def prepare_query(keys, q, mode):
    """``(query, answer)``: the answer when the ends of the key array decide it, else
    ``NEEDS_SEARCH`` and the query for a left search.

    ``upper_bound(q)`` is ``lower_bound(successor(q))``: no key lies strictly between the two,
    so one kind of window (around lower bounds) serves both, however long the runs of
    duplicates are.
    """
    n = keys.shape[0]
    if n == 0:
        return q, (NOT_FOUND if mode == FIND else 0)
    return prepare_between(keys, q, mode, keys[0], keys[n - 1])


@njit(**LEAN_JIT)
def prepare_between(keys, q, mode, first, last):
    """:func:`prepare_query` for a non-empty key array whose ends ``first`` and ``last`` the
    caller read once (a batch kernel: see :class:`Plan` on reloads)."""
    if mode == RIGHT:
        if last <= q:
            return q, keys.shape[0]
        q = successor(q)
    elif last < q:
        return q, (NOT_FOUND if mode == FIND else keys.shape[0])
    if first >= q:
        return q, finish(keys, q, ZERO, mode)
    return q, NEEDS_SEARCH


@njit(inline="always", **_JIT)
def lift_search(keys, q, lo, hi, top):
    """Number of keys < q before ``hi``, from ``lo`` on (``keys[lo - 1] < q`` assumed), for a
    window narrower than ``2 * top`` (a power of two).

    Binary lifting: ``log2(top) + 1`` steps whatever the window, each a conditional move, and
    probes never leave ``[lo - 1, hi - 1]``. A fixed trip count means no mispredicted loop exit,
    so the out-of-order core overlaps consecutive lookups, which a binary search whose step
    count follows the window prevents. Complexity O(log top).
    """
    base = lo
    half = top
    while half > 0:
        p = base + half
        take = (p <= hi) & (keys[max(min(p, hi) - 1, 0)] < q)
        base = select_unpredictable(take, p, base)
        half >>= 1
    return base


@njit(inline="always", **_JIT)
def search_in_window(keys, q, pos, lo, hi, method, top):
    """Left answer for q from its window: :func:`lift_search` when the window is narrower
    than ``2 * top`` and the method is binary, else :func:`search_window`;
    either way verified against the window's neighbours (galloping out when it misses)."""
    if method == SEARCH_BINARY and hi - lo < 2 * top:
        return leave_window(keys, q, lift_search(keys, q, lo, hi, top), lo, hi, False)
    return search_window(keys, q, pos, lo, hi, False, method)


def lift_top(max_window: int) -> int:
    """The ``top`` of :func:`lift_search` for windows up to ``max_window`` keys wide: the
    smallest power of two above half of it, or 0 (no lifting) past LIFT_MAX."""
    if max_window > LIFT_MAX:
        return 0
    top = 1
    while 2 * top <= max_window:
        top *= 2
    return top


@njit(inline="always", **_JIT)
def prefetch_window(keys, lo, hi):
    """Request the window's first, middle and last key lines at once: the search's dependent
    probes then hit cache instead of waiting on memory one after another."""
    n = keys.shape[0]
    prefetch(keys, min(lo, n - 1))
    prefetch(keys, min((lo + hi) >> 1, n - 1))
    prefetch(keys, max(hi - 1, 0))


def group_buffers(dtype, width: int) -> tuple:
    """Buffers of a lock-step group of ``width`` lookups, allocated by the caller of a lean
    kernel: ``(sq, a, b, c, d)``, the queries in the key dtype and four int64 arrays (a
    kernel's per-lookup state: leaf, position, window)."""
    return (np.empty(width, dtype=dtype),) + tuple(np.empty(width, dtype=np.int64) for _ in range(4))


@njit(inline="always", **_JIT)
def prepare_group(keys, queries, out, start, stop, mode, first, last, sq, slo):
    """Phase 1 of a lock-step group, ``queries[start:stop]``: answer those that the ends of the
    key array decide (into ``out``, marking ``slo[k] = -1``), and leave the others' left-search
    query in ``sq[k]`` with ``slo[k] = 0``. ``first``/``last``: the key array's ends (n > 0)."""
    for i in range(start, stop):
        k = i - start
        q, answer = prepare_between(keys, queries[i], mode, first, last)
        if answer != NEEDS_SEARCH:
            out[i] = answer
            slo[k] = -1
        else:
            sq[k] = q
            slo[k] = 0


@njit(inline="always", **_JIT)
def step_group(keys, sq, count, length, bases):
    """Lock-step binary search over windows of one length: ``bases[k]`` (a window start with
    ``bases[k] + length <= n``) becomes the number of keys < ``sq[k]`` in
    ``keys[:bases[k] + length]``, counted from ``bases[k]``, for every k < count.

    Each lookup halves the same length at the same step, and prefetches its next probe as it
    steps: the group's probes are in flight together, and the fixed trip count leaves no
    branch to mispredict. Complexity O(count log length).
    """
    for k in range(count):
        prefetch(keys, bases[k] + (length >> 1))
    while length > 1:
        half = length >> 1
        length -= half
        ahead = length >> 1
        for k in range(count):
            b = bases[k]
            b = select_unpredictable(keys[b + half] < sq[k], b + half, b)
            bases[k] = b
            prefetch(keys, b + ahead)
    if length == 1:
        for k in range(count):
            b = bases[k]
            bases[k] = select_unpredictable(keys[b] < sq[k], b + 1, b)


@njit(inline="always", **_JIT)
def search_group(keys, sq, spos, slo, shi, count, out, start, mode, method):
    """The last phase of a lock-step group: search every live window ``[slo[k], shi[k]]``
    (``slo[k] >= 0``) and put the answers in ``out[start + k]``. ``spos``: the predicted
    positions (the exponential method starts from them), overwritten.

    With the binary method the windows are searched in lock-step (:func:`step_class`), those
    up to ``WIDE_KEYS`` wide apart from the wider ones; other methods search one window after
    another. In and out of cache the lock-step was 1.2-4.2x faster than one search after
    another (``python -m bench.kernels search``). Complexity O(count log(widest window)).
    """
    if method != SEARCH_BINARY:
        for k in range(count):
            if slo[k] >= 0:
                q = sq[k]
                out[start + k] = finish(keys, q, search_window(keys, q, spos[k], slo[k], shi[k], False, method),
                                        mode)
        return
    answers = out[start:start + count]
    step_class(keys, sq, slo, slo, shi, count, ZERO - 1, WIDE_KEYS, spos, answers)
    step_class(keys, sq, slo, slo, shi, count, WIDE_KEYS, keys.shape[0], spos, answers)
    for k in range(count):
        if slo[k] >= 0:
            answers[k] = finish(keys, sq[k], answers[k], mode)


@njit(**LEAN_JIT)
def step_class(keys, sq, live, slo, shi, count, narrower, widest, bases, answers):
    """``answers[k]`` = the left answer for ``sq[k]`` from its window ``[slo[k], shi[k]]``, for
    every live lookup (``live[k] >= 0``) whose window is wider than ``narrower`` keys and at
    most ``widest``; ``bases`` is scratch, and ``answers`` may be ``slo``.

    One :func:`step_group` over the class's widest window, each window's start moved left where
    the array ends; each answer is then clamped to its window and verified against the window's
    neighbours (:func:`leave_window`), so it is exact whether the window held it or not. The
    other lookups step from 0 alongside, their answers ignored: no branch a step.
    Complexity O(count log(widest window of the class)).
    """
    n = keys.shape[0]
    longest = -1
    for k in range(count):
        w = shi[k] - slo[k]
        if live[k] >= 0 and narrower < w <= widest:
            longest = max(longest, w)
    if longest < 0:
        return
    length = max(min(longest, n), 1)  # [base, base + length] then holds each window
    for k in range(count):
        w = shi[k] - slo[k]
        bases[k] = min(slo[k], n - length) if live[k] >= 0 and narrower < w <= widest else 0
    step_group(keys, sq, count, length, bases)
    for k in range(count):
        lo = slo[k]
        hi = shi[k]
        if live[k] >= 0 and narrower < hi - lo <= widest:
            answers[k] = leave_window(keys, sq[k], min(max(bases[k], lo), hi), lo, hi, False)

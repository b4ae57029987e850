"""Last-mile search kernels over a sorted key array (pure Numba, no objects).

Every function answers ``np.searchsorted(keys, q, side)`` restricted to a window. ``right`` selects
the side: False counts keys ``< q`` (side="left"), True counts keys ``<= q`` (side="right"). Callers
pass it as a constant so LLVM specialises each loop for one comparison.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._intrinsics import LEAN_JIT, select_unpredictable

SEARCH_BINARY = 0  #: branch-free binary search inside the window
SEARCH_LINEAR = 1  #: linear scan from the window's start (best for windows of a few keys)
SEARCH_EXPONENTIAL = 2  #: galloping outward from the prediction (best when most errors are small)

SEARCHES = {"binary": SEARCH_BINARY, "linear": SEARCH_LINEAR, "exponential": SEARCH_EXPONENTIAL}

#: A typed 0 for kernel arguments: Numba compiles a callee once more for a literal 0 argument
#: (``Literal[int](0)`` is its own type) than for a variable, seconds a key dtype for a large
#: kernel; a numpy scalar global is typed int64.
ZERO = np.int64(0)


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
        return gallop_left(keys, q, 0, lo - 1, right)
    if r == hi and hi < n and before(keys[hi], q, right):
        return gallop_right(keys, q, hi + 1, n, right)
    return r


@njit(**LEAN_JIT)
def finish(keys, q, r, mode):
    """Turn a left answer into the mode's result: mode 2 (find) gives r if keys[r] == q else -1."""
    if mode == 2:
        if r < keys.shape[0] and keys[r] == q:
            return r
        return -1
    return r

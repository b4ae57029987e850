"""Tombstone bits of main positions and their per-block counts (pure Numba over plain arrays)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .._intrinsics import LEAN_JIT
from ._layout import BLOCK_SHIFT, WORDS_PER_BLOCK, JIT


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
def t_fix(tomb, start_block):
    """Recompute ``tcum`` from ``start_block`` on; returns the total tombstone count."""
    tbits, tcum = tomb
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


@njit(**JIT)
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

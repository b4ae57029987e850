"""Scalar entry points: one lookup over arrays given by address (see :mod:`learnedidx._pointers`)."""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from .. import _rmi_kernels as R
from .._intrinsics import LEAN_JIT
from .._modes import FIND
from .._pointers import ptr_like
from ._delta import d_find, d_rank
from ._layout import (
    BLOCK_SHIFT,
    D_KEYS,
    H_C,
    H_CAP,
    H_DCUM,
    H_DK,
    H_DMAX,
    H_DN,
    H_META,
    H_MK,
    H_N,
    H_ORDER,
    H_PARAMS,
    H_SIZE,
    H_ST,
    H_TBITS,
    H_TCUM,
    K_CHUNKS,
    ST_SIZE,
)
from ._tombstones import t_below, t_test

_FIND = np.int64(FIND)  #: typed int64, not a literal: the one copy of lookup_one_shared serves both entries


@njit(inline="always", **LEAN_JIT)
def _views(h, q):
    """The arrays named by header h, rebuilt from their addresses."""
    n = h[H_N]
    mk = carray(ptr_like(h[H_MK], q), n)
    mh = carray(ptr_like(h[H_META], np.int64(0)), R.META_HEADER)
    meta = carray(ptr_like(h[H_META], np.int64(0)), R.META_HEADER + R.META_STRIDE * mh[0])
    rec = R.META_HEADER + R.META_STRIDE * (meta[0] - 1)
    params = carray(ptr_like(h[H_PARAMS], np.float64(0.0)), meta[rec + 2] + meta[rec + 1] * meta[rec + 3])
    tbits = carray(ptr_like(h[H_TBITS], np.uint64(0)), (n >> 6) + 1)
    tcum = carray(ptr_like(h[H_TCUM], np.int64(0)), (n >> BLOCK_SHIFT) + 2)
    cap = h[H_CAP]
    order = carray(ptr_like(h[H_ORDER], np.int64(0)), cap)
    dmax = carray(ptr_like(h[H_DMAX], q), cap)
    dk = carray(ptr_like(h[H_DK], q), (cap, h[H_C]))
    dn = carray(ptr_like(h[H_DN], np.int64(0)), cap)
    dcum = carray(ptr_like(h[H_DCUM], np.int64(0)), cap + 1)
    st = carray(ptr_like(h[H_ST], np.int64(0)), ST_SIZE)
    return mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def rank_at(h_address, q, right):
    """Number of live keys < q (<= q when right), for q of the key dtype."""
    h = carray(ptr_like(h_address, np.int64(0)), H_SIZE)
    mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st = _views(h, q)
    pbits = params.view(np.int64)
    p = R.lookup_one_shared(meta, params, pbits, mk[:0], pbits[:0], mk, q, right)  # lines only: no hybrid samples
    return p - t_below(tbits, tcum, p) + d_rank(dk, dn, order, dmax, dcum, st[K_CHUNKS], st[D_KEYS], q, right == 1)


@njit(cache=True)  # keeps the GIL: releasing and retaking it cost 60-100 ns a call here
def find_at(h_address, q):
    """Location of key q: a live main position, ``-2 - delta slot``, or -1."""
    h = carray(ptr_like(h_address, np.int64(0)), H_SIZE)
    mk, meta, params, tbits, tcum, order, dmax, dk, dn, dcum, st = _views(h, q)
    pbits = params.view(np.int64)
    p = R.lookup_one_shared(meta, params, pbits, mk[:0], pbits[:0], mk, q, _FIND)  # lines only: no hybrid samples
    if p >= 0:
        return -1 if t_test(tbits, p) else p
    s = d_find(dk, dn, order, dmax, st[K_CHUNKS], q)
    return -2 - s if s >= 0 else -1

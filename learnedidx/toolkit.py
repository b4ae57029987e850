"""The building blocks of the search kernels, for indexes written outside the package
(``baselines/``, an index of your own) and for the bench harness.

One documented import point for what the package's own kernels are made of; the modules
behind it stay private and may move. Everything here is exact: a search answers
``np.searchsorted`` over a window, and a kernel that uses these never reads outside the arrays it
is given.

Search modes, as kernels take them (plain ints, folded into the compiled code):

- :data:`LEFT`, :data:`RIGHT`: ``np.searchsorted(side="left"/"right")``; :data:`FIND`: position of
  the first equal key or :data:`NOT_FOUND`.

Numba helpers (call them from ``@njit`` code):

- :func:`binary_search` ``(keys, q, lo, hi, right)``: branch-free search of ``keys[lo:hi]``.
- :func:`search_window` ``(keys, q, pos, lo, hi, right, method)``: the last-mile search of a
  predicted window that may miss (it gallops out); ``method`` from :data:`SEARCHES`.
- :func:`finish` ``(keys, q, r, mode)``: the answer of ``mode`` from the left rank r.
- :func:`before` ``(key, q, right)``: whether ``key`` lies before the answer for ``q``.
- :func:`search_group`, :func:`prefetch_window`: lock-step searches of a group of windows.
- :func:`prefetch` ``(array, index)``, :func:`select_unpredictable` ``(cond, a, b)``: cache hint
  and branch-free select (:mod:`learnedidx._intrinsics` explains both);
  :data:`LEAN_JIT`: the options of kernels compiled without reference counting.
- :func:`ptr_like` ``(address, like)``: an array from a raw address (scalar entry points).
- :func:`is_sorted`, :func:`search_sorted`: galloping answers for a sorted batch.

Python helpers: :func:`run_sliced` and :func:`threads_for` (a batch over threads: the serial
``nogil`` kernel on slices), :func:`address` (of an array, for :func:`ptr_like`), :func:`coerce_array`
(queries of any numeric type to the key dtype, exactly), :func:`compiled_entry` and
:func:`compile_scalar_entry` (a scalar kernel compiled once per signature, for an index's
scalar fast path).
"""

from __future__ import annotations

from ._coerce import coerce_array
from ._intrinsics import LEAN_JIT, prefetch, select_unpredictable
from ._modes import FIND, LEFT, NOT_FOUND, RIGHT
from ._pointers import address, ptr_like
from ._search import (
    SEARCH_BINARY,
    SEARCH_EXPONENTIAL,
    SEARCH_LINEAR,
    SEARCHES,
    before,
    binary_search,
    finish,
    prefetch_window,
    search_group,
    search_window,
)
from ._sorted import is_sorted, search_sorted
from ._threads import run_sliced, threads_for
from .base import compile_scalar_entry, compiled_entry

__all__ = [
    "LEFT",
    "RIGHT",
    "FIND",
    "NOT_FOUND",
    "LEAN_JIT",
    "prefetch",
    "select_unpredictable",
    "address",
    "ptr_like",
    "SEARCHES",
    "SEARCH_BINARY",
    "SEARCH_LINEAR",
    "SEARCH_EXPONENTIAL",
    "before",
    "binary_search",
    "finish",
    "prefetch_window",
    "search_group",
    "search_window",
    "is_sorted",
    "search_sorted",
    "coerce_array",
    "compiled_entry",
    "compile_scalar_entry",
    "run_sliced",
    "threads_for",
]

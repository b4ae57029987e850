"""Large batches split over threads: the serial ``nogil`` kernels run on slices of the batch in a
shared thread pool, so no lookup kernel has a ``prange`` twin to compile.

A ``parallel=True`` copy of a batch kernel cost as much compile time as the kernel itself, for
every key dtype (5.5 s for the RMI's at uint64 on a cold cache), and did the same work: one
call of the serial kernel per slice. ``numba.get_num_threads()`` still sets how many threads a
batch uses (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._modes import FIND, NOT_FOUND

_pool = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                           thread_name_prefix="learnedidx")
    return _pool


def threads_for(m: int, threshold: int) -> int:
    """Threads a batch of m queries uses: every Numba thread from ``threshold`` queries on, else 1."""
    threads = numba.get_num_threads()
    return threads if threads > 1 and m >= threshold else 1


def run_sliced(call, m: int, parts: int) -> None:
    """``call(a, b)`` over ``parts`` contiguous slices of ``range(m)`` at once, the last one in
    this thread; returns when every slice is done and re-raises the first error.
    ``call`` must release the GIL for the slices to overlap (the ``nogil`` kernels do)."""
    if parts <= 1 or m < 2:
        call(0, m)
        return
    parts = min(parts, m)
    bounds = [m * i // parts for i in range(parts + 1)]
    pool = _executor()
    futures = [pool.submit(call, bounds[i], bounds[i + 1]) for i in range(parts - 1)]
    try:
        call(bounds[-2], bounds[-1])
    finally:
        for future in futures:
            future.result()


def batch_answers(queries, mode: int, n: int, threshold: int, call) -> np.ndarray:
    """The int64 answers for a batch of key-dtype queries over n keys: ``call(q, out)`` on
    slices (every Numba thread from ``threshold`` queries on, see :func:`threads_for`); with
    no keys, 0 for LEFT/RIGHT and NOT_FOUND for FIND without a call."""
    m = len(queries)
    out = np.empty(m, dtype=np.int64)
    if n == 0:
        out.fill(NOT_FOUND if mode == FIND else 0)
        return out
    run_sliced(lambda a, b: call(queries[a:b], out[a:b]), m, threads_for(m, threshold))
    return out

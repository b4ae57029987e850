"""Micro-benchmarks of the RMI kernels with pytest-benchmark (outside the default test run).

Run: ``python -m pytest bench/test_micro.py -m microbench -n 0 --benchmark-columns=median,ops``.
Each benchmark times one batch of 100K lookups on 10M lognormal keys: the prediction alone,
the last-mile search alone (windows precomputed) and the full lookup.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from learnedidx import RMI
from learnedidx import _rmi_kernels as K
from learnedidx.toolkit import SEARCHES, search_window

pytestmark = pytest.mark.microbench

N_KEYS = 10_000_000
N_QUERIES = 100_000


@njit(nogil=True, cache=True)
def _search_only(keys, queries, pos, lo, hi, method, out):
    for i in range(queries.shape[0]):
        out[i] = search_window(keys, queries[i], pos[i], lo[i], hi[i], False, method)


@pytest.fixture(scope="module")
def workload():
    import datasets

    keys = datasets.generate("lognormal", N_KEYS, 42)
    queries, expected = datasets.make_workload(keys, N_QUERIES, seed=7)
    return keys, queries, expected


@pytest.fixture(scope="module", params=["binary", "linear", "exponential"])
def rmi(request, workload):
    keys, _, _ = workload
    return RMI(keys, copy=False, search=request.param, parallel_threshold=1 << 62)


def test_predict(benchmark, rmi, workload):
    _, queries, expected = workload
    pos, lo, hi = (np.empty(len(queries), np.int64) for _ in range(3))
    benchmark(K.predict_batch, rmi.arrays, queries, pos, lo, hi)
    assert ((lo <= expected) & (expected <= hi)).all()


def test_search_only(benchmark, rmi, workload):
    keys, queries, expected = workload
    pos, lo, hi = rmi.predict(queries)
    out = np.empty(len(queries), np.int64)
    benchmark(_search_only, rmi.keys, queries, pos, lo, hi, SEARCHES[rmi.config.search], out)
    assert np.array_equal(out, expected)


def test_full_lookup(benchmark, rmi, workload):
    _, queries, expected = workload
    out = benchmark(rmi._search_array, queries, 0)  # the batch kernel the index chose
    assert np.array_equal(out, expected)


def test_numpy_searchsorted(benchmark, workload):
    keys, queries, expected = workload
    result = benchmark(np.searchsorted, keys, queries)
    assert np.array_equal(result, expected)

"""Issue 20, sections 3 and 5: long double queries, keys from any iterable, bounded model counts
and chunk sizes, and DynamicRMI's build memory."""

from __future__ import annotations

import bisect
import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

from baselines import BTree
from learnedidx import PGM, RMI, DynamicConfig, DynamicRMI, RadixSpline

INDEXES = {"RMI": RMI, "PGM": PGM, "RadixSpline": RadixSpline, "BTree": BTree, "DynamicRMI": DynamicRMI}


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="long double is float64 here")
@pytest.mark.parametrize("name", sorted(INDEXES))
def test_long_double_queries_compare_exactly(name):
    rng = np.random.default_rng(11)
    keys = np.unique(rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64, endpoint=True))
    idx = INDEXES[name](keys)
    ld = keys.astype(np.longdouble)
    queries = np.concatenate([ld[::3] / 2, ld[::5] + np.longdouble(0.5), ld[::7], ld[::11] - np.longdouble(0.25),
                              np.array([np.longdouble(869631767040685501) / 2, np.longdouble(2) ** 64 - 1,
                                        np.longdouble(2) ** 64, np.longdouble(-0.5)])])
    exact = [Fraction(*q.as_integer_ratio()) for q in queries]
    listed = [int(k) for k in keys]
    present = set(listed)
    lower = [bisect.bisect_left(listed, math.ceil(f)) for f in exact]
    upper = [bisect.bisect_right(listed, math.floor(f)) for f in exact]
    contains = [f.denominator == 1 and int(f) in present for f in exact]
    np.testing.assert_array_equal(idx.lower_bound(queries), lower)
    np.testing.assert_array_equal(idx.upper_bound(queries), upper)
    np.testing.assert_array_equal(idx.contains(queries), contains)
    for i in range(0, len(queries), 37):
        assert idx.lower_bound(queries[i]) == lower[i], queries[i]
        assert idx.upper_bound(queries[i]) == upper[i], queries[i]
        assert (queries[i] in idx) == contains[i], queries[i]


def test_issue_long_double_case():
    keys = np.arange(0, 2**60, 2**60 // 4096, dtype=np.uint64)
    q = np.longdouble(869631767040685501) / 2  # 434815883520342750.5
    expected = int(np.searchsorted(keys, np.uint64(434815883520342751)))
    for cls in (RMI, BTree):
        assert cls(keys).lower_bound(q) == expected
        assert q not in cls(keys)


@pytest.mark.parametrize("make", [set, frozenset, iter, lambda x: (v for v in x), lambda x: dict.fromkeys(x).keys()])
def test_keys_from_any_iterable(make):
    raw = [5, 3, 9, 1]
    for cls in (RMI, PGM, DynamicRMI):
        idx = cls(make(raw))
        assert idx.keys.tolist() == [1, 3, 5, 9]
        assert idx.lower_bound(4) == 2


def test_a_set_with_values_is_refused():
    with pytest.raises(ValueError, match="set"):
        RMI({1, 2}, values=[10, 20])


def test_branching_factor_bounded_by_the_keys():
    tracemalloc.start()
    try:
        idx = RMI(np.arange(10), branching_factor=2**28)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert idx.model_counts[-1] <= 10
    assert peak < 10 << 20
    assert idx.lower_bound(4) == 4


def test_chunk_size_bounded():
    with pytest.raises(ValueError, match="chunk_size"):
        DynamicConfig(chunk_size=2**33)


def test_dynamic_build_peak_under_twice_the_input():
    keys = np.sort(np.random.default_rng(2).integers(0, 2**63, 1_000_000, dtype=np.uint64))
    keys = np.unique(keys)
    values = np.arange(len(keys), dtype=np.int64)
    DynamicRMI(keys[:1000])  # compile outside the measurement
    for given in (values, None):
        tracemalloc.start()
        try:
            idx = DynamicRMI(keys, given)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * (keys.nbytes + values.nbytes), f"peak {peak} for {keys.nbytes + values.nbytes} given"
        assert idx.values.tolist()[:5] == [0, 1, 2, 3, 4]
        idx._check()

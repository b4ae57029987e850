"""The sorted-batch path (learnedidx._sorted, dispatched in KeyValueIndex): exact answers for
every mode and key dtype, taken only for dense non-decreasing batches, never for others."""

from __future__ import annotations

import bisect

import numpy as np
import pytest

from baselines import BinarySearch, BTree, NumpySearchsorted
from learnedidx import RMI, _sorted, base
from learnedidx._coerce import KEY_DTYPES
from learnedidx._threads import run_sliced

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st

from learnedidx.testing import ALL_KEY_DTYPES, key_arrays

INDEXES = {"RMI": RMI, "BTree": BTree, "BinarySearch": BinarySearch, "NumpySearchsorted": NumpySearchsorted}


def _pool(keys: np.ndarray) -> list:
    """Query values of the key dtype: the keys, their neighbours (mostly absent), the extremes."""
    dtype = keys.dtype
    pool = list(keys[:60])
    if dtype.kind == "f":
        info = np.finfo(dtype)
        pool += [info.min, info.max, -np.inf, np.inf, 0.0]
        with np.errstate(over="ignore"):
            pool += list(np.nextafter(keys[:40], dtype.type(np.inf)))
            pool += list(np.nextafter(keys[:40], dtype.type(-np.inf)))
    else:
        info = np.iinfo(dtype)
        pool += [info.min, info.max, 0]
        pool += [k + 1 for k in keys[:40] if k < info.max] + [k - 1 for k in keys[:40] if k > info.min]
    return pool


@st.composite
def sorted_batches(draw):
    """``(keys, queries)``: keys of any dtype (float16 too), a non-decreasing batch of queries in
    the stored key dtype with duplicates, or that batch with its last element out of order."""
    keys = draw(key_arrays(dtypes=ALL_KEY_DTYPES, max_size=200))
    stored = keys.astype(np.float32) if keys.dtype == np.float16 else keys
    pool = _pool(np.sort(stored))
    picks = draw(st.lists(st.sampled_from(pool), max_size=150))
    queries = np.sort(np.array(picks, dtype=stored.dtype))
    smaller = [q for q in pool if len(queries) and q < queries[-1]]
    if smaller and draw(st.booleans()):
        queries = np.concatenate([queries, np.array([draw(st.sampled_from(smaller))], dtype=stored.dtype)])
    return keys, queries


def _reference(keys: np.ndarray, queries: np.ndarray):
    """lower_bound, upper_bound and first-match positions of sorted keys, by exact comparisons
    of Python numbers (also across dtypes)."""
    ks = [k.item() for k in keys]
    qs = [q.item() for q in queries]
    lo = np.array([bisect.bisect_left(ks, q) for q in qs], dtype=np.int64)
    hi = np.array([bisect.bisect_right(ks, q) for q in qs], dtype=np.int64)
    return lo, hi, np.where(hi > lo, lo, -1)


def _check(idx, queries, name):
    lo, hi, find = _reference(idx.keys, queries)
    assert np.array_equal(idx.lower_bound(queries), lo), f"{name}.lower_bound"
    assert np.array_equal(idx.upper_bound(queries), hi), f"{name}.upper_bound"
    assert np.array_equal(idx.contains(queries), find >= 0), f"{name}.contains"
    values, found = idx.get_batch(queries, default=-1)
    assert np.array_equal(found, find >= 0), f"{name}.get_batch found"
    assert np.array_equal(values[found], idx.values[find[found]]), f"{name}.get_batch values"
    assert (values[~found] == -1).all(), f"{name}.get_batch default"


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=sorted_batches())
def test_sorted_batches_are_exact(name, data):
    keys, queries = data
    idx = INDEXES[name](keys)
    _check(idx, queries, name)
    # The batch in other dtypes: coercion keeps the order, so the sorted path still applies.
    _check(idx, queries.astype(np.float64), name)
    if queries.dtype.kind == "i":
        _check(idx, queries.astype(np.int64), name)


@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=str)
def test_kernels_every_mode_and_dtype_across_chunks(dtype):
    # Serial and parallel kernels alike, with batches longer than a parallel chunk (4096),
    # duplicates in keys and queries, absent queries and the dtype's extremes.
    rng = np.random.default_rng(7)
    if dtype.kind == "f":
        lo, hi = np.finfo(dtype).min, np.finfo(dtype).max
        keys = np.sort(np.concatenate([rng.standard_normal(3000).astype(dtype), [lo, hi, -np.inf, np.inf]]))
        queries = np.sort(np.concatenate([rng.choice(keys, 6000), rng.standard_normal(4000).astype(dtype),
                                          np.array([lo, hi, -np.inf, np.inf], dtype=dtype)]))
    else:
        info = np.iinfo(dtype)
        keys = np.sort(np.concatenate([rng.integers(info.min, info.max, 3000, dtype=dtype, endpoint=True),
                                       np.array([info.min, info.max, info.max], dtype=dtype)]))
        queries = np.sort(np.concatenate([rng.choice(keys, 6000),
                                          rng.integers(info.min, info.max, 4000, dtype=dtype, endpoint=True),
                                          np.array([info.min, info.max], dtype=dtype)]))
    keys, queries = keys.astype(dtype), queries.astype(dtype)
    keys.flags.writeable = False  # as in an index: the kernels compiled for it are reused
    for mode, side in ((0, "left"), (1, "right"), (2, "left")):
        want = np.searchsorted(keys, queries, side=side).astype(np.int64)
        if mode == 2:
            hit = want < len(keys)
            hit[hit] = keys[want[hit]] == queries[hit]
            want[~hit] = -1
        for parts in (1, 2, 3):  # slices start their gallop afresh
            for m in (0, 1, 2, 4097, len(queries)):
                out = np.full(m, -9, np.int64)
                q = queries[:m]
                run_sliced(lambda a, b: _sorted.search_sorted(keys, q[a:b], out[a:b], mode), m, parts)
                assert np.array_equal(out, want[:m]), (parts, mode, m)


def test_is_sorted():
    assert _sorted.is_sorted(np.zeros(0, np.int64)) and _sorted.is_sorted(np.array([5], np.uint8))
    assert _sorted.is_sorted(np.array([1, 1, 2, 2], np.int64))
    assert not _sorted.is_sorted(np.array([1, 2, 3, 2], np.int64))
    assert _sorted.is_sorted(np.array([-np.inf, -0.0, 0.0, np.inf]))


class _Spy:
    """Counts the calls of the sorted kernels (wrapped in place of the module's functions)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        monkeypatch.setattr(_sorted, "search_sorted", self._wrap(_sorted.search_sorted))

    def _wrap(self, kernel):
        def call(*args):
            self.calls += 1
            return kernel(*args)
        return call


@pytest.mark.parametrize("name", list(INDEXES))
def test_dispatch_only_for_dense_sorted_batches(name, monkeypatch):
    spy = _Spy(monkeypatch)
    keys = np.arange(0, 64_000, 2, dtype=np.uint64)  # n = 32,000
    idx = INDEXES[name](keys)
    n = len(keys)
    dense = np.sort(np.random.default_rng(0).integers(0, 64_100, n // base.SORTED_MAX_GAP)).astype(np.uint64)
    for batch, taken in (
        (dense, True),
        (dense[:-1], False),  # one query fewer than n / SORTED_MAX_GAP: the index's own path
        (dense[::-1].copy(), False),  # unsorted: never sorted first
        (np.concatenate([dense, dense[:1]]), False),  # sorted except the last element
        (dense[:1], False),
    ):
        before = spy.calls
        assert np.array_equal(idx.lower_bound(batch), np.searchsorted(keys, batch)), (name, len(batch))
        assert (spy.calls > before) == taken, (name, len(batch), taken)
    before = spy.calls
    assert np.array_equal(idx.contains(dense), np.isin(dense, keys))
    assert spy.calls == before + 1


def test_parallel_dispatch_through_the_interface():
    keys = np.sort(np.random.default_rng(3).integers(0, 2**40, 100_000)).astype(np.int64)
    queries = np.sort(np.concatenate([keys[::2], keys[::3] + 1, [-(2**63), 2**63 - 1]]))
    assert len(queries) >= base.SORTED_PARALLEL_MIN
    idx = BTree(keys)
    assert np.array_equal(idx.lower_bound(queries), np.searchsorted(keys, queries))
    assert np.array_equal(idx.upper_bound(queries), np.searchsorted(keys, queries, side="right"))
    assert np.array_equal(idx.contains(queries), np.isin(queries, keys))

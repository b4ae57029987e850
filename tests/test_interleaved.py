"""Interleaved (lock-step, prefetching) batch kernels of BinarySearch and BTree against the plain
one-lookup-at-a-time kernels and np.searchsorted: every mode, group remainders, edges."""

from __future__ import annotations

import numpy as np
import pytest

from baselines import BinarySearch, BTree
from baselines import _binary_kernels as BK
from baselines import _btree_kernels as TK
from learnedidx._coerce import KEY_DTYPES

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from learnedidx.testing import key_arrays

MODES = (0, 1, 2)


def expected(keys, queries, mode):
    """np.searchsorted's answer per mode (2: position of the first equal key, or -1)."""
    side = "right" if mode == 1 else "left"
    pos = np.searchsorted(keys, queries, side=side).astype(np.int64)
    if mode == 2:
        hit = pos < len(keys)
        hit[hit] = keys[pos[hit]] == queries[hit]
        pos[~hit] = -1
    return pos


@st.composite
def keys_and_queries(draw, max_queries=120):
    """Sorted keys of a kernel dtype and queries of the same dtype: keys, their neighbours
    (absent keys), the dtype's extremes and arbitrary values, in any order and count."""
    keys = draw(key_arrays(dtypes=KEY_DTYPES, max_size=200, sort=True))
    keys.flags.writeable = False  # as in an index: the kernels compiled for it are reused
    dtype = keys.dtype
    pool = list(keys[:50])
    if dtype.kind == "f":
        info = np.finfo(dtype)
        pool += [info.min, info.max, -np.inf, np.inf, 0.0]
        with np.errstate(over="ignore"):  # the neighbours of the largest floats are infinities
            pool += list(np.nextafter(keys[:30], dtype.type(np.inf)))
            pool += list(np.nextafter(keys[:30], dtype.type(-np.inf)))
    else:
        info = np.iinfo(dtype)
        pool += [info.min, info.max, 0]
        pool += [k + 1 for k in keys[:30] if k < info.max] + [k - 1 for k in keys[:30] if k > info.min]
    picks = draw(st.lists(st.sampled_from(pool), max_size=max_queries))
    extra = draw(hnp.arrays(dtype, draw(st.integers(0, 8)), elements=hnp.from_dtype(dtype, allow_nan=False)))
    queries = np.concatenate([np.array(picks, dtype=dtype), extra])
    return keys, np.ascontiguousarray(queries)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(keys_and_queries(), st.sampled_from([1, 2, 3, 7, 32]))
def test_binary_search_interleaved_matches_plain(data, group):
    keys, queries = data
    for mode in MODES:
        plain = np.full(len(queries), -9, np.int64)
        BK.lookup_batch(keys, queries, plain, mode)
        assert np.array_equal(plain, expected(keys, queries, mode)), mode
        for kernel in (BK.lookup_batch_interleaved, BK.lookup_batch_interleaved_parallel):
            out = np.full(len(queries), -9, np.int64)
            kernel(keys, queries, out, mode, group)
            assert np.array_equal(out, plain), (kernel.__name__, mode, group)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(keys_and_queries(), st.sampled_from([2, 3, 16]))
def test_btree_interleaved_matches_plain(data, node_keys):
    keys, queries = data
    inner, meta = TK.build(keys, node_keys)
    for mode in MODES:
        plain = np.full(len(queries), -9, np.int64)
        TK.lookup_batch_plain(inner, meta, keys, queries, plain, mode)
        assert np.array_equal(plain, expected(keys, queries, mode)), mode
        for kernel in (TK.lookup_batch, TK.lookup_batch_parallel, TK.lookup_batch_plain_parallel):
            out = np.full(len(queries), -9, np.int64)
            kernel(inner, meta, keys, queries, out, mode)
            assert np.array_equal(out, plain), (kernel.__name__, mode)


@pytest.mark.parametrize("m", [0, 1, 31, 33, 4095, 4097, 3 * 4096 + 17])
def test_batch_sizes_across_groups_and_chunks(m):
    # Sizes around the group (32) and the parallel chunk (4096), never multiples of both.
    rng = np.random.default_rng(m)
    keys = np.sort(rng.integers(0, 5000, 3000)).astype(np.uint32)  # duplicates included
    keys.flags.writeable = False
    queries = rng.integers(0, 5100, m).astype(np.uint32)  # absent keys included
    inner, meta = TK.build(keys, 16)
    for mode in MODES:
        want = expected(keys, queries, mode)
        for kernel in (BK.lookup_batch_interleaved, BK.lookup_batch_interleaved_parallel):
            out = np.full(m, -9, np.int64)
            kernel(keys, queries, out, mode, BK.GROUP)
            assert np.array_equal(out, want), (kernel.__name__, mode)
        for kernel in (TK.lookup_batch, TK.lookup_batch_parallel, TK.lookup_batch_plain,
                       TK.lookup_batch_plain_parallel):
            out = np.full(m, -9, np.int64)
            kernel(inner, meta, keys, queries, out, mode)
            assert np.array_equal(out, want), (kernel.__name__, mode)


@pytest.mark.parametrize("cls", [BinarySearch, BTree])
def test_interleaved_option_and_loop_mode(cls):
    rng = np.random.default_rng(1)
    keys = np.sort(rng.integers(-(2**62), 2**62, 40_000))
    queries = np.concatenate([keys[::3], rng.integers(-(2**63), 2**63 - 1, 20_000)])
    on = cls(keys, parallel_threshold=1)
    off = cls(keys, parallel_threshold=1, interleaved=False)
    assert on.interleaved and not off.interleaved
    assert "interleaved" in on.batch_variant and off.batch_variant == "loop"
    for mode, side in ((0, "left"), (1, "right")):
        want = np.searchsorted(keys, queries, side=side)
        for idx in (on, off):
            assert np.array_equal(idx._search_array(queries, mode), want)
            assert np.array_equal(idx._search_loop(queries, mode), want)
    assert np.array_equal(off.contains(queries), np.isin(queries, keys))


@pytest.mark.parametrize("cls", [BinarySearch, BTree])
@pytest.mark.parametrize("bad", [1, "yes", None, 1.0])
def test_interleaved_must_be_a_bool(cls, bad):
    with pytest.raises(TypeError, match="interleaved must be True or False"):
        cls(np.arange(10), interleaved=bad)


def test_btree_interleaved_option_survives_save_load_and_pickle(tmp_path):
    import pickle

    import learnedidx

    keys = np.arange(0, 10_000, 3, dtype=np.uint64)
    tree = BTree(keys, interleaved=False)
    path = tmp_path / "t.lidx"
    tree.save(path)
    for again in (learnedidx.load(path), pickle.loads(pickle.dumps(tree))):
        assert again.interleaved is False and again.batch_variant == "loop"
        assert np.array_equal(again.lower_bound(keys[::5] + 1), np.searchsorted(keys, keys[::5] + 1))

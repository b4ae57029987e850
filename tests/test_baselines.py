"""The baselines against ``np.searchsorted`` and exact references: every dtype, duplicates, edges.

Each index is checked the same way (:func:`check_against_searchsorted`) on hand-made and seeded
random key sets; then each one's own structure, options, memory report and conversions; then
the project's conformance check from ``learnedidx.testing`` when it is there.
Optional adapters are skipped, with the package named, when their package is missing.
"""

from __future__ import annotations

import gc
import pickle
import sys
import weakref

import numpy as np
import pytest

import baselines
import learnedidx
from baselines import BinarySearch, BTree, BTreesIndex, NumpySearchsorted, PGMIndex, SortedDictIndex
from baselines import _btree_kernels
from baselines.pgm import MAX_SPAN, ordinals

INT_DTYPES = [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64,
                                     np.uint8, np.uint16, np.uint32, np.uint64)]
FLOAT_DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]
DTYPES = INT_DTYPES + FLOAT_DTYPES


def _needs(module):
    def factory(cls, **options):
        def build(keys, values=None, **kw):
            pytest.importorskip(module, reason=f"{cls.__name__} needs {module}: pip install {module}")
            return cls(keys, values, **options, **kw)
        return build
    return factory


def _plain(cls, **options):
    return lambda keys, values=None, **kw: cls(keys, values, **options, **kw)


#: name -> (factory, integer keys only)
INDEXES = {
    "BTree": (_plain(BTree), False),
    "BTree-3": (_plain(BTree, node_keys=3), False),
    "BTree-8": (_plain(BTree, node_keys=8), False),
    "BTree-32": (_plain(BTree, node_keys=32), False),
    "BinarySearch": (_plain(BinarySearch), False),
    "NumpySearchsorted": (_plain(NumpySearchsorted), False),
    "SortedDictIndex": (_needs("sortedcontainers")(SortedDictIndex, load=8), False),
    "PGMIndex": (_needs("pygm")(PGMIndex, epsilon=4), False),
    "BTreesIndex": (_needs("BTrees")(BTreesIndex), True),
}


def _lo_hi(dtype):
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return info.min, info.max
    info = np.iinfo(dtype)
    return info.min, info.max


def key_sets(dtype, seed=0):
    """``(label, keys)`` pairs for one dtype: edge cases, duplicates, extremes, random."""
    rng = np.random.default_rng(seed)
    lo, hi = _lo_hi(dtype)
    t = dtype.type
    yield "empty", np.zeros(0, dtype=dtype)
    yield "one", np.array([t(7)], dtype=dtype)
    yield "one-min", np.array([lo], dtype=dtype)
    yield "one-max", np.array([hi], dtype=dtype)
    yield "all-equal", np.full(100, t(5), dtype=dtype)
    yield "extremes", np.array([lo, lo, hi, hi, t(0), t(1), t(1), hi], dtype=dtype)
    runs = np.repeat(np.array([t(1), t(2), t(5), t(9)], dtype=dtype), [40, 3, 70, 1])
    yield "long-runs", runs
    yield "runs-at-ends", np.concatenate([np.full(37, lo, dtype=dtype), np.arange(20).astype(dtype),
                                          np.full(45, hi, dtype=dtype)])
    if dtype.kind == "f":
        yield "specials", np.array([-np.inf, -np.inf, lo, -1.5, -0.0, 0.0, 0.0, -0.0,
                                    np.finfo(dtype).tiny, 2.5, hi, np.inf, np.inf], dtype=dtype)
        random = (rng.standard_normal(257) * 1000).astype(dtype)
    else:
        random = rng.integers(lo, hi, 257, dtype=dtype, endpoint=True)
    yield "random", random
    yield "random-dups", rng.choice(random[:9], 300)
    yield "unsorted", random[::-1].copy()


def queries_for(keys):
    """Queries of the key dtype: every key, its neighbours, the dtype's extremes, a few others."""
    dtype = keys.dtype
    lo, hi = _lo_hi(dtype)
    t = dtype.type
    extra = [lo, hi, t(0), t(1), t(3), t(6)]
    with np.errstate(over="ignore"):
        if dtype.kind == "f":
            extra += [-np.inf, np.inf, -0.0, np.finfo(dtype).tiny]
            around = np.concatenate([np.nextafter(keys, t(np.inf)), np.nextafter(keys, t(-np.inf))])
        else:
            inner = keys[(keys > lo) & (keys < hi)]
            around = np.concatenate([inner - t(1), inner + t(1)])
    return np.concatenate([keys, around, np.array(extra, dtype=dtype)]).astype(dtype)


def check_against_searchsorted(idx, raw_keys, values=None, queries=None):
    """Assert every method of ``idx`` agrees with np.searchsorted on the stably sorted keys."""
    order = np.argsort(raw_keys, kind="stable")
    keys = raw_keys[order]
    vals = np.arange(len(keys), dtype=np.int64) if values is None else values[order]
    n = len(keys)
    name = type(idx).__name__
    idx._check()
    assert len(idx) == n and np.array_equal(idx.keys, keys) and np.array_equal(idx.values, vals)
    qs = queries_for(keys) if queries is None else queries
    for side, method in (("left", idx.lower_bound), ("right", idx.upper_bound)):
        expected = np.searchsorted(keys, qs, side=side)
        got = method(qs)
        assert got.dtype == np.int64 and got.shape == qs.shape
        bad = np.flatnonzero(got != expected)
        assert len(bad) == 0, f"{name}.{method.__name__}({qs[bad[0]]!r}) = {got[bad[0]]}, expected {expected[bad[0]]}"
        assert np.array_equal(method(qs.reshape(-1, 1)).ravel(), expected)
        for q, e in zip(qs.tolist(), expected.tolist()):  # Python numbers: the fast scalar path
            assert method(q) == e, f"{name}.{method.__name__}({q!r}) = {method(q)}, expected {e}"
        for q, e in zip(qs[::7], expected[::7].tolist()):  # numpy scalars: the general path
            assert method(q) == e, f"{name}.{method.__name__}({q!r} of {type(q).__name__})"
    first = np.searchsorted(keys, qs, side="left")
    present = (first < n) & (keys[np.minimum(first, max(n - 1, 0))] == qs) if n else np.zeros(len(qs), bool)
    assert np.array_equal(idx.contains(qs), present)
    got_vals, found = idx.get_batch(qs, default=-7)
    assert np.array_equal(found, present)
    assert np.array_equal(got_vals[present], vals[first[present]])
    assert (got_vals[~present] == -7).all()
    for q, p, f in zip(qs.tolist(), present.tolist(), first.tolist()):
        assert (q in idx) == p, f"{name}: ({q!r} in idx) is {not p}"
        if p:
            assert idx[q] == vals[f] and idx.get(q) == vals[f]
        else:
            assert idx.get(q, "absent") == "absent"
            with pytest.raises(KeyError):
                idx[q]
    bounds = qs[:: max(1, len(qs) // 6)]
    starts = np.searchsorted(keys, bounds, side="left")  # a Python int here would go via float64
    for lo, i in zip(bounds, starts.tolist()):
        for hi, j in zip(bounds, starts.tolist()):
            j = max(i, j)
            for a, b in ((lo, hi), (lo.item(), hi.item())):
                got_k, got_v = idx.range(a, b)
                assert np.array_equal(got_k, keys[i:j]) and np.array_equal(got_v, vals[i:j]), (a, b)


def _build(name, keys, values=None):
    factory, ints_only = INDEXES[name]
    if ints_only and keys.dtype.kind == "f":
        with pytest.raises(TypeError, match="integer keys"):
            factory(keys, values)
        pytest.skip(f"{name} takes integer keys only (float keys raise TypeError)")
    return factory(keys, values)


# --- every index, every dtype ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(INDEXES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_searchsorted(name, dtype):
    for label, keys in key_sets(dtype):
        values = (np.arange(len(keys)) * 3 + 1).astype(np.int32)
        idx = _build(name, keys, values)
        try:
            check_against_searchsorted(idx, keys, values)
        except AssertionError as exc:
            raise AssertionError(f"{name} on {label} keys of {dtype}: {exc}") from exc


@pytest.mark.parametrize("name", list(INDEXES))
def test_queries_outside_the_dtype(name):
    keys = np.array([0, 3, 3, 2**63, 2**64 - 1], dtype=np.uint64)
    idx = _build(name, keys)
    assert idx.lower_bound(-1) == 0 and idx.upper_bound(-1) == 0
    assert idx.lower_bound(2**64) == 5 and idx.upper_bound(2**64) == 5
    assert idx.lower_bound(2**64 - 1) == 4 and idx.upper_bound(2**64 - 1) == 5
    assert idx.upper_bound(3) == 3 and idx.lower_bound(3.5) == 3 and idx.upper_bound(2.5) == 1
    signed = np.array([-5, 0, 3, 2**63 - 1], dtype=np.int64)
    assert idx.lower_bound(signed).tolist() == [0, 0, 1, 3]
    assert idx.upper_bound(signed).tolist() == [0, 1, 3, 3]
    assert idx.contains(signed).tolist() == [False, True, True, False]
    assert idx.get(np.uint64(3)) == 1 and np.uint64(2**64 - 1) in idx and -1 not in idx
    small = _build(name, np.array([-3, 7, 7], dtype=np.int8))
    assert small.lower_bound(-1000) == 0 and small.upper_bound(1000) == 3 and small.lower_bound(7) == 1
    assert small.upper_bound(np.array([-129, 127, 128, 7.5])).tolist() == [0, 3, 3, 3]
    assert 7.0 in small and 7.5 not in small and small[7] == 1


@pytest.mark.parametrize("name", list(INDEXES))
@pytest.mark.filterwarnings("error")
def test_queries_beyond_the_largest_float_answer_without_warnings(name):
    """A query just above float32's largest value, on float32 keys, rounds up to inf inside the
    coercion: the answer is exact and no RuntimeWarning (an error under -W error) escapes."""
    top = float(np.finfo(np.float32).max)
    keys = np.array([-top, 1.0, top], dtype=np.float32)
    if INDEXES[name][1]:
        pytest.skip(f"{name} takes integer keys only")
    idx = _build(name, keys)
    for q in (top + 1e30, -top - 1e30, 1e300, -1e300):
        want = (int(np.searchsorted(keys.astype(np.float64), q)),
                int(np.searchsorted(keys.astype(np.float64), q, side="right")))
        assert (idx.lower_bound(q), idx.upper_bound(q)) == want, q
        assert (idx.lower_bound([q])[0], idx.upper_bound(np.array([q]))[0]) == want, q
        assert q not in idx and idx.get(q) is None


@pytest.mark.parametrize("name", list(INDEXES))
def test_seeded_random_key_sets(name):
    rng = np.random.default_rng(2024)
    for trial in range(6):
        n = int(rng.integers(0, 3000))
        keys = rng.integers(0, 1 + int(rng.integers(1, 10**6)), n).astype(np.uint64)
        idx = _build(name, keys)
        queries = np.concatenate([keys, rng.integers(0, 10**6 + 2, 500).astype(np.uint64)])
        for side, method in (("left", idx.lower_bound), ("right", idx.upper_bound)):
            assert np.array_equal(method(queries), np.searchsorted(np.sort(keys), queries, side=side)), (trial, side)
        idx._check()


FREED = {**{name: INDEXES[name][0] for name in ("BTree", "BinarySearch", "NumpySearchsorted", "SortedDictIndex",
                                                 "PGMIndex", "BTreesIndex")},
         "RMI": _plain(learnedidx.RMI), "DynamicRMI": _plain(learnedidx.DynamicRMI)}


def _use_every_query(idx, keys, dynamic):
    q = keys[5].item()
    assert idx.lower_bound(q) == 5 and idx.upper_bound(q) == 6 and idx.get(q) == 5 and q in idx and idx[q] == 5
    assert idx.lower_bound(keys[5]) == 5 and idx.get(keys[5]) == 5
    assert idx.lower_bound(keys[:10]).tolist() == list(range(10)) and idx.get_batch(keys[:10])[1].all()
    assert len(idx.range(keys[1], keys[9])[0]) == 8
    if dynamic:
        idx[q + 1] = 7
        del idx[q]
        idx.update(keys[:10] + 1, np.arange(10))
        assert idx.get(q + 1) == 5 and q not in idx and idx.lower_bound(q + 2) == 11


@pytest.mark.parametrize("name", list(FREED))
@pytest.mark.parametrize("dtype", [np.dtype(np.int64), np.dtype(np.float64)], ids=str)
def test_a_used_index_is_freed_without_the_cycle_collector(name, dtype):
    """``del idx`` frees an index and its arrays at once, after every kind of query: whatever
    the fast paths install must not make the index a reference cycle (the cycle collector
    runs rarely when the garbage is a few large arrays, so a loop of builds could fill memory).

    A first index compiles the kernels: Numba can keep the frames of a kernel's first compile
    alive (the traceback of a failed typing attempt it records), and with them the index that
    called it, once per kernel and process on a cold cache (see 8a21b66)."""
    if name == "BTreesIndex" and dtype.kind == "f":
        pytest.skip("BTreesIndex takes integer keys only")
    keys = np.arange(0, 3000, 3).astype(dtype)
    _use_every_query(FREED[name](keys, np.arange(len(keys))), keys, name == "DynamicRMI")
    idx = FREED[name](keys, np.arange(len(keys)))
    _use_every_query(idx, keys, name == "DynamicRMI")
    refs = [weakref.ref(idx), weakref.ref(idx.keys)]
    gc.disable()
    try:
        del idx
        assert [r() for r in refs] == [None, None]
    finally:
        gc.enable()


# --- BTree -------------------------------------------------------------------------------------


@pytest.mark.parametrize("node_keys", [2, 3, 8, 16, 32])
def test_btree_duplicate_runs_cross_many_nodes(node_keys):
    # Runs of equal keys far longer than a node, so separators repeat across whole subtrees:
    # upper_bound must land after the run's last copy, lower_bound on its first.
    keys = np.repeat(np.array([10, 20, 30, 40, 50], dtype=np.int64), [1, 500, 2, 777, 64])
    tree = BTree(keys, node_keys=node_keys)
    tree._check()
    qs = np.arange(0, 60, dtype=np.int64)
    for side, method in (("left", tree.lower_bound), ("right", tree.upper_bound)):
        expected = np.searchsorted(keys, qs, side=side)
        assert np.array_equal(method(qs), expected)
        assert [method(int(q)) for q in qs] == expected.tolist()
    assert tree.height >= 2


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 255, 256, 257, 4097])
def test_btree_levels_at_node_boundaries(n):
    keys = np.arange(n, dtype=np.uint64) * 2
    tree = BTree(keys, node_keys=16)
    tree._check()
    assert tree.level_sizes == tuple(_btree_kernels.level_sizes(n, 16))
    assert tree.level_sizes == () or tree.level_sizes[0] <= 16
    qs = np.arange(2 * n + 2, dtype=np.uint64)
    assert np.array_equal(tree.lower_bound(qs), np.searchsorted(keys, qs))
    assert np.array_equal(tree.upper_bound(qs), np.searchsorted(keys, qs, side="right"))


def test_btree_check_catches_a_corrupt_separator():
    tree = BTree(np.arange(1000, dtype=np.int64), node_keys=8)
    tree._check()
    bottom = tree._meta[_btree_kernels.META_HEADER + tree.height - 1]
    tree._inner.flags.writeable = True
    tree._inner[bottom + 3] += 1
    tree._inner.flags.writeable = False
    with pytest.raises(AssertionError, match="largest key of its node"):
        tree._check()


def test_btree_inner_memory_is_about_one_node_in_k():
    n = 100_000
    keys = np.arange(n, dtype=np.uint64)
    for node_keys in (8, 16, 32):
        tree = BTree(keys, node_keys=node_keys)
        separators = sum(tree.level_sizes)
        assert n // node_keys <= separators <= n // (node_keys - 1) + tree.height
        padded = -(-np.array(tree.level_sizes) // node_keys) * node_keys
        assert tree._inner.nbytes == 8 * padded.sum()
        assert tree._inner.nbytes <= tree.size_in_bytes() <= tree._inner.nbytes + 64 + tree._meta.nbytes
        assert tree._inner.ctypes.data % 64 == 0, "inner nodes must start on a cache line"
        assert tree.key_copy_bytes() == 0


def test_btree_parallel_batches_and_pickle():
    rng = np.random.default_rng(5)
    keys = np.sort(rng.integers(0, 2**63, 50_000).astype(np.uint64))
    queries = np.concatenate([keys[::3], rng.integers(0, 2**64 - 1, 20_000, dtype=np.uint64)])
    tree = BTree(keys, parallel_threshold=1)
    for side, method in (("left", tree.lower_bound), ("right", tree.upper_bound)):
        assert np.array_equal(method(queries), np.searchsorted(keys, queries, side=side))
    assert np.array_equal(tree.contains(queries), np.isin(queries, keys))
    again = pickle.loads(pickle.dumps(tree))
    again._check()
    assert again._inner.ctypes.data % 64 == 0
    assert np.array_equal(again.lower_bound(queries), tree.lower_bound(queries))
    assert again.lower_bound(int(keys[100])) == 100
    binary = BinarySearch(keys, parallel_threshold=1)
    assert np.array_equal(binary.upper_bound(queries), np.searchsorted(keys, queries, side="right"))


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(node_keys=1), ValueError, "node_keys"),
        (dict(node_keys=0), ValueError, "node_keys"),
        (dict(node_keys=True), ValueError, "node_keys"),
        (dict(node_keys=8.0), ValueError, "node_keys"),
        (dict(node_keys=5000), ValueError, "node_keys"),
        (dict(parallel_threshold=0), ValueError, "parallel_threshold"),
        (dict(fanout=8), TypeError, "unknown options"),
    ],
)
def test_btree_option_errors(options, error, match):
    with pytest.raises(error, match=match):
        BTree(np.arange(10), **options)


def test_option_errors_of_the_other_baselines():
    keys = np.arange(10)
    with pytest.raises(TypeError, match="unknown options"):
        BinarySearch(keys, node_keys=8)
    with pytest.raises(ValueError, match="parallel_threshold"):
        BinarySearch(keys, parallel_threshold=-1)
    with pytest.raises(TypeError, match="unknown options"):
        NumpySearchsorted(keys, parallel_threshold=5)
    assert NumpySearchsorted(np.array([2.5, 1.5])).lower_bound(2) == 1


# --- the optional adapters ---------------------------------------------------------------------


def test_import_and_registry_without_optional_packages(monkeypatch):
    for module in ("pygm", "BTrees", "sortedcontainers"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    assert list(baselines.available_indexes()) == ["BTree", "BinarySearch", "NumpySearchsorted"]
    assert baselines.missing_packages() == {
        "SortedDictIndex": "pip install sortedcontainers",
        "PGMIndex": "pip install pygm",
        "BTreesIndex": "pip install BTrees",
    }
    for cls, pip_name in ((PGMIndex, "pygm"), (BTreesIndex, "BTrees"), (SortedDictIndex, "sortedcontainers")):
        with pytest.raises(ImportError, match=f"pip install {pip_name}"):
            cls(np.arange(5, dtype=np.int64))
    assert set(baselines.ALL) == {"BTree", "BinarySearch", "NumpySearchsorted", "SortedDictIndex",
                                  "PGMIndex", "BTreesIndex"}


def test_ordinals_keep_order_and_equality():
    for dtype in DTYPES:
        keys = np.sort(np.concatenate([k for _, k in key_sets(dtype, seed=3)]))
        o = ordinals(keys)
        assert o.dtype == np.uint64
        assert np.array_equal(o[1:] > o[:-1], keys[1:] > keys[:-1]), dtype
        assert np.array_equal(o[1:] == o[:-1], keys[1:] == keys[:-1]), dtype
    assert ordinals(np.array([-0.0, 0.0]))[0] == ordinals(np.array([0.0]))[0]


def test_pgm_converts_what_pygm_gets_wrong():
    pytest.importorskip("pygm")
    # PyGM 1.0.1 alone misplaces keys spanning more than ~2**54, crashes on a query equal to the
    # dtype's largest value and on infinite float keys: the adapter cuts the ordinals into parts
    # spanning at most 2**53 and answers queries outside a part's keys itself.
    wide = np.array([0, 1, 2, 2**60, 2**60 + 5, 2**63, 2**64 - 2, 2**64 - 1, 2**64 - 1], dtype=np.uint64)
    idx = PGMIndex(wide, epsilon=1)
    assert idx.parts == 4
    check_against_searchsorted(idx, wide)
    rng = np.random.default_rng(11)
    up = np.arange(500, dtype=np.uint64)
    clusters = np.concatenate([up, np.uint64(2**62) + up[:300], np.uint64(2**64 - 1) - up])
    idx = PGMIndex(clusters)
    qs = np.concatenate([clusters, rng.integers(0, 2**64 - 1, 1000, dtype=np.uint64, endpoint=True)])
    sorted_keys = np.sort(clusters)
    assert np.array_equal(idx.lower_bound(qs), np.searchsorted(sorted_keys, qs))
    assert np.array_equal(idx.upper_bound(qs), np.searchsorted(sorted_keys, qs, side="right"))
    assert idx.upper_bound(2**64 - 1) == len(clusters)
    floats = PGMIndex(np.array([-np.inf, -1e300, -1.0, 0.0, 1e-300, 1.0, 1e300, np.inf]))
    assert floats.parts > 1
    floats._check()
    assert floats.lower_bound(np.inf) == 7 and floats.upper_bound(-np.inf) == 1
    narrow = PGMIndex(np.arange(1000, dtype=np.int64) * 2**40)
    assert narrow.parts == 1 and narrow.key_copy_bytes() >= 8000 and narrow.size_in_bytes() > 0
    assert all(b - a > MAX_SPAN for a, b in zip(idx._bases, idx._bases[1:]))
    with pytest.raises(ValueError, match="epsilon"):
        PGMIndex(wide, epsilon=0)  # PyGM itself dies of a floating point exception
    with pytest.raises(TypeError, match="unknown options"):
        PGMIndex(wide, eps=8)


def test_btrees_adapter_converts_numpy_queries():
    pytest.importorskip("BTrees")
    keys = np.array([5, 1, 2**64 - 1, 5], dtype=np.uint64)
    idx = BTreesIndex(keys)
    # BTrees alone answers None for tree.get(np.uint64(5)); the adapter converts at the boundary.
    assert idx.get(np.uint64(5)) == 1 and idx[np.uint64(1)] == 0
    assert idx.lower_bound(np.uint64(5)) == 1 and idx.upper_bound(np.uint64(2**64 - 1)) == 4
    assert idx.key_copy_bytes() == 3 * 8 and idx.size_in_bytes() > 0
    with pytest.raises(TypeError, match="integer keys"):
        BTreesIndex(np.array([1.5, 2.5]))
    with pytest.raises(TypeError, match="unknown options"):
        BTreesIndex(keys, order=3)


def test_sorteddict_adapter_memory_and_options():
    pytest.importorskip("sortedcontainers")
    idx = SortedDictIndex(np.arange(10_000, dtype=np.int64) * 1000, load=100)
    assert idx.load == 100 and len(idx._list._lists) == 100
    assert idx.key_copy_bytes() >= 10_000 * 24  # one Python int per key
    assert 10_000 * 8 <= idx.size_in_bytes() < idx.key_copy_bytes()  # pointers, maxes, index
    with pytest.raises(ValueError, match="load"):
        SortedDictIndex(np.arange(3), load=1)


# --- the project's conformance check -----------------------------------------------------------


def _conformance():
    pytest.importorskip("hypothesis")
    testing = pytest.importorskip("learnedidx.testing")
    if not hasattr(testing, "check_conformance"):
        pytest.skip("learnedidx.testing has no check_conformance")
    return testing


@pytest.mark.parametrize("name", [name for name in INDEXES if name not in ("BTree-8", "BTree-32")])
def test_conformance(name):
    testing = _conformance()
    factory, ints_only = INDEXES[name]
    factory(np.arange(3))  # skips when the package is missing
    dtypes = testing.ALL_KEY_DTYPES
    if ints_only:
        dtypes = tuple(d for d in dtypes if np.dtype(d).kind in "iu")  # float keys raise TypeError
    testing.check_conformance(factory, max_examples=25, dtypes=dtypes)

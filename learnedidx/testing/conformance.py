"""Conformance check: any `KeyValueIndex` must answer exactly what a sorted list does.

The reference is computed with Python numbers, whose int/float comparisons are exact, so the
check catches rounding that ``np.searchsorted`` itself would commit on mixed dtypes.

>>> from learnedidx import RMI
>>> from learnedidx.testing import check_conformance
>>> check_conformance(RMI, max_examples=5)
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from ..base import IndexBase, KeyValueIndex
from ..interface import SortedIndex, members
from .strategies import ALL_KEY_DTYPES, interesting_queries, key_arrays, query_arrays

_MEMBERS = members(SortedIndex)  #: what check_index requires an index to have
#: What a KeyValueIndex subclass must implement: (the base class defining it, the signature).
_REQUIRED = {"_search_array": (KeyValueIndex, "_search_array(self, queries: np.ndarray, mode: int) -> np.ndarray"),
             "size_in_bytes": (IndexBase, "size_in_bytes(self) -> int")}


def _py(x):
    """A numpy scalar as the Python number with exactly its value."""
    return x.item() if isinstance(x, np.generic) else x


class _Reference:
    """Sorted keys as Python numbers, answering with exact comparisons."""

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        order = np.argsort(keys, kind="stable")
        self.keys_np = keys[order]
        self.values_np = values[order]
        self.keys = [_py(k) for k in self.keys_np]

    def lower_bound(self, q):
        return bisect.bisect_left(self.keys, q)

    def upper_bound(self, q):
        return bisect.bisect_right(self.keys, q)

    def find(self, q):
        i = self.lower_bound(q)
        return i if i < len(self.keys) and self.keys[i] == q else -1


def check_index(factory, keys, values=None, queries=None) -> None:
    """Build ``factory(keys, values)`` and assert every method agrees with the reference.

    Checks sorting and stability, ``lower_bound``/``upper_bound`` on scalars of several types
    and on arrays (shape kept), ``get``/``[]``/``in``/``get_batch``/``contains`` (first entry
    wins among duplicates), ``range``, ``size_in_bytes``, ``_check()``, read-only arrays, that
    the caller's arrays are untouched, and the errors for NaN and non-numeric queries.

    Raises:
        AssertionError: naming the index's class (``type(index).__name__``), the method, the
            query and both answers on the first disagreement, or the methods a
            ``KeyValueIndex`` subclass left unimplemented.
    """
    keys = np.asarray(keys)
    if values is None:
        values = np.arange(len(keys), dtype=np.int64) * 10 + 7
    keys_before, values_before = keys.copy(), values.copy()
    idx = factory(keys, values)
    name = type(idx).__name__  # not idx.name: a subclass inherits its base class's name
    assert np.array_equal(keys, keys_before, equal_nan=True), f"{name} modified the caller's keys"
    assert np.array_equal(values, values_before), f"{name} modified the caller's values"
    if isinstance(idx, KeyValueIndex):
        unimplemented = [sig for method, (base, sig) in _REQUIRED.items()
                         if getattr(type(idx), method) is getattr(base, method)]
        assert not unimplemented, f"{name}: a KeyValueIndex subclass must implement {' and '.join(unimplemented)}"
    widened = keys.astype(np.float32) if keys.dtype == np.float16 else keys
    ref = _Reference(widened, values)
    n = len(ref.keys)
    missing = [m for m in _MEMBERS if not hasattr(idx, m)]
    assert not missing, f"{name}: not a learnedidx.interface.SortedIndex, it lacks {missing}"

    assert len(idx) == n, f"{name}: len {len(idx)} != {n}"
    assert np.array_equal(idx.keys, ref.keys_np), f"{name}: keys not sorted like a stable sort"
    assert np.array_equal(idx.values, ref.values_np), f"{name}: values did not move with their keys"
    assert not idx.keys.flags.writeable, f"{name}: keys must be read-only"
    size = idx.size_in_bytes()
    assert isinstance(size, (int, np.integer)) and size >= 0, f"{name}: size_in_bytes() = {size!r}"
    try:
        idx._check()
    except AssertionError as exc:  # the base class's invariant messages do not name the class
        raise AssertionError(f"{name}._check(): {exc}") from exc

    qs = [_py(q) for q in (interesting_queries(ref.keys_np) if queries is None else queries)]
    for q in qs:
        _check_scalar(idx, ref, q, name)
        for typed in _typed_variants(q, ref.keys_np.dtype):
            _check_scalar(idx, ref, typed, name)

    for dtype in {ref.keys_np.dtype, np.dtype(np.int64), np.dtype(np.uint64), np.dtype(np.float64)}:
        arr = np.array([q for q in qs if _representable(q, dtype)], dtype=dtype)
        _check_array(idx, ref, arr, name)
    _check_array(idx, ref, np.array(ref.keys_np[: min(n, 64)]).reshape(-1, 1)[:, [0, 0]], name)
    _check_array(idx, ref, np.zeros(0, dtype=ref.keys_np.dtype), name)

    bounds = qs[:: max(1, len(qs) // 12)]
    for lo in bounds:
        for hi in bounds:
            got_k, got_v = idx.range(lo, hi)
            i, j = ref.lower_bound(lo), ref.lower_bound(hi)
            j = max(i, j)
            assert np.array_equal(got_k, ref.keys_np[i:j]), f"{name}.range({lo!r}, {hi!r}) keys"
            assert np.array_equal(got_v, ref.values_np[i:j]), f"{name}.range({lo!r}, {hi!r}) values"

    for bad, err in ((math.nan, ValueError), ("7", TypeError), (np.array([1.0, math.nan]), ValueError)):
        for method in (idx.lower_bound, idx.upper_bound, idx.contains):
            try:
                method(bad)
            except err:
                pass
            else:
                raise AssertionError(f"{name}: {method.__name__}({bad!r}) did not raise {err.__name__}")


def _typed_variants(q, dtype: np.dtype):
    """q as numpy scalars of the key dtype and of int64/uint64/float64, where exact."""
    out = []
    for dt in (dtype, np.dtype(np.int64), np.dtype(np.uint64), np.dtype(np.float64)):
        if _representable(q, dt):
            out.append(dt.type(q))
    return out


def _representable(q, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        if isinstance(q, float) and not math.isfinite(q):
            return True
        finfo = np.finfo(dtype)
        if not float(finfo.min) <= q <= float(finfo.max):
            return False
        return float(dtype.type(q)) == q
    if isinstance(q, float) and not (math.isfinite(q) and q == math.floor(q)):
        return False
    info = np.iinfo(dtype)
    return int(info.min) <= q <= int(info.max)


def _check_scalar(idx, ref, q, name):
    pq = _py(q)
    for method, expected in (("lower_bound", ref.lower_bound(pq)), ("upper_bound", ref.upper_bound(pq))):
        got = getattr(idx, method)(q)
        assert isinstance(got, (int, np.integer)), f"{name}.{method}({q!r}) returned {type(got).__name__}"
        assert got == expected, f"{name}.{method}({q!r} of {type(q).__name__}) = {got}, expected {expected}"
    i = ref.find(pq)
    present = i >= 0
    assert (q in idx) == present, f"{name}: ({q!r} in idx) is {not present}"
    default = object()
    got = idx.get(q, default)
    if present:
        expected = ref.values_np[i]
        assert got is not default and got == expected, f"{name}.get({q!r}) = {got!r}, expected {expected!r}"
        assert idx[q] == ref.values_np[i], f"{name}[{q!r}] = {idx[q]!r}"
    else:
        assert got is default, f"{name}.get({q!r}) = {got!r} for an absent key"
        try:
            idx[q]
        except KeyError:
            pass
        else:
            raise AssertionError(f"{name}[{q!r}] did not raise KeyError for an absent key")


def _check_array(idx, ref, arr, name):
    flat = [_py(x) for x in arr.ravel()]
    for method, fn in (("lower_bound", ref.lower_bound), ("upper_bound", ref.upper_bound)):
        got = getattr(idx, method)(arr)
        assert isinstance(got, np.ndarray) and got.dtype == np.int64, f"{name}.{method}(array) must give int64"
        assert got.shape == arr.shape, f"{name}.{method}: shape {got.shape} != {arr.shape}"
        expected = np.array([fn(q) for q in flat], dtype=np.int64).reshape(arr.shape)
        bad = np.flatnonzero(got.ravel() != expected.ravel())
        assert len(bad) == 0, (
            f"{name}.{method}(array of {arr.dtype}): query {flat[bad[0]]!r} gave {got.ravel()[bad[0]]}, "
            f"expected {expected.ravel()[bad[0]]}"
        )
    pos = np.array([ref.find(q) for q in flat], dtype=np.int64).reshape(arr.shape)
    found = idx.contains(arr)
    assert found.dtype == bool and found.shape == arr.shape, f"{name}.contains: bad dtype/shape"
    assert np.array_equal(found, pos >= 0), f"{name}.contains(array of {arr.dtype}) disagrees"
    vals, found2 = idx.get_batch(arr)
    assert np.array_equal(found2, pos >= 0), f"{name}.get_batch found-mask disagrees"
    if found2.any():
        assert np.array_equal(vals[found2], ref.values_np[pos[found2]]), f"{name}.get_batch values disagree"


def check_conformance(factory, max_examples: int = 100, dtypes=ALL_KEY_DTYPES, max_size: int = 300,
                      deadline=None) -> None:
    """Run :func:`check_index` on ``max_examples`` key sets and query arrays drawn by Hypothesis.

    ``factory(keys, values)`` builds the index under test. Key sets cover every dtype in
    ``dtypes``, duplicates, extremes, clustered and step-shaped CDFs, empty and one-key sets.

    Raises:
        AssertionError: with Hypothesis's shrunk failing example.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=max_examples, deadline=deadline, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(key_arrays(dtypes=dtypes, max_size=max_size), st.data())
    def run(keys, data):
        queries = data.draw(query_arrays(keys))
        check_index(factory, keys, queries=list(interesting_queries(np.sort(keys))) + list(queries))

    run()

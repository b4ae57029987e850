"""Python's container protocols and the sortedcontainers/pygm names on every index, checked
against ``sortedcontainers.SortedList`` over the same keys."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sortedcontainers import SortedList

from baselines import BTree
from learnedidx import PGM, RMI, DynamicRMI, RadixSpline

FACTORIES = {
    "RMI": lambda keys: RMI(keys),
    "PGM": lambda keys: PGM(keys, epsilon=4),
    "RadixSpline": lambda keys: RadixSpline(keys),
    "BTree": lambda keys: BTree(keys),
    "DynamicRMI": lambda keys: DynamicRMI(keys),
}
BOUNDS = list(itertools.product((True, False), repeat=2))


def _keys(name, dtype, seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 500, 700).astype(dtype)
    return np.unique(keys) if name == "DynamicRMI" else np.sort(keys)  # DynamicRMI keys are unique


def _queries(keys, seed):
    rng = np.random.default_rng(seed + 1)
    info = np.iinfo(keys.dtype) if keys.dtype.kind in "iu" else None
    extremes = [int(info.min), int(info.max), int(info.max) + 1, -(2**70)] if info else [-np.inf, np.inf]
    return [*keys[rng.integers(0, len(keys), 20)].tolist(), *rng.integers(-5, 510, 20).tolist(), 2.5, -0.5,
            *extremes]


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.float64])
@pytest.mark.parametrize("name", FACTORIES)
def test_protocols_match_sortedlist(name, dtype):
    keys = _keys(name, dtype, seed=3)
    idx = FACTORIES[name](keys)
    ref = SortedList(keys.tolist())
    assert list(idx) == list(ref) and all(type(k) is type(r) for k, r in zip(idx, ref))
    assert list(reversed(idx)) == list(reversed(ref))
    values = idx.values
    assert [k for k, _ in idx.items()] == list(ref)
    assert all(v == values[i] and type(v) is type(values[i]) for i, (_, v) in enumerate(idx.items()))
    for q in _queries(keys, seed=3):
        left, right = ref.bisect_left(q), ref.bisect_right(q)
        assert (idx.bisect_left(q), idx.bisect_right(q), idx.count(q)) == (left, right, right - left), q
        assert idx.find_lt(q) == (ref[left - 1] if left else None), q
        assert idx.find_le(q) == (ref[right - 1] if right else None), q
        assert idx.find_gt(q) == (ref[right] if right < len(ref) else None), q
        assert idx.find_ge(q) == (ref[left] if left < len(ref) else None), q
    lows, highs = [None, *_queries(keys, seed=4)[:8]], [None, *_queries(keys, seed=5)[:8]]
    for lo, hi, inclusive, reverse in itertools.product(lows, highs, BOUNDS, (False, True)):
        want = list(ref.irange(lo, hi, inclusive, reverse))
        assert list(idx.irange(lo, hi, inclusive, reverse)) == want, (lo, hi, inclusive, reverse)


@pytest.mark.parametrize("name", FACTORIES)
def test_protocols_on_empty_and_one_key(name):
    for keys in (np.zeros(0, np.int64), np.array([7], np.int64)):
        idx = FACTORIES[name](keys)
        assert list(idx) == keys.tolist() and list(reversed(idx)) == keys.tolist()
        assert list(idx.items()) == list(zip(keys.tolist(), idx.values))
        assert list(idx.irange()) == keys.tolist() and list(idx.irange(8, 3)) == []
        assert idx.find_le(7) == (7 if len(keys) else None) and idx.find_lt(7) is None
        assert idx.find_ge(8) is None and idx.count(7) == len(keys)


def test_iteration_sees_dynamic_writes():
    idx = DynamicRMI(np.array([10, 20, 30], np.int64))
    idx[15] = 1
    del idx[20]
    assert list(idx) == [10, 15, 30] and list(idx.irange(11, 30, (True, False))) == [15]
    assert idx.find_gt(10) == 15 and idx.count(20) == 0


def test_get_returns_one_type_whatever_the_values():
    keys = np.array([1, 2, 3], np.int64)
    for idx in (RMI(keys), RMI(keys, values=np.array([4, 5, 6])), DynamicRMI(keys)):
        got = [idx.get(2), idx[3]]
        assert all(type(v) is np.int64 for v in got), got


def test_bad_inclusive_and_queries_are_refused():
    idx = RMI(np.arange(10, dtype=np.uint64))
    with pytest.raises(ValueError, match="inclusive"):
        idx.irange(1, 5, inclusive=True)
    with pytest.raises(ValueError, match="NaN"):
        idx.find_lt(float("nan"))
    with pytest.raises(TypeError):
        idx.count("3")

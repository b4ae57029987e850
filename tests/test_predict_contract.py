"""``predict``'s window contract (docs/design.md, "Windows"), duplicates included, for every
learned index: ``lo <= lower_bound(k) < hi`` for every key k; the ends of the key array give
exact windows; any window's search answers exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnedidx import PGM, RMI, RadixSpline
from learnedidx.testing import interesting_queries, key_arrays

FACTORIES = {
    "RMI": lambda keys: RMI(keys, keys_per_leaf=4),
    "RMI hybrid": lambda keys: RMI(keys, keys_per_leaf=32, max_window=4),
    "RMI one-key leaves": lambda keys: RMI(keys, keys_per_leaf=1),
    "PGM": lambda keys: PGM(keys, epsilon=2),
    "RadixSpline": lambda keys: RadixSpline(keys, epsilon=2),
}


def check_contract(idx, keys: np.ndarray) -> None:
    keys = np.sort(keys)
    n = len(keys)
    if n:
        pos, lo, hi = idx.predict(keys)
        lb = np.searchsorted(keys, keys, side="left")
        bad = ~((lo <= lb) & (lb < hi))
        assert not bad.any(), (f"key {keys[bad][0]!r}: window [{lo[bad][0]}, {hi[bad][0]}] does not "
                               f"hold lower_bound {lb[bad][0]} and the next position")
        assert ((0 <= lo) & (lo <= pos) & (pos <= hi) & (hi <= n)).all(), "a window leaves [0, n] or misses pos"
    for q in interesting_queries(keys):
        pos, lo, hi = idx.predict(q)
        answer = idx.lower_bound(q)
        assert 0 <= lo <= hi <= n
        if n == 0 or q > keys[-1]:
            assert (pos, lo, hi) == (answer, answer, answer), f"q={q!r}: the ends decide {answer}"
        elif q < keys[0]:
            assert lo == 0 == answer, f"q={q!r}: window [{lo}, {hi}] for the answer 0"


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=key_arrays(dtypes=[np.int64, np.uint64, np.float64, np.int8]))
def test_window_contract(name, keys):
    check_contract(FACTORIES[name](keys), keys)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=30, deadline=None)
@given(runs=st.lists(st.integers(1, 60), min_size=1, max_size=12), gap=st.integers(1, 1000))
def test_window_contract_long_runs(name, runs, gap):
    keys = np.repeat(np.arange(len(runs), dtype=np.int64) * gap, runs)
    check_contract(FACTORIES[name](keys), keys)


def test_reported_windows():
    """The two cases of issue 20: a repeated key's window and a query above the last key."""
    idx = RMI(np.array([0, 1, 1, 1, 1, 1, 2]), keys_per_leaf=1)
    pos, lo, hi = idx.predict(1)
    assert lo <= 1 < hi
    assert idx.predict(1000) == (7, 7, 7)
    idx = RMI(np.repeat([0, 1], 50), branching_factor=4)
    assert idx.predict(1000) == (100, 100, 100)
    assert [a.tolist() for a in idx.predict([1000, -1])] == [[100, 0]] * 3


def test_empty_model_predicts_the_end():
    """An empty leaf after the last key predicts n, not the count of distinct keys."""
    keys = np.repeat(np.array([0, 1], dtype=np.int64), 50)
    idx = RMI(keys, branching_factor=4)
    idx._check()
    pos, lo, hi = idx._predict(np.array([1000], dtype=np.int64))
    assert pos[0] == 100

"""Every index satisfies the interface (``learnedidx.interface``), and the conformance check
names what an index lacks."""

from __future__ import annotations

import numpy as np
import pytest

import learnedidx
from baselines import BTree, BinarySearch, NumpySearchsorted, SortedDictIndex
from learnedidx.interface import SortedIndex, UpdatableIndex, members
from learnedidx.testing import check_index

KEYS = np.array([3, 5, 5, 9], dtype=np.int64)
STATIC = [learnedidx.RMI, learnedidx.PGM, learnedidx.RadixSpline, BTree, BinarySearch, NumpySearchsorted,
          SortedDictIndex]


@pytest.mark.parametrize("cls", STATIC, ids=lambda c: c.__name__)
def test_static_indexes_are_sorted_indexes_and_not_updatable(cls):
    idx = cls(KEYS)
    assert isinstance(idx, SortedIndex) and not isinstance(idx, UpdatableIndex)


def test_dynamic_rmi_is_updatable_and_the_tuner_returns_a_sorted_index():
    assert isinstance(learnedidx.DynamicRMI(np.unique(KEYS)), UpdatableIndex)
    assert isinstance(learnedidx.tune(KEYS), SortedIndex)


def test_members_lists_the_protocols_names():
    names = members(SortedIndex)
    assert {"lower_bound", "upper_bound", "get", "range", "keys", "__len__", "name"} <= set(names)
    assert set(members(UpdatableIndex)) - set(names) == {"__setitem__", "__delitem__", "pop", "update", "delete"}


def test_the_conformance_check_names_the_missing_members():
    class Partial:
        name = "Partial"

        def __init__(self, keys, values):
            self._keys = np.sort(keys)

        def __len__(self):
            return len(self._keys)

        def lower_bound(self, q):
            return np.searchsorted(self._keys, q)

    assert not isinstance(Partial(KEYS, None), SortedIndex)
    lacks = r"Partial: not a learnedidx.interface.SortedIndex, it lacks .*'upper_bound'"
    with pytest.raises(AssertionError, match=lacks):
        check_index(Partial, KEYS)

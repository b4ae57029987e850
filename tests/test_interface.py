"""Every index satisfies the interface (``learnedidx.interface``), and the conformance kit
(``learnedidx.testing``) names the class under test and what it lacks or answers wrongly."""

from __future__ import annotations

import numpy as np
import pytest

import learnedidx
from baselines import BTree, BinarySearch, NumpySearchsorted, SortedDictIndex
from learnedidx import LEFT, DynamicRMI, KeyValueIndex
from learnedidx.interface import SortedIndex, UpdatableIndex, members
from learnedidx.testing import UpdatableIndexMachine, check_conformance, check_index

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


class SortedArray(KeyValueIndex):
    """The smallest complete subclass: ``np.searchsorted`` over the keys."""

    def _search_array(self, queries: np.ndarray, mode: int) -> np.ndarray:
        return np.searchsorted(self._keys, queries, side="left" if mode == LEFT else "right").astype(np.int64)

    def size_in_bytes(self) -> int:
        return 0


class OffByOne(SortedArray):
    """Every answer one too high."""

    def _search_array(self, queries, mode):
        return super()._search_array(queries, mode) + 1


def test_a_subclass_implementing_the_two_methods_conforms():
    check_conformance(SortedArray, max_examples=20)


def test_conformance_failures_name_the_subclass_not_its_base():
    with pytest.raises(AssertionError, match=r"^OffByOne\.lower_bound\(0 of int\) = 1, expected 0$"):
        check_index(OffByOne, KEYS)
    with pytest.raises(AssertionError, match="OffByOne"):  # through Hypothesis too
        check_conformance(OffByOne, max_examples=5)


def test_an_incomplete_subclass_is_told_what_to_implement():
    class Incomplete(KeyValueIndex):
        pass

    both = (r"^Incomplete: a KeyValueIndex subclass must implement _search_array\(self, queries: np.ndarray, "
            r"mode: int\) -> np.ndarray and size_in_bytes\(self\) -> int$")
    with pytest.raises(AssertionError, match=both):
        check_index(Incomplete, KEYS)
    idx = Incomplete(KEYS)
    with pytest.raises(NotImplementedError, match=r"^Incomplete must implement _search_array"):
        idx.lower_bound(np.array([4]))
    with pytest.raises(NotImplementedError, match=r"^Incomplete must implement size_in_bytes"):
        idx.size_in_bytes()


def test_a_broken_invariant_is_reported_with_the_class():
    class BrokenCheck(SortedArray):
        def _check(self):
            super()._check()
            raise AssertionError("leaf 3 is stale")

    with pytest.raises(AssertionError, match=r"^BrokenCheck\._check\(\): leaf 3 is stale$"):
        check_index(BrokenCheck, KEYS)


class ForgetsDeletes(DynamicRMI):
    """``del idx[k]`` does nothing."""

    def __delitem__(self, key):
        pass


class ForgetsDeletesMachine(UpdatableIndexMachine):
    index_factory = staticmethod(ForgetsDeletes)


def test_the_state_machine_names_the_updatable_class():
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    # No shrinking (minutes on a DynamicRMI): the first failure found is raised as it is.
    quick = settings(max_examples=50, deadline=None, derandomize=True, phases=[Phase.generate],
                     report_multiple_bugs=False)
    with pytest.raises(AssertionError, match=r"ForgetsDeletes[.:\[ ]"):
        run_state_machine_as_test(ForgetsDeletesMachine, settings=quick)

"""A Hypothesis state machine that checks any updatable index against ``SortedDict``.

Subclass :class:`UpdatableIndexMachine`, set ``index_factory``, and run its ``TestCase``:

>>> from hypothesis import settings
>>> from learnedidx import DynamicRMI
>>> class DynamicRMIMachine(UpdatableIndexMachine):
...     index_factory = staticmethod(lambda keys, values: DynamicRMI(keys, values, merge_min=2))
>>> TestDynamicRMI = DynamicRMIMachine.TestCase
>>> TestDynamicRMI.settings = settings(max_examples=20, stateful_step_count=30, deadline=None)

Needs ``sortedcontainers`` besides Hypothesis. The index must be a map with unique keys:
``idx[k] = v``, ``del idx[k]``, ``pop``, ``get``, ``[]``, ``in``, ``len``, ``keys``, ``values``,
``lower_bound``/``upper_bound`` (scalars and arrays), ``range(lo, hi)``, ``get_batch``,
``contains``, ``update(keys, values)``, ``delete(keys, missing=...)`` and an invariant checker
``_check()``. Every rule compares the answer with a ``sortedcontainers.SortedDict`` holding the
same entries; ``_check()`` runs after every step (so it must not change what the index holds).
A failure names the index's class and prints the shortest sequence of calls that reproduces it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, note
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

__all__ = ["UpdatableIndexMachine", "KEYS", "VALUES"]

#: Keys the rules draw: a small range, so that writes and reads hit the same keys often.
KEYS = st.integers(-60, 60)
#: Values the rules draw.
VALUES = st.integers(-(10**6), 10**6)


class UpdatableIndexMachine(RuleBasedStateMachine):
    """Rules for inserts, overwrites, deletes, pops, point and range reads, ranks and batches.

    Class attributes to override:
        index_factory: ``callable(keys, values) -> index`` for int64 key and value arrays
            (wrap it in ``staticmethod``). Required. Give the index small thresholds (merges,
            buffers) so that its reorganizations happen within a few dozen steps.
        key_dtype / value_dtype: the numpy dtypes of the arrays the factory and the batch rules
            get (int64 by default; keys are drawn from :data:`KEYS`, values from :data:`VALUES`).
    """

    index_factory = None
    key_dtype = np.int64
    value_dtype = np.int64

    keys = Bundle("keys")

    def __init__(self):
        super().__init__()
        if type(self).index_factory is None:
            raise TypeError(f"{type(self).__name__} must set index_factory")
        try:
            from sortedcontainers import SortedDict
        except ImportError:  # pragma: no cover - part of the dev extras
            raise ImportError("UpdatableIndexMachine needs sortedcontainers: pip install sortedcontainers") from None
        self.model = SortedDict()
        self.index = None

    # --- helpers ------------------------------------------------------------------------------

    @property
    def _name(self) -> str:
        """The class of the index under test, for failure messages."""
        return type(self.index).__name__

    def _key(self):
        return st.one_of(self.keys, KEYS)

    def _arrays(self, items):
        keys = np.array([k for k, _ in items], dtype=self.key_dtype)
        values = np.array([v for _, v in items], dtype=self.value_dtype)
        return keys, values

    # --- rules --------------------------------------------------------------------------------

    @initialize(target=keys, items=st.lists(st.tuples(KEYS, VALUES), max_size=40))
    def bulk_load(self, items):
        keys, values = self._arrays(items)
        self.index = type(self).index_factory(keys, values)
        for k, v in items:
            self.model[k] = v  # the last value wins
        return multiple(*sorted({k for k, _ in items}))

    @rule(target=keys, k=KEYS, v=VALUES)
    def insert(self, k, v):
        self.index[k] = v
        self.model[k] = v
        return k

    @rule(k=keys, v=VALUES)
    def overwrite(self, k, v):
        self.index[k] = v
        self.model[k] = v

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def delete_present(self, data):
        k = data.draw(st.sampled_from(list(self.model.keys())), label="present key")
        del self.index[k]
        del self.model[k]

    @rule(k=KEYS)
    def delete_absent(self, k):
        assume(k not in self.model)
        try:
            del self.index[k]
        except KeyError:
            pass
        else:
            raise AssertionError(f"del {self._name}[{k!r}] of an absent key did not raise KeyError")

    @rule(k=keys, default=st.sampled_from([None, -1]))
    def pop(self, k, default):
        expected = self.model.pop(k, default)
        got = self.index.pop(k, default)
        assert got == expected, f"{self._name}.pop({k!r}, {default!r}) = {got!r}, expected {expected!r}"
        if default is None and k not in self.model:
            try:
                self.index.pop(k)
            except KeyError:
                pass
            else:
                raise AssertionError(f"{self._name}.pop({k!r}) of an absent key did not raise KeyError")

    @rule(data=st.data())
    def get(self, data):
        k = data.draw(self._key(), label="key")
        expected = self.model.get(k, "absent")
        got = self.index.get(k, "absent")
        assert got == expected, f"{self._name}.get({k!r}) = {got!r}, expected {expected!r}"
        assert (k in self.index) == (k in self.model), f"({k!r} in {self._name}) is {k not in self.model}"
        if k in self.model:
            assert self.index[k] == expected, f"{self._name}[{k!r}] = {self.index[k]!r}, expected {expected!r}"
        else:
            try:
                self.index[k]
            except KeyError:
                pass
            else:
                raise AssertionError(f"{self._name}[{k!r}] of an absent key did not raise KeyError")

    @rule(data=st.data())
    def range(self, data):
        lo = data.draw(self._key(), label="lo")
        hi = data.draw(self._key(), label="hi")
        got_k, got_v = self.index.range(lo, hi)
        exp_k = list(self.model.irange(lo, hi, inclusive=(True, False)))
        assert list(got_k) == exp_k, f"{self._name}.range({lo!r}, {hi!r}) keys {list(got_k)} != {exp_k}"
        exp_v = [self.model[k] for k in exp_k]
        assert list(got_v) == exp_v, f"{self._name}.range({lo!r}, {hi!r}) values {list(got_v)} != {exp_v}"

    @rule(data=st.data())
    def lower_bound(self, data):
        q = data.draw(self._key(), label="q")
        for method, expected in (("lower_bound", self.model.bisect_left(q)),
                                 ("upper_bound", self.model.bisect_right(q))):
            got = getattr(self.index, method)(q)
            assert got == expected, f"{self._name}.{method}({q!r}) = {got}, expected {expected}"

    @rule(qs=st.lists(KEYS, max_size=20))
    def batch_reads(self, qs):
        arr = np.array(qs, dtype=self.key_dtype)
        for method, fn in (("lower_bound", self.model.bisect_left), ("upper_bound", self.model.bisect_right)):
            got = getattr(self.index, method)(arr)
            expected = [fn(q) for q in qs]
            assert list(got) == expected, f"{self._name}.{method}({qs}) = {list(got)}, expected {expected}"
        values, found = self.index.get_batch(arr, default=-7)
        assert list(found) == [q in self.model for q in qs], f"{self._name}.get_batch({qs}) found {list(found)}"
        expected = [self.model.get(q, -7) for q in qs]
        assert list(values) == expected, f"{self._name}.get_batch({qs}) values {list(values)}, expected {expected}"
        assert list(self.index.contains(arr)) == [q in self.model for q in qs], f"{self._name}.contains({qs})"

    @rule(items=st.lists(st.tuples(st.one_of(keys, KEYS), VALUES), max_size=30))
    def batch_update(self, items):
        keys, values = self._arrays(items)
        self.index.update(keys, values)
        for k, v in items:
            self.model[k] = v

    @rule(ks=st.lists(st.one_of(keys, KEYS), max_size=20), missing=st.sampled_from(["raise", "ignore"]))
    def batch_delete(self, ks, missing):
        arr = np.array(ks, dtype=self.key_dtype)
        absent = sorted({k for k in ks if k not in self.model})
        if missing == "raise" and absent:
            try:
                self.index.delete(arr, missing="raise")
            except KeyError as exc:
                note(f"KeyError: {exc}")
            else:
                raise AssertionError(f"{self._name}.delete({ks}) did not raise KeyError for absent keys {absent}")
            return  # nothing may have changed: the next rules check that
        count = self.index.delete(arr, missing=missing)
        present = {k for k in ks if k in self.model}
        for k in present:
            del self.model[k]
        assert count == len(present), f"{self._name}.delete({ks}) returned {count}, expected {len(present)}"

    @rule()
    def contents(self):
        assert len(self.index) == len(self.model), f"{self._name}: len {len(self.index)} != {len(self.model)}"
        assert list(self.index.keys) == list(self.model.keys()), f"{self._name}: keys differ"
        assert list(self.index.values) == list(self.model.values()), f"{self._name}: values differ"

    @invariant()
    def check(self):
        if self.index is not None:
            try:
                self.index._check()
            except AssertionError as exc:  # name the class: the index's own messages may not
                raise AssertionError(f"{self._name}._check(): {exc}") from exc

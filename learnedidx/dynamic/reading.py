"""The read side of a DynamicRMI: point and batch lookups, ranks, ranges and snapshots; each
read applies the write buffer first where it needs ranks."""

from __future__ import annotations

from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _directory, _layout, _reads
from .._coerce import (
    ANSWER_N,
    ANSWER_ZERO,
    LEFT,
    RIGHT,
    as_query_array,
    checked_default,
    coerce_array,
    coerce_scalar,
)
from .._modes import FIND, NOT_FOUND
from .._rmi_kernels import GROUP
from .._search import group_buffers
from .._threads import run_sliced
from ..interface import Number, Queries
from ._common import MISSING, serialized


class Reading:
    """The read methods of :class:`learnedidx.DynamicRMI` (a mixin: the class owns the state)."""

    @serialized
    def __len__(self) -> int:
        """Number of keys. Applies the write buffer first."""
        if self._log_set or self._log_del:
            self._flush()
        return len(self._keys) - self._t + int(self._delta.state[_layout.D_KEYS])

    def _atomic(self):
        """The index's lock: a method making several reads (``items``, ``irange``, ``count``,
        ``find_*``) holds it across them, so no write lands between."""
        return self._lock

    @serialized
    def _snapshot(self):
        if self._log_set or self._log_del:
            self._flush()
        if self._snap is None:
            d = int(self._delta.state[_layout.D_KEYS])
            if d == 0 and self._t == 0:
                keys = self._keys
                values = self._values.view()
                values.flags.writeable = False
                self._keys_shared = True  # the caller holds views now: copy before writing
                self._values_owned = False
            else:
                n = len(self._keys) - self._t + d
                keys = np.empty(n, dtype=self._kdtype)
                values = np.empty(n, dtype=self._vdtype)
                vu = self._vu
                _reads.materialize(self._keys, self._values.view(vu), self._tomb.bits, self._delta, 0, len(self._keys), 0, d,
                                   keys, values.view(vu))
                keys.flags.writeable = False
                values.flags.writeable = False
            self._snap = (keys, values)
        return self._snap

    @property
    def keys(self) -> np.ndarray:
        """The keys in sorted order (read-only). O(n) after a write, then cached."""
        return self._snapshot()[0]

    @property
    def values(self) -> np.ndarray:
        """The values in key order (read-only). O(n) after a write, then cached."""
        return self._snapshot()[1]

    @overload
    def lower_bound(self, q: Number) -> int: ...
    @overload
    def lower_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def lower_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Number of keys ``< q`` in the current contents, exactly (see KeyValueIndex).

        Applies the write buffer first. Complexity O(RMI lookup + log d + log C).
        """
        with self._lock:
            if self._log_set or self._log_del:
                self._flush()
            if type(q) is self._kfast and self._kmin <= q <= self._kmax:
                return self._entries[0](self._haddr, q, LEFT)
            return self._answer(q, LEFT)

    @overload
    def upper_bound(self, q: Number) -> int: ...
    @overload
    def upper_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def upper_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Number of keys ``<= q`` in the current contents, exactly; as :meth:`lower_bound`."""
        with self._lock:
            if self._log_set or self._log_del:
                self._flush()
            if type(q) is self._kfast and self._kmin <= q <= self._kmax:
                return self._entries[0](self._haddr, q, RIGHT)
            return self._answer(q, RIGHT)

    @serialized
    def _answer(self, q, mode: int):
        if self._log_set or self._log_del:
            self._flush()
        if isinstance(q, (np.ndarray, list, tuple)):
            arr = as_query_array(q)
            values, forced, _ = coerce_array(arr.ravel(), self._kdtype, mode)
            out = self._search_array(values, mode)
            if forced is not None:
                out[forced] = len(self) if mode == LEFT else 0
            return out.reshape(arr.shape)
        value, status, _ = coerce_scalar(q, self._kdtype, mode)
        if status == ANSWER_ZERO:
            return 0
        if status == ANSWER_N:
            return len(self)
        return int(self._entries[0](self._haddr, value, mode))

    def _use_dir(self, m: int) -> bool:
        """Whether m batch queries should search the delta through the directory (building it
        when stale costs O(n / 64 + d), worth it for batches of more than n / 512 queries)."""
        if not self._dir_valid:
            if m * 8 < len(self._dirs):
                return False
            _directory.dir_build(self._samples, len(self._keys), self._delta, self._dirs)
            self._dir_valid = True
        return True

    def _search_array(self, queries: np.ndarray, mode: int) -> np.ndarray:
        """Answers for key-dtype queries in the applied contents, as a new int64 array: ranks
        (LEFT/RIGHT), or for FIND the position in the current key order or -1."""
        m = len(queries)
        out = np.empty(m, dtype=np.int64)
        if m == 0:
            return out
        if not queries.flags.writeable:
            queries = queries.copy()  # Numba compiles read-only arguments separately
        if mode == FIND:
            ranks = self._search_array(queries, LEFT)
            return np.where(self._lookup(queries)[1], ranks, -1)
        state = (self._rmi.arrays, self._keys, self._tomb, self._t > 0, self._use_dir(m), self._dirs, self._delta)
        right, kd = mode == RIGHT, self._kdtype
        run_sliced(lambda a, b: _reads.rank_batch(*state, queries[a:b], right, out[a:b], group_buffers(kd, GROUP)),
                   m, self._threads(m))
        return out

    def _search_scalar(self, q, mode: int) -> int:
        """Rank of one key-dtype query (LEFT/RIGHT), or for FIND its position or -1."""
        if mode == FIND:
            return NOT_FOUND if self._entries[1](self._haddr, q) == -1 else int(self._entries[0](self._haddr, q, LEFT))
        return int(self._entries[0](self._haddr, q, mode))

    def _value_at_location(self, loc, default):
        if loc == -1:
            return default
        if loc >= 0:
            return self._values[loc]
        return self._dv_flat[-2 - loc]

    @serialized
    def _find(self, q) -> int:
        """Position of key q in the current key order, or -1 (applies the write buffer)."""
        if self._log_set or self._log_del:
            self._flush()
        k = self._read_key(q)
        return -1 if k is None else self._search_scalar(k, 2)

    def get(self, key: Number, default: Any = None) -> Any:
        """Value of ``key``, or ``default``. Sees buffered writes; O(1) for those, else one
        lookup in main and, for keys not there, one in the delta.

        Raises: TypeError for a non-number, ValueError for NaN.
        """
        kfast, kmin, kmax, log, dels, entries, haddr, vtype = self._get_fast
        if type(key) is not kfast or not kmin <= key <= kmax:
            return self._get_general(key, default)
        with self._lock:
            if log or dels:
                v = log.get(key, MISSING)
                if v is not MISSING:
                    return vtype(v)
                if key in dels:
                    return default
            loc = entries[1](haddr, key)
            if loc >= 0:
                return self._values[loc]
            return default if loc == -1 else self._dv_flat[-2 - loc]

    @serialized
    def _get_general(self, key, default):
        k = self._read_key(key)
        if k is None:
            return default
        if self._log_set or self._log_del:
            v = self._log_set.get(k, MISSING)
            if v is not MISSING:
                return self._vtype(v)
            if k in self._log_del:
                return default
        loc = self._entries[1](self._haddr, k)
        if loc == -1:
            return default
        return self._values[loc] if loc >= 0 else self._dv_flat[-2 - loc]

    def __getitem__(self, key: Number) -> Any:
        """Value of ``key``. Raises KeyError when absent (ValueError for NaN)."""
        value = self.get(key, MISSING)
        if value is MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        """True when ``key`` is present. Raises ValueError for NaN."""
        return self.get(key, MISSING) is not MISSING

    def _lookup(self, queries):
        """``(values, found, shape)`` of a batch of queries (flat arrays)."""
        if self._log_set or self._log_del:
            self._flush()
        arr = as_query_array(queries)
        flat, forced, exact = coerce_array(arr.ravel(), self._kdtype, LEFT)
        if not flat.flags.writeable:
            flat = flat.copy()  # Numba compiles read-only arguments separately
        m = len(flat)
        if m == 0:
            found = np.zeros(0, dtype=bool)
            values = np.zeros(0, dtype=self._vdtype)
        else:
            values = np.empty(m, dtype=self._vdtype)
            found = np.empty(m, dtype=bool)
            vu, kd = self._vu, self._kdtype
            state = (self._rmi.arrays, self._keys, self._values.view(vu), self._tomb, self._t > 0, self._use_dir(m),
                     self._dirs, self._delta)
            out = values.view(vu)
            run_sliced(lambda a, b: _reads.lookup_batch(*state, flat[a:b], out[a:b], found[a:b],
                                                         group_buffers(kd, GROUP)), m, self._threads(m))
        if exact is not None:
            found &= exact
        if forced is not None:
            found &= ~forced
        return values, found, arr.shape

    @serialized
    def contains(self, queries: ArrayLike) -> NDArray[np.bool_]:
        """Boolean array: is each query a key. Applies the write buffer first."""
        _, found, shape = self._lookup(queries)
        return found.reshape(shape)

    @serialized
    def get_batch(self, queries: ArrayLike, default: Any = 0) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """``(values, found)`` for every query (shape of ``queries``); ``default`` where absent.

        Applies the write buffer first. Complexity: one batch RMI search (interleaved, on every
        Numba thread for large batches), then O(1) per main hit and, for the other queries, a
        search of the few delta keys between two main keys (through a directory over main).
        """
        checked_default(default, self._vdtype)
        values, found, shape = self._lookup(queries)
        if not found.all():
            values[~found] = default
        return values.reshape(shape), found.reshape(shape)

    @serialized
    def range(self, lo: Number, hi: Number) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(keys, values)`` of the entries with ``lo <= key < hi``, as read-only copies.

        Complexity: two rank searches plus O(k) for k entries. Raises as :meth:`lower_bound`.
        """
        if isinstance(lo, np.ndarray) or isinstance(hi, np.ndarray):
            if np.ndim(lo) or np.ndim(hi):
                raise TypeError("range(lo, hi) takes scalar bounds; use lower_bound for arrays")
        if self._log_set or self._log_del:
            self._flush()
        n, d = len(self._keys), int(self._delta.state[_layout.D_KEYS])
        bounds = []
        for q in (lo, hi):
            value, status, _ = coerce_scalar(q, self._kdtype, LEFT)
            if status == ANSWER_N:
                bounds.append((n, d))
                continue
            if status == ANSWER_ZERO:
                bounds.append((0, 0))
                continue
            qa = np.array([value], dtype=self._kdtype)
            main = int(self._rmi.lower_bound(qa)[0])
            if d:
                r = np.zeros(1, dtype=np.int64)
                _directory.rank_post(r, qa, False, 0, self._tomb, False, self._dirs, self._delta, r)
                bounds.append((main, int(r[0])))
            else:
                bounds.append((main, 0))
        (i0, r0), (i1, r1) = bounds
        i1, r1 = max(i0, i1), max(r0, r1)
        size = (i1 - i0) + (r1 - r0)
        keys = np.empty(size, dtype=self._kdtype)
        values = np.empty(size, dtype=self._vdtype)
        vu = self._vu
        w = _reads.materialize(self._keys, self._values.view(vu), self._tomb.bits, self._delta, i0, i1, r0, r1, keys,
                               values.view(vu))
        keys, values = keys[:w], values[:w]
        keys.flags.writeable = False
        values.flags.writeable = False
        return keys, values

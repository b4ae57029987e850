"""The index base classes: `IndexBase` (what every index shares: repr, saving, loading) and
`KeyValueIndex`, the static base class.

`KeyValueIndex` owns the sorted keys and values, validates every input and coerces every query
exactly (see :mod:`learnedidx._coerce`); a subclass only builds its structure and answers
lower/upper-bound searches for queries already in the key dtype. The interface itself is
stated by the Protocols of :mod:`learnedidx.interface`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any, ContextManager, overload

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _sorted
from ._coerce import (
    ANSWER_N,
    ANSWER_ZERO,
    as_query_array,
    checked_default,
    coerce_array,
    coerce_scalar,
    prepare_keys_values,
)
from ._modes import FIND, LEFT, RIGHT
from ._search import group_buffers
from ._threads import batch_answers, run_sliced, threads_for
from .interface import Key, Number, Queries, StrPath

_UNBOUND = object()  # KeyValueIndex._scalar_entry before the first scalar query


class _NoNumber:
    """A type no query has: the scalar fast path's type check fails until it is installed."""


#: Sorted batches take the galloping path (:mod:`learnedidx._sorted`) when they hold at least
#: one query per this many keys; see :meth:`KeyValueIndex._sorted_path` for the measurements.
SORTED_MAX_GAP = 32
#: Sorted batches of at least this many queries gallop on every Numba thread.
SORTED_PARALLEL_MIN = 1 << 14


_ITER_BLOCK = 4096  #: keys converted to Python numbers at a time by the iterators


def _python_numbers(array: np.ndarray):
    """The elements of a 1-D array as Python numbers, converted a block at a time."""
    for start in range(0, len(array), _ITER_BLOCK):
        yield from array[start:start + _ITER_BLOCK].tolist()


class IndexBase:
    """What every index shares, static or updatable: its name, ``repr``, size, saving and loading
    (:mod:`learnedidx.persist`). :class:`KeyValueIndex` adds the static machinery; an updatable
    index (:class:`learnedidx.DynamicRMI`) builds on this directly. The full interface is
    :class:`learnedidx.SortedIndex` / :class:`learnedidx.UpdatableIndex`.
    """

    name = "IndexBase"
    #: Saved arrays whose checksums :func:`learnedidx.load` checks only with ``verify=True``:
    #: large ones whose corruption can make answers wrong but never sends a kernel out of bounds.
    _lazy_arrays = ("keys", "values")

    #: What the batch path does for large batches (the bench reports it next to its times).
    batch_variant = "loop"

    def size_in_bytes(self) -> int:
        """Bytes of the index structure itself, not counting the key and value arrays."""
        raise NotImplementedError(f"{type(self).__name__} must implement size_in_bytes(self) -> int")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={len(self)}, dtype={self._keys.dtype}, "
            f"size_in_bytes={self.size_in_bytes()})"
        )

    # --- Python's container protocols, with the names of sortedcontainers and pygm -----------
    # Over ``keys``/``values`` (O(1) views of a static index; a DynamicRMI's snapshot, O(n) after
    # a write) and the exact bounds, so every query coerces as lower_bound does.

    def __iter__(self) -> Iterator[Key]:
        """The keys in order as Python numbers, like ``SortedDict``; lazy, O(1) a key."""
        return _python_numbers(self.keys)

    def __reversed__(self) -> Iterator[Key]:
        """The keys in descending order as Python numbers; lazy."""
        return _python_numbers(self.keys[::-1])

    def items(self) -> Iterator[tuple[Key, Any]]:
        """``(key, value)`` pairs in key order, lazily: keys as Python numbers, values as
        :meth:`KeyValueIndex.get` returns them (numpy scalars of the value dtype)."""
        with self._atomic():
            keys, values = self.keys, self.values
        return zip(_python_numbers(keys), values)

    @overload
    def bisect_left(self, q: Number) -> int: ...
    @overload
    def bisect_left(self, q: Queries) -> NDArray[np.int64]: ...

    def bisect_left(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Alias of :meth:`KeyValueIndex.lower_bound` (``bisect.bisect_left`` on the keys)."""
        return self.lower_bound(q)

    @overload
    def bisect_right(self, q: Number) -> int: ...
    @overload
    def bisect_right(self, q: Queries) -> NDArray[np.int64]: ...

    def bisect_right(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Alias of :meth:`KeyValueIndex.upper_bound` (``bisect.bisect_right`` on the keys)."""
        return self.upper_bound(q)

    def count(self, key: Number) -> int:
        """Number of keys equal to ``key``: two searches. Raises as :meth:`KeyValueIndex.lower_bound`."""
        with self._atomic():
            return int(self.upper_bound(key)) - int(self.lower_bound(key))

    def irange(self, minimum: Number | None = None, maximum: Number | None = None,
               inclusive: tuple[bool, bool] = (True, True), reverse: bool = False) -> Iterator[Key]:
        """The keys between ``minimum`` and ``maximum`` (None: unbounded), in order or
        ``reverse``, as ``SortedList.irange`` gives them: a lazy iterator of Python numbers.
        ``inclusive``: whether each bound itself is included. Two searches, then O(1) a key.
        Raises as :meth:`KeyValueIndex.lower_bound`, ValueError for a malformed ``inclusive``."""
        if not (isinstance(inclusive, tuple) and len(inclusive) == 2):
            raise ValueError(f"inclusive must be a pair of bools like (True, False), got {inclusive!r}")
        with self._atomic():
            keys = self.keys
            lo = 0 if minimum is None else int(self.lower_bound(minimum) if inclusive[0] else
                                               self.upper_bound(minimum))
            hi = len(keys) if maximum is None else int(self.upper_bound(maximum) if inclusive[1] else
                                                       self.lower_bound(maximum))
        part = keys[lo:max(lo, hi)]
        return _python_numbers(part[::-1] if reverse else part)

    def find_lt(self, q: Number) -> Key | None:
        """The largest key ``< q`` as a Python number, or None (pygm's ``find_lt``). One search."""
        with self._atomic():
            return self._key_at(int(self.lower_bound(q)) - 1)

    def find_le(self, q: Number) -> Key | None:
        """The largest key ``<= q``, or None. One search."""
        with self._atomic():
            return self._key_at(int(self.upper_bound(q)) - 1)

    def find_gt(self, q: Number) -> Key | None:
        """The smallest key ``> q``, or None. One search."""
        with self._atomic():
            return self._key_at(int(self.upper_bound(q)))

    def find_ge(self, q: Number) -> Key | None:
        """The smallest key ``>= q``, or None. One search."""
        with self._atomic():
            return self._key_at(int(self.lower_bound(q)))

    def _atomic(self) -> ContextManager:
        """What keeps a method's several reads on one state: nothing for a static index; an
        updatable one returns its lock (an ``RLock``: its reads take it again inside)."""
        return nullcontext()

    def _key_at(self, i: int) -> Key | None:
        keys = self.keys
        return keys[i].item() if 0 <= i < len(keys) else None

    # --- saving and loading (see learnedidx.persist) ------------------------------------------

    def save(self, path: StrPath) -> None:
        """Write the index to ``path``, atomically; :func:`learnedidx.load` opens it again.

        One self-describing file: keys, values (none when they are the positions), the
        structure's arrays and configuration, a format version and a CRC-32 of every section.
        It is written to a temporary file in the same directory, fsynced, then renamed over
        ``path``, so ``path`` never holds half an index. Complexity O(n) (one pass writing).

        Raises:
            TypeError: values of dtype object (or another dtype a file cannot hold), or an
                index class that was not registered with :func:`learnedidx.persist.register`.
            OSError: the file cannot be written (``path`` is then untouched).
        """
        from . import persist

        persist.save(self, path)

    def _state(self):
        """``(config, arrays)``: everything needed to rebuild the index without training.

        ``config`` is a JSON-able dict, ``arrays`` maps names to numpy arrays. This base part
        holds ``build_time_ns``, ``positions`` (True when the values are the positions, which
        are then not stored) and the arrays ``keys`` and ``values``; a subclass extends both
        (``config, arrays = super()._state()``) and reads them back in :meth:`_restore`.
        """
        config = {"build_time_ns": int(self.build_time_ns), "positions": self._values is None}
        arrays = {"keys": self._keys}
        if self._values is not None:
            arrays["values"] = self._values
        return config, arrays

    @classmethod
    def _from_state(cls, config: dict, arrays: dict):
        """The index that :meth:`_state` described, without training, sorting or copying.

        Only cheap structural checks run (lengths, dtypes, the subclass's own layout checks in
        :meth:`_restore`); :meth:`_check` verifies everything. Complexity O(1) in the keys.

        Raises:
            ValueError: arrays of the wrong dtype, shape or length, or an inconsistent config.
            KeyError: a missing config entry or array.
        """
        from ._coerce import KEY_DTYPES

        keys = arrays["keys"]
        if not isinstance(keys, np.ndarray) or keys.ndim != 1 or keys.dtype not in KEY_DTYPES:
            raise ValueError(f"keys must be a 1-D array of a key dtype, got {getattr(keys, 'dtype', keys)!r}")
        positions = config["positions"]
        if not isinstance(positions, bool) or positions == ("values" in arrays):
            raise ValueError("config 'positions' must say whether a values array is absent")
        values = arrays.get("values")
        if values is not None and (values.ndim != 1 or len(values) != len(keys)):
            raise ValueError(f"values of shape {values.shape} for {len(keys)} keys")
        build_time_ns = config["build_time_ns"]
        if not isinstance(build_time_ns, int) or isinstance(build_time_ns, bool):
            raise ValueError(f"build_time_ns must be an integer, got {build_time_ns!r}")
        self = cls.__new__(cls)
        self._keys, self._values = read_only_views(keys, values)
        self._positions = None
        self.build_time_ns = build_time_ns
        self._restore(config, arrays)
        self._bind_fast_paths()
        return self

    def _restore(self, config: dict, arrays: dict) -> None:
        """Install the structure from :meth:`_state` output (keys and values are already set).

        A subclass checks the layout cheaply (raising ValueError) so that no kernel can read
        out of bounds; it must not train, sort or copy the big arrays.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot be restored from a file")

    def _bind_fast_paths(self) -> None:
        """Set what the scalar fast paths read (after building, loading or unpickling)."""


class KeyValueIndex(IndexBase):
    """A static map from sorted numeric keys to values, queried like ``np.searchsorted``.

    ``Cls(keys, values=None, *, assume_sorted=False, copy=True, **options)``

    Args:
        keys: 1-D array-like of any numpy integer or float dtype of at most 64 bits (float16 keys
            are stored as float32). Sorted stably when unsorted; values move with their keys.
        values: None (the values are then the positions 0..n-1 as int64) or a 1-D array of the
            same length and any dtype.
        assume_sorted: promise that keys are sorted; unsorted keys then raise ValueError.
        copy: copy keys and values even when they could be used as they are. With False the
            index keeps read-only views of the caller's sorted arrays, and the caller must not
            modify them afterwards.
        options: the subclass's own options, as keywords.

    Raises:
        TypeError: keys are not numeric, or an unknown option was passed.
        ValueError: keys are not 1-D or hold NaN, keys are unsorted with ``assume_sorted=True``,
            values have another length.

    Every query method accepts Python numbers, numpy scalars and array-likes of any real dtype,
    compared exactly (no rounding: int64 queries against uint64 keys, integers above 2**53,
    floats against integers). A query that cannot be compared raises TypeError (not a number)
    or ValueError (NaN).
    """

    name = "KeyValueIndex"
    #: True when ``_search_array`` also answers mode FIND itself.
    _native_find = False
    #: ``(entry_point, a0, a1, a2)`` from :meth:`_scalar_kernel` (None: the index has none),
    #: set at the first scalar query: building or loading an index never compiles scalar code.
    _scalar_entry = _UNBOUND
    #: What the scalar fast paths read, in one attribute: ``(entry, a0, a1, a2, number_type,
    #: low, high)``; a query of exactly ``number_type`` within [low, high] goes straight to the
    #: compiled entry. Until the first scalar query (and for dtypes without a fast path) no
    #: query matches ``_NoNumber``, so the query takes the general path, which installs it.
    _scalar_fast = (None, 0, 0, 0, _NoNumber, 0, 0)

    def __init__(self, keys: ArrayLike, values: ArrayLike | None = None, *, assume_sorted: bool = False,
                 copy: bool = True, **options: Any) -> None:
        start = time.perf_counter_ns()
        self._keys, self._values = prepare_keys_values(
            keys, values, assume_sorted=assume_sorted, copy=copy
        )
        self._positions = None
        self._build(**options)
        self.build_time_ns = time.perf_counter_ns() - start
        self._bind_fast_paths()

    # --- what a subclass provides -------------------------------------------------------------

    def _build(self, **options) -> None:
        """Build the structure over ``self._keys``. Raises TypeError for unknown options."""
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(options)}")

    def _search_array(self, queries: np.ndarray, mode: int) -> np.ndarray:
        """Answers for a contiguous 1-D array in the key dtype, as a new int64 array.

        ``mode`` is LEFT or RIGHT (and FIND when ``_native_find``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _search_array(self, queries, mode)")

    def _search_loop(self, queries: np.ndarray, mode: int) -> np.ndarray:
        """:meth:`_search_array` one lookup after another (SOSD's loop), without interleaving:
        the bench times both modes. Indexes whose batch path is a plain loop inherit this."""
        return self._search_array(queries, mode)

    def _search_scalar(self, q, mode: int) -> int:
        """Answer for one query already in the key dtype; mode LEFT, RIGHT or FIND.

        Through the scalar entry point (:meth:`_scalar_kernel`, installed by the caller) when
        the index has one: one compiled scalar kernel serves the fast paths and numpy scalars.
        """
        if self._scalar_entry is not None:
            entry, a0, a1, a2 = self._scalar_entry
            return int(entry(a0, a1, a2, q, mode))
        if mode == FIND:
            pos = int(self._search_array(np.array([q], dtype=self._keys.dtype), LEFT)[0])
            return pos if pos < len(self._keys) and self._keys[pos] == q else -1
        return int(self._search_array(np.array([q], dtype=self._keys.dtype), mode)[0])

    def _scalar_kernel(self):
        """``(entry_point, a0, a1, a2)`` for the scalar fast path, or None.

        ``entry_point(a0, a1, a2, q, mode)`` must answer like :meth:`_search_scalar` for a
        Python int (integer keys) or float (float64 keys) within the key dtype's range. The
        ``a`` arguments are arrays or, cheaper to pass, addresses of arrays the index keeps
        alive (:mod:`learnedidx._pointers`).
        """
        return None

    def _check(self) -> None:
        """Assert every invariant of the structure; raises AssertionError naming the broken one."""
        keys = self._keys
        assert keys.ndim == 1 and keys.flags.c_contiguous, "keys must be 1-D and contiguous"
        assert not keys.flags.writeable, "keys must be read-only"
        assert len(keys) < 2 or bool((keys[1:] >= keys[:-1]).all()), "keys are not sorted"
        if keys.dtype.kind == "f":
            assert not np.isnan(keys).any(), "keys hold NaN"
        if self._values is not None:
            assert len(self._values) == len(keys), (
                f"{len(self._values)} values for {len(keys)} keys"
            )

    # --- the interface ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> np.ndarray:
        """The keys in sorted order (read-only)."""
        return self._keys

    @property
    def values(self) -> np.ndarray:
        """The values in key order (read-only); the positions 0..n-1 when none were given."""
        if self._values is not None:
            return self._values
        if self._positions is None:
            positions = np.arange(len(self._keys), dtype=np.int64)
            positions.flags.writeable = False
            self._positions = positions
        return self._positions

    @overload
    def lower_bound(self, q: Number) -> int: ...
    @overload
    def lower_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def lower_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Number of keys ``< q``: ``np.searchsorted(keys, q, side="left")``, exactly.

        A scalar q gives an int; an array-like gives an int64 array of q's shape.
        Complexity: that of the index's search per query (RMI: O(log window)); a non-decreasing
        batch of at least n/32 queries gallops from answer to answer instead, O(m + log n) to
        O(m log 32) (see :meth:`_sorted_path`).

        Raises:
            TypeError: q is not a number or numeric array.
            ValueError: q is or holds NaN.
        """
        entry, a0, a1, a2, number, low, high = self._scalar_fast
        if type(q) is number and low <= q <= high:
            return entry(a0, a1, a2, q, LEFT)
        return self._answer(q, LEFT)

    @overload
    def upper_bound(self, q: Number) -> int: ...
    @overload
    def upper_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def upper_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Number of keys ``<= q``: ``np.searchsorted(keys, q, side="right")``, exactly.

        Shapes, complexity and errors as :meth:`lower_bound`.
        """
        entry, a0, a1, a2, number, low, high = self._scalar_fast
        if type(q) is number and low <= q <= high:
            return entry(a0, a1, a2, q, RIGHT)
        return self._answer(q, RIGHT)

    def get(self, key: Number, default: Any = None) -> Any:
        """Value of the first entry whose key equals ``key``, or ``default``.

        Raises: TypeError for a non-number, ValueError for NaN.
        """
        i = self._find(key)
        return default if i < 0 else self._value_at(i)

    def __getitem__(self, key: Number) -> Any:
        """Value of the first entry whose key equals ``key``. Raises KeyError when absent."""
        i = self._find(key)
        if i < 0:
            raise KeyError(key)
        return self._value_at(i)

    def __contains__(self, key: object) -> bool:
        """True when some key equals ``key`` exactly. Raises ValueError for NaN."""
        return self._find(key) >= 0

    def contains(self, queries: ArrayLike) -> NDArray[np.bool_]:
        """Boolean array: does each query equal some key exactly. Shape of ``queries``.

        Raises: TypeError for non-numbers, ValueError for NaN.
        """
        arr = as_query_array(queries)
        return self._find_array(arr) >= 0

    def get_batch(self, queries: ArrayLike, default: Any = 0) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """``(values, found)`` for every query: the first matching entry's value, or ``default``.

        Both arrays have the shape of ``queries``; ``values`` has the values' dtype.
        Raises: TypeError for non-numbers, ValueError for NaN or a ``default`` that does not
        fit an integer value dtype.
        """
        arr = as_query_array(queries)
        checked_default(default, np.int64 if self._values is None else self._values.dtype)
        idx = self._find_array(arr)
        found = idx >= 0
        if self._values is None:
            return np.where(found, idx, np.int64(default)), found
        if len(self._values) == 0:
            return np.full(arr.shape, default, dtype=self._values.dtype), found
        out = self._values[np.where(found, idx, 0)]
        out[~found] = default
        return out, found

    def lower_bound_loop(self, q: ArrayLike) -> NDArray[np.int64]:
        """:meth:`lower_bound` of an array-like, one lookup after another: SOSD's loop mode,
        without the batch kernels' interleaving or the sorted-batch path, to measure single
        lookups (``python -m bench``, :func:`learnedidx.tune`). Same answers and errors as
        :meth:`lower_bound`; an int64 array of q's shape. Complexity: m lookups."""
        arr = as_query_array(q)
        values, forced, _ = coerce_array(arr.ravel(), self._keys.dtype, LEFT)
        out = self._search_loop(values, LEFT) if len(values) else np.zeros(0, np.int64)
        if forced is not None:
            out[forced] = len(self._keys)
        return out.reshape(arr.shape)

    @property
    def has_loop_kernel(self) -> bool:
        """True when :meth:`lower_bound_loop` runs a kernel of its own; False when the batch
        path already answers one lookup after another (it is then that path)."""
        return type(self)._search_loop is not KeyValueIndex._search_loop

    def range(self, lo: Number, hi: Number) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(keys, values)`` of the entries with ``lo <= key < hi``, as read-only views.

        Complexity: two lower-bound searches, plus O(k) when values are positions.
        Raises: TypeError for non-numbers, ValueError for NaN.
        """
        if isinstance(lo, np.ndarray) or isinstance(hi, np.ndarray):
            if np.ndim(lo) or np.ndim(hi):
                raise TypeError("range(lo, hi) takes scalar bounds; use lower_bound for arrays")
        i = self._answer(lo, LEFT)
        j = max(i, self._answer(hi, LEFT))
        return self._keys[i:j], self.values[i:j]

    # --- shared machinery ---------------------------------------------------------------------

    def _value_at(self, i: int):
        return np.int64(i) if self._values is None else self._values[i]

    def _answer(self, q, mode: int):
        if isinstance(q, (np.ndarray, list, tuple)):
            arr = as_query_array(q)
            flat = arr.ravel()
            values, forced, _ = coerce_array(flat, self._keys.dtype, mode)
            out = self._sorted_path(values, mode)
            if out is None:
                out = self._search_array(values, mode) if len(values) else np.zeros(0, np.int64)
            if forced is not None:
                out[forced] = len(self._keys) if mode == LEFT else 0
            return out.reshape(arr.shape)
        if self._scalar_entry is _UNBOUND:
            self._install_fast_paths()
        value, status, _ = coerce_scalar(q, self._keys.dtype, mode)
        if status == ANSWER_ZERO:
            return 0
        if status == ANSWER_N:
            return len(self._keys)
        return self._search_scalar(value, mode)

    def _find(self, q) -> int:
        """Position of the first key equal to q, or -1."""
        entry, a0, a1, a2, number, low, high = self._scalar_fast
        if type(q) is number and low <= q <= high:
            return entry(a0, a1, a2, q, FIND)
        return self._find_general(q)

    def _find_general(self, q) -> int:
        if isinstance(q, np.ndarray) and q.ndim:
            raise TypeError("a key must be a scalar; use contains() or get_batch() for arrays")
        if self._scalar_entry is _UNBOUND:
            self._install_fast_paths()
        value, status, exact = coerce_scalar(q, self._keys.dtype, LEFT)
        if status != 0 or not exact:
            return -1
        return self._search_scalar(value, FIND)

    def _find_array(self, arr: np.ndarray) -> np.ndarray:
        """Position of the first key equal to each query, or -1; shape of ``arr``."""
        flat = arr.ravel()
        values, forced, exact = coerce_array(flat, self._keys.dtype, LEFT)
        n = len(self._keys)
        if len(values) == 0:
            return np.zeros(arr.shape, np.int64)
        idx = self._sorted_path(values, FIND)
        if idx is None and self._native_find:
            idx = self._search_array(values, FIND)
        elif idx is None:
            idx = self._search_array(values, LEFT)
            hit = idx < n
            hit[hit] = self._keys[idx[hit]] == values[hit]
            idx[~hit] = -1
        if exact is not None:
            idx[~exact] = -1
        if forced is not None:
            idx[forced] = -1
        return idx.reshape(arr.shape)

    def _sorted_path(self, values: np.ndarray, mode: int):
        """Answers for key-dtype queries that never decrease and are dense enough, else None.

        Such a batch gallops from each answer to the next (:mod:`learnedidx._sorted`); any
        other batch goes to the index's own batch path, never sorted first. The order check is
        O(m) and stops at the first descent, and runs only for batches of at least one query
        per ``SORTED_MAX_GAP`` keys. Complexity O(m + log n) for m ~ n, O(m log(n / m)) at most.

        Up to one query per 32 keys the gallop beat every batch path; from one per 64 keys on the
        interleaved batch paths won, hence ``SORTED_MAX_GAP = 32`` (docs/design.md, "Sorted
        batches"; ``python -m bench.kernels sorted --n 100M --threads 2``).
        """
        m, n = len(values), len(self._keys)
        if m < 2 or m * SORTED_MAX_GAP < n or not _sorted.is_sorted(values):
            return None
        out = np.empty(m, dtype=np.int64)
        keys = self._keys
        run_sliced(lambda a, b: _sorted.search_sorted(keys, values[a:b], out[a:b], mode), m,
                   threads_for(m, SORTED_PARALLEL_MIN))
        return out

    def _bind_fast_paths(self) -> None:
        """Forget the scalar kernel and fast paths (after building, loading or unpickling): the
        next scalar query compiles or loads the kernel (:meth:`_install_fast_paths`), so an
        index used only for batches never compiles it (seconds a key dtype on a cold cache)."""
        self._scalar_entry = _UNBOUND
        self.__dict__.pop("_scalar_fast", None)

    def _install_fast_paths(self) -> None:
        """Compile (or load) the scalar kernel; set :attr:`_scalar_entry` and, for integer and
        float64 keys, :attr:`_scalar_fast`.

        ``lower_bound(5)`` on integer keys then costs a type check, a range check and the
        compiled call: no numpy scalar is created and no dispatcher type resolution runs. The
        fast paths are methods reading one attribute, not closures stored on the instance:
        those made every queried index a reference cycle (its arrays freed only by the
        cycle collector after ``del``). The method costs a little more per call (RMI
        ``lower_bound``, 200K keys: 483 against 438 ns, one process, alternating rounds).
        """
        kernel = self._scalar_entry = self._scalar_kernel()
        if kernel is None:
            return
        dtype = self._keys.dtype
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            self._scalar_fast = (*kernel, int, int(info.min), int(info.max))
        elif dtype == np.float64:  # NaN fails the range check
            self._scalar_fast = (*kernel, float, -math.inf, math.inf)

    #: Attributes a subclass derives from its arrays (addresses, views): not pickled, rebuilt
    #: by :meth:`_derive` on unpickling.
    _derived: tuple = ()

    def _derive(self) -> None:
        """Rebuild the :attr:`_derived` attributes from the pickled state (none here)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        for name in ("_scalar_fast", "_scalar_entry", *self._derived):
            state.pop(name, None)
        state["_positions"] = None  # derived: 0..n-1 is rebuilt on demand, not pickled
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for array in (self._keys, self._values):
            if array is not None:
                array.flags.writeable = False
        self._derive()
        self._bind_fast_paths()



class LearnedIndex(KeyValueIndex):
    """A :class:`KeyValueIndex` whose model predicts a window before the last-mile search:
    :meth:`predict` and the error statistics, shared by RMI, PGM and RadixSpline. A subclass
    implements ``_predict(values)`` and keeps ``max_error`` and ``avg_log2_error`` in
    ``self._stats``."""

    def _predict(self, values: np.ndarray) -> tuple:
        """``(pos, lo, hi)`` int64 arrays for contiguous key-dtype queries."""
        raise NotImplementedError

    def _loop_or_group(self, kernels, queries, mode: int, group: bool) -> np.ndarray:
        """Answers from a family's ``kernels`` module: ``lookup_group`` (lock-step groups of
        ``kernels.GROUP``) or ``lookup_loop``, over ``self._arrays`` and ``self._top``, on
        slices over threads from ``config.parallel_threshold`` queries on."""
        arrays, keys = self._arrays, self._keys
        top = None if group else self._top

        def run(q, o):
            if group:
                kernels.lookup_group(arrays, keys, q, o, mode, group_buffers(keys.dtype, kernels.GROUP))
            else:
                kernels.lookup_loop(arrays, keys, q, o, mode, top)

        return batch_answers(queries, mode, len(keys), self.config.parallel_threshold, run)

    @overload
    def predict(self, q: Number) -> tuple[int, int, int]: ...
    @overload
    def predict(self, q: Queries) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]: ...

    def predict(self, q: Number | Queries) -> tuple[int, int, int] | tuple[NDArray[np.int64], ...]:
        """The model's guess for ``lower_bound(q)``: ``(pos, lo, hi)`` with the window ``[lo, hi]``.

        The contract (``docs/design.md``, "Windows"): for every key k in the index,
        ``lo <= lower_bound(k) < hi``, so the window holds k's first position and the one
        after it, but not always ``upper_bound(k)`` when k repeats (``predict`` of the next
        value above k brackets that). A q below the first key or above the last gets its
        exact answer a as ``(a, a, a)``. Any other absent q usually lies in its window;
        the search widens the window when it does not. A scalar q gives three ints, an array
        three int64 arrays of its shape. Complexity: the model's (see the class). Raises
        TypeError/ValueError as :meth:`lower_bound`.
        """
        keys = self._keys
        n = len(keys)
        if isinstance(q, (np.ndarray, list, tuple)):
            arr = as_query_array(q)
            values, forced, _ = coerce_array(arr.ravel(), keys.dtype, LEFT)
            pos, lo, hi = self._predict(values) if n else (np.zeros(len(values), dtype=np.int64) for _ in range(3))
            if n:
                first = values < keys[0]
                above = values > keys[n - 1]
                pos[first] = lo[first] = hi[first] = 0
                pos[above] = lo[above] = hi[above] = n
            if forced is not None:
                pos[forced] = lo[forced] = hi[forced] = n
            return tuple(a.reshape(arr.shape) for a in (pos, lo, hi))
        value, status, _ = coerce_scalar(q, keys.dtype, LEFT)
        if status == ANSWER_N or (n and value > keys[n - 1]):
            return n, n, n
        if not n or value < keys[0]:
            return 0, 0, 0
        return tuple(int(a[0]) for a in self._predict(np.array([value], dtype=keys.dtype)))

    @property
    def max_error(self) -> int:
        """Largest ``|lower_bound(k) - predicted position|`` over the keys."""
        return self._stats["max_error"]

    @property
    def avg_log2_error(self) -> float:
        """Mean over keys of ``log2(|lower_bound(k) - predicted position| + 1)``."""
        return self._stats["avg_log2_error"]


def read_only_views(keys: np.ndarray, values) -> tuple:
    """Read-only views of already validated keys and values (None stays None): the index owns
    views, so the caller's arrays keep their flags."""
    views = tuple(None if a is None else a.view() for a in (keys, values))
    for view in views:
        if view is not None:
            view.flags.writeable = False
    return views


def config_from(cls, config, fields: dict):
    """The frozen config ``cls`` from ``config=`` or from keyword fields, not both.

    Raises TypeError for both at once, unknown fields or a config of another type."""
    if config is not None and fields:
        raise TypeError(f"pass either config={cls.__name__}(...) or its fields as keywords, not both")
    if config is None:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise TypeError(f"unknown options {unknown}; {cls.__name__} fields are {sorted(known)}")
        return cls(**fields)
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    return config


def compiled_entry(kernel, sig):
    """Compile (or load from cache) ``kernel`` for the argument types ``sig``; its entry point.

    Calling the entry point skips Numba's dispatcher, which resolves argument types on every
    call (about half the cost of a scalar lookup). Falls back to the dispatcher where the
    entry point is not exposed (e.g. ``NUMBA_DISABLE_JIT``).
    """
    try:
        entry = kernel.compile(sig)
    except AttributeError:  # not a Numba dispatcher
        return kernel
    return entry if callable(entry) else kernel


def compile_scalar_entry(kernel, a0, a1, a2, key_dtype: np.dtype):
    """:func:`compiled_entry` of ``kernel(a0, a1, a2, q, mode)`` for q of the key dtype."""
    sig = (numba.typeof(a0), numba.typeof(a1), numba.typeof(a2), numba.from_dtype(key_dtype), numba.int64)
    return compiled_entry(kernel, sig)

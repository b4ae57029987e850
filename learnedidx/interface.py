"""The interface every index of the project satisfies, static or updatable, as Protocols.

:class:`SortedIndex` is what a caller may rely on for any index (the learned ones, the
baselines and an index of your own tested with :mod:`learnedidx.testing`);
:class:`UpdatableIndex` adds the writes of :class:`learnedidx.DynamicRMI`. Both are
``runtime_checkable``: ``isinstance(idx, SortedIndex)`` checks that every member exists (not
their signatures). :class:`learnedidx.KeyValueIndex` is the static base class that provides
them over a subclass's search kernels; :class:`learnedidx.IndexBase`, beneath it, holds only
what an updatable index shares with it (repr, saving and loading).

>>> import numpy as np
>>> import learnedidx
>>> from learnedidx.interface import SortedIndex, UpdatableIndex
>>> idx = learnedidx.RMI(np.arange(10, dtype=np.uint64))
>>> isinstance(idx, SortedIndex), isinstance(idx, UpdatableIndex)
(True, False)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol, TypeAlias, overload, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: One query or key: a Python or numpy integer or float (compared exactly, whatever the key dtype).
Number: TypeAlias = int | float | np.integer | np.floating
#: A batch of queries: a numpy array, or a (nested) list or tuple of numbers; answers keep its shape.
Queries: TypeAlias = np.ndarray | list | tuple
#: A key as iteration and ``find_*`` return it: a Python int (integer keys) or float.
Key: TypeAlias = int | float
#: A file path, as ``save`` and ``load`` take it.
StrPath: TypeAlias = str | os.PathLike[str]


@runtime_checkable
class SortedIndex(Protocol):
    """A map from sorted keys to values whose searches answer like ``np.searchsorted``.

    Queries may be scalars or arrays of any numeric type; batch methods keep the query
    array's shape. Misuse raises ``TypeError``/``ValueError`` naming the argument, and a
    missing key raises ``KeyError``.
    """

    name: str

    def __len__(self) -> int:
        """Number of keys, duplicates included."""

    def __getitem__(self, key: Number) -> Any:
        """The value of the first entry equal to ``key``; KeyError when there is none."""

    def __contains__(self, key: object) -> bool:
        """True when some key equals ``key``."""

    @property
    def keys(self) -> np.ndarray:
        """The keys in order, read-only."""

    @property
    def values(self) -> np.ndarray:
        """The values in key order, read-only."""

    @overload
    def lower_bound(self, q: Number) -> int: ...
    @overload
    def lower_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def lower_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """``np.searchsorted(keys, q, side="left")``: an int, or an int64 array shaped like q."""

    @overload
    def upper_bound(self, q: Number) -> int: ...
    @overload
    def upper_bound(self, q: Queries) -> NDArray[np.int64]: ...

    def upper_bound(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """``np.searchsorted(keys, q, side="right")``: an int, or an int64 array shaped like q."""

    def get(self, key: Number, default: Any = None) -> Any:
        """The value of the first entry equal to ``key``, or ``default``."""

    def contains(self, queries: ArrayLike) -> NDArray[np.bool_]:
        """A bool array shaped like ``queries``: which of them are keys."""

    def get_batch(self, queries: ArrayLike, default: Any = 0) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """``(values, found)``: each query's value (``default`` where absent) and the mask."""

    def range(self, lo: Number, hi: Number) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(keys, values)`` of every entry with ``lo <= key < hi``."""

    def __iter__(self) -> Iterator[Key]:
        """The keys in order, as Python numbers."""

    def __reversed__(self) -> Iterator[Key]:
        """The keys in descending order."""

    def items(self) -> Iterator[tuple[Key, Any]]:
        """``(key, value)`` pairs in key order."""

    @overload
    def bisect_left(self, q: Number) -> int: ...
    @overload
    def bisect_left(self, q: Queries) -> NDArray[np.int64]: ...

    def bisect_left(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Alias of ``lower_bound``."""

    @overload
    def bisect_right(self, q: Number) -> int: ...
    @overload
    def bisect_right(self, q: Queries) -> NDArray[np.int64]: ...

    def bisect_right(self, q: Number | Queries) -> int | NDArray[np.int64]:
        """Alias of ``upper_bound``."""

    def count(self, key: Number) -> int:
        """Number of keys equal to ``key``."""

    def irange(self, minimum: Number | None = None, maximum: Number | None = None,
               inclusive: tuple[bool, bool] = (True, True), reverse: bool = False) -> Iterator[Key]:
        """The keys between two bounds, lazily (``SortedList.irange``)."""

    def find_lt(self, q: Number) -> Key | None:
        """The largest key ``< q``, or None."""

    def find_le(self, q: Number) -> Key | None:
        """The largest key ``<= q``, or None."""

    def find_gt(self, q: Number) -> Key | None:
        """The smallest key ``> q``, or None."""

    def find_ge(self, q: Number) -> Key | None:
        """The smallest key ``>= q``, or None."""

    def size_in_bytes(self) -> int:
        """Bytes of the structure beyond the key and value arrays."""

    def save(self, path: StrPath) -> None:
        """Write the index to ``path`` (read back by :func:`learnedidx.load`)."""

    def _check(self) -> None:
        """Assert every invariant of the structure (used by the tests)."""


@runtime_checkable
class UpdatableIndex(SortedIndex, Protocol):
    """A :class:`SortedIndex` that takes writes; every read sees every earlier write."""

    def __setitem__(self, key: Number, value: Any) -> None:
        """Insert or overwrite ``key``."""

    def __delitem__(self, key: Number) -> None:
        """Remove ``key``; KeyError when absent."""

    def pop(self, key: Number, default: Any = ...) -> Any:
        """Remove ``key`` and return its value (``default`` when absent, if given)."""

    def update(self, keys: ArrayLike, values: ArrayLike) -> None:
        """Insert or overwrite a batch of keys (the last value of a repeated key wins)."""

    def delete(self, keys: ArrayLike, missing: str = "raise") -> int:
        """Remove a batch of keys; return how many were removed."""


def members(protocol) -> list:
    """The names an object needs to satisfy ``protocol`` (its methods, properties and
    annotated attributes, inherited ones included), sorted."""
    names = set()
    for cls in protocol.__mro__:
        if cls in (Protocol, object) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(cls.__dict__.get("__annotations__", {}))
        names.update(n for n, v in cls.__dict__.items()
                     if callable(v) or isinstance(v, property))
    return sorted(n for n in names if not n.startswith("__") or n in _CONTAINER_METHODS)


_CONTAINER_METHODS = {"__len__", "__getitem__", "__contains__", "__setitem__", "__delitem__", "__iter__",
                      "__reversed__"}

__all__ = ["SortedIndex", "UpdatableIndex", "members", "Number", "Queries", "Key", "StrPath"]

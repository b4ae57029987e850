"""What every part of the DynamicRMI class shares: its lock, the missing-value sentinel, the
value views the kernels move and the delta's starting size."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

_Method = TypeVar("_Method", bound=Callable[..., Any])

MISSING = object()  #: "no value" where None is a valid value
INITIAL_CHUNKS = 4  #: chunks of a new, empty delta


def serialized(method: _Method) -> _Method:
    """``method`` run holding the index's lock: one call at a time per index, so a reader
    never sees a write half done and two writers never interleave (see the class doc)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]  # same signature (functools.wraps)


def value_view_dtype(dtype: np.dtype) -> np.dtype:
    """The unsigned dtype the kernels move values as; TypeError for unsupported value dtypes."""
    if dtype.kind in "biufmM" and dtype.itemsize in (1, 2, 4, 8) and dtype.fields is None:
        return np.dtype(f"u{dtype.itemsize}")
    raise TypeError(
        f"DynamicRMI values must have a numeric dtype of 1, 2, 4 or 8 bytes (bool, int8..int64, "
        f"uint8..uint64, float32, float64, datetime64, timedelta64), got {dtype}; store other "
        "payloads in your own array and keep their int64 row numbers as values"
    )


def describe_key(x) -> str:
    """``repr`` of a key or value as the user wrote it (a numpy scalar as its Python value)."""
    return repr(x.item() if isinstance(x, np.generic) else x)

"""Input validation and exact query coercion shared by every index.

Every index stores its keys in one *key dtype* K (a numpy integer or float dtype) and its kernels
compare queries of exactly that dtype. This module turns whatever the caller passes into such
queries without any lossy conversion:

* ``lower_bound(q)`` is ``#keys < q``. The keys that are ``>= q`` are exactly the keys that are
  ``>= ceil_K(q)``, the smallest K value not below q. So the query becomes ``ceil_K(q)``.
* ``upper_bound(q)`` is ``#keys <= q``, the same with ``floor_K(q)``, the largest K value not above q.
* When no K value is ``>= q`` (an integer K and q above its max), ``lower_bound`` is ``n``; when no
  K value is ``<= q``, ``upper_bound`` is 0. Those answers are forced and the kernel is not asked.
* A key equals q only when ``ceil_K(q) == floor_K(q)``, that is when q is exactly representable.

Python ints and floats compare exactly with each other, so the scalar path works on Python
numbers; the array path does the same with numpy operations that never round.
"""

from __future__ import annotations

import collections.abc
import fractions
import math
import numbers

import numpy as np

from ._modes import LEFT, RIGHT  # noqa: F401  (re-exported: the modes coercion serves)

#: Key dtypes the kernels are compiled for; float16 keys are widened to float32 (exactly).
KEY_DTYPES = tuple(
    np.dtype(t)
    for t in (
        np.int8, np.int16, np.int32, np.int64,
        np.uint8, np.uint16, np.uint32, np.uint64,
        np.float32, np.float64,
    )
)

# Forced answers of a scalar coercion.
IN_RANGE = 0
ANSWER_ZERO = 1
ANSWER_N = 2


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype}"
    return type(x).__name__


def key_dtype_for(dtype: np.dtype, argument: str = "keys") -> np.dtype:
    """Return the kernel dtype that stores keys of ``dtype`` exactly.

    Raises:
        TypeError: ``dtype`` is not a real numeric dtype of at most 64 bits.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    native = dtype.newbyteorder("=")
    if native in KEY_DTYPES:
        return native
    raise TypeError(
        f"{argument} must have an integer or float dtype of at most 64 bits "
        f"(int8..int64, uint8..uint64, float16..float64), got dtype {dtype}; "
        f"convert it first, e.g. np.asarray({argument}, dtype=np.int64)"
        + ("; datetimes: .view('int64')" if dtype.kind in "mM" else "")
    )


def prepare_keys_values(keys, values=None, *, assume_sorted: bool = False, copy: bool = True):
    """Validate keys and values and return them as sorted, read-only, contiguous arrays.

    Unsorted keys are sorted stably and the values move with them. The caller's arrays are
    never modified: a copy is made whenever anything changes, and also when ``copy`` is true
    (the default) so that later changes by the caller cannot corrupt the index.

    Complexity: O(n) when sorted, O(n log n) otherwise.

    Returns:
        ``(keys, values)``; ``values`` is None when the caller passed None (positions).

    Raises:
        TypeError: keys are not numeric (strings, objects, booleans, complex, datetimes).
        ValueError: keys are not 1-D, contain NaN, are unsorted with ``assume_sorted=True``,
            or values have another length or are not 1-D.
    """
    raw = keys
    if isinstance(raw, (str, bytes)) or raw is None:
        raise TypeError(f"keys must be a 1-D array of numbers, got {_describe(raw)}")
    if isinstance(raw, collections.abc.Set) and values is not None:
        raise ValueError("keys given as a set have no order to pair with values; pass keys as a list or array")
    if isinstance(raw, _UNORDERED):
        raw = list(raw)
    arr = as_number_array(raw)
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O" and arr.size and not isinstance(raw, np.ndarray):
            arr = _python_int_keys(arr)
        if arr.dtype.kind == "b":
            raise TypeError("keys must be numbers, got booleans; pass keys.astype(np.uint8)")
        key_dtype_for(arr.dtype)
    if arr.ndim != 1:
        raise ValueError(
            f"keys must be 1-D, got an array of shape {arr.shape}; flatten it with np.ravel(keys) "
            "or pass one column"
        )
    dtype = key_dtype_for(arr.dtype)
    reject_nan(arr, "keys contain NaN (first at position {position}); drop NaNs before indexing")
    if arr.dtype != dtype or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=dtype)

    vals = None
    if values is not None:
        if isinstance(values, (str, bytes)):
            raise TypeError(f"values must be a 1-D array, got {_describe(values)}")
        vals = np.asarray(values)
        if vals.ndim != 1:
            raise ValueError(f"values must be 1-D, got an array of shape {vals.shape}")
        if len(vals) != len(arr):
            raise ValueError(
                f"values has length {len(vals)} but keys has length {len(arr)}; "
                "pass one value per key"
            )

    descending = arr[1:] < arr[:-1]
    if descending.any():
        if assume_sorted:
            bad = int(np.flatnonzero(descending)[0])
            raise ValueError(
                f"keys are not sorted (keys[{bad}] > keys[{bad + 1}]) but assume_sorted=True; "
                "pass assume_sorted=False to sort them"
            )
        order = np.argsort(arr, kind="stable")
        arr = arr[order]
        if vals is not None:
            vals = vals[order]
    elif copy:
        arr = arr.copy() if np.may_share_memory(arr, np.asarray(raw)) else arr
        if vals is not None and np.may_share_memory(vals, np.asarray(values)):
            vals = vals.copy()
    # Read-only views: the flag is set on our view, never on the caller's array.
    arr = arr.view()
    arr.flags.writeable = False
    if vals is not None:
        vals = vals.view()
        vals.flags.writeable = False
    return arr, vals


def checked_default(default, dtype: np.dtype):
    """``default`` for absent keys of a batch get, when it fits the value dtype exactly.

    Raises:
        ValueError: an integer (or bool) value dtype and a default that is not an integer in
            its range (numpy would truncate 2.5 to 2, or wrap -1).
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iub":
        return default
    x = _check_number(default, "default")
    low, high = (0, 1) if dtype.kind == "b" else _key_bounds(dtype)
    if isinstance(x, float):
        whole = math.isfinite(x) and x == math.floor(x)
    else:
        whole = isinstance(x, int)
    if not whole or not low <= x <= high:
        raise ValueError(f"default {default!r} does not fit the value dtype {dtype}; pass an integer in [{low}, {high}]")
    return default


def reject_nan(arr: np.ndarray, message: str) -> None:
    """ValueError(``message`` with ``{position}``: the first NaN's flat position) when ``arr``
    holds NaN. O(m)."""
    if arr.dtype.kind == "f":
        nan = np.flatnonzero(np.isnan(arr).ravel())
        if nan.size:
            raise ValueError(message.format(position=int(nan[0])))


def _python_int_keys(arr: np.ndarray) -> np.ndarray:
    """Keys given as a list of Python numbers that numpy could not type: ints that fit uint64
    or int64 become that dtype (``[0, 2**63 + 1]``, which numpy would round to float64).

    Raises:
        TypeError: they do not fit one dtype, or floats and ints beyond 2**53 are mixed.
    """
    flat = arr.ravel()
    if not all(isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)) for k in flat):
        if all(isinstance(k, numbers.Real) for k in flat):
            raise TypeError(
                "keys mix floats with ints beyond 2**53, which float64 cannot hold exactly; "
                "pass np.asarray(keys, dtype=...) with the dtype you mean"
            )
        return arr  # not numbers: key_dtype_for names the dtype
    low, high = min(int(k) for k in flat), max(int(k) for k in flat)
    for dtype in (np.uint64, np.int64):
        bounds = _key_bounds(np.dtype(dtype))
        if bounds[0] <= low and high <= bounds[1]:
            return np.array([int(k) for k in flat], dtype=dtype).reshape(arr.shape)
    raise TypeError(
        "keys are Python ints that do not fit one numpy integer dtype; "
        "pass np.asarray(keys, dtype=np.uint64) or np.int64 explicitly"
    )


def _key_bounds(dtype: np.dtype):
    """Smallest and largest value of an integer dtype, as Python ints."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _check_number(q, argument: str = "query"):
    """Return q as a Python int or float, or raise for anything that cannot be compared."""
    if isinstance(q, (bool, np.bool_)):
        return int(q)
    if isinstance(q, (int, np.integer)):
        return int(q)
    if isinstance(q, (float, np.floating)):
        f = float(q)
        if f != f:
            raise ValueError(f"{argument} is NaN, which has no position among the keys; pass a number")
        if isinstance(q, np.floating) and q.dtype.itemsize > 8 and math.isfinite(f):
            return fractions.Fraction(*q.as_integer_ratio())  # a long double, exactly
        return f
    if isinstance(q, numbers.Rational):
        return q
    raise TypeError(
        f"{argument} must be a real number or an array of numbers, got {_describe(q)}"
    )


def _float_ceil_floor(q, dtype: np.dtype):
    """(ceil_K(q), floor_K(q)) for a float dtype K and a Python number q, exactly."""
    ftype = dtype.type
    with np.errstate(over="ignore"):  # past the dtype's largest finite value: inf, silently
        try:
            f = ftype(q)
        except OverflowError:
            f = ftype(math.inf if q > 0 else -math.inf)
        fv = float(f)
        if fv == q:
            return f, f
        if fv < q:
            return np.nextafter(f, ftype(math.inf)), f
        return f, np.nextafter(f, ftype(-math.inf))


def coerce_scalar(q, dtype: np.dtype, mode: int):
    """Map one query to the key dtype for ``mode`` (LEFT uses ceil_K, RIGHT uses floor_K).

    Complexity: O(1).

    Returns:
        ``(value, status, exact)``: ``status`` is IN_RANGE, ANSWER_ZERO or ANSWER_N (the answer
        is forced and ``value`` is meaningless); ``exact`` says q is representable in K.

    Raises:
        TypeError: q is not a real number.
        ValueError: q is NaN.
    """
    x = _check_number(q)
    if dtype.kind in "iu":
        kmin, kmax = _key_bounds(dtype)
        if isinstance(x, float) and math.isinf(x):
            c, exact = x, False
        else:
            c = math.ceil(x) if mode == LEFT else math.floor(x)
            exact = c == x
        if c < kmin:
            return dtype.type(kmin), (IN_RANGE if mode == LEFT else ANSWER_ZERO), False
        if c > kmax:
            return dtype.type(kmax), (ANSWER_N if mode == LEFT else IN_RANGE), False
        return dtype.type(c), IN_RANGE, exact
    up, down = _float_ceil_floor(x, dtype)
    return (up if mode == LEFT else down), IN_RANGE, bool(up == down)


def _exact_float_to_ints(f: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Sign of (f - q) per element, exactly, for floats f that are q rounded to nearest."""
    info = np.iinfo(q.dtype)
    limit = float(info.max) + 1.0  # 2**63 or 2**64, exactly representable
    lower = float(info.min)
    valid = (f < limit) & (f >= lower)
    fi = np.where(valid, f, 0.0).astype(q.dtype)
    sign = (fi > q).astype(np.int8) - (fi < q).astype(np.int8)
    sign[~valid & (f >= limit)] = 1
    sign[~valid & (f < lower)] = -1
    return sign


_NAN_QUERIES = "queries contain NaN (first at flat position {position}), which has no position among the keys"


def coerce_array(qs: np.ndarray, dtype: np.dtype, mode: int, nan_message: str = _NAN_QUERIES):
    """Map an array of queries to the key dtype for ``mode``; see :func:`coerce_scalar`.

    Complexity: O(m) for m queries; no copy when qs already has the key dtype and is contiguous.

    Returns:
        ``(values, forced, exact)``: ``values`` is a contiguous array of the key dtype;
        ``forced`` is None or a boolean mask of queries whose answer is forced (ANSWER_N for
        LEFT, 0 for RIGHT); ``exact`` is None (all exactly representable) or a boolean mask.

    Raises:
        TypeError: the array does not hold real numbers.
        ValueError: the array holds NaN (``nan_message``, formatted with its ``{position}``).
    """
    kind = qs.dtype.kind
    if kind == "b":
        qs = qs.astype(np.uint8)
        kind = "u"
    if kind == "O":
        return _coerce_object_array(qs, dtype, mode)
    if kind not in "iuf":
        raise TypeError(
            f"queries must be numbers, got an array of dtype {qs.dtype}; "
            f"convert with np.asarray(queries, dtype={dtype.name})"
        )
    if kind == "f":
        if qs.dtype == np.float16:
            qs = qs.astype(np.float32)
        reject_nan(qs, nan_message)
    if qs.dtype == dtype:
        return np.ascontiguousarray(qs), None, None

    if dtype.kind in "iu":
        kmin, kmax = _key_bounds(dtype)
        if kind in "iu":
            qmin, qmax = _key_bounds(qs.dtype)
            lo_cut = qs < qs.dtype.type(kmin) if kmin > qmin else None
            hi_cut = qs > qs.dtype.type(kmax) if kmax < qmax else None
            if lo_cut is None and hi_cut is None:
                return np.ascontiguousarray(qs, dtype=dtype), None, None
            safe = qs.copy()
            out_of_range = np.zeros(qs.shape, dtype=bool)
            if lo_cut is not None:
                safe[lo_cut] = kmin
                out_of_range |= lo_cut
            if hi_cut is not None:
                safe[hi_cut] = kmax
                out_of_range |= hi_cut
            forced = hi_cut if mode == LEFT else lo_cut
            return np.ascontiguousarray(safe, dtype=dtype), _none_if_empty(forced), ~out_of_range
        # Float queries on integer keys, in float64 or, for long doubles, their own dtype
        # (which holds every 64-bit integer exactly where it is wider than float64).
        wide = qs.dtype if qs.dtype.itemsize > 8 else np.dtype(np.float64)
        q64 = qs.astype(wide)
        c = np.ceil(q64) if mode == LEFT else np.floor(q64)
        exact = c == q64
        kmax_f = wide.type(kmax)
        above = (c >= kmax_f) if int(kmax_f) > kmax else (c > kmax_f)
        below = c < wide.type(kmin)  # kmin is 0 or -2**k: exactly representable
        c = np.where(above, 0, np.where(below, 0, c))
        values = c.astype(dtype)
        values[above] = kmax
        values[below] = kmin
        exact &= ~(above | below)
        forced = above if mode == LEFT else below
        return values, _none_if_empty(forced), exact

    # Float keys.
    if kind == "f":
        if np.can_cast(qs.dtype, dtype, casting="safe"):
            return np.ascontiguousarray(qs, dtype=dtype), None, None
        with np.errstate(over="ignore", invalid="ignore"):
            f = qs.astype(dtype)
            back = f.astype(qs.dtype)
        low = back < qs
        high = back > qs
    else:
        if _ints_fit_float(qs.dtype, dtype):
            return np.ascontiguousarray(qs, dtype=dtype), None, None
        with np.errstate(over="ignore"):
            f = qs.astype(dtype)
        sign = _exact_float_to_ints(f.astype(np.float64), qs)
        low = sign < 0
        high = sign > 0
    inexact = low | high
    with np.errstate(over="ignore", invalid="ignore"):
        if mode == LEFT:
            f = np.where(low, np.nextafter(f, dtype.type(np.inf)), f)
        else:
            f = np.where(high, np.nextafter(f, dtype.type(-np.inf)), f)
    return np.ascontiguousarray(f, dtype=dtype), None, ~inexact


def _ints_fit_float(int_dtype: np.dtype, float_dtype: np.dtype) -> bool:
    """Every value of int_dtype is exactly representable in float_dtype."""
    mantissa = np.finfo(float_dtype).nmant + 1
    bits = int_dtype.itemsize * 8 - (1 if int_dtype.kind == "i" else 0)
    return bits <= mantissa


def _none_if_empty(mask):
    if mask is None or not mask.any():
        return None
    return mask


def _coerce_object_array(qs: np.ndarray, dtype: np.dtype, mode: int):
    """Element-by-element coercion for arrays of Python objects (e.g. ints beyond 64 bits)."""
    flat = qs.ravel()
    values = np.zeros(flat.shape, dtype=dtype)
    forced = np.zeros(flat.shape, dtype=bool)
    exact = np.zeros(flat.shape, dtype=bool)
    for i, q in enumerate(flat):
        v, status, ex = coerce_scalar(q, dtype, mode)
        if status == IN_RANGE:
            values[i] = v
            exact[i] = ex
        else:
            forced[i] = True
    shape = qs.shape
    return values.reshape(shape), _none_if_empty(forced.reshape(shape)), exact.reshape(shape)


def as_number_array(x) -> np.ndarray:
    """``np.asarray(x)``, except for array-likes holding Python ints that numpy would round to
    float64 (ints beyond 2**53 next to floats or negative ints, e.g. ``[0, 2**63 + 1]``): those
    come back as an object array, which every caller then converts exactly or rejects.
    Complexity O(m); the per-element check runs only when some value reaches 2**53."""
    if isinstance(x, _UNORDERED):
        x = list(x)  # numpy makes a 0-d object array of a set, a generator or a dict view
    arr = np.asarray(x)
    if isinstance(x, np.ndarray) or arr.dtype != np.float64 or not arr.size:
        return arr
    with np.errstate(invalid="ignore"):
        if not np.abs(arr).max() >= _FLOAT_EXACT:
            return arr
    obj = np.asarray(x, dtype=object)
    for v in obj.ravel():
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and abs(int(v)) > _FLOAT_EXACT:
            return obj
    return arr


_FLOAT_EXACT = 2**53  #: every integer up to this magnitude is exact in float64
#: Iterables taken as the list of their items (sets in their iteration order).
_UNORDERED = (collections.abc.Set, collections.abc.Iterator, collections.abc.KeysView, collections.abc.ValuesView)


def as_query_array(qs, argument: str = "queries") -> np.ndarray:
    """Turn array-likes (lists, tuples, arrays) into a numpy array of queries, exactly (see
    :func:`as_number_array`).

    Raises:
        TypeError: the input holds strings or other non-numbers.
    """
    arr = as_number_array(qs)
    if arr.dtype.kind in "USV" or arr.dtype.kind in "mMc":
        raise TypeError(
            f"{argument} must be numbers, got an array of dtype {arr.dtype}; "
            "convert it to a numeric dtype first"
        )
    if arr.dtype.kind == "O":
        for q in arr.ravel():
            _check_number(q, argument)
    return arr

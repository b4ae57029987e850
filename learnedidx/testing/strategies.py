"""Hypothesis strategies for key arrays and queries that stress a sorted-key index.

>>> from hypothesis import given
>>> from learnedidx.testing import key_arrays
>>> @given(key_arrays())
... def test_sorted(keys): ...
"""

# No ``from __future__ import annotations`` here: ``st.composite`` moves the annotations to a
# function of hypothesis's, where strings such as "np.ndarray" no longer resolve (the API reference).
import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .._coerce import KEY_DTYPES

#: Every key dtype an index must support (float16 keys are stored as float32).
ALL_KEY_DTYPES = KEY_DTYPES + (np.dtype(np.float16),)

SHAPES = ("random", "duplicates", "extremes", "clustered", "steps", "dense", "empty", "one")


def _lo_hi(dtype: np.dtype):
    if dtype.kind == "f":
        info = np.finfo(dtype)
        return float(info.min), float(info.max)
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@st.composite
def key_arrays(draw, dtypes=ALL_KEY_DTYPES, max_size: int = 300, shapes=SHAPES, sort: bool = False):
    """Draw a 1-D key array: a dtype from ``dtypes`` and a shape from ``shapes``.

    Shapes: ``random`` (any values), ``duplicates`` (few distinct values, long runs),
    ``extremes`` (the dtype's min, max and their neighbours), ``clustered`` (dense runs far
    apart, like map cell ids), ``steps`` (a staircase CDF: runs of equal keys), ``dense``
    (consecutive values), ``empty`` and ``one`` (zero and one key). Unsorted unless ``sort``.
    """
    dtype = np.dtype(draw(st.sampled_from(list(dtypes))))
    shape = draw(st.sampled_from(list(shapes)))
    lo, hi = _lo_hi(dtype)
    size = draw(st.integers(0 if shape == "random" else 2, max_size))
    if shape == "empty":
        keys = np.zeros(0, dtype=dtype)
    elif shape == "one":
        keys = draw(hnp.arrays(dtype, 1, elements=hnp.from_dtype(dtype, allow_nan=False)))
    elif shape == "random":
        keys = draw(hnp.arrays(dtype, size, elements=hnp.from_dtype(dtype, allow_nan=False)))
    elif shape == "duplicates":
        pool = draw(hnp.arrays(dtype, draw(st.integers(1, 4)), elements=hnp.from_dtype(dtype, allow_nan=False)))
        picks = draw(hnp.arrays(np.int64, size, elements=st.integers(0, len(pool) - 1)))
        keys = pool[picks]
    elif shape == "extremes":
        if dtype.kind == "f":
            finfo = np.finfo(dtype)
            specials = [finfo.min, finfo.max, -np.inf, np.inf, 0.0, -0.0, finfo.tiny, -finfo.tiny,
                        np.nextafter(finfo.max, dtype.type(0)), finfo.smallest_subnormal]
        else:
            specials = [lo, hi, lo + 1, hi - 1, 0, 1, hi // 2, hi // 2 + 1]
        keys = np.array(draw(st.lists(st.sampled_from(specials), min_size=1, max_size=size)), dtype=dtype)
    else:
        starts = draw(st.lists(_values_in(dtype), min_size=1, max_size=6))
        run = draw(st.integers(1, max(1, size // len(starts))))
        parts = []
        for s in starts:
            if shape == "steps":
                parts.append(np.full(run, s, dtype=dtype))
            else:
                parts.append(_run_from(s, run, dtype, step=1 if shape == "dense" else draw(st.integers(1, 3))))
        keys = np.concatenate(parts)
    if sort:
        keys = np.sort(keys, kind="stable")
    return keys


def _values_in(dtype: np.dtype):
    if dtype.kind == "f":
        return hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)
    lo, hi = _lo_hi(dtype)
    return st.integers(lo, hi)


def _run_from(start, count: int, dtype: np.dtype, step: int) -> np.ndarray:
    """``count`` increasing values from ``start`` (clipped at the dtype's max)."""
    if dtype.kind == "f":
        out = [float(start)]
        for _ in range(count - 1):
            v = dtype.type(out[-1])
            for _ in range(step):
                v = np.nextafter(v, dtype.type(np.inf))
            out.append(float(v))
        return np.array(out, dtype=dtype)
    _, hi = _lo_hi(dtype)
    return np.array([min(int(start) + i * step, hi) for i in range(count)], dtype=dtype)


def interesting_queries(keys: np.ndarray) -> list:
    """Python-number queries that probe every boundary of ``keys``.

    The keys themselves and their neighbours, the dtype's extremes and just beyond them (as
    Python ints, which no numpy dtype may hold), zero, halves, infinities and integers above
    2**53 (where float64 rounds).
    """
    dtype = keys.dtype
    qs: list = [0, -1, 1, 0.5, -0.5, math.inf, -math.inf, 2**53 + 1, -(2**53) - 1,
                2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 1e300, -1e300]
    if dtype.kind == "f":
        finfo = np.finfo(dtype)
        qs += [float(finfo.max), float(finfo.min), float(finfo.tiny), float(finfo.smallest_subnormal)]
        for k in np.unique(keys)[:64]:
            k = dtype.type(k)
            with np.errstate(over="ignore"):  # the dtype's largest finite key: inf
                qs += [float(k), float(np.nextafter(k, dtype.type(np.inf))),
                       float(np.nextafter(k, dtype.type(-np.inf)))]
                if math.isfinite(k):
                    qs += [float(np.nextafter(np.float64(k), np.inf)), float(np.nextafter(np.float64(k), -np.inf))]
            if math.isfinite(k) and abs(float(k)) < 2**62:
                qs.append(math.floor(float(k)))
    else:
        lo, hi = _lo_hi(dtype)
        qs += [lo, hi, lo - 1, hi + 1, lo + 1, hi - 1]
        for k in np.unique(keys)[:64]:
            k = int(k)
            qs += [k, k - 1, k + 1, k + 0.5, k - 0.5, float(k)]
    return qs


@st.composite
def query_arrays(draw, keys: np.ndarray, max_size: int = 50):
    """A numpy array of queries for ``keys``: in the key dtype or another real dtype."""
    dtype = np.dtype(draw(st.sampled_from(list(ALL_KEY_DTYPES))))
    base = [q for q in interesting_queries(keys) if _fits(q, dtype)]
    picks = draw(st.lists(st.sampled_from(base), max_size=max_size)) if base else []
    extra = draw(hnp.arrays(dtype, draw(st.integers(0, 10)), elements=hnp.from_dtype(dtype, allow_nan=False)))
    return np.concatenate([np.array(picks, dtype=dtype), extra])


def _fits(q, dtype: np.dtype) -> bool:
    """True when the Python number q converts to dtype without changing value or overflowing."""
    if dtype.kind == "f":
        if isinstance(q, float) and not math.isfinite(q):
            return True
        finfo = np.finfo(dtype)
        return float(finfo.min) <= q <= float(finfo.max)
    if isinstance(q, float) and not (math.isfinite(q) and q == math.floor(q)):
        return False
    lo, hi = _lo_hi(dtype)
    return lo <= q <= hi
